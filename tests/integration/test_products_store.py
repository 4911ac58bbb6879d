"""Products described and verified where they really live: in a SeaweedFS bucket."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.ingestion.upload import upload_product
from shared.platform.seaweed import SeaweedFS
from shared.products import write_product
from shared.products.describe import describe
from shared.settings import Settings
from shared.storage.objects import ObjectStore

pytestmark = pytest.mark.integration
START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(seaweed: SeaweedFS) -> ObjectStore:
    objects = ObjectStore(
        Settings(
            s3_endpoint_url=seaweed.s3_endpoint, s3_access_key=seaweed.access_key, s3_secret_key=seaweed.secret_key
        )
    )
    objects.ensure_bucket("products-under-test")
    return objects


@pytest.mark.parametrize("product_type", ["IW_GRDH_1S", "OL_1_EFR___", "S2MSI1C"])
def test_a_product_in_a_bucket_is_described_and_verifies(store: ObjectStore, tmp_path: Path, product_type: str) -> None:
    product = write_product(tmp_path, product_type, START, seed=3)
    upload_product(store, "products-under-test", product)
    description = describe(f"s3://products-under-test/{product.name}/", store)
    assert description.integrity is not None and description.integrity.ok
    assert description.metadata.validity_start == START
    assert description.metadata.footprint is not None


def test_a_flipped_byte_in_a_bucket_is_named(store: ObjectStore, tmp_path: Path) -> None:
    product = write_product(tmp_path, "IW_SLC__1S", START, seed=4)
    member = next(p for p in sorted(product.rglob("*.tiff")))
    data = bytearray(member.read_bytes())
    data[0] ^= 0x80
    member.write_bytes(bytes(data))
    upload_product(store, "products-under-test", product)
    report = describe(f"s3://products-under-test/{product.name}", store).integrity
    assert report is not None and not report.ok
    assert any(path.endswith(member.name) for path in report.wrong_checksum)
