"""Catalog data for the query benchmarks: footprints and attributes of the team's real samples, jittered.

Every sample manifest of ``../shared/samples`` with a polygon footprint is a *template*: its product type,
its footprint's shape (slanted S1 swaths, S2 100 km tiles, wide S3 stripes), its sensing duration and its
attributes (10-25 typed PRIP attributes each). A synthetic entry copies one template, moves its footprint
to a random place (5% near a pole, some across the antimeridian, split there as ingestion splits them),
sets its sensing start somewhere in one year (in sensing order, as an archive is loaded) and jitters the
attributes that differ between products (orbit numbers, cloud cover, tile ids).

Built catalogs are cached under ``REFSYS_BENCH_DATA`` (default ``~/.cache/refsys-bench``, outside git),
one file per size and generator version: a 1 M SQLite catalog takes minutes to build, then seconds to reuse.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from shared.catalog import CatalogEntry, CatalogStore, open_catalog, product_id

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"
T0 = datetime(2024, 1, 1, tzinfo=UTC)
YEAR_S = 365 * 86400
BATCH = 5_000
VERSION = 2  # of the generator: a cached catalog of another version is rebuilt
POLAR_SHARE = 0.05  # entries moved to 65-85° north or south
MISSION_SHARES = {"S1": 0.45, "S2": 0.35, "S3": 0.20}  # of the entries; S2's tiles are many and small


@dataclass(frozen=True, eq=False)  # hashed by identity: the split cache's key
class Template:
    name: str
    mission: str
    satellite: str
    product_type: str
    level: str
    family: str
    duration_s: float
    rings: list[list[list[list[float]]]]  # polygons' rings, [lon, lat], not crossing the antimeridian
    centre: tuple[float, float]
    attributes: dict[str, Any]


def data_dir() -> Path:
    configured = os.environ.get("REFSYS_BENCH_DATA")
    root = Path(configured) if configured else Path.home() / ".cache" / "refsys-bench"
    root.mkdir(parents=True, exist_ok=True)
    return root


@lru_cache(maxsize=1)
def templates() -> tuple[Template, ...]:
    """Every sample with a polygon footprint, unwrapped (longitudes continuous across ±180)."""
    from shared.products import extract_metadata, recognise

    manifests = sorted([*SAMPLES.glob("*/*/manifest.safe"), *SAMPLES.glob("*/*/xfdumanifest.xml")])
    if not manifests:
        raise RuntimeError(f"the team's samples are expected at {SAMPLES}")
    found = []
    for manifest in manifests:
        name = manifest.parent.name
        try:
            product = recognise(name)
            metadata = extract_metadata(product, manifest.read_bytes())
        except Exception:  # a sample this extractor does not describe is no template
            continue
        footprint = metadata.footprint
        if not footprint or footprint["type"] not in ("Polygon", "MultiPolygon"):
            continue
        polygons = [footprint["coordinates"]] if footprint["type"] == "Polygon" else footprint["coordinates"]
        rings = [[_unwrap(ring) for ring in polygon] for polygon in polygons]
        lons = [p[0] for poly in rings for ring in poly for p in ring]
        lats = [p[1] for poly in rings for ring in poly for p in ring]
        if max(lats) > 88 or min(lats) < -88 or max(lons) - min(lons) > 180:
            continue  # a stripe around a pole cannot be moved by a translation
        start, stop = metadata.validity_start or product.validity_start, metadata.validity_stop
        duration = (stop - start).total_seconds() if start and stop else 25.0
        found.append(
            Template(
                name=name,
                mission=product.mission,
                satellite=product.satellite or "",
                product_type=product.product_type,
                level=product.level,
                family=product.family,
                duration_s=max(duration, 1.0),
                rings=rings,
                centre=((min(lons) + max(lons)) / 2, (min(lats) + max(lats)) / 2),
                attributes=dict(metadata.attributes),
            )
        )
    return tuple(found)


def _unwrap(ring: list[list[float]]) -> list[list[float]]:
    out = [list(ring[0][:2])]
    for lon, lat, *_ in ring[1:]:
        previous = out[-1][0]
        lon += 360.0 * round((previous - lon) / 360.0)
        out.append([lon, lat])
    return out


def synthetic_entries(count: int, seed: int = 21) -> Iterator[CatalogEntry]:
    """``count`` entries over one year in sensing order, give or take an hour."""
    rng = random.Random(seed)
    shapes = templates()
    by_mission = {m: [t for t in shapes if t.mission == m] for m in MISSION_SHARES}
    missions, shares = list(MISSION_SHARES), list(MISSION_SHARES.values())
    step = YEAR_S / max(count, 1)
    for i in range(count):
        mission = rng.choices(missions, shares)[0]
        template = shapes[i] if i < len(shapes) else rng.choice(by_mission[mission])
        start = T0 + timedelta(seconds=max(0.0, i * step + rng.uniform(-3600, 3600)))
        yield _entry(template, i, start, rng)


def _entry(template: Template, i: int, start: datetime, rng: random.Random) -> CatalogEntry:
    name = f"{template.name.split('.')[0][:40]}_B{i:09d}{'.SEN3' if template.mission == 'S3' else '.SAFE'}"
    attributes = dict(template.attributes)
    for key, value in attributes.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if "orbit" in key.lower():
            attributes[key] = int(value) + i // 14
        elif key == "cloudCover":
            attributes[key] = round(rng.uniform(0, 100), 2)
    stop = start + timedelta(seconds=template.duration_s)
    if "beginningDateTime" in attributes:
        attributes["beginningDateTime"] = start
        attributes["endingDateTime"] = stop
    return CatalogEntry(
        id=product_id(name),
        name=name,
        mission=template.mission,
        satellite=template.satellite,
        product_type=template.product_type,
        level=template.level,
        family=template.family,
        bucket="rs-bench",
        key=f"{name}/",
        content_length=rng.randrange(1, 2**32),
        checksum=f"{i:032x}",
        content_type="application/octet-stream",
        validity_start=start,
        validity_stop=stop,
        footprint=_moved(template, rng),
        attributes=attributes,
        publication_time=T0 + timedelta(seconds=YEAR_S) + timedelta(milliseconds=i),
        modification_time=T0 + timedelta(seconds=YEAR_S) + timedelta(milliseconds=i),
    )


def _moved(template: Template, rng: random.Random) -> dict[str, Any]:
    """The template's footprint at a random place (its shape kept), split at ±180 if it crosses it."""
    lon0, lat0 = template.centre
    if rng.random() < POLAR_SHARE:
        lat = rng.choice((-1, 1)) * rng.uniform(65, 85)
    else:
        lat = math.degrees(math.asin(rng.uniform(-0.97, 0.97)))  # uniform over the sphere's area
    lats = [p[1] for poly in template.rings for ring in poly for p in ring]
    dlat = max(-89.5 - min(lats), min(89.5 - max(lats), lat - lat0))
    dlon = rng.uniform(-180.0, 180.0) - lon0
    polygons = [[[[lon + dlon, la + dlat] for lon, la in ring] for ring in poly] for poly in template.rings]
    lons = [p[0] for poly in polygons for ring in poly for p in ring]
    if min(lons) >= -180.0 and max(lons) <= 180.0:
        if len(polygons) == 1:
            return {"type": "Polygon", "coordinates": polygons[0]}
        return {"type": "MultiPolygon", "coordinates": polygons}
    # Across ±180: splitting costs milliseconds, so the place is snapped (to 0.5° and 2°) and the split reused.
    return _split(template, round(dlon * 2) / 2, round(dlat / 2) * 2)


