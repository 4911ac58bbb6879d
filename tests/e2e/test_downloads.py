"""Downloads on the embedded platform: an uploaded SAFE product, once cataloged, downloads as a zip of exactly
its ``ContentLength`` whose MD5 is its ``Checksum``, resumes with ``Range``, and its quicklook is a CDSE asset
whose download link ends at the image (as eodag and a browser follow it)."""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from shared.ingestion.upload import upload_product
from shared.platform.embedded import EmbeddedPlatform
from shared.products import write_real_shape
from tests.e2e.test_platform import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("platform")]
START = datetime(2024, 6, 2, 8, 30, tzinfo=UTC)


def test_an_uploaded_safe_downloads_verified_and_resumable(platform: EmbeddedPlatform, tmp_path: Path) -> None:
    product = write_real_shape(tmp_path, "S1_SLC", START)
    upload_product(platform.object_store(), platform.settings.inbox_bucket, product)
    odata = str(platform.endpoints()["odata"])
    query = {"$filter": f"Name eq '{product.name}'", "$expand": "Assets"}

    def found() -> list[dict]:
        return requests.get(f"{odata}/Products", params=query, timeout=10).json().get("value", [])

    (entity,) = wait_for(found, "the product in the OData catalog", timeout=90)  # type: ignore[misc]
    url = f"{odata}/Products({entity['Id']})/$value"
    response = requests.get(url, timeout=30)
    assert response.status_code == 200, response.text
    data = response.content
    assert len(data) == entity["ContentLength"] == int(response.headers["Content-Length"])
    assert hashlib.md5(data).hexdigest() == entity["Checksum"][0]["Value"]
    files = {p.relative_to(product).as_posix(): p.read_bytes() for p in product.rglob("*") if p.is_file()}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert {n.removeprefix(f"{product.name}/"): archive.read(n) for n in archive.namelist()} == files

    cut = len(data) // 3
    rest = requests.get(url, headers={"Range": f"bytes={cut}-"}, timeout=30)
    assert rest.status_code == 206 and data[:cut] + rest.content == data

    (asset,) = entity["Assets"]
    assert asset["Type"] == "QUICKLOOK" and asset["DownloadLink"].startswith(odata)
    image = requests.get(asset["DownloadLink"], timeout=10)  # 307 to the store, followed
    assert image.status_code == 200 and image.content == files["preview/quick-look.png"]
