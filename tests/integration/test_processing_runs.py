"""Processing runs on a real SeaweedFS: the execution wrapper (``Run``) driving the IPF simulator through the
generic IPF interface, and the local runner's watch over processes that die without a word."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cloudevents.http import CloudEvent

from events import parse_data
from events.processing import FailureReason, JobCompleted, JobFailed, JobInput, JobOutput, JobReady, JobTask
from shared.ingestion.upload import upload_product
from shared.platform.seaweed import SeaweedFS
from shared.processing.execution import Run, outcome_key
from shared.processing.inputs import select_inputs
from shared.processing.joborder import build_job_order
from shared.processing.launch import Launcher, RunStore
from shared.processing.policies import Candidate
from shared.processing.tasktable import parse_task_table
from shared.products.factory import make_product
from shared.settings import Settings
from shared.storage.objects import ObjectStore

pytestmark = pytest.mark.integration

T = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
WORKDIR = "/data/localWD/0123456789abcdef"

TABLE = b"""<?xml version="1.0"?>
<Ipf_Task_Table>
  <Processor_Name>TEST_L1</Processor_Name><Version>1.0</Version><Test>No</Test>
  <List_of_Cfg_Files count="0"/><List_of_Dyn_ProcParam count="0"/>
  <List_of_Pools count="2">
    <Pool><Detached>false</Detached><Killing_Signal>15</Killing_Signal><List_of_Tasks count="2">
      <Task><Name>PRE_A</Name><Version>1</Version><Critical>true</Critical><Criticality_Level>2</Criticality_Level>
        <File_Name>/usr/local/components/TEST/bin/pre_a</File_Name>
        <List_of_Inputs count="1"><Input><Mode>ALWAYS</Mode><Mandatory>Yes</Mandatory><List_of_Alternatives count="1">
          <Alternative><Order>1</Order><Origin>DB</Origin><Retrieval_Mode>ValIntersect</Retrieval_Mode><T0>0</T0>
            <T1>0</T1><File_Type>IW_RAW__0S</File_Type><File_Name_Type>Directory</File_Name_Type></Alternative>
        </List_of_Alternatives></Input></List_of_Inputs>
        <List_of_Outputs count="1"><Output><Destination>PROC</Destination><Mandatory>Yes</Mandatory>
          <Type>SignalData</Type><File_Name_Type>Directory</File_Name_Type></Output></List_of_Outputs>
        <List_of_Breakpoints count="0"/></Task>
      <Task><Name>PRE_B</Name><Version>1</Version><Critical>true</Critical><Criticality_Level>2</Criticality_Level>
        <File_Name>/usr/local/components/TEST/bin/pre_b</File_Name>
        <List_of_Inputs count="0"/><List_of_Outputs count="0"/><List_of_Breakpoints count="0"/></Task>
    </List_of_Tasks></Pool>
    <Pool><Detached>false</Detached><Killing_Signal>15</Killing_Signal><List_of_Tasks count="1">
      <Task><Name>LPC</Name><Version>1</Version><Critical>true</Critical><Criticality_Level>2</Criticality_Level>
        <File_Name>/usr/local/components/TEST/bin/lpc</File_Name>
        <List_of_Inputs count="1"><Input><Mode>ALWAYS</Mode><Mandatory>Yes</Mandatory><List_of_Alternatives count="1">
          <Alternative><Order>1</Order><Origin>PROC</Origin><Retrieval_Mode>ValIntersect</Retrieval_Mode><T0>0</T0>
            <T1>0</T1><File_Type>SignalData</File_Type><File_Name_Type>Directory</File_Name_Type></Alternative>
        </List_of_Alternatives></Input></List_of_Inputs>
        <List_of_Outputs count="2">
          <Output><Destination>DB</Destination><Mandatory>Yes</Mandatory><Type>IW_GRDH_1S</Type>
            <File_Name_Type>Directory</File_Name_Type></Output>
          <Output><Destination>DB</Destination><Mandatory>No</Mandatory><Type>IW_SLC__1S</Type>
            <File_Name_Type>Directory</File_Name_Type></Output>
        </List_of_Outputs>
        <List_of_Breakpoints count="0"/></Task>
    </List_of_Tasks></Pool>
  </List_of_Pools>
