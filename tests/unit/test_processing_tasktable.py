"""Task tables: every real sample parses in its dialect, and a broken one names the element at fault."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.processing.tasktable import (
    Destination,
    FileNameType,
    InputMode,
    Origin,
    TaskTableError,
    load_task_table,
    parse_task_table,
)
from tests.conftest import SAMPLES

TASK_TABLES = sorted((SAMPLES / "tasktables").rglob("*.xml"))


@pytest.mark.parametrize("path", TASK_TABLES, ids=lambda p: p.name)
def test_every_sample_task_table_parses(path: Path) -> None:
    table = load_task_table(path)
    assert table.processor_name and table.version
    assert table.tasks
    for task in table.tasks:
        assert task.file_name.startswith("/")
        for task_input in task.inputs:
            resolved = table.resolve(task_input)
            assert resolved.alternatives
            assert [a.order for a in resolved.alternatives] == sorted(a.order for a in resolved.alternatives)
    json.dumps(table.to_json())  # the CLI prints this


def test_sample_set_is_the_expected_one() -> None:
    assert len(TASK_TABLES) == 21


def test_s1_l1_table_has_pools_references_modes_and_ordered_orbit_alternatives(samples: Path) -> None:
    table = load_task_table(samples / "tasktables/s1/l1/EW_RAW__0_GRDM_1.xml")
    assert (table.processor_name, table.version, table.dialect, table.test) == ("EW_RAW__0_GRDM_1", "3.52", "S1", False)
    assert [t.name for t in table.tasks] == ["PSC", "MDC", "WPC", "LPC1"]
    assert table.config_files[0].file_name == "/usr/local/components/S1IPF/etc/processorConfiguration.xml"
    assert table.config_files[0].version == "3.52"
    params = {p.name: (p.type, p.default) for p in table.dyn_proc_params}
    assert params["Slice_Overlap"] == ("number", "8.2")
    assert params["Timeliness_Category"] == ("String", "NRT-3h")
    psc = table.tasks[0]
    assert [i.mode for i in psc.inputs[:3]] == [InputMode.ALWAYS, InputMode.SLICING, InputMode.NON_SLICING]
    orbit = table.inputs_by_id["Orbit"]
    assert orbit.mandatory is False
    assert orbit.file_types == ("AUX_POE", "AUX_RES", "AUX_PRE")
    mdc = table.tasks[1]
    assert [i.ref for i in mdc.inputs] == ["AUX_PP1", "AUX_CAL", "AUX_INS", "Orbit", "AUX_ATT"]
    assert table.resolve(mdc.inputs[3]) is orbit
    assert psc.outputs[0].destination is Destination.PROC
    assert psc.outputs[0].file_type == "SignalData"
    assert psc.outputs[0].file_name_type is FileNameType.DIRECTORY
    assert {"EW_RAW__0S", "AUX_POE", "AUX_PRE"} <= table.file_types()
    assert "SignalData" not in table.file_types()


def test_s3_dialect_config_files_dyn_params_and_fractional_windows(samples: Path) -> None:
    table = load_task_table(samples / "tasktables/s3/L1/TaskTable_S3A_OL1_06_13.xml")
    assert table.dialect == "S3"
    assert table.config_files[0].file_name.endswith("S3IPF_OL1_Configuration.xml")
    assert [p.name for p in table.dyn_proc_params] == [
        "facilityName",
        "orderType",
        "hardwareName",
        "baselineCollection",
    ]
    first = table.tasks[0].inputs[0].alternatives[0]
    assert (first.retrieval_mode, first.t0, first.t1, first.file_type) == ("ValIntersect", 8.8, 8.8, "OL_0_EFR___")
    time_init = table.tasks[0].inputs[3]
    assert time_init.file_types == ("AX___FRO_AX", "AX___FPO_AX", "AX___OSF_AX", "AX___BB2_AX")


def test_s3_output_file_type_and_log_origin(samples: Path) -> None:
    table = load_task_table(samples / "tasktables/s3/PUG/TaskTable.PUG_OL_1_EFR.03.xml")
    outputs = [o.file_type for t in table.tasks for o in t.outputs]
    assert "OL_1_EFRINT" in outputs  # written as Output/File_Type in this table
    origins = {a.origin for t in table.tasks for i in t.inputs for a in table.resolve(i).alternatives}
    assert Origin.LOG in origins


def test_custom_min_number_policy_runs_as_val_intersect(samples: Path) -> None:
    table = load_task_table(samples / "tasktables/s3/L1/TaskTable_S3A_SL1_06_19.xml")
    custom = [a for t in table.tasks for i in t.inputs for a in i.alternatives if a.retrieval_mode == "Custom"]
    assert len(custom) == 1
    assert custom[0].custom_class and custom[0].custom_class.endswith("PolicyIntersectMinNumber")
    assert custom[0].policy == "ValIntersect"


def test_result_bounds_negative_t1_and_s3_modes(samples: Path) -> None:
    sl2 = load_task_table(samples / "tasktables/s3/L2/TaskTable_S3A_SL2_06_21.xml")
    bounded = [a for t in sl2.tasks for i in t.inputs for a in i.alternatives if a.min_results is not None]
    assert {(a.min_results, a.max_results) for a in bounded} == {(4, 5)}
    sr1 = load_task_table(samples / "tasktables/s3/L1/TaskTable_S3A_SR1_SRA_07_03.xml")
    t1s = {a.t1 for t in sr1.tasks for i in t.inputs for a in i.alternatives}
    assert -1.0 in t1s
    modes = {i.mode for t in sr1.tasks for i in t.inputs}
    assert {InputMode.NRT, InputMode.NTC, InputMode.STC} <= modes


def test_input_mode_matching() -> None:
    assert InputMode.ALWAYS.applies_to("NRT")
    assert InputMode.NRT.applies_to("nrt")
    assert not InputMode.NTC.applies_to("NRT")
    assert InputMode.SLICING.applies_to(None)


MINIMAL = """<Ipf_Task_Table>
  <Processor_Name>P</Processor_Name><Version>1.0</Version><Test>No</Test>
  <List_of_Pools count="1"><Pool><Detached>false</Detached><Killing_Signal>15</Killing_Signal>
    <List_of_Tasks count="1"><Task><Name>T</Name><Version>1.0</Version><File_Name>/bin/t</File_Name>
      <List_of_Inputs count="1">
        <Input id="A"><Mode>ALWAYS</Mode><Mandatory>{mandatory}</Mandatory>
          <List_of_Alternatives count="1"><Alternative><Order>1</Order><Origin>DB</Origin>
            <Retrieval_Mode>{mode}</Retrieval_Mode><T0>{t0}</T0><T1>0</T1>
            <File_Type>AUX_X</File_Type><File_Name_Type>Physical</File_Name_Type>
          </Alternative></List_of_Alternatives></Input>
        <Input ref="{ref}"/>
      </List_of_Inputs>
      <List_of_Outputs count="1"><Output><Destination>DB</Destination><Mandatory>Yes</Mandatory>
        <Type>OUT</Type><File_Name_Type>Directory</File_Name_Type></Output></List_of_Outputs>
    </Task></List_of_Tasks></Pool></List_of_Pools>
