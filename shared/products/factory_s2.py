"""Product-factory writers for Sentinel-2 (see :mod:`shared.products.factory`).

PDGS product data items (PDI) as the reference processes them, folders named without ``.SAFE``:

- ``MSI_L0__DS`` / ``MSI_L1B_DS`` / ``MSI_L1C_DS``: a datastrip, ``S2A_OPER_MSI_L0__DS_<site>_<creation>
  _S<start>_N<baseline>``; its window is its sensing start..stop;
- ``MSI_L0__GR`` / ``MSI_L1B_GR``: a detector granule, ``..._S<start>_D<nn>_N<baseline>``, window start..stop;
- ``MSI_L1C_TL``: a tile, ``..._A<absolute orbit>_T<tile>_N<baseline>``, window start..stop.

Each holds ``manifest.safe`` (the structure of the sample PDI manifests: ``acquisitionPeriod@startTime``,
the datatake id as orbit number; MD5 at L0, SHA3-256 from L1 on, as recent products), the item's metadata
file ``S2A_OPER_MTD_<type>_....xml`` (``DATASTRIP_ID``, ``DETECTOR_ID``, sensing times, an ``EXT_POS_LIST``
of ``lat lon height`` for granules), ``Inventory_Metadata.xml`` (validity, orbit, footprint as
``Geo_Pnt``) and payload files; the manifest lists every file.

Options: ``datastrip`` (granules and tiles: the datastrip name they belong to -> ``datastripId``; default a
datastrip name made for the same window), ``detector`` (granules: 1..12 -> ``detectorId``, the ``D<nn>``
field; default 1), ``tile`` (tiles: ``T31TDH`` or ``31TDH``; default one under the footprint), ``site``
(4 characters, default ``REFS``), ``baseline`` (``NN.NN``; default ``02.14`` at L0, ``05.11`` above).

Auxiliary data and GIPPs (``GIP_<6>``, ``AUX_UT1UTC``, ``AUX_ECMWFD``, ``AUX_CAMS..``): Earth Explorer folders
``S2B_OPER_GIP_PROBAS_MPC__<creation>_V<start>_<stop>_B00`` holding ``<name>.HDR`` (validity, the header
ingestion verifies against) and ``<name>.DBL``; satellite ``_`` allowed (``S2__OPER_AUX_UT1UTC_PDMC_...``);
stop ``None``: ``2100-01-01T00:00:00`` as GIPPs write it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import quoteattr

from shared.products.factory_common import ProductRequest, Writer
from shared.products.naming import parse_utc
from shared.products.s2 import pdi_metadata_name
from shared.products.synthetic import (
    _MGRS_BANDS,
    _ORBITS,
    _compact,
    _File,
    _later,
    _OrbitState,
    _payload,
    _render,
    _Request,
    _scene,
    _time,
    _write,
)

_SITE = re.compile(r"[A-Z0-9_]{4}")
_BASELINE = re.compile(r"\d{2}\.\d{2}")
_TILE = re.compile(r"T?(\d{2}[A-Z]{3})")
_DATASTRIP_RE = re.compile(
    r"S2[A-D]_[A-Z0-9]{4}_MSI_(?:L0_|L1A|L1B|L1C)_DS_(?P<site>[A-Z0-9_]{4})_(?P<creation>\d{8}T\d{6})"
    r"_S\d{8}T\d{6}_N(?P<baseline>\d{2}\.\d{2})"
)
_FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)
_MAX_ALONG_KM = 3000.0
_GROUND_SPEED_KM_S = 6.7
_SWATH_KM = 290.0
_DETECTOR_KM = 25.0  # across track, one of the 12 staggered detectors
_GRANULE_S = 3.608
_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
_NSSDC = {"A": "2015-028A", "B": "2017-013A", "C": "2024-157A", "D": "0000-000A"}
_LEVEL = {"L0_": ("Level-0", "L0", "02.14"), "L1B": ("Level-1B", "L1B", "05.11"), "L1C": ("Level-1C", "L1C", "05.11")}

# -- common pieces -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Item:
    """What every file of one PDI says about it."""

    req: _Request
    request: ProductRequest
    level: str  # L0_, L1B, L1C
    unit: str  # DS, GR, TL
    site: str
    baseline: str
    orbit: _OrbitState
    creation: datetime
    datatake_id: str
    ring: list[tuple[float, float]]  # closed (lat, lon) ring
    ascending: bool

    @property
    def stop(self) -> datetime:
        return self.request.stop or self.request.start

    @property
    def sat(self) -> str:
        return self.request.satellite


def _option(request: ProductRequest, key: str, pattern: re.Pattern[str], default: str) -> str:
    value = str(request.options.get(key) or default)
    m = pattern.fullmatch(value)
    if m is None:
        raise ValueError(f"{request.product_type}: option {key}={value!r} does not match {pattern.pattern}")
    return m[m.lastindex or 0]


def _ring(
    request: ProductRequest, req: _Request, along_km: float, across_km: float
) -> tuple[list[tuple[float, float]], bool]:
    """The closed (lat, lon) ring of the product: the ``footprint`` asked for, else the orbit model's."""
    # A long strip is drawn as its first 3000 km: the model's straight segment must stay off the poles.
    corners, ascending = _scene(req, min(along_km, _MAX_ALONG_KM), across_km)
    if request.footprint:
        ring = [(round(lat, 6), round(lon, 6)) for lon, lat in request.footprint]
        if ring[0] != ring[-1]:
            ring.append(ring[0])
        return ring, ascending
    return [*corners, corners[0]], ascending


