"""The function convention: status codes and replies as Knative understands them."""

import json
from datetime import UTC, datetime

import flask
import pytest

from events import ObjectCreated, ProductRejected, RejectionReason, make_event, parse_data, parse_http, to_http
from shared.bus.idempotency import open_processed_events
from shared.runtime import Reject, RetryLater, event_endpoint

NOW = datetime(2024, 5, 1, tzinfo=UTC)
CREATED = ObjectCreated(store="aws", bucket="rs-inbox", key="x", size=1, event_time=NOW)
REJECTED = ProductRejected(
    name="x",
    reason=RejectionReason.UNRECOGNISED,
    detail="not a product",
    quarantine_bucket="q",
    quarantine_key="x.reason.json",
    rejected_time=NOW,
)


def client_for(handler):
    app = flask.Flask(__name__)
    view = event_endpoint("test", handler, accepts=(ObjectCreated,))
    app.add_url_rule("/", "run", lambda: view(flask.request), methods=["GET", "POST", "PUT"])
    app.add_url_rule("/healthz", "health", lambda: view(flask.request), methods=["GET"])
    return app.test_client()


def post(client, data=CREATED, structured=False, **extensions):
    headers, body = to_http(make_event(data, source="/test", extensions=extensions or None), structured=structured)
    return client.post("/", headers=headers, data=body)


@pytest.mark.parametrize("structured", [False, True])
def test_no_reply_answers_202_with_an_empty_body(structured: bool) -> None:
    response = post(client_for(lambda event: None), structured=structured)
    assert response.status_code == 202
    assert response.data == b""


def test_a_reply_answers_200_with_the_cloudevent_in_binary_mode() -> None:
    response = post(client_for(lambda event: REJECTED))
    assert response.status_code == 200
    reply = parse_http(dict(response.headers), response.data)
    assert reply["type"] == ProductRejected.TYPE
    assert reply["source"] == "/refsys/functions/test"
    assert response.headers["Content-Type"] == "application/json"
    assert parse_data(reply) == REJECTED


def test_the_handler_gets_the_typed_payload() -> None:
    seen = []
    post(client_for(seen.append))
    assert seen == [CREATED]


def test_a_replayed_event_has_replayed_consequences() -> None:
    response = post(client_for(lambda event: REJECTED), replay="true")
    assert parse_http(dict(response.headers), response.data)["replay"] == "true"


def raise_(exc):
    def handler(event):
        raise exc

    return handler


@pytest.mark.parametrize(
    ("handler", "status"),
    [
        (raise_(RetryLater("store down")), 503),
        (raise_(Reject("never")), 422),
        (raise_(KeyError("boom")), 500),
    ],
)
def test_failures_map_to_what_the_broker_does_with_them(handler, status: int) -> None:
    response = post(client_for(handler))
    assert response.status_code == status
    assert response.get_json()["error"]["message"]


def test_an_event_of_another_type_is_dead_lettered_at_once() -> None:
    response = post(client_for(lambda event: None), data=REJECTED)
    assert response.status_code == 422
    assert "accepts org.refsys.storage.object.created.v1" in response.get_json()["error"]["message"]


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"Content-Type": "application/json"}, b'{"hello": 1}'),
        ({"Content-Type": "application/cloudevents+json"}, b"{broken"),
        ({"ce-specversion": "1.0", "ce-type": ObjectCreated.TYPE, "ce-source": "/s"}, b"{}"),
        ({}, b""),
    ],
)
def test_malformed_cloudevents_answer_400_with_a_message_never_500(headers, body) -> None:
    response = client_for(lambda event: None).post("/", headers=headers, data=body)
    assert response.status_code == 400
    assert response.get_json()["error"]["message"]


def test_a_payload_that_does_not_fit_its_model_answers_422() -> None:
    event = make_event(CREATED, source="/test")
    event.data = {"bucket": "rs-inbox"}
    headers, body = to_http(event)
    response = client_for(lambda event: None).post("/", headers=headers, data=body)
    assert response.status_code == 422
    assert "key" in response.get_json()["error"]["message"]


def test_health_and_wrong_methods() -> None:
    client = client_for(lambda event: None)
    assert client.get("/healthz").status_code == 200
    assert client.put("/").status_code == 405


