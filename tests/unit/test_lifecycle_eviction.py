"""Eviction: what is due, the sweep, pins, job inputs kept, an operator's eviction, and retries that finish
an eviction cut short with the same event. Products are ingested and cataloged as the pipeline does (moto S3,
SQLite catalog), with retention rules of the test."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cloudevents.http import CloudEvent
from moto import mock_aws

from events.processing import JobInput, JobReady
from shared.catalog import open_catalog
from shared.catalog.cataloging import Cataloguer
from shared.catalog.database import CatalogDatabase
from shared.catalog.model import CatalogEntry
from shared.catalog.store import CatalogStore
from shared.ingestion.inbox import Arrival, Inbox
from shared.ingestion.ledger import InboxLedger
from shared.ingestion.upload import upload_product
from shared.lifecycle.eviction import Lifecycle, LifecycleError
from shared.lifecycle.protection import JobInputReader
from shared.lifecycle.rules import load_rules
from shared.lifecycle.state import EVICTED, EVICTING, LifecycleStore
from shared.processing.jobs import JobState, JobStore
from shared.processing.launch import RunStore
from shared.products import write_product
from shared.settings import Settings
from shared.storage.objects import ObjectStore

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
# L1 slices are due at publication, S3 L1 products in 30 days, S2 L1C tiles never.
RULES = """
rules:
  - {name: slices-at-once, family: L1_SLICE, pattern: "S1?_IW_GRDH_*", days: 0,
     examples: [S1A_IW_GRDH_1SDV_20180227T145344_20180227T145413_020794_023A69_C0B5.SAFE]}
  - {name: s3-month, family: S3_L1_NRT, days: 30}
  - {name: s2-never, family: S2_L1C_TL, days: never}
