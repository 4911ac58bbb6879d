"""The map client's site (functions/web): the committed bundle served with the right types and caching,
/config.json from the settings, and the bundle never older than its sources."""

from __future__ import annotations

import gzip
import hashlib
import importlib
import json
import re
from pathlib import Path

import flask
import pytest

from shared.settings import Settings
from shared.web.site import IMMUTABLE, REVALIDATE, Site, client_config

WEB = Path(__file__).resolve().parents[2] / "functions" / "web"
CLIENT, STATIC = WEB / "client", WEB / "static"
SOURCES = ["package.json", "package-lock.json", "build.mjs", "tsconfig.json"]  # and src/**, as build.mjs digests


def get(site: Site, path: str, headers: dict[str, str] | None = None, method: str = "GET") -> flask.Response:
    with flask.Flask("t").test_request_context(path, method=method, headers=headers or {}):
        return flask.make_response(site.handle(flask.request))


@pytest.fixture
def site() -> Site:
    return Site(STATIC, Settings(web_odata_url="http://127.0.0.1:1/odata/v1", web_stac_url=None))


def sources_digest() -> str:
    """What build.mjs writes into manifest.json: every source, sorted by path, as path NUL bytes NUL."""
    paths = sorted([*SOURCES, *(p.relative_to(CLIENT).as_posix() for p in (CLIENT / "src").rglob("*") if p.is_file())])
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.encode() + b"\0" + (CLIENT / path).read_bytes() + b"\0")
    return digest.hexdigest()


def test_the_committed_bundle_is_built_from_the_current_sources() -> None:
    manifest = json.loads((STATIC / "manifest.json").read_text())
    assert manifest["sources"] == sources_digest(), "functions/web/static is older than its sources: run `make web`"
    built = sorted(
        p.relative_to(STATIC).as_posix() for p in STATIC.rglob("*") if p.is_file() and p.name != "manifest.json"
    )
    assert built == manifest["files"]  # nothing left from an earlier build, nothing missing


def test_index_names_the_hashed_assets_and_is_revalidated_while_assets_are_immutable(site: Site) -> None:
    index = get(site, "/")
    assert index.status_code == 200
    assert index.content_type == "text/html; charset=utf-8"
    assert index.headers["Cache-Control"] == REVALIDATE
    names = re.findall(r'(?:src|href)="(/assets/[^"]+)"', index.get_data(as_text=True))
    assert {Path(n).suffix for n in names} == {".js", ".css"}
    for name in names:
        asset = get(site, name)
        assert asset.status_code == 200
        assert asset.headers["Cache-Control"] == IMMUTABLE
        assert asset.content_type.split(";")[0] == {".js": "text/javascript", ".css": "text/css"}[Path(name).suffix]
        assert asset.headers["X-Content-Type-Options"] == "nosniff"


def test_an_unchanged_file_is_a_304_and_unknown_paths_and_methods_are_refused(site: Site) -> None:
    etag = get(site, "/").headers["ETag"]
    assert get(site, "/index.html", {"If-None-Match": etag}).status_code == 304
    missing = get(site, "/assets/nothing.js")
    assert missing.status_code == 404 and "nothing.js" in missing.get_json()["error"]["message"]
    assert get(site, "/", method="POST").status_code == 405


def test_text_is_gzipped_for_browsers_that_accept_it_under_its_own_tag(site: Site) -> None:
    borders = next(name for name in site.files if name.endswith(".json") and name.startswith("/assets/"))
    plain = get(site, borders)
    zipped = get(site, borders, {"Accept-Encoding": "gzip, deflate, br"})
    assert "Content-Encoding" not in plain.headers and zipped.headers["Content-Encoding"] == "gzip"
    assert plain.headers["Vary"] == zipped.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(zipped.get_data()) == plain.get_data()
    assert len(zipped.get_data()) < len(plain.get_data()) / 2
    assert zipped.headers["ETag"] != plain.headers["ETag"]
    again = {"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["ETag"]}
    assert get(site, borders, again).status_code == 304


def test_config_tells_the_client_where_the_apis_are_and_how_to_log_in(site: Site) -> None:
    config = get(site, "/config.json")
    assert config.headers["Cache-Control"] == REVALIDATE
    assert config.get_json() == {"odata": "http://127.0.0.1:1/odata/v1", "stac": "/stac", "oidc": None}
    secured = Settings(oidc_issuer="https://id.example/realms/refsys", oidc_audience="refsys-odata")
    assert client_config(secured)["oidc"] == {
        "issuer": "https://id.example/realms/refsys", "clientId": "refsys-odata", "scope": "openid"}  # fmt: skip
    own_client = Settings(
        oidc_issuer="https://id.example", web_oidc_client_id="refsys-web", web_oidc_scope="openid email"
    )
    assert client_config(own_client)["oidc"]["clientId"] == "refsys-web"


def test_the_function_serves_the_site_and_its_health(monkeypatch: pytest.MonkeyPatch) -> None:
    module = importlib.import_module("functions.web.main")
    module._site.cache_clear()
    with flask.Flask("t").test_request_context("/healthz"):
        assert flask.make_response(module.web(flask.request)).get_json() == {"status": "ok"}
    with flask.Flask("t").test_request_context("/"):
        assert b"<title>refsys" in flask.make_response(module.web(flask.request)).get_data()
    module._site.cache_clear()
