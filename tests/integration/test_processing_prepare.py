"""The preparation step on both catalog backends: EDRS sessions, S1 L1 slices, timeouts, one job per key."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from events.processing import JobReady
from shared.catalog import CatalogEntry, CatalogStore, open_catalog, product_id
from shared.catalog.announce import cataloged
from shared.processing.config import ProcessingConfig, load_processing_config
from shared.processing.jobs import JobState, JobStore
from shared.processing.preparation import Preparation
from shared.processing.queries import CatalogSelection

pytestmark = pytest.mark.integration

SESSION = "L20171109175634707000125"
DOWNLINK_START = datetime(2017, 12, 13, 14, 59, 48, tzinfo=UTC)
DOWNLINK_STOP = datetime(2017, 12, 13, 15, 17, 25, tzinfo=UTC)
CHUNKS = 3


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_entry(name: str, product_type: str, family: str, **changes: Any) -> CatalogEntry:
    fields: dict[str, Any] = {
        "id": product_id(name),
        "name": name,
        "mission": "S1",
        "satellite": None,
        "product_type": product_type,
        "level": "SESSION" if family == "EDRS_SESSION" else "AUX",
        "family": family,
        "bucket": f"rs-s1-{family.lower().replace('_', '-')}",
        "key": name,
        "content_length": 10,
        "checksum": None,
        "content_type": "application/octet-stream",
        "validity_start": None,
        "validity_stop": None,
        "footprint": None,
        "attributes": {},
        "publication_time": DOWNLINK_STOP,
        "modification_time": DOWNLINK_STOP,
    }
    fields.update(changes)
    return CatalogEntry(**fields)


def chunk(channel: int, n: int) -> str:
    return f"DCS_02_{SESSION}_ch{channel}_DSDB_{n:05d}.raw"


def session_entries(chunks: int = CHUNKS) -> list[CatalogEntry]:
    entries = []
    for channel in (1, 2):
        names = [chunk(channel, n) for n in range(1, chunks + 1)]
        entries.append(
            make_entry(
                f"DCS_02_{SESSION}_ch{channel}_DSIB.xml",
                "SESSION",
                "EDRS_SESSION",
                validity_start=DOWNLINK_START,
                validity_stop=DOWNLINK_STOP,
                attributes={"sessionId": SESSION, "rawNames": ",".join(names), "numberOfChunks": chunks},
            )
        )
        entries.extend(make_entry(n, "RAW", "EDRS_SESSION") for n in names)
    return entries


def aux_entries() -> list[CatalogEntry]:
    day = timedelta(days=1)
    return [
        make_entry(f"S1A_OPER_{t}_AUX", t, "AUXILIARY_FILE", satellite="A",
                   validity_start=DOWNLINK_START - 10 * day, validity_stop=DOWNLINK_STOP + day)
        for t in ("AUX_OBMEMC", "MPL_ORBPRE", "MPL_ORBSCT")
    ]  # fmt: skip


class Platform:
    """The catalog, the jobs and the preparation step over one database, and a deliverer of events."""

    def __init__(self, url: str, clock: Clock, config: ProcessingConfig | None = None) -> None:
        self.store: CatalogStore = open_catalog(url)
        self.jobs = JobStore(url)
        self.selection = CatalogSelection(url)
        self.clock = clock
        self.preparation = Preparation(config or load_processing_config(), self.jobs, self.selection, clock)

    def deliver(self, entry: CatalogEntry) -> list[JobReady]:
        self.store.upsert(entry)  # the catalog step runs before prepare sees the event
        event = cataloged(entry)
        return self.preparation.on_cataloged(event, event.event_id())

    def close(self) -> None:
        self.selection.close()
        self.jobs.close()
        self.store.close()


@pytest.fixture
def platform(catalog_url: str) -> Iterator[Platform]:
    p = Platform(catalog_url, Clock(DOWNLINK_STOP + timedelta(minutes=5)))
    for aux in aux_entries():
        p.store.upsert(aux)
    try:
        yield p
    finally:
        p.close()


def test_a_session_delivered_in_random_order_with_duplicates_is_ready_once_after_its_last_chunk(
    platform: Platform,
) -> None:
    entries = session_entries()
    rng = random.Random(5)
    deliveries = entries + rng.sample(entries, 4)  # redeliveries
    rng.shuffle(deliveries)
    seen: set[str] = set()
    ready_ids: set[str] = set()
    for n, entry in enumerate(deliveries):
        replies = platform.deliver(entry)
        first_time = entry.name not in seen
        seen.add(entry.name)
        complete = len(seen) == len(entries)
        if replies:
            # Only the delivery that completed the session, or a redelivery of that very event, answers.
            assert complete
            ready_ids.update(r.event_id() for r in replies)
            if first_time:
                assert len(seen) == len(entries)
        else:
            assert not (complete and first_time), f"delivery {n} completed the session without job.ready"
    assert len(ready_ids) == 1
    (job,) = platform.jobs.list()
    assert job.key == f"s1-aiop:{SESSION}"
    assert job.state is JobState.READY and job.missing == ()
    ready = JobReady.model_validate_json(job.reply or "")
    assert not ready.timed_out
    raw = [i for i in ready.inputs if i.product_type == "RAW"]
    assert len(raw) == 2 * CHUNKS
    assert {i.local_path.rsplit("/", 2)[1] for i in raw} == {"ch01", "ch02"}
    assert {i.product_type for i in ready.inputs} >= {"SESSION", "AUX_OBMEMC", "MPL_ORBPRE", "MPL_ORBSCT"}
    assert "<Processor_Name>AIO_PROCESSOR</Processor_Name>" in ready.job_order
    assert "<Start>20171213_145948000000</Start>" in ready.job_order


def test_a_session_missing_one_chunk_goes_ahead_at_its_timeout_and_says_which(platform: Platform) -> None:
    entries = session_entries()
    lost = chunk(2, 2)
    for entry in entries:
        if entry.name != lost:
            assert platform.deliver(entry) == []
    assert platform.preparation.on_timer() == []  # not yet: the downlink ended minutes ago
    (job,) = platform.jobs.list()
    assert job.state is JobState.WAITING and job.missing == (lost,)
    assert job.timeout_at == DOWNLINK_STOP + timedelta(seconds=7200)
    platform.clock.now = job.timeout_at
    (ready,) = platform.preparation.on_timer()
    assert ready.timed_out and ready.missing == (lost,)
    assert lost not in {i.name for i in ready.inputs}
    assert platform.preparation.on_timer() == []
    assert platform.jobs.get(job.key).state is JobState.TIMED_OUT_READY  # type: ignore[union-attr]
    # The lost chunk arriving late changes nothing: the job went.
    assert platform.deliver(next(e for e in entries if e.name == lost)) == []


def test_a_single_channel_session_is_complete_after_the_minimal_wait(platform: Platform) -> None:
    channel_one = [e for e in session_entries() if "_ch1_" in e.name]
    assert [r for e in channel_one for r in platform.deliver(e)] == []  # channel 2 may only be late
    (job,) = platform.jobs.list()
    assert job.missing == ("DSIB ch2",) and job.due_at == job.created_at + timedelta(seconds=360)
    platform.clock.now = job.due_at
    (ready,) = platform.preparation.on_timer()
    assert not ready.timed_out and ready.missing == ()
    assert {i.local_path.rsplit("/", 2)[1] for i in ready.inputs if i.product_type == "RAW"} == {"ch01"}


def test_a_session_waits_for_a_mandatory_auxiliary_file_and_is_ready_when_it_arrives(catalog_url: str) -> None:
    p = Platform(catalog_url, Clock(DOWNLINK_STOP))
    try:
        aux = aux_entries()
        for entry in aux[:2]:
            p.store.upsert(entry)
        assert [r for e in session_entries() for r in p.deliver(e)] == []
        (job,) = p.jobs.list()
        assert job.state is JobState.WAITING and job.missing == ("MPL_ORBSCT",)
        (ready,) = p.deliver(aux[2])
        assert ready.job_key == job.key and not ready.timed_out
    finally:
        p.close()


def test_concurrent_deliveries_of_a_session_create_one_job_and_one_job_ready(catalog_url: str) -> None:
    entries = session_entries()
    platforms = [Platform(catalog_url, Clock(DOWNLINK_STOP)) for _ in range(4)]
    try:
        for aux in aux_entries():
            platforms[0].store.upsert(aux)
        for e in entries:
            platforms[0].store.upsert(e)  # everything cataloged: every delivery below sees a complete session
        replies: list[JobReady] = []
        lock = threading.Lock()

        def work(p: Platform) -> None:
            for e in entries:
                event = cataloged(e)
                found = p.preparation.on_cataloged(event, event.event_id())
                with lock:
                    replies.extend(found)

        threads = [threading.Thread(target=work, args=(p,)) for p in platforms]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(platforms[0].jobs.list()) == 1
        assert len({r.event_id() for r in replies}) == 1
        # Each event answers at most for itself: the winning event may be redelivered, no other answers.
        assert len(replies) <= len(platforms)
    finally:
        for p in platforms:
            p.close()


SLICE_START = datetime(2024, 5, 1, 10, 10, 10, tzinfo=UTC)
SLICE_STOP = SLICE_START + timedelta(seconds=32)


def slice_entry(crc: str = "1A2B") -> CatalogEntry:
    name = f"S1A_IW_RAW__0SDV_20240501T101010_20240501T101042_053000_066A2B_{crc}.SAFE"
    return make_entry(name, "IW_RAW__0S", "L0_SLICE", satellite="A", level="L0",
                      validity_start=SLICE_START, validity_stop=SLICE_STOP)  # fmt: skip


def l1_context() -> list[CatalogEntry]:
    """The slice's annotations (they span the segment) and the L1 auxiliary files, no orbit."""
    segment = (SLICE_START - timedelta(minutes=5), SLICE_STOP + timedelta(minutes=5))
    acn = [
        make_entry(f"S1A_IW_RAW__0{c}DV_20240501T100510_20240501T101542_053000_066A2B_00{n}0.SAFE", f"IW_RAW__0{c}",
                   "L0_ACN", satellite="A", level="L0", validity_start=segment[0], validity_stop=segment[1])
        for n, c in enumerate("ACN")
    ]  # fmt: skip
    year = timedelta(days=365)
    aux = [
        make_entry(f"S1A_{t}_V20230101T000000_G20230101T000000.SAFE", t, "AUXILIARY_FILE", satellite="A",
                   validity_start=SLICE_START - year, validity_stop=SLICE_STOP + year)
        for t in ("AUX_PP1", "AUX_CAL", "AUX_INS")
    ]  # fmt: skip
    return acn + aux


