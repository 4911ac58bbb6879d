"""Product-factory writers for Sentinel-3 (see :mod:`shared.products.factory`).

SEN3 folders with an ``xfdumanifest.xml`` listing every file with its size and MD5, named
``S3A_OL_1_EFR____<start>_<stop>_<creation>_<instance>_<centre>_O_<timeliness>_<baseline>.SEN3``:

- products (``OL_0_EFR___``, ``TM_0_NAT___``, ``OL_1_EFR___``, ``OL_1_ERR___``, ``OL_2_LFR___``,
  ``OL_2_LRR___``, ``OL_2_WFR___``, ``OL_2_WRR___``): acquisition period = [start, stop], orbit reference
  from the orbit model, instance ``<duration>_<cycle>_<relative orbit>_<frame>`` (full-resolution products
  are 3-minute FRAMEs placed by their time since the ascending node; reduced-resolution and L0 products are
  STRIPEs, frame ``____``); a footprint (``gml:posList`` of ``lat lon``) for the OLCI ones, none for the
  NAVATT ``TM_0_NAT___`` (platform data, no image);
- auxiliary data (any 11-character type ending in ``AX``: ``AX___FRO_AX``, ``OL_1_INS_AX``...): an ADF
  manifest whose ``generalProductInformation`` gives the validity (the name too), instance of 17 ``_``,
  timeliness ``AL``; stop ``None``: ``2100-01-01T00:00:00``, a far-future stop as real S3 AUX names use.

Options: ``timeliness`` (``NR``/``ST``/``NT``, default ``NR``; AUX ``AL``), ``centre`` (3 characters,
default ``LN1``/``MAR`` for water products/``MPC`` for AUX), ``baseline`` (3 characters, default ``002``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.products.factory_common import ProductRequest, Writer
from shared.products.synthetic import (
    _NSSDC,
    _OLCI_FILES,
    _ORBITS,
    _compact,
    _data_file,
    _densify,
    _File,
    _later,
    _render,
    _Request,
    _scene,
    _time,
    _write,
)

_FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)
_MAX_ALONG_KM = 3000.0
_GROUND_SPEED_KM_S, _OLCI_SWATH_KM = 6.6, 1270.0
_OPTIONS = {"timeliness": re.compile(r"NR|ST|NT|AL|__"), "centre": re.compile(r"[0-9A-Z_]{3}"),
            "baseline": re.compile(r"[0-9A-Z_]{3}")}  # fmt: skip

_LAND = ("geo_coordinates", "instrument_data", "iwv", "lqsf", "ogvi", "otci", "rc_ogvi", "tie_geo_coordinates",
         "tie_geometries", "tie_meteo", "time_coordinates")  # fmt: skip
_WATER = (
    *(f"Oa{b:02d}_reflectance" for b in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 16, 17, 18, 21)),
    "chl_nn", "chl_oc4me", "geo_coordinates", "instrument_data", "iop_nn", "iwv", "par", "tie_geo_coordinates",
    "tie_geometries", "tie_meteo", "time_coordinates", "trsp", "tsm_nn", "w_aer", "wqsf",
)  # fmt: skip


@dataclass(frozen=True)
class _Spec:
    text_info: str
    version: str
    files: tuple[str, ...]  # file names in the product root
    frame: bool  # FRAME (placed along the orbit) or STRIPE
    footprint: bool
    instrument: tuple[str, str]
    processor: tuple[str, str]
    centre: str = "LN1"


_OLCI = ("OLCI", "Ocean Land Colour Instrument")
_SPECS = {
    "OL_0_EFR___": _Spec("SENTINEL-3 OLCI Level 0 Earth Observation Full Resolution Product",
                         "esa/safe/sentinel/sentinel-3/olci/level-0/1.0", ("ISPData.dat", "ISPAnnotation.dat"),
                         False, True, _OLCI, ("IPF-OL-0", "06.15")),
    "TM_0_NAT___": _Spec("SENTINEL-3 Navigation and Attitude Level 0 Product",
                         "esa/safe/sentinel/sentinel-3/tm/level-0/1.0", ("ISPData.dat", "ISPAnnotation.dat"),
                         False, False, ("TM", "Platform Telemetry"), ("IPF-TM-0", "06.15")),
    "OL_1_EFR___": _Spec("SENTINEL-3 OLCI Level 1 Earth Observation Full Resolution Product",
                         "esa/safe/sentinel/sentinel-3/olci/level-1/1.0", tuple(f"{f}.nc" for f in _OLCI_FILES),
                         True, True, _OLCI, ("IPF-OL-1-EO", "06.17")),
    "OL_1_ERR___": _Spec("SENTINEL-3 OLCI Level 1 Earth Observation Reduced Resolution Product",
                         "esa/safe/sentinel/sentinel-3/olci/level-1/1.0",
                         tuple(f"{f}.nc" for f in _OLCI_FILES if f != "removed_pixels"),
                         False, True, _OLCI, ("IPF-OL-1-EO", "06.17")),
    "OL_2_LFR___": _Spec("SENTINEL-3 OLCI Level 2 Land Product", "esa/safe/sentinel/sentinel-3/olci/level-2/1.0",
                         tuple(f"{f}.nc" for f in _LAND), True, True, _OLCI, ("IPF-OL-2", "06.18")),
    "OL_2_LRR___": _Spec("SENTINEL-3 OLCI Level 2 Land Product", "esa/safe/sentinel/sentinel-3/olci/level-2/1.0",
                         tuple(f"{f}.nc" for f in _LAND), False, True, _OLCI, ("IPF-OL-2", "06.18")),
    "OL_2_WFR___": _Spec("SENTINEL-3 OLCI Level 2 Water Product", "esa/safe/sentinel/sentinel-3/olci/level-2/1.0",
                         tuple(f"{f}.nc" for f in _WATER), True, True, _OLCI, ("IPF-OL-2", "06.18"), "MAR"),
    "OL_2_WRR___": _Spec("SENTINEL-3 OLCI Level 2 Water Product", "esa/safe/sentinel/sentinel-3/olci/level-2/1.0",
                         tuple(f"{f}.nc" for f in _WATER), False, True, _OLCI, ("IPF-OL-2", "06.18"), "MAR"),
}  # fmt: skip


def _option(request: ProductRequest, key: str, default: str) -> str:
    value = str(request.options.get(key) or default)
    if not _OPTIONS[key].fullmatch(value):
        raise ValueError(f"{request.product_type}: option {key}={value!r} does not match {_OPTIONS[key].pattern}")
    return value


def _ring(
    request: ProductRequest, req: _Request, along_km: float, across_km: float
) -> tuple[list[tuple[float, float]], bool]:
    """(lat, lon) points of the footprint: the ``footprint`` asked for, else the orbit model's, densified."""
    # A long strip is drawn as its first 3000 km: the model's straight segment must stay off the poles.
    corners, ascending = _scene(req, min(along_km, _MAX_ALONG_KM), across_km)
    if request.footprint:
        return [(round(lat, 6), round(lon, 6)) for lon, lat in request.footprint], ascending
    return _densify(corners, 4), ascending


