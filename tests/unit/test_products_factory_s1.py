"""The S1 writers of the product factory write products the catalog and the preparation step read back right."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from shapely.geometry import Polygon, shape

from shared.processing.queries import CatalogObject
from shared.processing.triggers import (
    datatake_of,
    is_segment,
    segment_of,
    segment_state,
    session_objects_of,
    session_state,
)
from shared.products import extract_metadata, metadata_from_name, recognise
from shared.products.describe import describe
from shared.products.factory import make_product, supported
from shared.products.integrity import open_product, verify_product
from shared.products.metadata import ProductMetadata

START = datetime(2024, 5, 17, 10, 11, 12, 345678, tzinfo=UTC)
STOP = START + timedelta(seconds=25)
WHOLE = START.replace(microsecond=0)

L0 = ["IW_RAW__0S", "EW_RAW__0S", "WV_RAW__0S", "S3_RAW__0S", "RF_RAW__0S", "EN_RAW__0S"]
ACN = ["IW_RAW__0A", "EW_RAW__0C", "WV_RAW__0N", "S1_RAW__0A"]
LEVEL12 = ["IW_SLC__1S", "IW_GRDH_1S", "IW_SLC__1A", "IW_GRDH_1A", "EW_GRDM_1A", "WV_SLC__1A", "S2_SLC__1A"]
LEVEL12 += ["WV_OCN__2S", "WV_OCN__2A", "IW_OCN__2S", "IW_OCN__2A"]
AUX_SAFE = ["AUX_PP1", "AUX_PP2", "AUX_CAL", "AUX_INS", "AUX_WND", "AUX_WAV", "AUX_ICE", "AUX_ECE"]
ORBITS = ["MPL_ORBPRE", "MPL_ORBSCT", "AUX_RESORB", "AUX_POEORB", "AUX_PREORB"]
ALL = ["SESSION", *L0, *ACN, *LEVEL12, *AUX_SAFE, *ORBITS, "AUX_OBMEMC"]


def _files(root: Path) -> dict[str, bytes]:
    if root.is_file():
        return {root.name: root.read_bytes()}
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _verified(root: Path) -> ProductMetadata:
    """Describe the product as `refsys describe` does; its manifest must verify every file's size and digest."""
    description = describe(root)
    files = open_product(root)
    assert files is not None
    report = verify_product(files, description.product)
    assert report.ok, report.to_json()
    assert report.listed == report.checked_checksums == len(_files(root)) - 1  # all but the manifest
    return description.metadata


def _catalog_object(path: Path) -> CatalogObject:
    """What the catalog step stores for one delivered object (see shared/catalog/cataloging.py)."""
    product = recognise(path.name)
    if product.packaging in ("EOF", "XML"):
        md = extract_metadata(product, path.read_bytes(), document_name=path.name)
    elif product.manifest_name is not None:
        md = extract_metadata(product, (path / product.manifest_name).read_bytes())
    else:
        md = metadata_from_name(product)
    return CatalogObject(
        product.name, product.product_type, product.satellite, "bucket", product.name,
        md.validity_start or product.validity_start, md.validity_stop or product.validity_stop,
        dict(md.attributes), family=product.family, publication_time=START,
    )  # fmt: skip


def _make(tmp_path: Path, product_type: str, stop: datetime | None = STOP, **kwargs: Any) -> Path:
    return make_product(tmp_path, product_type, START, stop, seed=kwargs.pop("seed", 5), payload_size=512, **kwargs)


def test_every_type_is_supported() -> None:
    assert all(supported(t) for t in ALL)
    assert not supported("IW_ETA__AX")


# -- level products ----------------------------------------------------------------------------------


