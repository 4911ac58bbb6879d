"""The operations API: operator access when OIDC is on, and the archive's routes answering bad requests
with a 4xx that says why."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import flask
import pytest

from shared import ports
from shared.catalog.odata.auth import TokenVerifier
from shared.operations import replay_api
from shared.operations.archive import EventArchive
from shared.security.access import OPERATOR, AccessPolicy
from shared.settings import get_settings
from tests.unit.test_odata_service import ISSUER, keys, token  # noqa: F401  (keys is a fixture)
from tests.unit.test_operations_archive import record

REPO_ROOT = Path(__file__).resolve().parents[2]


def check(policy: AccessPolicy, authorization: str | None) -> int:
    headers = {"Authorization": authorization} if authorization else {}
    with flask.Flask("t").test_request_context("/replays", headers=headers):
        refused = policy.refuse(flask.request, OPERATOR)
    return 200 if refused is None else refused.status_code


def test_with_an_issuer_the_operations_api_needs_the_operator_role(keys: tuple[Any, Any]) -> None:  # noqa: F811
    good, _ = keys
    gate = AccessPolicy(TokenVerifier(ISSUER, "refsys-odata", lambda _token: good.public_key()))
    assert check(gate, None) == 401
    assert check(gate, f"Bearer {token(good, roles=['viewer', 'downloader'])}") == 403  # valid, not an operator's
    assert check(gate, f"Bearer {token(good, realm_access={'roles': ['operator']})}") == 200  # Keycloak's place
    assert check(gate, f"Bearer {token(good, roles=['operator'])}") == 200
    assert check(gate, f"Bearer {token(good, groups=['admin'])}") == 200  # admin may do all
    assert check(AccessPolicy(None), None) == 200  # no issuer: open, as on a laptop


@pytest.fixture
def operations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.setenv("REFSYS_CATALOG_URL", f"sqlite:///{tmp_path / 'catalog.db'}")
    caches = (get_settings, ports.event_archive, replay_api.reruns, ports.catalog)
    for cached in caches:
        cached.cache_clear()
    spec = importlib.util.spec_from_file_location("operations_main", REPO_ROOT / "functions/operations/main.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    archive = EventArchive(f"sqlite:///{tmp_path / 'catalog.db'}")
    for n in range(1, 4):
        archive.store(record(n))
    yield module
    for cached in caches:
        cached.cache_clear()


def call(module: ModuleType, method: str, path: str, **kwargs: Any) -> flask.Response:
    with flask.Flask("t").test_request_context(path, method=method, **kwargs):
        response: flask.Response = module.operations(flask.request)
    return response


def test_the_archive_pages_and_counts(operations: ModuleType) -> None:
    first = call(operations, "GET", "/archive?limit=2").get_json()
    assert [e["id"] for e in first["events"]] == ["e1", "e2"] and "after=" in first["next"]
    rest = call(operations, "GET", first["next"]).get_json()
    assert [e["id"] for e in rest["events"]] == ["e3"] and "next" not in rest
    assert call(operations, "GET", "/archive/count?subject=S1A_*").get_json()["matched"] == 3
    dry = call(operations, "POST", "/replays", json={"types": ["org.refsys.product.cataloged.v1"], "dryRun": True})
    assert dry.get_json() == {"matched": 3, "byType": {"org.refsys.product.cataloged.v1": 3}}


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "says"),
    [
        ("GET", "/archive?since=yesterday", None, 400, "since"),
        ("GET", "/archive?limit=0", None, 400, "limit"),
        ("GET", "/archive?attribute=mission", None, 400, "name=value"),
        ("POST", "/replays", b"[1]", 400, "JSON object"),
        ("POST", "/replays", b"{not json", 400, "not JSON"),
        ("POST", "/replays", {"dryRun": True, "typo": 1}, 400, "typo"),
        ("POST", "/replays", {"dryRun": True, "rate": 0}, 400, "rate"),
        ("POST", "/reprocessings", {"dryRun": True}, 400, "filter"),
        ("POST", "/reprocessings", {"dryRun": True, "filter": "Name eq"}, 400, "filter"),
        ("GET", "/replays/replay-nope", None, 404, "replay-nope"),
        ("DELETE", "/archive", None, 405, "GET"),
        ("GET", "/nowhere", None, 404, "routes"),
    ],
)
def test_bad_requests_get_a_4xx_that_says_why(operations: ModuleType, method, path, body, status, says) -> None:
    kwargs: dict[str, Any] = {"json": body} if isinstance(body, dict) else {"data": body}
    response = call(operations, method, path, **kwargs)
    assert response.status_code == status
    assert says in response.get_json()["error"]["message"]
