"""The dead letters' HTTP API on the operations function, and the deadletter sink, through their views."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask
import pytest
from moto import mock_aws

from events import to_http
from functions.deadletter.main import deadletter
from functions.operations.main import operations
from shared import ports
from shared.operations import deadletters_api
from shared.operations.archive import EventSelection
from shared.settings import get_settings
from tests.unit.test_deadletters import Receiver, failed, ingested, malformed_body

CACHES = (get_settings, ports.object_store, ports.sink, deadletters_api._rules, ports.event_archive)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Receiver]:
    sink = Receiver()
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {name: now, errorCode: '0', action: restart, maxRetries: 2, backoff: 0}\n")
    for name, value in {
        "REFSYS_S3_ACCESS_KEY": "testing",
        "REFSYS_S3_SECRET_KEY": "testing",
        "K_SINK": sink.url,
        "REFSYS_DEADLETTER_RULES_FILE": str(rules),
        "REFSYS_CATALOG_URL": f"sqlite:///{tmp_path / 'catalog.db'}",  # a cluster's archive: the catalog's table
    }.items():
        monkeypatch.setenv(name, value)
    for cached in CACHES:
        cached.cache_clear()
    with mock_aws():
        yield sink
    for cached in CACHES:
        cached.cache_clear()
    sink.close()


def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
    app = flask.Flask("test")
    data = None if body is None else json.dumps(body)
    with app.test_request_context(path, method=method, data=data, content_type="application/json"):
        response = operations(flask.request)
    return response.status_code, response.get_json()


def dead_letter(headers: dict[str, str], body: bytes) -> int:
    with flask.Flask("test").test_request_context("/", method="POST", headers=headers, data=body):
        return deadletter(flask.request).status_code


def keep(event: Any) -> str:
    headers, body = to_http(event)
    assert dead_letter(headers, body) == 202
    (letter,) = [x for x in deadletters_api.letters().pending() if x.event_id == event["id"]]
    return letter.id


def test_list_count_show_restart_and_delete_over_http(api: Receiver) -> None:
    archived = ports.event_archive()  # a cluster's archive (the catalog's table) has the event...
    archived.store({**ingested().get_attributes(), "data": ingested().data})
    first = keep(failed(ingested(), 422, "checksum missing"))
    (kept,) = archived.select(EventSelection())  # ...and learns of its dead letter, the outcome Knative reports
    assert [(o["state"], o["status"], o["letter"]) for o in kept.outcomes] == [("dead-lettered", "422", first)]
    second = keep(failed(ingested(checksum="1" * 32), 503))
    malformed = malformed_body(failed(ingested(), 422))
    assert dead_letter({"Content-Type": "application/cloudevents+json"}, malformed) == 202

    status, listed = call("GET", "/deadletters?errorCode=4xx&malformed=false")
    assert status == 200 and listed["total"] == 1 and listed["items"][0]["id"] == first
    status, page = call("GET", "/deadletters?limit=2")
    assert page["total"] == 3 and len(page["items"]) == 2 and page["nextOffset"] == 2
    status, counted = call("GET", "/deadletters/count")
    assert counted["byErrorCode"] == {"422": 2, "503": 1}  # the malformed one was a 422 too
    status, shown = call("GET", f"/deadletters/{first}")
    assert status == 200 and shown["event"]["data"]["product"]["name"] == ingested().data["product"]["name"]

    status, restarted = call("POST", f"/deadletters/{second}/restart")
    assert status == 200 and restarted["state"] == "restarted" and api.events[0]["id"] == restarted["eventId"]
    status, deleted = call("DELETE", f"/deadletters/{first}")
    assert status == 200 and deleted["state"] == "deleted" and call("GET", f"/deadletters/{first}")[0] == 404
    assert call("GET", f"/deadletters/{first}?state=deleted")[0] == 200


def test_a_batch_restart_skips_the_malformed_and_the_unknown_and_restarts_the_rest(api: Receiver) -> None:
    ids = [keep(failed(ingested(checksum=str(i) * 32), 503)) for i in range(3)]
    dead_letter({"Content-Type": "application/cloudevents+json"}, malformed_body(ingested()))
    (bad,) = [x.id for x in deadletters_api.letters().pending() if x.problem]

    status, outcome = call("POST", "/deadletters/restart", {"ids": [*ids, bad, "0" * 32]})

    assert status == 200 and outcome["action"] == "restart" and outcome["idsWithSuccess"] == ids
    assert [s["id"] for s in outcome["idsSkipped"]] == [bad, "0" * 32]
    assert len(api.events) == 3
    status, by_filter = call("POST", "/deadletters/delete", {"filter": {"malformed": True}})
    assert by_filter["idsWithSuccess"] == [bad] and call("GET", "/deadletters")[1]["total"] == 0


def test_errors_say_what_was_wrong(api: Receiver) -> None:
    letter = keep(failed(ingested(), 422))
    status, body = call("GET", "/deadletters?colour=red")
    assert status == 400 and body["error"]["code"] == "InvalidFilter" and "'colour'" in body["error"]["message"]
    assert call("GET", "/deadletters?since=yesterday")[0] == 400
    assert call("GET", "/deadletters?limit=0")[0] == 400
    assert call("GET", f"/deadletters/{'0' * 32}")[0] == 404
    assert call("PUT", f"/deadletters/{letter}")[0] == 405
    assert call("GET", "/deadletters/restart")[0] == 405
    assert call("POST", "/deadletters/restart", {"ids": ["a"], "filter": {}})[0] == 400
    assert call("POST", "/deadletters/restart", {"filter": {"state": "deleted"}})[0] == 400
    status, body = call("POST", f"/deadletters/{letter}/resubmit", {"dataPatch": {"bucket": 7}})
    assert status == 400 and "bucket" in body["error"]["message"]
    assert api.events == []


def test_a_resubmission_over_http_publishes_the_edited_event(api: Receiver) -> None:
    letter = keep(failed(ingested(), 422))
    status, body = call("POST", f"/deadletters/{letter}/resubmit", {"dataPatch": {"content_length": 12}})
    assert status == 200
    (sent,) = api.events
    assert sent["id"] == body["eventId"] and sent.data["content_length"] == 12


def test_the_tick_restarts_what_the_rules_made_due(api: Receiver) -> None:
    transient = keep(failed(ingested(), 0))
    keep(failed(ingested(checksum="1" * 32), 422))  # no rule: kept for the operator
    assert deadletters_api.on_tick() == {"deadLettersRestarted": 1, "deadLettersRestartFailed": 0}
    (sent,) = api.events
    assert sent["retrycount"] == "1"
    assert [x.id for x in deadletters_api.letters().pending()] != [transient]
    assert deadletters_api.on_tick()["deadLettersRestarted"] == 0
