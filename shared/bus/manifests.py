"""Load the Knative manifests of a kustomize directory into typed objects.

Only what the local broker and the embedded platform need is modelled: Brokers, Triggers and
Knative Services. Every other kind (Namespace, SinkBinding, PingSource...) is kept as a raw dict
in ``Topology.others``. The directory is built by ``shared.bus.kustomize`` (resources, namespace, images,
patches: what an overlay of ``knative/`` uses); a kustomize feature it does not have is an error.

Delivery precedence (documented choice): a Trigger's ``delivery`` is merged *field by field* over
its Broker's, the Trigger's value winning for every field it sets. This is what the Kafka broker
(our production broker class) does (eventing-kafka-broker ``MergeEgressConfig``); the MT
channel-based broker instead takes the Trigger's spec wholesale when present. With the field-wise
merge a Trigger can change ``timeout`` and still inherit the Broker's dead-letter sink.

Concurrency of a Trigger (``Trigger.parallelism``/``ordered``) comes from the annotations the real
brokers read: RabbitMQ's ``rabbitmq.eventing.knative.dev/parallelism: "N"`` (1 to 1000) wins;
else Kafka's ``kafka.eventing.knative.dev/delivery.order: ordered`` means 1, strictly in order;
else (``unordered`` or nothing) it is left to the local broker's default.

A resource annotated ``refsys.org/embedded: "false"`` is for clusters only and left out of the topology:
the ``archive`` Service and its Trigger, whose work the local broker's durable queue does itself.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from shared.bus.filters import FilterError, as_string, validate_filters
from shared.bus.kustomize import KustomizeError, Resource, build, kustomization_file, read_kustomization

log = logging.getLogger(__name__)

BackoffPolicy = Literal["exponential", "linear"]

_DELIVERY_FIELDS = {"retry", "backoffPolicy", "backoffDelay", "timeout", "deadLetterSink", "retryAfterMax", "format"}

PARALLELISM_ANNOTATION = "rabbitmq.eventing.knative.dev/parallelism"
DELIVERY_ORDER_ANNOTATION = "kafka.eventing.knative.dev/delivery.order"
_MAX_PARALLELISM = 1000  # what the RabbitMQ broker's webhook accepts


class ManifestError(ValueError):
    """A manifest cannot be loaded; the message names the file and document."""


# ---------------------------------------------------------------------------------------------
# ISO-8601 durations (what Knative accepts for backoffDelay/timeout): PnW, PnD, PTnHnMnS with
# fractions. Years and months are refused: they are not fixed lengths of time.
_NUM = r"(\d+(?:[.,]\d+)?)"
_DURATION_RE = re.compile(rf"P(?!$)(?:{_NUM}W)?(?:{_NUM}D)?(?:T(?=\d)(?:{_NUM}H)?(?:{_NUM}M)?(?:{_NUM}S)?)?")
_UNIT_SECONDS = (7 * 86400, 86400, 3600, 60, 1)


def parse_duration(text: str) -> float:
    """Seconds of an ISO-8601 duration such as ``PT0.5S``, ``PT1M``, ``PT2H30M``, ``P1D``."""
    if not isinstance(text, str):
        raise ValueError(f"expected an ISO-8601 duration string such as PT0.5S, got {text!r}")
    match = _DURATION_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"invalid ISO-8601 duration {text!r} (expected e.g. PT0.5S, PT1M, PT2H30M, P1D)")
    return sum(
        float(part.replace(",", ".")) * unit
        for part, unit in zip(match.groups(), _UNIT_SECONDS, strict=True)
        if part is not None
    )


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ref:
    kind: str
    name: str
    api_version: str = ""
    namespace: str | None = None


@dataclass(frozen=True)
class Destination:
    """Knative Destination: a ``ref`` to an addressable (optionally with a ``uri`` path), or a ``uri``."""

    ref: Ref | None = None
    uri: str | None = None

    def __str__(self) -> str:
        target = f"{self.ref.kind}/{self.ref.name}" if self.ref else ""
        return f"{target}{self.uri or ''}" or "<empty destination>"


@dataclass(frozen=True)
class DeliverySpec:
    """Knative delivery spec. ``None`` means "not set here" so specs can be merged field by field."""

    retry: int | None = None
    backoff_policy: BackoffPolicy | None = None
    backoff_delay: float | None = None  # seconds
    timeout: float | None = None  # seconds, per HTTP request
    dead_letter_sink: Destination | None = None

    def merged_over(self, base: DeliverySpec | None) -> DeliverySpec:
        """This spec with every unset field taken from ``base`` (Trigger over Broker)."""
        if base is None:
            return self
        return DeliverySpec(
            retry=self.retry if self.retry is not None else base.retry,
            backoff_policy=self.backoff_policy or base.backoff_policy,
            backoff_delay=self.backoff_delay if self.backoff_delay is not None else base.backoff_delay,
            timeout=self.timeout if self.timeout is not None else base.timeout,
            dead_letter_sink=self.dead_letter_sink or base.dead_letter_sink,
        )


@dataclass(frozen=True)
class Broker:
    name: str
    namespace: str
    delivery: DeliverySpec | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Trigger:
    name: str
    namespace: str
    broker: str
    subscriber: Destination
    # Legacy ``spec.filter.attributes``; None when the Trigger has no ``filter``.
    filter_attributes: Mapping[str, str] | None = None
    # New ``spec.filters`` (Subscriptions API dialects), validated at load time.
    filters: tuple[Mapping[str, Any], ...] = ()
    delivery: DeliverySpec | None = None  # the Trigger's own; see Topology.delivery_for
    annotations: Mapping[str, str] = field(default_factory=dict)
    # Deliveries in parallel, from the annotations (module doc); None: the local broker's default.
    parallelism: int | None = None
    # Kafka's ordered delivery (parallelism 1): the next event only once the previous one is settled,
    # its retries included, as the Kafka broker's ordered consumer waits on each record.
    ordered: bool = False


@dataclass(frozen=True)
class Service:
    """A Knative Service: what the platform needs to start it as a local function server."""

    name: str
    namespace: str
    env: Mapping[str, str] = field(default_factory=dict)  # first container, literal values only
    annotations: Mapping[str, str] = field(default_factory=dict)  # revision template annotations
    container_concurrency: int | None = None
    timeout_seconds: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PingSource:
    """A cron tick sent to a sink as a ``dev.knative.sources.ping`` CloudEvent."""

    name: str
    namespace: str
    schedule: str
    timezone: str
    content_type: str
    data: str
    sink: Destination


@dataclass
class Topology:
    namespace: str
    brokers: dict[str, Broker] = field(default_factory=dict)
    triggers: dict[str, Trigger] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    others: list[dict[str, Any]] = field(default_factory=list)

    def ping_sources(self) -> list[PingSource]:
        """The PingSources (cron ticks) among the other manifests."""
        sources = []
        for doc in self.others:
            if doc.get("kind") != "PingSource":
                continue
            name = str(doc.get("metadata", {}).get("name", ""))
            spec = doc.get("spec") or {}
            where = f"PingSource {name}"
            if not spec.get("sink"):
                raise ManifestError(f"{where}: spec.sink is required")
            sources.append(
                PingSource(
                    name=name,
                    namespace=str(doc.get("metadata", {}).get("namespace") or self.namespace),
                    schedule=str(spec.get("schedule", "* * * * *")),
                    timezone=str(spec.get("timezone") or "UTC"),
                    content_type=str(spec.get("contentType") or "application/json"),
                    data=str(spec.get("data") or ""),
                    sink=_destination(spec["sink"], f"{where}.spec.sink"),
                )
            )
        return sources

    def delivery_for(self, trigger: Trigger) -> DeliverySpec:
        """Effective delivery of a Trigger: its own spec merged over its Broker's (see module doc)."""
        broker = self.brokers.get(trigger.broker)
        base = broker.delivery if broker else None
        if trigger.delivery is None:
            return base or DeliverySpec()
        return trigger.delivery.merged_over(base)