</Ipf_Task_Table>"""


def _table(**overrides: str) -> bytes:
    values = {"mandatory": "Yes", "mode": "LatestValCover", "t0": "0", "ref": "A"} | overrides
    return MINIMAL.format(**values).encode()


def test_minimal_table_parses() -> None:
    table = parse_task_table(_table())
    assert table.tasks[0].inputs[1].ref == "A"


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"mandatory": "Perhaps"}, "Input[1]/Mandatory"),
        ({"mode": "SomethingElse"}, "Alternative[1]/Retrieval_Mode"),
        ({"t0": "soon"}, "Alternative[1]/T0"),
        ({"ref": "Nowhere"}, "Input[@ref=Nowhere]"),
        ({"mode": "Custom"}, "Alternative[1]/customClass"),
    ],
)
def test_invalid_table_error_names_the_element(overrides: dict[str, str], named: str) -> None:
    with pytest.raises(TaskTableError, match=named.replace("[", r"\[").replace("]", r"\]")):
        parse_task_table(_table(**overrides), what="bad.xml")


def test_missing_processor_name_is_named() -> None:
    data = _table().replace(b"<Processor_Name>P</Processor_Name>", b"")
    with pytest.raises(TaskTableError, match="Ipf_Task_Table/Processor_Name: missing"):
        parse_task_table(data)


def test_task_without_file_name_is_named() -> None:
    data = _table().replace(b"<File_Name>/bin/t</File_Name>", b"")
    with pytest.raises(TaskTableError, match=r"Task\[1\]\(T\)/File_Name"):
        parse_task_table(data)


def test_wrong_root_malformed_and_dtd_are_refused() -> None:
    with pytest.raises(TaskTableError, match="Ipf_Task_Table"):
        parse_task_table(b"<Ipf_Job_Order/>")
    with pytest.raises(TaskTableError, match="not well-formed"):
        parse_task_table(b"<Ipf_Task_Table>")
    with pytest.raises(TaskTableError, match="refused"):
        parse_task_table(b'<!DOCTYPE x [<!ENTITY e "x">]><Ipf_Task_Table>&e;</Ipf_Task_Table>')
