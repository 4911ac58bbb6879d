"""``refsys identify`` / ``refsys describe`` through ``shared.cli.main``, wired here as the lead will wire them."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

import shared.cli
from shared.products import write_product
from shared.products.cli import register


@pytest.fixture(autouse=True)
def wired(monkeypatch: pytest.MonkeyPatch) -> None:
    def parser() -> argparse.ArgumentParser:
        p = argparse.ArgumentParser(prog="refsys")
        p.add_argument("--log-level", default="WARNING")
        commands = p.add_subparsers(required=True, metavar="COMMAND")

        def add_data_dir(sub: argparse.ArgumentParser) -> None:
            sub.add_argument("--data-dir", type=Path, default=shared.cli.DEFAULT_DATA_DIR)

        register(commands, add_data_dir)
        return p

    monkeypatch.setattr(shared.cli, "_parser", parser)


def _lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines()]


def test_identify_prints_one_json_object_per_name(capsys: pytest.CaptureFixture[str]) -> None:
    code = shared.cli.main(
        [
            "identify",
            "S1C_S4_GRDH_1SDH_20250118T171404_20250118T171421_000638_000538_4B8B.SAFE",
            "DCS_01_S2B_20231117170332034987_ch2_DSDB_00001.raw",
        ]
    )
    assert code == 0
    grd, chunk = _lines(capsys.readouterr().out)
    assert grd == grd | {
        "mission": "S1",
        "satellite": "C",
        "productType": "S4_GRDH_1S",
        "level": "L1",
        "family": "L1_SLICE",
        "validityStart": "2025-01-18T17:14:04Z",
        "validityStop": "2025-01-18T17:14:21Z",
    }
    assert chunk["family"] == "EDRS_SESSION" and chunk["validityStart"] is None
    assert chunk["nameFields"] == chunk["nameFields"] | {"session_id": "S2B_20231117170332034987", "channel": "2"}


def test_identify_exits_2_when_a_name_fails(capsys: pytest.CaptureFixture[str]) -> None:
    code = shared.cli.main(
        ["identify", "readme.txt", "S2__OPER_AUX_UT1UTC_PDMC_20220407T000000_V20220408T000000_20230407T000000"]
    )
    assert code == 2
    bad, good = _lines(capsys.readouterr().out)
    assert bad["name"] == "readme.txt" and "mission prefix" in str(bad["error"])
    assert good["productType"] == "AUX_UT1UTC" and good["satellite"] is None


def test_describe_a_directory_and_a_tampered_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_product(tmp_path, "IW_GRDH_1S", datetime(2024, 5, 1, tzinfo=UTC), payload_size=64)
    assert shared.cli.main(["describe", str(root), "--stac"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["integrity"]["ok"] and out["footprint"]["type"] in ("Polygon", "MultiPolygon")
    assert out["attributes"]["productType"] == "IW_GRDH_1S" and out["stac"]["type"] == "Feature"
    (root / "stray").write_bytes(b"x")
    assert shared.cli.main(["describe", str(root)]) == 1
    assert json.loads(capsys.readouterr().out)["integrity"]["extra"] == ["stray"]


def test_describe_errors_are_json_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert shared.cli.main(["describe", str(tmp_path / "nothing.SAFE")]) == 2
    assert "error" in json.loads(capsys.readouterr().out)
    assert shared.cli.main(["describe", "s3://bucket/x.SAFE", "--data-dir", str(tmp_path)]) == 2