def _item(request: ProductRequest, level: str, unit: str, along_km: float, across_km: float) -> _Item:
    if request.satellite not in ("A", "B", "C", "D"):
        raise ValueError(f"{request.product_type}: satellite must be A, B, C or D, not {request.satellite!r}")
    if request.stop is not None and request.stop < request.start:
        raise ValueError(f"{request.product_type}: stop before start")
    req = request.synthetic()
    orbit = _ORBITS[("S2", request.satellite)].at(req.start)
    # Granules and tiles are made with their datastrip: same site, creation and baseline in their names.
    parent = _DATASTRIP_RE.fullmatch(str(request.options.get("datastrip") or "").removesuffix(".SAFE"))
    baseline = _option(request, "baseline", _BASELINE, parent["baseline"] if parent else _LEVEL[level][2])
    site = _option(request, "site", _SITE, parent["site"] if parent else "REFS")
    ring, ascending = _ring(request, req, along_km, across_km)
    # The datatake starts a little after the ascending node of its orbit: one id for a DS and its granules.
    datatake_start = orbit.anx + timedelta(minutes=50)
    datatake_id = f"GS2{request.satellite}_{_compact(datatake_start)}_{orbit.absolute:06d}_N{baseline}"
    creation = parse_utc(parent["creation"]) if parent else _later(req, "creation", req.stop, 1800, 3600)
    return _Item(req, request, level, unit, site, baseline, orbit, creation, datatake_id, ring, ascending)


def _pdi_name(item: _Item, fields: str) -> str:
    head = f"S2{item.sat}_OPER_MSI_{item.level}_{item.unit}_{item.site}_{_compact(item.creation)}"
    return f"{head}{fields}_N{item.baseline}"


def _datastrip_name(item: _Item) -> str:
    """The datastrip a granule or tile belongs to: the ``datastrip`` option, else one made for its window."""
    given = item.request.options.get("datastrip")
    if given:
        return str(given).removesuffix(".SAFE")
    return (
        f"S2{item.sat}_OPER_MSI_{item.level}_DS_{item.site}_{_compact(item.creation)}"
        f"_S{_compact(item.req.start)}_N{item.baseline}"
    )


def _digest(algorithm: str, data: bytes) -> str:
    if algorithm == "MD5":
        return hashlib.md5(data, usedforsecurity=False).hexdigest()
    return hashlib.sha3_256(data).hexdigest().upper()  # as recent S2 manifests write it


def _units(files: list[_File]) -> str:
    return "\n".join(
        f"      <xfdu:contentUnit ID={quoteattr(f.ident + '_Unit')} unitType={quoteattr(f.unit_type)}>\n"
        f"        <dataObjectPointer dataObjectID={quoteattr(f.ident)}/>\n"
        f"      </xfdu:contentUnit>"
        for f in files
    )


