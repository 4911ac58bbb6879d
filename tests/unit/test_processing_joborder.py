"""JobOrders: generated from the real task tables, they have the structure and formats of the real samples."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from shared.processing.inputs import InputSelection, SelectedInput, TaskSelection, select_inputs, select_inputs_with
from shared.processing.joborder import (
    IpfProc,
    JobOrder,
    JobOrderFlavour,
    JobOrderInput,
    TimeInterval,
    build_job_order,
    ipf_time,
)
from shared.processing.policies import Candidate
from shared.processing.tasktable import Alternative, load_task_table
from shared.products.xml import parse_xml
from tests.conftest import SAMPLES

IPF_TIME = re.compile(r"^\d{8}_\d{12}$")
XSI = "{http://www.w3.org/2001/XMLSchema-instance}"


def utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%d_%H%M%S%f").replace(tzinfo=UTC)


def shape(elem: ET.Element) -> tuple[object, ...]:
    """Tags, attributes (JAXB's xsi:type left out) and text kinds, recursively, in document order."""
    attrs = tuple(sorted((k, v) for k, v in elem.attrib.items() if not k.startswith(XSI)))
    text = (elem.text or "").strip()
    kind = "time" if IPF_TIME.match(text) else ("text" if text else "")
    return (elem.tag, attrs, kind, tuple(shape(c) for c in elem))


def sample(name: str) -> ET.Element:
    return parse_xml((SAMPLES / "joborders" / name).read_bytes())


def test_ipf_time_format() -> None:
    assert ipf_time(datetime(2020, 1, 21, 18, 32, 36, 429756, tzinfo=UTC)) == "20200121_183236429756"


def test_mbu_job_order_matches_the_sample(samples: Path) -> None:
    table = load_task_table(samples / "tasktables/s1/mbu/MBU_TT_01.xml")
    start, stop = utc("20200120_164703429756"), utc("20200120_171245024909")
    product = Candidate(
        "S1B_WV_OCN__2SSV_20200120T164703_20200120T171244_019903_025A64_140C.SAFE",
        start,
        stop,
        datetime(2020, 1, 20, 18, tzinfo=UTC),
        "WV_OCN__2S",
    )
    # The trigger product is the job's main input (its own validity is the job window), not a policy's
    # choice: LatestValCover with T0=7200 s would look for a file covering two hours earlier.
    task = table.tasks[0]
    selection = InputSelection(
        (TaskSelection(task, (SelectedInput(task.inputs[0], task.inputs[0].alternatives[0], (product,)),)),)
    )
    order = build_job_order(
        table,
        selection,
        start,
        stop,
        "/data/localWD/123",
        processing_station="WILE",
        output_patterns={"REP_MBU_": "^s1[a-b]-[0-9a-z]{2}[0-9a-z]{1}-mbu-(vv|hh)-.*$"},
        stdout_log_level="DEBUG",
    )
    generated = parse_xml(order.to_xml())
    expected = sample("s1/jobOrder_SPP_MBU_expected.xml")
    assert shape(generated) == shape(expected)
    # Same texts except the versions (the sample came from a later MBU task table, 02.00).
    differing = {
        e.tag
        for e, g in zip(expected.iter(), generated.iter(), strict=True)
        if (e.text or "").strip() != (g.text or "").strip()
    }
    assert differing == {"Version", "Task_Version"}


def test_obs_job_order_matches_the_sample_with_an_optional_input_left_out(samples: Path) -> None:
    table = load_task_table(samples / "tasktables/s1/OBS_TT_01_taskTable.xml")
    start, stop = utc("20200121_183236000000"), utc("20200121_215006000000")
    orbit = Candidate(
        "S1B_OPER_AUX_RESORB_OPOD_20200121T223141_V20200121T183236_20200121T215006.EOF",
        start,
        stop,
        datetime(2020, 1, 21, 22, 31, 41, tzinfo=UTC),
        "AUX_RES",
    )
    selection = select_inputs(table, [orbit], start, stop)
    assert selection.complete  # AUX_POE missing: the next alternative wins; the RAW inputs are optional
    order = build_job_order(
        table,
        selection,
        start,
        stop,
        "/data/localWD/129",
        processing_station="DPA_",
        parameters={"selectedOrbitFirstAzimuthTime": "2020-01-21T18:32:46.331273"},
    )
    assert order.flavour is JobOrderFlavour.L0
    generated = parse_xml(order.to_xml())
    expected = sample("s1/JobOrder_SPP_OBS_expected.xml")
    # The SPP OBS sample alone spells its breakpoint "BreakPoint" without Enable; compare everything else.
    for root in (generated, expected):
        proc = root.find("List_of_Ipf_Procs/Ipf_Proc")
        assert proc is not None
        for bp in [c for c in proc if c.tag.lower() == "breakpoint"]:
            proc.remove(bp)
    assert shape(generated) == shape(expected)
    assert [(e.tag, (e.text or "").strip()) for e in generated.iter()] == [
        (e.tag, (e.text or "").strip()) for e in expected.iter()
    ]


def test_s3_acq_job_order_matches_the_sample(samples: Path) -> None:
    table = load_task_table(samples / "tasktables/s3/TaskTable_S3A_ACQ_00_01.xml")
    start, stop = utc("20200928_080939000000"), utc("20200928_081232000000")
    params = {
        "TimeoutSec": "7200",
        "Mission_Id": "S3B",
        "Processing_Mode": "FAST24",
        "RSEncode": "yes",
        "NRTOutputPath": "/data/localWD/6/NRT",
        "Descramble": "yes",
        "PTOutputPath": "/data/localWD/6/PT",
        "DownlinkTime": "20200928T080939",
        "Processing_Station": "S3__",
        "PT_Assembly": "yes",
    }
    order = build_job_order(
        table, select_inputs(table, [], start, stop), start, stop, "/data/localWD/6", processing_station="WILE",
        parameters=params,
    )  # fmt: skip
    generated = parse_xml(order.to_xml())
    expected = sample("s3/JobOrderEWExample.xml")
    assert shape(generated) == shape(expected)
    assert [(e.tag, (e.text or "").strip()) for e in generated.iter()] == [
        (e.tag, (e.text or "").strip()) for e in expected.iter()
    ]


@pytest.mark.parametrize("path", sorted((SAMPLES / "tasktables").rglob("*.xml")), ids=lambda p: p.name)
def test_every_task_table_gives_a_well_formed_job_order(path: Path) -> None:
    table = load_task_table(path)
    start, stop = datetime(2024, 5, 1, 12, tzinfo=UTC), datetime(2024, 5, 1, 12, 3, tzinfo=UTC)
    # One covering candidate per DB file type: every input resolves to its first alternative.
    candidates = [
        Candidate(f"{t}_file", datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC), start, t)
        for t in table.file_types()
    ]
    selection = select_inputs(table, candidates, start, stop, mode="NRT")
    order = build_job_order(table, selection, start, stop, "/data/localWD/1", processing_station="WILE")
    root = parse_xml(order.to_xml())
    procs = root.findall("List_of_Ipf_Procs/Ipf_Proc")
    assert len(procs) == len(table.tasks) == int(root.find("List_of_Ipf_Procs").get("count"))  # type: ignore[union-attr, arg-type]
    for elem in root.iter():
        if elem.get("count") is not None:
            assert int(elem.get("count", "")) == len(elem) or elem.tag == "List_of_Dynamic_Processing_Parameters"
        if elem.tag in ("Start", "Stop"):
            assert IPF_TIME.match(elem.text or "")


