"""``make deploy-check``: every overlay of ``knative/`` built and checked offline, as a cluster would take it.

For each overlay (``knative/overlays/*``):

1. built by the kustomize subset the local platform uses (``shared.bus.kustomize``) and, where ``kubectl`` is
   installed, compared with ``kubectl kustomize`` (the maintained implementation): the same objects;
2. core kinds validated strictly against the Kubernetes OpenAPI schemas (``kubernetes-validate``, offline),
   Knative kinds strictly against their CRDs in ``../shared/schemas/knative`` (a field the API server would
   prune silently is an error);
3. references: every Trigger's broker, subscriber and dead-letter sink, every source's sink, every Secret and
   ConfigMap a container or the Broker reads, exist in the build; every event type the functions emit has a
   Trigger, or is one of ``TERMINAL`` (said why);
4. agreement with the settings: the ingest Trigger filters on the inbox bucket of ``refsys-settings``, and
   every event route into a function asks Knative's sender tokens for the audience the functions check;
5. serving: every Service's ``containerConcurrency`` is what its app server serves at once (WORKERS x THREADS),
   and its autoscaling target no more;
6. monitoring: a PodMonitor selects every function's pods at the port and path the function server serves
   (no PodMonitor CRD is in ``../shared/schemas`` yet: ``WITHOUT_SCHEMA`` lists the fields it may use).

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
# Kinds whose CRD is not in ../shared/schemas yet: the fields we use, as a cluster running the CRD takes them
# (a field missing here is refused as a misspelling), and what the references check says of them. Drop the CRD
# into ../shared/schemas and the kind is validated strictly like the others.
WITHOUT_SCHEMA: dict[tuple[str, str], dict[str, Any]] = {
    ("monitoring.coreos.com/v1", "PodMonitor"): {
        "selector": {"matchLabels": None, "matchExpressions": None},
        "namespaceSelector": {"matchNames": None, "any": None},
        "podMetricsEndpoints": {"port": None, "path": None, "interval": None, "scrapeTimeout": None, "scheme": None},
    },
}
KNATIVE_USER_PORT = "user-port"  # the name Knative gives a function container's port
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
SETTINGS = "refsys-settings"  # the ConfigMap every function reads
# Event types no Trigger takes, and why that is right.
TERMINAL = {
    "org.refsys.product.rejected.v1": "the product is quarantined with its reason; `refsys status` shows it",
}


@cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the CRD's openAPIV3Schema, of every CRD in ``../shared/schemas``."""
    schemas = {}
    for path in CRDS.parent.rglob("*.yaml"):
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
    if key not in schemas and key in WITHOUT_SCHEMA:
        _check_fields(doc["spec"], WITHOUT_SCHEMA[key], f"{doc['kind']}.spec")
        return
    if key not in schemas:
        raise jsonschema.ValidationError(f"no CRD for {key} in {CRDS}")
    schema = strict(schemas[key])
    # Type and object metadata are checked by the API server itself, not by CRD schemas.
    schema["properties"].update(apiVersion={"type": "string"}, kind={"type": "string"}, metadata={"type": "object"})
    jsonschema.validate(doc, schema)


def problems(overlay: Path) -> list[str]:
    """Everything wrong with one overlay, as sentences; empty when it deploys."""
    docs = [r.body for r in build(overlay)]
    return [
        *_against_kubectl(overlay, docs),
        *_invalid(docs),
        *_dangling(docs),
        *_unrouted(overlay),
        *_disagreeing_with_settings(docs),
        *_unscraped(docs),
        *_unserved(docs),
    ]


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


def _check_fields(value: Any, fields: dict[str, Any] | None, where: str) -> None:
    if fields is None:
        return
    for item in value if isinstance(value, list) else [value]:
        for key, inner in (item or {}).items():
            if key not in fields:
                raise jsonschema.ValidationError(f"{where}.{key}: not a field we know of (no CRD to tell)")
            _check_fields(inner, fields[key], f"{where}.{key}")