</Ipf_Task_Table>
"""


@pytest.fixture
def settings(seaweed: SeaweedFS, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    tag = uuid.uuid4().hex[:8]
    monkeypatch.delenv("REFSYS_SIMULATOR_EXIT_CODE", raising=False)
    return Settings(
        s3_endpoint_url=seaweed.s3_endpoint, s3_access_key=seaweed.access_key, s3_secret_key=seaweed.secret_key,
        inbox_bucket=f"inbox-{tag}", jobs_bucket=f"jobs-{tag}", failed_workdir_bucket=f"failed-{tag}",
        workdir_root=str(tmp_path / "runs"), task_command=f"{sys.executable} -m shared.processing.simulator",
        catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}",
    )  # fmt: skip


@pytest.fixture
def store(settings: Settings) -> ObjectStore:
    objects = ObjectStore(settings)
    objects.ensure_bucket(settings.inbox_bucket)
    return objects


@pytest.fixture
def ready(store: ObjectStore, tmp_path: Path) -> JobReady:
    """A job over one uploaded L0 slice, with its JobOrder, as prepare makes them."""
    slice_dir = make_product(tmp_path / "in", "IW_RAW__0S", T, T + timedelta(seconds=25), options={"datatake": 0x1234})
    bucket = f"l0-{uuid.uuid4().hex[:8]}"
    store.ensure_bucket(bucket)
    upload_product(store, bucket, slice_dir)
    table = parse_task_table(TABLE)
    candidate = Candidate(slice_dir.name, T, T + timedelta(seconds=25), T, "IW_RAW__0S")
    order = build_job_order(table, select_inputs(table, [candidate], T, T + timedelta(seconds=25)), T,
                            T + timedelta(seconds=25), WORKDIR, processing_station="WILE")  # fmt: skip
    return JobReady(
        job_key=f"test-l1:{slice_dir.name}", processor="test-l1", task_table="TEST.xml", processor_name="TEST_L1",
        processor_version="1.0", mission="S1", satellite="A", window_start=T, window_stop=T + timedelta(seconds=25),
        timed_out=False, job_order=order.to_xml().decode(), workdir=WORKDIR,
        inputs=(JobInput(name=slice_dir.name, product_type="IW_RAW__0S", bucket=bucket, key=f"{slice_dir.name}/",
                         local_path=f"{WORKDIR}/{slice_dir.name}"),),
        pools=tuple(tuple(JobTask(name=t.name, version=t.version, binary=t.file_name) for t in p.tasks)
                    for p in table.pools),
        outputs=(JobOutput(file_type="IW_GRDH_1S", mandatory=True, pattern="^.*IW_GRDH_1S.*$"),
                 JobOutput(file_type="IW_SLC__1S", mandatory=False, pattern="^.*IW_SLC__1S.*$")),
        image="refsys/test", max_time_s=120,
    )  # fmt: skip


class Collected:
    def __init__(self) -> None:
        self.events: list[CloudEvent] = []
        self.arrived = threading.Event()

    def __call__(self, event: CloudEvent) -> None:
        self.events.append(event)
        self.arrived.set()


def test_a_run_downloads_runs_the_pools_and_hands_its_outputs_to_the_inbox(
    ready: JobReady, settings: Settings, store: ObjectStore
) -> None:
    posted = Collected()
    outcome = Run(ready, "run-ok", settings, store, posted).execute()
    assert isinstance(outcome, JobCompleted), outcome
    assert [t.name for t in outcome.tasks] == ["PRE_A", "PRE_B", "LPC"] and all(t.exit_code == 0 for t in outcome.tasks)
    types = sorted(o.product_type for o in outcome.outputs)
    assert types == ["IW_GRDH_1S", "IW_SLC__1S"]
    for product in outcome.outputs:
        keys = [o.key for o in store.list(settings.inbox_bucket, product.key)]
        assert f"{product.key}manifest.safe" in keys and len(keys) > 3
    assert outcome.bytes_downloaded > 0 and outcome.bytes_uploaded == sum(o.size for o in outcome.outputs)
    assert set(outcome.durations) == {"download", "processing", "upload", "total"}
    assert outcome.inputs == (ready.inputs[0].name,)
    (event,) = posted.events
    assert parse_data(event) == outcome
    stored = json.loads(store.read(settings.jobs_bucket, outcome_key("run-ok")) or b"{}")
    assert stored["id"] == event["id"] and stored["type"] == JobCompleted.TYPE
    assert not (Path(settings.workdir_root or "") / "0123456789abcdef").exists()  # cleaned up


def test_exit_139_fails_the_run_and_keeps_its_working_directory(
    ready: JobReady, settings: Settings, store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFSYS_SIMULATOR_EXIT_CODE", "139")
    outcome = Run(ready, "run-139", settings, store, Collected()).execute()
    assert isinstance(outcome, JobFailed)
    assert (outcome.reason, outcome.exit_code) == (FailureReason.TASK_ERROR, 139)
    assert outcome.task in {"PRE_A", "PRE_B"} and any("[E]" in line for line in outcome.log_tail)
    assert [t.name for t in outcome.tasks if t.name == "LPC"] == []  # the second pool never ran
    kept = [o.key for o in store.list(outcome.workdir_bucket or "", outcome.workdir_key or "")]
    assert any(k.endswith(".xml") and "JobOrder" in k for k in kept) and any("/logs/" in k for k in kept)
    assert not any(ready.inputs[0].name in k for k in kept)  # inputs are not kept: they are in the catalog
    assert store.list(settings.inbox_bucket) == []  # nothing handed on


def test_exit_5_is_a_warning_and_the_run_completes(
    ready: JobReady, settings: Settings, store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFSYS_SIMULATOR_EXIT_CODE", "5")
    outcome = Run(ready, "run-5", settings, store, Collected()).execute()
    assert isinstance(outcome, JobCompleted)
    assert len(outcome.warnings) == 3 and all("exited 5" in w for w in outcome.warnings)
    assert {o.product_type for o in outcome.outputs} == {"IW_GRDH_1S", "IW_SLC__1S"}


def test_sigterm_stops_the_tasks_and_the_run_reports_it(
    ready: JobReady, settings: Settings, store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFSYS_SIMULATOR_SECONDS", "30")
    run = Run(ready, "run-term", settings, store, Collected())
    threading.Timer(2.0, run.stop).start()
    started = time.monotonic()
    outcome = run.execute()
    assert isinstance(outcome, JobFailed) and outcome.reason is FailureReason.TERMINATED
    assert time.monotonic() - started < 20
    assert store.list(settings.inbox_bucket) == []


@pytest.fixture
def launcher(settings: Settings, store: ObjectStore) -> Iterator[tuple[Launcher, Collected]]:
    posted = Collected()
    yield Launcher(settings, RunStore(settings.catalog_url), store, posted), posted


def test_a_killed_local_run_ends_as_job_failed(
    launcher: tuple[Launcher, Collected], ready: JobReady, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    monkeypatch.setenv("REFSYS_SIMULATOR_SECONDS", "60")
    monkeypatch.setenv("REFSYS_S3_ENDPOINT_URL", settings.s3_endpoint_url or "")
    monkeypatch.setenv("REFSYS_S3_ACCESS_KEY", settings.s3_access_key or "")
    monkeypatch.setenv("REFSYS_S3_SECRET_KEY", settings.s3_secret_key or "")
    monkeypatch.setenv("REFSYS_JOBS_BUCKET", settings.jobs_bucket)
    monkeypatch.setenv("REFSYS_WORKDIR_ROOT", settings.workdir_root or "")
    monkeypatch.setenv("REFSYS_TASK_COMMAND", settings.task_command or "")
    work, posted = launcher
    work.on_ready(ready)
    work.on_ready(ready)  # a redelivery while it runs starts nothing
    run = work.runs.get(ready.event_id())
    assert run is not None and run["state"] == "running" and str(run["handle"]).startswith("pid:")
    pid = int(str(run["handle"]).removeprefix("pid:"))
    time.sleep(3)
    import os

    os.kill(pid, signal.SIGKILL)
    assert posted.arrived.wait(30)
    (event,) = posted.events
    failed = parse_data(event)
    assert isinstance(failed, JobFailed) and failed.reason is FailureReason.DIED and failed.exit_code == 137
    assert failed.run_id == ready.event_id() and failed.job_key == ready.job_key
    work.on_outcome(failed)
    assert (work.runs.get(ready.event_id()) or {})["state"] == "failed"
    work.on_ready(ready)  # a late redelivery of an ended run starts nothing
    assert (work.runs.get(ready.event_id()) or {})["state"] == "failed"