def test_missing_mandatory_input_is_reported(samples: Path) -> None:
    table = load_task_table(samples / "tasktables/s1/OBS_TT_01_taskTable.xml")
    start = datetime(2020, 1, 21, tzinfo=UTC)
    selection = select_inputs(table, [], start, start)
    assert selection.missing == ("AUX_ORB",)


def test_standard_flavour_lists_parameters_with_defaults_and_overrides(samples: Path) -> None:
    table = load_task_table(samples / "tasktables/s1/l1/EW_RAW__0_GRDM_1.xml")
    start, stop = datetime(2024, 5, 1, 12, tzinfo=UTC), datetime(2024, 5, 1, 12, 1, tzinfo=UTC)
    order = build_job_order(
        table, select_inputs(table, [], start, stop), start, stop, "/w", processing_station="WILE",
        parameters={"Slice_Number": "3", "Extra": "x"},
    )  # fmt: skip
    root = parse_xml(order.to_xml())
    params = root.find("Ipf_Conf/List_of_Dynamic_Processing_Parameters")
    assert params is not None and params.get("count") == "10"
    values = {p.findtext("Name"): p.findtext("Value") for p in params.findall("Dynamic_Processing_Parameter")}
    assert values["Slice_Number"] == "3" and values["Slice_Overlap"] == "8.2" and values["Extra"] == "x"
    assert root.find("Ipf_Conf/Dynamic_Processing_Parameters") is None


