"""Zip-delivered SAFE products: read in place by ranged GETs, described from the manifest inside, cataloged under
their real name (one product whatever form it came in), and open-ended validity shown as PRIP shows it."""

import hashlib
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from moto import mock_aws

from events import ProductIngested, ProductRejected, RejectionReason
from shared.catalog import open_catalog
from shared.catalog.cataloging import Cataloguer
from shared.catalog.database import CatalogDatabase
from shared.catalog.model import product_id
from shared.catalog.odata.entities import product_json
from shared.ingestion.inbox import Arrival, Inbox
from shared.ingestion.ledger import InboxLedger
from shared.ingestion.upload import product_files, upload_product
from shared.products import ManifestError, extract_metadata, recognise, write_product
from shared.products.describe import describe
from shared.products.factory import make_product
from shared.products.integrity import LocalDirectory
from shared.products.s1 import product_type_group
from shared.products.zipped import ZippedProduct, describe_object, open_object, real_name, verify_zip
from shared.settings import Settings
from shared.storage.objects import ObjectStore, metered

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
BUCKET = "zips"


@pytest.fixture
def store(tmp_path: Path):
    with mock_aws():
        settings = Settings(s3_access_key="testing", s3_secret_key="testing", catalog_url=f"sqlite:///{tmp_path}/c.db")
        objects = ObjectStore(settings)
        objects.ensure_bucket(BUCKET)
        objects.ensure_bucket(settings.inbox_bucket)
        yield objects, settings


@pytest.fixture
def product(tmp_path: Path) -> Path:
    # 3 MiB of measurement data: a describe that read the whole zip would show in the bytes read.
    return write_product(tmp_path / "made", "IW_GRDH_1S", START, payload_size=3 * 1024 * 1024)


def zip_of(product: Path, name: str | None = None, top: str | None = None, drop: str | None = None) -> Path:
    """The product zipped as producers and CDSE do: members under ``<top>/`` (default: the product's name)."""
    archive = product.parent / (name or f"{product.name}.zip")
    folder = product.name if top is None else top
    with zipfile.ZipFile(archive, "w") as zf:
        for path, key in product_files(product):
            inner = key.split("/", 1)[1]
            if inner != drop:
                zf.write(path, f"{folder}/{inner}" if folder else inner)
    return archive


def put(objects: ObjectStore, archive: Path, bucket: str = BUCKET):
    objects.client.upload_file(str(archive), bucket, archive.name)
    found = objects.head(bucket, archive.name)
    assert found is not None
    return found


def test_a_zip_is_described_in_place_with_a_few_ranged_reads_and_the_metadata_of_its_directory(
    store, product: Path
) -> None:
    objects, _ = store
    stored = put(objects, zip_of(product))
    zipped = recognise(stored.key)
    with metered() as meter:
        metadata = describe_object(objects, BUCKET, stored, recognise(zipped.name[:-4]))
    unzipped = extract_metadata(recognise(product.name), (product / "manifest.safe").read_bytes())
    assert metadata.footprint == unzipped.footprint is not None
    assert metadata.attributes == unzipped.attributes and len(metadata.attributes) > 10
    assert meter.requests <= 4 and meter.bytes_read < stored.size / 2  # never the whole zip


def test_the_reader_reads_every_member_as_the_zip_holds_it(store, product: Path) -> None:
    objects, _ = store
    archive = zip_of(product)
    stored = put(objects, archive)
    with open_object(objects, BUCKET, stored, read_ahead=64 * 1024) as file:
        files = ZippedProduct(file, stored.key)
        local = LocalDirectory(product)
        assert files.top_folder == product.name and files.sizes() == local.sizes()
        for path in local.sizes():
            assert files.read(path) == local.read(path)
            assert files.digests(path, ["md5"]) == local.digests(path, ["md5"])


def test_a_cdse_style_zip_named_without_safe_is_the_safe_it_holds(store, product: Path) -> None:
    objects, _ = store
    stem = product.name.removesuffix(".SAFE")
    stored = put(objects, zip_of(product, name=f"{stem}.zip"))
    with open_object(objects, BUCKET, stored) as file:
        assert real_name(recognise(stored.key), ZippedProduct(file, stored.key)) == product.name
    members_at_top = put(objects, zip_of(product, name=f"{product.name}.zip", top=""))
    with open_object(objects, BUCKET, members_at_top) as file:
        assert real_name(recognise(members_at_top.key), ZippedProduct(file, members_at_top.key)) == product.name


def test_a_zip_missing_a_listed_file_does_not_verify_nor_describe(store, product: Path) -> None:
    objects, _ = store
    tiff = next(p for p in sorted(product.rglob("*.tiff")))
    stored = put(objects, zip_of(product, drop=tiff.relative_to(product).as_posix()))
    verdict = verify_zip(objects, BUCKET, stored, recognise(stored.key))
    assert isinstance(verdict, str) and tiff.name in verdict
    with pytest.raises(ManifestError, match=tiff.name):
        describe_object(objects, BUCKET, stored, recognise(product.name))


