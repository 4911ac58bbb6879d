"""``refsys jobs list|show|tick`` over a jobs table in a SQLite catalog file."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.catalog import open_catalog
from shared.processing import jobs_cli
from shared.processing.jobs import JobStore

T = datetime(2024, 5, 1, tzinfo=UTC)


def run(argv: list[str], data_dir: Path) -> int:
    parser = argparse.ArgumentParser(prog="refsys")
    commands = parser.add_subparsers(required=True)

    def add_data_dir(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", type=Path, default=data_dir)

    jobs_cli.register(commands, add_data_dir)
    args = parser.parse_args(argv)
    code: int = args.command(args)
    return code


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    open_catalog(url).close()  # the platform's catalog exists before any job
    store = JobStore(url)
    store.open_job("s1-aiop:L1", "s1-aiop", "L1", T, T + timedelta(hours=2))
    store.keep_waiting("s1-aiop:L1", ["DSIB ch2"], (T, T + timedelta(minutes=10)), T + timedelta(hours=2), None, T)
    store.close()
    return tmp_path


def test_jobs_list_prints_the_waiting_job_with_what_it_misses(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["jobs", "list"], data_dir) == 0
    (job,) = json.loads(capsys.readouterr().out)
    assert job["key"] == "s1-aiop:L1" and job["state"] == "waiting" and job["missing"] == ["DSIB ch2"]
    assert run(["jobs", "list", "--state", "ready"], data_dir) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_jobs_show_prints_one_job_or_exits_2(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["jobs", "show", "s1-aiop:L1"], data_dir) == 0
    assert json.loads(capsys.readouterr().out)["timeoutAt"] == "2024-05-01T02:00:00Z"
    assert run(["jobs", "show", "nope"], data_dir) == 2
    assert "no job 'nope'" in capsys.readouterr().err


def test_jobs_tick_keeps_a_session_without_any_dsib_waiting(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The job's timeout (2024) has passed by now, but its session has no DSIB at all: still waiting.
    assert run(["jobs", "tick"], data_dir) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert run(["jobs", "show", "s1-aiop:L1"], data_dir) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "waiting"
