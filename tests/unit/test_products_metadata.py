"""Metadata extraction from the real sample manifests (S1 manifest.safe, S3 xfdumanifest.xml, S2 SAFE)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from shapely.geometry import shape

from shared.products import ManifestError, ProductMetadata, extract_metadata, recognise

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"
MANIFESTS = sorted([*SAMPLES.glob("*/*/manifest.safe"), *SAMPLES.glob("*/*/xfdumanifest.xml")])
pytestmark = pytest.mark.skipif(not MANIFESTS, reason="shared samples not available")


def _extract(sub: str, name: str) -> ProductMetadata:
    directory = SAMPLES / sub / name
    manifest = next(p for p in directory.iterdir() if p.name in ("manifest.safe", "xfdumanifest.xml"))
    return extract_metadata(recognise(name), manifest.read_bytes())


def _vertices(geometry: dict[str, Any]) -> set[tuple[float, float]]:
    return {(p[0], p[1]) for p in geometry["coordinates"][0]}


def _has_vertex(geometry: dict[str, Any], lon: float, lat: float) -> bool:
    # Output coordinates are rounded to 1e-9 degree.
    return any(abs(x - lon) < 1e-8 and abs(y - lat) < 1e-8 for x, y in _vertices(geometry))


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_s1_grd_matches_its_manifest() -> None:
    md = _extract("sentinel1", "S1A_IW_GRDH_1SDV_20180227T145344_20180227T145413_020794_023A69_C0B5.SAFE")
    assert md.validity_start == _utc("2018-02-27T14:53:44.184986")
    assert md.validity_stop == _utc("2018-02-27T14:54:13.190581")
    # <gml:coordinates>12.378114,48.279240 12.829241,50.603844 11.081389,50.958828 10.625828,48.649940 (lat,lon)
    assert md.footprint is not None and md.footprint["type"] == "Polygon"
    assert _vertices(md.footprint) == {(48.27924, 12.378114), (50.603844, 12.829241), (50.958828, 11.081389),
                                       (48.64994, 10.625828)}  # fmt: skip
    a = md.attributes
    assert a["beginningDateTime"] == md.validity_start and a["endingDateTime"] == md.validity_stop
    assert (a["orbitNumber"], a["relativeOrbitNumber"], a["cycleNumber"]) == (20794, 72, 133)
    assert a["orbitDirection"] == "ASCENDING"
    assert (a["platformShortName"], a["platformSerialIdentifier"]) == ("SENTINEL-1", "A")
    assert (a["instrumentShortName"], a["operationalMode"], a["swathIdentifier"]) == ("SAR", "IW", "IW")
    assert (a["productType"], a["productClass"], a["polarisationChannels"]) == ("IW_GRDH_1S", "S", "VV,VH")
    assert (a["missionDatatakeID"], a["instrumentConfigurationID"]) == (146025, 6)
    assert (a["sliceProductFlag"], a["sliceNumber"], a["totalSlices"]) == (True, 1, 23)
    assert a["timeliness"] == "NRT-3h" and a["productComposition"] == "Slice"
    assert (a["processorName"], a["processorVersion"]) == ("Sentinel-1 IPF", "002.82")
    assert a["processingCenter"] == "Airbus DS-Newport"
    assert a["processingDate"] == _utc("2018-05-31T08:23:39.379021")
    assert a["segmentStartTime"] == _utc("2018-02-27T14:53:44.490700")
    assert a["startTimeFromAscendingNode"] == pytest.approx(164278.8)


def test_s1_level0_slice() -> None:
    md = _extract("sentinel1", "S1A_IW_RAW__0SDV_20171213T121623_20171213T121656_019684_021735_C6DB.SAFE")
    assert md.validity_start == _utc("2017-12-13T12:16:23.685188")
    assert md.validity_stop == _utc("2017-12-13T12:16:56.085136")
    # Closed, counter-clockwise ring of 5 points in the manifest -> the same 4 corners.
    assert md.footprint is not None
    assert _vertices(md.footprint) == {(86.8273, 36.7787), (86.4312, 38.7338), (83.6235, 38.4629), (84.0935, 36.5091)}
    a = md.attributes
    assert (a["orbitNumber"], a["relativeOrbitNumber"], a["orbitDirection"]) == (19684, 12, "ASCENDING")
    assert a["polarisationChannels"] == "VH,VV"
    assert (a["productConsolidation"], a["sliceNumber"], a["productClass"]) == ("SLICE", 13, "S")
    assert a["operationalMode"] == "IW" and "swathIdentifier" not in a


def test_s1_wave_and_rf_footprints() -> None:
    rf = _extract("sentinel1", "S1A_RF_RAW__0SVH_20200120T110827_20200120T110827_030883_038B52_18C1.SAFE")
    assert rf.footprint == {"type": "LineString", "coordinates": [[-71.7765, 31.7206], [-71.7821, 31.6998]]}
    wv = _extract("sentinel1", "S1B_WV_SLC__1SSV_20210403T083025_20210403T084452_026300_032390_D542.SAFE")
    assert wv.footprint is not None and wv.footprint["type"] == "MultiPolygon"
    assert len(wv.footprint["coordinates"]) == 60  # one polygon per vignette
    assert wv.attributes["swathIdentifier"] == "WV1,WV2"


def test_s1_aux_safe() -> None:
    md = _extract("aux", "S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE")
    assert md.validity_start == _utc("2017-10-17T08:00:00")
    assert md.validity_stop is None  # open-ended
    assert md.footprint is None
    assert md.attributes["instrumentConfigurationID"] == 6
    assert md.attributes["productType"] == "AUX_CAL"
    assert md.attributes["processingDate"] == _utc("2017-10-13T10:12:00")
    tro = _extract("aux", "S1__AUX_TRO_V20190805T180000_20190805T235959_G20200518T084534.SAFE")
    assert tro.validity_stop == _utc("2019-08-05T23:59:59")
    assert tro.attributes["processingDate"] == _utc("2020-05-18T08:45:34")  # written "2020-05-18-T08:45:34"


def test_s3_olci_matches_its_manifest() -> None:
    md = _extract(
        "sentinel3",
        "S3A_OL_1_EFR____20211021T073827_20211021T074112_20211021T091357_0164_077_334_4320_LN1_O_NR_002.SEN3",
    )
    assert md.validity_start == _utc("2021-10-21T07:38:27.254946")
    assert md.validity_stop == _utc("2021-10-21T07:41:12.194233")
    assert md.footprint is not None and md.footprint["type"] == "Polygon"
    # posList "-72.343 -44.0441 ..." is lat lon.
    assert _has_vertex(md.footprint, -44.0441, -72.343)
    assert len(md.footprint["coordinates"][0]) == 47
    a = md.attributes
    assert (a["platformShortName"], a["platformSerialIdentifier"]) == ("SENTINEL-3", "A")
    assert (a["instrumentShortName"], a["operationalMode"]) == ("OLCI", "EO")
    assert (a["orbitNumber"], a["relativeOrbitNumber"], a["cycleNumber"]) == (29567, 334, 77)
    assert a["orbitDirection"] == "DESCENDING"
    assert (a["productType"], a["timeliness"], a["baselineCollection"]) == ("OL_1_EFR___", "NR", "002")
    assert (a["processorName"], a["processorVersion"], a["processingLevel"]) == ("PUG", "03.39", "1")
    assert a["processingDate"] == _utc("2021-10-21T09:14:03")
    assert a["creationDate"] == _utc("2021-10-21T09:13:57")
    assert a["salineWaterCover"] == 44.0 and a["brightCover"] == 99.0


def test_s3_aux_validity_comes_from_the_manifest() -> None:
    md = _extract(
        "aux", "S3A_AX___BA__AX_20040702T223000_20040704T042158_20171130T082116___________________WER_D_AL____.SEN3"
    )
    assert md.validity_start == _utc("2004-07-02T22:30:00")
    assert md.validity_stop == _utc("2004-07-04T04:21:58")
    assert md.footprint is None
    assert md.attributes["timeliness"] == "AL"


def test_s3_antimeridian_footprint() -> None:
    md = _extract(
        "sentinel3",
        "S3A_SY_2_SYN____20210325T005418_20210325T005718_20210325T142858_0180_070_031_1620_LN2_O_ST_002.SEN3",
    )
    assert md.footprint is not None and md.footprint["type"] == "MultiPolygon"
    g = shape(md.footprint)
    assert g.is_valid and g.bounds[0] == -180.0 and g.bounds[2] == 180.0
    assert g.area < 1000  # the naive polygon would wrap the globe


def test_s2_user_product() -> None:
    md = _extract("sentinel2", "S2A_MSIL1C_20210908T042701_N0301_R133_T46RER_20210908T070248.SAFE")
    assert md.validity_start == md.validity_stop == _utc("2021-09-08T04:27:01.024")
    assert md.footprint is not None and md.footprint["type"] == "Polygon"
    # gml:coordinates "28.023673957735582 93.43341763893636 ..." is lat lon, space separated.
    assert _has_vertex(md.footprint, 93.43341763893636, 28.023673957735582)
    a = md.attributes
    assert (a["platformShortName"], a["platformSerialIdentifier"], a["instrumentShortName"]) == (
        "SENTINEL-2", "A", "MSI",
    )  # fmt: skip
    assert (a["orbitNumber"], a["relativeOrbitNumber"], a["orbitDirection"]) == (32448, 133, "DESCENDING")
    assert (a["productType"], a["tileId"], a["processingBaseline"]) == ("S2MSI1C", "46RER", "03.01")


def test_s2_user_product_on_the_antimeridian() -> None:
    md = _extract("sentinel2", "S2A_MSIL2A_20230821T221941_N0509_R029_T01KAB_20230822T021825.SAFE")
    assert md.footprint is not None and md.footprint["type"] == "MultiPolygon"
    assert shape(md.footprint).area == pytest.approx(1.02, abs=0.01)


def test_s2_pdgs_items_have_times_and_platform() -> None:
    md = _extract("sentinel2", "S2A_OPER_MSI_L0__DS_SGS__20200420T205828_S20200322T173347_N02.08")
    assert md.validity_start == _utc("2020-03-22T17:33:47.072")  # <acquisitionPeriod startTime="..."/>
    assert (md.attributes["platformShortName"], md.attributes["platformSerialIdentifier"]) == ("SENTINEL-2", "A")
    hktm = _extract("sentinel2", "S2A_OPER_PRD_HKTM___20191203T051837_20191203T051842_0001.SAFE")
    assert hktm.validity_stop == _utc("2019-12-03T05:18:42.000319")
    assert hktm.attributes["orbitNumber"] == 23225


_START = re.compile(r"<(?:\w+:)?startTime>([^<]+)<")
_STOP = re.compile(r"<(?:\w+:)?stopTime>([^<]+)<")
_ORBIT = re.compile(r'<(?:[\w-]+:)?orbitNumber[^>]*type="start"[^>]*>(\d+)<')


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.parent.name[:60])
def test_every_sample_manifest(manifest: Path) -> None:
    product = recognise(manifest.parent.name)
    md = extract_metadata(product, manifest.read_bytes())
    text = manifest.read_text(encoding="utf-8")
    # Times and orbit equal what the XML says (read here independently, with regexes).
    if m := _START.search(text):
        assert md.validity_start == datetime.fromisoformat(m[1].replace("Z", "")).replace(tzinfo=UTC)
    if m := _STOP.search(text):
        assert md.validity_stop == datetime.fromisoformat(m[1].replace("Z", "")).replace(tzinfo=UTC)
    if m := _ORBIT.search(text):
        assert md.attributes["orbitNumber"] == int(m[1])
    assert md.validity_start is not None and md.validity_start.tzinfo is not None
    assert md.attributes["productType"] == product.product_type
    assert md.attributes["platformShortName"] == f"SENTINEL-{product.mission[1]}"
    for key, value in md.attributes.items():
        assert isinstance(value, str | int | float | bool | datetime), key
        if isinstance(value, datetime):
            assert value.tzinfo is not None, key
    if md.footprint is not None:
        g = shape(md.footprint)
        assert g.is_valid and not g.is_empty
        minx, miny, maxx, maxy = g.bounds
        assert -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90
    has_coordinates = "coordinates>" in text or "posList>" in text
    assert (md.footprint is not None) == has_coordinates


def test_an_eof_file_is_described_by_its_earth_explorer_header() -> None:
    name = "S1A_OPER_AUX_RESORB_OPOD_20171213T143838_V20171213T102737_20171213T134507.EOF"
    md = extract_metadata(recognise(name), (SAMPLES / "aux" / name).read_bytes())
    assert md.validity_start == _utc("2017-12-13T10:27:37")
    assert md.validity_stop == _utc("2017-12-13T13:45:07")
    assert md.footprint is None
    assert md.attributes["productType"] == "AUX_RESORB"
    assert md.attributes["platformSerialIdentifier"] == "A"


def test_zipped_product_uses_the_inner_manifest() -> None:
    name = "S1A_IW_GRDH_1SDV_20180227T145344_20180227T145413_020794_023A69_C0B5"
    manifest = (SAMPLES / "sentinel1" / f"{name}.SAFE" / "manifest.safe").read_bytes()
    zipped = extract_metadata(recognise(f"{name}.SAFE.zip"), manifest)
    plain = extract_metadata(recognise(f"{name}.SAFE"), manifest)
    assert zipped == plain


def test_corrupt_manifest() -> None:
    product = recognise("S1A_IW_GRDH_1SDV_20180227T145344_20180227T145413_020794_023A69_C0B5.SAFE")
    with pytest.raises(ManifestError, match="not well-formed"):
        extract_metadata(product, b"<xfdu:XFDU")
    bad_time = (
        b'<xfdu:XFDU xmlns:xfdu="urn:ccsds:schema:xfdu:1"><metadataSection><metadataObject ID="acquisitionPeriod">'
        b"<acquisitionPeriod><startTime>yesterday</startTime></acquisitionPeriod></metadataObject>"
        b"</metadataSection></xfdu:XFDU>"
    )
    with pytest.raises(ManifestError, match="yesterday"):
        extract_metadata(product, bad_time)


def test_malformed_secondary_values_are_left_out() -> None:
    product = recognise("S1A_IW_GRDH_1SDV_20180227T145344_20180227T145413_020794_023A69_C0B5.SAFE")
    doc = (
        b'<xfdu:XFDU xmlns:xfdu="urn:ccsds:schema:xfdu:1"><metadataSection>'
        b'<metadataObject ID="o"><orbitReference><orbitNumber type="start">12x</orbitNumber>'
        b"<cycleNumber>7</cycleNumber></orbitReference></metadataObject>"
        b'<metadataObject ID="f"><frameSet><footPrint><coordinates>1,2 oops</coordinates></footPrint>'
        b"</frameSet></metadataObject></metadataSection></xfdu:XFDU>"
    )
    md = extract_metadata(product, doc)
    assert "orbitNumber" not in md.attributes and md.attributes["cycleNumber"] == 7
    assert md.footprint is None
    # Nothing in the manifest: the validity of the name.
    assert md.validity_start == product.validity_start and md.validity_stop == product.validity_stop
