"""Processing runs as Kubernetes Jobs: the Job of a ``job.ready``, the runner that creates it, and the
pure classifiers the ``launch`` function applies to the Job and Pod changes an ApiServerSource sends it.

**The Job** (:func:`job_manifest`) runs the execution wrapper ``refsys execute`` as the entrypoint of the
processor image. The wrapper reads the ``job.ready`` payload from ``REFSYS_JOB_READY``, the run id (the
``job.ready`` event id) from ``REFSYS_RUN_ID`` and posts ``job.completed``/``job.failed`` to ``K_SINK``;
everything else comes from the ConfigMap ``refsys-settings`` and the Secret ``refsys-secrets`` (``envFrom``;
``env`` wins over them). One Job per run: its name is a hash of the run id (:func:`job_name`), so a
redelivered ``job.ready`` finds the Job it already made (:meth:`KubernetesRunner.start` adopts it on 409).

* ``restartPolicy: Never``, ``backoffLimit`` = ``REFSYS_JOB_BACKOFF_LIMIT`` (0: a processor failing is
  not transient), ``activeDeadlineSeconds`` = ``max_time_s``, ``ttlSecondsAfterFinished`` =
  ``REFSYS_JOB_TTL_S``.
* requests = limits = ``ready.resources`` (``ephemeral_storage`` -> ``ephemeral-storage``); the working
  directory root (``/data/localWD``, or ``REFSYS_WORKDIR_ROOT``) is an ``emptyDir`` limited to the
  ephemeral storage (an emptyDir on the node's disk counts against that limit as well).
* ``podFailurePolicy`` (documented choice): two ``FailJob`` rules and nothing ignored.
  Rule 0: a Pod with the ``DisruptionTarget`` condition (preempted, evicted by the API or the kubelet,
  node drained or lost) fails the Job at once, so the run ends as ``evicted`` instead of being counted
  (which would end as an anonymous ``BackoffLimitExceeded``) or silently run again (``Ignore`` would
  start a second attempt of a run that may have uploaded part of its outputs). It comes first because a
  disrupted container is often SIGKILLed too (exit 137). Rule 1: exit code 137 of the ``processor``
  container fails the Job at once as ``out-of-memory``: the container was SIGKILLed, which, without a
  disruption, is the kernel's OOM killer (cgroup v2 kills the whole container on OOM), and retrying a
  run that does not fit its memory is pointless. Every other failure is counted against
  ``backoffLimit`` (the default handling); no rule ``Ignore``s anything.
* Labels on the Job and its Pods: ``app.kubernetes.io/part-of: refsys``,
  ``app.kubernetes.io/component: processing-run`` (what the ApiServerSource selects),
  ``refsys.io/processor`` and ``refsys.io/run`` (the hash of the run id that names the Job).
  Annotations ``refsys.io/run-id`` and ``refsys.io/job-key`` (the full values) on the Job **and on its
  Pod template**.
* ServiceAccount ``REFSYS_JOB_SERVICE_ACCOUNT`` (``refsys-job``, no API rights) without a mounted
  token; non-root (uid/gid 1000, ``runAsNonRoot``), no privilege escalation, all capabilities dropped,
  seccomp ``RuntimeDefault``.

**Run id of a Pod** (documented choice): a Pod carries its template's metadata, so the annotation
``refsys.io/run-id`` is on the Pods as on the Job and :func:`run_id_of` reads it from either. Labels only
hold a hash, which cannot be turned back into a run id: for a Pod without the annotation (made by some
other template) :func:`job_name_of` gives its Job's name (``batch.kubernetes.io/job-name`` / ``job-name``
label, or the owner reference) and :meth:`KubernetesRunner.run_id` reads the run id from that Job.

**Classifiers**: :func:`job_outcome` reads a Job's terminal conditions (``Complete``/``Failed``, not the
interim ``SuccessCriteriaMet``/``FailureTarget``: the wrapper still has its grace period to say how the
run ended, and its word, when there is one, is more precise than Kubernetes'); :func:`pod_problem` tells
what is wrong with a Pod before its Job knows it (an image that cannot be pulled leaves the Pod pending
until the deadline: the launch function deletes such a Job, :meth:`KubernetesRunner.delete`).

The ``kubernetes`` client is imported only by :class:`KubernetesRunner` (it costs 240-450 ms).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from events.processing import FailureReason, JobReady
from shared.observability import tracing
from shared.processing.preparation import WORKDIR_ROOT
from shared.settings import Settings

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

log = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "refsys"
NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
SETTINGS_CONFIGMAP = "refsys-settings"
S3_SECRET = "refsys-secrets"
CONTAINER = "processor"
COMMAND = ["refsys", "execute"]

PART_OF_LABEL = "app.kubernetes.io/part-of"
COMPONENT_LABEL = "app.kubernetes.io/component"
COMPONENT = "processing-run"
PROCESSOR_LABEL = "refsys.io/processor"
RUN_LABEL = "refsys.io/run"
RUN_ID_ANNOTATION = "refsys.io/run-id"
JOB_KEY_ANNOTATION = "refsys.io/job-key"
JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")  # what the Job controller puts on its Pods

# The podFailurePolicy rules (module doc); their indexes appear in the Job's Failed condition message.
DISRUPTION_RULE, OOM_RULE = 0, 1
OOM_EXIT_CODE = 137  # 128 + SIGKILL
# Linux refuses a single environment string longer than this (MAX_ARG_STRLEN): the pod would not start.
MAX_ENV_VALUE = 128 * 1024 - 64
TERMINATION_GRACE_S = 120  # SIGTERM -> SIGKILL: time for the wrapper to keep the workdir and say how it ended
RUN_AS = 1000

_HASH_CHARS = 20
_LABEL_VALUE_BAD = re.compile(r"[^A-Za-z0-9_.-]+")


def run_hash(run_id: str) -> str:
    """A short hash of the run id, valid as a DNS-1123 label part and as a label value."""
    return hashlib.sha256(run_id.encode()).hexdigest()[:_HASH_CHARS]


def job_name(run_id: str) -> str:
    """The Job of a run: ``refsys-run-<hash>`` (31 characters, DNS-1123, the same for every delivery)."""
    return f"refsys-run-{run_hash(run_id)}"


def label_value(text: str) -> str:
    """``text`` made a valid label value: 63 characters at most of [A-Za-z0-9_.-], alphanumeric at both ends."""
    return _LABEL_VALUE_BAD.sub("-", text)[:63].strip("_.-")


def jobs_namespace(settings: Settings) -> str:
    """``REFSYS_JOBS_NAMESPACE``, else the namespace of the pod we run in, else ``refsys``."""
    if settings.jobs_namespace:
        return settings.jobs_namespace
    try:
        return NAMESPACE_FILE.read_text().strip() or DEFAULT_NAMESPACE
    except OSError:
        return DEFAULT_NAMESPACE


def _resource_name(key: str) -> str:
    return key.replace("_", "-")


def job_manifest(ready: JobReady, settings: Settings) -> dict[str, Any]:
    """The batch/v1 Job that runs ``ready`` (module doc), as a JSON-ready dict."""
    run_id = ready.event_id()
    payload = ready.model_dump_json()
    if len(payload.encode()) > MAX_ENV_VALUE:
        raise ValueError(
            f"job {ready.job_key}: its job.ready payload is {len(payload.encode())} bytes, more than an"
            f" environment variable can hold ({MAX_ENV_VALUE})"
        )
    labels = {
        PART_OF_LABEL: "refsys",
        COMPONENT_LABEL: COMPONENT,
        PROCESSOR_LABEL: label_value(ready.processor),
        RUN_LABEL: run_hash(run_id),
    }
    annotations = {RUN_ID_ANNOTATION: run_id, JOB_KEY_ANNOTATION: ready.job_key}
    resources = {_resource_name(k): str(v) for k, v in ready.resources.items()}
    env = [
        {"name": "REFSYS_JOB_READY", "value": payload},
        {"name": "REFSYS_RUN_ID", "value": run_id},
    ]
    if settings.sink:
        env.append({"name": "K_SINK", "value": settings.sink})
    if (trace := tracing.current()) is not None:  # the run continues the trace of its job.ready
        env.append({"name": tracing.TRACEPARENT.upper(), "value": trace.header()})
    workdir_volume: dict[str, Any] = {"name": "workdir", "emptyDir": {}}
    if "ephemeral-storage" in resources:
        workdir_volume["emptyDir"]["sizeLimit"] = resources["ephemeral-storage"]
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": ready.image,
        "command": list(COMMAND),
        "env": env,
        "envFrom": [
            {"configMapRef": {"name": SETTINGS_CONFIGMAP, "optional": True}},
            {"secretRef": {"name": S3_SECRET, "optional": True}},
        ],
        "volumeMounts": [{"name": "workdir", "mountPath": settings.workdir_root or WORKDIR_ROOT}],
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if resources:
        container["resources"] = {"requests": dict(resources), "limits": dict(resources)}
    spec: dict[str, Any] = {
        "backoffLimit": settings.job_backoff_limit,
        "ttlSecondsAfterFinished": settings.job_ttl_s,
        "podFailurePolicy": {
            "rules": [
                {"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
                {
                    "action": "FailJob",
                    "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": [OOM_EXIT_CODE]},
                },
            ]
        },
        "template": {
            "metadata": {"labels": dict(labels), "annotations": dict(annotations)},
            "spec": {
                "restartPolicy": "Never",
                "serviceAccountName": settings.job_service_account,
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "terminationGracePeriodSeconds": TERMINATION_GRACE_S,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": RUN_AS,
                    "runAsGroup": RUN_AS,
                    "fsGroup": RUN_AS,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [container],
                "volumes": [workdir_volume],
            },
        },
    }
    if ready.max_time_s:
        spec["activeDeadlineSeconds"] = ready.max_time_s
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(run_id),
            "namespace": jobs_namespace(settings),
            "labels": labels,
            "annotations": annotations,
        },
        "spec": spec,
    }


# ---------------------------------------------------------------------------------------------
class KubernetesRunner:
    """Starts runs as Jobs through the Kubernetes API (``BatchV1Api``).

    Configuration: the in-cluster service account when there is one, else the kubeconfig; tests pass
    their own ``ApiClient``.
    """

    def __init__(self, settings: Settings, api_client: ApiClient | None = None) -> None:
        from kubernetes import client, config

        if api_client is None:
            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config()
            api_client = client.ApiClient()
        self.settings = settings
        self.namespace = jobs_namespace(settings)
        self.batch = client.BatchV1Api(api_client)

    def start(self, ready: JobReady) -> str:
        """Create the Job of ``ready`` and return its name; a Job of that run already there is adopted."""
        from kubernetes.client.exceptions import ApiException

        if not self.settings.sink:
            # The wrapper would have nowhere to say how the run ended.
            raise RuntimeError("no sink (K_SINK) to give the Job: is the launch Service bound to the broker?")
        body = job_manifest(ready, self.settings)
        name = str(body["metadata"]["name"])
        try:
            self.batch.create_namespaced_job(self.namespace, cast(Any, body))  # the client takes the JSON as it is
        except ApiException as exc:
            if exc.status == 409 and _status_reason(exc.body) == "AlreadyExists":
                log.info("run %s: job %s already exists, adopted", ready.event_id(), name)
                return name
            raise
        log.info("run %s: job %s created in %s", ready.event_id(), name, self.namespace)
        return name

    def delete(self, name: str) -> bool:
        """Delete a Job and its Pods (in the background); False when it was already gone."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        try:
            self.batch.delete_namespaced_job(
                name, self.namespace, body=client.V1DeleteOptions(propagation_policy="Background")
            )
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def run_id(self, name: str) -> str | None:
        """The run id of a Job (for a Pod whose template carried no annotation); None when it is gone."""
        from kubernetes.client.exceptions import ApiException

        try:
            job = self.batch.read_namespaced_job(name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return run_id_of(job.to_dict(serialize=True))


def _status_reason(body: Any) -> str | None:
    try:
        status = json.loads(body)
    except (TypeError, ValueError):
        return None
    return status.get("reason") if isinstance(status, dict) else None


# ---------------------------------------------------------------------------------------------
# Classifiers: pure functions of the JSON objects the ApiServerSource sends (camelCase, as the API gives).
@dataclass(frozen=True)
class JobEnd:
    """How a Job ended, as Kubernetes saw it: ``reason`` is None when it succeeded."""

    succeeded: bool
    reason: FailureReason | None = None
    message: str = ""
    kubernetes_reason: str = ""  # the condition's reason, e.g. DeadlineExceeded
    started: datetime | None = None
    finished: datetime | None = None


_RULE_INDEX = re.compile(r"rule at index (\d+)")
_IMAGE_REASONS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
_START_REASONS = {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _true_condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for condition in status.get("conditions") or ():
        if condition.get("type") == kind and condition.get("status") == "True":
            return cast(Mapping[str, Any], condition)
    return None


def job_outcome(job: Mapping[str, Any]) -> JobEnd | None:
    """How a Job ended; None while it runs (or is only about to end: ``FailureTarget``, ``SuccessCriteriaMet``).

    Failed reasons: ``DeadlineExceeded`` -> deadline-exceeded; ``PodFailurePolicy`` -> evicted (rule 0,
    ``DisruptionTarget``) or out-of-memory (rule 1, exit code 137); ``BackoffLimitExceeded`` and anything
    else -> died (the Pod failed without the wrapper's word reaching Kubernetes).
    """
    status = job.get("status") or {}
    started = _time(status.get("startTime"))
    complete = _true_condition(status, "Complete")
    if complete is not None:
        finished = _time(status.get("completionTime")) or _time(complete.get("lastTransitionTime"))
        return JobEnd(True, None, "the run's Job completed", "Complete", started, finished)
    failed = _true_condition(status, "Failed")
    if failed is None:
        return None
    kreason = str(failed.get("reason") or "")
    kmessage = str(failed.get("message") or "")
    finished = _time(failed.get("lastTransitionTime"))
    said = f" (Kubernetes: {kreason}: {kmessage})" if kmessage else f" (Kubernetes: {kreason})"
    deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
    if kreason == "DeadlineExceeded":
        limit = f" of {deadline} s" if deadline else ""
        return JobEnd(
            False, FailureReason.DEADLINE_EXCEEDED, f"the run exceeded its time limit{limit}{said}", kreason, started,
            finished,
        )  # fmt: skip
    if kreason == "PodFailurePolicy":
        match = _RULE_INDEX.search(kmessage)
        rule = int(match.group(1)) if match else None
        if rule == DISRUPTION_RULE or (rule is None and "DisruptionTarget" in kmessage):
            return JobEnd(
                False, FailureReason.EVICTED, f"the run's pod was evicted or preempted{said}", kreason, started,
                finished,
            )  # fmt: skip
        if rule == OOM_RULE or (rule is None and f"exit code {OOM_EXIT_CODE}" in kmessage):
            return JobEnd(
                False, FailureReason.OUT_OF_MEMORY, f"the run was killed (exit code 137), out of memory{said}",
                kreason, started, finished,
            )  # fmt: skip
    return JobEnd(
        False, FailureReason.DIED, f"the run's pod failed without reporting how the run ended{said}", kreason,
        started, finished,
    )  # fmt: skip


def pod_problem(pod: Mapping[str, Any]) -> tuple[FailureReason, str] | None:
    """What keeps a run's Pod from running or ended it, when Kubernetes says so; None otherwise.

    Evicted (``status.reason`` or a ``DisruptionTarget`` condition) -> evicted; a container terminated
    ``OOMKilled`` -> out-of-memory; waiting on ``ErrImagePull``/``ImagePullBackOff``/``InvalidImageName``/
    ``ErrImageNeverPull`` -> image-unavailable (``ErrImagePull`` can be a passing registry hiccup: the
    launch function decides how long to wait before deleting the Job); a container that could not be
    created or started (``CreateContainerConfigError``..., terminated ``StartError``) -> launch-failed.
    A Pod waiting to be scheduled is no problem: the cluster may be scaling up.
    """
    status = pod.get("status") or {}
    if status.get("reason") == "Evicted":
        return FailureReason.EVICTED, f"the run's pod was evicted: {status.get('message') or 'no reason given'}"
    disruption = _true_condition(status, "DisruptionTarget")
    if disruption is not None:
        why = disruption.get("message") or disruption.get("reason") or "no reason given"
        return FailureReason.EVICTED, f"the run's pod was disrupted ({disruption.get('reason')}): {why}"
    containers = [*(status.get("initContainerStatuses") or ()), *(status.get("containerStatuses") or ())]
    for container in containers:
        name = container.get("name", "?")
        for state_key in ("state", "lastState"):
            terminated = (container.get(state_key) or {}).get("terminated") or {}
            if terminated.get("reason") == "OOMKilled":
                return FailureReason.OUT_OF_MEMORY, (
                    f"container {name} was killed out of memory (OOMKilled, exit code {terminated.get('exitCode')})"
                )
    for container in containers:
        name = container.get("name", "?")
        state = container.get("state") or {}
        waiting = state.get("waiting") or {}
        reason = waiting.get("reason")
        if reason in _IMAGE_REASONS:
            image = container.get("image", "?")
            return FailureReason.IMAGE_UNAVAILABLE, (
                f"image {image} of container {name} cannot be pulled ({reason}): {waiting.get('message') or ''}"
            ).rstrip(": ")
        if reason in _START_REASONS:
            return FailureReason.LAUNCH_FAILED, (
                f"container {name} cannot start ({reason}): {waiting.get('message') or ''}"
            ).rstrip(": ")
        terminated = state.get("terminated") or {}
        if terminated.get("reason") in ("StartError", "ContainerCannotRun"):
            return FailureReason.LAUNCH_FAILED, (
                f"container {name} could not run ({terminated['reason']}): {terminated.get('message') or ''}"
            ).rstrip(": ")
    return None


def is_processing_run(obj: Mapping[str, Any]) -> bool:
    """Whether a Job or Pod is one of our runs (the label the ApiServerSource selects on)."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(COMPONENT_LABEL) == COMPONENT and labels.get(PART_OF_LABEL) == "refsys")


def run_id_of(obj: Mapping[str, Any]) -> str | None:
    """The run id of a Job or of one of its Pods (the ``refsys.io/run-id`` annotation; module doc).

    None without the annotation, or when it does not match the object's ``refsys.io/run`` label or Job
    name (an object that is not what it claims).
    """
    meta = obj.get("metadata") or {}
    run_id = (meta.get("annotations") or {}).get(RUN_ID_ANNOTATION)
    if not isinstance(run_id, str) or not run_id:
        return None
    label = (meta.get("labels") or {}).get(RUN_LABEL)
    if label is not None and label != run_hash(run_id):
        return None
    name = job_name_of(obj)
    if name is not None and name != job_name(run_id):
        return None
    return run_id


def job_name_of(obj: Mapping[str, Any]) -> str | None:
    """The name of a Job, or of the Job a Pod belongs to (its job-name label, else its owner reference)."""
    meta = obj.get("metadata") or {}
    if obj.get("kind") == "Job":
        name = meta.get("name")
        return str(name) if name else None
    labels = meta.get("labels") or {}
    for label in JOB_NAME_LABELS:
        if labels.get(label):
            return str(labels[label])
    for owner in meta.get("ownerReferences") or ():
        if owner.get("kind") == "Job" and owner.get("name"):
            return str(owner["name"])
    return None
