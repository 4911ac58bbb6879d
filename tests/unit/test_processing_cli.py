"""The processing commands' fixed contract: arguments, JSON/XML on stdout, exit codes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from shared.processing.cli import register
from shared.products.xml import parse_xml
from tests.conftest import SAMPLES


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="refsys")
    commands = parser.add_subparsers(required=True)
    register(commands, lambda sub: sub.add_argument("--data-dir", type=Path))
    args = parser.parse_args(argv)
    code: int = args.command(args)
    return code


def entry(name: str, start: str, stop: str, created: str, product_type: str = "AUX_X") -> dict[str, str]:
    return {
        "name": name,
        "validityStart": start,
        "validityStop": stop,
        "creationDate": created,
        "productType": product_type,
    }


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "candidates.json"
    path.write_text(json.dumps(data))
    return path


def test_tasktable_show_prints_the_parsed_table_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["tasktable", "show", str(SAMPLES / "tasktables/s1/l1/EW_RAW__0_GRDM_1.xml")]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["processor_name"] == "EW_RAW__0_GRDM_1"
    assert table["pools"][1]["tasks"][0]["inputs"][3]["ref"] == "Orbit"


def test_tasktable_show_names_the_bad_element(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text("<Ipf_Task_Table><Version>1</Version></Ipf_Task_Table>")
    assert run(["tasktable", "show", str(bad)]) == 2
    assert "Ipf_Task_Table/List_of_Pools" in capsys.readouterr().err


def test_select_prints_names_in_policy_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    candidates = write(
        tmp_path,
        [
            entry("B", "2024-05-01T00:10:00Z", "2024-05-01T00:20:00Z", "2024-05-02T00:00:00Z"),
            entry("A", "2024-05-01T00:00:00Z", "2024-05-01T00:10:00Z", "2024-05-02T00:00:00Z"),
            entry("C", "2024-05-01T01:00:00Z", "2024-05-01T01:10:00Z", "2024-05-02T00:00:00Z"),
        ],
    )
    window = ["--start", "2024-05-01T00:05:00Z", "--stop", "2024-05-01T00:15:00Z", "--candidates", str(candidates)]
    assert run(["select", "ValIntersect", *window]) == 0
    assert json.loads(capsys.readouterr().out) == ["A", "B"]
    assert run(["select", "ValCover", *window, "--t0", "0", "--t1", "0"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert run(["select", "ValIntersect", *window, "--t1", "3300"]) == 0
    assert json.loads(capsys.readouterr().out) == ["A", "B", "C"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([{"name": "A"}], "lacks validityStart"),
        ({"name": "A"}, "JSON array"),
        ([entry("A", "yesterday", "2024-05-01T00:00:00Z", "2024-05-01T00:00:00Z")], "validityStart"),
    ],
)
def test_select_refuses_bad_candidates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: object, message: str
) -> None:
    argv = ["select", "ValCover", "--start", "2024-05-01", "--stop", "2024-05-02", "--candidates"]
    assert run([*argv, str(write(tmp_path, data))]) == 2
    assert message in capsys.readouterr().err


def test_select_refuses_an_unknown_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["select", "Nearest", "--start", "2024-05-01", "--stop", "2024-05-02"]
    assert run([*argv, "--candidates", str(write(tmp_path, []))]) == 2
    assert "unknown selection policy 'Nearest'" in capsys.readouterr().err


OBS = str(SAMPLES / "tasktables/s1/OBS_TT_01_taskTable.xml")
WINDOW = ["--start", "2020-01-21T18:32:36Z", "--stop", "2020-01-21T21:50:06Z"]


def test_joborder_prints_the_job_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs = write(
        tmp_path,
        [
            entry("ORB", "2020-01-21T18:00:00Z", "2020-01-21T23:00:00Z", "2020-01-21T23:00:00Z", "AUX_RES"),
            entry("RAW", "2020-01-21T19:00:00Z", "2020-01-21T19:01:00Z", "2020-01-21T19:30:00Z", "IW_RAW__0A"),
        ],
    )
    argv = ["joborder", OBS, *WINDOW, "--inputs", str(inputs), "--mode", "NRT"]
    assert run([*argv, "--param", "selectedOrbitFirstAzimuthTime=2020-01-21T18:32:46.331273"]) == 0
    root = parse_xml(capsys.readouterr().out.encode())
    assert root.findtext("Ipf_Conf/Sensing_Time/Start") == "20200121_183236000000"
    files = [e.text for e in root.iter("File_Name")]
    assert "/data/localWD/job/ORB" in files and "/data/localWD/job/RAW" in files
    params = {p.findtext("Name"): p.findtext("Value") for p in root.iter("Processing_Parameter")}
    assert params == {"selectedOrbitFirstAzimuthTime": "2020-01-21T18:32:46.331273", "Processing_Mode": "NRT"}


def test_joborder_exits_2_naming_missing_mandatory_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs = write(tmp_path, [entry("RAW", "2020-01-21T19:00:00Z", "2020-01-21T19:01:00Z", "2020-01-21T19:30:00Z")])
    assert run(["joborder", OBS, *WINDOW, "--inputs", str(inputs)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "mandatory inputs missing: AUX_ORB" in captured.err


def test_joborder_refuses_a_malformed_param(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs = write(tmp_path, [entry("O", "2020-01-21T00:00:00Z", "2020-01-22T00:00:00Z", "2020-01-22T00:00:00Z")])
    inputs.write_text(inputs.read_text().replace("AUX_X", "AUX_POE"))
    assert run(["joborder", OBS, *WINDOW, "--inputs", str(inputs), "--param", "novalue"]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err
