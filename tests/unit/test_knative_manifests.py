"""The deployment in knative/ is what the cluster will accept, and it hangs together."""

from __future__ import annotations

import ast
import copy
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from shared.bus.filters import matches
from shared.bus.kustomize import build
from shared.bus.manifests import load_topology
from tests.conftest import REPO_ROOT
from tests.deploy_check import K8S_VERSION, validate

KNATIVE = REPO_ROOT / "knative" / "overlays" / "dev"


def documents() -> list[dict[str, Any]]:
    return [resource.body for resource in build(KNATIVE)]


def test_a_misspelt_rbac_field_is_caught() -> None:
    role = copy.deepcopy(next(d for d in documents() if d["kind"] == "Role"))
    role["rules"][0]["verb"] = role["rules"][0].pop("verbs")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(role, K8S_VERSION, strict=True)


def test_the_jobs_watch_sees_what_the_runs_are_labelled_with_and_may_only_read() -> None:
    from shared.processing.kubernetes import COMPONENT, COMPONENT_LABEL

    docs = documents()
    source = next(d for d in docs if d["kind"] == "ApiServerSource")
    assert source["spec"]["mode"] == "Resource"
    watched = {(r["apiVersion"], r["kind"]): r["selector"]["matchLabels"] for r in source["spec"]["resources"]}
    assert watched == {("batch/v1", "Job"): {COMPONENT_LABEL: COMPONENT}, ("v1", "Pod"): {COMPONENT_LABEL: COMPONENT}}
    account = source["spec"]["serviceAccountName"]
    binding = next(d for d in docs if d["kind"] == "RoleBinding" and d["subjects"][0]["name"] == account)
    role = next(d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == binding["roleRef"]["name"])
    assert {verb for rule in role["rules"] for verb in rule["verbs"]} == {"get", "list", "watch"}


def test_launch_runs_as_its_account_and_the_jobs_as_theirs() -> None:
    from shared.settings import Settings

    docs = documents()
    accounts = {d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"}
    launch = load_topology(KNATIVE).services["launch"]
    assert launch.raw["spec"]["template"]["spec"]["serviceAccountName"] in accounts
    assert launch.env["REFSYS_RUNNER"] == "kubernetes"
    assert Settings().job_service_account in accounts


def test_job_events_reach_launch_and_kubernetes_changes_its_kubernetes_path() -> None:
    topology = load_topology(KNATIVE)

    def subscribers(attributes: dict[str, str]) -> set[str]:
        return {str(t.subscriber) for t in topology.triggers.values() if matches(t, attributes)}

    for verb in ("ready", "completed", "failed"):
        assert "Service/launch" in subscribers({"type": f"org.refsys.job.{verb}.v1", "source": "/x"})
    change = {"type": "dev.knative.apiserver.resource.update", "source": "https://10.96.0.1:443",
              "refsyswatch": "processing-runs", "kind": "Job"}  # fmt: skip
    assert subscribers(change) == {"Service/launch/kubernetes"}
    assert subscribers({**change, "type": "dev.knative.apiserver.resource.delete"}) == set()
    assert subscribers({**change, "refsyswatch": "other"}) == set()


def test_a_misspelt_field_is_caught() -> None:
    service = copy.deepcopy(next(d for d in documents() if d["kind"] == "Service"))
    revision = service["spec"]["template"]["spec"]
    revision["containerConcurency"] = revision.pop("containerConcurrency")
    with pytest.raises(jsonschema.ValidationError, match="containerConcurency"):
        validate(service)


def test_every_trigger_retries_long_enough_to_outlast_a_restart_and_starts_with_short_gaps() -> None:
    from shared.bus.delivery import RetryPlan

    topology = load_topology(KNATIVE)
    for trigger in topology.triggers.values():
        waits = RetryPlan.from_spec(topology.delivery_for(trigger)).schedule()
        assert sum(waits) >= 300, f"trigger {trigger.name} gives up after {sum(waits):.0f} s"
        assert max(waits[:3]) <= 2, f"trigger {trigger.name} waits long after its first failures: {waits[:3]}"


def test_every_subscriber_and_dead_letter_sink_is_a_service_of_ours() -> None:
    topology = load_topology(KNATIVE)
    destinations = [t.subscriber for t in topology.triggers.values()]
    for trigger in topology.triggers.values():
        sink = topology.delivery_for(trigger).dead_letter_sink
        assert sink is not None, f"trigger {trigger.name} has no dead-letter sink"
        destinations.append(sink)
    for destination in destinations:
        assert destination.ref is not None and destination.ref.name in topology.services


def test_every_service_runs_a_function_target_that_exists() -> None:
    for service in load_topology(KNATIVE).services.values():
        source = REPO_ROOT / service.env["FUNCTION_SOURCE"]
        tree = ast.parse(source.read_text())
        functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert service.env["FUNCTION_TARGET"] in functions, source
        annotations = service.annotations
        assert annotations["autoscaling.knative.dev/min-scale"] == "0", "functions scale to zero"


def test_functions_dir_and_services_match() -> None:
    folders = {p.parent.name for p in (REPO_ROOT / "functions").glob("*/main.py")}
    services = {d["metadata"]["name"] for d in documents() if d["kind"] == "Service" and "serving" in d["apiVersion"]}
    assert folders == services
    # The embedded platform runs them all but the archive, whose work its broker's queue does.
    assert services - set(load_topology(KNATIVE).services) == {"archive"}
