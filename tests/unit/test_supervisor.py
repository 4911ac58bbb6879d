"""The supervisor's restart policy, driven pass by pass on a fake clock (no processes, no real waits)."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

import pytest

from shared.platform.supervisor import Backoff, Supervised, Supervisor, describe_exit


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeChild:
    """A child whose death the test decides; counts its restarts."""

    def __init__(self, name: str = "ingest", *, fail_restarts: int = 0) -> None:
        self.name = name
        self.status: int | None = None
        self.restarts = 0
        self.fail_restarts = fail_restarts

    def die(self, status: int = -signal.SIGKILL) -> None:
        self.status = status

    def restart(self) -> None:
        if self.fail_restarts:
            self.fail_restarts -= 1
            raise OSError("cannot start")
        self.restarts += 1
        self.status = None

    def supervised(self) -> Supervised:
        return Supervised(self.name, Path(f"/logs/{self.name}.log"), lambda: self.status, self.restart)


def supervise(*children: FakeChild, backoff: Backoff | None = None) -> tuple[Supervisor, FakeClock]:
    clock = FakeClock()
    return Supervisor([child.supervised() for child in children], backoff=backoff, clock=clock), clock


def restart_delays(child: FakeChild, supervisor: Supervisor, clock: FakeClock, deaths: int) -> list[float]:
    """Kill `child` `deaths` times in a row (each time right after its restart) and measure each wait on the
    fake clock, advancing it 0.25 s (exact in binary) per pass."""
    delays = []
    for _ in range(deaths):
        child.die()
        died_at, before = clock.now, child.restarts
        supervisor.check()
        while child.restarts == before:
            clock.now += 0.25
            supervisor.check()
        delays.append(clock.now - died_at)
    return delays


def test_backoff_doubles_from_half_a_second_up_to_ten() -> None:
    backoff = Backoff()
    assert [backoff.delay(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    with pytest.raises(ValueError):
        backoff.delay(0)


def test_a_running_child_is_left_alone() -> None:
    child = FakeChild()
    supervisor, clock = supervise(child)
    for _ in range(10):
        clock.now += 5
        supervisor.check()
    assert child.restarts == 0


def test_a_dead_child_is_restarted_after_the_backoff_and_not_before() -> None:
    child = FakeChild()
    supervisor, clock = supervise(child)
    child.die()
    supervisor.check()
    assert child.restarts == 0  # noticed, restart scheduled in 0.5 s
    clock.now += 0.25
    supervisor.check()
    assert child.restarts == 0
    clock.now += 0.25
    supervisor.check()
    assert child.restarts == 1 and supervisor.restarts == 1


def test_deaths_in_a_row_wait_longer_each_time_up_to_the_maximum() -> None:
    child = FakeChild()
    supervisor, clock = supervise(child)
    assert restart_delays(child, supervisor, clock, 7) == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_a_child_that_stayed_up_long_enough_starts_again_from_the_shortest_wait() -> None:
    child = FakeChild()
    supervisor, clock = supervise(child, backoff=Backoff(reset_after=30))
    assert restart_delays(child, supervisor, clock, 3) == [0.5, 1.0, 2.0]
    clock.now += 29
    supervisor.check()
    assert restart_delays(child, supervisor, clock, 1) == [4.0]  # not up long enough: still in a row
    clock.now += 30
    supervisor.check()
    assert restart_delays(child, supervisor, clock, 1) == [0.5]


def test_each_child_has_its_own_backoff() -> None:
    ingest, storage = FakeChild("ingest"), FakeChild("storage")
    supervisor, clock = supervise(ingest, storage)
    assert restart_delays(ingest, supervisor, clock, 3) == [0.5, 1.0, 2.0]
    assert restart_delays(storage, supervisor, clock, 1) == [0.5]
    assert ingest.restarts == 3


def test_a_restart_that_fails_is_tried_again_with_a_longer_wait(caplog: pytest.LogCaptureFixture) -> None:
    child = FakeChild(fail_restarts=1)
    supervisor, clock = supervise(child)
    child.die()
    supervisor.check()
    clock.now += 0.5
    supervisor.check()  # the restart raises: logged, the child is still dead
    assert child.restarts == 0
    assert "restarting ingest failed" in caplog.text
    supervisor.check()  # seen dead again: second death in a row
    clock.now += 0.75
    supervisor.check()
    assert child.restarts == 0
    clock.now += 0.25
    supervisor.check()
    assert child.restarts == 1


def test_one_warning_per_restart_says_how_it_died_and_where_its_log_is(caplog: pytest.LogCaptureFixture) -> None:
    child = FakeChild()
    supervisor, clock = supervise(child)
    caplog.set_level(logging.INFO, logger="shared.platform.supervisor")
    restart_delays(child, supervisor, clock, 2)
    child.die(3)
    supervisor.check()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert "ingest killed by SIGKILL; restarting it in 0.5 s" in warnings[0]
    assert "/logs/ingest.log" in warnings[0]
    assert "ingest exited with code 3; restarting it in 2.0 s" in warnings[2]


def test_exit_descriptions() -> None:
    assert describe_exit(-9) == "killed by SIGKILL"
    assert describe_exit(1) == "exited with code 1"
    assert describe_exit(-200) == "killed by signal 200"


def test_nothing_is_restarted_once_paused_and_the_thread_stays_until_released() -> None:
    child = FakeChild()
    checked = threading.Event()
    supervised = child.supervised()

    def status() -> int | None:
        checked.set()
        return supervised.exit_status()

    supervisor = Supervisor(
        [Supervised(child.name, supervised.log_path, status, child.restart)],
        backoff=Backoff(initial=0.0),
        interval=0.01,
    )
    supervisor.start()
    assert checked.wait(10)
    supervisor.pause()
    child.die()
    thread = supervisor._thread
    assert thread.is_alive()  # parked: the children it forked must not lose their forking thread yet
    supervisor.check()  # a pass after the pause notices the death but restarts nothing
    assert child.restarts == 0
    supervisor.release()
    assert not thread.is_alive()
