"""`refsys up` as a person runs it, and a platform restart that must lose no queued event."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from events import ProductIngested
from shared.ingestion.upload import upload_product
from shared.platform.embedded import EmbeddedPlatform, PlatformAlreadyRunning
from shared.products import write_product
from tests.e2e.test_platform import START, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("platform")]


def processes_using(directory: Path) -> list[int]:
    """Processes whose working directory or command line is inside `directory`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if cwd.startswith(str(directory)) or str(directory) in cmdline:
            found.append(int(proc.name))
    return found


Process = tuple[int, str]  # pid and start time: a pid used again by another process is not the same process


def _stat(pid: int) -> tuple[str, str] | None:
    """State and start time of a process, None when there is no such pid."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], fields[19]  # fields 3 and 22 of proc(5)


def descendants(pid: int) -> set[Process]:
    """Every process below `pid` (children of each of its threads, recursively)."""
    found: set[Process] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            stat = _stat(child)
            if stat is not None:
                found.add((child, stat[1]))
                found |= descendants(child)
    return found


def alive(processes: set[Process]) -> set[Process]:
    """Those still running: zombies are dead (an orphan's may wait for a reaper that never comes here)."""
    still = set()
    for pid, started in processes:
        stat = _stat(pid)
        if stat is not None and stat[1] == started and stat[0] != "Z":
            still.add((pid, started))
    return still


def start_up(data_dir: Path) -> tuple[subprocess.Popen[str], set[Process]]:
    """`refsys up` as a subprocess, once `endpoints.json` is written; with its processes then."""
    endpoints = data_dir / "endpoints.json"
    before = endpoints.stat().st_mtime_ns if endpoints.exists() else None  # a killed platform's file
    up = subprocess.Popen(
        [sys.executable, "-m", "shared.cli", "up", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def written() -> bool:
        return endpoints.exists() and endpoints.stat().st_mtime_ns != before

    wait_for(lambda: written() or up.poll() is not None, "endpoints.json", 120)
    assert up.poll() is None, up.stderr.read() if up.stderr else ""
    children = descendants(up.pid)
    assert any("weed" in Path(f"/proc/{pid}/cmdline").read_text() for pid, _ in children)
    return up, children


def stop_up(up: subprocess.Popen[str], children: set[Process], sig: signal.Signals) -> str:
    """Stop `refsys up` with `sig`: it exits 0 in under 10 s, says so last, and leaves nothing running."""
    started = time.monotonic()
    up.send_signal(sig)
    _, stderr = up.communicate(timeout=60)
    elapsed = time.monotonic() - started
    assert up.returncode == 0, stderr
    assert elapsed < 10, f"stopping took {elapsed:.1f} s"
    assert stderr.strip().splitlines()[-1].startswith("refsys: platform stopped"), stderr
    wait_for(lambda: not alive(children), "no process of the platform left", 5)
    return stderr


def refused(command: str, data_dir: Path) -> None:
    """A second `refsys up`/`demo` on a live data directory: one line, non-zero, nothing touched."""
    endpoints = data_dir / "endpoints.json"
    content, mtime = endpoints.read_bytes(), endpoints.stat().st_mtime_ns
    listing = sorted(p.name for p in data_dir.iterdir())
    second = subprocess.run(
        [sys.executable, "-m", "shared.cli", command, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode != 0
    (line,) = second.stderr.strip().splitlines()
    assert f"a platform is already running with data directory {data_dir}" in line, line
    assert second.stdout == ""
    assert endpoints.read_bytes() == content and endpoints.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in data_dir.iterdir()) == listing


def test_up_refuses_a_second_up_and_stops_on_ctrl_c_in_under_10_s(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    up, children = start_up(data_dir)
    try:
        endpoints = json.loads((data_dir / "endpoints.json").read_text())
        assert requests.get(endpoints["catalog"], timeout=10).json()["count"] == 0
        assert processes_using(data_dir)
        refused("up", data_dir)
        refused("demo", data_dir)
        assert requests.get(endpoints["catalog"], timeout=10).json()["count"] == 0  # the first one still answers
        stop_up(up, children, signal.SIGINT)
    finally:
        if up.poll() is None:
            up.kill()
    assert not (data_dir / "endpoints.json").exists()
    assert processes_using(data_dir) == []


def test_a_killed_up_takes_its_processes_along_and_the_next_up_starts_and_stops_on_sigterm(tmp_path: Path) -> None:
    # Two starts: what follows a SIGKILL is the point of the test.
    data_dir = tmp_path / "data"
    up, children = start_up(data_dir)
    try:
        up.kill()
        up.wait()
        # gunicorn workers notice their master's death within a second; the rest die with `up`.
        wait_for(lambda: not alive(children), "SeaweedFS and the functions to die with `refsys up`", 15)
    finally:
        if up.poll() is None:
            up.kill()
    assert (data_dir / "endpoints.json").exists()  # nobody was left to remove it
    stale = subprocess.run(
        [sys.executable, "-m", "shared.cli", "status", "X", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert stale.returncode == 2 and "was killed" in stale.stderr, stale.stderr

    up, children = start_up(data_dir)  # the lock and SeaweedFS's own were freed with the processes
    try:
        endpoints = json.loads((data_dir / "endpoints.json").read_text())
        assert requests.get(endpoints["catalog"], timeout=10).json()["count"] == 0
        stop_up(up, children, signal.SIGTERM)
    finally:
        if up.poll() is None:
            up.kill()
    assert not (data_dir / "endpoints.json").exists()


def test_a_refused_platform_touches_nothing_and_a_stopped_one_frees_the_directory(tmp_path: Path) -> None:
    first = EmbeddedPlatform(tmp_path)
    first.lock()
    assert (tmp_path / "platform.lock").read_text().strip() == str(os.getpid())
    (tmp_path / "endpoints.json").write_text("{}")
    second = EmbeddedPlatform(tmp_path)
    with pytest.raises(PlatformAlreadyRunning, match=f"pid {os.getpid()}"):
        second.start()
    second.stop()  # owns nothing: must not remove the first one's endpoints
    assert sorted(p.name for p in tmp_path.iterdir()) == ["endpoints.json", "platform.lock"]
    first.stop()
    third = EmbeddedPlatform(tmp_path)
    third.lock()  # free again
    third.stop()


def test_a_restart_in_the_middle_loses_no_queued_event(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = EmbeddedPlatform(data_dir)
    first.start()
    try:
        # With the catalog function down, ingest's announcement waits in the broker's queue. Down for good: the
        # supervisor would restart it in 0.5 s (tests/e2e/test_faults.py tests that).
        first.supervisor.pause()
        catalog = first.functions["catalog"].process
        assert catalog is not None
        os.killpg(catalog.pid, signal.SIGKILL)
        catalog.wait()
        product = write_product(tmp_path, "IW_GRDH_1S", START, seed=7)
        upload_product(first.object_store(), first.settings.inbox_bucket, product)
        wait_for(
            lambda: any(
                d["type"] == ProductIngested.TYPE and d["state"] == "pending" and d["attempts"] >= 1
                for d in first.broker.deliveries()
            ),
            "the product.ingested delivery to fail once and wait for its retry",
        )
    finally:
        first.stop(storage_timeout=3.0)

    second = EmbeddedPlatform(data_dir)
    second.start()
    try:
        catalog_url = str(second.endpoints()["catalog"])
        answer = wait_for(
            lambda: requests.get(catalog_url, params={"name": product.name}, timeout=10).json()["products"],
            "the product cataloged after the restart",
        )
        assert len(answer) == 1  # type: ignore[arg-type]
    finally:
        second.stop(storage_timeout=3.0)
