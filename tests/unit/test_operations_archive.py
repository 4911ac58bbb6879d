"""The event archive and the reruns that read it: selections, counts that match what a replay sends,
replayed events, the cursor a cut-short rerun resumes from, retention."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from events import ObjectCreated, make_event
from shared.bus.codec import from_cloudevent
from shared.bus.queue import EventQueue, NewEvent, State
from shared.operations.archive import ArchivedEvent, EventArchive, EventSelection, SelectionError
from shared.operations.reruns import Kind, Pace, RerunState, RerunStore, plan_replay, replayed, run_replay

NOW = datetime(2026, 12, 1, tzinfo=UTC)
CATALOGED = "org.refsys.product.cataloged.v1"


def record(n: int, type_: str = CATALOGED, subject: str = "S1A_IW_RAW__0SDV_X", **extensions: str) -> dict:
    return {"specversion": "1.0", "id": f"e{n}", "source": "/refsys/functions/catalog", "type": type_,
            "subject": subject, "time": NOW.isoformat(), "datacontenttype": "application/json",
            "data_base64": base64.b64encode(json.dumps({"n": n}).encode()).decode(), **extensions}  # fmt: skip


@pytest.fixture(params=["table", "broker"])
def archive_of(request: pytest.FixtureRequest, tmp_path: Path):
    """Fill an archive with records, as the archive function (a table) or the local broker (its queue) keeps them."""

    def fill(records: list[dict]) -> EventArchive:
        if request.param == "table":
            archive = EventArchive(f"sqlite:///{tmp_path / 'catalog.db'}")
            for r in records:
                archive.store(r)
            return archive
        queue = EventQueue(tmp_path / "broker.db")
        for r in records:
            queue.enqueue(NewEvent(r, "default", ["t1", "t2"]))
        queue.close()
        return EventArchive(f"sqlite:///{tmp_path / 'broker.db'}")

    return fill


def test_a_selection_counts_exactly_what_it_selects(archive_of) -> None:
    archive = archive_of([
        record(1), record(2, subject="S1A_IW_RAW__0SDV_Y"), record(3, type_="org.refsys.job.ready.v1"),
        record(4, subject="S2B_MSI_L0__DS_Z/manifest.safe", mission="S2"),
        record(5, replay="true"),  # a replay: left out unless asked for
    ])  # fmt: skip
    everything = archive.count(EventSelection())
    assert everything == {"matched": 4, "byType": {CATALOGED: 3, "org.refsys.job.ready.v1": 1}}
    assert archive.count(EventSelection(include_replays=True))["matched"] == 5
    assert archive.count(EventSelection(types=(CATALOGED,), subject="S1A_*"))["matched"] == 2
    assert archive.count(EventSelection(product="S2B_MSI_L0__DS_Z"))["matched"] == 1  # its objects' events
    assert archive.count(EventSelection(attributes={"mission": "S2"}))["matched"] == 1
    assert archive.count(EventSelection(subject="S1A\\_IW%"))["matched"] == 0  # LIKE's wildcards are literal
    later = EventSelection(since=datetime.now(UTC) + timedelta(hours=1))
    assert archive.count(later)["matched"] == 0
    assert [e.record["id"] for e in archive.select(EventSelection(types=(CATALOGED,)))] == ["e1", "e2", "e4"]


def test_the_broker_archive_tells_each_delivery_outcome(tmp_path: Path) -> None:
    queue = EventQueue(tmp_path / "broker.db")
    queue.enqueue(NewEvent(record(1), "default", ["catalog", "prepare"]))
    delivery = queue.claim(time.time(), "catalog")
    assert delivery is not None
    queue.settle(delivery, state=State.DELIVERED, now=time.time(), status=202)
    queue.close()
    (event,) = EventArchive(f"sqlite:///{tmp_path / 'broker.db'}").select(EventSelection())
    outcomes = {o["trigger"]: (o["state"], o["status"]) for o in event.outcomes}
    assert outcomes == {"catalog": ("delivered", 202), "prepare": ("pending", None)}


def test_selections_refuse_what_they_do_not_understand() -> None:
    with pytest.raises(SelectionError, match="unknown selection field"):
        EventSelection.from_json({"typ": "x"})
    with pytest.raises(SelectionError, match="since"):
        EventSelection.from_json({"since": "yesterday"})
    with pytest.raises(SelectionError, match="routing attribute"):
        EventSelection.from_json({"attributes": {"bad name'": "x"}})
    selection = EventSelection.from_json({"type": "a,b", "since": "2026-12-01T00:00:00Z", "includeReplays": "true"})
    assert selection.types == ("a", "b") and selection.since == NOW and selection.include_replays
    assert EventSelection.from_json(selection.to_json()) == selection


def test_a_replayed_event_is_new_and_names_its_original() -> None:
    original = from_cloudevent(make_event(
        ObjectCreated(store="s", bucket="rs-inbox", key="k", size=1, event_time=NOW), source="/refsys/storage/s/b"
    ))  # fmt: skip
    original["knativebrokerttl"] = 254

    again = replayed(ArchivedEvent(7, original, 0.0, []), "replay-1")
    assert again["id"] != original["id"] and again["replayof"] == original["id"]
    assert again["replay"] == "true" and again["reprocessing"] == "replay-1"
    assert again["bucket"] == "rs-inbox" and "knativebrokerttl" not in again.get_attributes()
    assert again.data == original["data"]
    binary = {**original, "data_base64": base64.b64encode(b'{"a": 1}').decode()}
    del binary["data"]
    assert replayed(ArchivedEvent(8, binary, 0.0, []), "replay-1").data == b'{"a": 1}'  # byte for byte
    assert replayed(ArchivedEvent(7, original, 0.0, []), "replay-1")["id"] == again["id"]  # resumable: same id


def test_a_replay_cut_short_resumes_from_its_cursor_and_never_replays_itself(tmp_path: Path) -> None:
    archive = EventArchive(f"sqlite:///{tmp_path / 'catalog.db'}")
    for n in range(1, 6):
        archive.store(record(n))
    store = RerunStore(f"sqlite:///{tmp_path / 'catalog.db'}")
    rerun = plan_replay(archive, store, EventSelection(types=(CATALOGED,)))
    assert rerun.matched == 5 and rerun.kind is Kind.REPLAY
    sent: list[str] = []

    def publish(event) -> None:
        sent.append(event["replayof"])
        archive.store(from_cloudevent(event))  # what it causes lands in the archive too (include_replays aside)

    progress = run_replay(rerun, archive, store, publish, Pace(1e6))
    assert [next(progress), next(progress)] == [1, 2]
    progress.close()  # the connection was cut
    resumed = store.get(rerun.id)
    assert resumed is not None and resumed.state is RerunState.RUNNING and resumed.published == 2
    assert list(run_replay(resumed, archive, store, publish, Pace(1e6))) == [3, 4, 5]
    assert sent == ["e1", "e2", "e3", "e4", "e5"]
    done = store.get(rerun.id)
    assert done is not None and done.state is RerunState.DONE and done.published == 5


def test_retention_deletes_old_events_but_never_unfinished_deliveries(tmp_path: Path) -> None:
    archive = EventArchive(f"sqlite:///{tmp_path / 'catalog.db'}")
    archive.store(record(1), received_at=time.time() - 40 * 86400)
    archive.store(record(2))
    assert archive.purge(30 * 86400) == 1 and archive.count(EventSelection())["matched"] == 1
    queue = EventQueue(tmp_path / "broker.db")
    old = time.time() - 40 * 86400
    queue.enqueue(NewEvent(record(1), "default", []), now=old)  # nothing to deliver: finished
    queue.enqueue(NewEvent(record(2), "default", ["t"]), now=old)  # still pending: kept
    assert queue.purge(30 * 86400) == 1
    assert [d["event_id"] for d in queue.deliveries()] == ["e2"]
    queue.close()


def test_pace_spreads_calls_at_the_rate() -> None:
    clock = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    pace = Pace(4.0, clock=lambda: clock[0], sleep=sleep)
    for _ in range(5):
        pace.wait()
    assert slept == [0.25, 0.25, 0.25, 0.25]