@pytest.mark.parametrize("product_type", L0 + ACN + LEVEL12)
def test_level_products_verify_and_describe_their_window_footprint_and_datatake(
    tmp_path: Path, product_type: str
) -> None:
    root = _make(tmp_path, product_type, options={"datatake": 0x038B5E})
    assert root.parent == tmp_path and root.is_dir() and root.name.endswith(".SAFE")
    product = recognise(root.name)
    assert product.product_type == product_type and product.satellite == "A"
    assert product.name_field("datatake_id") == "038B5E"
    md = _verified(root)
    assert (md.validity_start, md.validity_stop) == (START, STOP)
    a = md.attributes
    assert a["productType"] == product_type and a["platformSerialIdentifier"] == "A"
    assert a["missionDatatakeID"] == 0x038B5E
    assert a["polarisationChannels"] == "VV,VH"
    assert a["productClass"] == product_type[-1]
    assert a["orbitNumber"] == int(product.name_field("absolute_orbit") or "")
    assert md.footprint is not None and shape(md.footprint).is_valid and shape(md.footprint).area > 0


def test_a_slice_is_a_slice(tmp_path: Path) -> None:
    root = _make(tmp_path, "IW_RAW__0S", options={"slice_number": 4, "total_slices": 9, "polarisation": "DH"})
    md = _verified(root)
    a = md.attributes
    assert a["sliceProductFlag"] is True and a["productConsolidation"] == "SLICE"
    assert (a["sliceNumber"], a["totalSlices"]) == (4, 9)
    assert a["polarisationChannels"] == "HH,HV" and "_0SDH_" in root.name
    o = _catalog_object(root)
    assert o.family == "L0_SLICE" and not is_segment(o) and segment_of(o) is None


@pytest.mark.parametrize("position", ["FULL", "BEGIN", "CONTINUE", "END"])
def test_a_segment_says_its_consolidation_as_the_triggers_read_it(tmp_path: Path, position: str) -> None:
    options = {"slicing": "segment", "consolidation": position, "polarisation": "VH", "datatake": 0x038B5E}
    root = _make(tmp_path, "IW_RAW__0S", options=options)
    assert "_0SVH_" in root.name
    a = _verified(root).attributes
    assert a["sliceProductFlag"] is False and "sliceNumber" not in a
    assert a["productConsolidation"] == ("FULL" if position == "FULL" else "PARTIAL")
    assert a["productSensingConsolidation"] == position
    assert a["polarisationChannels"] == "VH"
    segment = segment_of(_catalog_object(root))
    assert segment is not None
    assert (segment.datatake, segment.polarisation, segment.sensing) == ("S1A_038B5E", "VH", position)


def test_full_segments_of_both_polarisations_cover_their_datatake(tmp_path: Path) -> None:
    objects = [
        _catalog_object(
            _make(tmp_path, "IW_RAW__0S", options={"slicing": "segment", "polarisation": p, "datatake": 77})
        )
        for p in ("VV", "VH")
    ]
    assert {datatake_of(o.name) for o in objects} == {"S1A_00004D"}
    segments = [s for s in (segment_of(o) for o in objects) if s is not None]
    state = segment_state(segments)
    assert state.complete and state.missing == () and (state.start, state.stop) == (START, STOP)
    # A chain BEGIN..END of a single-polarisation datatake covers it too; BEGIN alone does not.
    chain = [
        make_product(tmp_path / "chain", "EW_RAW__0S", START + timedelta(seconds=25 * i),
                     START + timedelta(seconds=25 * (i + 1)),
                     options={"slicing": "segment", "consolidation": c, "polarisation": "SH", "datatake": 78})
        for i, c in enumerate(("BEGIN", "CONTINUE", "END"))
    ]  # fmt: skip
    found = [segment_of(_catalog_object(p)) for p in chain]
    assert all(s is not None for s in found)
    assert segment_state([s for s in found if s is not None]).complete
    assert not segment_state([s for s in found[:1] if s is not None]).complete


