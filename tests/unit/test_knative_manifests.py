"""The deployment in knative/ is what the cluster will accept, and it hangs together."""

from __future__ import annotations

import ast
import copy
from functools import cache
from typing import Any

import jsonschema
import pytest
import yaml

from shared.bus.manifests import load_topology
from tests.conftest import REPO_ROOT, SAMPLES

KNATIVE = REPO_ROOT / "knative"
CRDS = SAMPLES.parent / "schemas" / "knative"
CORE_KINDS = {("v1", "Namespace")}  # Kubernetes built-ins: no CRD to check against


def documents() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((KNATIVE / "kustomization.yaml").read_text())
    docs = []
    for resource in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((KNATIVE / resource).read_text()) if d]
    return docs


@cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the CRD's openAPIV3Schema."""
    schemas = {}
    for path in CRDS.rglob("*.yaml"):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            for version in spec["versions"]:
                schema = version.get("schema", {}).get("openAPIV3Schema") or spec.get("validation", {}).get(
                    "openAPIV3Schema"
                )
                schemas[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = schema
    return schemas


def strict(schema: Any) -> Any:
    """Refuse fields the API server would silently prune: a typo in a manifest must fail here."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema.setdefault("additionalProperties", False)
    elif isinstance(schema, list):
        schema = [strict(item) for item in schema]
    return schema


def validate(doc: dict[str, Any]) -> None:
    key = (doc["apiVersion"], doc["kind"])
    schemas = crd_schemas()
    assert key in schemas, f"no CRD for {key} in ../shared/schemas/knative"
    schema = strict(schemas[key])
    # Type and object metadata are checked by the API server itself, not by CRD schemas.
    schema["properties"].update(apiVersion={"type": "string"}, kind={"type": "string"}, metadata={"type": "object"})
    jsonschema.validate(doc, schema)


@pytest.mark.parametrize("doc", documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_manifest_validates_against_its_crd(doc: dict[str, Any]) -> None:
    if (doc["apiVersion"], doc["kind"]) not in CORE_KINDS:
        validate(doc)


def test_a_misspelt_field_is_caught() -> None:
    service = copy.deepcopy(next(d for d in documents() if d["kind"] == "Service"))
    revision = service["spec"]["template"]["spec"]
    revision["containerConcurency"] = revision.pop("containerConcurrency")
    with pytest.raises(jsonschema.ValidationError, match="containerConcurency"):
        validate(service)


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
    assert folders == set(load_topology(KNATIVE).services)
