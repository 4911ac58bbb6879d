"""The dead letters' store: every letter kept (even malformed), filters, counts, restart, resubmit, delete,
batches where one bad letter never blocks the others, and the restart rules."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cloudevents.http import CloudEvent
from moto import mock_aws

from events import ProductIngested, make_event, parse_http, to_http
from events.naming import derived_id
from shared.bus.publisher import SinkPublisher, SinkUnavailable
from shared.operations.deadletters import (
    DeadLetters,
    InvalidEdit,
    LetterFilter,
    LetterNotFound,
    NotRestartable,
    load_rules,
    service_of,
)
from shared.settings import Settings
from shared.storage.objects import ObjectStore

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
NAME = "S1A_IW_GRDH_1SDV_20240501T120000_20240501T120025_053000_066000_ABCD.SAFE"
CATALOG = "http://catalog.refsys.svc.cluster.local/events"


class Receiver:
    """A real HTTP sink on loopback that keeps the events posted to it (what the broker would get)."""

    def __init__(self) -> None:
        self.events: list[CloudEvent] = []
        received = self.events

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append(parse_http(dict(self.headers.items()), body))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    sink = Receiver()
    yield sink
    sink.close()


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def letters(clock: Clock) -> Iterator[DeadLetters]:
    with mock_aws():
        settings = Settings(s3_access_key="testing", s3_secret_key="testing")
        yield DeadLetters(ObjectStore(settings), settings.deadletter_bucket, rules=load_rules(), clock=clock)


def ingested(name: str = NAME, checksum: str = "0" * 32) -> CloudEvent:
    from shared.ingestion.inbox import identity
    from shared.products import recognise

    data = ProductIngested(
        product=identity(recognise(name)),
        bucket="rs-s1-l1-slices",
        key=name + "/",
        content_length=10,
        checksum=checksum,
        content_type="application/octet-stream",
        ingestion_time=START,
    )
    return make_event(data, source="/refsys/functions/ingest", time=START)


def failed(event: CloudEvent, code: int, message: str = "", destination: str = CATALOG) -> CloudEvent:
    body = json.dumps({"error": {"code": "Failure", "message": message}}).encode() if message else b""
    attributes = {**event.get_attributes(), "knativeerrordest": destination, "knativeerrorcode": code}
    if body:
        attributes["knativeerrordata"] = base64.b64encode(body).decode()
    return CloudEvent(attributes, event.data)


def malformed_body(event: CloudEvent) -> bytes:
    """A structured event whose type is a list, as the user trial's deadletter function stored one."""
    _, body = to_http(event, structured=True)
    document = json.loads(body)
    document["type"] = [document["type"], "org.refsys.other.v1"]
    return json.dumps(document).encode()


def test_a_letter_is_kept_under_its_derived_id_with_the_function_and_the_decoded_error(letters: DeadLetters) -> None:
    event = ingested()
    letter = letters.keep(failed(event, 500, "InternalError: disk full"))
    assert letter.id == derived_id(event["source"], event["id"])
    shown = letters.get(letter.id).detail()
    assert shown["function"] == "catalog" and shown["errorCode"] == "500"
    assert shown["error"] == "InternalError: disk full" and shown["errorName"] == "Failure"
    assert shown["event"]["data"]["product"]["name"] == NAME
    assert letters.keep(failed(event, 500)).id == letter.id and len(letters.pending()) == 1  # kept once


def test_the_function_comes_from_the_destination_host_or_the_local_services() -> None:
    assert service_of(CATALOG, {}) == "catalog"
    assert service_of("http://prepare.refsys/events", {}) == "prepare"
    assert service_of("http://127.0.0.1:4711/events", {"http://127.0.0.1:4711": "ingest"}) == "ingest"
    assert service_of("http://127.0.0.1:4711/events", {}) is None


def test_a_malformed_letter_is_kept_as_received_and_listed_with_its_problem(letters: DeadLetters) -> None:
    body = malformed_body(failed(ingested(), 422, "bad"))
    letter = letters.keep_request({"Content-Type": "application/cloudevents+json"}, body)
    assert letter.event is None and letter.problem is not None and "'type'" in letter.problem
    assert letter.function == "catalog" and letter.error_code == "422"
    (listed,) = [x.summary() for x in letters.select(LetterFilter(malformed=True))]
    assert listed["id"] == letter.id and listed["problem"] == letter.problem
    assert json.loads(letters.get(letter.id).document["raw"]["body"]) == json.loads(body)

    garbage = letters.keep_request({"Content-Type": "application/json"}, b"\xff not an event")
    assert garbage.problem is not None and garbage.document["raw"]["encoding"] == "base64"
    assert {x.id for x in letters.pending()} == {letter.id, garbage.id}


