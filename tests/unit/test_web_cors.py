"""CORS of the query APIs: the map client calls OData and STAC from another origin. A preflight is answered
before the access policy (browsers send it without the token), every answer carries the allow and expose
headers, and REFSYS_CORS_ORIGINS narrows who may call."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import flask
import pytest

from shared.settings import get_settings
from shared.web.cors import ALLOW_HEADERS, allow_origin, cors
from tests.unit.test_odata_service import token
from tests.unit.test_security_endpoints import call, keys, secured  # noqa: F401  (fixtures)

ORIGIN = "http://127.0.0.1:8123"
PREFLIGHT = {"Origin": ORIGIN, "Access-Control-Request-Method": "GET",
             "Access-Control-Request-Headers": "authorization"}  # fmt: skip


def request(view: Any, method: str, headers: dict[str, str]) -> flask.Response:
    with flask.Flask("t").test_request_context("/odata/v1/Products", method=method, headers=headers):
        return flask.make_response(view(flask.request))


@pytest.fixture
def origins(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def set_origins(value: str) -> None:
        monkeypatch.setenv("REFSYS_CORS_ORIGINS", value)
        get_settings.cache_clear()

    yield set_origins
    monkeypatch.undo()
    get_settings.cache_clear()


def refusing(request: flask.Request) -> flask.Response:
    """Stands for an access policy that refuses every request."""
    response = flask.jsonify({"error": {"code": "Unauthorized", "message": "no token"}})
    response.status_code = 401
    return response


def test_a_preflight_is_answered_without_reaching_the_view(origins: Any) -> None:
    origins("*")
    response = request(cors(refusing), "OPTIONS", PREFLIGHT)
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    assert "GET" in response.headers["Access-Control-Allow-Methods"]


def test_an_answer_names_the_origin_and_exposes_the_download_headers(origins: Any) -> None:
    origins("*")
    response = request(cors(refusing), "GET", {"Origin": ORIGIN})
    assert response.status_code == 401  # the view's answer, readable by the page: it shows the API's message
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"Content-Length", "ETag", "Content-Range", "WWW-Authenticate"} <= exposed


def test_a_listed_origin_is_echoed_with_vary_and_another_gets_no_cors_header(origins: Any) -> None:
    origins(f"https://portal.example, {ORIGIN}/")
    response = request(cors(refusing), "GET", {"Origin": ORIGIN})
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in response.headers.get_all("Vary")
    other = request(cors(refusing), "OPTIONS", {**PREFLIGHT, "Origin": "https://elsewhere.example"})
    assert other.status_code == 204 and "Access-Control-Allow-Origin" not in other.headers


def test_empty_origins_turn_cors_off_and_a_request_without_origin_gets_nothing() -> None:
    assert allow_origin(ORIGIN, "") is None
    assert allow_origin(None, "*") is None
    assert allow_origin(ORIGIN, "*") == "*"


def test_a_plain_options_without_preflight_headers_goes_to_the_view(origins: Any) -> None:
    origins("*")
    assert request(cors(refusing), "OPTIONS", {"Origin": ORIGIN}).status_code == 401


@pytest.mark.parametrize(("function", "path"), [("odata", "/odata/v1/Products"), ("stac", "/stac/search")])
def test_with_oidc_the_apis_answer_a_preflight_without_a_token_and_refuse_the_tokenless_request(
    secured: Any,  # noqa: F811
    function: str,
    path: str,
) -> None:
    preflight = call_with(function, "OPTIONS", path, PREFLIGHT)
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Headers"] == ALLOW_HEADERS
    refused = call_with(function, "GET", path, {"Origin": ORIGIN})
    assert refused.status_code == 401
    assert refused.headers["Access-Control-Allow-Origin"] == "*"  # the page can read why
    allowed = call_with(
        function, "GET", path, {"Origin": ORIGIN, "Authorization": f"Bearer {token(secured, roles=['viewer'])}"}
    )
    assert allowed.status_code == 200, allowed.get_data(as_text=True)
    assert allowed.headers["Access-Control-Allow-Origin"] == "*"


def call_with(function: str, method: str, path: str, headers: dict[str, str]) -> flask.Response:
    import importlib

    module = importlib.import_module(f"functions.{function}.main")
    with flask.Flask("t").test_request_context(path, method=method, headers=headers):
        return flask.make_response(getattr(module, function)(flask.request))
