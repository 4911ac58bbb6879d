"""Every HTTP endpoint refuses who does not belong: events without the platform's secret or a sender token
(401), API requests without a valid token or without the role they need (401, 403)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask
import pytest

from shared import ports
from shared.catalog.odata.auth import TokenVerifier
from shared.security import access, senders
from shared.settings import get_settings
from tests.unit.test_odata_service import ISSUER, keys, token  # noqa: F401  (keys is a fixture)

SECRET = "the-platform-secret"
# (function, path) of every view that takes events or ticks.
EVENT_VIEWS = [
    ("ingest", "/"),
    ("catalog", "/events"),
    ("prepare", "/"),
    ("prepare", "/timer"),
    ("launch", "/"),
    ("launch", "/kubernetes"),
    ("scan", "/"),
    ("notify", "/"),
    ("deadletter", "/"),
    ("archive", "/"),
    ("operations", "/tick"),
]
API_VIEWS = [
    ("catalog", "GET", "/products", "viewer"),
    ("catalog", "GET", "/products/some-id", "viewer"),
    ("odata", "GET", "/odata/v1/Products", "viewer"),
    ("odata", "GET", "/odata/v1/$metadata", "viewer"),
    ("odata", "GET", "/odata/v1/Products(0a1b)/$value", "downloader"),
    ("operations", "GET", "/deadletters", "operator"),
    ("operations", "POST", "/deadletters/restart", "operator"),
    ("operations", "GET", "/archive", "operator"),
    ("operations", "POST", "/replays", "operator"),
    ("operations", "POST", "/reprocessings", "operator"),
]


def call(function: str, method: str, path: str, authorization: str | None = None, body: bytes = b"x") -> Any:
    module = importlib.import_module(f"functions.{function}.main")
    headers = {"Authorization": authorization} if authorization else {}
    with flask.Flask("t").test_request_context(path, method=method, headers=headers, data=body):
        return flask.make_response(getattr(module, function)(flask.request))


def clear_caches() -> None:
    for cached in (get_settings, access.access_policy, senders.sender_check, ports.catalog):
        cached.cache_clear()
    importlib.import_module("functions.odata.main")._service.cache_clear()


@pytest.fixture
def secured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keys: tuple[Any, Any]) -> Iterator[Any]:  # noqa: F811
    """A process with the event secret, sender tokens and API tokens all checked, against local keys."""
    good, _ = keys
    monkeypatch.setenv("REFSYS_CATALOG_URL", f"sqlite:///{tmp_path / 'catalog.db'}")
    monkeypatch.setenv("REFSYS_EVENT_SECRET", SECRET)
    monkeypatch.setenv("REFSYS_OIDC_ISSUER", ISSUER)
    monkeypatch.setenv("REFSYS_EVENT_OIDC_ISSUER", ISSUER)

    def verifier(issuer: str | None, audience: str | None, jwks_url: str | None) -> TokenVerifier | None:
        return TokenVerifier(ISSUER, "refsys-odata", lambda _token: good.public_key()) if issuer else None

    monkeypatch.setattr(access, "verifier_from_settings", verifier)
    monkeypatch.setattr(senders, "verifier_from_settings", verifier)
    clear_caches()
    yield good
    if ports.catalog.cache_info().currsize:
        ports.catalog().close()
    monkeypatch.undo()
    clear_caches()


@pytest.mark.parametrize(("function", "path"), EVENT_VIEWS)
def test_an_event_without_the_platforms_secret_is_refused(secured: Any, keys: Any, function: str, path: str) -> None:  # noqa: F811
    _, forged = keys
    for authorization in (None, "Bearer not-the-secret", f"Basic {SECRET}", f"Bearer {token(forged)}"):
        response = call(function, "POST", path, authorization)
        assert response.status_code == 401, (function, path, authorization)
        assert response.get_json()["error"]["code"] == "Unauthorized"
    assert call(function, "GET", "/healthz").status_code == 200  # probes need no secret


@pytest.mark.parametrize(("function", "path"), [("ingest", "/"), ("notify", "/"), ("prepare", "/timer")])
def test_an_event_from_the_platforms_senders_goes_on(secured: Any, function: str, path: str) -> None:
    # Past the check, the malformed body is what is refused.
    assert call(function, "POST", path, f"Bearer {SECRET}").status_code == 400
    assert call(function, "POST", path, f"Bearer {token(secured)}").status_code == 400  # Knative's sender token
    assert call(function, "POST", path, f"Bearer {token(secured, aud='another-subscriber')}").status_code == 401


@pytest.mark.parametrize(("function", "method", "path", "role"), API_VIEWS)
def test_with_oidc_every_api_refuses_a_missing_forged_or_underprivileged_token(
    secured: Any,
    keys: Any,  # noqa: F811
    function: str,
    method: str,
    path: str,
    role: str,
) -> None:
    _, forged = keys
    assert call(function, method, path).status_code == 401
    assert call(function, method, path, f"Bearer {token(forged, roles=['admin'])}").status_code == 401
    assert call(function, method, path, f"Bearer {token(secured, roles=['admin'], exp=1)}").status_code == 401
    assert call(function, method, path, f"Bearer {SECRET}").status_code == 401  # the event secret is no token
    below = {"viewer": [], "downloader": ["viewer", "operator"], "operator": ["viewer", "downloader"]}[role]
    assert call(function, method, path, f"Bearer {token(secured, roles=below)}").status_code == 403


def test_with_oidc_the_catalog_answers_a_viewer(secured: Any) -> None:
    response = call("catalog", "GET", "/products", f"Bearer {token(secured, realm_access={'roles': ['viewer']})}")
    assert response.status_code == 200 and response.get_json()["count"] == 0
