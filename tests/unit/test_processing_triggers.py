"""Pure trigger rules: S1 L0 segment consolidation per datatake and polarisation, S2 datastrip coverage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.processing.config import ProcessorSettings, TriggerRule
from shared.processing.queries import CatalogObject
from shared.processing.triggers import (
    Segment,
    datastrip_state,
    datatake_of,
    is_segment,
    segment_of,
    segment_state,
)

T = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
DATATAKE = "066A2B"


def at(seconds: float) -> datetime:
    return T + timedelta(seconds=seconds)


def stamp(t: datetime) -> str:
    return t.strftime("%Y%m%dT%H%M%S")


def segment_object(
    pol: str,
    start: float,
    stop: float,
    sensing: str | None = None,
    consolidation: str = "PARTIAL",
    *,
    crc: str = "AAAA",
    published: float = 0,
    slice_flag: bool = False,
    datatake: str = DATATAKE,
) -> CatalogObject:
    name = f"S1A_IW_RAW__0S{pol}_{stamp(at(start))}_{stamp(at(stop))}_053000_{datatake}_{crc}.SAFE"
    attributes: dict[str, Any] = {"sliceProductFlag": slice_flag, "productConsolidation": consolidation}
    if sensing is not None:
        attributes["productSensingConsolidation"] = sensing
    return CatalogObject(
        name, "IW_RAW__0S", "A", "rs-s1-l0-segments", name, at(start), at(stop), attributes,
        family="L0_SLICE", publication_time=at(1000 + published),
    )  # fmt: skip


def segments(*objects: CatalogObject) -> list[Segment]:
    found = [segment_of(o) for o in objects]
    assert all(s is not None for s in found)
    return [s for s in found if s is not None]


def test_a_segment_is_told_from_a_slice_by_its_manifest_and_keyed_by_unit_and_datatake() -> None:
    seg = segment_object("VV", 0, 60, "BEGIN")
    assert is_segment(seg) and datatake_of(seg.name) == f"S1A_{DATATAKE}"
    assert not is_segment(segment_object("VV", 0, 60, slice_flag=True))
    assert segment_of(segment_object("VV", 0, 60, slice_flag=True)) is None
    by_family = CatalogObject("x", "IW_RAW__0S", "A", "b", "x", T, T, {}, family="L0_SEGMENT")
    assert is_segment(by_family)


def test_a_full_segment_covers_its_polarisation_and_sh_alone_is_a_valid_set() -> None:
    state = segment_state(segments(segment_object("SH", 0, 600, consolidation="FULL")))
    assert state.complete and state.missing == ()
    assert (state.start, state.stop) == (at(0), at(600))


def test_a_dual_polarisation_datatake_needs_both_chains_from_begin_to_end() -> None:
    vv = [segment_object("VV", 0, 100, "BEGIN"), segment_object("VV", 100, 200, "CONTINUE"),
          segment_object("VV", 190, 300, "END")]  # fmt: skip
    vh = [segment_object("VH", 0, 300, "FULL")]
    assert segment_state(segments(*vv, *vh)).complete
    only_vv = segment_state(segments(*vv))
    assert not only_vv.complete and only_vv.missing == ("polarisation VH",)
    no_end = segment_state(segments(*vv[:2], *vh))
    assert no_end.missing == ("VV: no END segment",)
    no_begin = segment_state(segments(*vv[1:], *vh))
    assert no_begin.missing == ("VV: no BEGIN segment",)


def test_a_gap_between_segments_keeps_the_datatake_incomplete_and_says_where() -> None:
    state = segment_state(segments(segment_object("SV", 0, 100, "BEGIN"), segment_object("SV", 110, 200, "END")))
    assert state.missing == (f"SV: gap {at(100).isoformat()}..{at(110).isoformat()}",)


def test_a_segment_inside_a_longer_one_is_no_gap() -> None:
    # The reference compared each start with the previous segment's stop: [0,300] then [50,60] then
    # [200,400] looked like a gap at 60..200.
    chain = [segment_object("SV", 0, 300, "BEGIN"), segment_object("SV", 50, 60, "CONTINUE"),
             segment_object("SV", 200, 400, "END")]  # fmt: skip
    assert segment_state(segments(*chain)).complete


def test_the_newest_segment_per_polarisation_and_start_is_kept() -> None:
    old = segment_object("SV", 0, 100, "BEGIN", crc="0001", published=0)
    new = segment_object("SV", 0, 150, "BEGIN", crc="0002", published=5)
    end = segment_object("SV", 150, 200, "END")
    state = segment_state(segments(old, new, end))
    assert state.complete and [s.object.name for s in state.segments] == [new.name, end.name]


def test_invalid_polarisation_sets_and_older_sensing_spellings() -> None:
    mixed = segment_state(segments(segment_object("VV", 0, 10, consolidation="FULL"),
                                   segment_object("HH", 0, 10, consolidation="FULL")))  # fmt: skip
    assert mixed.missing == ("invalid polarisations HH+VV",)
    # No productSensingConsolidation: older manifests write START/END as the consolidation.
    old_style = segments(
        segment_object("SV", 0, 10, consolidation="START"), segment_object("SV", 10, 20, consolidation="END")
    )
    assert segment_state(old_style).complete
    assert segment_state([]).missing == ("segments",)


DS_NAME = "S2A_OPER_MSI_L0__DS_SGS__20240501T110000_S20240501T100000_N02.08"


def datastrip(duration: float = 10.0) -> CatalogObject:
    return CatalogObject(DS_NAME, "MSI_L0__DS", "A", "b", DS_NAME, at(0), at(duration), {})


def granule(detector: int, start: float, ds: str = DS_NAME) -> CatalogObject:
    name = f"S2A_OPER_MSI_L0__GR_SGS__20240501T110000_S{stamp(at(start))}_D{detector:02d}_N02.08"
    attrs = {"datastripId": ds, "detectorId": f"{detector:02d}"}
    return CatalogObject(name, "MSI_L0__GR", "A", "b", name, at(start), at(start), attrs)


def test_a_datastrip_is_complete_when_every_detector_has_granules_across_it() -> None:
    grid = [granule(d, s) for d in (1, 2) for s in (0, 3.6, 7.2)]
    state = datastrip_state(datastrip(), grid, detectors=2, granule_duration_s=3.608, tolerance_s=0.5)
    assert state.complete and len(state.granules) == 6
    holed = [g for g in grid if not (g.name.endswith("_D02_N02.08") and g.validity_start == at(3.6))]
    state = datastrip_state(datastrip(), holed, detectors=2, granule_duration_s=3.608, tolerance_s=0.5)
    assert not state.complete and state.missing[0].startswith("detector 02: granules")
    state = datastrip_state(datastrip(), grid, detectors=3, granule_duration_s=3.608, tolerance_s=0.5)
    assert state.missing == (f"detector 03: granules {at(0).isoformat()}..{at(10).isoformat()}",)


def test_granules_of_another_datastrip_are_not_counted() -> None:
    other = [granule(1, s, ds="S2A_OPER_MSI_L0__DS_OTHER") for s in (0, 3.6, 7.2)]
    state = datastrip_state(datastrip(), other, detectors=1, granule_duration_s=3.608, tolerance_s=0.5)
    assert not state.complete and state.granules == ()


def test_a_datastrip_processor_names_the_datastrip_type_then_the_granule_type() -> None:
    base: dict[str, Any] = {"name": "s2", "tasktable": "t.xml", "trigger": "datastrip", "timeout_s": 1, "image": "i"}
    assert ProcessorSettings(**base, main_types=("MSI_L0__DS", "MSI_L0__GR")).trigger is TriggerRule.DATASTRIP
    with pytest.raises(ValueError, match="two main types"):
        ProcessorSettings(**base, main_types=("MSI_L0__DS",))
