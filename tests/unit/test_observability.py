"""Trace context on events, JSON log lines with their context, and Prometheus metrics of a function."""

from __future__ import annotations

import io
import json
import logging

import flask
from prometheus_client.parser import text_string_to_metric_families

from events import ObjectCreated, parse_http, to_http
from events.http import make_event
from shared.logs import JsonFormatter
from shared.observability import tracing
from shared.observability.metrics import REGISTRY
from shared.runtime import RetryLater, event_endpoint
from shared.server import Observed
from tests.unit.test_runtime import CREATED, NOW, REJECTED

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_traceparent_values_are_parsed_strictly() -> None:
    context = tracing.parse(PARENT)
    assert context == tracing.TraceContext("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", True)
    assert context.header() == PARENT
    for bad in ("", "01-" + PARENT[3:], PARENT[:-1], "00-" + "0" * 32 + "-b7ad6b7169203331-01", "garbage", None):
        assert tracing.parse(bad) is None


def test_every_object_of_a_product_starts_the_same_trace() -> None:
    manifest = tracing.root_for("S1A_IW_RAW__0SDV_X.SAFE/manifest.safe")
    measurement = tracing.root_for("S1A_IW_RAW__0SDV_X.SAFE/measurement/s1a.dat")
    assert manifest.trace_id == measurement.trace_id == tracing.product_trace("S1A_IW_RAW__0SDV_X.SAFE").trace_id
    assert manifest.span_id != measurement.span_id
    assert tracing.root_for("S1B_OTHER.SAFE/manifest.safe").trace_id != manifest.trace_id
    assert tracing.root_for(None).trace_id != tracing.root_for(None).trace_id  # no subject: a random trace


def app_for(handler, function: str = "test") -> flask.Flask:
    app = flask.Flask(__name__)
    view = event_endpoint(function, handler, accepts=(ObjectCreated,))
    app.add_url_rule("/", "run", lambda: view(flask.request), methods=["POST"])
    return app


def post(app: flask.Flask, **extensions: str) -> flask.Response:
    headers, body = to_http(make_event(CREATED, source="/test", extensions=extensions or None))
    return app.test_client().post("/", headers=headers, data=body)


def reply_trace(response: flask.Response) -> tracing.TraceContext:
    reply = parse_http(dict(response.headers), response.data)
    context = tracing.parse(reply[tracing.TRACEPARENT])
    assert context is not None
    return context


def test_a_reply_continues_the_trace_of_the_event_it_answers() -> None:
    context = reply_trace(post(app_for(lambda event: REJECTED), traceparent=PARENT))
    assert context.trace_id == PARENT.split("-")[1]
    assert context.span_id != PARENT.split("-")[2]  # its parent is the handling's span, not the sender's


def test_an_event_without_trace_context_starts_its_products_trace() -> None:
    context = reply_trace(post(app_for(lambda event: REJECTED)))
    assert context.trace_id == tracing.product_trace(CREATED.key).trace_id


def test_an_event_keeps_a_trace_it_has_and_gets_the_current_one_otherwise() -> None:
    given = tracing.stamp(make_event(REJECTED, source="/test", extensions={"traceparent": PARENT}))
    assert given[tracing.TRACEPARENT] == PARENT
    with tracing.active(tracing.parse(PARENT)):
        assert tracing.stamp(make_event(REJECTED, source="/test"))[tracing.TRACEPARENT] == PARENT
        tracing.adopt("00-11111111111111111111111111111111-2222222222222222-01")
        adopted = tracing.parse(tracing.stamp(make_event(REJECTED, source="/test"))[tracing.TRACEPARENT])
        assert adopted is not None and adopted.trace_id == "1" * 32
    assert tracing.current() is None


def test_log_lines_of_a_handling_carry_the_event_the_product_and_the_trace() -> None:
    def handler(event: ObjectCreated) -> None:
        logging.getLogger("refsys.test").info("working on %s", event.key)

    app = app_for(handler, function="ingest")  # configures the process's logging: INFO, JSON
    stream = io.StringIO()
    capture = logging.StreamHandler(stream)
    capture.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(capture)
    try:
        post(app, traceparent=PARENT)
    finally:
        logging.getLogger().removeHandler(capture)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    working = next(line for line in lines if line["message"] == "working on x")
    assert working["function"] == "ingest" and working["event_type"] == ObjectCreated.TYPE
    assert working["product"] == "x" and working["trace_id"] == PARENT.split("-")[1]
    assert working["event_id"] == CREATED.event_id()
    end = lines[-1]
    assert end["message"] == "handled: done" and end["status"] == "OK" and end["task"] == "ingest"
    assert isinstance(end["duration_in_seconds"], float) and end["trace_id"] == working["trace_id"]


def observed(app: flask.Flask) -> flask.Flask:
    app.wsgi_app = Observed(app.wsgi_app, "observed-test")  # type: ignore[method-assign]
    return app


def metrics(app: flask.Flask) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples of ``/metrics`` as the Prometheus client's own parser reads them."""
    response = app.test_client().get("/metrics")
    assert response.status_code == 200 and response.content_type.startswith("text/plain")
    families = text_string_to_metric_families(response.get_data(as_text=True))
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in families for s in family.samples}


def test_metrics_count_events_by_outcome_and_products_by_what_became_of_them() -> None:
    labels = (("function", "metrics-test"), ("outcome", "reply"), ("type", ObjectCreated.TYPE))
    quarantined = (("family", "unknown"), ("outcome", "quarantined"))
    retried = (("function", "metrics-test"), ("outcome", "retry"), ("type", ObjectCreated.TYPE))
    app = observed(app_for(lambda event: REJECTED, function="metrics-test"))
    before = metrics(app)
    post(app)
    post(app_for(lambda event: (_ for _ in ()).throw(RetryLater("later")), function="metrics-test"))
    after = metrics(app)
    assert after[("refsys_events_handled_total", labels)] == before.get(("refsys_events_handled_total", labels), 0) + 1
    assert (
        after[("refsys_events_handled_total", retried)] == before.get(("refsys_events_handled_total", retried), 0) + 1
    )
    assert after[("refsys_products_total", quarantined)] == before.get(("refsys_products_total", quarantined), 0) + 1
    requests = ("refsys_http_requests_total", (("function", "observed-test"), ("method", "POST"), ("status", "200")))
    assert after[requests] == before.get(requests, 0) + 1


def test_timeliness_is_observed_per_product_type_and_stage() -> None:
    from datetime import timedelta

    from shared.observability.metrics import observe_timeliness

    def count(stage: str) -> float:
        return (
            REGISTRY.get_sample_value(
                "refsys_timeliness_seconds_count", {"product_type": "OL_1_EFR___", "stage": stage}
            )
            or 0.0
        )

    before = count("inbox_to_catalog"), count("sensing_to_inbox")
    observe_timeliness("OL_1_EFR___", NOW, NOW + timedelta(hours=1), NOW + timedelta(hours=1, seconds=5))
    observe_timeliness("OL_1_EFR___", None, NOW, NOW + timedelta(seconds=5))  # no sensing time: one stage
    assert (count("inbox_to_catalog"), count("sensing_to_inbox")) == (before[0] + 2, before[1] + 1)


def test_a_failing_handler_is_counted_as_failed() -> None:
    response = post(app_for(lambda event: (_ for _ in ()).throw(ValueError("boom")), function="metrics-test"))
    assert response.status_code == 500
    sample = REGISTRY.get_sample_value(
        "refsys_events_handled_total", {"function": "metrics-test", "type": ObjectCreated.TYPE, "outcome": "failed"}
    )
    assert sample is not None and sample >= 1