def test_level1_and_level2_products_carry_their_slice_and_composition(tmp_path: Path) -> None:
    a = _verified(_make(tmp_path, "IW_GRDH_1A", options={"slice_number": 2, "total_slices": 23})).attributes
    assert (a["sliceProductFlag"], a["sliceNumber"], a["totalSlices"]) == (True, 2, 23)
    assert a["productComposition"] == "Slice" and a["segmentStartTime"] == START
    root = _make(tmp_path, "WV_OCN__2S", options={"polarisation": "SV"})
    assert "_2SSV_" in root.name
    assert not any(p.suffix == ".tiff" for p in root.rglob("*"))
    a = _verified(root).attributes
    assert (a["sliceProductFlag"], a["productComposition"], a["polarisationChannels"]) == (False, "Individual", "VV")
    assert a["swathIdentifier"] == "WV1,WV2"
    annotation_only = _make(tmp_path, "IW_SLC__1A")
    assert not list(annotation_only.glob("measurement/*")) and list(annotation_only.glob("annotation/*.xml"))


@pytest.mark.parametrize("product_type", ["IW_RAW__0S", "IW_RAW__0A", "IW_SLC__1S", "WV_OCN__2A"])
def test_a_given_footprint_replaces_the_orbit_models(tmp_path: Path, product_type: str) -> None:
    ring = [(10.0, 45.0), (12.5, 45.2), (12.3, 46.9), (9.8, 46.7), (10.0, 45.0)]  # (lon, lat)
    md = _verified(_make(tmp_path, product_type, footprint=ring))
    assert md.footprint is not None
    got = shape(md.footprint)
    assert got.symmetric_difference(Polygon(ring)).area < 1e-6


def test_same_arguments_same_bytes_other_seed_other_name(tmp_path: Path) -> None:
    for product_type in ("SESSION", "IW_RAW__0S", "IW_GRDH_1A", "WV_OCN__2S", "AUX_CAL", "AUX_POEORB", "AUX_OBMEMC"):
        one = _make(tmp_path / "one", product_type)
        two = _make(tmp_path / "two", product_type)
        assert one.name == two.name and _files(one) == _files(two)
        if product_type not in ("AUX_OBMEMC", "MPL_ORBPRE"):  # their names have no seeded field
            assert _make(tmp_path / "three", product_type, seed=6).name != one.name
    with pytest.raises(FileExistsError):
        _make(tmp_path / "one", "IW_RAW__0S")


def test_bad_requests_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        _make(tmp_path, "IW_RAW__0S", stop=None)
    with pytest.raises(ValueError):
        _make(tmp_path, "IW_RAW__0S", options={"polarisation": "XY"})
    with pytest.raises(ValueError):
        _make(tmp_path, "IW_RAW__0S", options={"slicing": "segment", "consolidation": "HALF"})
    with pytest.raises(ValueError):
        _make(tmp_path, "AUX_CAL", satellite="_")
    with pytest.raises(ValueError):
        _make(tmp_path, "IW_ETA__AX")


# -- EDRS sessions -----------------------------------------------------------------------------------------


def test_a_session_of_two_channels_is_complete_once_all_its_objects_are_cataloged(tmp_path: Path) -> None:
    folder = _make(tmp_path, "SESSION", options={"session_id": "L20171109175634707000125"})
    assert folder.name == "DCS_02_L20171109175634707000125" and folder.is_dir()
    assert recognise(folder.name).product_type == "SESSION"
    names = sorted(p.name for p in folder.iterdir())
    assert len(names) == 2 + 2 * 3
    objects = [_catalog_object(folder / n) for n in names]
    for o in objects:
        assert recognise(o.name).family == "EDRS_SESSION"
        assert o.product_type == ("SESSION" if o.name.endswith("_DSIB.xml") else "RAW")
    for chunk in (folder / n for n in names if n.endswith(".raw")):
        assert chunk.stat().st_size == 512
    dsibs = [o for o in objects if o.product_type == "SESSION"]
    assert all((d.validity_start, d.validity_stop) == (START, STOP) for d in dsibs)
    assert all(d.attributes["numberOfChunks"] == 3 for d in dsibs)
    state = session_state(session_objects_of("L20171109175634707000125", objects))
    assert state.complete and state.missing == () and (state.start, state.stop) == (START, STOP)
    late = [o for o in objects if not o.name.endswith("ch2_DSDB_00003.raw")]
    state = session_state(session_objects_of("L20171109175634707000125", late))
    assert not state.complete and state.missing == ("DCS_02_L20171109175634707000125_ch2_DSDB_00003.raw",)