def test_an_s3_table_gets_the_s3_flavour_the_reference_made_by_xslt(samples: Path) -> None:
    table = load_task_table(samples / "tasktables/s3/L1/TaskTable_S3A_MW1_06_14.xml")
    start, stop = datetime(2024, 5, 1, 12, tzinfo=UTC), datetime(2024, 5, 1, 12, 3, tzinfo=UTC)
    candidates = [
        Candidate(f"{t}_file", datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC), start, t)
        for t in table.file_types()
    ]
    selection = select_inputs(table, candidates, start, stop, mode="NRT")
    s3 = build_job_order(
        table, selection, start, stop, "/w", processing_station="S3__", parameters={"orderType": "NRT"}
    )
    assert s3.flavour is JobOrderFlavour.S3
    standard = build_job_order(
        table, selection, start, stop, "/w", processing_station="S3__", parameters={"orderType": "NRT"},
        flavour=JobOrderFlavour.STANDARD,
    )  # fmt: skip
    root = parse_xml(s3.to_xml())
    configs = root.find("Ipf_Conf/List_of_Config_Files")
    assert configs is not None and configs.get("count") == "1"
    assert [c.tag for c in configs] == ["Config_File"]
    params = root.find("Ipf_Conf/List_of_Dyn_Processing_Parameters")
    assert params is not None and params.get("count") == str(len(params)) == "4"
    assert {p.findtext("Name"): p.findtext("Value") for p in params.findall("Dyn_Processing_Parameter")}[
        "orderType"
    ] == "NRT"
    assert root.find("Ipf_Conf/List_of_Dynamic_Processing_Parameters") is None
    assert root.find("Ipf_Conf/Config_Files") is None
    # Otherwise it is the standard JobOrder renamed, as joborder.xslt did.
    renames = {
        "Config_Files": "List_of_Config_Files", "Conf_File_Name": "Config_File",
        "List_of_Dynamic_Processing_Parameters": "List_of_Dyn_Processing_Parameters",
        "Dynamic_Processing_Parameter": "Dyn_Processing_Parameter",
    }  # fmt: skip
    renamed = parse_xml(standard.to_xml())
    for elem in renamed.iter():
        elem.tag = renames.get(elem.tag, elem.tag)
    renamed_configs = renamed.find("Ipf_Conf/List_of_Config_Files")
    assert renamed_configs is not None
    renamed_configs.set("count", "1")  # the S3 list has its count, as every S3 list
    assert shape(renamed) == shape(root)


def test_the_s3_flavour_leaves_out_inputs_without_a_file_type() -> None:
    t = datetime(2024, 5, 1, tzinfo=UTC)
    typed = JobOrderInput("X", "Physical", ("/w/x",), (TimeInterval(t, t, "/w/x"),))
    proc = IpfProc("T", "1", (JobOrderInput("", "Physical", (), ()), typed), ())
    order = JobOrder("P", "1", t, t, "S3__", (proc,), flavour=JobOrderFlavour.S3)
    inputs = parse_xml(order.to_xml()).find("List_of_Ipf_Procs/Ipf_Proc/List_of_Inputs")
    assert inputs is not None and inputs.get("count") == "1" and [i.findtext("File_Type") for i in inputs] == ["X"]
    standard = JobOrder("P", "1", t, t, "WILE", (proc,))
    assert parse_xml(standard.to_xml()).find("List_of_Ipf_Procs/Ipf_Proc/List_of_Inputs").get("count") == "2"  # type: ignore[union-attr]


def test_an_input_repeated_in_several_tasks_is_selected_and_missing_once(samples: Path) -> None:
    table = load_task_table(samples / "tasktables/s1/TaskTable.AIOP.xml")
    start, stop = datetime(2024, 5, 1, 12, tzinfo=UTC), datetime(2024, 5, 1, 12, 3, tzinfo=UTC)
    selection = select_inputs(table, [], start, stop)
    assert sorted(selection.missing) == ["AUX_OBMEMC", "MPL_ORBPRE", "MPL_ORBSCT"]  # AIOP lists them 5, 3, 3 times
    looked_up: list[str] = []
    found = Candidate("ORBSCT", start, stop, start, "MPL_ORBSCT")

    def lookup(alternative: Alternative, w_start: datetime, w_stop: datetime) -> list[Candidate]:
        looked_up.append(alternative.file_type)
        return [found] if alternative.file_type == "MPL_ORBSCT" else []

    selection = select_inputs_with(table, lookup, start, stop)
    assert sorted(looked_up) == ["AUX_OBMEMC", "MPL_ORBPRE", "MPL_ORBSCT"]
    # Every task still lists it: the JobOrder is per task.
    listing = [i for t in selection.tasks for i in t.inputs if i.alternative.file_type == "MPL_ORBSCT"]
    assert len(listing) == 3 and all(i.entries == (found,) for i in listing)
