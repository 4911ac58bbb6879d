"""What an operator does with the CLI against a running platform: upload, status, quarantine, release."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared.platform.embedded import EmbeddedPlatform
from shared.products import write_product
from tests.e2e.test_platform import START, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("platform")]


def refsys(platform: EmbeddedPlatform, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "shared.cli", *args, "--data-dir", str(platform.data_dir)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_upload_then_status_says_where_the_product_is(platform: EmbeddedPlatform, tmp_path: Path) -> None:
    product = write_product(tmp_path, "IW_GRDH_1S", START, seed=21)
    uploaded = refsys(platform, "upload", str(product))
    assert uploaded.returncode == 0, uploaded.stderr
    assert product.name in uploaded.stdout
    status = wait_for(lambda: "cataloged" in (s := refsys(platform, "status", product.name)).stdout and s, "status")
    assert "rs-s1-l1-slices" in status.stdout  # type: ignore[union-attr]
    unknown = refsys(platform, "status", "S1A_IW_GRDH_1SDV_20000101T000000_20000101T000025_000001_000001_0000.SAFE")
    assert unknown.returncode == 1 and "unknown" in unknown.stdout


def test_a_corrupted_product_is_quarantined_fixed_and_released(platform: EmbeddedPlatform, tmp_path: Path) -> None:
    product = write_product(tmp_path, "IW_SLC__1S", START, seed=22)
    member = next(p for p in sorted(product.rglob("*.tiff")))
    good = member.read_bytes()
    member.write_bytes(bytes([good[0] ^ 0xFF]) + good[1:])
    assert refsys(platform, "upload", str(product)).returncode == 0

    listed = wait_for(lambda: refsys(platform, "quarantine", "list").stdout.strip(), "the quarantine list")
    (entry,) = [json.loads(line) for line in str(listed).splitlines() if product.name in line]
    assert entry["reason"] == "checksum-mismatch" and member.name in entry["detail"]
    assert "quarantined" in refsys(platform, "status", product.name).stdout

    # The operator puts the right bytes in place inside the quarantine, then releases the product.
    key = f"{product.name}/{member.relative_to(product).as_posix()}"
    platform.object_store().put(platform.settings.quarantine_bucket, key, good)
    released = refsys(platform, "quarantine", "release", product.name)
    assert released.returncode == 0, released.stderr
    wait_for(lambda: "cataloged" in refsys(platform, "status", product.name).stdout, "the released product cataloged")
    assert product.name not in refsys(platform, "quarantine", "list").stdout


def test_commands_without_a_running_platform_say_so(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "shared.cli", "status", "X", "--data-dir", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "refsys up" in result.stderr
