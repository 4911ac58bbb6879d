"""Runs as Kubernetes Jobs: the manifest, the runner against a loopback API server, the classifiers, the CLI."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from kubernetes import client

from events.processing import FailureReason, JobInput, JobReady, JobTask
from shared.catalog import open_catalog
from shared.processing.jobs import JobState, JobStore
from shared.processing.kubernetes import (
    KubernetesRunner,
    job_manifest,
    job_name,
    job_name_of,
    job_outcome,
    pod_problem,
    run_hash,
    run_id_of,
)
from shared.settings import Settings
from tests.unit.test_processing_jobs_cli import run

T = datetime(2024, 5, 1, tzinfo=UTC)
NAMESPACE = "refsys-test"
SINK = "http://broker-ingress.knative-eventing.svc.cluster.local/refsys/default"
K8S_VERSION = "1.33.0"  # a recent version kubernetes-validate ships, validated offline


def ready(**changes: Any) -> JobReady:
    fields: dict[str, Any] = dict(
        job_key="s1-aiop:L20240501120000000000001",
        processor="s1-aiop",
        task_table="TaskTable.AIOP.xml",
        processor_name="AIOP",
        processor_version="3.5",
        mission="S1",
        satellite="A",
        window_start=T,
        window_stop=T + timedelta(minutes=10),
        timed_out=False,
        job_order="<Ipf_Job_Order/>",
        workdir="/data/localWD/0123456789abcdef",
        inputs=(
            JobInput(
                name="DCS_05_L20240501120000000000001_ch1_DSDB_00001.raw",
                product_type="RAW",
                bucket="rs-session-files",
                key="L20240501120000000000001/ch01/DCS_05_L20240501120000000000001_ch1_DSDB_00001.raw",
                local_path="/data/localWD/0123456789abcdef/ch01/DCS_05_L20240501120000000000001_ch1_DSDB_00001.raw",
            ),
        ),
        pools=((JobTask(name="AIOProcessor", version="3.5", binary="/usr/local/bin/AIOProcessor"),),),
        image="ghcr.io/refsys/ipf-simulator:0.1",
        resources={"cpu": "7", "memory": "50Gi", "ephemeral_storage": "220Gi"},
        max_time_s=7200,
    )
    fields.update(changes)
    return JobReady(**fields)


def settings(**changes: Any) -> Settings:
    # `sink` is read from K_SINK (a validation alias): set it by copy, whatever the environment says.
    return Settings(jobs_namespace=NAMESPACE, **changes).model_copy(update={"sink": SINK})


# -- the manifest -------------------------------------------------------------------------------------


def test_job_name_is_a_short_dns_label_derived_from_the_run_id() -> None:
    run_id = ready().event_id()
    name = job_name(run_id)
    assert name == job_name(run_id) and name.startswith("refsys-run-") and len(name) <= 63
    assert name.replace("-", "").isalnum() and name == name.lower()
    assert job_name(run_id + "x") != name


def test_the_manifest_runs_the_wrapper_in_the_processor_image_with_the_run() -> None:
    job_ready = ready()
    run_id = job_ready.event_id()
    job = job_manifest(job_ready, settings(job_backoff_limit=0, job_ttl_s=3600))
    assert job["metadata"]["name"] == job_name(run_id) and job["metadata"]["namespace"] == NAMESPACE
    spec = job["spec"]
    assert spec["activeDeadlineSeconds"] == 7200 and spec["backoffLimit"] == 0
    assert spec["ttlSecondsAfterFinished"] == 3600
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["serviceAccountName"] == "refsys-job"
    assert pod["automountServiceAccountToken"] is False and pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["image"] == job_ready.image and container["command"] == ["refsys", "execute"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert JobReady.model_validate_json(env["REFSYS_JOB_READY"]) == job_ready
    assert env["REFSYS_RUN_ID"] == run_id and env["K_SINK"] == SINK
    assert [next(iter(e.values()))["name"] for e in container["envFrom"]] == ["refsys-settings", "refsys-secrets"]
    expected = {"cpu": "7", "memory": "50Gi", "ephemeral-storage": "220Gi"}
    assert container["resources"] == {"requests": expected, "limits": expected}
    assert container["volumeMounts"] == [{"name": "workdir", "mountPath": "/data/localWD"}]
    assert pod["volumes"] == [{"name": "workdir", "emptyDir": {"sizeLimit": "220Gi"}}]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    # Job and Pods carry the labels the ApiServerSource selects and the run id the launch function reads.
    for meta in (job["metadata"], spec["template"]["metadata"]):
        assert meta["labels"] == {
            "app.kubernetes.io/part-of": "refsys",
            "app.kubernetes.io/component": "processing-run",
            "refsys.io/processor": "s1-aiop",
            "refsys.io/run": run_hash(run_id),
        }
        assert meta["annotations"] == {"refsys.io/run-id": run_id, "refsys.io/job-key": job_ready.job_key}
    rules = spec["podFailurePolicy"]["rules"]
    assert [r["action"] for r in rules] == ["FailJob", "FailJob"]
    assert rules[1]["onExitCodes"] == {"containerName": "processor", "operator": "In", "values": [137]}


def test_without_a_deadline_resources_or_sink_the_manifest_leaves_them_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shared.processing.kubernetes.NAMESPACE_FILE", Path("/nonexistent/namespace"))
    job = job_manifest(
        ready(max_time_s=None, resources={}), Settings(jobs_namespace=None).model_copy(update={"sink": None})
    )
    assert "activeDeadlineSeconds" not in job["spec"] and job["metadata"]["namespace"] == "refsys"
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert "resources" not in container and "K_SINK" not in {e["name"] for e in container["env"]}
    assert job["spec"]["template"]["spec"]["volumes"] == [{"name": "workdir", "emptyDir": {}}]


def test_the_namespace_is_the_pods_own_when_not_configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "namespace").write_text("processing\n")
    monkeypatch.setattr("shared.processing.kubernetes.NAMESPACE_FILE", tmp_path / "namespace")
    assert job_manifest(ready(), Settings(jobs_namespace=None))["metadata"]["namespace"] == "processing"


@pytest.mark.parametrize("max_time_s", [7200, None])
def test_the_manifest_validates_against_the_kubernetes_openapi_schema(max_time_s: int | None) -> None:
    job = job_manifest(ready(max_time_s=max_time_s), settings())
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)


def test_the_schema_check_would_catch_a_misspelt_field() -> None:
    job = job_manifest(ready(), settings())
    job["spec"]["template"]["spec"]["restartPolicyy"] = job["spec"]["template"]["spec"].pop("restartPolicy")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, K8S_VERSION, strict=True)


def test_a_payload_too_big_for_an_environment_variable_is_refused() -> None:
    with pytest.raises(ValueError, match="environment variable"):
        job_manifest(ready(job_order="<x>" + "y" * 140_000 + "</x>"), settings())


# -- the runner, with the real client, against a loopback API server ---------------------------------------


class FakeApiServer(ThreadingHTTPServer):
    """Answers Job creation: 201 with the Job (and a uid) the first time, 409 AlreadyExists afterwards."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.created: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str]] = []
        self.deleted: list[tuple[str, dict[str, Any]]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeApiServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _answer(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length)) if length else {}

    def do_POST(self) -> None:
        self.server.requests.append(("POST", self.path))
        body = self._body()
        prefix = "/apis/batch/v1/namespaces/"
        if not (self.path.startswith(prefix) and self.path.endswith("/jobs")):
            return self._answer(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404})
        namespace = self.path[len(prefix) : -len("/jobs")]
        name = body["metadata"]["name"]
        if any(job["metadata"]["name"] == name for job in self.server.created):
            return self._answer(
                409,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "message": f'jobs.batch "{name}" already exists',
                    "reason": "AlreadyExists",
                    "details": {"name": name, "group": "batch", "kind": "jobs"},
                    "code": 409,
                },
            )
        self.server.created.append(copy.deepcopy(body))
        echo = copy.deepcopy(body)
        echo["metadata"].update(namespace=namespace, uid="6f1c1a52-51c5-4a4b-9c43-1c1d2b8f0e11", resourceVersion="1")
        return self._answer(201, echo)

    def do_DELETE(self) -> None:
        self.server.requests.append(("DELETE", self.path))
        self.server.deleted.append((self.path, self._body()))
        return self._answer(200, {"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 200})


@pytest.fixture
def api_server() -> Iterator[FakeApiServer]:
    server = FakeApiServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def runner_for(server: FakeApiServer) -> KubernetesRunner:
    configuration = client.Configuration(host=server.url)
    return KubernetesRunner(settings(), client.ApiClient(configuration))


def test_start_creates_the_job_once_and_adopts_it_on_a_redelivery(api_server: FakeApiServer) -> None:
    runner = runner_for(api_server)
    job_ready = ready()
    first = runner.start(job_ready)
    second = runner.start(job_ready)
    assert first == second == job_name(job_ready.event_id())
    assert api_server.requests == [("POST", f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs")] * 2
    (created,) = api_server.created
    assert created == job_manifest(job_ready, settings())


def test_start_refuses_without_a_sink(api_server: FakeApiServer) -> None:
    no_sink = settings().model_copy(update={"sink": None})
    runner = KubernetesRunner(no_sink, client.ApiClient(client.Configuration(host=api_server.url)))
    with pytest.raises(RuntimeError, match="K_SINK"):
        runner.start(ready())
    assert api_server.created == []


def test_delete_removes_the_job_in_the_background(api_server: FakeApiServer) -> None:
    assert runner_for(api_server).delete("refsys-run-0123") is True
    ((path, body),) = api_server.deleted
    assert path == f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs/refsys-run-0123"
    assert body["propagationPolicy"] == "Background"


# -- the classifiers, on status JSON as the API server gives it -------------------------------------------


def job_with(status: dict[str, Any], job_ready: JobReady | None = None) -> dict[str, Any]:
    job = job_manifest(job_ready or ready(), settings())
    job["metadata"].update(uid="8c6a7e36-1c1d-4b0e-a2f3-8f3a1c0e5d21", resourceVersion="4711")
    job["status"] = status
    return job


def failed(reason: str, message: str) -> dict[str, Any]:
    return {
        "startTime": "2024-05-01T12:00:00Z",
        "failed": 1,
        "terminating": 0,
        "uncountedTerminatedPods": {},
        "ready": 0,
        "conditions": [
            {
                "type": "FailureTarget",
                "status": "True",
                "lastProbeTime": "2024-05-01T14:00:00Z",
                "lastTransitionTime": "2024-05-01T14:00:00Z",
                "reason": reason,
                "message": message,
            },
            {
                "type": "Failed",
                "status": "True",
                "lastProbeTime": "2024-05-01T14:00:31Z",
                "lastTransitionTime": "2024-05-01T14:00:31Z",
                "reason": reason,
                "message": message,
            },
        ],
    }


def test_a_running_job_has_no_outcome_yet() -> None:
    assert job_outcome(job_with({"startTime": "2024-05-01T12:00:00Z", "active": 1, "ready": 1})) is None
    assert job_outcome(job_with({})) is None


def test_a_job_about_to_fail_waits_for_its_failed_condition() -> None:
    status = failed("DeadlineExceeded", "Job was active longer than specified deadline")
    status["conditions"] = status["conditions"][:1]  # FailureTarget only: its pods still terminate
    assert job_outcome(job_with(status)) is None


def test_a_job_over_its_deadline_ended_as_deadline_exceeded() -> None:
    end = job_outcome(job_with(failed("DeadlineExceeded", "Job was active longer than specified deadline")))
    assert end is not None and not end.succeeded and end.reason is FailureReason.DEADLINE_EXCEEDED
    assert "7200 s" in end.message and end.kubernetes_reason == "DeadlineExceeded"
    assert end.started == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert end.finished == datetime(2024, 5, 1, 14, 0, 31, tzinfo=UTC)


def test_the_oom_rule_of_the_pod_failure_policy_is_out_of_memory() -> None:
    message = (
        "Container processor for pod refsys-test/refsys-run-0123-x7k2p failed with exit code 137 matching FailJob"
        " rule at index 1"
    )
    end = job_outcome(job_with(failed("PodFailurePolicy", message)))
    assert end is not None and end.reason is FailureReason.OUT_OF_MEMORY and "exit code 137" in end.message


def test_the_disruption_rule_of_the_pod_failure_policy_is_evicted() -> None:
    message = "Pod refsys-test/refsys-run-0123-x7k2p has condition DisruptionTarget matching FailJob rule at index 0"
    end = job_outcome(job_with(failed("PodFailurePolicy", message)))
    assert end is not None and end.reason is FailureReason.EVICTED


def test_a_pod_that_failed_without_a_word_is_died() -> None:
    end = job_outcome(job_with(failed("BackoffLimitExceeded", "Job has reached the specified backoff limit")))
    assert end is not None and end.reason is FailureReason.DIED and "backoff limit" in end.message


def test_a_complete_job_succeeded() -> None:
    status = {
        "startTime": "2024-05-01T12:00:00Z",
        "completionTime": "2024-05-01T12:42:00Z",
        "succeeded": 1,
        "terminating": 0,
        "uncountedTerminatedPods": {},
        "ready": 0,
        "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
             "lastTransitionTime": "2024-05-01T12:41:58Z", "message": "Reached expected number of succeeded pods"},
            {"type": "Complete", "status": "True", "reason": "CompletionsReached",
             "lastTransitionTime": "2024-05-01T12:42:00Z", "message": "Reached expected number of succeeded pods"},
        ],
    }  # fmt: skip
    end = job_outcome(job_with(status))
    assert end is not None and end.succeeded and end.reason is None
    assert end.finished == datetime(2024, 5, 1, 12, 42, tzinfo=UTC)


def pod_of(job_ready: JobReady, status: dict[str, Any]) -> dict[str, Any]:
    """A Pod as the Job controller makes it from the Job's template."""
    job = job_manifest(job_ready, settings())
    name = job["metadata"]["name"]
    template = job["spec"]["template"]
    labels = {**template["metadata"]["labels"], "batch.kubernetes.io/job-name": name, "job-name": name,
              "batch.kubernetes.io/controller-uid": "8c6a7e36", "controller-uid": "8c6a7e36"}  # fmt: skip
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": f"{name}-x7k2p",
            "namespace": NAMESPACE,
            "labels": labels,
            "annotations": dict(template["metadata"]["annotations"]),
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": name,
                    "uid": "8c6a7e36",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": template["spec"],
        "status": status,
    }


def waiting(reason: str, message: str) -> dict[str, Any]:
    return {
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False"}],
        "containerStatuses": [
            {
                "name": "processor",
                "image": "ghcr.io/refsys/ipf-simulator:0.1",
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "started": False,
                "state": {"waiting": {"reason": reason, "message": message}},
                "lastState": {},
            }
        ],
    }


def test_an_image_that_cannot_be_pulled_is_image_unavailable() -> None:
    message = 'Back-off pulling image "ghcr.io/refsys/ipf-simulator:0.1"'
    problem = pod_problem(pod_of(ready(), waiting("ImagePullBackOff", message)))
    assert problem is not None and problem[0] is FailureReason.IMAGE_UNAVAILABLE
    assert "ghcr.io/refsys/ipf-simulator:0.1" in problem[1] and "ImagePullBackOff" in problem[1]
    for reason in ("ErrImagePull", "InvalidImageName"):
        assert pod_problem(pod_of(ready(), waiting(reason, "x")))[0] is FailureReason.IMAGE_UNAVAILABLE  # type: ignore[index]


def test_an_evicted_pod_is_evicted() -> None:
    status = {
        "phase": "Failed",
        "reason": "Evicted",
        "message": "The node was low on resource: ephemeral-storage. Threshold quantity: 10Gi, available: 9Gi.",
        "conditions": [{"type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet",
                        "message": "The node was low on resource: ephemeral-storage."}],
    }  # fmt: skip
    problem = pod_problem(pod_of(ready(), status))
    assert problem is not None and problem[0] is FailureReason.EVICTED and "ephemeral-storage" in problem[1]


def test_an_oom_killed_container_is_out_of_memory() -> None:
    status = waiting("", "")
    status["phase"] = "Failed"
    status["containerStatuses"][0]["state"] = {
        "terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": "2024-05-01T12:00:05Z",
                       "finishedAt": "2024-05-01T12:31:00Z"}
    }  # fmt: skip
    problem = pod_problem(pod_of(ready(), status))
    assert problem is not None and problem[0] is FailureReason.OUT_OF_MEMORY