def test_one_malformed_letter_does_not_stop_the_others_from_restarting(
    letters: DeadLetters, receiver: Receiver
) -> None:
    good = [
        ingested(f"S1A_IW_GRDH_1SDV_20240501T1200{i:02d}_20240501T120025_053000_066000_ABCD.SAFE") for i in range(3)
    ]
    ids = [letters.keep(failed(event, 0)).id for event in good]
    bad = letters.keep_request({"Content-Type": "application/cloudevents+json"}, malformed_body(good[0]))
    sink = SinkPublisher(receiver.url)

    outcome = letters.batch("restart", lambda letter: letters.restart(letter, sink), where=LetterFilter())

    assert sorted(outcome.ids_with_success) == sorted(ids)
    (skipped,) = outcome.ids_skipped
    assert skipped["id"] == bad.id and "'type'" in skipped["reason"]
    assert sorted(e["id"] for e in receiver.events) == sorted(e["id"] for e in good)
    assert not any(k.startswith("knativeerror") for e in receiver.events for k in e.get_attributes())
    assert [x.id for x in letters.pending()] == [bad.id]
    restarted = letters.get(ids[0], "restarted").document["history"]
    assert restarted[-1]["action"] == "restart" and restarted[-1]["by"] == "operator"
    with pytest.raises(NotRestartable):
        letters.restart(bad, sink)


def test_a_batch_by_ids_reports_unknown_ids_and_does_the_rest(letters: DeadLetters) -> None:
    letter = letters.keep(failed(ingested(), 422))
    outcome = letters.batch("delete", letters.delete, ids=[letter.id, "f" * 32, "not-an-id"])
    assert outcome.as_json()["idsWithSuccess"] == [letter.id]
    assert [s["id"] for s in outcome.ids_skipped] == ["f" * 32, "not-an-id"]
    assert all("no pending dead letter" in s["reason"] for s in outcome.ids_skipped)


def test_filters_choose_by_function_type_code_error_subject_time_and_form(letters: DeadLetters, clock: Clock) -> None:
    other = "S1A_IW_SLC__1SDV_20240501T120000_20240501T120025_053000_066000_ABCD.SAFE"
    a = letters.keep(failed(ingested(), 503, "store timed out"))
    clock.now = START + timedelta(hours=1)
    b = letters.keep(failed(ingested(other), 422, "bad payload", "http://prepare.refsys.svc.cluster.local/"))

    def ids(**where: Any) -> list[str]:
        return [x.id for x in letters.select(LetterFilter.model_validate(where))]

    assert ids() == [a.id, b.id]  # oldest first
    assert ids(function="prepare") == [b.id]
    assert ids(type="org.refsys.product.*") == [a.id, b.id] and ids(type="org.refsys.job.*") == []
    assert ids(errorCode="5xx") == [a.id] and ids(errorCode="422") == [b.id]
    assert ids(error="TIMED OUT") == [a.id]
    assert ids(subject="S1A_IW_SLC*") == [b.id]
    assert ids(since=START + timedelta(minutes=30)) == [b.id] and ids(until=START + timedelta(minutes=30)) == [a.id]
    assert ids(malformed=True) == []
    with pytest.raises(ValueError, match="since"):
        LetterFilter.model_validate({"since": "yesterday"})


def test_count_groups_by_function_type_and_error_code(letters: DeadLetters) -> None:
    letters.keep(failed(ingested(), 503))
    letters.keep(failed(ingested(checksum="1" * 32), 503))
    letters.keep(failed(ingested(checksum="2" * 32), 422))
    counted = letters.count(LetterFilter())
    assert counted["total"] == 3 and counted["byErrorCode"] == {"503": 2, "422": 1}
    assert counted["byFunction"] == {"catalog": 3}
    assert counted["groups"][0] == {
        "function": "catalog",
        "type": "org.refsys.product.ingested.v1",
        "errorCode": "503",
        "count": 2,
    }


def test_a_resubmission_is_validated_like_any_event_of_its_type(letters: DeadLetters, receiver: Receiver) -> None:
    event = ingested()
    letter = letters.keep(failed(event, 422, "checksum missing"))
    sink = SinkPublisher(receiver.url)
    with pytest.raises(InvalidEdit, match="content_length"):
        letters.resubmit(letter, {"dataPatch": {"content_length": -1}}, sink)
    with pytest.raises(InvalidEdit, match="'id'"):
        letters.resubmit(letter, {"attributes": {"id": "mine"}}, sink)
    assert receiver.events == [] and letters.get(letter.id)  # still pending

    new_id = letters.resubmit(letter, {"dataPatch": {"content_length": 11}, "attributes": {"mission": None}}, sink)

    (sent,) = receiver.events
    assert sent["id"] == new_id != event["id"] and sent["resubmitof"] == event["id"]
    assert sent.data["content_length"] == 11 and sent["mission"] == "S1"  # routing follows the data again
    assert "knativeerrorcode" not in sent.get_attributes()
    history = letters.get(letter.id, "restarted").document["history"]
    assert history[-1]["action"] == "resubmit" and history[-1]["eventId"] == new_id