@lru_cache(maxsize=4096)
def _split(template: Template, dlon: float, dlat: float) -> dict[str, Any]:
    """A footprint across ±180 as ingestion stores it (``shared.products.footprint``)."""
    from shapely.geometry import MultiPolygon, Polygon

    from shared.products.footprint import split_at_antimeridian, to_geojson

    polygons = [[[[lon + dlon, lat + dlat] for lon, lat in ring] for ring in poly] for poly in template.rings]
    wrapped = [[[[(lon + 180.0) % 360.0 - 180.0, lat] for lon, lat in ring] for ring in poly] for poly in polygons]
    shapes = [Polygon(poly[0], poly[1:]) for poly in wrapped]
    geometry = shapes[0] if len(shapes) == 1 else MultiPolygon(shapes)
    return to_geojson(split_at_antimeridian(geometry))


def _batches(count: int) -> Iterator[list[CatalogEntry]]:
    entries = synthetic_entries(count)
    while batch := [e for _, e in zip(range(BATCH), entries, strict=False)]:
        yield batch


def load(store: CatalogStore, count: int) -> float:
    """Entries per second of ``upsert_many`` in batches (making the entries is not timed)."""
    spent = 0.0
    for batch in _batches(count):
        started = time.perf_counter()
        store.upsert_many(batch)
        spent += time.perf_counter() - started
    return count / spent


def sqlite_catalog(count: int) -> Path:
    """A SQLite catalog of ``count`` synthetic entries, built once and cached (see the module's text)."""
    path = data_dir() / f"catalog-v{VERSION}-{count}.db"
    if not path.exists():
        building = path.with_suffix(".building")
        for leftover in path.parent.glob(building.name + "*"):
            leftover.unlink()
        store = open_catalog(f"sqlite:///{building}")
        try:
            load(store, count)
        finally:
            store.close()
        building.rename(path)
    return path


def postgres_catalog(url: str, count: int) -> None:
    """The PostGIS catalog at ``url`` holding ``count`` synthetic entries, beyond ``postgis_fill.SEED_ENTRIES``
    multiplied server-side from that many (rebuilt only when its marker table says otherwise)."""
    import psycopg

    from tests.bench import postgis_fill

    marker = (
        f"v{VERSION}-{count}"
        if count <= postgis_fill.SEED_ENTRIES
        else f"v{VERSION}-{count}-seed{postgis_fill.SEED_ENTRIES}"
    )
    store = open_catalog(url)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS bench_marker (content text)")
            row = conn.execute("SELECT content FROM bench_marker").fetchone()
            if row is not None and row[0] == marker:
                return
            conn.execute("DELETE FROM bench_marker")
            postgis_fill.fill(url, store, count)
            # What autovacuum does after inserts: statistics, and the visibility map for index-only scans.
            conn.execute("VACUUM ANALYZE products")
            conn.execute("CHECKPOINT")
            conn.execute("INSERT INTO bench_marker VALUES (%s)", (marker,))
    finally:
        store.close()
