"""Downloads that verify, against SeaweedFS and both catalog databases: a re-inflated real product is ingested
and cataloged, its ``$value`` has the entry's ``ContentLength`` and ``Checksum``, a download resumed with
``Range`` reassembles the same bytes, and its quicklooks are found and served as CDSE's ``Assets``."""

from __future__ import annotations

import hashlib
import io
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import flask
import pytest
import requests

from events import ProductCataloged
from shared.catalog import CatalogEntry, CatalogStore, open_catalog
from shared.catalog.archives import ArchiveStore, asset_id
from shared.catalog.cataloging import Cataloguer
from shared.catalog.database import CatalogDatabase
from shared.catalog.odata.service import ODataService
from shared.ingestion.inbox import Arrival, Inbox
from shared.ingestion.ledger import InboxLedger
from shared.ingestion.upload import upload_product
from shared.platform.seaweed import SeaweedFS
from shared.products import write_real_shape
from shared.settings import Settings
from shared.storage.objects import ObjectStore

pytestmark = pytest.mark.integration
START = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)


@dataclass
class Deployment:
    settings: Settings
    store: ObjectStore
    catalog: CatalogStore
    archives: ArchiveStore
    client: Any  # flask test client of the OData service

    def catalog_product(self, product: Path) -> tuple[ProductCataloged, CatalogEntry]:
        inbox = Inbox(self.store, self.settings, InboxLedger(CatalogDatabase(self.settings.catalog_url)))
        keys = upload_product(self.store, self.settings.inbox_bucket, product)
        (ingested,) = [r for r in (inbox.ingest(product.name, Arrival(key, START)) for key in keys) if r is not None]
        reply = Cataloguer(self.store, self.catalog, self.settings).on_product_ingested(ingested)
        assert isinstance(reply, ProductCataloged)
        entry = self.catalog.get(reply.product.product_id)
        assert entry is not None
        return reply, entry


@pytest.fixture
def deployment(seaweed: SeaweedFS, catalog_url: str) -> Iterator[Deployment]:
    tag = uuid.uuid4().hex[:8]
    settings = Settings(
        s3_endpoint_url=seaweed.s3_endpoint,
        s3_access_key=seaweed.access_key,
        s3_secret_key=seaweed.secret_key,
        inbox_bucket=f"inbox-{tag}",
        quarantine_bucket=f"quarantine-{tag}",
        bucket_prefix=f"d{tag}-",
        catalog_url=catalog_url,
    )
    store = ObjectStore(settings)
    store.ensure_bucket(settings.inbox_bucket)
    catalog = open_catalog(catalog_url)
    archives = ArchiveStore(catalog_url)
    service = ODataService(lambda: catalog, lambda: store, archives=lambda: archives)
    app = flask.Flask(__name__)
    app.add_url_rule("/<path:path>", "odata", lambda path: service.handle(flask.request), methods=["GET", "HEAD"])
    try:
        yield Deployment(settings, store, catalog, archives, app.test_client())
    finally:
        catalog.close()
        archives.close()


def _product_files(product: Path) -> dict[str, bytes]:
    return {p.relative_to(product).as_posix(): p.read_bytes() for p in product.rglob("*") if p.is_file()}


