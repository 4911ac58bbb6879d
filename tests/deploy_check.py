"""``make deploy-check``: every overlay of ``knative/`` built and checked offline, as a cluster would take it.

For each overlay (``knative/overlays/*``):

1. built by the kustomize subset the local platform uses (``shared.bus.kustomize``) and, where ``kubectl`` is
   installed, compared with ``kubectl kustomize`` (the maintained implementation): the same objects;
2. core kinds validated strictly against the Kubernetes OpenAPI schemas (``kubernetes-validate``, offline),
   Knative kinds strictly against their CRDs in ``../shared/schemas/knative`` (a field the API server would
   prune silently is an error);
3. references: every Trigger's broker, subscriber and dead-letter sink, every source's sink, every Secret and
   ConfigMap a container or the Broker reads, exist in the build; every event type the functions emit has a
   Trigger, or is one of ``TERMINAL`` (said why).

``python -m tests.deploy_check [OVERLAY_DIR...]`` prints one line per overlay and exits 1 on any problem.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from shared.bus.kustomize import build, containers

REPO_ROOT = Path(__file__).resolve().parents[1]
OVERLAYS = REPO_ROOT / "knative" / "overlays"
CRDS = REPO_ROOT.parent / "shared" / "schemas" / "knative"
CORE_API_VERSIONS = {"v1", "rbac.authorization.k8s.io/v1", "batch/v1"}  # Kubernetes built-ins: no CRD
K8S_VERSION = "1.33.0"
# Event types no Trigger takes, and why that is right.
TERMINAL = {
    "org.refsys.product.rejected.v1": "the product is quarantined with its reason; `refsys status` shows it",
}


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
    """Raise a ValidationError when the cluster would refuse (or silently prune part of) ``doc``."""
    if doc["apiVersion"] in CORE_API_VERSIONS:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        return
    key = (doc["apiVersion"], doc["kind"])
    schemas = crd_schemas()
    if key not in schemas:
        raise jsonschema.ValidationError(f"no CRD for {key} in {CRDS}")
    schema = strict(schemas[key])
    # Type and object metadata are checked by the API server itself, not by CRD schemas.
    schema["properties"].update(apiVersion={"type": "string"}, kind={"type": "string"}, metadata={"type": "object"})
    jsonschema.validate(doc, schema)


def problems(overlay: Path) -> list[str]:
    """Everything wrong with one overlay, as sentences; empty when it deploys."""
    docs = [r.body for r in build(overlay)]
    return [*_against_kubectl(overlay, docs), *_invalid(docs), *_dangling(docs), *_unrouted(overlay)]


def _against_kubectl(overlay: Path, docs: list[dict[str, Any]]) -> Iterator[str]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return
    run = subprocess.run([kubectl, "kustomize", str(overlay)], capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        yield f"kubectl kustomize refuses it: {run.stderr.strip()[:500]}"
        return
    theirs = {_key(d): d for d in yaml.safe_load_all(run.stdout) if d}
    ours = {_key(d): d for d in docs}
    for key in sorted(set(theirs) ^ set(ours)):
        yield f"{key}: only in {'kubectl kustomize' if key in theirs else 'our build'}"
    for key in sorted(set(theirs) & set(ours)):
        if theirs[key] != ours[key]:
            yield f"{key}: our build differs from kubectl kustomize's"


def _key(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata") or {}
    return f"{doc.get('kind')}/{meta.get('namespace', '')}/{meta.get('name')}"


def _invalid(docs: list[dict[str, Any]]) -> Iterator[str]:
    for doc in docs:
        try:
            validate(doc)
        except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as exc:
            yield f"{_key(doc)}: {str(getattr(exc, 'message', exc)).splitlines()[0][:300]}"


def _dangling(docs: list[dict[str, Any]]) -> Iterator[str]:
    present = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for doc in docs:
        for kind, name, what in _references(doc):
            if (kind, name) not in present:
                yield f"{_key(doc)}: its {what} {kind} {name!r} is not defined"


def _references(doc: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(kind, name, what it is to ``doc``) of every object ``doc`` needs."""
    spec = doc.get("spec") or {}
    if doc["kind"] == "Trigger":
        yield "Broker", spec["broker"], "broker"
        yield from _destination(spec.get("subscriber"), "subscriber")
        yield from _destination((spec.get("delivery") or {}).get("deadLetterSink"), "dead-letter sink")
    if doc["kind"] == "Broker":
        yield from _destination((spec.get("delivery") or {}).get("deadLetterSink"), "dead-letter sink")
        if config := spec.get("config"):
            yield config["kind"], config["name"], "config"
    yield from _destination(spec.get("sink"), "sink")
    for container in containers(doc):
        for source in container.get("envFrom") or []:
            for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                if key in source:
                    yield kind, source[key]["name"], "environment"
        for variable in container.get("env") or []:
            for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                if key in (variable.get("valueFrom") or {}):
                    yield kind, variable["valueFrom"][key]["name"], f"variable {variable['name']}"


def _destination(destination: Any, what: str) -> Iterator[tuple[str, str, str]]:
    ref = (destination or {}).get("ref")
    if ref:
        yield ref["kind"], ref["name"], what


def _unrouted(overlay: Path) -> Iterator[str]:
    """Event types no Trigger asks for (the archive's, which takes every event to keep it, does not count)."""
    from events import EVENT_MODELS
    from shared.bus.manifests import load_topology

    asked = yaml.safe_dump([[t.filter_attributes, list(t.filters)] for t in load_topology(overlay).triggers.values()])
    for event_type in sorted(set(EVENT_MODELS) - set(TERMINAL)):
        if event_type not in asked:
            yield f"event type {event_type}: no Trigger takes it (route it, or list it in TERMINAL with why)"


def main(argv: list[str]) -> int:
    overlays = [Path(a) for a in argv] or sorted(p for p in OVERLAYS.iterdir() if p.is_dir())
    failed = False
    for overlay in overlays:
        found = problems(overlay)
        failed = failed or bool(found)
        print(f"{overlay}: {'ok' if not found else f'{len(found)} problem(s)'}")
        for problem in found:
            print(f"  - {problem}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