def test_a_malformed_letter_can_be_resubmitted_with_its_attributes_corrected(
    letters: DeadLetters, receiver: Receiver
) -> None:
    event = ingested()
    bad = letters.keep_request({"Content-Type": "application/cloudevents+json"}, malformed_body(event))
    letters.resubmit(bad, {"attributes": {"type": event["type"]}}, SinkPublisher(receiver.url))
    (sent,) = receiver.events
    assert sent["type"] == event["type"] and sent.data["product"]["name"] == NAME


def test_delete_puts_the_letter_aside_where_it_can_still_be_read(letters: DeadLetters) -> None:
    letter = letters.keep(failed(ingested(), 422))
    letters.delete(letter)
    with pytest.raises(LetterNotFound):
        letters.get(letter.id)
    kept = letters.get(letter.id, "deleted")
    assert kept.document["history"][-1]["action"] == "delete"
    assert [x.id for x in letters.select(LetterFilter(state="deleted"))] == [letter.id]


def test_rules_schedule_transient_failures_and_keep_poison_for_the_operator(
    letters: DeadLetters, clock: Clock, receiver: Receiver
) -> None:
    transient = letters.keep(failed(ingested(), 0))
    poison = letters.keep(failed(ingested(checksum="1" * 32), 422))
    assert transient.retry["rule"] == "transport" and transient.retry["count"] == 0
    assert datetime.fromisoformat(transient.retry["dueAt"]) == START + timedelta(seconds=60)
    assert poison.retry == {"rule": "poison", "count": 0, "maxRetries": 0, "dueAt": None, "exhausted": False}
    sink = SinkPublisher(receiver.url)

    assert letters.restart_due(lambda: sink)["deadLettersRestarted"] == 0  # not yet
    clock.now = START + timedelta(seconds=61)
    assert letters.restart_due(lambda: sink)["deadLettersRestarted"] == 1
    (sent,) = receiver.events
    assert sent["retrycount"] == "1"
    assert letters.get(transient.id, "restarted").document["history"][-1]["by"] == "rule"

    # It fails again: the counter it carries backs off further, then gives up for the operator.
    again = letters.keep(failed(sent, 0))
    assert again.retry["count"] == 1
    assert datetime.fromisoformat(again.retry["dueAt"]) == clock.now + timedelta(seconds=120)
    assert [h["action"] for h in again.document["history"]] == ["dead-lettered", "restart", "dead-lettered"]
    tired = CloudEvent({**sent.get_attributes(), "retrycount": "3"}, sent.data)
    assert letters.keep(failed(tired, 0)).retry["exhausted"] is True


def test_an_operator_restart_gives_the_rules_a_fresh_count(letters: DeadLetters, receiver: Receiver) -> None:
    event = ingested()
    tired = CloudEvent({**event.get_attributes(), "retrycount": "3"}, event.data)
    letter = letters.keep(failed(tired, 0))
    letters.restart(letter, SinkPublisher(receiver.url))
    assert "retrycount" not in receiver.events[0].get_attributes()


def test_a_rules_file_replaces_the_defaults_and_a_bad_one_says_why(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - {name: all, errorCode: 422, action: restart, maxRetries: 1, backoff: 5}\n")
    (rule,) = load_rules(path).rules
    assert rule.error_code == ["422"] and rule.wait(0) == 5 and rule.wait(3) == 40
    path.write_text("rules:\n  - {name: x, action: retry}\n")
    with pytest.raises(ValueError, match=r"rules\.yaml"):
        load_rules(path)
    assert [r.name for r in load_rules().rules] == ["poison", "transport", "timeout", "unavailable"]


def test_a_letter_stored_by_the_first_version_is_still_read(letters: DeadLetters) -> None:
    event = failed(ingested(), 422)
    _, body = to_http(event, structured=True)
    letter_id = derived_id(event["source"], event["id"])
    letters.store.ensure_bucket(letters.bucket)
    letters.store.put(letters.bucket, f"pending/{letter_id}.json", body)
    (letter,) = letters.pending()
    assert letter.id == letter_id and letter.event_id == event["id"] and letter.error_code == "422"


def test_a_restarted_event_that_fails_again_at_once_is_a_pending_letter_again(letters: DeadLetters) -> None:
    letter = letters.keep(failed(ingested(), 422))

    class FailsAtOnce:
        """The broker delivering the restarted event, and the step refusing it again, before restart() returns."""

        def publish(self, event: CloudEvent) -> None:
            letters.keep(failed(event, 422))

    letters.restart(letter, FailsAtOnce())
    assert [x.id for x in letters.pending()] == [letter.id]
    actions = [h["action"] for h in letters.get(letter.id).document["history"]]
    assert actions == ["dead-lettered", "restart", "dead-lettered"]


def test_a_restart_the_broker_refuses_leaves_the_letter_pending(letters: DeadLetters) -> None:
    letter = letters.keep(failed(ingested(), 0))

    class Refuses:
        def publish(self, event: CloudEvent) -> None:
            raise SinkUnavailable("broker down")

    with pytest.raises(SinkUnavailable):
        letters.restart(letter, Refuses())
    assert [x.id for x in letters.pending()] == [letter.id]
