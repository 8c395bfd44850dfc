"""What smss waits on: the kernel's exit events, as NtWaitForMultipleObjects would.

``Exits`` records every exit the kernel publishes and lets a step wait for one pid.
``Watch`` is the master's WaitAny (smss.c): the processes whose death fails the machine
(each session's csrss and initial command, and the session instances it starts) are
registered as they appear, and the master's main thread takes each death the moment
the kernel reports it, never on a poll (the kernel's own reaction to a critical process
is immediate, and smss's must be too).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nt.bootstrap import Process

# Names of 0xC000021A's P1 (smss.c): the wait slots of SmpTerminate, and the init steps.
SUBSYSTEM_NAME = "Windows SubSystem"
INITIAL_COMMAND_NAME = "Windows Logon Process"
INITIALIZATION_NAME = "Session Manager Initialization"
EXECUTE_INITIAL_COMMAND_NAME = "Session Manager ExecuteInitialCommand"
SESSION_INSTANCE = "session instance"  # a copy of smss creating one session (Vista+)
RECHECK = 1.0  # s: a lost exit event is found by asking the kernel this often


class SmpFailure(Exception):
    """A failed smss step: what SmpTerminate raises 0xC000021A with (P1 name, P2 status)
    and the process to blame, if one died. Steps raise it; only the entry functions
    (master, instance) turn it into SmpTerminate."""

    def __init__(self, what: str, status: int, culprit: int = 0) -> None:
        self.what = what
        self.status = int(status)
        self.culprit = culprit
        super().__init__(f"{what}: {self.status:#010x} (culprit {culprit})")


class Exits:
    """Exits reported by the kernel; ``wait`` blocks on one pid until its exit event."""

    def __init__(self, proc: Process) -> None:
        self.proc = proc
        self.status: dict[int, int] = {}
        self.cond = threading.Condition()
        self._listeners: list[Any] = []
        proc.lpc.events.subscribe(self._on_exit)

    def listen(self, callback: Any) -> None:
        """``callback(pid, status)`` in the events thread, for every exit from now on."""
        with self.cond:
            self._listeners.append(callback)

    def _on_exit(self, pid: int, status: int, image: str) -> None:
        with self.cond:
            self.status[pid] = status
            listeners = list(self._listeners)
            self.cond.notify_all()
        for callback in listeners:
            callback(pid, status)

    def exited(self, pid: int) -> int | None:
        with self.cond:
            if pid in self.status:
                return self.status[pid]
        record = self.proc.nt.query_process(pid)  # the event may have gone out before we listened
        return record["exit_status"] if record["state"] == "exited" else None

    def wait(self, pid: int, timeout: float | None = None) -> int | None:
        """The exit status of ``pid``, or None if it is still alive after ``timeout``.
        Woken by the exit event; the kernel is asked again each second in case the event
        went out while the subscription was still being set up (PUB/SUB's slow joiner)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.exited(pid)
            if status is not None:
                return status
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            with self.cond:
                if self.cond.wait_for(lambda: pid in self.status, min(left or RECHECK, RECHECK)):
                    return self.status[pid]


@dataclass(frozen=True)
class Watched:
    what: str  # the P1 name its death raises, or SESSION_INSTANCE
    session: int
    on_end: Callable[[int, bool], None] | None = None  # an on-demand instance: (status, ready)


class Watch:
    """The master's WaitAny, fed by exit events: deaths are queued as they happen."""

    def __init__(self, exits: Exits) -> None:
        self.exits = exits
        self.watched: dict[int, Watched] = {}
        self.ready_sessions: set[int] = set()
        self._deaths: queue.Queue[tuple[int, int]] = queue.Queue()
        self._queued: set[int] = set()
        self._lock = threading.Lock()
        exits.listen(self._on_exit)

    def add(
        self,
        pid: int,
        what: str,
        session: int,
        on_end: Callable[[int, bool], None] | None = None,
    ) -> None:
        """Watch ``pid`` from now on; a death that came before this call still counts."""
        with self._lock:
            self.watched[pid] = Watched(what, session, on_end)
        with self.exits.cond:
            status = self.exits.status.get(pid)
        if status is not None:
            self._queue(pid, status)

    def session_ready(self, session: int) -> None:
        """The session's initial command was handed to its csrss: its instance may go."""
        with self._lock:
            self.ready_sessions.add(session)

    def _on_exit(self, pid: int, status: int) -> None:
        self._queue(pid, status)

    def _recheck(self) -> None:
        with self._lock:
            pending = [pid for pid in self.watched if pid not in self._queued]
        for pid in pending:
            status = self.exits.exited(pid)
            if status is not None:
                self._queue(pid, status)

    def _queue(self, pid: int, status: int) -> None:
        """Once per watched pid, whichever of ``add`` and the exit event comes second."""
        with self._lock:
            if pid not in self.watched or pid in self._queued:
                return
            self._queued.add(pid)
        self._deaths.put((pid, status))

    def next_death(self) -> tuple[int, int, Watched, bool]:
        """(pid, status, what it was, whether its session was ready then): blocks until
        an exit event names a watched process (or, should an event have been lost, until
        the kernel's record says it exited: asked each second)."""
        while True:
            try:
                pid, status = self._deaths.get(timeout=RECHECK)
            except queue.Empty:
                self._recheck()
                continue
            with self._lock:
                watched = self.watched.get(pid)
                if watched is not None:  # not forgotten since (a session ended on purpose)
                    return pid, status, watched, watched.session in self.ready_sessions

    def forget_session(self, session: int) -> None:
        """SmpStopCsr ended ``session`` on purpose: its deaths fail nothing."""
        with self._lock:
            for pid in [p for p, w in self.watched.items() if w.session == session]:
                del self.watched[pid]
                self._queued.add(pid)
            self.ready_sessions.discard(session)