def test_a_running_or_unscheduled_pod_is_no_problem() -> None:
    running = waiting("", "")
    running["phase"] = "Running"
    running["containerStatuses"][0]["state"] = {"running": {"startedAt": "2024-05-01T12:00:05Z"}}
    assert pod_problem(pod_of(ready(), running)) is None
    unscheduled = {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                                                       "reason": "Unschedulable", "message": "0/3 nodes"}]}  # fmt: skip
    assert pod_problem(pod_of(ready(), unscheduled)) is None


def test_the_run_id_is_read_from_the_job_and_from_its_pods() -> None:
    job_ready = ready()
    run_id = job_ready.event_id()
    job = job_with({}, job_ready)
    pod = pod_of(job_ready, waiting("ContainerCreating", ""))
    assert run_id_of(job) == run_id_of(pod) == run_id
    assert job_name_of(job) == job_name_of(pod) == job_name(run_id)
    # A Pod without the annotation: its Job's name, from which the runner reads the run id.
    del pod["metadata"]["annotations"]
    assert run_id_of(pod) is None and job_name_of(pod) == job_name(run_id)
    del pod["metadata"]["labels"]["job-name"], pod["metadata"]["labels"]["batch.kubernetes.io/job-name"]
    assert job_name_of(pod) == job_name(run_id)  # from the owner reference
    # An annotation that does not match the object's labels is not believed.
    job["metadata"]["annotations"]["refsys.io/run-id"] = "another run"
    assert run_id_of(job) is None
    assert run_id_of({"kind": "Pod", "metadata": {"name": "something-else"}}) is None


