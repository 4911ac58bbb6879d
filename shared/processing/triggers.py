"""Production trigger rules, pure: when is what a job processes complete, and when does it time out.

* EDRS session (S1 AIOP, S3 ACQ; reference ``EdrsSessionProductValidator``): complete when both DSIBs
  are there and every chunk they list is; or when one DSIB is there, its channel is complete and the
  other channel has no chunk at all (a single-channel session). FIX: the reference accepted a single
  channel the moment it was complete, so a session whose second channel was merely late was processed
  with half its data; here the single-channel rule applies only after the minimal wait. Timeout:
  ``max(job creation + minimal wait, downlink end + session timeout)``, the downlink end being the latest
  DSIB stop; before any DSIB, the reference's provisional end "now + 3 h" from the job creation.
* Coverage (S3 MPC search, ``ThresholdGapHandler``): products of the covering types cover the window when
  no gap longer than the tolerance lies between the window start, consecutive products and the window stop.
* S1 L0 segments (reference ``L0SegmentTypeAdapter``): one job per datatake (unit + datatake id); per
  polarisation the newest segment per validity start is kept; a polarisation is covered by a segment
  whose consolidation is FULL, or by a chain that starts with a BEGIN segment, ends with an END segment
  and has no gap. The polarisations must be a valid set: SH or SV alone, VV+VH or HH+HV. Timeout:
  ``max(job creation + minimal wait, sensing stop + timeout)``; at it the job goes with its gaps.
  FIXES: the reference compared each segment's start with the *previous* segment's stop, so a segment
  lying inside a longer one made a false gap (here: the furthest stop reached so far), and took the END
  from the segment that starts last rather than the one that reaches furthest; a FULL segment among
  others covered nothing (here it covers its polarisation alone).
* S2 datastrips (reference ``pw-l1s``, §3.6): one job per L0 datastrip; its granules are the L0 granules
  whose ``datastripId`` names it. The reference waited for every granule the datastrip metadata lists;
  the catalog keeps no such list, so here the granules of each of the expected detectors must cover the
  datastrip's sensing window (a granule covers its sensing time plus one granule duration) with no gap
  longer than the tolerance. FIX: the reference's S2 items never timed out; here they go at their timeout
  with what is there, saying which detectors fell short.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.processing.queries import CatalogObject
from shared.products.naming import ProductName, UnknownProduct, recognise

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


# -- S1 L0 segments ------------------------------------------------------------------------------------

SINGLE_POLARISATIONS = frozenset({"SH", "SV"})
DUAL_POLARISATIONS = (frozenset({"VV", "VH"}), frozenset({"HH", "HV"}))
_PARTNER = {"VV": "VH", "VH": "VV", "HH": "HV", "HV": "HH"}
# Where the sensing position of a segment in its datatake is written (S1PRO-1135: START in older products).
_SENSING_POSITIONS = {"BEGIN": "BEGIN", "START": "BEGIN", "CONTINUE": "CONTINUE", "END": "END", "FULL": "FULL"}


@dataclass(frozen=True, slots=True)
class Segment:
    object: CatalogObject
    datatake: str  # unit and datatake id, "S1A_038B5E": what the job processes
    polarisation: str
    consolidation: str | None  # productConsolidation: FULL, PARTIAL, ...
    sensing: str | None  # productSensingConsolidation: BEGIN, CONTINUE, END (FULL)


@dataclass(frozen=True, slots=True)
class SegmentState:
    complete: bool
    missing: tuple[str, ...]  # what keeps the datatake incomplete, in words
    start: datetime | None
    stop: datetime | None
    segments: tuple[Segment, ...]  # the kept segments, by polarisation then start


def _s1_raw(name: str) -> ProductName | None:
    try:
        product = recognise(name)
    except UnknownProduct:
        return None
    if product.mission != "S1" or product.name_field("kind") != "RAW" or product.name_field("product_class") != "S":
        return None
    return product


def datatake_of(name: str) -> str | None:
    """``S1A_038B5E`` for an S1 L0 standard product (segment or slice) of that unit and datatake."""
    product = _s1_raw(name)
    if product is None or product.satellite is None:
        return None
    return f"S1{product.satellite}_{product.name_field('datatake_id')}"


def is_segment(o: CatalogObject) -> bool:
    """A segment, not a slice: the name alone cannot always tell (both are ``XX_RAW__0S``), the manifest can."""
    if o.family == "L0_SEGMENT":
        return True
    return o.attributes.get("sliceProductFlag") is False


def segment_of(o: CatalogObject) -> Segment | None:
    product = _s1_raw(o.name)
    if product is None or not is_segment(o) or o.validity_start is None or o.validity_stop is None:
        return None
    consolidation = o.attributes.get("productConsolidation")
    sensing = o.attributes.get("productSensingConsolidation")
    if sensing is None and str(consolidation).upper() in _SENSING_POSITIONS:
        sensing = consolidation  # older manifests write the sensing position as the consolidation
    return Segment(
        o,
        f"S1{product.satellite}_{product.name_field('datatake_id')}",
        product.name_field("polarisation") or "",
        None if consolidation is None else str(consolidation).upper(),
        None if sensing is None else _SENSING_POSITIONS.get(str(sensing).upper(), str(sensing).upper()),
    )


def _newest_per_start(segments: Iterable[Segment]) -> list[Segment]:
    newest: dict[tuple[str, datetime | None], Segment] = {}
    for seg in segments:
        key = (seg.polarisation, seg.object.validity_start)
        kept = newest.get(key)
        if kept is None or _creation(seg) > _creation(kept):
            newest[key] = seg
    return sorted(newest.values(), key=lambda g: (g.polarisation, g.object.validity_start, g.object.validity_stop))


def _creation(seg: Segment) -> tuple[datetime, str]:
    return (seg.object.publication_time or datetime.min.replace(tzinfo=UTC), seg.object.name)


def _coverage_problem(polarisation: str, chain: Sequence[Segment]) -> str | None:
    """Why the segments of one polarisation do not cover its datatake (None: they do)."""
    if any("FULL" in (g.consolidation, g.sensing) for g in chain):
        return None
    first = chain[0]
    furthest = max(chain, key=lambda g: (g.object.validity_stop, g.object.validity_start))
    if first.sensing != "BEGIN":
        return f"{polarisation}: no BEGIN segment"
    reach = first.object.validity_stop
    assert reach is not None
    for seg in chain[1:]:
        start, stop = seg.object.validity_start, seg.object.validity_stop
        assert start is not None and stop is not None
        if start > reach:
            return f"{polarisation}: gap {reach.isoformat()}..{start.isoformat()}"
        reach = max(reach, stop)
    if furthest.sensing != "END":
        return f"{polarisation}: no END segment"
    return None


def segment_state(segments: Iterable[Segment]) -> SegmentState:
    kept = _newest_per_start(segments)
    by_polarisation: dict[str, list[Segment]] = {}
    for seg in kept:
        by_polarisation.setdefault(seg.polarisation, []).append(seg)
    present = frozenset(by_polarisation)
    missing: list[str] = []
    if not present:
        missing.append("segments")
    elif not ((len(present) == 1 and present <= SINGLE_POLARISATIONS) or any(present == p for p in DUAL_POLARISATIONS)):
        if len(present) == 1 and (alone := next(iter(present))) in _PARTNER:
            missing.append(f"polarisation {_PARTNER[alone]}")
        else:
            missing.append(f"invalid polarisations {'+'.join(sorted(present))}")
    for polarisation, chain in sorted(by_polarisation.items()):
        problem = _coverage_problem(polarisation, chain)
        if problem is not None:
            missing.append(problem)
    starts = [g.object.validity_start for g in kept if g.object.validity_start is not None]
    stops = [g.object.validity_stop for g in kept if g.object.validity_stop is not None]
    return SegmentState(not missing, tuple(missing), min(starts, default=None), max(stops, default=None), tuple(kept))


# -- S2 datastrips and granules ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DatastripState:
    complete: bool
    missing: tuple[str, ...]
    granules: tuple[CatalogObject, ...]  # the datastrip's granules, by sensing time then name


def datastrip_of_granule(granule: CatalogObject) -> str | None:
    """The L0 datastrip (its name) a granule belongs to, from the granule's metadata."""
    value = granule.attributes.get("datastripId")
    return str(value) if value else None


