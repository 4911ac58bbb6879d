"""The ``subscriptions`` function over HTTP: a cataloged product is queued for the subscriptions it matches
(202, again 202 and nothing more when redelivered), a tick answers 202, anything else a 4xx with a message."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import flask
import pytest

from events import make_event, to_http
from shared import ports
from shared.catalog import open_catalog
from shared.catalog.announce import cataloged
from shared.settings import get_settings
from shared.subscriptions.model import parse_create
from shared.subscriptions.service import subscription_service
from shared.subscriptions.store import SubscriptionStore
from tests.unit.test_subscriptions import entry

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ModuleType, str]]:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    monkeypatch.setenv("REFSYS_CATALOG_URL", url)
    caches = (get_settings, ports.catalog, subscription_service)
    for cached in caches:
        cached.cache_clear()
    spec = importlib.util.spec_from_file_location("subscriptions_main", REPO_ROOT / "functions/subscriptions/main.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        yield module, url
    finally:
        for cached in caches:
            cached.cache_clear()


def call(module: ModuleType, path: str, method: str = "POST", event: object | None = None) -> flask.Response:
    headers, body = to_http(make_event(event, source="/refsys/functions/catalog")) if event else ({}, b"")  # type: ignore[arg-type]
    with flask.Flask("test").test_request_context(path, method=method, headers=headers, data=body):
        response: flask.Response = module.subscriptions(flask.request)
    return response


def test_a_cataloged_product_is_queued_once_and_the_tick_runs(function: tuple[ModuleType, str]) -> None:
    module, url = function
    store = SubscriptionStore(url)
    subscription = store.create(parse_create({"FilterParam": "Collection/Name eq 'SENTINEL-1'"}), "")
    catalog = open_catalog(url)
    product = entry("S1A_IW_GRDH_1SDV_FN.SAFE")
    catalog.upsert(product)
    catalog.close()
    assert call(module, "/events", event=cataloged(product)).status_code == 202
    assert call(module, "/events", event=cataloged(product)).status_code == 202
    assert [n.product_name for n in store.pending(subscription.id, 10)] == [product.name]
    assert call(module, "/tick").status_code == 202
    store.close()


def test_what_is_not_for_it_is_a_4xx_with_a_message(function: tuple[ModuleType, str]) -> None:
    module, _ = function
    assert call(module, "/events", method="GET").status_code == 405
    assert call(module, "/nowhere").status_code == 404
    refused = call(module, "/events", event=None)
    assert refused.status_code == 400 and refused.get_json()["error"]["message"]
