"""The selection policies as catalog queries (SQLite and PostgreSQL): what production runs.

:mod:`shared.processing.policies` defines each policy over entries in memory; here the same policy is
one or two parameterised SQL statements over the catalog's ``products`` table, so the database does the
filtering, ordering and ``LIMIT`` on its ``(product_type, validity_start)`` index instead of the process
loading every auxiliary file of a type. Tests prove both forms choose the same entries.

Mapping of a catalog row to a :class:`~shared.processing.policies.Candidate`: validity start/stop are the
product's validity; the *creation date* is the catalog's ``publication_time`` — the time the entry was
made, which is what the reference's ``creationTime`` (Elasticsearch insertion) was. Rows without a
validity start cannot be placed in time and are never selected. A row without a validity stop is valid
until further notice (S1 AUX_CAL): its stop is +infinity, as in the pure form (``OPEN_END``), so the
conditions accept ``validity_stop IS NULL`` wherever a stop would be late enough, orderings put NULL
after every finite stop (``validity_stop IS NULL`` first, portable on both backends, whose NULL orders
differ), and the stop-ranked policies look for open-ended rows on their own before the indexed query.

Where a policy ranks by time arithmetic (BestCentredCover, LargestOverlap) the query compares exact
integer microseconds (SQLite) or exact intervals (PostgreSQL). BestCentredCover compares doubled
distances, ``|vStart + vStop - (W.start + W.stop)|``, which avoids halving; the pure form halves and
rounds to the microsecond, so the two could differ only on spans of an odd number of microseconds.
The two-sided "closest" policies run two indexed ``LIMIT 1`` queries (best before, best after) and
compare their distances here.

Only this module's own fixed SQL text is ever executed; every value travels as a parameter.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.catalog.database import CatalogDatabase
from shared.processing.policies import POLICIES, Candidate, UnknownPolicy, Window, full_coverage

_COLUMNS = "name, validity_start, validity_stop, publication_time, product_type"
# A NULL stop is +infinity: after every finite stop (SQLite sorts NULL first, PostgreSQL last: be explicit).
_IN_ORDER = " ORDER BY validity_start, validity_stop IS NULL, validity_stop, name"
_NEWEST = "publication_time DESC, name DESC"
_COVER = " AND validity_start <= {p} AND (validity_stop >= {p} OR validity_stop IS NULL)"
_INTERSECT = " AND validity_start < {p} AND (validity_stop > {p} OR validity_stop IS NULL)"
_OPEN = " AND validity_stop IS NULL"


@dataclass(frozen=True, slots=True)
class _Dialect:
    placeholder: str
    # Exact microseconds since the epoch of a validity column, for arithmetic (None: use native intervals).
    start_us: str | None
    stop_us: str | None


def _sqlite_micros(column: str) -> str:
    # Catalog times are fixed-width '2023-08-23T12:31:39.000000Z' text (shared/catalog/migrations/sqlite).
    seconds = f"CAST(strftime('%s', substr({column}, 1, 19)) AS INTEGER)"
    return f"({seconds} * 1000000 + CAST(substr({column}, 21, 6) AS INTEGER))"


_SQLITE = _Dialect("?", _sqlite_micros("validity_start"), _sqlite_micros("validity_stop"))
_POSTGRES = _Dialect("%s", None, None)


def _micros(value: datetime) -> int:
    delta = value.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class CatalogSelection:
    """Runs selection policies against the catalog at ``url`` (``sqlite:///...`` or ``postgresql://...``)."""

    def __init__(self, url: str) -> None:
        self.database = CatalogDatabase(url)
        self._dialect = _SQLITE if self.database.is_sqlite else _POSTGRES

    # -- connections ------------------------------------------------------------------------------

    @property
    def is_sqlite(self) -> bool:
        return self.database.is_sqlite

    def connection(self) -> AbstractContextManager[Any]:
        return self.database.connection()

    def close(self) -> None:
        self.database.close()

    def time_param(self, value: datetime) -> Any:
        return self.database.time_param(value)

    def time_value(self, stored: Any) -> datetime:
        return self.database.time_value(stored)

    def execute(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Run one of this package's fixed statements; ``{p}`` marks each parameter."""
        with self.database.connection() as db:
            return [tuple(row) for row in db.execute(self.database.sql(sql), tuple(params)).fetchall()]

    # -- selection --------------------------------------------------------------------------------

    def select(
        self,
        policy: str,
        product_types: str | Sequence[str],
        start: datetime,
        stop: datetime,
        t0: float = 0.0,
        t1: float = 0.0,
        *,
        satellite: str | None = None,
        min_results: int | None = None,
        max_results: int | None = None,
    ) -> list[Candidate]:
        """Run ``policy`` over the catalog entries of ``product_types`` for [start - t0, stop + t1].

        ``satellite``, when given, keeps that unit's entries and mission-wide ones (no satellite), as the
        reference searched "the satellite or ``_``".
        """
        name = policy.strip()
        if name not in POLICIES:
            raise UnknownPolicy(f"unknown selection policy {policy!r}; known: {', '.join(sorted(POLICIES))}")
        types = (product_types,) if isinstance(product_types, str) else tuple(product_types)
        if not types:
            return []
        w = Window(start, stop).widened(t0, t1)
        scope = _Scope(self, types, satellite)
        ws, we = self.time_param(w.start), self.time_param(w.stop)
        if name == "ValCover":
            return scope.rows(_COVER + _IN_ORDER, ws, we)
        if name in ("LatestValCover", "LatestValCoverLatestValidity"):
            found = scope.rows(_COVER + f" ORDER BY {_NEWEST} LIMIT 1", ws, we)
            if found or name == "LatestValCover":
                return found
            return scope.rows(_INTERSECT + f" ORDER BY validity_start DESC, {_NEWEST} LIMIT 1", we, ws)
        if name == "ValIntersect":
            return scope.rows(_INTERSECT + _IN_ORDER, we, ws)
        if name == "ValIntersectWithoutDuplicates":
            chosen = scope.newest_per_validity(we, ws)
            too_few = min_results is not None and len(chosen) < min_results
            too_many = max_results is not None and len(chosen) > max_results
            return [] if too_few or too_many else chosen
        if name == "LatestValIntersect":
            return scope.rows(_INTERSECT + f" ORDER BY {_NEWEST} LIMIT 1", we, ws)
        if name == "LatestValidity":
            return scope.rows(_INTERSECT + f" ORDER BY validity_start DESC, {_NEWEST} LIMIT 1", we, ws)
        if name == "ClosestStartValidity":
            return scope.closest("validity_start", w, tie_to_after=False)
        if name == "ClosestStopValidity":
            return scope.closest("validity_stop", w, tie_to_after=False)
        if name == "LatestStartValidity":
            return scope.rows(f" ORDER BY validity_start DESC, {_NEWEST} LIMIT 1")
        if name == "LatestStopValidity":
            # An open end is the latest stop of all; else the indexed latest finite stop.
            return scope.rows(f"{_OPEN} ORDER BY {_NEWEST} LIMIT 1") or scope.rows(
                f" AND validity_stop IS NOT NULL ORDER BY validity_stop DESC, {_NEWEST} LIMIT 1"
            )
        if name == "LatestValCoverClosest":
            return scope.rows(_COVER + f" ORDER BY validity_start DESC, {_NEWEST} LIMIT 1", ws, we)
        if name == "LatestValidityClosest":
            # Closest start to the centre; an equal distance goes to the later start (the one after).
            return scope.closest("validity_start", w, tie_to_after=True)
        if name == "FullCoverage":
            # The database finds the intersecting chain; whether it has a gap is a walk along it.
            return full_coverage(scope.rows(_INTERSECT + _IN_ORDER, we, ws), w)
        if name == "BestCentredCover":
            return scope.best_centred_cover(w)
        if name == "LargestOverlap":
            return scope.largest_overlap(w)
        raise AssertionError(f"policy {name} has no query form")  # POLICIES and this list must agree


class _Scope:
    """The rows of some product types (and satellite) with a validity: the base of every policy query."""

    def __init__(self, selection: CatalogSelection, types: tuple[str, ...], satellite: str | None) -> None:
        self._selection = selection
        marks = ", ".join("{p}" for _ in types)
        self._where = f" WHERE product_type IN ({marks}) AND validity_start IS NOT NULL"
        self._params: list[Any] = list(types)
        if satellite is not None:
            self._where += " AND (satellite = {p} OR satellite IS NULL)"
            self._params.append(satellite)

    def _candidates(self, rows: list[tuple[Any, ...]]) -> list[Candidate]:
        t = self._selection.time_value
        return [Candidate(r[0], t(r[1]), None if r[2] is None else t(r[2]), t(r[3]), r[4]) for r in rows]

    def rows(self, tail: str, *params: Any) -> list[Candidate]:
        sql = f"SELECT {_COLUMNS} FROM products{self._where}{tail}"
        return self._candidates(self._selection.execute(sql, [*self._params, *params]))

    def newest_per_validity(self, we: Any, ws: Any) -> list[Candidate]:
        ranked = (
            f"SELECT {_COLUMNS}, ROW_NUMBER() OVER (PARTITION BY validity_start, validity_stop"
            f" ORDER BY {_NEWEST}) AS newness FROM products{self._where}{_INTERSECT}"
        )
        sql = f"SELECT {_COLUMNS} FROM ({ranked}) AS ranked WHERE newness = 1{_IN_ORDER}"
        return self._candidates(self._selection.execute(sql, [*self._params, we, ws]))

    def closest(self, column: str, w: Window, *, tie_to_after: bool) -> list[Candidate]:
        centre = w.centre
        c = self._selection.time_param(centre)
        before = self.rows(f" AND {column} < {{p}} ORDER BY {column} DESC, {_NEWEST} LIMIT 1", c)
        after = self.rows(f" AND {column} >= {{p}} ORDER BY {column} ASC, {_NEWEST} LIMIT 1", c)
        if not after and column == "validity_stop":
            after = self.rows(f"{_OPEN} ORDER BY {_NEWEST} LIMIT 1")  # open-ended: the furthest after
        if not before or not after:
            return before or after
        at = (lambda e: e.validity_start) if column == "validity_start" else (lambda e: e.validity_stop)
        to_after, to_before = at(after[0]) - centre, centre - at(before[0])
        return after if to_after < to_before or (tie_to_after and to_after == to_before) else before

    def best_centred_cover(self, w: Window) -> list[Candidate]:
        s = self._selection
        ws, we = s.time_param(w.start), s.time_param(w.stop)
        dialect = s._dialect
        if dialect.start_us is not None:
            distance = f"abs({dialect.start_us} + {dialect.stop_us} - {{p}})"
            centre_params: tuple[Any, ...] = (_micros(w.start) + _micros(w.stop),)
        else:
            distance = "abs(extract(epoch FROM validity_start - {p}) + extract(epoch FROM validity_stop - {p}))"
            centre_params = (ws, we)
        # An open-ended entry's centre is infinitely far: after every finite one, then the newest.
        order = f" ORDER BY validity_stop IS NULL, {distance} ASC, {_NEWEST} LIMIT 1"
        return self.rows(_COVER + order, ws, we, *centre_params)

    def largest_overlap(self, w: Window) -> list[Candidate]:
        s = self._selection
        ws, we = s.time_param(w.start), s.time_param(w.stop)
        dialect = s._dialect
        if dialect.start_us is not None:
            # An open end reaches W.stop (SQLite's min() of a NULL is NULL: coalesce it first).
            length = f"min(coalesce({dialect.stop_us}, {{p}}), {{p}}) - max({dialect.start_us}, {{p}})"
            length_params: tuple[Any, ...] = (_micros(w.stop), _micros(w.stop), _micros(w.start))
        else:
            length = "LEAST(COALESCE(validity_stop, {p}), {p}) - GREATEST(validity_start, {p})"
            length_params = (we, we, ws)
        return self.rows(_INTERSECT + f" ORDER BY {length} DESC, {_NEWEST} LIMIT 1", we, ws, *length_params)


@dataclass(frozen=True, slots=True)
class CatalogObject:
    """A cataloged product as the preparation step needs it: where it lies and what it says."""

    name: str
    product_type: str
    satellite: str | None
    bucket: str
    key: str
    validity_start: datetime | None
    validity_stop: datetime | None
    attributes: dict[str, Any]  # attribute name -> value (the PRIP type dropped)
    family: str | None = None
    publication_time: datetime | None = None  # when it was cataloged: the reference's creation time


_OBJECT_COLUMNS = (
    "name, product_type, satellite, bucket, object_key, validity_start, validity_stop, attributes, family,"
    " publication_time"
)


def _attribute_values(stored: Any) -> dict[str, Any]:
    raw = json.loads(stored) if isinstance(stored, str | bytes) else (stored or {})
    return {k: v.get("value") if isinstance(v, dict) else v for k, v in raw.items()}


def _object(selection: CatalogSelection, row: tuple[Any, ...]) -> CatalogObject:
    t = selection.time_value
    return CatalogObject(
        name=row[0],
        product_type=row[1],
        satellite=row[2],
        bucket=row[3],
        key=row[4],
        validity_start=None if row[5] is None else t(row[5]),
        validity_stop=None if row[6] is None else t(row[6]),
        attributes=_attribute_values(row[7]),
        family=row[8],
        publication_time=None if row[9] is None else t(row[9]),
    )


def objects_named(selection: CatalogSelection, names: Sequence[str]) -> dict[str, CatalogObject]:
    """The cataloged products among ``names``, by name."""
    found: dict[str, CatalogObject] = {}
    unique = sorted(set(names))
    for first in range(0, len(unique), 500):  # bounded parameter lists
        chunk = unique[first : first + 500]
        marks = ", ".join("{p}" for _ in chunk)
        rows = selection.execute(f"SELECT {_OBJECT_COLUMNS} FROM products WHERE name IN ({marks})", chunk)
        found.update((row[0], _object(selection, row)) for row in rows)
    return found


def session_objects(selection: CatalogSelection, session_id: str) -> list[CatalogObject]:
    """Every cataloged DSIB and DSDB chunk whose name carries ``session_id`` (``DCS_<nn>_<id>_ch...``)."""
    # LIKE is only a prefilter ('_' matches any character); callers check the parsed session id.
    rows = selection.execute(
        f"SELECT {_OBJECT_COLUMNS} FROM products WHERE family = {{p}} AND name LIKE {{p}} ORDER BY name",
        ("EDRS_SESSION", f"DCS_%{session_id}_ch%"),
    )
    return [_object(selection, row) for row in rows]


def datatake_objects(
    selection: CatalogSelection, product_types: Sequence[str], unit: str, datatake_id: str
) -> list[CatalogObject]:
    """Cataloged S1 level products of ``product_types`` whose name carries unit ``S1A`` and ``datatake_id``."""
    if not product_types:
        return []
    marks = ", ".join("{p}" for _ in product_types)
    # LIKE is only a prefilter ('_' matches any character); callers check the parsed datatake id.
    rows = selection.execute(
        f"SELECT {_OBJECT_COLUMNS} FROM products WHERE product_type IN ({marks}) AND name LIKE {{p}} ORDER BY name",
        (*product_types, f"{unit}_%_{datatake_id}_%"),
    )
    return [_object(selection, row) for row in rows]


def objects_starting_between(
    selection: CatalogSelection, product_types: Sequence[str], start: datetime, stop: datetime
) -> list[CatalogObject]:
    """Cataloged products of ``product_types`` whose validity starts in [start, stop] (the validity index)."""
    if not product_types:
        return []
    marks = ", ".join("{p}" for _ in product_types)
    rows = selection.execute(
        f"SELECT {_OBJECT_COLUMNS} FROM products WHERE product_type IN ({marks})"
        " AND validity_start >= {p} AND validity_start <= {p} ORDER BY validity_start, name",
        (*product_types, selection.time_param(start), selection.time_param(stop)),
    )
    return [_object(selection, row) for row in rows]