def _objects(files: list[_File], algorithm: str) -> str:
    return "\n".join(
        f"    <dataObject ID={quoteattr(f.ident)}{' repID=' + quoteattr(f.rep_id) if f.rep_id else ''}>\n"
        f'      <byteStream mimeType={quoteattr(f.mime)} size="{len(f.data)}">\n'
        f'        <fileLocation href={quoteattr("./" + f.path)} locatorType="URL"/>\n'
        f'        <checksum checksumName="{algorithm}">{_digest(algorithm, f.data)}</checksum>\n'
        f"      </byteStream>\n"
        f"    </dataObject>"
        for f in files
    )


def _inventory(item: _Item, name: str, files: list[_File], *, parent: str | None, detector: str | None) -> _File:
    ring = item.ring
    data = _render(
        "s2_pdi_inventory.xml",
        [],
        xml={
            "parent": f"  <Parent_ID>{parent}</Parent_ID>\n" if parent else "",
            "detector": f"  <Detector>{detector}</Detector>\n" if detector else "",
            "points": "\n".join(
                f"      <Geo_Pnt>\n        <LATITUDE>{lat}</LATITUDE>\n        <LONGITUDE>{lon}</LONGITUDE>\n"
                "      </Geo_Pnt>"
                for lat, lon in ring
            ),
        },
        name=name,
        datatake_id=item.datatake_id,
        baseline=item.baseline,
        source=f"{item.level.rstrip('_')}_Processor",
        processor_version="07.00.00",
        generation=_time(item.creation),
        start=_time(item.req.start),
        stop=_time(item.stop),
        orbit=f"{item.orbit.absolute:06d}",
        point_count=len(ring),
        data_size=sum(len(f.data) for f in files),
        product_type=item.request.product_type,
        site=item.site,
        satellite=item.sat,
        ascending="true" if item.ascending else "false",
        cloud_cover=f"{item.req.rng('cloud').uniform(0, 100):.1f}",
    )
    return _File("Inventory_Metadata.xml", data, "Inventory_Metadata", "Inventory_Metadata_Schema", "text/xml",
                 "Metadata Unit")  # fmt: skip


def _finish(
    item: _Item, name: str, metadata: _File, payload: list[_File], parent: str | None, detector: str | None
) -> Path:
    """Inventory, manifest (listing every file: metadata first, the inventory after it) and the folder."""
    files = [metadata, *payload]
    files.append(_inventory(item, name, files, parent=parent, detector=detector))
    level_name = _LEVEL[item.level][0]
    kind = {"DS": "Datastrip", "GR": "Granule", "TL": "Tile"}[item.unit]
    manifest = _render(
        "s2_pdi_manifest.xml",
        [],
        xml={"units": _units(files), "objects": _objects(files, "MD5" if item.level == "L0_" else "SHA3-256")},
        version=f"esa/safe/sentinel-1.0/sentinel-2/msi/archive_{item.level.rstrip('_').lower()}_{kind.lower()}",
        text_info=f"SENTINEL-2 MSI {level_name}_{kind} PDI",
        unit_type=f"Product_{level_name}",
        nssdc=_NSSDC[item.sat],
        satellite=item.sat,
        archiving_name=f"Archiving of PDI {level_name} {kind} Product",
        archiving_start=_time(item.creation + timedelta(minutes=5), zulu=True),
        role=f"PDI {level_name} {kind} Product",
        processing_name=f"{level_name[6:]} Processing of Raw Data",
        processing_start=_time(item.creation, zulu=True),
        site=item.site,
        start=_time(item.req.start, zulu=True),
        pass_direction="ascending" if item.ascending else "descending",
        datatake_id=item.datatake_id,
        relative_orbit=item.orbit.relative,
        information_id=f"S2_{level_name}_{kind}_Information",
        metadata_id=metadata.ident,
        schema_id=metadata.rep_id,
    )
    return _write(item.req, name, files, "manifest.safe", manifest)


