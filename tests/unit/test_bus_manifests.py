"""Loading the Knative manifests (the repository's own, and broken ones) into a Topology."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from shared.bus.delivery import RetryPlan
from shared.bus.filters import FilterError, UnsupportedFilter
from shared.bus.manifests import DeliverySpec, Destination, ManifestError, Ref, load_topology, parse_duration

KNATIVE_DIR = Path(__file__).parents[2] / "knative" / "overlays" / "dev"
DEADLETTER = Destination(Ref("Service", "deadletter", "serving.knative.dev/v1"))


def write(directory: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return directory


KUSTOMIZATION = """\
    namespace: test
    resources:
      - broker.yaml
      - trigger.yaml
"""
BROKER = """\
    apiVersion: eventing.knative.dev/v1
    kind: Broker
    metadata:
      name: default
    spec:
      delivery:
        retry: 3
        backoffPolicy: linear
        backoffDelay: PT1S
        deadLetterSink:
          ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: deadletter}
"""


def trigger_yaml(spec_extra: str) -> str:
    return textwrap.dedent("""\
        apiVersion: eventing.knative.dev/v1
        kind: Trigger
        metadata:
          name: my-trigger
        spec:
          broker: default
          subscriber:
            ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: ingest}
        """) + textwrap.indent(textwrap.dedent(spec_extra), "  ")


# -- the repository's manifests ---------------------------------------------------------------------
def test_repository_manifests_load() -> None:
    topology = load_topology(KNATIVE_DIR)

    assert topology.namespace == "refsys"
    assert list(topology.brokers) == ["default"]
    assert topology.brokers["default"].namespace == "refsys"
    assert {"notify", "ingest", "catalog", "deadletter"} <= set(topology.services)
    assert {"Namespace", "SinkBinding"} <= {doc["kind"] for doc in topology.others}

    ingest = topology.triggers["ingest-inbox-objects"]
    assert ingest.broker == "default"
    assert ingest.filter_attributes == {"type": "org.refsys.storage.object.created.v1", "bucket": "rs-inbox"}
    assert ingest.filters == ()
    assert ingest.subscriber == Destination(Ref("Service", "ingest", "serving.knative.dev/v1"))
    assert topology.delivery_for(ingest) == DeliverySpec(
        retry=26, backoff_policy="linear", backoff_delay=1.0, timeout=300.0, dead_letter_sink=DEADLETTER
    )

    catalog = topology.triggers["catalog-ingested-products"]
    assert catalog.filter_attributes is None
    assert catalog.filters[0] == {"exact": {"type": "org.refsys.product.ingested.v1"}}
    assert catalog.filters[1]["any"][1] == {"prefix": {"mission": "S2"}}
    assert catalog.subscriber.uri == "/events"
    assert topology.delivery_for(catalog).timeout == 600.0

    concurrency = {name: (t.parallelism, t.ordered) for name, t in topology.triggers.items()}
    assert concurrency == {
        "ingest-inbox-objects": (4, False),
        "catalog-ingested-products": (2, False),
        "prepare-cataloged-products": (2, False),
        "catalog-completed-jobs": (2, False),
        "launch-ready-jobs": (None, False),
        "launch-run-outcomes": (None, False),
        "launch-kubernetes-changes": (4, False),
        "subscriptions-cataloged-products": (2, False),
        "subscriptions-evicted-products": (2, False),
    }


def test_repository_services_expose_env_and_annotations() -> None:
    ingest = load_topology(KNATIVE_DIR).services["ingest"]
    assert ingest.env["FUNCTION_TARGET"] == "ingest"
    assert ingest.env["FUNCTION_SOURCE"] == "functions/ingest/main.py"
    assert ingest.annotations["autoscaling.knative.dev/min-scale"] == "0"
    assert ingest.container_concurrency == 4
    assert ingest.timeout_seconds == 300


# -- durations --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT0.5S", 0.5),
        ("PT0.01S", 0.01),
        ("PT0,2S", 0.2),
        ("PT1S", 1),
        ("PT60S", 60),
        ("PT1M", 60),
        ("PT2H30M", 9000),
        ("PT1H0M10S", 3610),
        ("P1D", 86400),
        ("P1DT1H", 90000),
        ("P1W", 604800),
        ("PT0S", 0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "P", "PT", "1S", "0.5", "PT1.5", "P1Y", "P1M", "PT-1S", "pt1s", "PT1S2"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="ISO-8601 duration"):
        parse_duration(text)


# -- delivery precedence ----------------------------------------------------------------------------
def test_trigger_delivery_is_merged_field_by_field_over_the_broker(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "kustomization.yaml": KUSTOMIZATION,
            "broker.yaml": BROKER,
            "trigger.yaml": trigger_yaml("delivery:\n  retry: 1\n  timeout: PT5S\n"),
        },
    )
    topology = load_topology(tmp_path)
    effective = topology.delivery_for(topology.triggers["my-trigger"])
    assert effective == DeliverySpec(
        retry=1, backoff_policy="linear", backoff_delay=1.0, timeout=5.0, dead_letter_sink=DEADLETTER
    )


def test_no_delivery_anywhere_means_no_retry_and_no_dead_letter_sink(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "kustomization.yaml": KUSTOMIZATION,
            "broker.yaml": "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: default}\n",
            "trigger.yaml": trigger_yaml(""),
        },
    )
    topology = load_topology(tmp_path)
    effective = topology.delivery_for(topology.triggers["my-trigger"])
    assert effective == DeliverySpec()
    assert RetryPlan.from_spec(effective).total_attempts == 1


# -- concurrency annotations ------------------------------------------------------------------------
PARALLELISM = "rabbitmq.eventing.knative.dev/parallelism"
ORDER = "kafka.eventing.knative.dev/delivery.order"


def annotated(tmp_path: Path, annotations: dict[str, str]) -> Path:
    """The test manifests with ``annotations`` on the Trigger."""
    lines = "".join(f"    {key}: {value!r}\n" for key, value in annotations.items())
    text = trigger_yaml("").replace("  name: my-trigger\n", f"  name: my-trigger\n  annotations:\n{lines}")
    return write(tmp_path, {"kustomization.yaml": KUSTOMIZATION, "broker.yaml": BROKER, "trigger.yaml": text})


@pytest.mark.parametrize(
    ("annotations", "parallelism", "ordered"),
    [
        ({}, None, False),  # the local broker's default
        ({ORDER: "unordered"}, None, False),
        ({ORDER: "ordered"}, 1, True),
        ({PARALLELISM: "3"}, 3, False),
        ({PARALLELISM: "1"}, 1, False),  # one at a time, but a retrying event does not hold back the next
        ({PARALLELISM: "1", ORDER: "ordered"}, 1, True),
        ({PARALLELISM: "3", ORDER: "ordered"}, 3, False),  # the parallelism wins
        ({PARALLELISM: "1000", ORDER: "unordered"}, 1000, False),
    ],
)
def test_trigger_concurrency_from_annotations(
    tmp_path: Path, annotations: dict[str, str], parallelism: int | None, ordered: bool
) -> None:
    trigger = load_topology(annotated(tmp_path, annotations)).triggers["my-trigger"]
    assert (trigger.parallelism, trigger.ordered) == (parallelism, ordered)


@pytest.mark.parametrize(
    ("annotations", "message"),
    [
        ({PARALLELISM: "0"}, r"parallelism\]: must be an integer from 1 to 1000 \(quoted\), got '0'"),
        ({PARALLELISM: "1001"}, r"parallelism\]: must be an integer from 1 to 1000"),
        ({PARALLELISM: "-1"}, r"parallelism\]: must be an integer"),
        ({PARALLELISM: "two"}, r"parallelism\]: must be an integer"),
        ({PARALLELISM: ""}, r"parallelism\]: must be an integer"),
        ({ORDER: "Ordered"}, r"delivery\.order\]: must be 'ordered' or 'unordered', got 'Ordered'"),
        ({ORDER: "fifo", PARALLELISM: "1"}, r"delivery\.order\]: must be"),
    ],
)
def test_bad_concurrency_annotations_name_the_trigger(
    tmp_path: Path, annotations: dict[str, str], message: str
) -> None:
    with pytest.raises(ManifestError, match=message) as info:
        load_topology(annotated(tmp_path, annotations))
    assert "Trigger 'my-trigger'" in str(info.value)
    assert isinstance(info.value, ValueError)


# -- kustomize --------------------------------------------------------------------------------------
def test_nested_kustomizations_and_multi_document_files(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "kustomization.yaml": "namespace: outer\nresources:\n  - base\n  - extra.yaml\n",
            "base/kustomization.yaml": "namespace: inner\nresources:\n  - all.yaml\n",
            "base/all.yaml": BROKER + "---\n---\n" + trigger_yaml("filter:\n  attributes:\n    type: t\n"),
            "extra.yaml": "apiVersion: sources.knative.dev/v1\nkind: PingSource\nmetadata: {name: tick}\n",
        },
    )
    topology = load_topology(tmp_path)
    assert topology.namespace == "outer"
    assert topology.brokers["default"].namespace == "outer"  # the outermost namespace wins
    assert topology.triggers["my-trigger"].namespace == "outer"
    assert topology.triggers["my-trigger"].filter_attributes == {"type": "t"}
    assert [doc["kind"] for doc in topology.others] == ["PingSource"]


def test_copied_repository_manifests_load_from_anywhere(tmp_path: Path) -> None:
    shutil.copytree(KNATIVE_DIR.parents[1], tmp_path / "deploy")
    copy = tmp_path / "deploy" / "overlays" / "dev"
    assert set(load_topology(copy).triggers) == set(load_topology(KNATIVE_DIR).triggers)


# -- errors name the file, the document and the trigger ---------------------------------------------
@pytest.mark.parametrize(
    ("spec_extra", "error", "message"),
    [
        ("delivery:\n  backoffDelay: 5s\n", ManifestError, r"spec\.delivery\.backoffDelay: invalid ISO-8601"),
        ("delivery:\n  timeout: PT1Y\n", ManifestError, r"spec\.delivery\.timeout"),
        ("delivery:\n  backoffPolicy: fibonacci\n", ManifestError, r"backoffPolicy: must be"),
        ("delivery:\n  retry: -1\n", ManifestError, r"retry: must be an integer"),
        ("delivery:\n  retries: 3\n", ManifestError, r"unknown field\(s\) retries"),
        ("filters:\n  - regex: {type: x}\n", FilterError, r"unknown filter dialect 'regex'"),
        ("filters:\n  - cesql: \"type = 'x'\"\n", UnsupportedFilter, r"CESQL"),
    ],
)
def test_bad_trigger_errors_name_the_trigger(
    tmp_path: Path, spec_extra: str, error: type[Exception], message: str
) -> None:
    files = {"kustomization.yaml": KUSTOMIZATION, "broker.yaml": BROKER, "trigger.yaml": trigger_yaml(spec_extra)}
    write(tmp_path, files)
    with pytest.raises(error, match=message) as info:
        load_topology(tmp_path)
    text = str(info.value)
    assert "my-trigger" in text
    assert "trigger.yaml" in text
    assert "document 1" in text


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"kustomization.yaml": "resources:\n  - missing.yaml\n"}, r"kustomization\.yaml: resource 'missing\.yaml'"),
        ({"kustomization.yaml": "resources:\n  - bad.yaml\n", "bad.yaml": "kind: [\n"}, r"bad\.yaml: invalid YAML"),
        ({"kustomization.yaml": "resources:\n  - x.yaml\n", "x.yaml": "a: 1\n"}, r"x\.yaml \(document 1\)"),
        ({"kustomization.yaml": "resources:\n  - sub\n", "sub/a.yaml": "kind: X\n"}, r"without kustomization"),
        ({"kustomization.yaml": "resources:\n  - https://example.org/x.yaml\n"}, r"only local files"),
        (
            {"kustomization.yaml": "resources:\n  - b.yaml\n  - b2.yaml\n", "b.yaml": BROKER, "b2.yaml": BROKER},
            r"b2\.yaml \(document 1, Broker 'default'\): duplicate Broker",
        ),
    ],
)
def test_broken_kustomizations(tmp_path: Path, files: dict[str, str], message: str) -> None:
    write(tmp_path, files)
    with pytest.raises(ManifestError, match=message):
        load_topology(tmp_path)


def test_directory_without_kustomization(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"no kustomization\.yaml"):
        load_topology(tmp_path)
