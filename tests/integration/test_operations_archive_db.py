"""The event archive and the rerun records in both catalog databases, and the ``archive`` function that
fills the archive on a cluster."""

from __future__ import annotations

import base64
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import flask
import pytest

from events import ObjectCreated, make_event, to_http
from shared.operations.archive import EventArchive, EventSelection
from shared.operations.reruns import Kind, RerunState, RerunStore
from shared.settings import get_settings
from tests.unit.test_operations_archive import CATALOGED, NOW, record

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_archive_keeps_each_event_once_in_order_and_selects_it(catalog_url: str) -> None:
    archive = EventArchive(catalog_url)
    assert archive.store(record(1, mission="S1")) and not archive.store(record(1, mission="S1"))  # redelivered
    archive.store(record(2, subject="S2B_MSI_L0__GR_X/manifest.safe", mission="S2"))
    archive.store(record(3, type_="org.refsys.job.ready.v1", replay="true"))
    assert archive.last_seq() > 0
    assert archive.count(EventSelection()) == {"matched": 2, "byType": {CATALOGED: 2}}
    assert archive.count(EventSelection(include_replays=True))["matched"] == 3
    s2 = EventSelection(product="S2B_MSI_L0__GR_X", attributes={"mission": "S2"})
    assert [e.record["id"] for e in archive.select(s2)] == ["e2"]
    assert archive.add_outcome(record(1)["source"], "e1", {"state": "dead-lettered", "status": 500})
    (first,) = archive.select(EventSelection(attributes={"mission": "S1"}))
    assert first.outcomes == [{"state": "dead-lettered", "status": 500}]
    assert [e.record["id"] for e in archive.select(EventSelection(include_replays=True), after=first.seq)] == [
        "e2",
        "e3",
    ]
    assert archive.purge(-1.0) == 3 and archive.count(EventSelection(include_replays=True))["matched"] == 0


def test_reruns_keep_their_cursor(catalog_url: str) -> None:
    store = RerunStore(catalog_url)
    rerun = store.create(Kind.REPROCESSING, {"filter": "Name eq 'x'"}, matched=3)
    store.advance(rerun.id, "S1A_B", 2)
    again = store.get(rerun.id)
    assert again is not None and (again.cursor, again.published, again.state) == ("S1A_B", 2, RerunState.RUNNING)
    store.advance(rerun.id, "S1A_C", 3, RerunState.DONE)
    assert [r.to_json()["state"] for r in store.list()] == ["done"]


@pytest.fixture
def archive_function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ModuleType, str]]:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    monkeypatch.setenv("REFSYS_CATALOG_URL", url)
    get_settings.cache_clear()
    spec = importlib.util.spec_from_file_location("archive_main", REPO_ROOT / "functions/archive/main.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module, url
    get_settings.cache_clear()


def test_the_archive_function_keeps_any_event_once(archive_function: tuple[ModuleType, str]) -> None:
    module, url = archive_function
    event = make_event(ObjectCreated(store="s", bucket="rs-inbox", key="a/b", size=3, event_time=NOW), source="/s")
    headers, body = to_http(event)
    app = flask.Flask("test")
    answers = []
    for _ in range(2):  # a redelivery
        with app.test_request_context("/", method="POST", headers=headers, data=body):
            answers.append(module.archive(flask.request).status_code)
    with app.test_request_context("/", method="POST", data=b"{}", headers={"Content-Type": "application/json"}):
        answers.append(module.archive(flask.request).status_code)
    assert answers == [202, 202, 400]
    (kept,) = EventArchive(url).select(EventSelection())
    assert kept.record["id"] == event["id"] and kept.record["subject"] == "a/b"
    assert json.loads(base64.b64decode(kept.record["data_base64"]))["key"] == "a/b"  # the body byte for byte