# ---------------------------------------------------------------------------------------------
def load_topology(path: Path) -> Topology:
    """Load a kustomize directory (or its kustomization file) of Knative manifests, built by the kustomize
    subset of ``shared.bus.kustomize`` (patches and images applied; what it cannot build, it refuses)."""
    path = Path(path)
    try:
        kfile = kustomization_file(path) if path.is_dir() else path
        if kfile is None:
            raise ManifestError(f"{path}: no kustomization.yaml in this directory")
        resources = build(kfile)
        # The namespace a kustomization (the overlay's, or its base's) gave the objects; else Kubernetes's.
        given = read_kustomization(kfile).get("namespace") or next(
            (r.body["metadata"]["namespace"] for r in resources if (r.body.get("metadata") or {}).get("namespace")),
            None,
        )
        topology = Topology(namespace=str(given or "default"))
    except KustomizeError as exc:
        raise ManifestError(str(exc)) from exc
    seen: set[str] = set()
    for resource in resources:
        _add(topology, resource, seen)
    return topology


def _add(topology: Topology, doc: Resource, seen: set[str]) -> None:
    body = doc.body
    kind, api = body.get("kind"), str(body.get("apiVersion", ""))
    meta = body.get("metadata") or {}
    name = meta.get("name") if isinstance(meta, dict) else None
    if not name:
        raise ManifestError(f"{doc.where}: metadata.name is required")
    namespace = meta.get("namespace") or topology.namespace
    key = f"{kind}/{namespace}/{name}"
    if key in seen:
        raise ManifestError(f"{doc.where}: duplicate {kind} {name!r} in namespace {namespace!r}")
    seen.add(key)
    if _annotations(meta).get(EMBEDDED_ANNOTATION) == "false":
        return
    try:
        if kind == "Broker" and api.startswith("eventing.knative.dev/"):
            topology.brokers[name] = _broker(body, name, namespace)
        elif kind == "Trigger" and api.startswith("eventing.knative.dev/"):
            topology.triggers[name] = _trigger(body, name, namespace)
        elif kind == "Service" and api.startswith("serving.knative.dev/"):
            topology.services[name] = _service(body, name, namespace)
        else:
            topology.others.append(body)
    except FilterError as exc:
        # Keep the class (UnsupportedFilter stays UnsupportedFilter), add where it happened.
        raise type(exc)(f"{doc.where}: {exc}") from exc
    except (ValueError, TypeError, AttributeError) as exc:
        raise ManifestError(f"{doc.where}: {exc}") from exc


