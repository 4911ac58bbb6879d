"""STAC items of products validate against the offline STAC 1.1.0 item schema (no network)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator
from referencing import Registry, Resource

from shared.products import write_product
from shared.products.describe import describe
from shared.products.stac import EXTENSIONS, to_stac_item

SCHEMAS = Path(__file__).resolve().parents[2].parent / "shared" / "schemas" / "stac"
SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"
needs_schemas = pytest.mark.skipif(not SCHEMAS.is_dir(), reason="shared STAC schemas not available")


def _validator() -> Draft7Validator:
    resources = []
    for path in SCHEMAS.glob("geojson/*.json"):
        schema = json.loads(path.read_text(encoding="utf-8"))
        resources.append((schema["$id"], Resource.from_contents(schema)))
    for path in SCHEMAS.glob("stac-spec/v1.1.0/item-spec/json-schema/*.json"):
        schema = json.loads(path.read_text(encoding="utf-8"))
        # Registered under the published file URL: common.json's own $id is misspelt "commonjson" upstream.
        url = f"https://schemas.stacspec.org/v1.1.0/item-spec/json-schema/{path.name}"
        resources.append((url, Resource.from_contents(schema)))
    registry: Registry[Any] = Registry().with_resources(resources)
    item = json.loads((SCHEMAS / "stac-spec/v1.1.0/item-spec/json-schema/item.json").read_text(encoding="utf-8"))
    return Draft7Validator(item, registry=registry)


@pytest.fixture(scope="module")
def validator() -> Draft7Validator:
    return _validator()


def _valid(validator: Draft7Validator, item: dict[str, Any]) -> None:
    errors = sorted(validator.iter_errors(item), key=str)
    assert not errors, [e.message for e in errors[:3]]


@needs_schemas
@pytest.mark.parametrize("product_type", ["IW_GRDH_1S", "IW_RAW__0S", "OL_1_EFR___", "S2MSI1C"])
def test_factory_products_render_valid_items(validator: Draft7Validator, product_type: str, tmp_path: Path) -> None:
    root = write_product(tmp_path, product_type, datetime(2024, 5, 1, 10, tzinfo=UTC))
    d = describe(root)
    item = to_stac_item(d.product, d.metadata)
    _valid(validator, item)
    assert item["properties"]["product:type"] == product_type
    assert EXTENSIONS["sat"] in item["stac_extensions"]
    assert item["bbox"] and item["geometry"]["type"] in ("Polygon", "MultiPolygon")


@needs_schemas
@pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared samples not available")
@pytest.mark.parametrize(
    ("sample", "extensions"),
    [
        ("sentinel1/S1A_IW_GRDH_1SDV_20210809T173953_20210809T174018_039156_049F13_6FF8.SAFE", {"sat", "sar"}),
        ("sentinel2/S2A_MSIL1C_20210908T042701_N0301_R133_T46RER_20210908T070248.SAFE", {"eo", "processing"}),
        ("sentinel2/S2A_MSIL2A_20230821T221941_N0509_R029_T01KAB_20230822T021825.SAFE", {"eo"}),
        ("aux/S1A_OPER_AUX_RESORB_OPOD_20230823T162050_V20230823T123139_20230823T154909.EOF", {"processing"}),
        ("sentinel1/DCS_02_L20171109175634707000125/DCS_02_L20171109175634707000125_ch1_DSIB.xml", set()),
    ],
)
def test_sample_items_validate_with_their_extensions(
    validator: Draft7Validator, sample: str, extensions: set[str]
) -> None:
    d = describe(SAMPLES / sample)
    item = to_stac_item(d.product, d.metadata)
    _valid(validator, item)
    assert {EXTENSIONS[e] for e in extensions} <= set(item["stac_extensions"])
    if "sar" in extensions:
        assert item["properties"]["sar:polarizations"] == ["VV", "VH"]
        assert item["properties"]["sar:instrument_mode"] == "IW"


def test_an_item_across_the_antimeridian_has_a_bbox_with_west_greater_than_east() -> None:
    from shared.products.stac import stac_bbox

    split = {
        "type": "MultiPolygon",
        "coordinates": [
            [[[179.0, -10.0], [180.0, -10.0], [180.0, -9.0], [179.0, -9.0], [179.0, -10.0]]],
            [[[-180.0, -10.0], [-179.5, -10.0], [-179.5, -9.0], [-180.0, -9.0], [-180.0, -10.0]]],
        ],
    }
    assert stac_bbox(split) == [179.0, -10.0, -179.5, -9.0]
    polygon = {"type": "Polygon", "coordinates": [[[1.0, 2.0], [3.0, 2.0], [3.0, 4.0], [1.0, 2.0]]]}
    assert stac_bbox(polygon) == [1.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize(
    "sample",
    [
        "S3A_OL_1_EFR____20211021T073827_20211021T074112_20211021T091357_0164_077_334_4320_LN1_O_NR_002.SEN3",
        "S3A_SL_1_RBT____20210930T220914_20210930T221214_20211002T102150_0180_077_043_5400_LN2_O_NT_004.SEN3",
    ],
)
def test_olci_and_slstr_items_are_not_sar_items(validator: Draft7Validator, sample: str) -> None:
    # Their manifests say operationalMode "EO": a PRIP attribute, not a SAR instrument mode.
    d = describe(SAMPLES / "sentinel3" / sample)
    assert d.metadata.attributes.get("operationalMode") == "EO"
    item = to_stac_item(d.product, d.metadata)
    _valid(validator, item)
    assert EXTENSIONS["sar"] not in item["stac_extensions"]
    assert not [key for key in item["properties"] if key.startswith("sar:")]
    assert item["id"] == sample  # the product name, as the catalog's STAC API names it
