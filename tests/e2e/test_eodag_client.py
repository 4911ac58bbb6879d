"""eodag, unchanged, against the embedded platform: its ``cop_dataspace`` provider pointed at our OData root by
configuration only, searching by its own product types, time and geometry, and downloading with extraction.

eodag runs in this process with a private configuration directory, only this provider, no product-type
discovery and no external collections list; every socket it opens is checked to be on loopback, so the test
proves that nothing reaches the Internet.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from shared.ingestion.upload import product_files, upload_product
from shared.platform.embedded import EmbeddedPlatform
from shared.products import write_product
from shared.products.factory import make_product
from tests.e2e.test_platform import wait_for

eodag = pytest.importorskip("eodag")

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("platform")]
START = datetime(2024, 7, 1, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def loopback_only() -> Iterator[list[str]]:
    """Refuse (and record) any connection this process opens to a non-loopback address."""
    refused: list[str] = []
    connect = socket.socket.connect

    def guarded(sock: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else None
        inet = host is not None and sock.family in (socket.AF_INET, socket.AF_INET6)
        if inet and not ipaddress.ip_address(str(host).split("%")[0]).is_loopback:
            refused.append(str(host))
            raise ConnectionRefusedError(f"test: no network beyond loopback ({host})")
        return connect(sock, address)

    socket.socket.connect = guarded  # type: ignore[method-assign]
    yield refused
    socket.socket.connect = connect  # type: ignore[method-assign]


@pytest.fixture(scope="module")
def products(platform: EmbeddedPlatform, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One product of each kind, ingested and cataloged: an S1 GRD delivered zipped (as CDSE serves it), an S1
    orbit file (one object), an S2 L1C and an S3 OLCI SAFE/SEN3 delivered as directories."""
    made = tmp_path_factory.mktemp("eodag-products")
    grd = write_product(made / "grd", "IW_GRDH_1S", START, seed=41)
    archive = made / f"{grd.name}.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path, key in product_files(grd):
            zf.write(path, key)
    every = {
        "grd": grd,
        "grd.zip": archive,
        "orbit": make_product(made / "orbit", "AUX_POEORB", START - timedelta(hours=3), START + timedelta(hours=23)),
        "s2": write_product(made / "s2", "S2MSI1C", START + timedelta(minutes=1), seed=42),
        "s3": write_product(made / "s3", "OL_1_EFR___", START + timedelta(minutes=2), seed=43),
    }
    for key in ("grd.zip", "orbit", "s2", "s3"):
        upload_product(platform.object_store(), platform.settings.inbox_bucket, every[key])
    odata = str(platform.endpoints()["odata"])
    names = [every[k].name for k in ("grd", "orbit", "s2", "s3")]  # the zip is cataloged as the SAFE it holds
    query = {"$filter": " or ".join(f"Name eq '{n}'" for n in names), "$top": "10"}
    wait_for(
        lambda: len(requests.get(f"{odata}/Products", params=query, timeout=10).json().get("value", [])) == 4,
        "the four products in the OData API",
        timeout=120,
    )
    return every


@pytest.fixture(scope="module")
def dag(platform: EmbeddedPlatform, tmp_path_factory: pytest.TempPathFactory, loopback_only: list[str]) -> Any:
    from eodag import EODataAccessGateway
    from eodag.config import EODAGSettings

    home = tmp_path_factory.mktemp("eodag")
    (home / "ext.json").write_text("{}")
    settings = EODAGSettings(
        cfg_dir=home / "config",
        providers_whitelist=["cop_dataspace"],  # only this provider is loaded
        strict_collections=True,  # no product-type discovery
        ext_collections_cfg_uri=str(home / "ext.json"),  # no collections list fetched from the Internet
    )
    gateway = EODataAccessGateway(settings=settings)
    odata = str(platform.endpoints()["odata"])
    gateway.update_providers_config(
        f"""
        cop_dataspace:
          search:
            api_endpoint: '{odata}/Products'
            metadata_mapping:
              eodag:download_link: '{odata}/Products({{uid}})/$value'
          download:
            output_dir: '{home / "downloads"}'
        """
    )
    return gateway


