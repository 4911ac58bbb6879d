"""Every shared sample is recognised and described; metadata from each product's own files; hostile XML."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from shapely.geometry import shape

from shared.products import ManifestError, extract_metadata, recognise, root_of
from shared.products.describe import describe

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"
needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared samples not available")


def _sample_files() -> list[str]:
    if not SAMPLES.is_dir():
        return []
    subs = ("sentinel1", "sentinel2", "sentinel3", "aux")  # not tasktables/ and joborders/
    return sorted(p.relative_to(SAMPLES).as_posix() for s in subs for p in (SAMPLES / s).rglob("*") if p.is_file())


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@needs_samples
@pytest.mark.parametrize("key", _sample_files())
def test_every_sample_file_is_recognised_and_described(key: str) -> None:
    root = root_of(key)
    assert root is not None, key
    description = describe(SAMPLES / root)
    out = description.to_json()
    json.dumps(out)  # serialisable
    assert out["mission"] in ("S1", "S2", "S3") and out["family"]
    md = description.metadata
    assert md.attributes["productType"] == description.product.product_type
    if description.product.family != "EDRS_SESSION" or description.product.packaging == "XML":
        assert md.validity_start is not None
    if md.footprint is not None:
        g = shape(md.footprint)
        assert g.is_valid and not g.is_empty and md.footprint["type"] in ("Polygon", "MultiPolygon", "LineString")
        minx, miny, maxx, maxy = g.bounds
        assert -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90
        assert g.area < 360 * 180 / 2  # never a polygon wrapping the globe (full-orbit S3 stripes are big)


@needs_samples
def test_products_with_coordinates_have_a_footprint() -> None:
    for key in _sample_files():
        if key.endswith(("manifest.safe", "xfdumanifest.xml")):
            text = (SAMPLES / key).read_text(encoding="utf-8")
            if "coordinates>" in text or "posList>" in text:
                assert describe(SAMPLES / key.rsplit("/", 1)[0]).metadata.footprint is not None, key


@needs_samples
def test_antimeridian_product_is_a_small_multipolygon() -> None:
    md = describe(SAMPLES / "sentinel2/S2A_MSIL2A_20230821T221941_N0509_R029_T01KAB_20230822T021825.SAFE").metadata
    assert md.footprint is not None and md.footprint["type"] == "MultiPolygon"
    g = shape(md.footprint)
    assert g.is_valid and g.area < 2
    assert {round(x) for poly in g.geoms for x, _ in poly.exterior.coords} >= {180, -180}


@needs_samples
def test_s2_user_product_reads_its_mtd_files() -> None:
    d = describe(SAMPLES / "sentinel2/S2A_MSIL1C_20210908T042701_N0301_R133_T46RER_20210908T070248.SAFE")
    a = d.metadata.attributes
    assert a["cloudCover"] == pytest.approx(88.2972)
    assert a["tileId"] == "46RER"
    assert a["datastripId"] == "S2A_OPER_MSI_L1C_DS_VGS4_20210908T070248_S20210908T043714_N03.01"
    assert a["processingBaseline"] == "03.01" and a["relativeOrbitNumber"] == 133
    assert a["orbitDirection"] == "DESCENDING"
    assert d.metadata.validity_start == d.metadata.validity_stop == _utc("2021-09-08T04:27:01.024")


@needs_samples
def test_s2_items_without_manifest_use_their_metadata_files() -> None:
    tile = describe(SAMPLES / "sentinel2/S2A_OPER_MSI_L1C_TL_SGS__20181231T203637_A018414_T10SDG")
    assert tile.metadata.attributes["tileId"] == "10SDG"
    assert tile.metadata.validity_start == _utc("2018-12-31T19:04:06.567")
    assert tile.integrity.error == "manifest manifest.safe is missing"
    l0u = describe(SAMPLES / "sentinel2/S2B_OPER_MSI_L0U_DS_REFS_20220614T090618_S20220413T114741_N00.00")
    assert l0u.metadata.validity_start == _utc("2022-04-13T11:47:41.009")
    assert l0u.metadata.attributes["platformSerialIdentifier"] == "B"
    granule = describe(SAMPLES / "sentinel2/S2A_OPER_MSI_L0__GR_SGS__20191001T101733_S20191001T083650_D01_N02.08")
    assert granule.metadata.attributes["detectorId"] == "01" and granule.metadata.footprint is not None
    sad = describe(
        SAMPLES / "aux/S2A_OPER_AUX_SADATA_EPAE_20190222T003515_V20190221T190438_20190221T204519_A019158_WF_LN"
    )
    assert sad.metadata.attributes["orbitNumber"] == 19158 and sad.integrity.ok


@needs_samples
def test_earth_explorer_headers() -> None:
    orbit = describe(SAMPLES / "aux/S1A_OPER_AUX_RESORB_OPOD_20230823T162050_V20230823T123139_20230823T154909.EOF")
    a = orbit.metadata.attributes
    assert (a["fileType"], a["platformShortName"], a["platformSerialIdentifier"]) == ("AUX_RESORB", "SENTINEL-1", "A")
    assert orbit.metadata.validity_stop == _utc("2023-08-23T15:49:09")
    assert a["orbitNumber"] == 50002 and a["lastOrbitNumber"] > 50002
    gipp = describe(SAMPLES / "aux/S2B_OPER_GIP_DATATI_MPC__20170428T123038_V20170322T000000_21000101T000000_B00")
    assert gipp.metadata.validity_stop == _utc("2100-01-01T00:00:00") and gipp.integrity.ok
    report = describe(SAMPLES / "aux/S1A_OPER_REP__SUP___20181208T070000_20181208T111500_0001.EOF")
    assert report.product.family == "PLAN_AND_REPORT" and report.metadata.attributes["fileType"] == "REP__SUP__"


@needs_samples
def test_edrs_session_information_block() -> None:
    folder = SAMPLES / "sentinel1/DCS_02_L20171109175634707000125"
    d = describe(folder / "DCS_02_L20171109175634707000125_ch1_DSIB.xml")
    a = d.metadata.attributes
    assert (a["sessionId"], a["channelId"], a["stationCode"]) == ("L20171109175634707000125", 1, "02")
    assert d.metadata.validity_start == _utc("2017-12-13T14:59:48")
    assert a["numberOfChunks"] == len(str(a["rawNames"]).split(",")) > 10
    chunk = recognise("DCS_02_L20171109175634707000125_ch1_DSDB_00014.raw")
    assert (chunk.name_field("session_id"), chunk.name_field("channel")) == ("L20171109175634707000125", "1")


@needs_samples
def test_s3_granule() -> None:
    name = "S3A_SL_0_SLT__G_20040702T235915_20040703T000415_20150424T160530___________________WER_D_______.ISIP"
    d = describe(SAMPLES / "sentinel3" / name)
    assert d.metadata.attributes["granuleNumber"] == 16
    assert d.metadata.validity_start == _utc("2004-07-02T23:59:15.906")


# -- safe XML: malformed, truncated or hostile documents give an error naming the file -------------------

_BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<Level-1C_Tile_ID>&lol2;</Level-1C_Tile_ID>"""
_EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Level-1C_Tile_ID>&xxe;</Level-1C_Tile_ID>"""
_HOSTILE = {
    "bomb": _BOMB,
    "external entity": _EXTERNAL,
    "truncated": b"<Level-1C_Tile_ID><TILE_ID>x",
    "garbage": b"\x00\xff",
}


@needs_samples
@pytest.mark.parametrize("document", list(_HOSTILE.values()), ids=list(_HOSTILE))
def test_hostile_metadata_file_is_an_error_naming_it(document: bytes, tmp_path: Path) -> None:
    import shutil

    name = "S2A_MSIL1C_20210908T042701_N0301_R133_T46RER_20210908T070248.SAFE"
    root = tmp_path / name
    shutil.copytree(SAMPLES / "sentinel2" / name, root)
    tile = next(root.glob("GRANULE/*/MTD_TL.xml"))
    tile.write_bytes(document)
    with pytest.raises(ManifestError, match=r"MTD_TL\.xml"):
        describe(root)


@pytest.mark.parametrize("document", list(_HOSTILE.values()), ids=list(_HOSTILE))
def test_hostile_manifest_is_an_error_naming_it(document: bytes) -> None:
    product = recognise(
        "S3A_OL_1_EFR____20211021T073827_20211021T074112_20211021T091357_0164_077_334_4320_LN1_O_NR_002"
    )
    with pytest.raises(ManifestError, match=r"xfdumanifest\.xml"):
        extract_metadata(product, document)
    eof = recognise("S1A_OPER_AUX_RESORB_OPOD_20171213T143838_V20171213T102737_20171213T134507.EOF")
    with pytest.raises(ManifestError, match="AUX_RESORB"):
        extract_metadata(eof, document)
