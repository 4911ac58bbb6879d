"""Reprocessing on the embedded platform: a replay of archived ``product.cataloged`` events prepares jobs
again (its dry run counts exactly what it sends), and ``refsys reprocess`` by an OData filter makes new
products whose lineage names the reprocessing, the first ones untouched."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from shared.platform.client import RunningPlatform
from shared.platform.embedded import EmbeddedPlatform
from shared.processing.chains import run_chain

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("platform")]

CATALOGED = "org.refsys.product.cataloged.v1"


def refsys(platform: EmbeddedPlatform, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shared.cli", *args, "--data-dir", str(platform.data_dir)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def rows(platform: EmbeddedPlatform, sql: str, *params: object) -> list[tuple]:
    with sqlite3.connect(platform.data_dir / "catalog.db", timeout=10) as db:
        return db.execute(sql, params).fetchall()


def eventually(check: Callable[[], bool], what: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.5)


def settled(platform: EmbeddedPlatform, generation: str) -> Callable[[], bool]:
    """The jobs of a reprocessing have all run and what they made is cataloged."""

    def check() -> bool:
        key = f"%~{generation}"
        waiting = "SELECT count(*) FROM processing_jobs WHERE job_key LIKE ? AND state = 'waiting'"
        running = "SELECT count(*) FROM processing_runs WHERE job_key LIKE ? AND state = 'running'"
        uncataloged = ("SELECT count(*) FROM product_lineage l WHERE job_key LIKE ?"
                       " AND NOT EXISTS (SELECT 1 FROM products p WHERE p.name = l.product_name)")  # fmt: skip
        made = "SELECT count(*) FROM product_lineage WHERE job_key LIKE ?"
        counts = [rows(platform, sql, key)[0][0] for sql in (waiting, running, uncataloged, made)]
        return counts[:3] == [0, 0, 0] and counts[3] > 0

    return check


@pytest.fixture(scope="module")
def s3_chain(platform: EmbeddedPlatform) -> list[str]:
    return run_chain(RunningPlatform.find(platform.data_dir), "s3", wait=True, timeout=240)


def test_a_replay_of_cataloged_products_prepares_their_jobs_again(platform: EmbeddedPlatform, s3_chain) -> None:
    level0 = [n for (n,) in rows(platform, "SELECT name FROM products WHERE product_type = 'OL_0_EFR___'")]
    selection = ["--type", CATALOGED, "--product", "S3?_OL_0_EFR*"]
    dry = refsys(platform, "replay", *selection, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout) == {"matched": len(level0), "byType": {CATALOGED: len(level0)}}

    replay = refsys(platform, "replay", *selection, "--rate", "20")
    assert replay.returncode == 0, replay.stderr
    done = json.loads(replay.stdout)
    assert done["state"] == "done" and done["published"] == len(level0)
    eventually(settled(platform, done["id"]), "the replay's jobs ran and their outputs are cataloged")
    again = rows(
        platform, "SELECT subject, state FROM processing_jobs WHERE job_key LIKE ?", f"s3-ol1-nrt:%~{done['id']}"
    )
    assert sorted(subject for subject, _ in again) == sorted(level0)
    assert {state for _, state in again} <= {"ready", "timed-out-ready"}
    # What the replay caused is itself archived as replays: the same dry run still counts the originals only.
    assert json.loads(refsys(platform, "replay", *selection, "--dry-run").stdout)["matched"] == len(level0)
    listed = json.loads(refsys(platform, "replay", "--list").stdout)["replays"]
    assert [r["id"] for r in listed if r["id"] == done["id"]] == [done["id"]]


def test_reprocess_by_filter_makes_new_products_whose_lineage_names_it(platform: EmbeddedPlatform, s3_chain) -> None:
    before = dict(rows(platform, "SELECT name, modification_time FROM products"))
    query = "contains(Name,'_OL_1_EFR___')"
    dry = refsys(platform, "reprocess", "--filter", query, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    counted = json.loads(dry.stdout)
    level1 = [n for (n,) in rows(platform, "SELECT name FROM products WHERE product_type = 'OL_1_EFR___'")]
    assert counted == {"matched": len(level1), "byType": {"OL_1_EFR___": len(level1)}}

    run = refsys(platform, "reprocess", "--filter", query)
    assert run.returncode == 0, run.stderr
    done = json.loads(run.stdout)
    assert done["state"] == "done" and done["published"] == len(level1)
    eventually(settled(platform, done["id"]), "the reprocessing's jobs ran and their outputs are cataloged")
    made = rows(platform, "SELECT product_name, job_key, processor FROM product_lineage WHERE job_key LIKE ?",
                f"%~{done['id']}")  # fmt: skip
    assert made and {processor for _, _, processor in made} == {"s3-ol2-nrt"}
    assert not {name for name, _, _ in made} & set(before)  # new products...
    after = dict(rows(platform, "SELECT name, modification_time FROM products"))
    assert {name: after[name] for name in before} == before  # ...and nothing of the first run touched
    # The lineage names the reprocessing, in OData too.
    lineage = json.loads(refsys(platform, "lineage", made[0][0]).stdout)
    assert lineage["job"].endswith(f"~{done['id']}")


def test_bad_requests_are_refused_with_a_reason(platform: EmbeddedPlatform) -> None:
    bad_filter = refsys(platform, "reprocess", "--filter", "Name eq", "--dry-run")
    assert bad_filter.returncode == 2 and "filter" in bad_filter.stdout
    bad_time = refsys(platform, "replay", "--since", "yesterday", "--dry-run")
    assert bad_time.returncode == 2 and "since" in bad_time.stdout


def test_no_traceback_no_5xx(platform: EmbeddedPlatform) -> None:
    for log in Path(platform.data_dir / "logs").glob("*.log"):
        text = log.read_text(errors="replace")
        assert "Traceback" not in text, f"a traceback in {log.name}: {text[text.find('Traceback') - 500 :][:3000]}"
    stats = platform.broker.stats()
    assert stats["dead-lettered"] == stats["dead"] == 0, stats
