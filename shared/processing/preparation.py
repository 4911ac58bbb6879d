"""The preparation step: cataloged products in, jobs created or completed, ``job.ready`` out.

For every configured processor whose main input types include the product's type, the product names
its job (by the processor's trigger rule) and that job is evaluated; every *waiting* job of a processor
that consumes the type otherwise (an auxiliary file it may be waiting for) is evaluated again. A timer
(:meth:`Preparation.on_timer`) evaluates the jobs whose timeout has passed.

Evaluation: gather the main input (the session's chunks, the slice, the datatake's segments, the
datastrip and its granules, the covering products — fed in as they are, never chosen by a policy;
the rules are in :mod:`shared.processing.triggers`), then select the task table's other inputs with the
query form of the policies. A job is ready when nothing mandatory is missing and no optional input is still worth
waiting for. At its timeout a job goes ahead with the main inputs that are there (saying which are
not) and without the optional inputs that never came; a mandatory auxiliary input it cannot do without
keeps it waiting.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from events.models import ProductCataloged
from events.processing import JobInput, JobOutput, JobReady, JobTask
from shared.processing.config import ProcessingConfig, Processor, TriggerRule
from shared.processing.inputs import InputSelection, select_inputs_with
from shared.processing.joborder import build_job_order
from shared.processing.jobs import Job, JobState, JobStore
from shared.processing.policies import Candidate
from shared.processing.queries import (
    CatalogObject,
    CatalogSelection,
    datatake_objects,
    objects_named,
    objects_starting_between,
    session_objects,
)
from shared.processing.tasktable import NOT_PRODUCTS, Alternative, Destination, Output
from shared.processing.triggers import (
    coverage_gaps,
    datastrip_of_granule,
    datastrip_state,
    is_segment,
    segment_of,
    segment_state,
    session_id_of,
    session_objects_of,
    session_state,
    session_timeout,
)
from shared.products.naming import UnknownProduct, recognise

WORKDIR_ROOT = "/data/localWD"  # where the generic IPF interface runs jobs (reference process.workingDir)
TIMER = "timer"
GENERATION_MARK = "~"  # <job key>~<replay or reprocessing id>: a job done again, beside the first one


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class MainInput:
    """What the trigger rule found for a job: its main objects, window and what of it is missing."""

    objects: tuple[tuple[CatalogObject, str], ...]  # (object, path relative to the workdir)
    window: tuple[datetime, datetime] | None
    missing: tuple[str, ...]
    timeout_at: datetime
    due_at: datetime | None = None  # when the timer must look again, if before the timeout


class Preparation:
    def __init__(
        self,
        config: ProcessingConfig,
        jobs: JobStore,
        catalog: CatalogSelection,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._config = config
        self._jobs = jobs
        self._catalog = catalog
        self._clock = clock

    # -- entry points -----------------------------------------------------------------------------

    def on_cataloged(self, event: ProductCataloged, event_id: str, generation: str | None = None) -> list[JobReady]:
        """Create or update the jobs ``event``'s product concerns; the ``job.ready`` payloads it causes.

        With a ``generation`` (a replay or reprocessing), the jobs are that generation's own (their keys end in
        ``~<generation>``): they run again on what the catalog holds, whatever the first jobs did.
        """
        product = event.product
        now = self._clock()
        replies: list[JobReady] = []
        evaluated: set[str] = set()
        for processor in self._config.processors:
            if product.product_type not in processor.settings.main_types:
                continue
            if processor.settings.mission and processor.settings.mission != product.mission:
                continue
            named = self._job_for(processor, product.name, product.product_type, now, generation)
            if named is None:
                continue
            evaluated.add(named.key)
            replies.extend(self._evaluate(processor, named, event_id, now))
        for processor in self._config.processors:
            if product.product_type not in processor.consumed_types():
                continue
            for job in self._jobs.waiting([processor.name]):
                if job.key not in evaluated:
                    evaluated.add(job.key)
                    replies.extend(self._evaluate(processor, job, event_id, now))
        return replies

    def on_timer(self) -> list[JobReady]:
        """Evaluate every waiting job whose timeout has passed."""
        now = self._clock()
        replies: list[JobReady] = []
        for job in self._jobs.due(now):
            try:
                processor = self._config.by_name(job.processor)
            except KeyError:
                continue  # a processor removed from the configuration: its jobs stay for inspection
            replies.extend(self._evaluate(processor, job, f"{TIMER}:{job.timeout_at.isoformat()}", now))
        return replies

    # -- job keys ---------------------------------------------------------------------------------

    def _job_for(
        self, processor: Processor, name: str, product_type: str, now: datetime, generation: str | None = None
    ) -> Job | None:
        s = processor.settings

        def open_job(key: str, subject: str, timeout_at: datetime) -> Job:
            key = f"{key}{GENERATION_MARK}{generation}" if generation else key
            return self._jobs.open_job(key, s.name, subject, now, timeout_at)

        if s.trigger is TriggerRule.SESSION:
            session_id = session_id_of(name)
            if session_id is None:
                return None
            timeout = session_timeout(now, None, s.timeout_s, s.minimal_wait_s)
            return open_job(f"{s.name}:{session_id}", session_id, timeout)
        timeout = now + timedelta(seconds=max(s.timeout_s, s.minimal_wait_s))
        if s.trigger is TriggerRule.SEGMENT:
            found = objects_named(self._catalog, [name]).get(name)
            segment = None if found is None else segment_of(found)
            if segment is None:
                return None  # a slice of the same type (the L1 processors' business), or not cataloged
            timeout = session_timeout(now, segment.object.validity_stop, s.timeout_s, s.minimal_wait_s)
            return open_job(f"{s.name}:{segment.datatake}", segment.datatake, timeout)
        if s.trigger is TriggerRule.DATASTRIP:
            datastrip = name
            if product_type != s.main_types[0]:  # a granule: its job is its datastrip's
                granule = objects_named(self._catalog, [name]).get(name)
                found_ds = None if granule is None else datastrip_of_granule(granule)
                if found_ds is None:
                    return None
                datastrip = found_ds
            return open_job(f"{s.name}:{datastrip}", datastrip, timeout)
        if s.trigger is TriggerRule.SLICE:
            found = objects_named(self._catalog, [name]).get(name)
            if found is not None and is_segment(found):
                return None  # segments and slices share product types; segments go to the assembly
            return open_job(f"{s.name}:{_slice_identity(name)}", name, timeout)
        return open_job(f"{s.name}:{name}", name, timeout)

    # -- evaluation -------------------------------------------------------------------------------

    def _evaluate(self, processor: Processor, job: Job, by: str, now: datetime) -> list[JobReady]:
        current = self._jobs.get(job.key) or job
        if current.state is not JobState.WAITING:
            # Redelivery of the event that made it ready (its reply may have been lost): the same reply.
            if current.ready_by == by and current.reply is not None:
                return [JobReady.model_validate_json(current.reply)]
            return []
        main = self._main_input(processor, current, now)
        timed_out = now >= main.timeout_at
        if main.window is None:
            self._jobs.keep_waiting(current.key, main.missing, None, main.timeout_at, main.due_at, now)
            return []
        start, stop = main.window
        main_types = set(processor.settings.main_types)
        main_candidates = [
            Candidate(o.name, o.validity_start or start, o.validity_stop or stop, now, o.product_type)
            for o, _ in main.objects
        ]

        def lookup(alternative: Alternative, w_start: datetime, w_stop: datetime) -> list[Candidate]:
            catalog_type = processor.catalog_type(alternative.file_type)
            if catalog_type in main_types:
                # The trigger product is the main input: fed in as it is, not chosen by a policy.
                return [c for c in main_candidates if c.product_type == catalog_type]
            return self._catalog.select(
                alternative.policy,
                catalog_type,
                w_start,
                w_stop,
                alternative.t0,
                alternative.t1,
                satellite=self._satellite(main),
                min_results=alternative.min_results,
                max_results=alternative.max_results,
            )

        selection = select_inputs_with(processor.table, lookup, start, stop, processor.settings.mode)
        optional_deadline = current.created_at + timedelta(seconds=processor.settings.optional_wait_s)
        still_optional = selection.missing_optional if now < optional_deadline else ()
        blocking = [*selection.missing, *still_optional, *([] if timed_out else main.missing)]
        if blocking:
            # Look again when the optional inputs stop being worth waiting for, if that comes first.
            due = min(d for d in (main.due_at, optional_deadline if still_optional else None, main.timeout_at) if d)
            self._jobs.keep_waiting(current.key, blocking, main.window, main.timeout_at, due, now)
            return []
        went_without = (*main.missing, *selection.missing_optional)
        state = JobState.TIMED_OUT_READY if main.missing else JobState.READY
        reply = self._job_ready(processor, current, main, selection, state, went_without)
        if self._jobs.make_ready(current.key, state, went_without, main.window, by, reply.model_dump_json(), now):
            return [reply]
        won = self._jobs.get(current.key)  # a concurrent evaluation won; only its own event answers
        if won is not None and won.ready_by == by and won.reply is not None:
            return [JobReady.model_validate_json(won.reply)]
        return []

    def _satellite(self, main: MainInput) -> str | None:
        units = {o.satellite for o, _ in main.objects if o.satellite}
        return units.pop() if len(units) == 1 else None

    def _main_input(self, processor: Processor, job: Job, now: datetime) -> MainInput:
        s = processor.settings
        if s.trigger is TriggerRule.SESSION:
            objects = session_objects_of(job.subject, session_objects(self._catalog, job.subject))
            state = session_state(objects)
            timeout = session_timeout(job.created_at, state.stop, s.timeout_s, s.minimal_wait_s)
            window = (state.start, state.stop) if state.start and state.stop else None
            placed = tuple((o.object, f"ch0{o.channel}/{o.object.name}") for o in state.objects)
            grace_end = job.created_at + timedelta(seconds=s.minimal_wait_s)
            if state.complete or (state.single_channel and now >= grace_end):
                return MainInput(placed, window, (), timeout)
            return MainInput(placed, window, state.missing, timeout, grace_end if state.single_channel else None)
        if s.trigger is TriggerRule.SEGMENT:
            return self._segments(processor, job)
        found = objects_named(self._catalog, [job.subject]).get(job.subject)
        if found is None or found.validity_start is None or found.validity_stop is None:
            return MainInput((), None, (job.subject,), job.timeout_at)
        window = (found.validity_start, found.validity_stop)
        if s.trigger is TriggerRule.SLICE:
            return MainInput(((found, found.name),), window, (), job.timeout_at)
        if s.trigger is TriggerRule.DATASTRIP:
            return self._datastrip(processor, job, found)
        # Coverage: every product of the covering types intersecting the window, gaps within tolerance.
        covering = self._catalog.select("ValIntersect", processor.covering_types, *window, satellite=found.satellite)
        located = objects_named(self._catalog, [c.name for c in covering])
        gaps = coverage_gaps(((c.validity_start, c.validity_stop) for c in covering), *window, s.gap_tolerance_s)
        missing = tuple(f"coverage gap {a.isoformat()}..{b.isoformat()}" for a, b in gaps)
        placed = tuple((located[c.name], c.name) for c in covering if c.name in located)
        if found.name not in {o.name for o, _ in placed}:
            placed = ((found, found.name), *placed)  # the trigger product is an input even when others cover
        return MainInput(placed, window, missing, job.timeout_at)

    def _segments(self, processor: Processor, job: Job) -> MainInput:
        s = processor.settings
        unit, _, datatake_id = job.subject.partition("_")
        objects = datatake_objects(self._catalog, s.main_types, unit, datatake_id)
        found = [g for g in map(segment_of, objects) if g is not None and g.datatake == job.subject]
        state = segment_state(found)
        timeout = session_timeout(job.created_at, state.stop, s.timeout_s, s.minimal_wait_s)
        window = (state.start, state.stop) if state.start and state.stop else None
        placed = tuple((g.object, g.object.name) for g in state.segments)
        return MainInput(placed, window, state.missing, timeout)

    def _datastrip(self, processor: Processor, job: Job, datastrip: CatalogObject) -> MainInput:
        s = processor.settings
        assert datastrip.validity_start is not None and datastrip.validity_stop is not None
        # Granules start within the datastrip's sensing window (tolerance on both sides); they name it.
        slack = timedelta(seconds=s.gap_tolerance_s + s.granule_duration_s)
        nearby = objects_starting_between(
            self._catalog, s.main_types[1:], datastrip.validity_start - slack, datastrip.validity_stop + slack
        )
        state = datastrip_state(datastrip, nearby, s.detectors, s.granule_duration_s, s.gap_tolerance_s)
        placed = ((datastrip, datastrip.name), *((g, g.name) for g in state.granules))
        window = (datastrip.validity_start, datastrip.validity_stop)
        return MainInput(placed, window, state.missing, job.timeout_at)

    def _job_ready(
        self,
        processor: Processor,
        job: Job,
        main: MainInput,
        selection: InputSelection,
        state: JobState,
        went_without: tuple[str, ...],
    ) -> JobReady:
        assert main.window is not None
        s = processor.settings
        workdir = f"{WORKDIR_ROOT}/{hashlib.sha256(job.key.encode()).hexdigest()[:16]}"
        start, stop = main.window
        order = build_job_order(
            processor.table,
            selection,
            start,
            stop,
            workdir,
            processing_station=s.processing_station,
            parameters=s.parameters,
        )
        placed = {o.name: (o, path) for o, path in main.objects}
        selected = {c.name for t in selection.tasks for i in t.inputs if not i.from_processing for c in i.entries}
        located = objects_named(self._catalog, sorted(selected - set(placed)))
        for name in sorted(selected - set(placed)):
            if name in located:
                placed[name] = (located[name], name)
        inputs = tuple(
            JobInput(
                name=o.name, product_type=o.product_type, bucket=o.bucket, key=o.key, local_path=f"{workdir}/{path}"
            )
            for o, path in sorted(placed.values(), key=lambda item: item[1])
        )
        satellite = self._satellite(main)
        return JobReady(
            job_key=job.key,
            processor=s.name,
            task_table=processor.table_file,
            processor_name=processor.table.processor_name,
            processor_version=processor.table.version,
            mission=s.mission,
            satellite=satellite,
            window_start=start,
            window_stop=stop,
            timed_out=state is JobState.TIMED_OUT_READY,
            missing=went_without,
            job_order=order.to_xml().decode(),
            workdir=workdir,
            inputs=inputs,
            pools=tuple(
                tuple(JobTask(name=t.name, version=t.version, binary=t.file_name) for t in pool.tasks)
                for pool in processor.table.pools
            ),
            outputs=tuple(
                JobOutput(file_type=o.file_type, mandatory=o.mandatory, pattern=f"^.*{re.escape(o.file_type)}.*$")
                for o in _database_outputs(processor)
            ),
            image=s.image,
            resources=dict(s.resources),
            max_time_s=s.max_time_s or processor.table.max_time_s or None,
        )


def _database_outputs(processor: Processor) -> list[Output]:
    """The outputs a job hands on (DB or DBPROC destination), once per file type, mandatory if any says so."""
    by_type: dict[str, Output] = {}
    for task in processor.table.tasks:
        for o in task.outputs:
            if o.destination is Destination.PROC or o.file_type in NOT_PRODUCTS:
                continue
            known = by_type.get(o.file_type)
            by_type[o.file_type] = o if known is None or (o.mandatory and not known.mandatory) else known
    return list(by_type.values())


def _slice_identity(name: str) -> str:
    """A slice without its product unique id: a reprocessed slice is the same job."""
    try:
        product = recognise(name)
    except UnknownProduct:
        return name
    crc = product.name_field("crc")
    stem = name.removesuffix(".SAFE")
    return stem.removesuffix(f"_{crc}") if crc else stem
