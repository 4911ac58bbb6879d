"""The other trigger rules end to end on both catalog backends: S1 L0 segments per datatake and
polarisation (L0ASP), S2 L0 datastrips with their granules (L1), S3 coverage with gap tolerance (MW1)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from events.processing import JobReady
from shared.catalog import CatalogEntry
from shared.processing.jobs import JobState
from shared.products.xml import parse_xml
from tests.integration.test_processing_prepare import Clock, Platform, make_entry

pytestmark = pytest.mark.integration

T = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
YEAR = timedelta(days=365)


def at(seconds: float) -> datetime:
    return T + timedelta(seconds=seconds)


def stamp(t: datetime) -> str:
    return t.strftime("%Y%m%dT%H%M%S")


@pytest.fixture
def platform(catalog_url: str) -> Iterator[Platform]:
    p = Platform(catalog_url, Clock(at(3600)))
    try:
        yield p
    finally:
        p.close()


def deliver_all(p: Platform, entries: list[CatalogEntry], seed: int) -> list[tuple[int, JobReady]]:
    """Deliver ``entries`` shuffled, with redeliveries; the job.ready replies by delivery number."""
    rng = random.Random(seed)
    deliveries = entries + rng.sample(entries, 3)
    rng.shuffle(deliveries)
    replies: list[tuple[int, JobReady]] = []
    for n, entry in enumerate(deliveries):
        replies.extend((n, r) for r in p.deliver(entry))
    last_new = max(deliveries.index(e) for e in entries)
    assert {n for n, _ in replies} <= {last_new, *range(last_new + 1, len(deliveries))}
    return replies


# -- S1 L0 segments -------------------------------------------------------------------------------------

DATATAKE = "066A2B"


def segment(pol: str, start: float, stop: float, sensing: str | None, consolidation: str = "PARTIAL") -> CatalogEntry:
    crc = f"{int(start) % 256:02X}{ord(pol[1]):02X}"
    name = f"S1A_IW_RAW__0S{pol}_{stamp(at(start))}_{stamp(at(stop))}_053000_{DATATAKE}_{crc}.SAFE"
    attributes: dict[str, Any] = {"sliceProductFlag": False, "productConsolidation": consolidation}
    if sensing:
        attributes["productSensingConsolidation"] = sensing
    # The name says L0_SLICE (segments and slices share it); the manifest's sliceProductFlag tells.
    return make_entry(name, "IW_RAW__0S", "L0_SLICE", satellite="A", level="L0", validity_start=at(start),
                      validity_stop=at(stop), attributes=attributes, publication_time=at(stop + 60))  # fmt: skip


def orbit_files() -> list[CatalogEntry]:
    return [
        make_entry(f"S1A_OPER_{t}_X.EOF", t, "AUXILIARY_FILE", satellite="A", validity_start=T - YEAR,
                   validity_stop=T + YEAR)
        for t in ("MPL_ORBSCT", "MPL_ORBPRE")
    ]  # fmt: skip


def test_a_dual_polarisation_datatake_is_assembled_once_after_its_last_segment(platform: Platform) -> None:
    for e in orbit_files():
        platform.store.upsert(e)
    segments = [segment("VV", 0, 100, "BEGIN"), segment("VV", 90, 200, "END"), segment("VH", 0, 200, None, "FULL")]
    replies = deliver_all(platform, segments, seed=1)
    assert len({r.event_id() for _, r in replies}) == 1
    ready = replies[0][1]
    assert ready.job_key == f"s1-l0asp:S1A_{DATATAKE}" and not ready.timed_out and ready.missing == ()
    assert (ready.window_start, ready.window_stop) == (at(0), at(200))
    assert {i.name for i in ready.inputs} >= {s.name for s in segments}
    order = parse_xml(ready.job_order.encode())
    assert order.findtext("Ipf_Conf/Processor_Name") == "L0_ASSEMBLY_SLICING_PROC"
    wrapper_input = order.find("List_of_Ipf_Procs/Ipf_Proc/List_of_Inputs/Input")
    assert wrapper_input is not None and wrapper_input.findtext("File_Type") == "IW_RAW__0S"
    assert wrapper_input.find("List_of_File_Names").get("count") == "3"  # type: ignore[union-attr]
    # Segments are not slices: no L1 job was opened for them.
    assert [j.key for j in platform.jobs.list()] == [ready.job_key]


def test_a_slice_of_the_datatake_opens_no_assembly_job(platform: Platform) -> None:
    name = f"S1A_IW_RAW__0SDV_{stamp(at(0))}_{stamp(at(25))}_053000_{DATATAKE}_1A2B.SAFE"
    assert platform.deliver(make_entry(name, "IW_RAW__0S", "L0_SLICE", satellite="A", level="L0",
                                       validity_start=at(0), validity_stop=at(25),
                                       attributes={"sliceProductFlag": True})) == []  # fmt: skip
    assert sorted(j.processor for j in platform.jobs.list()) == ["s1-l1-iw", "s1-l2-iw"]


def test_a_gap_in_a_polarisation_keeps_the_datatake_waiting_until_its_timeout(platform: Platform) -> None:
    for e in orbit_files():
        platform.store.upsert(e)
    segments = [segment("SV", 0, 100, "BEGIN"), segment("SV", 120, 200, "END")]
    assert [r for s in segments for r in platform.deliver(s)] == []
    (job,) = platform.jobs.list()
    gap = f"SV: gap {at(100).isoformat()}..{at(120).isoformat()}"
    assert job.state is JobState.WAITING and job.missing == (gap,)
    assert job.timeout_at == at(200) + timedelta(hours=36)  # later than creation + the minimal hour
    assert platform.preparation.on_timer() == []
    platform.clock.now = job.timeout_at
    (ready,) = platform.preparation.on_timer()
    assert ready.timed_out and ready.missing == (gap,)
    assert platform.jobs.get(job.key).state is JobState.TIMED_OUT_READY  # type: ignore[union-attr]


# -- S2 datastrips and granules ---------------------------------------------------------------------------

DS = "S2A_OPER_MSI_L0__DS_SGS__20240501T110000_S20240501T100000_N02.08"
STARTS = (0.0, 3.6, 7.2)


def s2_entry(name: str, product_type: str, family: str, start: float, stop: float, **attrs: Any) -> CatalogEntry:
    return make_entry(name, product_type, family, mission="S2", satellite="A", level="L0", validity_start=at(start),
                      validity_stop=at(stop), attributes=attrs)  # fmt: skip


def datastrip_entries(skip: tuple[int, float] | None = None) -> list[CatalogEntry]:
    entries = [s2_entry(DS, "MSI_L0__DS", "S2_L0_DS", 0, 10)]
    for detector in range(1, 13):
        for start in STARTS:
            if (detector, start) == skip:
                continue
            name = f"S2A_OPER_MSI_L0__GR_SGS__20240501T110000_S{stamp(at(start))}_D{detector:02d}_N02.08"
            entries.append(s2_entry(name, "MSI_L0__GR", "S2_L0_GR", start, start, datastripId=DS,
                                    detectorId=f"{detector:02d}"))  # fmt: skip
    return entries


def s2_aux(platform: Platform) -> None:
    for t in ("AUX_UT1UTC", "GIP_PROBAS", "AUX_ECMWFD"):
        platform.store.upsert(
            make_entry(f"S2__OPER_{t}_MPC__20240101T000000_V20240101T000000_20250101T000000", t, "S2_AUX",
                       mission="S2", validity_start=T - YEAR, validity_stop=T + YEAR)
        )  # fmt: skip


def test_a_datastrip_with_its_granules_in_any_order_gives_one_l1_job(platform: Platform) -> None:
    s2_aux(platform)
    entries = datastrip_entries()
    replies = deliver_all(platform, entries, seed=2)
    assert len({r.event_id() for _, r in replies}) == 1
    ready = replies[0][1]
    assert ready.job_key == f"s2-l1:{DS}" and not ready.timed_out and ready.mission == "S2"
    assert len([i for i in ready.inputs if i.product_type == "MSI_L0__GR"]) == 36
    order = parse_xml(ready.job_order.encode())
    by_type = {i.findtext("File_Type"): i for i in order.iter("Input")}
    assert by_type["MSI_L0__GR"].find("List_of_File_Names").get("count") == "36"  # type: ignore[union-attr]
    assert set(by_type) == {"MSI_L0__DS", "MSI_L0__GR", "AUX_UT1UTC", "GIP_PROBAS", "AUX_ECMWFD"}
    assert len(platform.jobs.list()) == 1


def test_a_datastrip_missing_a_granule_goes_at_its_timeout_and_says_which_detector(platform: Platform) -> None:
    s2_aux(platform)
    for e in datastrip_entries(skip=(7, 3.6)):
        assert platform.deliver(e) == []
    (job,) = platform.jobs.list()
    assert job.state is JobState.WAITING and len(job.missing) == 1 and job.missing[0].startswith("detector 07")
    platform.clock.now = job.timeout_at
    (ready,) = platform.preparation.on_timer()
    assert ready.timed_out and ready.missing == job.missing


# -- S3 coverage ------------------------------------------------------------------------------------------

MWR = "S3A_MW_0_MWR____20240501T100000_20240501T104000_20240501T110000_2400_111_222______LN3_O_NR_002.SEN3"


def s3_entry(name: str, product_type: str, family: str, start: datetime, stop: datetime) -> CatalogEntry:
    satellite = None if name.startswith("S3_") else "A"
    return make_entry(name, product_type, family, mission="S3", satellite=satellite, level="L0",
                      validity_start=start, validity_stop=stop)  # fmt: skip


def navatt(start: float, stop: float) -> CatalogEntry:
    times = f"{stamp(at(start))}_{stamp(at(stop))}_20240501T110000"
    name = f"S3A_TM_0_NAT____{times}_{int(start) % 10000:04d}_111_222______LN3_O_NR_002.SEN3"
    return s3_entry(name, "TM_0_NAT___", "S3_L0", at(start), at(stop))


def mw1_auxiliary(platform: Platform) -> None:
    types = ("AX___OSF_AX", "MW_1_SLC_AX", "MW___CHDNAX", "MW___CHDRAX", "MW___STD_AX", "MW_1_NIR_AX", "MW_1_DNB_AX")
    for t in types:
        name = f"S3__{t}_20230101T000000_20250101T000000_20230101T000000___________________MPC_O_AL_001.SEN3"
        platform.store.upsert(s3_entry(name, t, "S3_AUX", T - YEAR, T + YEAR))


def test_an_s3_product_waits_for_navatt_coverage_within_the_gap_tolerance(platform: Platform) -> None:
    mw1_auxiliary(platform)
    platform.store.upsert(navatt(-60, 1000))
    platform.store.upsert(navatt(1010, 2500))
    mwr = s3_entry(MWR, "MW_0_MWR___", "S3_L0", at(0), at(2400))
    assert platform.deliver(mwr) == []
    (job,) = platform.jobs.list()
    assert job.key == f"s3-mw1-nrt:{MWR}"
    assert job.missing == (f"coverage gap {at(1000).isoformat()}..{at(1010).isoformat()}",)
    (ready,) = platform.deliver(navatt(998, 1012))  # closes the gap to 0 s (tolerance 3 s)
    assert ready.job_key == job.key and not ready.timed_out and ready.missing == ()
    assert ready.mission == "S3" and ready.satellite == "A"
    assert {i.product_type for i in ready.inputs} >= {"MW_0_MWR___", "TM_0_NAT___", "AX___OSF_AX"}
    order = parse_xml(ready.job_order.encode())
    assert order.findtext("Ipf_Conf/Processor_Name") == "S3A_MW1"
    params = order.find("Ipf_Conf/List_of_Dyn_Processing_Parameters")  # the S3 flavour
    assert params is not None and params.get("count") == "4"
    assert order.find("Ipf_Conf/List_of_Config_Files/Config_File") is not None
    by_type = {i.findtext("File_Type"): i for i in order.iter("Input")}
    assert by_type["MW_0_MWR___"].findtext("List_of_File_Names/File_Name", "").endswith(MWR)
    assert "SR___MDO_AX" not in by_type  # an STC input: not in NRT mode


def test_a_small_gap_within_the_tolerance_does_not_hold_an_s3_job(platform: Platform) -> None:
    mw1_auxiliary(platform)
    platform.store.upsert(navatt(-60, 1000))
    platform.store.upsert(navatt(1002, 2500))  # 2 s gap, tolerance 3 s
    (ready,) = platform.deliver(s3_entry(MWR, "MW_0_MWR___", "S3_L0", at(0), at(2400)))
    assert not ready.timed_out and ready.missing == ()
