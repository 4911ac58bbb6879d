"""The Grafana dashboards of ``knative/dashboards``: every query parses and asks for metrics the functions export."""

from __future__ import annotations

import json
import re
from typing import Any

import promql_parser
import pytest

from shared.observability import metrics
from tests.conftest import REPO_ROOT

DASHBOARDS = sorted((REPO_ROOT / "knative" / "dashboards").glob("*.json"))
# Series of the broker's collector (read at each scrape, not declared as metric objects).
COLLECTED = {"refsys_broker_deliveries": {"trigger", "state"}, "refsys_broker_retries": {"trigger"}}


def exported() -> dict[str, set[str]]:
    """Series name -> its labels, as Prometheus stores what the functions' /metrics serve."""
    series = dict(COLLECTED)
    for metric in (metrics.EVENTS, metrics.HANDLING, metrics.REQUESTS, metrics.REQUEST_TIME, metrics.PRODUCTS,
                   metrics.JOBS, metrics.JOB_TIME, metrics.TIMELINESS):  # fmt: skip
        labels = set(metric._labelnames)
        if metric._type == "counter":
            series[f"{metric._name}_total"] = labels
        else:
            series.update({f"{metric._name}_{s}": labels for s in ("sum", "count")})
            series[f"{metric._name}_bucket"] = labels | {"le"}
    return series


def queries(dashboard: dict[str, Any]) -> list[str]:
    found = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if (match := re.fullmatch(r"label_values\((\w+), (\w+)\)", variable.get("definition", ""))) is not None:
            found.append(f"count by ({match[2]}) ({match[1]})")
    return found


def used(expr: str) -> list[tuple[str, set[str]]]:
    """(series, labels the query reads of it) of every selector; aggregation labels count for all."""
    grafana = expr.replace("$__rate_interval", "5m").replace("$__range", "1h")
    tree = promql_parser.parse(re.sub(r"\$(\w+)", r"\1", grafana))
    selectors: list[Any] = []
    grouped: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            selectors.append(node)
        if isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            grouped.update(node.modifier.labels)

    promql_parser.walk(tree, visit)
    return [(s.name, {m.name for m in s.matchers.matchers} | grouped) for s in selectors]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_query_reads_series_the_functions_export(path: Any) -> None:
    dashboard = json.loads(path.read_text())
    series = exported()
    asked = queries(dashboard)
    assert asked
    for expr in asked:
        for name, labels in used(expr):
            assert name in series, f"{path.name}: {expr!r} reads {name}, which no function exports"
            assert labels <= series[name], f"{path.name}: {expr!r} reads labels {labels - series[name]} of {name}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_panels_have_one_id_each_and_the_chosen_datasource(path: Any) -> None:
    dashboard = json.loads(path.read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_a_query_of_a_metric_nobody_exports_is_caught() -> None:
    assert used('sum by (function) (rate(refsys_events_total{kind="x"}[$__rate_interval]))') == [
        ("refsys_events_total", {"kind", "function"})
    ]
    assert "refsys_events_total" not in exported()
