"""Trigger filters: legacy attributes and the Subscriptions API dialects, as Knative evaluates them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from shared.bus.filters import FilterError, UnsupportedFilter, matches, validate_filters
from shared.bus.manifests import Destination, Ref, Trigger, load_topology

KNATIVE_DIR = Path(__file__).parents[2] / "knative" / "overlays" / "dev"

EVENT: dict[str, Any] = {
    "specversion": "1.0",
    "id": "e-1",
    "source": "/storage/rs-inbox",
    "type": "org.refsys.storage.object.created.v1",
    "subject": "S2A_MSIL1C_20240101.zip",
    "bucket": "rs-inbox",
    "mission": "S2A",
    "sequence": 7,
    "final": True,
    "empty": "",
}


def trigger(*, attributes: Mapping[str, str] | None = None, filters: list[dict[str, Any]] | None = None) -> Trigger:
    validate_filters(filters or [])
    return Trigger(
        name="t",
        namespace="ns",
        broker="default",
        subscriber=Destination(Ref("Service", "svc")),
        filter_attributes=attributes,
        filters=tuple(filters or ()),
    )


LEGACY_CASES = [
    ("no filter at all matches everything", None, True),
    ("empty attributes match everything", {}, True),
    ("one attribute equal", {"type": "org.refsys.storage.object.created.v1"}, True),
    ("all attributes equal", {"type": "org.refsys.storage.object.created.v1", "bucket": "rs-inbox"}, True),
    ("one attribute differs", {"type": "org.refsys.storage.object.created.v1", "bucket": "other"}, False),
    ("no prefix semantics", {"type": "org.refsys"}, False),
    ("case-sensitive", {"bucket": "RS-INBOX"}, False),
    ("missing attribute", {"tile": "T31TCJ"}, False),
    ("empty value = any value, attribute present", {"mission": ""}, True),
    ("empty value needs the attribute", {"tile": ""}, False),
    ("empty value needs a non-empty attribute", {"empty": ""}, False),
    ("integer extension compared as string", {"sequence": "7"}, True),
    ("boolean extension compared as string", {"final": "true"}, True),
]


@pytest.mark.parametrize(("case", "attributes", "expected"), LEGACY_CASES, ids=[c[0] for c in LEGACY_CASES])
def test_legacy_attribute_filter(case: str, attributes: dict[str, str] | None, expected: bool) -> None:
    assert matches(trigger(attributes=attributes), EVENT) is expected


NEW_CASES: list[tuple[str, list[dict[str, Any]], bool]] = [
    ("exact", [{"exact": {"bucket": "rs-inbox"}}], True),
    ("exact differs", [{"exact": {"bucket": "rs-inbox2"}}], False),
    ("exact is not prefix", [{"exact": {"mission": "S2"}}], False),
    ("exact several pairs all hold", [{"exact": {"bucket": "rs-inbox", "mission": "S2A"}}], True),
    ("exact several pairs one fails", [{"exact": {"bucket": "rs-inbox", "mission": "S1A"}}], False),
    ("exact missing attribute", [{"exact": {"tile": "x"}}], False),
    ("exact integer stringified", [{"exact": {"sequence": 7}}], True),
    ("prefix", [{"prefix": {"type": "org.refsys.storage."}}], True),
    ("prefix differs", [{"prefix": {"type": "org.refsys.product."}}], False),
    ("prefix is case-sensitive", [{"prefix": {"mission": "s2"}}], False),
    ("prefix missing attribute", [{"prefix": {"tile": ""}}], False),
    ("suffix", [{"suffix": {"subject": ".zip"}}], True),
    ("suffix differs", [{"suffix": {"subject": ".SAFE"}}], False),
    ("list entries are ANDed", [{"exact": {"bucket": "rs-inbox"}}, {"prefix": {"mission": "S2"}}], True),
    ("list AND one fails", [{"exact": {"bucket": "rs-inbox"}}, {"prefix": {"mission": "S1"}}], False),
    ("all", [{"all": [{"prefix": {"mission": "S"}}, {"suffix": {"mission": "A"}}]}], True),
    ("all one fails", [{"all": [{"prefix": {"mission": "S"}}, {"suffix": {"mission": "B"}}]}], False),
    ("any", [{"any": [{"prefix": {"mission": "S1"}}, {"prefix": {"mission": "S2"}}]}], True),
    ("any none holds", [{"any": [{"prefix": {"mission": "S1"}}, {"prefix": {"mission": "S3"}}]}], False),
    ("not", [{"not": {"exact": {"bucket": "other"}}}], True),
    ("not of a match", [{"not": {"exact": {"bucket": "rs-inbox"}}}], False),
    ("not of a missing attribute", [{"not": {"exact": {"tile": "x"}}}], True),
    (
        "nested not(any(...)) inside all",
        [{"all": [{"exact": {"type": EVENT["type"]}}, {"not": {"any": [{"prefix": {"mission": "S1"}}]}}]}],
        True,
    ),
    (
        "nested any(all(...), ...)",
        [
            {
                "any": [
                    {"all": [{"exact": {"bucket": "x"}}, {"exact": {"mission": "S2A"}}]},
                    {"not": {"suffix": {"subject": ".zip"}}},
                ]
            }
        ],
        False,
    ),
]


@pytest.mark.parametrize(("case", "filters", "expected"), NEW_CASES, ids=[c[0] for c in NEW_CASES])
def test_subscriptions_api_dialects(case: str, filters: list[dict[str, Any]], expected: bool) -> None:
    assert matches(trigger(filters=filters), EVENT) is expected


PRECEDENCE_CASES = [
    ("filters win over a matching legacy filter", {"bucket": "rs-inbox"}, [{"exact": {"bucket": "x"}}], False),
    ("filters win over a failing legacy filter", {"bucket": "x"}, [{"exact": {"bucket": "rs-inbox"}}], True),
    ("empty filters leave the legacy filter in charge", {"bucket": "x"}, [], False),
]


@pytest.mark.parametrize(
    ("case", "attributes", "filters", "expected"), PRECEDENCE_CASES, ids=[c[0] for c in PRECEDENCE_CASES]
)
def test_filters_take_precedence_over_filter(
    case: str, attributes: dict[str, str], filters: list[dict[str, Any]], expected: bool
) -> None:
    assert matches(trigger(attributes=attributes, filters=filters), EVENT) is expected


INVALID_CASES: list[tuple[str, list[Any], type[Exception], str]] = [
    ("cesql is refused", [{"cesql": "mission LIKE 'S2%'"}], UnsupportedFilter, "CESQL"),
    ("nested cesql is refused", [{"any": [{"cesql": "true"}]}], UnsupportedFilter, "CESQL"),
    ("unknown dialect", [{"regex": {"type": ".*"}}], FilterError, "unknown filter dialect 'regex'"),
    ("two dialects in one entry", [{"exact": {"a": "1"}, "prefix": {"b": "2"}}], FilterError, "exactly one"),
    ("no dialect", [{}], FilterError, "exactly one"),
    ("empty all", [{"all": []}], FilterError, "exactly one"),
    ("all is not a list", [{"all": {"exact": {"a": "b"}}}], FilterError, "non-empty list"),
    ("bad attribute name", [{"exact": {"Mission": "S2"}}], FilterError, "invalid attribute name"),
    ("value is a map", [{"prefix": {"mission": {"a": 1}}}], FilterError, "must be a string"),
    ("entry is not a map", ["type=x"], FilterError, "must be a mapping"),
]


@pytest.mark.parametrize(("case", "filters", "error", "message"), INVALID_CASES, ids=[c[0] for c in INVALID_CASES])
def test_invalid_filters_are_refused(case: str, filters: list[Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        validate_filters(filters)


def test_unsupported_filter_is_a_filter_error() -> None:
    assert issubclass(UnsupportedFilter, FilterError)
    assert issubclass(FilterError, ValueError)


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"type": "org.refsys.product.ingested.v1", "mission": "S2B"}, True),
        ({"type": "org.refsys.product.ingested.v1", "mission": "S3A"}, True),
        ({"type": "org.refsys.product.ingested.v1", "mission": "S5P"}, False),
        ({"type": "org.refsys.product.ingested.v1"}, False),
        ({"type": "org.refsys.storage.object.created.v1", "mission": "S2B"}, False),
    ],
)
def test_repository_catalog_trigger(attributes: dict[str, str], expected: bool) -> None:
    topology = load_topology(KNATIVE_DIR)
    assert matches(topology.triggers["catalog-ingested-products"], attributes) is expected
