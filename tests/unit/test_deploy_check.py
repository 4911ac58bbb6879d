"""``make deploy-check`` and the kustomize subset it and the local platform build overlays with."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from shared.bus.kustomize import KustomizeError, build
from tests.conftest import REPO_ROOT
from tests.deploy_check import OVERLAYS, problems

KNATIVE = REPO_ROOT / "knative"


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_both_overlays_deploy(overlay: str) -> None:
    assert problems(OVERLAYS / overlay) == []


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    shutil.copytree(KNATIVE, tmp_path / "knative")
    return tmp_path / "knative"


def test_a_broken_reference_fails_the_check(copy: Path) -> None:
    trigger = copy / "base" / "triggers" / "ingest.yaml"
    trigger.write_text(trigger.read_text().replace("name: ingest\n", "name: ingestion\n"))
    service = copy / "base" / "services" / "catalog.yaml"
    service.write_text(service.read_text().replace("name: refsys-secrets", "name: refsys-secret"))
    found = problems(copy / "overlays" / "prod")
    assert any("subscriber Service 'ingestion' is not defined" in p for p in found), found
    assert any("environment Secret 'refsys-secret' is not defined" in p for p in found), found


def test_a_misspelt_field_and_an_unrouted_event_fail_the_check(copy: Path) -> None:
    service = copy / "base" / "services" / "odata.yaml"
    service.write_text(service.read_text().replace("containerConcurrency:", "containerConcurency:"))
    kustomization = copy / "base" / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace("  - triggers/launch.yaml\n", ""))
    found = problems(copy / "overlays" / "dev")
    assert any("Service/refsys/odata" in p and "containerConcurency" in p for p in found), found
    assert any("org.refsys.job.ready.v1: no Trigger takes it" in p for p in found), found


def test_the_ingest_trigger_and_the_audiences_must_agree_with_the_settings(copy: Path) -> None:
    settings = copy / "base" / "config" / "settings.yaml"
    settings.write_text(settings.read_text().replace("REFSYS_INBOX_BUCKET: rs-inbox", "REFSYS_INBOX_BUCKET: drop-box"))
    trigger = copy / "base" / "triggers" / "prepare.yaml"
    trigger.write_text(trigger.read_text().replace("audience: refsys-events", "audience: prepare", 1))
    found = problems(copy / "overlays" / "dev")
    assert any("filters on bucket 'rs-inbox', the inbox is 'drop-box'" in p for p in found), found
    assert any("is sent tokens for 'prepare', the functions check 'refsys-events'" in p for p in found), found


def test_a_scrape_that_misses_the_functions_or_a_stray_namespace_fails_the_check(copy: Path) -> None:
    monitor = copy / "overlays" / "prod" / "monitoring.yaml"
    text = monitor.read_text().replace("operator: Exists", "operator: DoesNotExist").replace("path:", "pathh:")
    monitor.write_text(text)
    prod = copy / "overlays" / "prod" / "kustomization.yaml"
    prod.write_text(prod.read_text().replace("namespace: refsys  #", "#"))
    found = problems(copy / "overlays" / "prod")
    assert any("PodMonitor.spec.podMetricsEndpoints.pathh: not a field we know of" in p for p in found), found
    assert any("Service odata: no PodMonitor selects its pods" in p for p in found), found
    assert any("objects in 2 namespaces" in p for p in found), found


def test_a_pod_sent_more_than_its_server_serves_fails_the_check(copy: Path) -> None:
    service = copy / "base" / "services" / "odata.yaml"
    service.write_text(service.read_text().replace("containerConcurrency: 4", "containerConcurrency: 16"))
    stac = copy / "base" / "services" / "stac.yaml"
    stac.write_text(
        stac.read_text().replace('autoscaling.knative.dev/target: "3"', 'autoscaling.knative.dev/target: "9"')
    )
    found = problems(copy / "overlays" / "dev")
    assert any("Service/refsys/odata: containerConcurrency 16, its server serves 4" in p for p in found), found
    assert any("Service/refsys/stac: autoscaling target 9 above the 4 requests" in p for p in found), found


def kustomization(directory: Path, body: dict, *objects: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(body))
    if objects:
        (directory / "objects.yaml").write_text(yaml.safe_dump_all(objects))
    return directory


SERVICE = {
    "apiVersion": "serving.knative.dev/v1",
    "kind": "Service",
    "metadata": {"name": "fn", "annotations": {"a/b": "1"}},
    "spec": {"template": {"spec": {"containers": [{"image": "refsys", "env": [{"name": "X", "value": "1"}]}]}}},
}


def test_patches_images_and_the_outermost_namespace_apply_as_kustomize_does(tmp_path: Path) -> None:
    kustomization(tmp_path / "base", {"namespace": "inner", "resources": ["objects.yaml"]}, SERVICE)
    overlay = kustomization(
        tmp_path / "overlay",
        {
            "namespace": "outer",
            "resources": ["../base"],
            "images": [{"name": "refsys", "newName": "ghcr.io/x/refsys", "newTag": "2"}],
            "patches": [
                {
                    "target": {"kind": "Service"},
                    "patch": "{apiVersion: serving.knative.dev/v1, kind: Service, metadata: {name: fn,"
                    " annotations: {c: '2'}}}",
                },
                {
                    "target": {"group": "serving.knative.dev", "kind": "Service", "name": "fn"},
                    "patch": "- {op: add, path: /spec/template/spec/containers/0/env/-,"
                    " value: {name: EXTRA, value: '2'}}",
                },
            ],
        },
    )
    (service,) = [r.body for r in build(overlay)]
    assert service["metadata"] == {"name": "fn", "namespace": "outer", "annotations": {"a/b": "1", "c": "2"}}
    container = service["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/x/refsys:2" and [e["name"] for e in container["env"]] == ["X", "EXTRA"]
    if kubectl := shutil.which("kubectl"):  # the maintained implementation builds the same
        built = subprocess.run([kubectl, "kustomize", str(overlay)], capture_output=True, text=True, check=True)
        assert yaml.safe_load(built.stdout) == service


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"resources": ["objects.yaml"], "configMapGenerator": [{"name": "x"}]}, "configMapGenerator not supported"),
        ({"resources": ["objects.yaml"], "patchesStrategicMerge": ["p.yaml"]}, "patchesStrategicMerge not supported"),
        ({"resources": ["https://example.org/x.yaml"]}, "only local files"),
        ({"resources": ["objects.yaml"], "patches": [{"target": {"kind": "Broker"}, "patch": "a: 1"}]}, "no resource"),
        (
            {"resources": ["objects.yaml"], "patches": [{"target": {"kind": "Service"}, "patch": "- {op: move}"}]},
            "add, replace, remove",
        ),
    ],
)
def test_what_the_subset_cannot_build_is_refused_by_name(tmp_path: Path, body: dict, says: str) -> None:
    with pytest.raises(KustomizeError, match=says):
        build(kustomization(tmp_path, body, SERVICE))


def test_every_setting_is_documented_once_and_the_page_is_current() -> None:
    from shared.settings import pydantic_model, reference

    page = (REPO_ROOT / "docs" / "configuration.md").read_text()
    assert page == reference(), "docs/configuration.md is stale: python -m shared.settings > docs/configuration.md"
    for name, field in pydantic_model().model_fields.items():
        assert field.description, f"setting {name} says nothing of what it is"
        assert page.count(f"`REFSYS_{name.upper()}`") == 1, name


def test_in_prod_the_timers_let_the_functions_they_wake_go_back_to_zero() -> None:
    from cronsim import CronSim

    built = [r.body for r in build(OVERLAYS / "prod")]
    services = {d["metadata"]["name"]: d for d in built if d["kind"] == "Service" and "serving" in d["apiVersion"]}
    for source in (d for d in built if d["kind"] == "PingSource"):
        ticks = CronSim(source["spec"]["schedule"], datetime(2026, 1, 1, tzinfo=UTC))
        first, second = next(ticks), next(ticks)
        assert (second - first).total_seconds() >= 300, f"{source['metadata']['name']} ticks more than every 5 min"
        woken = services[source["spec"]["sink"]["ref"]["name"]]["spec"]["template"]["metadata"]["annotations"]
        assert woken["autoscaling.knative.dev/window"] == "6s", source["metadata"]["name"]
        assert woken["autoscaling.knative.dev/scale-down-delay"] == "0s", source["metadata"]["name"]
