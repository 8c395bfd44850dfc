"""Cluster fixtures: boot the real machine through the user's entry point, wait on its
events (never fixed sleeps), and leave no process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from nt import dump
from nt.logquery import iter_events

REPO = Path(__file__).resolve().parents[2]
BOOT_TIMEOUT = 60
QUERY_FILTERS = {"image", "pid", "session", "level", "event", "since", "until"}


def machine_processes(marker: str) -> set[int]:
    """Live processes of machines booted by tests under ``marker`` (a directory).

    A process of the machine keeps its log file (and the kernel its hives) open under the
    data root, whatever its title; the inherited NTMODEL_TEST_ROOT is checked too, but it
    cannot be trusted alone: setproctitle overwrites the environment block that
    /proc/PID/environ shows.
    """
    marker = marker.rstrip("/")
    found = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid == os.getpid() or _is_zombie(pid):
            continue
        if _has_open_file_under(pid, marker) or _environ_marker(pid).startswith(marker):
            found.add(pid)
    return found


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return True  # gone


def _has_open_file_under(pid: int, marker: str) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target == marker or target.startswith(marker + "/"):
            return True
    return False


def _environ_marker(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read()
    except OSError:
        return ""
    for item in env.split(b"\0"):
        if item.startswith(b"NTMODEL_TEST_ROOT="):
            return item.split(b"=", 1)[1].decode(errors="replace") or "\0"
    return "\0"  # never a prefix of a path


@pytest.fixture(autouse=True)
def no_process_left_behind(tmp_path: Path) -> Iterator[None]:
    yield
    marker = str(tmp_path)
    deadline = time.monotonic() + 5
    while (left := machine_processes(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in left:  # clean up for the next test, then fail this one
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not left, f"processes left behind: {left}"


class Machine:
    """A booted machine in its own data root, driven the way a user drives it."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env

    def ntctl(
        self, *args: str, check: bool = True, timeout: float = 30, input: str | None = None
    ) -> subprocess.CompletedProcess:
        """``ntctl ARGS --root ROOT``; ``input`` is its stdin (a password, never argv)."""
        r = subprocess.run(
            [sys.executable, "-m", "ntctl", *args, "--root", str(self.root)],
            cwd=REPO,
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and r.returncode != 0:
            raise AssertionError(
                f"ntctl {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
            )
        return r

    def boot(self, *extra: str) -> subprocess.CompletedProcess:
        return self.ntctl("boot", "--detach", *extra, check=False, timeout=BOOT_TIMEOUT + 10)

    @property
    def log_dir(self) -> Path:
        return (self.root / "logs" / "latest").resolve()

    def events(self, **filters: object) -> list[dict]:
        """Events of this boot; known filters go to iter_events, others match fields."""
        known = {k: filters.pop(k) for k in list(filters) if k in QUERY_FILTERS}
        return [
            e
            for e in iter_events(self.log_dir, **known)
            if all(e.get(k) == v for k, v in filters.items())
        ]

    def wait_event(self, event: str, timeout: float = 20, **filters: object) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.events(event=event, **filters)
            if found:
                return found[0]
            time.sleep(0.02)
        raise AssertionError(f"no {event} {filters} within {timeout} s")

    def processes(self) -> list[dict]:
        return json.loads(self.ntctl("ps", "--json").stdout)

    def pid_of(self, image: str, session: int | None = None) -> int:
        for p in self.processes():
            if p["image"] == image and (session is None or p["session"] == session):
                return p["pid"]
        raise AssertionError(f"no {image} in session {session}")

    def kernel_pid(self) -> int | None:
        try:
            return json.loads((self.root / "machine.json").read_text())["kernel_pid"]
        except (OSError, ValueError):
            return None

    def wait_stopped(self, timeout: float = 15) -> None:
        """Until the launcher daemon, the kernel and every process of the machine are gone."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._lock_held() and not machine_processes(str(self.root)):
                return
            time.sleep(0.02)
        raise AssertionError("the machine did not stop")

    def _lock_held(self) -> bool:
        lock = self.root / "machine.lock"
        try:
            pid = int(lock.read_text().strip() or 0)
        except (OSError, ValueError):
            return False
        return (
            pid > 0
            and psutil.pid_exists(pid)
            and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        )

    def latest_dump(self) -> dict:
        path = dump.latest_dump(self.root / "C" / "Windows" / "Minidump")
        assert path is not None, "no crash dump was written"
        return dump.read_dump(path)

    def stop(self) -> None:
        if self.kernel_pid() is not None:
            self.ntctl("shutdown", check=False, timeout=30)
        try:
            self.wait_stopped(10)
        except AssertionError:
            for pid in machine_processes(str(self.root)):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


@pytest.fixture
def machine_factory(tmp_path: Path) -> Iterator:
    made: list[Machine] = []

    def make(faults: str = "") -> Machine:
        root = tmp_path / f"m{len(made)}"
        env = dict(os.environ, NTMODEL_TEST_ROOT=str(root), NTMODEL_FAULTS=faults)
        m = Machine(root, env)
        made.append(m)
        return m

    yield make
    for m in made:
        m.stop()


@pytest.fixture
def machine(machine_factory) -> Machine:
    m = machine_factory()
    r = m.boot()
    assert r.returncode == 0, f"boot failed:\n{r.stdout}\n{r.stderr}"
    return m