def test_a_zip_that_is_no_zip_is_refused_in_words(store, tmp_path: Path, product: Path) -> None:
    objects, _ = store
    fake = tmp_path / f"{product.name}.zip"
    fake.write_bytes(b"PK but not really a zip" * 10)
    verdict = verify_zip(objects, BUCKET, put(objects, fake), recognise(fake.name))
    assert isinstance(verdict, str) and "not a readable zip" in verdict


def ingest(store, tmp_path: Path, local: Path) -> list[object]:
    objects, settings = store
    inbox = Inbox(objects, settings, InboxLedger(CatalogDatabase(f"sqlite:///{tmp_path / 'ledger.db'}")))
    keys = upload_product(objects, settings.inbox_bucket, local)
    return [inbox.ingest(local.name, Arrival(key, START)) for key in keys]


def test_a_zipped_safe_is_cataloged_once_under_its_real_name_with_footprint_and_attributes(
    store, tmp_path: Path, product: Path
) -> None:
    objects, settings = store
    archive = zip_of(product)
    (event,) = ingest(store, tmp_path, archive)
    assert isinstance(event, ProductIngested)
    assert event.product.name == product.name and event.product.product_id == product_id(product.name)
    assert event.key == archive.name and event.content_type == "application/zip" and event.manifest_key is None
    assert event.checksum == hashlib.md5(archive.read_bytes()).hexdigest()
    cataloguer = Cataloguer(objects, open_catalog("sqlite:///:memory:"), settings)
    cataloguer.on_product_ingested(event)
    entry = cataloguer.catalog.get(product_id(product.name))
    assert entry is not None and entry.name == product.name and entry.key == archive.name
    assert entry.content_length == archive.stat().st_size and entry.footprint is not None
    unzipped = extract_metadata(recognise(product.name), (product / "manifest.safe").read_bytes())
    assert entry.attributes == unzipped.attributes
    assert cataloguer.on_product_ingested(event).product.name == product.name  # a redelivery: the same
    assert cataloguer.catalog.get(product_id(f"{product.name}.zip")) is None


def test_a_zip_of_a_product_already_ingested_unzipped_makes_no_second_product(
    store, tmp_path: Path, product: Path
) -> None:
    objects, settings = store
    (directory,) = [r for r in ingest(store, tmp_path, product) if r is not None]
    assert isinstance(directory, ProductIngested)
    (again,) = ingest(store, tmp_path, zip_of(product))
    assert isinstance(again, ProductIngested) and again.key == directory.key and again.product == directory.product
    assert objects.list(settings.inbox_bucket) == []  # the zip is dropped: its content is already there
    assert objects.head(directory.bucket, f"{product.name}.zip") is None


def test_a_zip_with_another_manifest_than_the_product_ingested_unzipped_is_a_conflict(
    store, tmp_path: Path, product: Path
) -> None:
    ingest(store, tmp_path, product)
    manifest = product / "manifest.safe"
    manifest.write_bytes(manifest.read_bytes().replace(b"</xfdu:XFDU>", b"<!-- reprocessed --></xfdu:XFDU>"))
    (rejected,) = ingest(store, tmp_path, zip_of(product))
    assert isinstance(rejected, ProductRejected) and rejected.reason is RejectionReason.CONFLICT


def test_an_open_ended_validity_ends_as_prip_writes_it(store, tmp_path: Path) -> None:
    objects, settings = store
    aux = make_product(tmp_path / "aux", "AUX_CAL", START, None)  # valid until further notice
    events = [r for r in ingest(store, tmp_path, aux) if r is not None]
    (event,) = events
    cataloguer = Cataloguer(objects, open_catalog("sqlite:///:memory:"), settings)
    cataloguer.on_product_ingested(event)  # type: ignore[arg-type]
    entry = cataloguer.catalog.get(product_id(aux.name))
    assert entry is not None and entry.validity_stop is None
    assert product_json(entry)["ContentDate"]["End"] == "9999-12-31T23:59:59.999Z"


@pytest.mark.parametrize(
    ("group", "product_type", "member"),
    [("GRD", "IW_GRDH_1S", True), ("GRD", "EW_GRDM_1S", True), ("RAW", "IW_RAW__0S", True),
     ("SLC", "IW_SLC__1S", True), ("OCN", "IW_OCN__2S", True), ("GRD", "IW_SLC__1S", False),
     ("SLC", "AUX_CAL", False)],
)  # fmt: skip
def test_cdse_product_type_groups_cover_their_kind(group: str, product_type: str, member: bool) -> None:
    marker = product_type_group(group)
    assert marker is not None and (marker in product_type) is member
    assert product_type_group(product_type) is None


def test_refsys_describe_reads_a_stored_zip_in_place_and_verifies_it(store, product: Path) -> None:
    objects, _ = store
    stored = put(objects, zip_of(product))
    description = describe(f"s3://{BUCKET}/{stored.key}", objects)
    assert description.integrity.ok and description.integrity.checked_checksums > 0
    assert description.metadata.footprint is not None and description.product.name == stored.key
