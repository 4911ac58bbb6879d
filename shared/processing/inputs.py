"""``select_inputs``: resolve every input of a task table against catalog candidates.

For each task input (references resolved, inputs of other production modes dropped), the alternatives
are tried in their ``Order``: the first DB alternative whose policy selects something wins. A PROC
alternative is produced by an earlier task of the same job, so it always resolves, to a file-type
pattern over the job window, and is never looked up. A mandatory input that resolves to nothing is
reported missing; an optional one is left out of the JobOrder.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from shared.processing.policies import Candidate, select
from shared.processing.tasktable import Alternative, FileNameType, Input, InputMode, Origin, Task, TaskTable


@dataclass(frozen=True, slots=True)
class SelectedInput:
    """One resolved input: the alternative that won and the entries it selected (none for PROC)."""

    input: Input
    alternative: Alternative
    entries: tuple[Candidate, ...]

    @property
    def from_processing(self) -> bool:
        return self.alternative.origin is not Origin.DB


@dataclass(frozen=True, slots=True)
class TaskSelection:
    task: Task
    inputs: tuple[SelectedInput, ...]


@dataclass(frozen=True, slots=True)
class InputSelection:
    tasks: tuple[TaskSelection, ...]
    missing: tuple[str, ...] = field(default=())  # mandatory inputs with nothing selected, by id or file types
    # Optional inputs with nothing selected: left out of the JobOrder; a job may wait for them a while.
    missing_optional: tuple[str, ...] = field(default=())

    @property
    def complete(self) -> bool:
        return not self.missing


def input_label(task_input: Input) -> str:
    return task_input.id or "|".join(task_input.file_types)


def input_modes(table: TaskTable) -> tuple[str, ...]:
    """The production modes ``table``'s inputs are specific to (sorted; ALWAYS inputs left out).

    A table with such inputs (S1 L1: SLICING / NON_SLICING variants of one input; S3: NRT / NTC / STC
    orbit files) needs a production mode: with none, :func:`select_inputs` keeps every variant.
    """
    return tuple(
        sorted(
            {
                table.resolve(i).mode.value
                for task in table.tasks
                for i in task.inputs
                if table.resolve(i).mode is not InputMode.ALWAYS
            }
        )
    )


def select_inputs(
    table: TaskTable,
    candidates: Iterable[Candidate],
    start: datetime,
    stop: datetime,
    mode: str | None = None,
    type_aliases: dict[str, str] | None = None,
) -> InputSelection:
    """Select every input of ``table`` for the job window [start, stop] in production ``mode``.

    ``type_aliases`` maps a task-table file type to the catalog product type when they differ
    (S1 orbits: ``AUX_POE`` -> ``AUX_POEORB``).
    """
    aliases = type_aliases or {}
    by_type: dict[str, list[Candidate]] = defaultdict(list)
    for c in candidates:
        by_type[c.product_type].append(c)

    def in_memory(alternative: Alternative, start: datetime, stop: datetime) -> list[Candidate]:
        entries: Sequence[Candidate] = by_type.get(aliases.get(alternative.file_type, alternative.file_type), [])
        return select(
            alternative.policy,
            entries,
            start,
            stop,
            alternative.t0,
            alternative.t1,
            min_results=alternative.min_results,
            max_results=alternative.max_results,
        )

    return select_inputs_with(table, in_memory, start, stop, mode)


# How one DB alternative is looked up for the window [start, stop]: in memory, or as a catalog query.
Lookup = Callable[[Alternative, datetime, datetime], list[Candidate]]


def select_inputs_with(
    table: TaskTable, lookup: Lookup, start: datetime, stop: datetime, mode: str | None = None
) -> InputSelection:
    """:func:`select_inputs` with the lookup of each DB alternative given (the catalog-query form)."""
    # An input used by several tasks is selected, and reported missing, once: a referenced input is the
    # same object in each task; an input merely repeated (AIOP lists MPL_ORBSCT in three tasks, without
    # an id) is equal in value, so inputs are keyed by value.
    resolved: dict[Input, SelectedInput | None] = {}
    missing: list[str] = []
    missing_optional: list[str] = []
    tasks: list[TaskSelection] = []
    for task in table.tasks:
        chosen: list[SelectedInput] = []
        for ref_or_input in task.inputs:
            task_input = table.resolve(ref_or_input)
            if not task_input.mode.applies_to(mode):
                continue
            if task_input not in resolved:
                resolved[task_input] = _resolve(task_input, lookup, start, stop)
                if resolved[task_input] is None:
                    (missing if task_input.mandatory else missing_optional).append(input_label(task_input))
            selected = resolved[task_input]
            if selected is not None:
                chosen.append(selected)
        tasks.append(TaskSelection(task, tuple(chosen)))
    return InputSelection(tuple(tasks), tuple(missing), tuple(missing_optional))


def _resolve(task_input: Input, lookup: Lookup, start: datetime, stop: datetime) -> SelectedInput | None:
    for alternative in task_input.alternatives:
        if alternative.origin is not Origin.DB:
            return SelectedInput(task_input, alternative, ())
        found = lookup(alternative, start, stop)
        if found:
            return SelectedInput(task_input, alternative, tuple(found))
    return None


__all__ = [
    "FileNameType",
    "InputSelection",
    "Lookup",
    "SelectedInput",
    "TaskSelection",
    "input_modes",
    "select_inputs",
    "select_inputs_with",
]