def test_a_single_channel_session_and_the_default_session_id(tmp_path: Path) -> None:
    folder = _make(tmp_path, "SESSION", options={"channels": 1, "chunks": 2, "station": "01"})
    session_id = folder.name.removeprefix("DCS_01_")
    assert session_id.startswith("L20240517101112") and len(session_id) == 24
    objects = [_catalog_object(p) for p in sorted(folder.iterdir())]
    assert len(objects) == 3
    state = session_state(session_objects_of(session_id, objects))
    assert state.single_channel and not state.complete


# -- auxiliary files -------------------------------------------------------------------------------------


@pytest.mark.parametrize("product_type", AUX_SAFE)
@pytest.mark.parametrize("stop", [None, STOP])
def test_aux_safe_products_have_an_open_ended_validity(
    tmp_path: Path, product_type: str, stop: datetime | None
) -> None:
    root = _make(tmp_path, product_type, stop=stop)
    assert root.name.startswith(f"S1A_{product_type}_V20240517T101112_G") and root.name.endswith(".SAFE")
    product = recognise(root.name)
    assert (product.product_type, product.family) == (product_type, "AUXILIARY_FILE")
    md = _verified(root)
    assert (md.validity_start, md.validity_stop) == (WHOLE, None)
    assert md.attributes["platformSerialIdentifier"] == "A"
    assert md.attributes["instrumentConfigurationID"] == 6
    assert md.footprint is None


@pytest.mark.parametrize("product_type", ["AUX_WND", "AUX_WAV", "AUX_ICE"])
def test_mission_wide_aux(tmp_path: Path, product_type: str) -> None:
    root = _make(tmp_path, product_type, stop=None, satellite="_")
    assert root.name.startswith(f"S1__{product_type}_V")
    product = recognise(root.name)
    assert product.satellite is None
    md = _verified(root)
    assert md.validity_start == WHOLE and "platformSerialIdentifier" not in md.attributes


@pytest.mark.parametrize("product_type", ORBITS)
def test_orbit_files_give_their_window_and_orbits(tmp_path: Path, product_type: str) -> None:
    stop = START + timedelta(hours=5)
    path = _make(tmp_path, product_type, stop=stop)
    assert path.is_file() and path.suffix == ".EOF"
    product = recognise(path.name)
    assert (product.product_type, product.packaging) == (product_type, "EOF")
    o = _catalog_object(path)
    assert (o.validity_start, o.validity_stop) == (WHOLE, stop.replace(microsecond=0))
    assert (product.validity_start, product.validity_stop) == (o.validity_start, o.validity_stop)
    a = o.attributes
    assert a["fileType"] == product_type and a["platformSerialIdentifier"] == "A"
    assert a["orbitNumber"] < a["lastOrbitNumber"]  # 5 hours: about 3 orbits
    assert describe(path).metadata.validity_start == WHOLE


@pytest.mark.parametrize("product_type", ORBITS)
def test_orbit_files_without_a_stop(tmp_path: Path, product_type: str) -> None:
    path = _make(tmp_path, product_type, stop=None)
    o = _catalog_object(path)
    assert o.validity_start == WHOLE
    if product_type == "MPL_ORBSCT":
        assert "_99999999T999999_" in path.name and o.validity_stop is None
    else:
        assert o.validity_stop is not None and o.validity_stop > WHOLE


@pytest.mark.parametrize("stop", [None, STOP])
def test_obmemc(tmp_path: Path, stop: datetime | None) -> None:
    path = _make(tmp_path, "AUX_OBMEMC", stop=stop)
    assert path.name == "S1A_OPER_AUX_OBMEMC_PDMC_20240517T101112.xml"
    o = _catalog_object(path)
    assert (o.product_type, o.validity_start, o.validity_stop) == ("AUX_OBMEMC", WHOLE, None)
    assert b"<OnBoardMemoryConfigurationUpdate>" in path.read_bytes()
