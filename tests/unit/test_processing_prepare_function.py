"""The ``prepare`` function over HTTP: a cataloged product nobody waits for is done with 202; a session
whose last chunk arrives is answered with its ``job.ready``."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import flask
import pytest

from events.http import make_event, to_http
from events.processing import JobReady
from shared import ports
from shared.catalog import open_catalog
from shared.processing import service
from shared.settings import get_settings
from tests.integration.test_processing_prepare import aux_entries, cataloged, session_entries

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def prepare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ModuleType, str]]:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    monkeypatch.setenv("REFSYS_CATALOG_URL", url)
    caches = (get_settings, ports.processed_events, service.preparation)
    for cached in caches:
        cached.cache_clear()
    spec = importlib.util.spec_from_file_location("prepare_main", REPO_ROOT / "functions/prepare/main.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        yield module, url
    finally:
        for cached in caches:
            cached.cache_clear()


def post(module: ModuleType, event: object) -> flask.Response:
    headers, body = to_http(make_event(event, source="/refsys/functions/catalog"))  # type: ignore[arg-type]
    app = flask.Flask("test")
    with app.test_request_context("/", method="POST", headers=headers, data=body):
        response: flask.Response = module.prepare(flask.request)
    return response


def test_a_session_is_answered_with_job_ready_after_its_last_chunk(prepare: tuple[ModuleType, str]) -> None:
    module, url = prepare
    store = open_catalog(url)
    for aux in aux_entries():
        store.upsert(aux)
    statuses = []
    for entry in session_entries():
        store.upsert(entry)
        statuses.append(post(module, cataloged(entry)))
    store.close()
    assert [r.status_code for r in statuses[:-1]] == [202] * (len(statuses) - 1)
    last = statuses[-1]
    assert last.status_code == 200 and last.headers["ce-type"] == JobReady.TYPE
    assert last.headers["ce-mission"] == "S1"
    # Redelivered: the same reply, from the idempotency record.
    again = post(module, cataloged(session_entries()[-1]))
    assert again.status_code == 200 and again.headers["ce-id"] == last.headers["ce-id"]