def search(dag: Any, collection: str, **criteria: Any) -> list[Any]:
    return list(dag.search(collection=collection, provider="cop_dataspace", raise_errors=True, **criteria))


def names(results: list[Any]) -> set[str]:
    return {r.properties["title"] for r in results}


def stem(path: Path) -> str:
    return path.name.removesuffix(".SAFE").removesuffix(".SEN3")


def window() -> dict[str, str]:
    """Two hours around START, as eodag's ``start``/``end`` (it sends ContentDate/Start lt end, End gt start)."""
    return {"start": (START - timedelta(hours=1)).isoformat(), "end": (START + timedelta(hours=1)).isoformat()}


def test_eodag_finds_s2_and_s3_products_by_its_product_types(dag: Any, products: dict[str, Path]) -> None:
    assert stem(products["s2"]) in names(search(dag, "S2_MSI_L1C", **window()))
    assert stem(products["s3"]) in names(search(dag, "S3_EFR", **window()))


def test_eodag_finds_an_s1_orbit_file_by_its_product_type(dag: Any, products: dict[str, Path]) -> None:
    found = search(dag, "S1_AUX_POEORB", start=START.isoformat(), end=(START + timedelta(hours=1)).isoformat())
    assert products["orbit"].name.removesuffix(".EOF") in names(found)


def test_eodag_finds_s1_grd_products_through_its_s1_sar_grd_product_type(dag: Any, products: dict[str, Path]) -> None:
    # eodag asks productType eq 'GRD': a CDSE product type group (RAW, GRD, SLC, OCN cover their kind).
    assert stem(products["grd"]) in names(search(dag, "S1_SAR_GRD", **window()))


def test_eodag_time_and_geometry_criteria_select_as_cdse_does(dag: Any, products: dict[str, Path]) -> None:
    exact = {"product:type": "IW_GRDH_1S"}  # the ESA code, as CDSE also stores it
    (found,) = search(dag, "S1_SAR_GRD", **exact, **window())
    assert found.properties["title"] == stem(products["grd"])
    west, south, east, north = found.geometry.bounds
    inside = {"geom": {"lonmin": west, "latmin": south, "lonmax": east, "latmax": north}}
    assert stem(products["grd"]) in names(search(dag, "S1_SAR_GRD", **exact, **window(), **inside))
    far = {"lonmin": west - 60, "latmin": -80, "lonmax": west - 50, "latmax": -70} if west > -120 else None
    assert far is not None and not search(dag, "S1_SAR_GRD", **exact, **window(), geom=far)
    later = {"start": (START + timedelta(days=2)).isoformat(), "end": (START + timedelta(days=3)).isoformat()}
    assert stem(products["grd"]) not in names(search(dag, "S1_SAR_GRD", **exact, **later))


def test_eodag_downloads_and_extracts_a_zip_delivered_safe(
    dag: Any, products: dict[str, Path], tmp_path: Path, loopback_only: list[str]
) -> None:
    (found,) = search(dag, "S1_SAR_GRD", **{"product:type": "IW_GRDH_1S"}, **window())
    path = Path(found.download(output_dir=str(tmp_path), extract=True))
    manifests = list(path.rglob("manifest.safe")) if path.is_dir() else []
    assert manifests, f"no manifest.safe under {path}"
    root = manifests[0].parent
    for file, key in product_files(products["grd"]):
        assert (root / key.split("/", 1)[1]).read_bytes() == file.read_bytes()
    assert loopback_only == []


def test_eodag_downloads_a_single_object_product(
    dag: Any, products: dict[str, Path], tmp_path: Path, loopback_only: list[str]
) -> None:
    (found,) = search(dag, "S1_AUX_POEORB", start=START.isoformat(), end=(START + timedelta(hours=1)).isoformat())
    path = Path(found.download(output_dir=str(tmp_path), extract=True))
    files = [p for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file()]
    digests = {hashlib.md5(p.read_bytes()).hexdigest() for p in files}
    assert hashlib.md5(products["orbit"].read_bytes()).hexdigest() in digests
    assert loopback_only == []
