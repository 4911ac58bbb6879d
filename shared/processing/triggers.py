"""Production trigger rules, pure: when is what a job processes complete, and when does it time out.

* EDRS session (S1 AIOP, S3 ACQ; reference ``EdrsSessionProductValidator``): complete when both DSIBs
  are there and every chunk they list is; or when one DSIB is there, its channel is complete and the
  other channel has no chunk at all (a single-channel session). FIX: the reference accepted a single
  channel the moment it was complete, so a session whose second channel was merely late was processed
  with half its data; here the single-channel rule applies only after the minimal wait. Timeout:
  ``max(job creation + minimal wait, downlink end + session timeout)``, the downlink end being the latest
  DSIB stop; before any DSIB, the reference's provisional end "now + 3 h" from the job creation.
* Coverage (S3 MPC search, ``ThresholdGapHandler``): products of the main type cover the window when no
  gap longer than the tolerance lies between the window start, consecutive products and the window stop.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.processing.queries import CatalogObject
from shared.products.naming import UnknownProduct, recognise

# The reference's provisional downlink end for a session known only from its chunks
# (edrs.raw.nowOffsetForDefaultStopTime = PT3H).
PROVISIONAL_DOWNLINK = timedelta(hours=3)
CHANNELS = ("1", "2")


@dataclass(frozen=True, slots=True)
class SessionObject:
    object: CatalogObject
    session_id: str
    channel: str
    is_dsib: bool


@dataclass(frozen=True, slots=True)
class SessionState:
    complete: bool  # both channels complete
    single_channel: bool  # one DSIB, its channel complete, nothing at all on the other channel
    missing: tuple[str, ...]  # "DSIB ch2", chunk names; empty when complete
    start: datetime | None  # earliest DSIB start (the downlink)
    stop: datetime | None  # latest DSIB stop
    objects: tuple[SessionObject, ...]  # what is there, DSIBs first then chunks, by name


def session_id_of(name: str) -> str | None:
    try:
        product = recognise(name)
    except UnknownProduct:
        return None
    return product.name_field("session_id") if product.family == "EDRS_SESSION" else None


def session_objects_of(session_id: str, objects: Iterable[CatalogObject]) -> list[SessionObject]:
    found = []
    for o in objects:
        try:
            product = recognise(o.name)
        except UnknownProduct:
            continue
        if product.name_field("session_id") != session_id or product.name_field("channel") is None:
            continue  # a LIKE false positive, or the session folder
        channel = product.name_field("channel") or ""
        found.append(SessionObject(o, session_id, channel, product.product_type == "SESSION"))
    return found


def _listed_chunks(dsib: CatalogObject) -> list[str]:
    names = dsib.attributes.get("rawNames") or ""
    return [n for n in str(names).split(",") if n]


def session_state(objects: Sequence[SessionObject]) -> SessionState:
    dsibs = {o.channel: o for o in objects if o.is_dsib}
    chunks: dict[str, set[str]] = {c: set() for c in CHANNELS}
    for o in objects:
        if not o.is_dsib:
            chunks.setdefault(o.channel, set()).add(o.object.name)
    missing: list[str] = []
    for channel in CHANNELS:
        dsib = dsibs.get(channel)
        if dsib is None:
            missing.append(f"DSIB ch{channel}")
            continue
        missing.extend(n for n in _listed_chunks(dsib.object) if n not in chunks[channel])
    single_channel = False
    if len(dsibs) == 1:
        (channel,) = dsibs
        other = next(c for c in CHANNELS if c != channel)
        own_missing = [n for n in _listed_chunks(dsibs[channel].object) if n not in chunks[channel]]
        single_channel = not own_missing and not chunks[other]
    starts = [d.object.validity_start for d in dsibs.values() if d.object.validity_start is not None]
    stops = [d.object.validity_stop for d in dsibs.values() if d.object.validity_stop is not None]
    ordered = sorted(objects, key=lambda o: (not o.is_dsib, o.object.name))
    return SessionState(
        not missing, single_channel, tuple(missing), min(starts, default=None), max(stops, default=None), tuple(ordered)
    )


def session_timeout(
    created: datetime, downlink_end: datetime | None, timeout_s: float, minimal_wait_s: float
) -> datetime:
    end = downlink_end if downlink_end is not None else created + PROVISIONAL_DOWNLINK
    return max(created + timedelta(seconds=minimal_wait_s), end + timedelta(seconds=timeout_s))


def coverage_gaps(
    spans: Iterable[tuple[datetime, datetime]], start: datetime, stop: datetime, tolerance_s: float
) -> list[tuple[datetime, datetime]]:
    """The gaps longer than the tolerance in [start, stop] left by ``spans`` (none: covered)."""
    tolerance = timedelta(seconds=tolerance_s)
    gaps = []
    reach = start
    for s, e in sorted(spans):
        if e <= reach:
            continue
        if s - reach > tolerance:
            gaps.append((reach, min(s, stop)))
        reach = max(reach, e)
        if reach >= stop:
            break
    if stop - reach > tolerance:
        gaps.append((reach, stop))
    return [g for g in gaps if g[0] < stop]
