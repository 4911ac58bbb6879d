"""Delivery policy (retry math, retryable statuses, dead-letter extensions) and the wire format."""

from __future__ import annotations

import base64
import json

import pytest
from cloudevents.http import CloudEvent, from_http

from shared.bus.codec import InvalidEvent, data_bytes, from_cloudevent, parse_http, to_binary
from shared.bus.delivery import DEFAULT_BACKOFF_DELAY, RetryPlan, backoff_seconds, error_extensions, is_retryable
from shared.bus.manifests import DeliverySpec


@pytest.mark.parametrize(
    ("policy", "delay", "index", "expected"),
    [
        ("exponential", 0.2, 0, 0.2),
        ("exponential", 0.2, 1, 0.4),
        ("exponential", 0.2, 2, 0.8),
        ("exponential", 0.2, 9, 102.4),  # the 10th retry of the cluster default
        ("exponential", 0.5, 4, 8.0),
        ("linear", 0.5, 0, 0.0),  # the first linear retry is immediate
        ("linear", 0.5, 1, 0.5),
        ("linear", 0.5, 4, 2.0),
    ],
)
def test_backoff_seconds(policy: str, delay: float, index: int, expected: float) -> None:
    assert backoff_seconds(policy, delay, index) == pytest.approx(expected)  # type: ignore[arg-type]


def test_backoff_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        backoff_seconds("exponential", 1.0, -1)
    with pytest.raises(ValueError):
        backoff_seconds("fibonacci", 1.0, 0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (None, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (404, True),
        (408, True),
        (409, True),
        (429, True),
        (400, False),
        (401, False),
        (403, False),
        (410, False),
        (413, False),
        (422, False),
        (301, False),
        (302, False),
        (100, False),
    ],
)
def test_is_retryable(status: int | None, retryable: bool) -> None:
    assert is_retryable(status) is retryable


def test_retry_plan_schedule_and_exhaustion() -> None:
    plan = RetryPlan.from_spec(DeliverySpec(retry=3, backoff_policy="exponential", backoff_delay=0.5))
    assert plan.total_attempts == 4
    assert plan.schedule() == [0.5, 1.0, 2.0]
    assert [plan.wait_after(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, None]


def test_retry_plan_defaults() -> None:
    plan = RetryPlan.from_spec(None)
    assert (plan.retry, plan.policy, plan.delay) == (0, "exponential", DEFAULT_BACKOFF_DELAY)
    assert plan.wait_after(1) is None
    assert RetryPlan.from_spec(DeliverySpec(retry=2)).schedule() == [0.2, 0.4]


def test_error_extensions() -> None:
    ext = error_extensions("http://127.0.0.1:1/ingest", 503, b"busy")
    assert ext == {
        "knativeerrordest": "http://127.0.0.1:1/ingest",
        "knativeerrorcode": 503,
        "knativeerrordata": base64.b64encode(b"busy").decode(),
    }
    long = error_extensions("u", 500, b"x" * 5000)["knativeerrordata"]
    assert isinstance(long, str)
    assert len(long) == 1024  # base64 first, then truncated to 1024 characters
    assert long == base64.b64encode(b"x" * 5000).decode()[:1024]
    assert error_extensions("u", None, b"") == {"knativeerrordest": "u", "knativeerrorcode": 0}


# -- wire format: data goes out exactly as it came in -----------------------------------------------
BINARY_HEADERS = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("text/plain", b"hello"), ("application/json", b'{ "a" : 1 }'), ("application/octet-stream", bytes(range(256)))],
)
def test_binary_data_is_delivered_byte_for_byte(content_type: str, body: bytes) -> None:
    record = parse_http({**BINARY_HEADERS, "Content-Type": content_type, "ce-mission": "S2A"}, body)
    headers, out = to_binary(record)
    assert out == body
    assert headers["content-type"] == content_type
    assert headers["ce-mission"] == "S2A"


def test_structured_data_is_delivered_as_json_or_text() -> None:
    structured = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}
    as_json = parse_http(
        {"content-type": "application/cloudevents+json"},
        json.dumps({**structured, "datacontenttype": "application/json", "data": {"k": [1]}}).encode(),
    )
    assert json.loads(data_bytes(as_json)) == {"k": [1]}
    as_text = parse_http(
        {"content-type": "application/cloudevents+json"},
        json.dumps({**structured, "datacontenttype": "text/plain", "data": "hello"}).encode(),
    )
    assert data_bytes(as_text) == b"hello"  # not re-quoted as the JSON string "hello"


def test_sdk_event_round_trip() -> None:
    event = CloudEvent({"type": "t", "source": "/s", "mission": "S1A", "datacontenttype": "application/json"}, {"a": 1})
    headers, body = to_binary(from_cloudevent(event), {"knativeerrorcode": 503})
    back = from_http(headers, body)
    assert back["id"] == event["id"]
    assert back["mission"] == "S1A"
    assert back["knativeerrorcode"] == "503"
    assert back.data == {"a": 1}


def test_non_ascii_attributes_are_percent_encoded_in_headers() -> None:
    record = from_cloudevent(CloudEvent({"type": "t", "source": "/s", "subject": "Île 50%"}))
    headers, _ = to_binary(record)
    assert headers["ce-subject"] == "%C3%8Ele%2050%25"  # space and "%" too, as the HTTP binding says
    headers["ce-subject"].encode("ascii")


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        ({"content-type": "application/json"}, b'{"a": 1}', "not a CloudEvent"),
        ({k: v for k, v in BINARY_HEADERS.items() if k != "ce-type"}, b"", "missing header.*ce-type"),
        ({**BINARY_HEADERS, "ce-specversion": "0.1"}, b"", "unsupported specversion"),
        ({**BINARY_HEADERS, "ce-bad_name": "x"}, b"", "invalid attribute name"),
        ({**BINARY_HEADERS, "ce-time": "yesterday"}, b"", "RFC 3339"),
        ({"content-type": "application/cloudevents+json"}, b"{nope", "not valid JSON"),
        ({"content-type": "application/cloudevents+json"}, b"[1]", "JSON object"),
        ({"content-type": "application/cloudevents+json"}, b'{"specversion": "1.0", "id": "1"}', "source, type"),
        (
            {"content-type": "application/cloudevents+json"},
            b'{"specversion": "1.0", "id": "1", "source": "s", "type": "t", "data_base64": "!!"}',
            "base64",
        ),
        ({"content-type": "application/cloudevents-batch+json"}, b"[]", "batch"),
    ],
)
def test_invalid_messages_say_what_is_wrong(headers: dict[str, str], body: bytes, message: str) -> None:
    with pytest.raises(InvalidEvent, match=message):
        parse_http(headers, body)
