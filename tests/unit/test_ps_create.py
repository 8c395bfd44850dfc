"""ProcessManager.create never publishes half-built state (issue 5): a child killed
between any two steps of its creation is reaped and reported like any other death, and
the failed creation leaves no pipe, no pidfd and no "suspended" record behind."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from nt.status import NtStatus
from processes.kernel.ps import ProcessManager, ProcessRecord, PsError

STEPS = ("spawned", "watched", "written")


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture
def manager(tmp_path: Path):
    exits: dict[int, ProcessRecord] = {}
    seen = threading.Condition()

    def on_exit(record: ProcessRecord) -> None:
        with seen:
            exits[record.pid] = record
            seen.notify_all()

    base = {"key": b"k" * 32, "boot_id": "test", "runtime": str(tmp_path), "root": str(tmp_path)}
    base |= {"kernel_pid": os.getpid(), "profile": "win10", "options": {}, "faults": ""}
    pm = ProcessManager(base, tmp_path, structlog.get_logger(), on_exit)
    pm.start()

    def wait_exit(pid: int) -> ProcessRecord:
        with seen:
            assert seen.wait_for(lambda: pid in exits, timeout=10), f"death of {pid} not seen"
            return exits[pid]

    pm.wait_exit = wait_exit
    return pm


@pytest.mark.parametrize("step", STEPS)
def test_a_child_killed_at_each_step_of_its_creation_is_seen_and_nothing_leaks(
    manager, step: str
) -> None:
    killed: list[int] = []

    def kill_at(done: str, record: ProcessRecord) -> None:
        if done == step:
            killed.append(record.pid)
            os.kill(record.pid, signal.SIGKILL)

    manager.fault = kill_at
    before = open_fds()
    with capture_logs() as logs:
        try:
            record = manager.create("autochk.exe", "autochk.exe *", {}, 0, os.getpid())
        except PsError as exc:  # the parameters could not be written: it is gone
            assert exc.status == NtStatus.STATUS_PROCESS_IS_TERMINATING
            record = None
        (pid,) = killed
        dead = manager.wait_exit(pid)
    assert dead.signal == signal.SIGKILL and dead.state == "exited"
    assert dead.resume_fd is None
    published = manager.get(pid)
    if record is None:
        assert published is None, "a failed creation published its record"
    else:
        assert published is record and record.state == "exited"
        assert manager.resume(pid) == NtStatus.STATUS_INVALID_CID
    assert open_fds() == before, "a pipe or pidfd of the dead child leaked"
    assert not [p for p in manager.live() if p.pid == pid]
    creates = [e for e in logs if e["event"] == "proc.create"]
    assert bool(creates) == (record is not None)


def test_no_creation_starts_once_the_gate_is_closed(manager) -> None:
    manager.close_creation()
    with pytest.raises(PsError) as exc:
        manager.create("autochk.exe", "autochk.exe *", {}, 0, os.getpid())
    assert exc.value.status == NtStatus.STATUS_SHUTDOWN_IN_PROGRESS


def test_kill_all_waits_for_a_creation_in_flight_and_stops_it(manager) -> None:
    """KeBugCheckEx's kill_all during a creation: the new process is among its victims."""
    in_flight, release = threading.Event(), threading.Event()
    victims: list[int] = []

    def hold(done: str, record: ProcessRecord) -> None:
        if done == "watched":
            in_flight.set()
            release.wait(10)

    manager.fault = hold
    creator = threading.Thread(
        target=lambda: manager.create("autochk.exe", "autochk.exe *", {}, 0, os.getpid())
    )
    creator.start()
    assert in_flight.wait(10)
    stopper = threading.Thread(target=lambda: victims.extend(manager.kill_all()))
    stopper.start()
    stopper.join(0.2)
    assert stopper.is_alive(), "kill_all took its list while a creation was in flight"
    release.set()
    creator.join(10)
    stopper.join(10)
    (pid,) = victims
    assert manager.wait_exit(pid).signal == signal.SIGKILL
    assert manager.wait_all(5)
