"""Each function's import set: the heavy modules a function loads when it starts are the ones its every request
needs, and no more (the cost of each: docs/performance.md, cold start). A module listed in ``HEAVY`` that is
not allowed for a function fails its test: load it lazily, where it is used, or allow it here saying why."""

import json
import subprocess
import sys

import pytest

from shared.bus.manifests import load_topology
from tests.conftest import REPO_ROOT

# Modules that cost a cold function tens to hundreds of milliseconds (-X importtime on this machine).
HEAVY = (
    "boto3", "botocore", "numpy", "shapely", "lark", "pygeofilter", "yaml", "requests", "jwt",
    "psycopg", "kubernetes", "events.models", "shared.catalog.odata.grammar", "shared.products.metadata",
    "pydantic", "pydantic_settings",  # shared.settings needs neither for plain values (its module's text)
    "shared.catalog.odata.download",  # no function's: zip layouts and archives at the first download
)  # fmt: skip
EVENTS = {"events.models", "pydantic"}  # every event function parses CloudEvents into the pydantic models
S3 = {"boto3", "botocore"}  # every event of these functions reads or writes the object store
PRODUCTS = {"numpy", "shapely", "shared.products.metadata"}  # products described from their manifests
ODATA_FILTERS = {"lark", "shared.catalog.odata.grammar"}  # $filter of every query, subscription or replay
ALLOWED: dict[str, set[str]] = {
    "odata": ODATA_FILTERS,
    "stac": {"pygeofilter"},  # CQL2 of every search
    "catalog": EVENTS,  # product descriptions (boto3, shapely) only for product.ingested, not for queries
    "notify": EVENTS,
    "launch": EVENTS,
    "ingest": EVENTS | S3 | PRODUCTS,
    "scan": EVENTS | S3 | PRODUCTS,
    "deadletter": EVENTS | S3 | {"yaml"},  # restart rules
    "prepare": EVENTS | {"yaml"},  # task tables
    "lifecycle": EVENTS | {"yaml"},  # retention rules
    "subscriptions": EVENTS | ODATA_FILTERS | {"requests"},  # pushes
    "operations": EVENTS | S3 | ODATA_FILTERS | {"yaml"},
    "web": set(),  # the map client
}
SERVICES = sorted(load_topology(REPO_ROOT / "knative" / "overlays" / "dev").services.values(), key=lambda s: s.name)


def imported_by(module: str) -> set[str]:
    probe = f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=True, text=True, cwd=REPO_ROOT)
    return set(json.loads(done.stdout))


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_a_function_loads_only_the_heavy_modules_its_requests_need(service) -> None:
    module = service.env["FUNCTION_SOURCE"].removesuffix(".py").replace("/", ".")
    heavy = {name for name in HEAVY if name in imported_by(module)}
    unexpected = heavy - ALLOWED[service.name]
    assert not unexpected, f"{service.name} imports {sorted(unexpected)} at start: load them where they are used"


def test_every_function_has_an_import_budget() -> None:
    assert {s.name for s in SERVICES} <= set(ALLOWED), "a new function needs its entry in ALLOWED"


def test_the_probe_sees_a_heavy_module() -> None:
    # The test above can fail: the probe does see a heavy module that is imported.
    assert "shapely" in imported_by("shared.products.footprint")