def _unscraped(docs: list[dict[str, Any]]) -> Iterator[str]:
    """Every function's pods are scraped at the path the function server serves, when the overlay scrapes any."""
    from shared.server import METRICS_PATH

    monitors = [d for d in docs if d["kind"] == "PodMonitor"]
    if not monitors:
        return
    served = f"{KNATIVE_USER_PORT}{METRICS_PATH}"
    for monitor in monitors:
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            if (scraped := f"{endpoint.get('port')}{endpoint.get('path')}") != served:
                yield f"{_key(monitor)}: scrapes {scraped}, the functions serve {served}"
    for doc in docs:
        if doc["kind"] == "Service" and "knative" in doc["apiVersion"]:
            name, template = doc["metadata"]["name"], doc["spec"]["template"].get("metadata") or {}
            labels = {**(template.get("labels") or {}), "serving.knative.dev/service": name}
            if not any(_selects(m["spec"].get("selector") or {}, labels) for m in monitors):
                yield f"Service {name}: no PodMonitor selects its pods (labels {labels})"


def _unserved(docs: list[dict[str, Any]]) -> Iterator[str]:
    """A pod is sent at most what its app server serves at once (``shared.server``'s serving model)."""
    from shared.server import DEFAULT_THREADS, DEFAULT_WORKERS

    for doc in docs:
        if doc["kind"] != "Service" or "knative" not in doc["apiVersion"]:
            continue
        spec, annotations = doc["spec"]["template"]["spec"], doc["spec"]["template"]["metadata"]["annotations"]
        for container in spec["containers"]:
            env = {v["name"]: v.get("value") for v in container.get("env") or []}
            slots = int(env.get("WORKERS", DEFAULT_WORKERS)) * int(env.get("THREADS", DEFAULT_THREADS))
            if spec.get("containerConcurrency") != slots:
                yield f"{_key(doc)}: containerConcurrency {spec.get('containerConcurrency')}, its server serves {slots}"
            target = annotations.get("autoscaling.knative.dev/target")
            if target is not None and float(target) > slots:
                yield f"{_key(doc)}: autoscaling target {target} above the {slots} requests a pod serves"


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A Kubernetes label selector's verdict on a set of labels."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    tests = {
        "In": lambda e: labels.get(e["key"]) in e.get("values", []),
        "NotIn": lambda e: labels.get(e["key"]) not in e.get("values", []),
        "Exists": lambda e: e["key"] in labels,
        "DoesNotExist": lambda e: e["key"] not in labels,
    }
    return all(tests[e["operator"]](e) for e in selector.get("matchExpressions") or [])


def _dangling(docs: list[dict[str, Any]]) -> Iterator[str]:
    namespaces = {d["metadata"].get("namespace") for d in docs if d["kind"] not in CLUSTER_SCOPED}
    if len(namespaces) > 1:
        yield f"objects in {len(namespaces)} namespaces ({sorted(map(str, namespaces))}): one, so references resolve"
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


def _disagreeing_with_settings(docs: list[dict[str, Any]]) -> Iterator[str]:
    """What the manifests name that a setting names too: the inbox bucket, the sender tokens' audience."""
    from shared.settings import pydantic_model

    data = next(
        (d.get("data") or {} for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == SETTINGS), {}
    )
    defaults = pydantic_model().model_fields
    inbox = data.get("REFSYS_INBOX_BUCKET", defaults["inbox_bucket"].default)
    audience = data.get("REFSYS_EVENT_OIDC_AUDIENCE")
    for doc in docs:
        spec = doc.get("spec") or {}
        if doc["kind"] == "Trigger" and (spec.get("subscriber") or {}).get("ref", {}).get("name") == "ingest":
            bucket = ((spec.get("filter") or {}).get("attributes") or {}).get("bucket")
            if bucket != inbox:
                yield f"{_key(doc)}: filters on bucket {bucket!r}, the inbox is {inbox!r} (REFSYS_INBOX_BUCKET)"
        if audience is None:
            continue
        destinations = {
            "subscriber": spec.get("subscriber"),
            "dead-letter sink": (spec.get("delivery") or {}).get("deadLetterSink"),
            "sink": spec.get("sink"),
        }
        for what, destination in destinations.items():
            ref = (destination or {}).get("ref") or {}
            if ref.get("kind") == "Service" and destination.get("audience") != audience:
                yield (
                    f"{_key(doc)}: its {what} {ref['name']!r} is sent tokens for {destination.get('audience')!r},"
                    f" the functions check {audience!r} (REFSYS_EVENT_OIDC_AUDIENCE)"
                )


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