def test_a_safe_download_has_the_cataloged_length_and_checksum_and_resumes(
    deployment: Deployment, tmp_path: Path
) -> None:
    product = write_real_shape(tmp_path, "S2_L1C", START)
    files = _product_files(product)
    reply, entry = deployment.catalog_product(product)
    assert reply.content_length == entry.content_length  # the announcement and the entry agree
    assert entry.content_length != sum(len(b) for b in files.values())  # the zip's, no longer the objects' sum

    body = deployment.client.get(f"/odata/v1/Products({entry.id})").get_json()
    response = deployment.client.get(f"/odata/v1/Products({entry.id})/$value")
    assert response.status_code == 200 and response.headers["Accept-Ranges"] == "bytes"
    data = response.get_data()
    assert len(data) == body["ContentLength"] == int(response.headers["Content-Length"])
    assert hashlib.md5(data).hexdigest() == body["Checksum"][0]["Value"] == response.headers["ETag"].strip('"')
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        assert {n.removeprefix(f"{entry.name}/"): archive.read(n) for n in archive.namelist()} == files

    # An interrupted download resumed from where it stopped (If-Range: only if it is still the same zip).
    cut = len(data) * 2 // 5
    rest = deployment.client.get(
        f"/odata/v1/Products({entry.id})/$value",
        headers={"Range": f"bytes={cut}-", "If-Range": response.headers["ETag"]},
    )
    assert rest.status_code == 206
    assert rest.headers["Content-Range"] == f"bytes {cut}-{len(data) - 1}/{len(data)}"
    assert data[:cut] + rest.get_data() == data
    tail = deployment.client.get(f"/odata/v1/Products({entry.id})/$value", headers={"Range": "bytes=-100"})
    assert tail.status_code == 206 and tail.get_data() == data[-100:]
    stale = deployment.client.get(
        f"/odata/v1/Products({entry.id})/$value", headers={"Range": "bytes=0-9", "If-Range": '"0123"'}
    )
    assert stale.status_code == 200 and stale.get_data() == data  # another version: the whole zip

    beyond = deployment.client.get(f"/odata/v1/Products({entry.id})/$value", headers={"Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{len(data)}"
    assert beyond.get_json()["error"]["code"] == "RangeNotSatisfiable"
    head = deployment.client.head(f"/odata/v1/Products({entry.id})/$value")
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(data) and head.get_data() == b""


def test_a_redelivery_reuses_the_index_and_a_changed_object_is_still_served(
    deployment: Deployment, tmp_path: Path
) -> None:
    product = write_real_shape(tmp_path, "S1_SLC", START)
    _, entry = deployment.catalog_product(product)
    again = Cataloguer(deployment.store, deployment.catalog, deployment.settings)
    index = deployment.archives.get(entry.id)
    assert index is not None and (index.length, index.md5) == (entry.content_length, entry.checksum)
    # The same announcement again: the same entry (nothing written), the index as it was.
    again.on_product_ingested(_ingested_again(entry))
    assert deployment.catalog.get(entry.id) == entry and deployment.archives.get(entry.id) == index

    # An object rewritten behind the catalog's back: served as before (no length promised), never wrong bytes.
    member = index.members[3]
    deployment.store.put(entry.bucket, entry.key + member.path, b"rewritten")
    response = deployment.client.get(f"/odata/v1/Products({entry.id})/$value")
    assert response.status_code == 200 and "Content-Length" not in response.headers
    with zipfile.ZipFile(io.BytesIO(response.get_data())) as archive:
        assert archive.read(f"{entry.name}/{member.path}") == b"rewritten"


def _ingested_again(entry: CatalogEntry) -> Any:
    from events import ProductIngested
    from shared.ingestion.inbox import identity
    from shared.products import recognise

    name = recognise(entry.name)
    return ProductIngested(
        product=identity(name),
        bucket=entry.bucket,
        key=entry.key,
        content_length=entry.content_length,
        checksum=entry.checksum,
        content_type=entry.content_type,
        manifest_key=entry.key + (name.manifest_name or ""),
        inbox_time=entry.inbox_time,
        ingestion_time=entry.ingestion_time,
    )


@pytest.mark.parametrize(
    ("shape", "pattern"), [("S1_SLC", "preview/quick-look.png"), ("S2_L1C", "QI_DATA/T46RER_20240601T100000_PVI.jp2")]
)
def test_quicklooks_are_found_and_served_as_cdse_assets(
    deployment: Deployment, tmp_path: Path, shape: str, pattern: str
) -> None:
    product = write_real_shape(tmp_path, shape, START)  # type: ignore[arg-type]
    files = _product_files(product)
    _, entry = deployment.catalog_product(product)
    (quicklook,) = entry.quicklooks
    path = quicklook.removeprefix(entry.key)
    assert path.endswith(pattern)

    expanded = deployment.client.get(
        f"/odata/v1/Products?$filter=Name eq '{entry.name}'&$expand=Attributes&$expand=Assets"  # as eodag asks
    ).get_json()
    (found,) = expanded["value"]
    assert found["Attributes"]
    (asset,) = found["Assets"]
    assert asset["Type"] == "QUICKLOOK" and asset["Id"] == asset_id(entry.id, quicklook)
    assert asset["DownloadLink"] == f"http://localhost/odata/v1/Assets({asset['Id']})/$value"
    assert asset["S3Path"] == f"/{entry.bucket}/{quicklook}"

    redirect = deployment.client.get(f"/odata/v1/Assets({asset['Id']})/$value")
    assert redirect.status_code == 307
    image = requests.get(redirect.headers["Location"], timeout=10)
    assert image.status_code == 200 and image.content == files[path]
    entity = deployment.client.get(f"/odata/v1/Assets({asset['Id']})").get_json()
    assert entity["DownloadLink"] == asset["DownloadLink"]
    assert deployment.client.get(f"/odata/v1/Assets({uuid.uuid4()})/$value").status_code == 404
    images = deployment.client.get(f"/odata/v1/Products({entry.id})/Quicklooks").get_json()["value"]
    assert images == [{"Image": path.rsplit("/", 1)[-1]}]