def _metadata(item: _Item, name: str, template: str, kind: str, **values: object) -> _File:
    level_name = _LEVEL[item.level][0]
    common = {"root": f"{level_name}_{kind}_ID", "schema": level_name, "name": name, "site": item.site,
              "generation": _time(item.creation, zulu=True)}  # fmt: skip
    data = _render(template, [], None, **common, **values)
    ident = f"S2_{level_name}_{kind}_Metadata"
    return _File(pdi_metadata_name(name), data, ident, f"S2_{level_name}_{kind}_Schema", "text/xml", "Metadata Unit")


def _band_files(item: _Item, name: str, extension: str) -> list[_File]:
    stem = re.sub(r"_N\d{2}\.\d{2}$", "", name)
    files = []
    for band in _BANDS:
        path = f"IMG_DATA/{stem}_{band}.{extension}"
        size = item.req.payload_size if band in ("B02", "B03", "B04", "B08") else max(64, item.req.payload_size // 4)
        data = _payload(item.req, path, size)
        files.append(
            _File(path, data, f"IMG_DATA_Band_{band}", "", "application/octet-stream", "Measurement Data Unit")
        )
    return files


# -- writers -------------------------------------------------------------------------------------------

_PDI_RE = re.compile(r"MSI_(?P<level>L0_|L1B|L1C)_(?P<unit>DS|GR|TL)")


def _parts(request: ProductRequest) -> tuple[str, str]:
    m = _PDI_RE.fullmatch(request.product_type)
    if m is None:
        raise ValueError(f"not an S2 PDI type: {request.product_type!r}")
    return m["level"], m["unit"]


def _write_datastrip(request: ProductRequest) -> Path:
    level, unit = _parts(request)
    duration = ((request.stop or request.start) - request.start).total_seconds()
    item = _item(request, level, unit, max(20.0, duration * _GROUND_SPEED_KM_S), _SWATH_KM)
    name = _pdi_name(item, f"_S{_compact(item.req.start)}")
    metadata = _metadata(
        item,
        name,
        "s2_pdi_datastrip_mtd.xml",
        "DataStrip",
        datatake_id=item.datatake_id,
        datatake_start=_time(item.orbit.anx + timedelta(minutes=50), zulu=True, digits=3),
        relative_orbit=item.orbit.relative,
        pass_direction="ASCENDING" if item.ascending else "DESCENDING",
        satellite=item.sat,
        start=_time(item.req.start, zulu=True),
        stop=_time(item.stop, zulu=True),
        baseline=item.baseline,
        orbit=item.orbit.absolute,
        payload=_payload(item.req, "datastrip", 32).hex(),
    )
    stem = re.sub(r"_N\d{2}\.\d{2}$", "", name)
    size = max(64, item.req.payload_size // 4)
    payload = [
        _File(path, _payload(item.req, path, size), f"ANC{i}_Data", "", "application/octet-stream", "Data Unit")
        for i, path in enumerate((f"ANC_DATA/{stem}_SAD_RAW.bin", f"ANC_DATA/{stem}_GPS_RAW.bin"), start=1)
    ]
    return _finish(item, name, metadata, payload, None, None)


def _detector(request: ProductRequest) -> int:
    value = request.options.get("detector", 1)
    try:
        detector = int(str(value))
    except ValueError:
        detector = 0
    if not 1 <= detector <= 12:
        raise ValueError(f"{request.product_type}: option detector={value!r} is not 1..12")
    return detector


def _write_granule(request: ProductRequest) -> Path:
    level, unit = _parts(request)
    detector = f"{_detector(request):02d}"
    duration = ((request.stop or request.start) - request.start).total_seconds()
    item = _item(request, level, unit, max(_GRANULE_S, duration) * _GROUND_SPEED_KM_S, _DETECTOR_KM)
    name = _pdi_name(item, f"_S{_compact(item.req.start)}_D{detector}")
    datastrip = _datastrip_name(item)
    height = item.req.rng("height")
    metadata = _metadata(
        item,
        name,
        "s2_pdi_granule_mtd.xml",
        "Granule",
        detector=detector,
        datastrip=datastrip,
        start=_time(item.req.start, zulu=True),
        # L0 granules write "lat lon height" triplets (reference §3.4).
        coordinates=" ".join(f"{lat} {lon} {height.uniform(0, 300):.3f}" for lat, lon in item.ring),
        cloud_cover=f"{item.req.rng('cloud').uniform(0, 100):.1f}",
    )
    payload = _band_files(item, name, "bin" if level == "L0_" else "jp2")
    return _finish(item, name, metadata, payload, datastrip, detector)


def _tile_id(item: _Item) -> str:
    given = item.request.options.get("tile")
    if given:
        return _option(item.request, "tile", _TILE, str(given))
    lat = sum(p[0] for p in item.ring[:-1]) / max(1, len(item.ring) - 1)
    lon = item.ring[0][1]
    zone = int((lon + 180.0) // 6) % 60 + 1
    rng = item.req.rng("tile")
    return (
        f"{zone:02d}{_MGRS_BANDS[min(19, max(0, int((lat + 80) // 8)))]}"
        f"{rng.choice('ABCDEFGHJKLMNPQRSTUVWXYZ')}{rng.choice('ABCDEFGHJKLMNPQRSTUV')}"
    )


def _write_tile(request: ProductRequest) -> Path:
    level, unit = _parts(request)
    item = _item(request, level, unit, 109.8, 109.8)
    tile = _tile_id(item)
    name = _pdi_name(item, f"_A{item.orbit.absolute:06d}_T{tile}")
    datastrip = _datastrip_name(item)
    metadata = _metadata(
        item,
        name,
        "s2_pdi_tile_mtd.xml",
        "Tile",
        datastrip=datastrip,
        start=_time(item.req.start, zulu=True),
        zone=f"{tile[:2]}{'N' if tile[2] >= 'N' else 'S'}",
        cloud_cover=f"{item.req.rng('cloud').uniform(0, 100):.1f}",
    )
    payload = _band_files(item, name, "jp2")
    return _finish(item, name, metadata, payload, datastrip, None)


_AUX_SITES = {"AUX_UT1UTC": "PDMC", "AUX_ECMWFD": "ADG_"}


def _write_aux(request: ProductRequest) -> Path:
    if request.satellite not in ("A", "B", "C", "D", "_"):
        raise ValueError(f"{request.product_type}: satellite must be A, B, C, D or _, not {request.satellite!r}")
    stop = request.stop or _FAR_FUTURE
    if stop < request.start:
        raise ValueError(f"{request.product_type}: stop before start")
    req = request.synthetic()
    site = _option(request, "site", _SITE, _AUX_SITES.get(request.product_type, "MPC_"))
    # Auxiliary data are made before they become valid.
    creation = req.start - timedelta(seconds=3600 + req.rng("creation").randrange(86400))
    suffix = "_B00" if request.product_type.startswith("GIP_") else ""
    name = (
        f"S2{request.satellite}_OPER_{request.product_type}_{site}_{_compact(creation)}"
        f"_V{_compact(req.start)}_{_compact(stop)}{suffix}"
    )
    block = _File(f"{name}.DBL", _payload(req, f"{name}.DBL", request.payload_size), "", "", "", "")
    header = _render(
        "s2_eef_header.xml",
        [],
        name=name,
        description=request.product_type.replace("_", " "),
        mission="Sentinel-2" if request.satellite == "_" else f"Sentinel-2{request.satellite}",
        product_type=request.product_type,
        start=_time(req.start, digits=0),
        stop=_time(stop, digits=0),
        site=site,
        creation=_time(creation, digits=0),
    )
    return _write(req, name, [block], f"{name}.HDR", header)


WRITERS: tuple[tuple[re.Pattern[str], Writer], ...] = (
    (re.compile(r"MSI_(L0_|L1B|L1C)_DS"), _write_datastrip),
    (re.compile(r"MSI_(L0_|L1B)_GR"), _write_granule),
    (re.compile(r"MSI_L1C_TL"), _write_tile),
    (re.compile(r"GIP_[0-9A-Z_]{6}|AUX_(UT1UTC|ECMWFD|CAMSFO|CAMSAN|CAMSRE)"), _write_aux),
)