def fast24(config: ProcessingConfig) -> ProcessingConfig:
    """The L1 processor as for FAST24 timeliness: optional inputs are waited for 30 min (NRT waits none)."""
    l1 = config.by_name("s1-l1-iw")
    waiting = replace(l1, settings=l1.settings.model_copy(update={"optional_wait_s": 1800}))
    return ProcessingConfig(tuple(waiting if p is l1 else p for p in config.processors))


def test_an_l1_slice_waits_for_its_optional_orbit_then_goes_without_it(catalog_url: str) -> None:
    p = Platform(catalog_url, Clock(SLICE_STOP + timedelta(minutes=10)), fast24(load_processing_config()))
    try:
        for e in l1_context():
            p.store.upsert(e)
        assert p.deliver(slice_entry()) == []
        (job,) = [j for j in p.jobs.list() if j.processor == "s1-l1-iw"]  # L2 OCN opened its own
        assert job.key == "s1-l1-iw:S1A_IW_RAW__0SDV_20240501T101010_20240501T101042_053000_066A2B"
        assert job.missing == ("Orbit", "AUX_ATT") and job.due_at == job.created_at + timedelta(seconds=1800)
        assert p.deliver(slice_entry()) == []  # redelivered: the same job, still waiting
        p.clock.now = job.due_at
        (ready,) = p.preparation.on_timer()
        assert ready.missing == ("Orbit", "AUX_ATT") and not ready.timed_out  # optional: omitted, not late
        names = {i.name for i in ready.inputs}
        assert slice_entry().name in names and len([n for n in names if "_RAW__0" in n]) == 4
        assert "AUX_POE" not in ready.job_order
        assert len([j for j in p.jobs.list() if j.processor == "s1-l1-iw"]) == 1
    finally:
        p.close()


def test_an_l1_slice_with_its_orbit_is_ready_at_once_with_the_slice_fed_in(catalog_url: str) -> None:
    p = Platform(catalog_url, Clock(SLICE_STOP + timedelta(minutes=10)))
    try:
        for e in l1_context():
            p.store.upsert(e)
        p.store.upsert(
            make_entry("S1A_OPER_AUX_RESORB_OPOD_20240501T120000_V20240501T090000_20240501T123000.EOF", "AUX_RESORB",
                       "AUXILIARY_FILE", satellite="A", validity_start=SLICE_START - timedelta(hours=1),
                       validity_stop=SLICE_STOP + timedelta(hours=1))
        )  # fmt: skip
        p.store.upsert(
            make_entry("S1A_OPER_AUX_ATT_X.EOF", "AUX_ATT", "AUXILIARY_FILE", satellite="A",
                       validity_start=SLICE_START - timedelta(hours=1), validity_stop=SLICE_STOP + timedelta(hours=1))
        )  # fmt: skip
        (ready,) = p.deliver(slice_entry())
        assert ready.missing == () and "<File_Type>AUX_RES</File_Type>" in ready.job_order
        assert f"/{slice_entry().name}</File_Name>" in ready.job_order
    finally:
        p.close()