EMBEDDED_ANNOTATION = "refsys.org/embedded"


def _spec(body: Mapping[str, Any]) -> dict[str, Any]:
    spec = body.get("spec") or {}
    if not isinstance(spec, dict):
        raise ValueError("spec must be a mapping")
    return spec


def _annotations(meta: Any) -> dict[str, str]:
    raw = meta.get("annotations") if isinstance(meta, dict) else None
    return {str(k): str(v) for k, v in (raw or {}).items()}


def _broker(body: Mapping[str, Any], name: str, namespace: str) -> Broker:
    spec = _spec(body)
    delivery = _delivery(spec["delivery"], "spec.delivery") if spec.get("delivery") else None
    return Broker(name, namespace, delivery, _annotations(body.get("metadata")))


def _trigger(body: Mapping[str, Any], name: str, namespace: str) -> Trigger:
    spec = _spec(body)
    broker = spec.get("broker")
    if not broker:
        raise ValueError("spec.broker is required")
    if not spec.get("subscriber"):
        raise ValueError("spec.subscriber is required")
    subscriber = _destination(spec["subscriber"], "spec.subscriber")
    attrs: dict[str, str] | None = None
    if spec.get("filter") is not None:
        raw_attrs = (spec["filter"] or {}).get("attributes") or {}
        if not isinstance(raw_attrs, dict):
            raise ValueError("spec.filter.attributes must be a mapping")
        attrs = {str(k): as_string(v) for k, v in raw_attrs.items()}
    filters = spec.get("filters") or []
    if not isinstance(filters, list):
        raise FilterError("spec.filters must be a list")
    validate_filters(filters)
    delivery = None
    if spec.get("delivery"):
        delivery = _delivery(spec["delivery"], "spec.delivery")
    annotations = _annotations(body.get("metadata"))
    parallelism, ordered = _concurrency(annotations, name)
    return Trigger(
        name=name,
        namespace=namespace,
        broker=str(broker),
        subscriber=subscriber,
        filter_attributes=attrs,
        filters=tuple(filters),
        delivery=delivery,
        annotations=annotations,
        parallelism=parallelism,
        ordered=ordered,
    )