# -- refsys jobs manifest ---------------------------------------------------------------------------------


@pytest.fixture
def jobs_dir(tmp_path: Path) -> Path:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    open_catalog(url).close()
    store = JobStore(url)
    job_ready = ready()
    store.open_job(job_ready.job_key, "s1-aiop", "L20240501120000000000001", T, T + timedelta(hours=2))
    store.make_ready(
        job_ready.job_key, JobState.READY, [], (T, T + timedelta(minutes=10)), "event-1",
        job_ready.model_dump_json(), T,
    )  # fmt: skip
    store.open_job("s1-aiop:L2", "s1-aiop", "L2", T, T + timedelta(hours=2))
    store.close()
    return tmp_path


def test_jobs_manifest_prints_the_job_launch_would_create(
    jobs_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFSYS_JOBS_NAMESPACE", NAMESPACE)
    monkeypatch.setenv("K_SINK", SINK)
    assert run(["jobs", "manifest", ready().job_key], jobs_dir) == 0
    assert json.loads(capsys.readouterr().out) == job_manifest(ready(), settings())


def test_jobs_manifest_exits_2_for_an_unknown_or_waiting_job(
    jobs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["jobs", "manifest", "nope"], jobs_dir) == 2
    assert "no job 'nope'" in capsys.readouterr().err
    assert run(["jobs", "manifest", "s1-aiop:L2"], jobs_dir) == 2
    assert "not ready yet" in capsys.readouterr().err
