"""The product factory's Sentinel-2 and Sentinel-3 writers: what they write is recognised, verified on ingestion,
described by the catalog's metadata extraction, and complete for the preparation step's triggers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from shapely.geometry import shape

from events import ObjectCreated, ProductIngested
from shared.catalog.database import CatalogDatabase
from shared.ingestion.inbox import Inbox
from shared.ingestion.ledger import InboxLedger
from shared.ingestion.upload import upload_product
from shared.processing.queries import CatalogObject
from shared.processing.triggers import coverage_gaps, datastrip_state
from shared.products import bucket_for, recognise
from shared.products.describe import Description, describe
from shared.products.factory import make_product, supported
from shared.products.integrity import digest_mismatches, hash_chunks
from shared.products.manifest import read_manifest
from shared.settings import Settings
from shared.storage.objects import ObjectStore

T = datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)
DS = "S2A_OPER_MSI_L0__DS_REFS_20240501T110000_S20240501T100000_N02.14"
DS_L1B = "S2A_OPER_MSI_L1B_DS_REFS_20240501T113000_S20240501T100000_N05.11"
DS_L1C = "S2A_OPER_MSI_L1C_DS_REFS_20240501T114500_S20240501T100000_N05.11"
GRANULE_S = 3.608


@dataclass(frozen=True)
class Case:
    product_type: str
    duration_s: float | None  # None: open-ended validity
    footprint: bool  # the real product has one
    satellite: str = "A"
    options: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)  # expected catalog attributes
    whole_seconds: bool = False  # the validity is written to the second (AUX headers)

    def __str__(self) -> str:
        return self.product_type


CASES = [
    Case("MSI_L0__DS", 10.0, True, attributes={"datastripId": "{name}"}),
    Case("MSI_L0__GR", GRANULE_S, True, options={"datastrip": DS, "detector": 7},
         attributes={"datastripId": DS, "detectorId": "07"}),
    Case("MSI_L1B_DS", 30.0, True, satellite="B", attributes={"datastripId": "{name}"}),
    Case("MSI_L1B_GR", GRANULE_S, True, options={"datastrip": DS_L1B, "detector": "12"},
         attributes={"datastripId": DS_L1B, "detectorId": "12"}),
    Case("MSI_L1C_DS", 30.0, True, attributes={"datastripId": "{name}"}),
    Case("MSI_L1C_TL", 5.0, True, options={"datastrip": DS_L1C, "tile": "T31TDH"},
         attributes={"datastripId": DS_L1C, "tileId": "31TDH"}),
    Case("AUX_UT1UTC", 365 * 86400.0, False, satellite="_", whole_seconds=True),
    Case("GIP_PROBAS", None, False, satellite="B", whole_seconds=True),
    Case("AUX_ECMWFD", 86400.0, False, whole_seconds=True),
    Case("OL_0_EFR___", 180.0, True),
    Case("TM_0_NAT___", 6060.0, False),
    Case("OL_1_EFR___", 180.0, True, attributes={"timeliness": "NR", "processingLevel": "1"}),
    Case("OL_1_ERR___", 2652.0, True, satellite="B", options={"timeliness": "NT"}, attributes={"timeliness": "NT"}),
    Case("OL_2_LFR___", 180.0, True, attributes={"processingLevel": "2"}),
    Case("OL_2_LRR___", 2656.0, True),
    Case("OL_2_WFR___", 180.0, True),
    Case("OL_2_WRR___", 2656.0, True),
    *(Case(t, 10 * 86400.0, False, attributes={"timeliness": "AL"})
      for t in ("AX___FRO_AX", "AX___OSF_AX", "AX___MF1_AX", "OL_1_INS_AX", "OL_1_CLUTAX", "OL_1_EO__AX",
                "AX___DEM_AX", "OL_2_PCP_AX")),
    Case("AX___BB2_AX", None, False, satellite="_"),
]  # fmt: skip


def make(directory: Path, case: Case, start: datetime = T, **kwargs: Any) -> Path:
    stop = None if case.duration_s is None else start + timedelta(seconds=case.duration_s)
    kwargs.setdefault("options", case.options)
    return make_product(directory, case.product_type, start, stop, satellite=case.satellite, payload_size=512,
                        **kwargs)  # fmt: skip


def assert_manifest_verifies(root: Path) -> int:
    """As ingestion checks a delivery: every listed file with its size and every digest, nothing unlisted."""
    product = recognise(root.name)
    assert product.manifest_name is not None
    inventory = read_manifest((root / product.manifest_name).read_bytes())
    files = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    files.pop(product.manifest_name)
    assert sorted(o.path for o in inventory.objects) == sorted(files)
    checked = 0
    for item in inventory.objects:
        assert not item.unsupported
        assert item.size is None or item.size == len(files[item.path])
        if item.digests:
            computed = hash_chunks([files[item.path]], [a for a, _ in item.digests])
            assert digest_mismatches(item, computed) == [], item.path
            checked += 1
    return checked


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_product_is_recognised_verified_and_described(tmp_path: Path, case: Case) -> None:
    assert supported(case.product_type)
    root = make(tmp_path, case)
    assert root.parent == tmp_path and root.is_dir()
    product = recognise(root.name)
    assert product.product_type == case.product_type
    assert product.satellite == (None if case.satellite == "_" else case.satellite)

    checked = assert_manifest_verifies(root)
    if product.packaging != "EEF":  # an Earth Explorer header names its data block, without a digest
        assert checked > 0
    description: Description = describe(root)
    assert description.integrity.ok, description.integrity.to_json()

    metadata = description.metadata
    start = T.replace(microsecond=0) if case.whole_seconds else T
    stop = FAR_FUTURE if case.duration_s is None else start + timedelta(seconds=case.duration_s)
    assert (metadata.validity_start, metadata.validity_stop) == (start, stop)
    if product.validity_start is not None:  # the name's, to the second
        assert product.validity_start == T.replace(microsecond=0)
    if case.footprint:
        assert metadata.footprint is not None
        geometry = shape(metadata.footprint)
        assert geometry.is_valid and geometry.area > 0
    else:
        assert metadata.footprint is None
    assert metadata.attributes["productType"] == case.product_type
    for key, value in case.attributes.items():
        assert metadata.attributes.get(key) == value.format(name=root.name), key
    if product.mission == "S2" and product.family != "S2_AUX":
        assert metadata.attributes["platformSerialIdentifier"] == case.satellite
        assert isinstance(metadata.attributes["orbitNumber"], int)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_same_arguments_same_bytes(tmp_path: Path, case: Case) -> None:
    first, second, other = (make(tmp_path / d, case, seed=s) for d, s in (("a", 5), ("b", 5), ("c", 6)))
    assert first.name == second.name

    def files(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    assert files(first) == files(second)
    assert files(first) != files(other)
    with pytest.raises(FileExistsError):
        make(tmp_path / "a", case, seed=5)


@pytest.mark.parametrize("product_type", ["MSI_L0__GR", "MSI_L1C_TL", "GIP_PROBAS", "OL_0_EFR___", "AX___FRO_AX"])
def test_the_inbox_verifies_and_moves_a_delivered_product(tmp_path: Path, product_type: str) -> None:
    case = next(c for c in CASES if c.product_type == product_type)
    root = make(tmp_path, case)
    with mock_aws():
        settings = Settings(s3_access_key="testing", s3_secret_key="testing")
        store = ObjectStore(settings)
        store.ensure_bucket(settings.inbox_bucket)
        inbox = Inbox(store, settings, InboxLedger(CatalogDatabase(f"sqlite:///{tmp_path / 'ledger.db'}")))
        replies = []
        for key in upload_product(store, settings.inbox_bucket, root):
            head = store.head(settings.inbox_bucket, key)
            assert head is not None
            created = ObjectCreated(store="aws", bucket=settings.inbox_bucket, key=key, size=head.size,
                                    etag=head.etag, event_time=T)  # fmt: skip
            replies.append(inbox.on_object_created(created))
        (ingested,) = [r for r in replies if r is not None]
        assert isinstance(ingested, ProductIngested), ingested
        assert ingested.bucket == bucket_for(recognise(root.name).family)
        assert store.list(settings.inbox_bucket) == []


@pytest.mark.parametrize("product_type", ["MSI_L0__GR", "MSI_L1C_TL", "MSI_L1C_DS", "OL_1_EFR___", "OL_2_WRR___"])
def test_a_given_footprint_replaces_the_orbit_models(tmp_path: Path, product_type: str) -> None:
    ring = [(2.0, 48.0), (3.0, 48.0), (3.0, 49.0), (2.0, 49.0), (2.0, 48.0)]  # (lon, lat)
    case = next(c for c in CASES if c.product_type == product_type)
    root = make(tmp_path, case, footprint=ring)
    footprint = describe(root).metadata.footprint
    assert footprint is not None
    assert shape(footprint).bounds == pytest.approx((2.0, 48.0, 3.0, 49.0))


def test_writers_refuse_what_they_cannot_write(tmp_path: Path) -> None:
    stop = T + timedelta(seconds=5)
    with pytest.raises(ValueError, match="detector"):
        make_product(tmp_path, "MSI_L0__GR", T, stop, options={"detector": 13})
    with pytest.raises(ValueError, match="tile"):
        make_product(tmp_path, "MSI_L1C_TL", T, stop, options={"tile": "31tdh"})
    with pytest.raises(ValueError, match="satellite"):
        make_product(tmp_path, "MSI_L0__DS", T, stop, satellite="_")
    with pytest.raises(ValueError, match="stop"):
        make_product(tmp_path, "OL_1_EFR___", T, None)
    with pytest.raises(ValueError, match="no writer"):
        make_product(tmp_path, "OL_1_EFR__", T, stop)


# -- the S2 datastrip trigger ---------------------------------------------------------------------------


def cataloged(root: Path) -> CatalogObject:
    """The product as the catalog keeps it (see shared.catalog.cataloging) and the preparation step reads it."""
    product = recognise(root.name)
    metadata = describe(root).metadata
    bucket = bucket_for(product.family)
    return CatalogObject(
        product.name, product.product_type, product.satellite, bucket, product.name,
        metadata.validity_start or product.validity_start, metadata.validity_stop or product.validity_stop,
        dict(metadata.attributes), family=product.family,
    )  # fmt: skip


def test_a_datastrip_and_the_granules_of_its_12_detectors_are_complete(tmp_path: Path) -> None:
    ds_root = make_product(tmp_path, "MSI_L0__DS", T, T + timedelta(seconds=10), seed=1)
    datastrip = cataloged(ds_root)
    assert (datastrip.validity_start, datastrip.validity_stop) == (T, T + timedelta(seconds=10))
    granules: list[CatalogObject] = []
    for detector in range(1, 13):
        for i in range(3):  # 0, 3.608, 7.216 s: the last one reaches 10.824 s
            start = T + timedelta(seconds=i * GRANULE_S)
            root = make_product(tmp_path, "MSI_L0__GR", start, start + timedelta(seconds=GRANULE_S), seed=1,
                                options={"datastrip": ds_root.name, "detector": detector})  # fmt: skip
            granules.append(cataloged(root))
    assert len({g.name for g in granules}) == 36
    assert all(g.attributes["datastripId"] == ds_root.name for g in granules)
    # Granules are made with their datastrip: its site, creation and baseline are in their names.
    assert all(g.name.split("_S2024")[0].replace("_GR_", "_DS_") == ds_root.name.split("_S2024")[0] for g in granules)

    state = datastrip_state(datastrip, granules, 12, GRANULE_S, 1)
    assert state.complete and state.missing == () and len(state.granules) == 36

    holed = [g for g in granules if not (g.attributes["detectorId"] == "05" and g.validity_start != T)]
    state = datastrip_state(datastrip, holed, 12, GRANULE_S, 1)
    assert not state.complete and len(state.missing) == 1 and state.missing[0].startswith("detector 05")


def test_s3_products_cover_a_window_back_to_back(tmp_path: Path) -> None:
    """The S3 coverage trigger reads validity windows: consecutive frames leave no gap."""
    case = next(c for c in CASES if c.product_type == "OL_1_EFR___")
    spans = []
    for i in range(3):
        root = make(tmp_path, case, start=T + timedelta(seconds=180 * i))
        o = cataloged(root)
        assert o.validity_start is not None and o.validity_stop is not None
        spans.append((o.validity_start, o.validity_stop))
    assert coverage_gaps(spans, T, T + timedelta(seconds=540), 3.0) == []
