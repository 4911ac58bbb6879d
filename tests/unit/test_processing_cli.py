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


# S1 L1 IW: SLICING and NON_SLICING variants of the IW_RAW__0C/0N inputs, 0A for SLICING only, orbits
# named AUX_POE/AUX_RES/AUX_PRE in the table and AUX_POEORB/AUX_RESORB/AUX_PREORB in the catalog.
S1_L1 = Path(__file__).parents[2] / "shared/processing/config/tasktables/IW_RAW__0_SLC__1_GRDH_1.xml"
SLICE = ["--start", "2024-05-01T10:00:00Z", "--stop", "2024-05-01T10:00:25Z"]
OPEN_CAL = "S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE"  # no validity stop: valid until further notice


def s1_l1_inputs(tmp_path: Path) -> Path:
    around = ("2024-05-01T09:59:00Z", "2024-05-01T10:01:00Z", "2024-05-01T11:00:00Z")
    years = ("2017-01-01T00:00:00Z", "2030-01-01T00:00:00Z", "2017-01-01T00:00:00Z")
    cal = entry(OPEN_CAL, "2017-10-17T08:00:00Z", "", "2017-10-13T10:12:00Z", "AUX_CAL")
    cal["validityStop"] = None  # type: ignore[assignment]
    return write(
        tmp_path,
        [
            entry("SLICE", "2024-05-01T10:00:00Z", "2024-05-01T10:00:25Z", "2024-05-01T11:00:00Z", "IW_RAW__0S"),
            *(entry(f"RAW_{t}", *around, f"IW_RAW__0{t}") for t in "CNA"),
            *(entry(t, *years, t) for t in ("AUX_PP1", "AUX_INS")),
            cal,
            entry("RESORB", "2024-05-01T08:00:00Z", "2024-05-01T12:00:00Z", "2024-05-01T12:00:00Z", "AUX_RESORB"),
        ],
    )


def job_order(out: str) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """The first task's input file types, every Time_Interval stop by file, the dynamic parameters."""
    root = parse_xml(out.encode())
    first = next(root.iter("Ipf_Proc"))
    types = [i.findtext("File_Type") or "" for i in first.iter("Input")]
    stops = {t.findtext("File_Name") or "": t.findtext("Stop") or "" for t in root.iter("Time_Interval")}
    params = {p.findtext("Name") or "": p.findtext("Value") or "" for p in root.iter("Dynamic_Processing_Parameter")}
    params |= {p.findtext("Name") or "": p.findtext("Value") or "" for p in root.iter("Processing_Parameter")}
    return types, stops, params


@pytest.fixture(autouse=True)
def default_processing_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REFSYS_PROCESSING_CONFIG_DIR", raising=False)


@pytest.mark.parametrize("mode", [[], ["--mode", "SLICING"], ["--mode", "slicing"]])
def test_joborder_s1_l1_takes_the_configured_slicing_mode_and_type_aliases(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: list[str]
) -> None:
    # processors.yaml: s1-l1-iw runs this table in SLICING mode with AUX_RES -> AUX_RESORB.
    assert run(["joborder", str(S1_L1), *SLICE, "--inputs", str(s1_l1_inputs(tmp_path)), *mode]) == 0
    types, stops, params = job_order(capsys.readouterr().out)
    assert types == ["IW_RAW__0S", "IW_RAW__0C", "IW_RAW__0N", "IW_RAW__0A", "AUX_PP1", "AUX_CAL", "AUX_INS", "AUX_RES"]
    assert params["Slicing_Flag"] == "TRUE" and "Processing_Mode" not in params
    assert stops["/data/localWD/job/RESORB"] == "20240501_120000000000"
    assert stops[f"/data/localWD/job/{OPEN_CAL}"] == "99991231_235959999999"  # open-ended: selected, no stop


def test_joborder_non_slicing_drops_the_slicing_inputs_and_clears_the_slicing_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["joborder", str(S1_L1), *SLICE, "--inputs", str(s1_l1_inputs(tmp_path)), "--mode", "NON_SLICING"]
    assert run(argv) == 0
    types, _, params = job_order(capsys.readouterr().out)
    assert types == ["IW_RAW__0S", "IW_RAW__0C", "IW_RAW__0N", "AUX_PP1", "AUX_CAL", "AUX_INS", "AUX_RES"]
    assert params["Slicing_Flag"] == "FALSE"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--mode", "NRT"], "--mode NRT matches none of the production modes of IW_RAW__0_SLC__1_GRDH_1.xml's"),
        (["--mode", "ALWAYS"], "(NON_SLICING, SLICING): choose one of them"),
        (["--mode", "SLICING", "--param", "Slicing_Flag=FALSE"], "contradicts --mode SLICING"),
        (["--processor", "s9-nothing"], "--processor 's9-nothing' is not configured"),
        (["--alias", "AUX_RES"], "--alias 'AUX_RES' is not TYPE=CATALOGTYPE"),
    ],
)
def test_joborder_refuses_a_mode_the_table_does_not_use_and_inconsistent_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert run(["joborder", str(S1_L1), *SLICE, "--inputs", str(s1_l1_inputs(tmp_path)), *extra]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err


def test_joborder_an_unconfigured_table_with_mode_specific_inputs_needs_a_mode_and_takes_aliases(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "my_s1_l1.xml"
    table.write_bytes(S1_L1.read_bytes())
    argv = ["joborder", str(table), *SLICE, "--inputs", str(s1_l1_inputs(tmp_path))]
    assert run(argv) == 2  # no mode: both variants of IW_RAW__0C/0N would be listed
    assert "my_s1_l1.xml has inputs for production modes NON_SLICING, SLICING: choose one with --mode" in (
        capsys.readouterr().err
    )
    assert run([*argv, "--mode", "SLICING"]) == 0
    types, _, _ = job_order(capsys.readouterr().out)
    assert "AUX_RES" not in types  # no aliases: the AUX_RESORB file is not an AUX_RES (optional input)
    assert run([*argv, "--mode", "SLICING", "--alias", "AUX_RES=AUX_RESORB"]) == 0
    assert job_order(capsys.readouterr().out)[0][-1] == "AUX_RES"
    assert run([*argv, "--processor", "s1-l1-iw"]) == 0  # that processor's mode and aliases
    types, _, params = job_order(capsys.readouterr().out)
    assert types[-1] == "AUX_RES" and params["Slicing_Flag"] == "TRUE"
