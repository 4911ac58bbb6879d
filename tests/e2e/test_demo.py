"""`refsys demo --exit`: what `make run` shows, as a script would run it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("platform")]


def test_demo_catalogs_every_product_and_exits_0(tmp_path: Path) -> None:
    refsys = Path(sys.executable).parent / "refsys"
    assert refsys.exists(), "the refsys console script is installed with the package"
    run = subprocess.run(
        [str(refsys), "demo", "--exit", "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "5 of 5 products cataloged" in run.stdout
    assert not (tmp_path / "data" / "endpoints.json").exists()  # removed when the platform stopped