def _files(req: _Request, names: tuple[str, ...]) -> list[_File]:
    files = []
    for file_name in names:
        stem, _, extension = file_name.rpartition(".")
        big = stem.endswith(("radiance", "reflectance")) or stem == "ISPData"
        size = req.payload_size if big else max(64, req.payload_size // 4)
        mime = "application/x-netcdf" if extension == "nc" else "application/octet-stream"
        files.append(_data_file(req, file_name, f"{stem}Data", f"{stem}Schema", size, mime))
    return files


def _write_product(request: ProductRequest) -> Path:
    spec = _SPECS[request.product_type]
    if request.satellite not in ("A", "B", "C", "D"):
        raise ValueError(f"{request.product_type}: satellite must be A, B, C or D, not {request.satellite!r}")
    if request.stop is None or request.stop < request.start:
        raise ValueError(f"{request.product_type}: a product needs a stop after its start")
    req = request.synthetic()
    orbit = _ORBITS[("S3", request.satellite)].at(req.start)
    last = _ORBITS[("S3", request.satellite)].at(req.stop)
    level = request.product_type[3]
    timeliness = _option(request, "timeliness", "NR")
    centre = _option(request, "centre", spec.centre)
    baseline = _option(request, "baseline", "002")
    creation = _later(req, "creation", req.stop, 1800, 7200)
    duration = min(9999, round(req.duration.total_seconds()))
    frame = int((req.start - orbit.anx).total_seconds())
    instance = f"{duration:04d}_{orbit.cycle:03d}_{orbit.relative:03d}_{f'{frame:04d}' if spec.frame else '____'}"
    name = (
        f"S3{request.satellite}_{request.product_type}_{_compact(req.start)}_{_compact(req.stop)}"
        f"_{_compact(creation)}_{instance}_{centre}_O_{timeliness}_{baseline}.SEN3"
    )
    files = _files(req, spec.files)
    ring, ascending = _ring(request, req, max(20.0, req.duration.total_seconds() * _GROUND_SPEED_KM_S), _OLCI_SWATH_KM)
    frame_set = ""
    if spec.footprint:
        frame_set = (
            '    <metadataObject ID="measurementFrameSet" classification="DESCRIPTION" category="DMD">\n'
            '      <metadataWrap mimeType="text/xml" vocabularyName="Sentinel-SAFE" textInfo="Frame Set">\n'
            "        <xmlData>\n          <sentinel-safe:frameSet>\n"
            '            <sentinel-safe:footPrint srsName="http://www.opengis.net/def/crs/EPSG/0/4326">\n'
            f"              <gml:posList>{' '.join(f'{lat} {lon}' for lat, lon in ring)}</gml:posList>\n"
            "            </sentinel-safe:footPrint>\n          </sentinel-safe:frameSet>\n"
            "        </xmlData>\n      </metadataWrap>\n    </metadataObject>\n"
        )
    unit = [f"              <sentinel3:type>{'FRAME' if spec.frame else 'STRIPE'}</sentinel3:type>",
            f"              <sentinel3:duration>{duration}</sentinel3:duration>"]  # fmt: skip
    if spec.frame:
        unit.append(f"              <sentinel3:alongtrackCoordinate>{frame}</sentinel3:alongtrackCoordinate>")
    processing_start = _later(req, "processing", req.stop, 600, 1200)
    dmd = ["acquisitionPeriod", "platform", "measurementOrbitReference", "processing"]
    dmd += ["measurementFrameSet"] if spec.footprint else []
    manifest = _render(
        "s3_product_manifest.xml",
        files,
        xml={"frame_set": frame_set, "product_unit": "\n".join(unit)},
        version=spec.version,
        text_info=spec.text_info,
        dmd_ids=" ".join([*dmd, "generalProductInformation"]),
        start=_time(req.start, zulu=True),
        stop=_time(req.stop, zulu=True),
        nssdc=_NSSDC.get(("S3", request.satellite), "0000-000A"),
        satellite=request.satellite,
        instrument=spec.instrument[0],
        instrument_name=spec.instrument[1],
        name=name,
        product_type=request.product_type,
        timeliness=timeliness,
        baseline=baseline,
        creation=_compact(creation),
        product_size=sum(len(f.data) for f in files),
        pass_direction="ascending" if ascending else "descending",
        stop_pass_direction="ascending" if ascending else "descending",
        orbit=orbit.absolute,
        stop_orbit=last.absolute,
        relative_orbit=orbit.relative,
        cycle=orbit.cycle,
        output_level=level,
        processing_start=_time(processing_start),
        processing_stop=_time(processing_start + timedelta(seconds=30)),
        centre=centre,
        site="Copernicus Reference System",
        processor=spec.processor[0],
        processor_version=spec.processor[1],
    )
    return _write(req, name, files, "xfdumanifest.xml", manifest)


def _write_aux(request: ProductRequest) -> Path:
    if request.satellite not in ("A", "B", "C", "D", "_"):
        raise ValueError(f"{request.product_type}: satellite must be A, B, C, D or _, not {request.satellite!r}")
    stop = request.stop or _FAR_FUTURE
    if stop < request.start:
        raise ValueError(f"{request.product_type}: stop before start")
    req = request.synthetic(stop=stop)
    timeliness = _option(request, "timeliness", "AL")
    centre = _option(request, "centre", "MPC")
    baseline = _option(request, "baseline", "002")
    # Auxiliary data are made before they become valid.
    creation = req.start - timedelta(seconds=3600 + req.rng("creation").randrange(86400))
    name = (
        f"S3{request.satellite}_{request.product_type}_{_compact(req.start)}_{_compact(stop)}_{_compact(creation)}"
        f"_{'_' * 17}_{centre}_O_{timeliness}_{baseline}.SEN3"
    )
    code = request.product_type.strip("_")
    files = [_data_file(req, f"{code}.nc", "measurementData1", "measurementSchema1", request.payload_size,
                        "application/x-netcdf")]  # fmt: skip
    manifest = _render(
        "s3_aux_manifest.xml",
        files,
        name=name,
        product_type=request.product_type,
        satellite=request.satellite,
        timeliness=timeliness,
        baseline=baseline,
        creation=_compact(creation),
        product_size=sum(len(f.data) for f in files),
        start=_time(req.start, zulu=True),
        stop=_time(stop, zulu=True),
        processing_start=_time(creation),
        centre=centre,
        site="Copernicus Reference System",
        processor="refsys-aux",
        processor_version="1.0",
    )
    return _write(req, name, files, "xfdumanifest.xml", manifest)


WRITERS: tuple[tuple[re.Pattern[str], Writer], ...] = (
    (re.compile("|".join(_SPECS)), _write_product),
    (re.compile(r"(?:OL|SL|SR|DO|MW|GN|SY|TM|AX)_[012_]_[0-9A-Z_]{4}AX"), _write_aux),
)