def _concurrency(annotations: Mapping[str, str], name: str) -> tuple[int | None, bool]:
    """(parallelism, ordered) of a Trigger from its RabbitMQ and Kafka broker annotations (module doc)."""
    order = annotations.get(DELIVERY_ORDER_ANNOTATION)
    if order is not None and order not in ("ordered", "unordered"):
        raise ValueError(
            f"metadata.annotations[{DELIVERY_ORDER_ANNOTATION}]: must be 'ordered' or 'unordered', got {order!r}"
        )
    raw = annotations.get(PARALLELISM_ANNOTATION)
    if raw is None:
        return (1, True) if order == "ordered" else (None, False)
    if not re.fullmatch(r"[0-9]+", raw.strip()) or not 1 <= int(raw) <= _MAX_PARALLELISM:
        raise ValueError(
            f"metadata.annotations[{PARALLELISM_ANNOTATION}]: must be an integer from 1 to {_MAX_PARALLELISM}"
            f" (quoted), got {raw!r}"
        )
    parallelism = int(raw)
    if order == "ordered" and parallelism > 1:
        log.warning(
            "trigger %s: %s %d wins over %s: ordered, its events are delivered unordered",
            name,
            PARALLELISM_ANNOTATION,
            parallelism,
            DELIVERY_ORDER_ANNOTATION,
        )
    return parallelism, order == "ordered" and parallelism == 1


def _destination(raw: Any, where: str) -> Destination:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: must be a mapping with `ref` and/or `uri`")
    ref = None
    if raw.get("ref"):
        r = raw["ref"]
        if not isinstance(r, dict) or not r.get("kind") or not r.get("name"):
            raise ValueError(f"{where}.ref: `kind` and `name` are required")
        ref = Ref(str(r["kind"]), str(r["name"]), str(r.get("apiVersion", "")), r.get("namespace"))
    uri = str(raw["uri"]) if raw.get("uri") else None
    if ref is None and uri is None:
        raise ValueError(f"{where}: needs `ref` or `uri`")
    return Destination(ref, uri)


def _delivery(raw: Any, where: str) -> DeliverySpec:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: must be a mapping")
    unknown = sorted(set(raw) - _DELIVERY_FIELDS)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}")
    retry = raw.get("retry")
    if retry is not None and (isinstance(retry, bool) or not isinstance(retry, int) or retry < 0):
        raise ValueError(f"{where}.retry: must be an integer >= 0, got {retry!r}")
    policy = raw.get("backoffPolicy")
    if policy is not None and policy not in ("exponential", "linear"):
        raise ValueError(f"{where}.backoffPolicy: must be 'exponential' or 'linear', got {policy!r}")

    def duration(key: str) -> float | None:
        if raw.get(key) is None:
            return None
        try:
            return parse_duration(raw[key])
        except ValueError as exc:
            raise ValueError(f"{where}.{key}: {exc}") from exc

    sink = raw.get("deadLetterSink")
    duration("retryAfterMax")  # validated only: Retry-After is not honoured locally (alpha in Knative)
    return DeliverySpec(
        retry=retry,
        backoff_policy=cast(BackoffPolicy | None, policy),
        backoff_delay=duration("backoffDelay"),
        timeout=duration("timeout"),
        dead_letter_sink=_destination(sink, f"{where}.deadLetterSink") if sink else None,
    )


def _service(body: Mapping[str, Any], name: str, namespace: str) -> Service:
    template = _spec(body).get("template") or {}
    tspec = template.get("spec") or {}
    containers = tspec.get("containers") or [{}]
    env = {
        str(item["name"]): str(item["value"])
        for item in containers[0].get("env") or []
        if isinstance(item, dict) and "name" in item and item.get("value") is not None
    }
    return Service(
        name=name,
        namespace=namespace,
        env=env,
        annotations=_annotations(template.get("metadata")),
        container_concurrency=tspec.get("containerConcurrency"),
        timeout_seconds=tspec.get("timeoutSeconds"),
        raw=dict(body),
    )
