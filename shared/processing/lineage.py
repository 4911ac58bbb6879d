"""Lineage: which run made a product, with which processor, from which inputs (tables beside the catalog).

Recorded from ``job.completed`` (the catalog function), whatever the order in which the run's event and
its outputs' ingestion arrive: lineage is keyed by product name. An uploaded product has no lineage row;
its tree is a leaf.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from events.processing import JobCompleted
from shared.catalog.database import CatalogDatabase
from shared.catalog.model import CatalogEntry
from shared.catalog.store import CatalogStore

_DDL = (
    """CREATE TABLE IF NOT EXISTS product_lineage (
        product_name TEXT PRIMARY KEY,
        run_id TEXT NOT NULL,
        job_key TEXT NOT NULL,
        processor TEXT NOT NULL,
        processor_name TEXT NOT NULL,
        processor_version TEXT NOT NULL,
        task_table TEXT NOT NULL,
        produced_at TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS product_lineage_inputs (
        product_name TEXT NOT NULL,
        input_name TEXT NOT NULL,
        PRIMARY KEY (product_name, input_name)
    )""",
    "CREATE INDEX IF NOT EXISTS product_lineage_inputs_input ON product_lineage_inputs (input_name)",
)
MAX_DEPTH = 32  # deeper than any chain: a guard against a cycle a replay could make


class LineageStore:
    def __init__(self, url: str) -> None:
        self.database = CatalogDatabase(url)
        with self.database.connection() as db:
            for statement in _DDL:
                db.execute(statement)

    def record(self, completed: JobCompleted) -> None:
        """The run's outputs and their inputs (a redelivery, or a rerun of the same job, rewrites the same rows)."""
        finished = completed.finished.isoformat()
        with self.database.transaction() as db:
            for output in completed.outputs:
                db.execute(self.database.sql("DELETE FROM product_lineage WHERE product_name = {p}"), (output.name,))
                db.execute(
                    self.database.sql("DELETE FROM product_lineage_inputs WHERE product_name = {p}"), (output.name,)
                )
                db.execute(
                    self.database.sql("INSERT INTO product_lineage VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})"),
                    (output.name, completed.run_id, completed.job_key, completed.processor, completed.processor_name,
                     completed.processor_version, completed.task_table, finished),
                )  # fmt: skip
                for name in completed.inputs:
                    db.execute(
                        self.database.sql("INSERT INTO product_lineage_inputs VALUES ({p}, {p})"), (output.name, name)
                    )

    def inputs_of_all(self) -> dict[str, list[str]]:
        """Every produced product's input names."""
        with self.database.connection() as db:
            rows = db.execute("SELECT product_name, input_name FROM product_lineage_inputs").fetchall()
        inputs: dict[str, list[str]] = {}
        for product, name in rows:
            inputs.setdefault(product, []).append(name)
        return inputs

    def produced(self, name: str) -> dict[str, Any] | None:
        """How ``name`` was made: job, processor, version, task table, run, inputs; None for an upload."""
        with self.database.connection() as db:
            row = db.execute(
                self.database.sql(
                    "SELECT run_id, job_key, processor, processor_name, processor_version, task_table, produced_at"
                    " FROM product_lineage WHERE product_name = {p}"
                ),
                (name,),
            ).fetchone()
            if row is None:
                return None
            inputs = db.execute(
                self.database.sql(
                    "SELECT input_name FROM product_lineage_inputs WHERE product_name = {p} ORDER BY input_name"
                ),
                (name,),
            ).fetchall()
        keys = ("run", "job", "processorConfig", "processor", "version", "taskTable", "producedAt")
        return {**dict(zip(keys, row, strict=True)), "inputs": [r[0] for r in inputs]}

    def outputs_of(self, name: str) -> list[str]:
        """Products made from ``name``."""
        with self.database.connection() as db:
            rows = db.execute(
                self.database.sql(
                    "SELECT product_name FROM product_lineage_inputs WHERE input_name = {p} ORDER BY product_name"
                ),
                (name,),
            ).fetchall()
        return [r[0] for r in rows]

    def tree(self, name: str, depth: int = 0) -> dict[str, Any]:
        """``{"name", "job", "processor", "version", "taskTable", "inputs": [same shape...]}``, down to uploads."""
        made = self.produced(name) if depth < MAX_DEPTH else None
        if made is None:
            return {"name": name, "job": None, "processor": None, "version": None, "taskTable": None, "inputs": []}
        return {
            "name": name,
            "job": made["job"],
            "processor": made["processor"],
            "version": made["version"],
            "taskTable": made["taskTable"],
            "inputs": [self.tree(i, depth + 1) for i in made["inputs"]],
        }


def with_lineage(entry: CatalogEntry, produced: dict[str, Any]) -> CatalogEntry:
    """``entry`` with the attributes saying which run made it (searchable like any attribute in OData)."""
    attributes = {
        **entry.attributes,
        "processorName": produced["processor"],
        "processorVersion": produced["version"],
        "processingJob": produced["job"],
        "processingTaskTable": produced["taskTable"],
    }
    return replace(entry, attributes=attributes, modification_time=datetime.now(UTC))


def mark_produced(catalog: CatalogStore, lineage: LineageStore, name: str) -> None:
    """Put the lineage attributes on ``name``'s catalog entry, when it has both (either may come first)."""
    produced = lineage.produced(name)
    entry = catalog.get_by_name(name) if produced is not None else None
    if produced is not None and entry is not None and entry.attributes.get("processingJob") != produced["job"]:
        catalog.upsert(with_lineage(entry, produced))
