"""Prometheus metrics of a function process (``/metrics`` on every function server, see ``server``).

One registry per process: a function server runs one gunicorn worker with threads, so every request of a
function counts in the same place. The local broker exposes its backlog and retries per Trigger on its own
``/metrics`` (``broker_collector``); on a cluster the Knative broker's own metrics do that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# Handling times of events and requests: a cold catalog write to a long zip download.
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
# Timeliness and job durations: from seconds to the 30 days of S3's NTC products.
_DELAYS = (1, 10, 60, 300, 900, 1800, 3600, 2 * 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 30 * 86400)

REGISTRY = CollectorRegistry()

EVENTS = Counter(
    "refsys_events_handled",
    "CloudEvents handled, by function, event type and outcome (reply, done, retry, rejected, failed, duplicate)",
    ["function", "type", "outcome"],
    registry=REGISTRY,
)
HANDLING = Histogram(
    "refsys_event_handling_seconds", "Time to handle one event", ["function", "type"],
    buckets=_SECONDS, registry=REGISTRY,
)  # fmt: skip
REQUESTS = Counter(
    "refsys_http_requests", "HTTP requests, by function, method and status", ["function", "method", "status"],
    registry=REGISTRY,
)  # fmt: skip
REQUEST_TIME = Histogram(
    "refsys_http_request_seconds", "Time to answer an HTTP request (a streamed body not included)", ["function"],
    buckets=_SECONDS, registry=REGISTRY,
)  # fmt: skip
PRODUCTS = Counter(
    "refsys_products",
    "Products by what happened to them (ingested, quarantined, cataloged, evicted) and product family",
    ["outcome", "family"],
    registry=REGISTRY,
)
JOBS = Counter(
    "refsys_jobs", "Processing runs ended, by processor and outcome", ["processor", "outcome"], registry=REGISTRY
)
JOB_TIME = Histogram(
    "refsys_job_seconds", "Duration of a processing run, download to upload", ["processor", "outcome"],
    buckets=_DELAYS, registry=REGISTRY,
)  # fmt: skip
TIMELINESS = Histogram(
    "refsys_timeliness_seconds",
    "Delays of cataloged products by product type and stage (sensing_to_inbox, inbox_to_catalog, sensing_to_catalog)",
    ["product_type", "stage"],
    buckets=_DELAYS,
    registry=REGISTRY,
)


def broker_collector(stats: Callable[[], dict[str, Any]]) -> Collector:
    """Backlog (deliveries per state) and retries per Trigger, read from the broker's queue at each scrape."""

    class BrokerCollector(Collector):
        def collect(self) -> Iterator[GaugeMetricFamily]:
            current = stats()
            backlog = GaugeMetricFamily(
                "refsys_broker_deliveries", "Deliveries per Trigger and state", labels=["trigger", "state"]
            )
            retries = GaugeMetricFamily(
                "refsys_broker_retries", "Delivery attempts beyond the first, per Trigger", labels=["trigger"]
            )
            for trigger, states in sorted(current["per_trigger"].items()):
                for state, count in sorted(states.items()):
                    backlog.add_metric([trigger, state], count)
                retries.add_metric([trigger], current.get("retries", {}).get(trigger, 0))
            yield backlog
            yield retries

    return BrokerCollector()


# Replies that say what became of a product, and the outcome they count as.
_PRODUCT_OUTCOMES = {
    "org.refsys.product.ingested.v1": "ingested",
    "org.refsys.product.rejected.v1": "quarantined",
    "org.refsys.product.cataloged.v1": "cataloged",
    "org.refsys.product.evicted.v1": "evicted",
}


def observe(function: str, event: Any, outcome: str, reply: Any, seconds: float) -> None:
    """Count one handled event (and, from its reply, what became of a product: once, not per redelivery)."""
    EVENTS.labels(function, event["type"], outcome).inc()
    HANDLING.labels(function, event["type"]).observe(seconds)
    if outcome == "reply" and (product_outcome := _PRODUCT_OUTCOMES.get(reply["type"])) is not None:
        family = reply.get("productfamily") or reply.get("mission") or "unknown"
        PRODUCTS.labels(product_outcome, str(family)).inc()


def observe_timeliness(product_type: str, sensing_stop: Any, inbox: Any, cataloged: Any) -> None:
    """A newly cataloged product's delays (datetimes; a missing one leaves its stages out)."""
    stages = {
        "sensing_to_inbox": (sensing_stop, inbox),
        "inbox_to_catalog": (inbox, cataloged),
        "sensing_to_catalog": (sensing_stop, cataloged),
    }
    for stage, (start, end) in stages.items():
        if start is not None and end is not None:
            TIMELINESS.labels(product_type, stage).observe(max((end - start).total_seconds(), 0.0))