def idempotent_client(handler):
    store = open_processed_events("sqlite:///:memory:")
    app = flask.Flask(__name__)
    view = event_endpoint("test", handler, accepts=(ObjectCreated,), processed=lambda: store)
    app.add_url_rule("/", "run", lambda: view(flask.request), methods=["POST"])
    return app.test_client()


def test_a_redelivered_event_gets_the_same_reply_without_the_work_done_again() -> None:
    calls = []
    client = idempotent_client(lambda event: calls.append(event) or REJECTED)
    first, second = post(client), post(client)
    assert len(calls) == 1
    assert second.status_code == 200
    assert parse_http(dict(second.headers), second.data)["id"] == parse_http(dict(first.headers), first.data)["id"]


def replay_of(data, reprocessing: str):
    """The event as a replay sends it again: an id of its own, replay=true, the reprocessing it belongs to."""
    event = make_event(data, source="/test", extensions={"replay": "true", "reprocessing": reprocessing})
    event["id"] = f"{event['id']}-{reprocessing}"
    return to_http(event)


def test_a_replay_does_the_work_again_under_its_own_ids_and_a_redelivered_replay_does_not() -> None:
    calls = []
    client = idempotent_client(lambda event: calls.append(event) or REJECTED)
    original = parse_http(*_reply(post(client)))
    headers, body = replay_of(CREATED, "replay-1")
    replies = [client.post("/", headers=headers, data=body) for _ in range(2)]
    assert len(calls) == 2  # the original and the replay; the replay's redelivery is answered from memory
    again = [parse_http(dict(r.headers), r.data) for r in replies]
    assert again[0]["id"] == again[1]["id"] != original["id"]
    assert again[0]["reprocessing"] == "replay-1" and again[0]["replay"] == "true"


def _reply(response):
    return dict(response.headers), response.data


def test_an_event_that_produced_nothing_is_looked_at_again() -> None:
    calls = []
    client = idempotent_client(lambda event: calls.append(event))  # e.g. a product still arriving
    assert post(client).status_code == 202
    assert post(client).status_code == 202
    assert len(calls) == 2


STRUCTURED = {"Content-Type": "application/cloudevents+json"}


def structured_body(**attributes: object) -> bytes:
    _, body = to_http(make_event(CREATED, source="/test"), structured=True)
    return json.dumps({**json.loads(body), **attributes}).encode()


@pytest.mark.parametrize("attribute", ["type", "source", "id"])
@pytest.mark.parametrize("value", [["a"], 5, {"a": 1}])
def test_attributes_of_the_wrong_json_type_are_a_400_that_says_so(attribute: str, value: object) -> None:
    response = client_for(lambda event: None).post("/", headers=STRUCTURED, data=structured_body(**{attribute: value}))
    assert response.status_code == 400
    assert response.json["error"]["code"] == "InvalidEvent"
    assert attribute in response.json["error"]["message"]


@pytest.mark.parametrize("structured", [False, True])
def test_deeply_nested_json_is_a_400_not_a_recursion_error(structured: bool) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    headers, _ = to_http(make_event(CREATED, source="/test"), structured=structured)
    response = client_for(lambda event: None).post("/", headers=headers, data=deep)
    assert response.status_code == 400
    assert "nested deeper" in response.json["error"]["message"]


def test_a_body_larger_than_any_event_is_a_413() -> None:
    headers, _ = to_http(make_event(CREATED, source="/test"))
    response = client_for(lambda event: None).post("/", headers=headers, data=b" " * (5 * 1024 * 1024))
    assert response.status_code == 413
    assert response.json["error"]["code"] == "EventTooLarge"


def test_a_key_with_a_newline_and_non_latin_1_characters_travels_in_headers_and_back() -> None:
    key = "inbox/Île\n中 50%.txt"
    odd = ObjectCreated(store="aws", bucket="rs-inbox", key=key, size=1, event_time=NOW)
    headers, body = to_http(make_event(odd, source="/test"))
    for value in headers.values():
        value.encode("ascii")  # what http.client and werkzeug can carry
        assert "\n" not in value
    seen: list[ObjectCreated] = []
    response = client_for(lambda event: seen.append(event) or REJECTED.model_copy(update={"name": key})).post(
        "/", headers=headers, data=body
    )
    assert response.status_code == 200
    assert seen[0].key == key
    assert parse_http(dict(response.headers), response.data)["subject"] == key
