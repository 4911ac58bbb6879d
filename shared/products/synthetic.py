"""Synthetic but self-consistent Sentinel products, for tests and demos.

:func:`write_product` writes a product directory modelled on real products (the manifests are the
templates under ``templates/``, with the structure of the sample manifests): a realistic name whose
fields agree with the manifest (times, absolute/relative orbit, datatake, a CRC-like suffix from the
seed), a manifest listing every file with its real size and MD5, a footprint that varies with the seed,
and payload files of deterministic random bytes. Same arguments, same bytes; nothing reads the clock.

Supported product types (:data:`SUPPORTED`): S1 ``<mode>_RAW__0S``, ``<mode>_SLC__1S``,
``<mode>_GRD[HM]_1S`` for the modes IW, EW and S1-S6; S3 ``OL_1_EFR___``; S2 ``S2MSI1C`` (compact SAFE).
Adding one is registering a writer in ``_WRITERS``.
"""

from __future__ import annotations

import binascii
import hashlib
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from string import Template
from xml.sax.saxutils import escape, quoteattr

from shared.products.naming import recognise

# -- orbits -------------------------------------------------------------------------------------------
# A repeat-cycle model anchored on one real product per unit: its (ascending node) time, absolute orbit,
# relative orbit and cycle, from the sample manifests; it reproduces the orbit numbers of every sample
# (tests). S2 anchors are datatake times less ~50 min (their manifests give no node time); S1D, S2C/D and
# S3C/D have no sample: their anchors are made up.


@dataclass(frozen=True)
class _OrbitState:
    absolute: int
    relative: int
    cycle: int
    anx: datetime  # ascending node crossing that starts this orbit


@dataclass(frozen=True)
class _Orbit:
    epoch: datetime
    absolute: int
    relative: int
    cycle: int
    per_cycle: int  # orbits per repeat cycle
    cycle_days: int

    @property
    def period_s(self) -> float:
        return self.cycle_days * 86400.0 / self.per_cycle

    def at(self, t: datetime) -> _OrbitState:
        n = math.floor((t - self.epoch).total_seconds() / self.period_s)
        k = self.relative - 1 + n
        absolute = self.absolute + n
        if absolute < 1:
            raise ValueError(f"{t.isoformat()} is before the first orbit of this satellite")
        return _OrbitState(
            absolute,
            k % self.per_cycle + 1,
            self.cycle + k // self.per_cycle,
            self.epoch + timedelta(seconds=n * self.period_s),
        )