"""


@dataclass
class World:
    settings: Settings
    objects: ObjectStore
    catalog: CatalogStore
    inbox: Inbox
    cataloguer: Cataloguer
    published: list[CloudEvent] = field(default_factory=list)
    fail_publish: int = 0  # posts to refuse before accepting

    def publish(self, event: CloudEvent) -> None:
        if self.fail_publish:
            self.fail_publish -= 1
            self.published_refused.append(event)
            raise ConnectionError("sink down")
        self.published.append(event)

    published_refused: list[CloudEvent] = field(default_factory=list)

    def catalog_product(self, directory: Path, product_type: str, seed: int) -> CatalogEntry:
        product = write_product(directory, product_type, START, seed=seed)
        keys = upload_product(self.objects, self.settings.inbox_bucket, product)
        replies = [self.inbox.ingest(product.name, Arrival(key, START)) for key in keys]
        (event,) = [r for r in replies if r is not None]
        self.cataloguer.on_product_ingested(event)
        entry = self.catalog.get(event.product.product_id)
        assert entry is not None
        return entry

    def lifecycle(self, clock: Callable[[], datetime] | None = None) -> Lifecycle:
        url = self.settings.catalog_url
        return Lifecycle(
            catalog=self.catalog,
            objects=self.objects,
            state=LifecycleStore(url),
            rules=load_rules(self.settings.retention_rules_file),
            job_inputs=JobInputReader(url),
            publish=self.publish,
            **({"clock": clock} if clock else {}),
        )

    def stored(self, entry: CatalogEntry) -> list[str]:
        return [o.key for o in self.objects.list(entry.bucket, entry.key)]


def make_world(tmp_path: Path, catalog_url: str, **options: str) -> World:
    """Products cataloged as the pipeline does, against moto (the default) or the store ``options`` name."""
    rules = tmp_path / "retention.yaml"
    rules.write_text(RULES)
    store = {"s3_access_key": "testing", "s3_secret_key": "testing", **options}
    settings = Settings(catalog_url=catalog_url, retention_rules_file=str(rules), **store)  # type: ignore[arg-type]
    objects = ObjectStore(settings)
    objects.ensure_bucket(settings.inbox_bucket)
    catalog = open_catalog(catalog_url)
    inbox = Inbox(objects, settings, InboxLedger(CatalogDatabase(catalog_url)))
    return World(settings, objects, catalog, inbox, Cataloguer(objects, catalog, settings))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with mock_aws():
        yield make_world(tmp_path, f"sqlite:///{tmp_path / 'catalog.db'}")


def test_cataloging_gives_a_new_product_its_rules_eviction_date(world: World, tmp_path: Path) -> None:
    slice_ = world.catalog_product(tmp_path, "IW_GRDH_1S", 1)
    olci = world.catalog_product(tmp_path, "OL_1_EFR___", 2)
    tile = world.catalog_product(tmp_path, "S2MSI1C", 3)
    assert slice_.eviction_time == slice_.publication_time
    assert olci.eviction_time == olci.publication_time + timedelta(days=30)
    assert tile.eviction_time is None


def test_the_dry_run_lists_what_is_due_and_changes_nothing(world: World, tmp_path: Path) -> None:
    slice_ = world.catalog_product(tmp_path, "IW_GRDH_1S", 1)
    world.catalog_product(tmp_path, "OL_1_EFR___", 2)
    world.catalog_product(tmp_path, "S2MSI1C", 3)
    (due,) = world.lifecycle().due()
    assert due.to_json()["name"] == slice_.name and due.to_json()["action"] == "evict"
    assert due.rule == "slices-at-once"
    assert world.catalog.get(slice_.id) == slice_ and world.stored(slice_) and not world.published
    later = world.lifecycle(clock=lambda: datetime.now(UTC) + timedelta(days=31)).due()
    assert len(later) == 2  # the S3 product too, a month on; the S2 tile never


def test_a_sweep_deletes_the_objects_keeps_the_entry_offline_and_announces_it_once(
    world: World, tmp_path: Path
) -> None:
    slice_ = world.catalog_product(tmp_path, "IW_GRDH_1S", 1)
    olci = world.catalog_product(tmp_path, "OL_1_EFR___", 2)
    assert world.lifecycle().sweep(limit=10) == {"resumed": 0, "evicted": 1, "kept": 0}
    assert world.stored(slice_) == [] and world.stored(olci)
    after = world.catalog.get(slice_.id)
    assert after is not None and after.online is False and after.eviction_time == slice_.eviction_time
    assert after.modification_time > slice_.modification_time and after.name == slice_.name
    (event,) = world.published
    assert event["type"] == "org.refsys.product.evicted.v1" and event["subject"] == slice_.name
    assert event.data["rule"] == "slices-at-once" and event.data["key"] == slice_.key
    assert world.lifecycle().sweep(limit=10) == {"resumed": 0, "evicted": 0, "kept": 0}
    assert len(world.published) == 1


def test_a_sweep_evicts_at_most_its_limit_and_the_next_one_goes_on(world: World, tmp_path: Path) -> None:
    slices = [world.catalog_product(tmp_path, "IW_GRDH_1S", seed) for seed in (1, 2, 3)]
    assert world.lifecycle().sweep(limit=2)["evicted"] == 2
    assert world.lifecycle().sweep(limit=2)["evicted"] == 1
    assert all(world.catalog.get(s.id).online is False for s in slices)  # type: ignore[union-attr]


def test_a_pinned_product_is_kept_and_unpinning_gives_back_its_rules_date(world: World, tmp_path: Path) -> None:
    slice_ = world.catalog_product(tmp_path, "IW_GRDH_1S", 1)
    lifecycle = world.lifecycle()
    pin = lifecycle.pin(slice_.name, "calibration campaign")
    assert pin.reason == "calibration campaign"
    assert world.catalog.get(slice_.id).eviction_time is None  # type: ignore[union-attr]  # EvictionDate: never
    assert lifecycle.sweep(limit=10)["evicted"] == 0 and world.stored(slice_)
    (listed,) = lifecycle.due()  # the dry run says what the rule would do, and why it does not
    assert listed.kept == "pinned" and listed.eviction_time == slice_.eviction_time
    # A pin cut short before the entry was changed still protects it: the sweep reads the pins.
    world.catalog.upsert(slice_)
    (due,) = lifecycle.due()
    assert due.kept == "pinned" and due.to_json()["action"] == "keep"
    assert lifecycle.sweep(limit=10) == {"resumed": 0, "evicted": 0, "kept": 1}
    unpinned = lifecycle.unpin(slice_.id)
    assert unpinned["wasPinned"] is True and unpinned["rule"] == "slices-at-once"
    assert world.catalog.get(slice_.id).eviction_time == slice_.eviction_time  # type: ignore[union-attr]
    assert lifecycle.sweep(limit=10)["evicted"] == 1 and world.stored(slice_) == []
    with pytest.raises(LifecycleError, match="evicted already"):
        lifecycle.pin(slice_.name, "too late")


def job_ready(job_key: str, entry: CatalogEntry) -> JobReady:
    return JobReady(
        job_key=job_key, processor="S1_L2", task_table="TaskTable_L2.xml", processor_name="L2", processor_version="1",
        window_start=START, window_stop=START + timedelta(seconds=25), timed_out=False, job_order="<Ipf_Job_Order/>",
        workdir="/data/localWD/1", image="ipf",
        inputs=(JobInput(name=entry.name, product_type=entry.product_type, bucket=entry.bucket, key=entry.key,
                         local_path=f"/data/localWD/1/{entry.name}"),),
    )  # fmt: skip


def test_inputs_of_waiting_ready_and_running_jobs_are_kept_and_of_ended_runs_not(world: World, tmp_path: Path) -> None:
    url = world.settings.catalog_url
    waiting, ready, running, ended = (world.catalog_product(tmp_path, "IW_GRDH_1S", seed) for seed in (1, 2, 3, 4))
    jobs, runs = JobStore(url), RunStore(url)
    now = datetime.now(UTC)
    jobs.open_job("S1_L2:one", "S1_L2", waiting.name, now, now + timedelta(hours=1))
    for key, entry in (("S1_L2:two", ready), ("S1_L2:three", running), ("S1_L2:four", ended)):
        jobs.open_job(key, "S1_L2", entry.name, now, now + timedelta(hours=1))
        reply = job_ready(key, entry)
        window = (START, START + timedelta(seconds=25))
        assert jobs.make_ready(key, JobState.READY, (), window, "test", reply.model_dump_json(), now)
        if entry is not ready:
            assert runs.claim(f"run-{key}", reply, "local")
    runs._execute("UPDATE processing_runs SET state = 'completed' WHERE run_id = 'run-S1_L2:four'", ())
    # The waiting job is now waiting for its subject only; the ready job's subject is evicted once run.
    verdicts = {d.entry.name: d.kept for d in world.lifecycle().due()}
    assert verdicts == {
        waiting.name: "input of job S1_L2:one",
        ready.name: "input of job S1_L2:two",
        running.name: "input of job S1_L2:three",
        ended.name: None,
    }
    assert world.lifecycle().sweep(limit=10) == {"resumed": 0, "evicted": 1, "kept": 3}
    assert world.stored(ended) == [] and world.stored(waiting) and world.stored(ready) and world.stored(running)


def test_a_waiting_jobs_window_keeps_the_products_that_overlap_it(world: World, tmp_path: Path) -> None:
    world.catalog_product(tmp_path, "IW_GRDH_1S", 1)
    jobs, now = JobStore(world.settings.catalog_url), datetime.now(UTC)
    jobs.open_job("S1_L2:elsewhen", "S1_L2", "a slice of another day", now, now + timedelta(hours=1))
    day_after = (START + timedelta(days=1), START + timedelta(days=1, seconds=5))
    jobs.keep_waiting("S1_L2:elsewhen", ["AUX_CAL"], day_after, now + timedelta(hours=1), None, now)
    assert world.lifecycle().due()[0].kept is None
    jobs.open_job("S1_L2:window", "S1_L2", "some other slice", now, now + timedelta(hours=1))
    jobs.keep_waiting("S1_L2:window", ["AUX_CAL"], (START, START + timedelta(seconds=5)), now + timedelta(hours=1),
                      None, now)  # fmt: skip
    (due,) = world.lifecycle().due()
    assert due.kept == "input of job S1_L2:window"


def test_an_eviction_cut_short_by_the_sink_is_finished_by_the_next_sweep_with_the_same_event(
    world: World, tmp_path: Path
) -> None:
    slice_ = world.catalog_product(tmp_path, "IW_GRDH_1S", 1)
    world.fail_publish = 1
    with pytest.raises(ConnectionError):
        world.lifecycle().sweep(limit=10)
    lifecycle = world.lifecycle()
    assert lifecycle.state.get(slice_.id).state == EVICTING  # type: ignore[union-attr]
    assert world.catalog.get(slice_.id).online is False and world.stored(slice_) == []  # type: ignore[union-attr]
    # Offline, so the due query no longer finds it: the journal does.
    assert lifecycle.due() == []
    assert lifecycle.sweep(limit=10) == {"resumed": 1, "evicted": 0, "kept": 0}
    (refused,), (sent,) = world.published_refused, world.published
    assert sent["id"] == refused["id"] and sent.data == refused.data
    assert lifecycle.state.get(slice_.id).state == EVICTED  # type: ignore[union-attr]


def test_an_eviction_cut_short_by_the_object_store_deletes_the_rest_next_time(world: World, tmp_path: Path) -> None:
    slice_ = world.catalog_product(tmp_path, "IW_GRDH_1S", 1)
    objects, deletes = world.objects, []

    class Failing:  # the real store, failing on the third delete (a store error half-way)
        def list(self, *args: object) -> object:
            return objects.list(*args)  # type: ignore[arg-type]

        def delete(self, bucket: str, key: str) -> None:
            deletes.append(key)
            if len(deletes) == 3:
                raise OSError("connection reset")
            objects.delete(bucket, key)

    lifecycle = world.lifecycle()
    lifecycle.objects = Failing()
    with pytest.raises(OSError):
        lifecycle.sweep(limit=10)
    assert world.catalog.get(slice_.id).online is False  # type: ignore[union-attr]  # offline before any delete
    assert world.stored(slice_) and not world.published  # some objects left, nothing announced
    assert world.lifecycle().sweep(limit=10)["resumed"] == 1
    assert world.stored(slice_) == [] and len(world.published) == 1


def test_an_operator_evicts_one_product_now_once(world: World, tmp_path: Path) -> None:
    tile = world.catalog_product(tmp_path, "S2MSI1C", 3)  # never due by its rule
    lifecycle = world.lifecycle()
    lifecycle.pin(tile.name, "keep")
    with pytest.raises(LifecycleError, match="is pinned"):
        lifecycle.evict(tile.name)
    before = datetime.now(UTC)
    eviction = lifecycle.evict(tile.name, force=True)
    assert eviction.rule == "operator" and eviction.state == EVICTED and eviction.eviction_time >= before
    after = world.catalog.get(tile.id)
    assert after is not None and after.online is False and after.eviction_time == eviction.eviction_time
    assert world.stored(tile) == []
    again = lifecycle.evict(tile.id)
    assert again == eviction and len(world.published) == 1
    assert world.published[0].data["rule"] == "operator"
    with pytest.raises(LifecycleError, match="no cataloged product"):
        lifecycle.evict("S1A_NOT_A_PRODUCT")


def test_a_product_kept_as_a_job_input_is_evicted_by_an_operator_only_with_force(world: World, tmp_path: Path) -> None:
    slice_ = world.catalog_product(tmp_path, "IW_GRDH_1S", 1)
    now = datetime.now(UTC)
    JobStore(world.settings.catalog_url).open_job("S1_L2:x", "S1_L2", slice_.name, now, now + timedelta(hours=1))
    with pytest.raises(LifecycleError, match="input of job S1_L2:x") as refused:
        world.lifecycle().evict(slice_.name)
    assert refused.value.status == 409 and world.stored(slice_)
