"""The lifecycle function over HTTP: its routes, operator access when OIDC is on, and bad requests answered
with a 4xx JSON error that says why."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from moto import mock_aws

from shared import ports
from shared.lifecycle import api
from shared.security.access import access_policy
from shared.settings import get_settings
from tests.unit.test_lifecycle_eviction import World, make_world

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHES = (get_settings, ports.catalog, ports.object_store, api.lifecycle, access_policy)


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ModuleType, World]]:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    with mock_aws():
        world = make_world(tmp_path, url)
        for name, value in (("CATALOG_URL", url), ("RETENTION_RULES_FILE", world.settings.retention_rules_file),
                            ("S3_ACCESS_KEY", "testing"), ("S3_SECRET_KEY", "testing")):  # fmt: skip
            monkeypatch.setenv(f"REFSYS_{name}", str(value))
        for cached in CACHES:
            cached.cache_clear()
        spec = importlib.util.spec_from_file_location("lifecycle_main", REPO_ROOT / "functions/lifecycle/main.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        api.lifecycle().publish = world.publish  # no broker here: the events are kept for the test
        yield module, world
        for cached in CACHES:
            cached.cache_clear()


def call(module: ModuleType, method: str, path: str, **kwargs: object) -> tuple[int, dict]:
    import flask

    app = flask.Flask("test")
    with app.test_request_context(path, method=method, **kwargs):
        response = module.lifecycle(flask.request)
    return response.status_code, response.get_json()


def test_the_routes_list_pin_evict_and_unpin(served: tuple[ModuleType, World], tmp_path: Path) -> None:
    module, world = served
    slice_ = world.catalog_product(tmp_path, "IW_GRDH_1S", 1)
    tile = world.catalog_product(tmp_path, "S2MSI1C", 2)
    status, rules = call(module, "GET", "/rules")
    assert status == 200 and rules["rules"][0]["name"] == "slices-at-once" and rules["default"] == "never"
    status, due = call(module, "GET", "/due")
    assert status == 200 and [d["name"] for d in due["due"]] == [slice_.name] and due["due"][0]["action"] == "evict"
    status, pin = call(module, "POST", "/pins", json={"product": slice_.name, "reason": "campaign"})
    assert status == 200 and pin["name"] == slice_.name
    assert call(module, "GET", "/due")[1]["due"][0]["reason"] == "pinned"
    assert call(module, "GET", "/pins")[1]["pins"][0]["reason"] == "campaign"
    status, evicted = call(module, "POST", "/evictions", json={"product": tile.id})
    assert status == 200 and evicted["rule"] == "operator" and evicted["state"] == "evicted"
    assert call(module, "GET", "/evictions")[1]["evictions"][0]["name"] == tile.name
    status, unpinned = call(module, "DELETE", f"/pins/{slice_.name}")
    assert status == 200 and unpinned["wasPinned"] is True
    assert call(module, "POST", "/tick")[0] == 202
    assert world.catalog.get(slice_.id).online is False  # type: ignore[union-attr]
    assert [e.data["product"]["name"] for e in world.published] == [tile.name, slice_.name]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", "/due?limit=0", None, 400, "InvalidRequest"),
        ("GET", "/due?limit=many", None, 400, "InvalidRequest"),
        ("POST", "/evictions", {"product": 7}, 400, "InvalidRequest"),
        ("POST", "/evictions", {"product": "S1A_X", "force": "yes"}, 400, "InvalidRequest"),
        ("POST", "/evictions", {"product": "S1A_UNKNOWN"}, 404, "NotFound"),
        ("POST", "/pins", {"product": "S1A_UNKNOWN", "reason": 3}, 400, "InvalidRequest"),
        ("DELETE", "/pins/S1A_UNKNOWN", None, 404, "NotFound"),
        ("DELETE", "/due", None, 405, "MethodNotAllowed"),
        ("GET", "/nowhere", None, 404, "NotFound"),
        ("POST", "/", None, 405, "MethodNotAllowed"),
    ],
)
def test_bad_requests_get_a_4xx_that_says_why(
    served: tuple[ModuleType, World], method: str, path: str, body: object, status: int, code: str
) -> None:
    module, _ = served
    kwargs = {"json": body} if body is not None else {}
    answered, payload = call(module, method, path, **kwargs)
    assert answered == status and payload["error"]["code"] == code and payload["error"]["message"]


def test_a_body_that_is_not_json_is_a_400(served: tuple[ModuleType, World]) -> None:
    module, _ = served
    status, payload = call(module, "POST", "/pins", data=b"{not json", content_type="application/json")
    assert status == 400 and payload["error"]["code"] == "InvalidJson"


def test_with_an_issuer_the_routes_need_a_token(
    served: tuple[ModuleType, World], monkeypatch: pytest.MonkeyPatch
) -> None:
    module, _ = served
    monkeypatch.setenv("REFSYS_OIDC_ISSUER", "https://keycloak.invalid/realms/refsys")
    monkeypatch.setenv("REFSYS_OIDC_JWKS_URL", "https://keycloak.invalid/jwks")
    get_settings.cache_clear()
    access_policy.cache_clear()
    status, payload = call(module, "GET", "/due")
    assert status == 401 and payload["error"]["code"] == "Unauthorized"
