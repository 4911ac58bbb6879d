"""Product-factory writers for Sentinel-1 (see :mod:`shared.products.factory`).

Every writer reuses the synthetic-product machinery of :mod:`shared.products.synthetic` (orbit model, names
with the CRC-like suffix, deterministic payloads, manifests listing every file with its size and MD5) and
the ``s1_*`` templates. Same request, same bytes: nothing reads the clock.

Types and their ``options``:

* ``SESSION``: an EDRS session folder ``DCS_<station>_<session id>`` with ``..._ch<c>_DSIB.xml`` and DSDB
  chunks ``..._ch<c>_DSDB_<nnnnn>.raw`` (``payload_size`` bytes each). ``session_id`` (default
  ``L<start><9 digits from the seed>``), ``station`` ("02"), ``chunks`` per channel (3), ``channels`` (1 or
  2, default 2). Needs a ``stop`` (the downlink end).
* ``(IW|EW|WV|S[1-6]|RF|EN)_RAW__0S``: ``slicing`` "slice" (default; ``slice_number``, ``total_slices``) or
  "segment" (``consolidation`` FULL default, BEGIN, CONTINUE or END: written as productConsolidation FULL /
  PARTIAL and productSensingConsolidation); ``datatake`` (int); ``polarisation`` ("DV" default, "SV",
  "DH", "SH", or one channel "VV", "VH", "HH", "HV": segments are delivered per polarisation).
* ``(IW|EW|WV|S[1-6])_RAW__0[ACN]``: the same ``datatake``/``polarisation`` options (``consolidation``
  FULL default).
* ``(IW|EW|WV|S[1-6]|EN)_(SLC_|GRDH|GRDM)_1[SA]`` and ``(IW|EW|WV|S[1-6])_OCN__2[SA]``: ``datatake``,
  ``polarisation``, ``slice_number``, ``total_slices``; ``input`` names the product it was made from.
* SAFE AUX (``AUX_PP1`` ... ``AUX_ECE``): ``S1A_AUX_CAL_V<start>_G<generation>.SAFE``; the validity has no
  stop in these names and manifests (open-ended whatever ``stop`` is). Satellite ``_`` (mission-wide) for
  AUX_WND, AUX_WAV, AUX_ICE.
* Orbit files (``MPL_ORBPRE``, ``MPL_ORBSCT``, ``AUX_RESORB``, ``AUX_POEORB``, ``AUX_PREORB``): Earth
  Explorer ``.EOF`` with about ``payload_size`` / 450 state vectors (never closer than the real files' step).
  ``stop`` None: MPL_ORBSCT is open-ended (``99999999T999999`` as the real ones), the others take their
  usual span (7 days, 3 h 20 min, 26 h, 2 days). ``AUX_OBMEMC``: the on-board memory configuration XML.

Validities of auxiliary files are whole seconds (as their names and headers write them).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

from shared.products.factory_common import ProductRequest, Writer
from shared.products.naming import recognise
from shared.products.synthetic import (
    _NSSDC,
    _ORBITS,
    _S1_GROUND_SPEED_KM_S,
    _S1_SWATHS,
    _S1_WIDTH_KM,
    _compact,
    _data_file,
    _File,
    _ident,
    _later,
    _metadata_file,
    _payload,
    _render,
    _Request,
    _s1_name,
    _s1_stem,
    _s1_values,
    _S1Scene,
    _scene,
    _time,
    _write,
)

_UNITS = ("A", "B", "C", "D")
_POLARISATIONS = {
    "SH": ("HH",), "SV": ("VV",), "DH": ("HH", "HV"), "DV": ("VV", "VH"),
    "HH": ("HH",), "HV": ("HV",), "VV": ("VV",), "VH": ("VH",),
}  # fmt: skip
_SWATHS = {**_S1_SWATHS, "WV": ("WV1", "WV2")}
_WIDTH_KM = {**_S1_WIDTH_KM, "WV": 20.0, "EN": 80.0, "RF": 80.0}
_SEGMENT_POSITIONS = ("FULL", "BEGIN", "CONTINUE", "END")


# -- common ----------------------------------------------------------------------------------------------


def _option(request: ProductRequest, key: str, default: object) -> object:
    return request.options.get(key, default)


def _int_option(request: ProductRequest, key: str, default: int) -> int:
    value = _option(request, key, default)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"option {key!r} must be an integer, not {value!r}")
    return int(value)


def _unit(request: ProductRequest) -> str:
    if request.satellite not in _UNITS:
        raise ValueError(f"{request.product_type} needs a satellite unit A-D, not {request.satellite!r}")
    return request.satellite


def _level_request(request: ProductRequest) -> _Request:
    if request.stop is None:
        raise ValueError(f"{request.product_type} needs a sensing stop")
    if request.stop < request.start:
        raise ValueError("stop before start")
    return request.synthetic(satellite=_unit(request))


def _level_scene(request: ProductRequest, req: _Request, mode: str, kind: str) -> _S1Scene:
    orbit = _ORBITS[("S1", req.satellite)].at(req.start)
    pol_code = str(_option(request, "polarisation", "DV")).upper()
    if pol_code not in _POLARISATIONS:
        raise ValueError(f"polarisation must be one of {', '.join(_POLARISATIONS)}, not {pol_code!r}")
    if "datatake" in request.options:
        datatake = _int_option(request, "datatake", 0)
        if not 0 <= datatake <= 0xFFFFFF:
            raise ValueError(f"datatake {datatake} does not fit 24 bits")
    else:  # as synthetic.py derives it: about 8 per orbit
        datatake = (orbit.absolute * 8 + req.rng("datatake").randrange(8)) % 0xFFFFFF
    along = req.duration.total_seconds() * _S1_GROUND_SPEED_KM_S
    corners, ascending = _scene(req, along, _WIDTH_KM.get(mode, 80.0))
    if request.footprint is not None:
        ring = [(round(lat, 6), round(lon, 6)) for lon, lat in request.footprint]
        if len(ring) > 1 and ring[0] == ring[-1]:
            ring = ring[:-1]
        if not ring:
            raise ValueError("footprint: an empty ring")
        corners = ring
    return _S1Scene(mode, kind, orbit, pol_code, _POLARISATIONS[pol_code], datatake, corners, ascending)


def _consolidation(request: ProductRequest) -> tuple[str, str | None]:
    """(productConsolidation, productSensingConsolidation) from the ``consolidation`` option."""
    position = str(_option(request, "consolidation", "FULL")).upper()
    if position not in _SEGMENT_POSITIONS:
        raise ValueError(f"consolidation must be one of {', '.join(_SEGMENT_POSITIONS)}, not {position!r}")
    return ("FULL", "FULL") if position == "FULL" else ("PARTIAL", position)


def _slice_numbers(request: ProductRequest, values: dict[str, object]) -> tuple[int, int]:
    number = _int_option(request, "slice_number", int(str(values["slice_number"])))
    total = _int_option(request, "total_slices", max(number, int(str(values["total_slices"]))))
    if not 1 <= number <= total:
        raise ValueError(f"slice_number {number} is not within 1..total_slices {total}")
    return number, total


def _elements(prefix: str, pairs: list[tuple[str, object]], indent: int = 12) -> str:
    pad = " " * indent
    return "\n".join(f"{pad}<{prefix}{tag}>{escape(str(value))}</{prefix}{tag}>" for tag, value in pairs)


def _version_mode(s: _S1Scene) -> str:
    mode = "sm" if re.fullmatch(r"S[1-6]", s.mode) else s.mode.lower()
    return f"{mode}{'dp' if len(s.pols) > 1 else 'sp'}"


# -- EDRS sessions ---------------------------------------------------------------------------------------


def _write_session(request: ProductRequest) -> Path:
    if request.stop is None or request.stop < request.start:
        raise ValueError("an EDRS session needs a downlink stop after its start")
    digits = int.from_bytes(hashlib.sha256(f"session:{request.seed}".encode()).digest()[:8], "big") % 10**9
    session_id = str(_option(request, "session_id", f"L{_compact(request.start).replace('T', '')}{digits:09d}"))
    station = str(_option(request, "station", "02"))
    chunks = _int_option(request, "chunks", 3)
    channels = _int_option(request, "channels", 2)
    if channels not in (1, 2) or chunks < 0 or not re.fullmatch(r"\d{2}", station):
        raise ValueError("channels must be 1 or 2, chunks >= 0 and station two digits")
    folder = f"DCS_{station}_{session_id}"
    root = request.directory / folder
    if root.exists():
        raise FileExistsError(f"{root} already exists")
    # A session is delivered as objects, one product each: no manifest. Check the names before writing.
    recognise(folder)
    root.mkdir(parents=True)
    finished = request.stop - timedelta(seconds=min(27.0, (request.stop - request.start).total_seconds()))
    for channel in range(1, channels + 1):
        names = [f"{folder}_ch{channel}_DSDB_{n:05d}.raw" for n in range(1, chunks + 1)]
        for name in names:
            recognise(name)
            (root / name).write_bytes(_payload_of(request, name))
        dsib = f"{folder}_ch{channel}_DSIB.xml"
        recognise(dsib)
        document = _render(
            "s1_dsib.xml",
            [],
            session_id=session_id,
            start=_time(request.start, zulu=True),
            stop=_time(request.stop, zulu=True),
            created=_time(request.start, zulu=True),
            finished=_time(finished, zulu=True),
            data_size=request.payload_size * chunks,
            xml={"dsdb_names": "\n".join(f"        <dsdb_name>{escape(n)}</dsdb_name>" for n in names)},
        )
        (root / dsib).write_bytes(document)
    return root


def _payload_of(request: ProductRequest, path: str) -> bytes:
    return hashlib.shake_256(f"{request.seed}:{path}".encode()).digest(request.payload_size)


# -- L0: slices, segments, annotation/calibration/noise ----------------------------------------------------

_L0_RE = re.compile(r"(?P<mode>IW|EW|WV|S[1-6]|RF|EN)_RAW__0(?P<cls>[SACN])")
_L0_CLASS = {
    "S": ("s", "SAR Standard L0 product", "standard"),
    "A": ("a", "SAR L0 Annotations product", "annotations"),
    "C": ("c", "SAR Calibration L0 product", "calibration"),
    "N": ("n", "SAR Noise L0 product", "noise"),
}


def _write_level0(request: ProductRequest) -> Path:
    m = _L0_RE.fullmatch(request.product_type)
    if m is None:
        raise ValueError(f"not an S1 L0 type: {request.product_type!r}")
    mode, cls = m["mode"], m["cls"]
    req = _level_request(request)
    s = _level_scene(request, req, mode, "RAW")
    values = _s1_values(req, s)
    letter, description, version_kind = _L0_CLASS[cls]
    slicing = str(_option(request, "slicing", "slice")).lower()
    if slicing not in ("slice", "segment"):
        raise ValueError(f"slicing must be 'slice' or 'segment', not {slicing!r}")
    info: list[tuple[str, object]] = [("productClass", cls)]
    if cls == "S" and slicing == "slice":
        number, total = _slice_numbers(request, values)
        info += [
            ("productClassDescription", "SAR Slice L0 product"),
            ("productConsolidation", "SLICE"),
            ("instrumentConfigurationID", values["instrument_configuration"]),
            ("missionDataTakeID", s.datatake),
            ("circulationFlag", 13),
            ("sliceProductFlag", "TRUE"),
            ("sliceNumber", number),
            ("totalSlices", total),
            ("theoreticalSliceLength", 25),
            ("sliceOverlap", 7.4),
        ]
    else:
        consolidation, sensing = _consolidation(request)
        info += [
            ("productClassDescription", description),
            ("productConsolidation", consolidation),
            *([("productSensingConsolidation", sensing)] if cls == "S" and sensing else []),
            ("instrumentConfigurationID", values["instrument_configuration"]),
            ("missionDataTakeID", s.datatake),
            ("circulationFlag", 13),
            ("sliceProductFlag", "FALSE"),
        ]
    files: list[_File] = []
    for i, pol in enumerate(s.pols, start=1):
        stem = _s1_stem(req, s, s.mode, f"raw-{letter}", pol)
        parts: tuple[tuple[str, str, str, int], ...] = (
            (".dat", f"measurementData{i}", "measurementSchema", req.payload_size),
        )
        if cls == "S":
            parts = (
                (
                    "-annot.dat",
                    f"measurementAnnotData{i}",
                    "measurementAnnotationSchema",
                    max(64, req.payload_size // 8),
                ),
                *parts,
                ("-index.dat", f"measurementIndexData{i}", "measurementIndexAnnotationSchema", 64),
            )
        for suffix, ident, rep, size in parts:
            path = stem + suffix
            unit = "Measurement Data Unit" if suffix == ".dat" else "Metadata Unit"
            files.append(_File(path, _payload(req, path, size), ident, rep, "application/octet-stream", unit))
    polarisations = "\n".join(
        f'            <transmitterReceiverPolarisation dataObjectID="measurementData{i}">{p}'
        "</transmitterReceiverPolarisation>"
        for i, p in enumerate(s.pols, start=1)
    )
    ring = [*s.corners, s.corners[0]]  # L0 manifests close the ring (reference §3.4)
    manifest = _render(
        "s1_l0_product_manifest.xml",
        files,
        **{**values, "product_class": cls},
        version=f"esa/safe/sentinel-1.0/sentinel-1/sar/level-0/{version_kind}/{_version_mode(s)}",
        text_info="Sentinel-1 Level 0 Package",
        processing_name=f"Generation of Sentinel-1 {description}",
        xml={"product_information": _elements("", info) + "\n" + polarisations},
        start=_time(req.start, zulu=True),
        stop=_time(req.stop, zulu=True),
        coordinates=" ".join(f"{lat:.4f},{lon:.4f}" for lat, lon in ring),
    )
    return _write(req, _s1_name(req, s, request.product_type), files, "manifest.safe", manifest)


# -- L1 (SLC, GRD) and L2 (OCN), standard and annotation-only ------------------------------------------------

_L12_RE = re.compile(
    r"(?P<mode>IW|EW|WV|S[1-6]|EN)_(?P<kind>SLC_|GRDH|GRDM)_1(?P<cls>[SA])|(?P<mode2>IW|EW|WV|S[1-6])_OCN__2(?P<cls2>[SA])"
)


def _write_level12(request: ProductRequest) -> Path:
    m = _L12_RE.fullmatch(request.product_type)
    if m is None:
        raise ValueError(f"not an S1 L1/L2 type: {request.product_type!r}")
    ocn = m["mode2"] is not None
    mode = m["mode2"] if ocn else m["mode"]
    cls = m["cls2"] if ocn else m["cls"]
    kind = "OCN" if ocn else m["kind"].rstrip("_")[:3]
    level = "2" if ocn else "1"
    req = _level_request(request)
    s = _level_scene(request, req, mode, kind)
    values = _s1_values(req, s)
    number, total = _slice_numbers(request, values)
    individual = ocn and mode == "WV"  # WV OCN products gather the vignettes of a datatake
    swaths = _SWATHS.get(mode, (mode,)) if kind in ("SLC", "OCN") or mode == "WV" else (mode,)
    files: list[_File] = []
    index = 0
    for pol in s.pols:
        for swath in swaths:
            index += 1
            if ocn and cls == "S":  # OCN measurements only (NetCDF)
                stem = f"{_s1_stem(req, s, swath, 'ocn', pol)}-{index:03d}"
                path = f"measurement/{stem}.nc"
                files.append(_data_file(req, path, _ident(stem), "s1Level1MeasurementSchema", req.payload_size))
                continue
            # Annotation-only products (1A, 2A) carry the L1 annotations of their (SLC for OCN) swaths.
            file_kind = "slc" if ocn else s.kind.lower()
            stem = f"{_s1_stem(req, s, swath, file_kind, pol)}-{index:03d}"
            for path, prefix, rep in (
                (f"annotation/{stem}.xml", "product", "s1Level1ProductSchema"),
                (f"annotation/calibration/noise-{stem}.xml", "noise", "s1Level1NoiseSchema"),
                (f"annotation/calibration/calibration-{stem}.xml", "calibration", "s1Level1CalibrationSchema"),
            ):
                files.append(_metadata_file(req, path, prefix + _ident(stem), rep, prefix))
            if cls == "S":
                path = f"measurement/{stem}.tiff"
                files.append(_data_file(req, path, _ident(stem), "s1Level1MeasurementSchema", req.payload_size))
    files += [
        _metadata_file(req, "preview/map-overlay.kml", "mapoverlay", "s1Level1MapOverlaySchema", "kml"),
        _metadata_file(req, "preview/product-preview.html", "productpreview", "s1Level1ProductPreviewSchema", "html"),
    ]
    if not ocn:
        size = max(64, req.payload_size // 8)
        files.append(_data_file(req, "preview/quick-look.png", "quicklook", "s1Level1QuickLookSchema", size))
    ns = f"s1sarl{level}:"
    what = {"S": "Standard", "A": "Annotation"}[cls]
    info: list[tuple[str, object]] = [
        ("instrumentConfigurationID", values["instrument_configuration"]),
        ("missionDataTakeID", s.datatake),
    ]
    info += [("transmitterReceiverPolarisation", p) for p in s.pols]
    info += [
        ("productClass", cls),
        ("productClassDescription", f"SAR {what} L{level} Product"),
        ("productComposition", "Individual" if individual else "Slice"),
        ("productType", kind),
        ("productTimelinessCategory", "Fast-24h" if ocn else "NRT-3h"),
        ("sliceProductFlag", "false" if individual else "true"),
    ]
    if not individual:
        info += [("segmentStartTime", _time(req.start)), ("sliceNumber", number), ("totalSlices", total)]
    instrument_mode = "\n".join(
        [
            f"                <{ns}instrumentMode>",
            f"                  <{ns}mode>{s.mode}</{ns}mode>",
            *(f"                  <{ns}swath>{w}</{ns}swath>" for w in swaths),
            f"                </{ns}instrumentMode>",
        ]
    )
    # A given footprint as given (lat,lon); the model's clockwise, as L1 manifests list it (reference §3.4).
    corners = s.corners if request.footprint is not None else list(reversed(s.corners))
    input_type = f"{mode}_RAW__0{cls}"
    default_input = _s1_name(req, s, input_type, crc="0000")
    manifest = _render(
        "s1_l12_product_manifest.xml",
        files,
        **{**values, "product_class": cls},
        version=f"esa/safe/sentinel-1.0/sentinel-1/sar/level-{level}/{kind.lower()}/{what.lower()}/{_version_mode(s)}",
        text_info=f"Sentinel-1 {mode} Level-{level} {kind} Product",
        processing_name=f"{kind} Processing" if ocn else f"{kind} Post Processing",
        input_name=str(_option(request, "input", default_input)),
        input_role="Level-0 Product",
        xml={
            "instrument_mode": instrument_mode,
            "product_information": f"          <{ns}standAloneProductInformation>\n"
            + _elements(ns, info)
            + f"\n          </{ns}standAloneProductInformation>",
        },
        start=_time(req.start),
        stop=_time(req.stop),
        coordinates=" ".join(f"{lat:.6f},{lon:.6f}" for lat, lon in corners),
    )
    return _write(req, _s1_name(req, s, request.product_type), files, "manifest.safe", manifest)


# -- auxiliary SAFE products --------------------------------------------------------------------------

# type -> (mission-wide allowed, data file extension, description)
_AUX_SAFE = {
    "AUX_PP1": (False, "xml", "L1 Processor Parameters"),
    "AUX_PP2": (False, "xml", "L2 Processor Parameters"),
    "AUX_CAL": (False, "xml", "L1 Auxiliary Calibration Parameters"),
    "AUX_INS": (False, "xml", "Instrument Auxiliary Parameters"),
    "AUX_WND": (True, "nc", "L2 Auxiliary Wind Parameters"),
    "AUX_WAV": (True, "nc", "L2 Auxiliary Wave Parameters"),
    "AUX_ICE": (True, "nc", "L2 Auxiliary Sea Ice Parameters"),
    "AUX_ECE": (False, "xml", "Auxiliary Elevation Calibration Error"),
}


def _aux_start(request: ProductRequest) -> datetime:
    return request.start.astimezone(UTC).replace(microsecond=0)


def _aux_request(request: ProductRequest, satellite: str) -> _Request:
    start = _aux_start(request)
    return request.synthetic(start=start, stop=start, satellite=satellite)


def _write_aux_safe(request: ProductRequest) -> Path:
    aux_type = request.product_type
    mission_wide, extension, description = _AUX_SAFE[aux_type]
    satellite = request.satellite
    if satellite not in _UNITS and not (satellite == "_" and mission_wide):
        allowed = "A-D or _" if mission_wide else "A-D"
        raise ValueError(f"{aux_type} needs a satellite {allowed}, not {satellite!r}")
    req = _aux_request(request, satellite)
    start = req.start
    generation = start - timedelta(seconds=86400 + req.rng("generation").randrange(4 * 86400))
    name = f"S1{satellite}_{aux_type}_V{_compact(start)}_G{_compact(generation)}.SAFE"
    short = aux_type[4:].lower()
    unit = "" if satellite == "_" else satellite.lower()
    data_path = f"data/s1{unit}-aux-{short}.{extension}"
    if extension == "xml":
        data = _metadata_file(req, data_path, "auxData", "auxSchema", f"aux{short}")
        data = _File(data.path, data.data, data.ident, data.rep_id, data.mime, "Measurement Data Unit")
    else:
        data = _data_file(req, data_path, "auxData", "auxSchema", req.payload_size, "application/x-netcdf")
    number = "" if satellite == "_" else f"            <safe:number>{satellite}</safe:number>"
    manifest = _render(
        "s1_aux_manifest.xml",
        [data],
        version=f"esa/safe/sentinel-1.0/sentinel-1/auxiliary/sar/{short}",
        text_info=f"SENTINEL-1{satellite.strip('_')} {description}",
        processing_name=f"{aux_type} Generation",
        site="Copernicus Reference System",
        nssdc=_NSSDC.get(("S1", satellite), "2014-016A"),
        aux_type=aux_type,
        validity=_time(start),
        generation=_time(generation),
        instrument_configuration=6,
        schema=f"s1-aux-{short}.xsd",
        xml={"number": number},
    )
    return _write(req, name, [data], "manifest.safe", manifest)


# -- orbit files (Earth Explorer EOF) and AUX_OBMEMC ------------------------------------------------------

# type -> (file description, system, creator, creator version, default span when no stop is given; None:
# open-ended, state vector step in seconds of the real files)
_ORBIT_FILES: dict[str, tuple[str, str, str, str, timedelta | None, float]] = {
    "MPL_ORBPRE": ("FOS Predicted Orbit File", "FOS", "NAPEOS", "3.0", timedelta(days=7), 5927.0),
    "MPL_ORBSCT": ("FOS Orbit Scenario File", "FOS", "NAPEOS", "3.0", None, 5927.0),
    "AUX_RESORB": ("NRT POD Restituted Orbit File", "OPOD", "OPOD", "1.4.0", timedelta(hours=3, minutes=20), 10.0),
    "AUX_POEORB": ("Precise Orbit Ephemerides (POE) Orbit File", "OPOD", "OPOD", "1.4.0", timedelta(hours=26), 10.0),
    "AUX_PREORB": ("Predicted Orbit File", "OPOD", "OPOD", "1.4.0", timedelta(days=2), 10.0),
}
_EARTH_RADIUS_M, _ORBIT_ALTITUDE_M = 6378137.0, 693000.0
_OPEN_END_NAME, _OPEN_END_HEADER = "99999999T999999", "9999-99-99T99:99:99"


def _eof_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _osvs(request: ProductRequest, satellite: str, start: datetime, stop: datetime, step_s: float) -> list[str]:
    """State vectors of a circular sun-synchronous orbit, from the unit's orbit model (numbers agree)."""
    model = _ORBITS[("S1", satellite)]
    span = (stop - start).total_seconds()
    wanted = max(2, request.payload_size // 450)
    step = max(step_s, span / (wanted - 1)) if span > 0 else step_s
    count = max(1, min(wanted, int(span // step) + 1))
    radius = _EARTH_RADIUS_M + _ORBIT_ALTITUDE_M
    speed = 2 * math.pi * radius / model.period_s
    inclination = math.radians(98.18)
    out = []
    for i in range(count):
        t = start + timedelta(seconds=i * step)
        state = model.at(t)
        u = 2 * math.pi * (t - state.anx).total_seconds() / model.period_s  # argument of latitude
        node = -2 * math.pi * (t - model.epoch).total_seconds() / 86164.0905  # Earth turns under the orbit
        x = radius * (math.cos(u) * math.cos(node) - math.sin(u) * math.cos(inclination) * math.sin(node))
        y = radius * (math.cos(u) * math.sin(node) + math.sin(u) * math.cos(inclination) * math.cos(node))
        z = radius * math.sin(u) * math.sin(inclination)
        vx = speed * (-math.sin(u) * math.cos(node) - math.cos(u) * math.cos(inclination) * math.sin(node))
        vy = speed * (-math.sin(u) * math.sin(node) + math.cos(u) * math.cos(inclination) * math.cos(node))
        vz = speed * math.cos(u) * math.sin(inclination)
        out.append(
            "      <OSV>\n"
            f"        <TAI>TAI={_time(t + timedelta(seconds=37))}</TAI>\n"
            f"        <UTC>UTC={_time(t)}</UTC>\n"
            f"        <UT1>UT1={_time(t)}</UT1>\n"
            f"        <Absolute_Orbit>+{state.absolute}</Absolute_Orbit>\n"
            f'        <X unit="m">{x:+.3f}</X>\n'
            f'        <Y unit="m">{y:+.3f}</Y>\n'
            f'        <Z unit="m">{z:+.3f}</Z>\n'
            f'        <VX unit="m/s">{vx:+.6f}</VX>\n'
            f'        <VY unit="m/s">{vy:+.6f}</VY>\n'
            f'        <VZ unit="m/s">{vz:+.6f}</VZ>\n'
            "        <Quality>NOMINAL</Quality>\n"
            "      </OSV>"
        )
    return out


def _write_single(request: ProductRequest, name: str, data: bytes) -> Path:
    recognise(name)  # a writer producing an unrecognisable name is a bug: fail loudly
    target = request.directory / name
    if target.exists():
        raise FileExistsError(f"{target} already exists")
    request.directory.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


def _write_orbit(request: ProductRequest) -> Path:
    file_type = request.product_type
    description, system, creator, version, span, step_s = _ORBIT_FILES[file_type]
    satellite = _unit(request)
    req = _aux_request(request, satellite)
    start = req.start
    stop = None if request.stop is None else request.stop.astimezone(UTC).replace(microsecond=0)
    if stop is None and span is not None:
        stop = start + span
    if stop is not None and stop < start:
        raise ValueError("stop before start")
    creation = start - timedelta(seconds=3600 + req.rng("creation").randrange(3600))
    if file_type in ("AUX_RESORB", "AUX_POEORB"):  # made after the period they restitute
        creation = _later(req, "creation", stop or start, 1800, 3600)
    file_version = "0001"
    stop_name = _OPEN_END_NAME if stop is None else _compact(stop)
    if file_type.startswith("MPL_"):
        stem = f"S1{satellite}_OPER_{file_type}_{_compact(start)}_{stop_name}_{file_version}"
    else:
        stem = f"S1{satellite}_OPER_{file_type}_OPOD_{_compact(creation)}_V{_compact(start)}_{stop_name}"
    vectors_stop = stop if stop is not None else start + timedelta(days=7)
    osvs = _osvs(request, satellite, start, vectors_stop, step_s)
    document = _render(
        "s1_orbit_eof.xml",
        [],
        file_name=stem,
        description=description,
        satellite=satellite,
        file_type=file_type,
        validity_start=_eof_time(start),
        validity_stop=_OPEN_END_HEADER if stop is None else _eof_time(stop),
        file_version=file_version,
        system=system,
        creator=creator,
        creator_version=version,
        creation=_eof_time(creation),
        count=len(osvs),
        xml={"osvs": "\n".join(osvs)},
    )
    return _write_single(request, f"{stem}.EOF", document)


def _write_obmemc(request: ProductRequest) -> Path:
    satellite = _unit(request)
    req = _aux_request(request, satellite)
    start = req.start
    stop = None if request.stop is None else request.stop.astimezone(UTC).replace(microsecond=0)
    creation = start + timedelta(seconds=86400 + req.rng("creation").randrange(10 * 86400))
    stores = []
    for n in range(max(2, min(64, request.payload_size // 128))):
        kind = ("Emergency", "RFC", "NRT", "Standard")[min(3, n // 2)]
        stores.append(
            "<PacketStoreAssociation>\n"
            f"<PacketStoreId>PS-{n}</PacketStoreId>\n<VirtualChannelId>VC-{n % 16}</VirtualChannelId>\n"
            f"<PacketStoreType>{kind}</PacketStoreType>\n<Polarization>{'HV'[n % 2]}</Polarization>\n"
            "</PacketStoreAssociation>"
        )
    document = _render(
        "s1_obmemc.xml",
        [],
        creation=_eof_time(creation),
        validity_start=_eof_time(start),
        # The real files write the end of the mission; the catalog reads the validity from the name.
        validity_stop=_eof_time(stop) if stop is not None else "2099-12-31T23:59:59",
        xml={"associations": "\n".join(stores)},
    )
    return _write_single(request, f"S1{satellite}_OPER_AUX_OBMEMC_PDMC_{_compact(start)}.xml", document)


# -- registry ------------------------------------------------------------------------------------------


def _pattern(regex: str) -> re.Pattern[str]:
    return re.compile(regex)


_ENTRIES: tuple[tuple[str, Callable[[ProductRequest], Path]], ...] = (
    (r"SESSION", _write_session),
    (r"(IW|EW|WV|S[1-6]|RF|EN)_RAW__0S|(IW|EW|WV|S[1-6])_RAW__0[ACN]", _write_level0),
    (r"(IW|EW|WV|S[1-6]|EN)_(SLC_|GRDH|GRDM)_1[SA]|(IW|EW|WV|S[1-6])_OCN__2[SA]", _write_level12),
    ("|".join(_AUX_SAFE), _write_aux_safe),
    ("|".join(_ORBIT_FILES), _write_orbit),
    (r"AUX_OBMEMC", _write_obmemc),
)
WRITERS: tuple[tuple[re.Pattern[str], Writer], ...] = tuple((_pattern(p), w) for p, w in _ENTRIES)