def _utc(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


_ORBITS = {
    ("S1", "A"): _Orbit(_utc("2018-02-27T14:50:59.906229"), 20794, 72, 133, 175, 12),
    ("S1", "B"): _Orbit(_utc("2021-04-01T04:49:55.637823"), 26269, 168, 156, 175, 12),
    ("S1", "C"): _Orbit(_utc("2025-01-18T17:01:49.302142"), 638, 15, 7, 175, 12),
    ("S1", "D"): _Orbit(_utc("2025-12-01T00:00:00"), 400, 100, 3, 175, 12),
    ("S2", "A"): _Orbit(_utc("2021-09-08T03:37:00"), 32448, 133, 227, 143, 10),
    ("S2", "B"): _Orbit(_utc("2022-04-13T14:18:00"), 26649, 25, 187, 143, 10),
    ("S2", "C"): _Orbit(_utc("2024-10-01T00:00:00"), 1000, 1, 7, 143, 10),
    ("S2", "D"): _Orbit(_utc("2028-01-01T00:00:00"), 1000, 72, 7, 143, 10),
    ("S3", "A"): _Orbit(_utc("2021-10-21T06:26:27.254946"), 29567, 334, 77, 385, 27),
    ("S3", "B"): _Orbit(_utc("2021-08-31T19:37:28.376456"), 17454, 242, 56, 385, 27),
    ("S3", "C"): _Orbit(_utc("2026-01-01T00:00:00"), 1000, 1, 3, 385, 27),
    ("S3", "D"): _Orbit(_utc("2027-01-01T00:00:00"), 1000, 193, 3, 385, 27),
}
_NSSDC = {
    ("S1", "A"): "2014-016A",
    ("S1", "B"): "2016-025A",
    ("S1", "C"): "2024-235A",
    ("S3", "A"): "2016-011A",
    ("S3", "B"): "2018-039A",
}


# -- request, files, manifest pieces ---------------------------------------------------------------


@dataclass(frozen=True)
class _Request:
    directory: Path
    product_type: str
    start: datetime
    satellite: str
    duration: timedelta
    payload_size: int
    seed: int

    @property
    def stop(self) -> datetime:
        return self.start + self.duration

    def rng(self, purpose: str) -> random.Random:
        """Independent deterministic random stream per purpose (adding a draw never shifts another)."""
        return random.Random(f"{self.product_type}:{self.seed}:{purpose}")


@dataclass(frozen=True)
class _File:
    path: str  # relative to the product root
    data: bytes
    ident: str
    rep_id: str
    mime: str
    unit_type: str


def _payload(req: _Request, path: str, size: int) -> bytes:
    return hashlib.shake_256(f"{req.seed}:{path}".encode()).digest(size)


def _xml_payload(req: _Request, path: str, root: str) -> bytes:
    """A small well-formed XML file standing in for an annotation or metadata file."""
    body = _payload(req, path, max(64, req.payload_size // 16)).hex()
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} synthetic="true">{body}</{root}>\n'.encode()


def _metadata_file(req: _Request, path: str, ident: str, rep_id: str, root: str) -> _File:
    return _File(path, _xml_payload(req, path, root), ident, rep_id, "text/xml", "Metadata Unit")


def _data_file(req: _Request, path: str, ident: str, rep_id: str, size: int, mime: str = "") -> _File:
    data = _payload(req, path, size)
    return _File(path, data, ident, rep_id, mime or "application/octet-stream", "Measurement Data Unit")


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _data_objects(files: list[_File]) -> str:
    return "\n".join(
        f"    <dataObject ID={quoteattr(f.ident)} repID={quoteattr(f.rep_id)}>\n"
        f'      <byteStream mimeType={quoteattr(f.mime)} size="{len(f.data)}">\n'
        f'        <fileLocation locatorType="URL" href={quoteattr("./" + f.path)}/>\n'
        f'        <checksum checksumName="MD5">{_md5(f.data)}</checksum>\n'
        f"      </byteStream>\n"
        f"    </dataObject>"
        for f in files
    )


def _content_units(files: list[_File]) -> str:
    return "\n".join(
        f"      <xfdu:contentUnit unitType={quoteattr(f.unit_type)} repID={quoteattr(f.rep_id)}>\n"
        f"        <dataObjectPointer dataObjectID={quoteattr(f.ident)}/>\n"
        f"      </xfdu:contentUnit>"
        for f in files
    )


def _render(template: str, files: list[_File], xml: dict[str, str] | None = None, **values: object) -> bytes:
    """Fill a template: ``values`` are escaped text, ``xml`` already-built fragments (repeated elements)."""
    text = resources.files("shared.products").joinpath("templates", template).read_text(encoding="utf-8")
    filled = Template(text).substitute(
        {k: escape(str(v)) for k, v in values.items()},
        content_units=_content_units(files),
        data_objects=_data_objects(files),
        **(xml or {}),
    )
    return filled.encode("utf-8")


def _write(req: _Request, name: str, files: list[_File], manifest_name: str, manifest: bytes) -> Path:
    root = req.directory / name
    if root.exists():
        raise FileExistsError(f"{root} already exists")
    for f in [*files, _File(manifest_name, manifest, "", "", "", "")]:
        target = root / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(f.data)
    recognise(name)  # a writer producing an unrecognisable name is a bug: fail loudly
    return root


def _ident(stem: str) -> str:
    return re.sub(r"[^a-z0-9]", "", stem.lower())


def _time(t: datetime, *, zulu: bool = False, digits: int = 6) -> str:
    """ISO time as manifests write it: ``2018-02-27T14:53:44.184986`` (``digits`` fraction digits)."""
    text = t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    text = text[: 20 + digits] if digits else text[:19]
    return text + ("Z" if zulu else "")


def _compact(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y%m%dT%H%M%S")


def _later(req: _Request, purpose: str, base: datetime, minimum_s: int, spread_s: int) -> datetime:
    """A deterministic time after ``base`` (processing, generation), varying with the seed."""
    return base + timedelta(seconds=minimum_s + req.rng(purpose).randrange(spread_s))


# -- footprints ----------------------------------------------------------------------------------------


def _scene(req: _Request, along_km: float, across_km: float) -> tuple[list[tuple[float, float]], bool]:
    """Four (lat, lon) corners of a swath segment somewhere on Earth (seeded), CCW; and ascending or not.

    Order: start-left, start-right, end-right, end-left (counter-clockwise seen from above).
    """
    rng = req.rng("scene")
    lat0, lon0 = rng.uniform(-70.0, 70.0), rng.uniform(-180.0, 180.0)
    ascending = rng.random() < 0.5
    heading = math.radians(-12.0 if ascending else 192.0)  # sun-synchronous ground track
    fwd = (math.sin(heading), math.cos(heading))  # (east, north)
    right = (math.cos(heading), -math.sin(heading))
    corners = []
    for a, c in ((-0.5, -0.5), (-0.5, 0.5), (0.5, 0.5), (0.5, -0.5)):
        east = a * along_km * fwd[0] + c * across_km * right[0]
        north = a * along_km * fwd[1] + c * across_km * right[1]
        lat = lat0 + north / 111.32
        lon = lon0 + east / (111.32 * math.cos(math.radians(lat0)))
        corners.append((round(lat, 6), round((lon + 180.0) % 360.0 - 180.0, 6)))
    return corners, ascending


def _densify(corners: list[tuple[float, float]], steps: int) -> list[tuple[float, float]]:
    """Closed ring with ``steps`` points per edge (S3 footprints have tens of points)."""
    ring = []
    for (la1, lo1), (la2, lo2) in zip(corners, [*corners[1:], corners[0]], strict=True):
        dlon = (lo2 - lo1 + 180.0) % 360.0 - 180.0  # the short way, across the antimeridian if needed
        for i in range(steps):
            lon = lo1 + dlon * i / steps
            ring.append((round(la1 + (la2 - la1) * i / steps, 4), round((lon + 180.0) % 360.0 - 180.0, 4)))
    return [*ring, ring[0]]


# -- Sentinel-1 --------------------------------------------------------------------------------------

_S1_RE = re.compile(r"(?P<mode>IW|EW|S[1-6])_(?P<kind>RAW_|SLC_|GRDH|GRDM)_(?P<level>[01])S")
_S1_SWATHS = {"IW": ("IW1", "IW2", "IW3"), "EW": ("EW1", "EW2", "EW3", "EW4", "EW5")}
_S1_WIDTH_KM = {"IW": 250.0, "EW": 400.0}
_S1_POLARISATION = {"IW": ("DV", ("VV", "VH")), "EW": ("DH", ("HH", "HV"))}
_S1_GROUND_SPEED_KM_S = 6.9


@dataclass(frozen=True)
class _S1Scene:
    mode: str  # IW, EW, S1..S6
    kind: str  # RAW, SLC, GRD
    orbit: _OrbitState
    pol_code: str  # DV, DH
    pols: tuple[str, ...]
    datatake: int
    corners: list[tuple[float, float]]  # CCW
    ascending: bool


def _s1_scene(req: _Request) -> _S1Scene:
    m = _S1_RE.fullmatch(req.product_type)
    if m is None:
        raise ValueError(f"not an S1 product type this writer knows: {req.product_type!r}")
    mode = m["mode"]
    orbit = _ORBITS[("S1", req.satellite)].at(req.start)
    pol_code, pols = _S1_POLARISATION.get(mode, ("DV", ("VV", "VH")))
    # Real datatake ids grow by about 8.5 per orbit (sample manifests); 24 bits, 6 hex digits in the name.
    datatake = (orbit.absolute * 8 + req.rng("datatake").randrange(8)) % 0xFFFFFF
    width = _S1_WIDTH_KM.get(mode, 80.0)
    corners, ascending = _scene(req, req.duration.total_seconds() * _S1_GROUND_SPEED_KM_S, width)
    return _S1Scene(mode, m["kind"].rstrip("_")[:3], orbit, pol_code, pols, datatake, corners, ascending)


def _s1_name(req: _Request, s: _S1Scene, product_type: str, crc: str | None = None) -> str:
    body = (
        f"S1{req.satellite}_{product_type}{s.pol_code}_{_compact(req.start)}_{_compact(req.stop)}"
        f"_{s.orbit.absolute:06d}_{s.datatake:06X}"
    )
    if crc is None:  # the real CRC covers the product content; ours is a CRC-16 of the name and seed
        crc = f"{binascii.crc_hqx(f'{body}:{req.seed}'.encode(), 0):04X}"
    return f"{body}_{crc}.SAFE"


def _s1_values(req: _Request, s: _S1Scene) -> dict[str, object]:
    """Template values both S1 manifests share."""
    processing_start = _later(req, "processing", req.stop, 1800, 3600)
    slice_number = 1 + req.rng("slice").randrange(20)
    return {
        "satellite": req.satellite,
        "nssdc": _NSSDC.get(("S1", req.satellite), "0000-000A"),
        "mode": s.mode,
        "orbit": s.orbit.absolute,
        "relative_orbit": s.orbit.relative,
        "cycle": s.orbit.cycle,
        "pass_direction": "ASCENDING" if s.ascending else "DESCENDING",
        "anx_time": _time(s.orbit.anx),
        "start_anx": f"{(req.start - s.orbit.anx).total_seconds() * 1000:.6e}",
        "stop_anx": f"{(req.stop - s.orbit.anx).total_seconds() * 1000:.6e}",
        "instrument_configuration": 7,
        "datatake": s.datatake,
        "product_class": "S",
        "slice_number": slice_number,
        "total_slices": slice_number + 3,
        "processing_start": _time(processing_start),
        "processing_stop": _time(processing_start + timedelta(minutes=10)),
        "site": "Copernicus Reference System",
        "ipf_version": "003.71",
    }


def _s1_version(s: _S1Scene, level: str) -> str:
    mode = "sm" if s.mode.startswith("S") else s.mode.lower()
    dual = "dp" if len(s.pols) > 1 else "sp"
    kind = "standard" if level == "0" else f"{s.kind.lower()}/standard"
    return f"esa/safe/sentinel-1.0/sentinel-1/sar/level-{level}/{kind}/{mode}{dual}"


def _s1_stem(req: _Request, s: _S1Scene, swath: str, kind: str, pol: str) -> str:
    """Lower-case file stem of real S1 products: s1a-iw-grd-vv-<start>-<stop>-<orbit>-<datatake>."""
    return (
        f"s1{req.satellite.lower()}-{swath.lower()}-{kind}-{pol.lower()}-{_compact(req.start).lower()}"
        f"-{_compact(req.stop).lower()}-{s.orbit.absolute:06d}-{s.datatake:06x}"
    )


def _write_s1_level1(req: _Request) -> Path:
    s = _s1_scene(req)
    name = _s1_name(req, s, req.product_type)
    swaths = _S1_SWATHS.get(s.mode, (s.mode,)) if s.kind == "SLC" else (s.mode,)
    files: list[_File] = []
    index = 0
    for pol in s.pols:
        for swath in swaths:
            index += 1
            stem = f"{_s1_stem(req, s, swath, s.kind.lower(), pol)}-{index:03d}"
            for path, prefix, rep in (
                (f"annotation/{stem}.xml", "product", "s1Level1ProductSchema"),
                (f"annotation/calibration/noise-{stem}.xml", "noise", "s1Level1NoiseSchema"),
                (f"annotation/calibration/calibration-{stem}.xml", "calibration", "s1Level1CalibrationSchema"),
            ):
                files.append(_metadata_file(req, path, prefix + _ident(stem), rep, prefix))
            path = f"measurement/{stem}.tiff"
            files.append(_data_file(req, path, _ident(stem), "s1Level1MeasurementSchema", req.payload_size))
    files += [
        _metadata_file(req, "preview/map-overlay.kml", "mapoverlay", "s1Level1MapOverlaySchema", "kml"),
        _metadata_file(req, "preview/product-preview.html", "productpreview", "s1Level1ProductPreviewSchema", "html"),
        _data_file(
            req, "preview/quick-look.png", "quicklook", "s1Level1QuickLookSchema", max(64, req.payload_size // 8)
        ),
    ]
    manifest = _render(
        "s1_level1_manifest.xml",
        files,
        **_s1_values(req, s),
        version=_s1_version(s, "1"),
        text_info=f"Sentinel-1 {s.mode} Level-1 {s.kind} Product",
        processing_name=f"{s.kind} Post Processing",
        input_name=_s1_name(req, s, f"{s.mode}_RAW__0S", crc="0000"),
        kind=s.kind,
        xml={
            "swaths": "\n".join(f"                  <s1sarl1:swath>{w}</s1sarl1:swath>" for w in swaths),
            "polarisations": "\n".join(
                f"            <s1sarl1:transmitterReceiverPolarisation>{p}</s1sarl1:transmitterReceiverPolarisation>"
                for p in s.pols
            ),
        },
        segment_start=_time(req.start),
        start=_time(req.start),
        stop=_time(req.stop),
        # L1 manifests list the corners clockwise (reference §3.4): reverse our CCW order.
        coordinates=" ".join(f"{lat:.6f},{lon:.6f}" for lat, lon in reversed(s.corners)),
    )
    return _write(req, name, files, "manifest.safe", manifest)


def _write_s1_level0(req: _Request) -> Path:
    s = _s1_scene(req)
    name = _s1_name(req, s, req.product_type)
    files: list[_File] = []
    for i, pol in enumerate(s.pols, start=1):
        stem = _s1_stem(req, s, s.mode, "raw-s", pol)
        for suffix, ident, rep, size in (
            ("-annot.dat", f"measurementAnnotData{i}", "measurementAnnotationSchema", max(64, req.payload_size // 8)),
            (".dat", f"measurementData{i}", "measurementSchema", req.payload_size),
            ("-index.dat", f"measurementIndexData{i}", "measurementIndexAnnotationSchema", 64),
        ):
            path = stem + suffix
            unit = "Measurement Data Unit" if suffix == ".dat" else "Metadata Unit"
            files.append(_File(path, _payload(req, path, size), ident, rep, "application/octet-stream", unit))
    manifest = _render(
        "s1_level0_manifest.xml",
        files,
        **_s1_values(req, s),
        version=_s1_version(s, "0"),
        xml={
            "polarisations": "\n".join(
                f'            <transmitterReceiverPolarisation dataObjectID="measurementData{i}">{p}'
                "</transmitterReceiverPolarisation>"
                for i, p in enumerate(s.pols, start=1)
            ),
        },
        start=_time(req.start, zulu=True),
        stop=_time(req.stop, zulu=True),
        # L0 manifests list the corners counter-clockwise and close the ring (reference §3.4).
        coordinates=" ".join(f"{lat:.4f},{lon:.4f}" for lat, lon in [*s.corners, s.corners[0]]),
    )
    return _write(req, name, files, "manifest.safe", manifest)


# -- Sentinel-3 ----------------------------------------------------------------------------------------

_OLCI_FILES = (
    *(f"Oa{b:02d}_radiance" for b in range(1, 22)),
    "geo_coordinates",
    "instrument_data",
    "qualityFlags",
    "removed_pixels",
    "tie_geo_coordinates",
    "tie_geometries",
    "tie_meteo",
    "time_coordinates",
)
_OLCI_SWATH_KM, _S3_GROUND_SPEED_KM_S = 1270.0, 6.6


def _write_s3_olci_efr(req: _Request) -> Path:
    orbit = _ORBITS[("S3", req.satellite)].at(req.start)
    creation = _later(req, "creation", req.stop, 1800, 7200)
    duration = int(req.duration.total_seconds())
    frame = int((req.start - orbit.anx).total_seconds())
    instance = f"{duration:04d}_{orbit.cycle:03d}_{orbit.relative:03d}_{frame:04d}"
    name = (
        f"S3{req.satellite}_OL_1_EFR____{_compact(req.start)}_{_compact(req.stop)}_{_compact(creation)}"
        f"_{instance}_LN1_O_NR_002.SEN3"
    )
    files = []
    for stem in _OLCI_FILES:
        size = req.payload_size if stem.endswith("radiance") else max(64, req.payload_size // 4)
        files.append(_data_file(req, f"{stem}.nc", f"{stem}Data", f"{stem}Schema", size, "application/x-netcdf"))
    corners, ascending = _scene(req, req.duration.total_seconds() * _S3_GROUND_SPEED_KM_S, _OLCI_SWATH_KM)
    processing_start = _later(req, "processing", req.stop, 600, 1200)
    manifest = _render(
        "s3_xfdumanifest.xml",
        files,
        version="esa/safe/sentinel/sentinel-3/olci/level-1/1.0",
        text_info="SENTINEL-3 OLCI Level 1 Earth Observation Full Resolution Product",
        start=_time(req.start, zulu=True),
        stop=_time(req.stop, zulu=True),
        nssdc=_NSSDC.get(("S3", req.satellite), "0000-000A"),
        satellite=req.satellite,
        instrument="OLCI",
        instrument_name="Ocean Land Colour Instrument",
        coordinates=" ".join(f"{lat} {lon}" for lat, lon in _densify(corners, 4)),
        name=name,
        product_type=req.product_type,
        timeliness="NR",
        baseline="002",
        creation=_compact(creation),
        product_size=sum(len(f.data) for f in files),
        duration=duration,
        frame=frame,
        pass_direction="ascending" if ascending else "descending",
        orbit=orbit.absolute,
        relative_orbit=orbit.relative,
        cycle=orbit.cycle,
        output_level=1,
        processing_start=_time(processing_start),
        processing_stop=_time(processing_start + timedelta(seconds=30)),
        centre="LN1",
        site="Copernicus Reference System",
        processor="PUG",
        processor_version="03.39",
    )
    return _write(req, name, files, "xfdumanifest.xml", manifest)


# -- Sentinel-2 ----------------------------------------------------------------------------------------

_S2_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12", "TCI")
_MGRS_BANDS = "CDEFGHJKLMNPQRSTUVWX"


def _write_s2_l1c(req: _Request) -> Path:
    orbit = _ORBITS[("S2", req.satellite)].at(req.start)
    rng = req.rng("tile")
    corners, ascending = _scene(req, 109.8, 109.8)
    lat = sum(p[0] for p in corners) / 4
    lon = corners[0][1]
    zone = int((lon + 180.0) // 6) % 60 + 1
    tile = (
        f"{zone:02d}{_MGRS_BANDS[min(19, max(0, int((lat + 80) // 8)))]}"
        f"{rng.choice('ABCDEFGHJKLMNPQRSTUVWXYZ')}{rng.choice('ABCDEFGHJKLMNPQRSTUV')}"
    )
    generation = _later(req, "generation", req.start, 3600, 7200)
    baseline = "05.11"
    name = (
        f"S2{req.satellite}_MSIL1C_{_compact(req.start)}_N{baseline.replace('.', '')}_R{orbit.relative:03d}"
        f"_T{tile}_{_compact(generation)}.SAFE"
    )
    ds_start = req.start + timedelta(seconds=req.rng("datastrip").randrange(1, 300))
    datastrip = f"DATASTRIP/DS_2BPS_{_compact(generation)}_S{_compact(ds_start)}"
    granule = f"GRANULE/L1C_T{tile}_A{orbit.absolute:06d}_{_compact(ds_start)}"
    ring = [*corners, corners[0]]
    mtd = _render(
        "s2_user_product_mtd.xml",
        [],
        start=_time(req.start, zulu=True, digits=3),
        name=name,
        processing_level="Level-1C",
        product_type=req.product_type,
        baseline=baseline,
        generation=_time(generation, zulu=True, digits=0),
        datatake_id=f"GS2{req.satellite}_{_compact(req.start)}_{orbit.absolute:06d}_N{baseline}",
        satellite=req.satellite,
        relative_orbit=orbit.relative,
        pass_direction="ASCENDING" if ascending else "DESCENDING",
        coordinates=" ".join(f"{la} {lo}" for la, lo in ring),
        cloud_cover=f"{req.rng('cloud').uniform(0, 100):.6f}",
    )
    files = [
        _File("MTD_MSIL1C.xml", mtd, "S2_Level-1C_Product_Metadata", "", "text/xml", "Metadata Unit"),
        _metadata_file(req, "INSPIRE.xml", "INSPIRE_Metadata", "", "inspire"),
        _metadata_file(req, f"{datastrip}/MTD_DS.xml", "S2_Level-1C_Datastrip1_Metadata", "", "datastrip"),
        _metadata_file(req, f"{granule}/MTD_TL.xml", "S2_Level-1C_Tile1_Metadata", "", "tile"),
        *(
            _data_file(
                req,
                f"{granule}/IMG_DATA/T{tile}_{_compact(req.start)}_{band}.jp2",
                f"IMG_DATA_Band_{band}_Tile1_Data",
                "",
                req.payload_size,
            )
            for band in _S2_BANDS
        ),
    ]
    manifest = _render(
        "s2_user_product_manifest.xml",
        files,
        version="esa/safe/sentinel/1.1/sentinel-2/msi/archive_l1c_user_product",
        text_info="SENTINEL-2 MSI Level-1C User Product",
        unit_type="Product_Level-1C",
        # Real user products write milliseconds; we keep the microseconds asked for.
        start=_time(req.start, zulu=True),
        pass_direction="ascending" if ascending else "descending",
        orbit=f"{orbit.absolute:06d}",
        relative_orbit=f"{orbit.relative:03d}",
        nssdc="2015-000A",
        satellite=req.satellite,
        processing_name="Generation of Level-1C User Product",
        processing_start=_time(generation, zulu=True),
        coordinates=" ".join(f"{la} {lo}" for la, lo in ring),
    )
    return _write(req, name, files, "manifest.safe", manifest)


# -- registry and entry point ------------------------------------------------------------------------

_WRITERS: list[tuple[re.Pattern[str], Callable[[_Request], Path]]] = [
    (re.compile(r"(IW|EW|S[1-6])_(SLC_|GRDH|GRDM)_1S"), _write_s1_level1),
    (re.compile(r"(IW|EW|S[1-6])_RAW__0S"), _write_s1_level0),
    (re.compile(r"OL_1_EFR___"), _write_s3_olci_efr),
    (re.compile(r"S2MSI1C"), _write_s2_l1c),
]
SUPPORTED = tuple(p.pattern for p, _ in _WRITERS)


def write_product(
    directory: Path,
    product_type: str,
    start: datetime,
    *,
    satellite: str = "A",
    duration_s: float = 25.0,
    payload_size: int = 4096,
    seed: int = 0,
) -> Path:
    """Write a complete, self-consistent product under ``directory`` and return its root directory.

    ``product_type`` is the ESA code :func:`~shared.products.naming.recognise` reports (``IW_GRDH_1S``,
    ``IW_SLC__1S``, ``IW_RAW__0S``, ``OL_1_EFR___``, ``S2MSI1C``...; see :data:`SUPPORTED`). ``start`` must be
    timezone-aware; it is written to the manifest with its microseconds (the name keeps whole seconds).
    Measurement files are ``payload_size`` bytes, annotation/metadata files smaller. Raises
    ``ValueError`` for an unsupported type or bad argument, ``FileExistsError`` if the product exists.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware (UTC)")
    if satellite not in ("A", "B", "C", "D"):
        raise ValueError(f"satellite must be one of A, B, C, D, not {satellite!r}")
    if not 0 < duration_s < 10000 or payload_size < 1:
        raise ValueError("duration_s must be in (0, 10000) and payload_size positive")
    for pattern, writer in _WRITERS:
        if pattern.fullmatch(product_type):
            request = _Request(
                Path(directory),
                product_type,
                start.astimezone(UTC),
                satellite,
                timedelta(seconds=duration_s),
                payload_size,
                seed,
            )
            return writer(request)
    raise ValueError(f"no synthetic writer for product type {product_type!r} (supported: {', '.join(SUPPORTED)})")
