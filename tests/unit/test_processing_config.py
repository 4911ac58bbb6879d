"""Processing configuration, the Trigger that feeds ``prepare``, and the pure trigger rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from events.processing import JobReady
from shared.processing.config import ConfigError, TriggerRule, load_processing_config
from shared.processing.queries import CatalogObject
from shared.processing.triggers import coverage_gaps, session_objects_of, session_state, session_timeout

REPO_ROOT = Path(__file__).resolve().parents[2]
T = datetime(2024, 5, 1, tzinfo=UTC)


def trigger_product_types(doc: dict[str, Any]) -> set[str]:
    (any_of,) = [f["any"] for f in doc["spec"]["filters"] if "any" in f]
    return {f["exact"]["producttype"] for f in any_of}


def test_the_prepare_trigger_selects_exactly_the_product_types_the_configured_task_tables_consume() -> None:
    doc = yaml.safe_load((REPO_ROOT / "knative" / "base" / "triggers" / "prepare.yaml").read_text())
    assert {"exact": {"type": "org.refsys.product.cataloged.v1"}} in doc["spec"]["filters"]
    assert doc["spec"]["subscriber"]["ref"]["name"] == "prepare"
    assert trigger_product_types(doc) == load_processing_config().consumed_types()


def test_the_prepare_service_runs_the_prepare_target() -> None:
    doc = yaml.safe_load((REPO_ROOT / "knative" / "base" / "services" / "prepare.yaml").read_text())
    env = {e["name"]: e["value"] for e in doc["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["FUNCTION_TARGET"] == "prepare" and env["FUNCTION_SOURCE"] == "functions/prepare/main.py"
    assert (REPO_ROOT / env["FUNCTION_SOURCE"]).is_file()


def test_the_default_configuration_loads_its_task_tables_and_maps_orbit_types() -> None:
    config = load_processing_config()
    aiop = config.by_name("s1-aiop")
    assert aiop.settings.trigger is TriggerRule.SESSION and aiop.table.processor_name == "AIO_PROCESSOR"
    l1 = config.by_name("s1-l1-iw")
    assert l1.catalog_type("AUX_POE") == "AUX_POEORB"
    assert "AUX_POE" not in l1.consumed_types()


def test_a_processor_file_with_an_unknown_field_or_trigger_is_refused(tmp_path: Path) -> None:
    (tmp_path / "tasktables").mkdir()
    entry = {
        "name": "x",
        "tasktable": "t.xml",
        "trigger": "whenever",
        "main_types": ["A"],
        "timeout_s": 1,
        "image": "i",
    }
    (tmp_path / "processors.yaml").write_text(yaml.safe_dump({"processors": [entry]}))
    with pytest.raises(ConfigError, match="trigger"):
        load_processing_config(tmp_path)


def obj(name: str, **attributes: Any) -> CatalogObject:
    return CatalogObject(name, "SESSION" if "DSIB" in name else "RAW", None, "b", name, T, T, attributes)


SID = "L20171109175634707000125"


def dsib(channel: int, *chunks: int) -> CatalogObject:
    names = ",".join(f"DCS_02_{SID}_ch{channel}_DSDB_{n:05d}.raw" for n in chunks)
    return obj(f"DCS_02_{SID}_ch{channel}_DSIB.xml", rawNames=names)


def raw(channel: int, n: int) -> CatalogObject:
    return obj(f"DCS_02_{SID}_ch{channel}_DSDB_{n:05d}.raw")


def state(*objects: CatalogObject) -> Any:
    return session_state(session_objects_of(SID, objects))


def test_a_session_is_complete_with_both_dsibs_and_every_listed_chunk() -> None:
    assert state(dsib(1, 1, 2), dsib(2, 1), raw(1, 1), raw(1, 2), raw(2, 1)).complete
    partial = state(dsib(1, 1, 2), dsib(2, 1), raw(1, 1), raw(2, 1))
    assert not partial.complete and partial.missing == (f"DCS_02_{SID}_ch1_DSDB_00002.raw",)
    assert state(raw(1, 1), raw(2, 1)).missing == ("DSIB ch1", "DSIB ch2")


def test_the_single_channel_rule_needs_nothing_at_all_on_the_other_channel() -> None:
    alone = state(dsib(1, 1), raw(1, 1))
    assert not alone.complete and alone.single_channel
    assert not state(dsib(1, 1), raw(1, 1), raw(2, 1)).single_channel
    assert not state(dsib(1, 1, 2), raw(1, 1)).single_channel


def test_objects_of_another_session_are_ignored() -> None:
    other = obj("DCS_02_L20171109175634707000999_ch1_DSIB.xml", rawNames="")
    assert session_objects_of(SID, [other, raw(1, 1)])[0].object.name == raw(1, 1).name
    assert len(session_objects_of(SID, [other, raw(1, 1)])) == 1


def test_session_timeout_is_the_later_of_minimal_wait_and_downlink_end_plus_timeout() -> None:
    assert session_timeout(T, T + timedelta(minutes=10), 7200, 360) == T + timedelta(minutes=10, seconds=7200)
    assert session_timeout(T, T - timedelta(hours=5), 7200, 360) == T + timedelta(seconds=360)
    assert session_timeout(T, None, 7200, 360) == T + timedelta(hours=3, seconds=7200)  # provisional end


def test_coverage_gaps_honour_the_tolerance() -> None:
    def at(s: int) -> datetime:
        return T + timedelta(seconds=s)

    spans = [(at(0), at(10)), (at(12), at(20))]
    assert coverage_gaps(spans, at(0), at(20), 3) == []
    assert coverage_gaps(spans, at(0), at(20), 1) == [(at(10), at(12))]
    assert coverage_gaps(spans, at(0), at(25), 3) == [(at(20), at(25))]
    assert coverage_gaps([], at(0), at(5), 0) == [(at(0), at(5))]


def test_job_ready_has_a_deterministic_id_and_routes_by_mission_and_processor() -> None:
    fields: dict[str, Any] = dict(
        job_key="s1-aiop:L1", processor="s1-aiop", task_table="t.xml", processor_name="P", processor_version="1",
        mission="S1", window_start=T, window_stop=T, timed_out=False, job_order="<x/>", workdir="/w", inputs=(),
        image="i",
    )  # fmt: skip
    assert JobReady(**fields).event_id() == JobReady(**fields).event_id()
    assert JobReady.TYPE == "org.refsys.job.ready.v1"
    assert JobReady(**fields).routing() == {"mission": "S1", "processor": "s1-aiop"}
