"""Integrity: products made by the factory verify; a flipped byte, a missing or an extra file is named."""

from __future__ import annotations

import hashlib
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from moto import mock_aws

from shared.products import open_product, read_inventory, recognise, verify_product, write_product
from shared.products.integrity import LocalDirectory, StorePrefix
from shared.settings import Settings
from shared.storage.objects import ObjectStore

T0 = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)


@pytest.fixture(params=["IW_GRDH_1S", "IW_RAW__0S", "OL_1_EFR___", "S2MSI1C"])
def product(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    return write_product(tmp_path, request.param, T0, payload_size=256)


def _zip(root: Path) -> Path:
    target = root.parent / f"{root.name}.zip"
    with zipfile.ZipFile(target, "w") as z:
        for f in sorted(root.rglob("*")):
            if f.is_file():
                z.write(f, f"{root.name}/{f.relative_to(root).as_posix()}")
    return target


def _a_data_file(root: Path) -> str:
    manifest = next(p for p in (root / "manifest.safe", root / "xfdumanifest.xml") if p.exists())
    return read_inventory(manifest.read_bytes())[0].path


def test_factory_products_verify(product: Path) -> None:
    files = open_product(product)
    assert files is not None
    report = verify_product(files)
    assert report.ok, report
    assert report.listed > 0 and report.checked_checksums == report.listed


def test_factory_products_verify_zipped(product: Path) -> None:
    files = open_product(_zip(product))
    assert files is not None
    assert verify_product(files).ok


def test_flipped_byte_is_reported_by_name(product: Path) -> None:
    path = _a_data_file(product)
    data = bytearray((product / path).read_bytes())
    data[len(data) // 2] ^= 0x01
    (product / path).write_bytes(bytes(data))
    report = verify_product(LocalDirectory(product))
    assert not report.ok
    assert report.wrong_checksum == (path,) and not report.missing and not report.extra


def test_missing_file_is_reported_by_name(product: Path) -> None:
    path = _a_data_file(product)
    (product / path).unlink()
    report = verify_product(LocalDirectory(product))
    assert report.missing == (path,) and not report.ok


def test_extra_file_is_reported_by_name(product: Path) -> None:
    (product / "stray.bin").write_bytes(b"x")
    report = verify_product(LocalDirectory(product))
    assert report.extra == ("stray.bin",) and not report.ok


def test_wrong_size_is_reported_by_name(product: Path) -> None:
    path = _a_data_file(product)
    with (product / path).open("ab") as f:
        f.write(b"more")
    report = verify_product(LocalDirectory(product))
    assert report.wrong_size == (path,)


def test_zip_with_a_flipped_byte(tmp_path: Path) -> None:
    root = write_product(tmp_path, "IW_SLC__1S", T0, payload_size=128)
    path = _a_data_file(root)
    data = bytearray((root / path).read_bytes())
    data[0] ^= 0xFF
    (root / path).write_bytes(bytes(data))
    files = open_product(_zip(root))
    assert files is not None
    assert verify_product(files).wrong_checksum == (path,)


def test_missing_or_corrupt_manifest_is_an_error_not_a_crash(tmp_path: Path) -> None:
    root = write_product(tmp_path, "IW_GRDH_1S", T0, payload_size=64)
    (root / "manifest.safe").write_bytes(b"<xfdu:XFDU")
    report = verify_product(LocalDirectory(root))
    assert not report.ok and report.error is not None and "manifest.safe" in report.error
    (root / "manifest.safe").unlink()
    assert verify_product(LocalDirectory(root)).error == "manifest manifest.safe is missing"


def test_sha3_when_the_manifest_gives_no_md5(tmp_path: Path) -> None:
    root = write_product(tmp_path, "S2MSI1C", T0, payload_size=64)
    manifest = (root / "manifest.safe").read_text(encoding="utf-8")
    for item in read_inventory(manifest.encode()):
        sha3 = hashlib.sha3_256((root / item.path).read_bytes()).hexdigest()
        manifest = manifest.replace(
            f'<checksum checksumName="MD5">{item.md5}</checksum>',
            f'<checksum checksumName="SHA3-256">{sha3}</checksum>',
        )
    (root / "manifest.safe").write_text(manifest, encoding="utf-8")
    assert all(i.md5 is None for i in read_inventory(manifest.encode()))
    report = verify_product(LocalDirectory(root))
    assert report.ok and report.checked_checksums == report.listed
    target = root / read_inventory(manifest.encode())[0].path
    target.write_bytes(target.read_bytes()[::-1])
    assert verify_product(LocalDirectory(root)).wrong_checksum


def test_object_store_prefix(tmp_path: Path) -> None:
    root = write_product(tmp_path, "OL_1_EFR___", T0, payload_size=64)
    with mock_aws():
        store = ObjectStore(Settings(s3_access_key="testing", s3_secret_key="testing"))
        store.ensure_bucket("products")
        for f in root.rglob("*"):
            if f.is_file():
                store.put("products", f"in/{root.name}/{f.relative_to(root).as_posix()}", f.read_bytes())
        files = open_product(f"s3://products/in/{root.name}", store)
        assert isinstance(files, StorePrefix)
        assert verify_product(files).ok
        path = _a_data_file(root)
        store.put("products", f"in/{root.name}/{path}", b"tampered")
        store.put("products", f"in/{root.name}/extra.nc", b"x")
        report = verify_product(files)
        assert report.wrong_size == (path,) and report.extra == ("extra.nc",)


def test_earth_explorer_folder_lists_its_data_block(tmp_path: Path) -> None:
    name = "S2B_OPER_GIP_DATATI_MPC__20170428T123038_V20170322T000000_21000101T000000_B00"
    root = tmp_path / name
    root.mkdir()
    header = (
        f"<Earth_Explorer_Header><Fixed_Header><File_Name>{name}</File_Name></Fixed_Header></Earth_Explorer_Header>"
    )
    (root / f"{name}.HDR").write_text(header)
    assert recognise(name).manifest_name == f"{name}.HDR"
    assert verify_product(LocalDirectory(root)).missing == (f"{name}.DBL",)
    (root / f"{name}.DBL").write_text("<x/>")
    assert verify_product(LocalDirectory(root)).ok