def _detector(granule: CatalogObject) -> str:
    value = granule.attributes.get("detectorId")
    if value:
        return str(value).zfill(2)
    try:
        return recognise(granule.name).name_field("detector") or ""
    except UnknownProduct:
        return ""


def datastrip_state(
    datastrip: CatalogObject,
    granules: Iterable[CatalogObject],
    detectors: int,
    granule_duration_s: float,
    tolerance_s: float,
) -> DatastripState:
    """Whether the granules of ``datastrip`` (those naming it) cover it on each of ``detectors`` detectors."""
    own = sorted(
        (g for g in granules if datastrip_of_granule(g) == datastrip.name and g.validity_start is not None),
        key=lambda g: (g.validity_start, g.name),
    )
    start, stop = datastrip.validity_start, datastrip.validity_stop
    if start is None or stop is None:
        return DatastripState(False, (f"sensing time of {datastrip.name}",), tuple(own))
    duration = timedelta(seconds=granule_duration_s)
    by_detector: dict[str, list[tuple[datetime, datetime]]] = {}
    for g in own:
        assert g.validity_start is not None
        end = max(g.validity_stop or g.validity_start, g.validity_start + duration)
        by_detector.setdefault(_detector(g), []).append((g.validity_start, end))
    expected = [f"{d:02d}" for d in range(1, detectors + 1)] if detectors else sorted(by_detector) or ["any"]
    missing: list[str] = []
    for detector in expected:
        gaps = coverage_gaps(by_detector.get(detector, []), start, stop, tolerance_s)
        if gaps:
            a, b = gaps[0]
            missing.append(f"detector {detector}: granules {a.isoformat()}..{b.isoformat()}")
    return DatastripState(not missing, tuple(missing), tuple(own))
