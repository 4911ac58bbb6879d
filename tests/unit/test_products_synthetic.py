"""The synthetic product factory writes products the rest of the package reads back consistently."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from shapely.geometry import shape

from shared.products import extract_metadata, read_inventory, recognise, root_of
from shared.products.synthetic import _ORBITS, write_product

START = datetime(2024, 5, 17, 10, 11, 12, 345678, tzinfo=UTC)
# A time each unit of every mission is flying (S1C/S1D, S2C/S2D, S3C/S3D came or come later).
START_OF = {"A": START, "B": START.replace(year=2021), "C": START.replace(year=2026), "D": START.replace(year=2028)}
TYPES = ["IW_GRDH_1S", "IW_SLC__1S", "IW_RAW__0S", "OL_1_EFR___", "S2MSI1C", "EW_GRDM_1S", "S3_SLC__1S", "EW_RAW__0S"]
SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("product_type", TYPES)
@pytest.mark.parametrize("satellite", ["A", "B", "C", "D"])
def test_product_is_self_consistent(tmp_path: Path, product_type: str, satellite: str) -> None:
    start = START_OF[satellite]
    root = write_product(tmp_path, product_type, start, satellite=satellite, duration_s=25.0, seed=7)
    assert root.parent == tmp_path and root.is_dir()
    product = recognise(root.name)
    assert product.product_type == product_type
    assert product.satellite == satellite
    assert product.validity_start == start.replace(microsecond=0)
    assert product.manifest_name is not None
    files = _files(root)
    manifest = files.pop(product.manifest_name)
    inventory = read_inventory(manifest)
    # Every file on disk is in the inventory with its real size and MD5, and nothing else is.
    assert sorted(o.path for o in inventory) == sorted(files)
    for obj in inventory:
        assert obj.size == len(files[obj.path])
        assert obj.md5 == hashlib.md5(files[obj.path]).hexdigest()
    # Every object key of the product leads back to its root.
    for path in files:
        assert root_of(f"inbox/{root.name}/{path}") == f"inbox/{root.name}"
    md = extract_metadata(product, manifest)
    assert md.validity_start == start
    assert md.validity_stop == (start if product.mission == "S2" else start + timedelta(seconds=25))
    assert md.attributes["platformSerialIdentifier"] == satellite
    assert md.attributes["productType"] == product_type
    assert md.footprint is not None and shape(md.footprint).is_valid and shape(md.footprint).area > 0


@pytest.mark.parametrize("product_type", TYPES)
def test_name_fields_agree_with_the_manifest(tmp_path: Path, product_type: str) -> None:
    root = write_product(tmp_path, product_type, START, seed=3)
    product = recognise(root.name)
    assert product.manifest_name is not None
    md = extract_metadata(product, (root / product.manifest_name).read_bytes())
    a = md.attributes
    if product.mission == "S1":
        assert int(product.name_field("absolute_orbit") or "") == a["orbitNumber"]
        assert int(product.name_field("datatake_id") or "", 16) == a["missionDatatakeID"]
        assert re.fullmatch("[0-9A-F]{4}", product.name_field("crc") or "")
        assert a["polarisationChannels"] in ("VV,VH", "HH,HV")
    elif product.mission == "S3":
        assert int(product.name_field("relative_orbit") or "") == a["relativeOrbitNumber"]
        assert int(product.name_field("cycle") or "") == a["cycleNumber"]
        assert int(product.name_field("duration") or "") == 25
        assert a["timeliness"] == product.timeliness == "NR"
    else:
        assert int(product.name_field("relative_orbit") or "") == a["relativeOrbitNumber"]
        assert a["tileId"] == product.name_field("tile")


@pytest.mark.parametrize("product_type", TYPES)
def test_same_seed_same_bytes_other_seed_other_name(tmp_path: Path, product_type: str) -> None:
    first = write_product(tmp_path / "1", product_type, START, seed=11)
    again = write_product(tmp_path / "2", product_type, START, seed=11)
    assert first.name == again.name
    assert _files(first) == _files(again)
    names = {write_product(tmp_path / f"s{seed}", product_type, START, seed=seed).name for seed in range(6)}
    assert len(names) == 6


def test_payload_size_and_footprint_vary(tmp_path: Path) -> None:
    root = write_product(tmp_path, "IW_GRDH_1S", START, payload_size=10_000)
    tiffs = [p for p in (root / "measurement").iterdir()]
    assert len(tiffs) == 2 and all(p.stat().st_size == 10_000 for p in tiffs)
    footprints = set()
    for seed in range(4):
        r = write_product(tmp_path / str(seed), "IW_GRDH_1S", START, seed=seed)
        md = extract_metadata(recognise(r.name), (r / "manifest.safe").read_bytes())
        assert md.footprint is not None
        footprints.add(shape(md.footprint).centroid.wkt)
    assert len(footprints) == 4


def test_slc_has_one_measurement_per_swath_and_polarisation(tmp_path: Path) -> None:
    root = write_product(tmp_path, "IW_SLC__1S", START)
    names = sorted(p.name for p in (root / "measurement").iterdir())
    assert len(names) == 6
    assert {n.split("-")[1] for n in names} == {"iw1", "iw2", "iw3"}
    md = extract_metadata(recognise(root.name), (root / "manifest.safe").read_bytes())
    assert md.attributes["swathIdentifier"] == "IW1,IW2,IW3"


def test_refuses_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no synthetic writer"):
        write_product(tmp_path, "WV_OCN__2S", START)
    with pytest.raises(ValueError, match="timezone"):
        write_product(tmp_path, "IW_GRDH_1S", START.replace(tzinfo=None))
    with pytest.raises(ValueError, match="satellite"):
        write_product(tmp_path, "IW_GRDH_1S", START, satellite="E")
    with pytest.raises(ValueError):
        write_product(tmp_path, "IW_GRDH_1S", START, duration_s=0)
    with pytest.raises(ValueError, match="first orbit"):
        write_product(tmp_path, "IW_GRDH_1S", datetime(2000, 1, 1, tzinfo=UTC), satellite="C")
    write_product(tmp_path, "IW_GRDH_1S", START)
    with pytest.raises(FileExistsError):
        write_product(tmp_path, "IW_GRDH_1S", START)


_ORBIT_VALUES = re.compile(
    r'orbitNumber[^>]*type="start"[^>]*>(\d+)<.*?relativeOrbitNumber[^>]*type="start"[^>]*>(\d+)<.*?'
    r"cycleNumber>(\d+)<",
    re.DOTALL,
)


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared samples not available")
def test_orbit_model_reproduces_the_real_manifests() -> None:
    """The orbit numbers written into synthetic names are those real products have at that time."""
    checked = 0
    for manifest in [*SAMPLES.glob("sentinel1/*/manifest.safe"), *SAMPLES.glob("sentinel3/*/xfdumanifest.xml")]:
        product = recognise(manifest.parent.name)
        m = _ORBIT_VALUES.search(manifest.read_text(encoding="utf-8"))
        if m is None or product.validity_start is None or product.validity_start.year < 2010:
            continue  # no orbit reference, or an ESA test data set with invented dates
        assert product.satellite is not None
        state = _ORBITS[(product.mission, product.satellite)].at(product.validity_start)
        assert (state.absolute, state.relative, state.cycle) == tuple(int(v) for v in m.groups()), manifest.parent.name
        checked += 1
    assert checked >= 25


def test_footprints_crossing_the_antimeridian_are_split(tmp_path: Path) -> None:
    kinds = set()
    for seed in range(60):
        root = write_product(tmp_path / str(seed), "OL_1_EFR___", START, seed=seed, payload_size=64, duration_s=180)
        md = extract_metadata(recognise(root.name), (root / "xfdumanifest.xml").read_bytes())
        assert md.footprint is not None
        g = shape(md.footprint)
        assert g.is_valid and g.area < 400  # never a band around the globe
        kinds.add(md.footprint["type"])
    assert kinds == {"Polygon", "MultiPolygon"}
