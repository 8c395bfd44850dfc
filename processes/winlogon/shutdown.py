"""The Windows shutdown as winlogon of the console session runs it, without sockets
(nt-spec §1.4, §3.10, §4.10; reliability-security §1.4, §6.5).

``InitiateSystemShutdownEx`` arrives as ``BaseInitiateShutdownEx``: event 1074 records who
asked and why, then either a countdown (``-t``; ``BaseAbortShutdown`` stops it) or the
shutdown at once. Another request while one is pending or under way is
ERROR_SHUTDOWN_IN_PROGRESS (1115); an abort with none pending is
ERROR_NO_SHUTDOWN_IN_PROGRESS (1116). The shutdown itself, in phases, each logged as
``shutdown.phase`` with its duration:

1. ``apps``: LSM is told (no new session from now on), then every session's winlogon runs
   ExitWindowsEx(EWX_SHUTDOWN) in its csrss (user processes first, by shutdown level;
   hung ones killed after the scaled HungAppTimeout/WaitToKillAppTimeout), the console
   session last;
2. ``services``: the SCM's PRESHUTDOWN (in PreshutdownOrder, each up to its timeout) and
   SHUTDOWN (within WaitToKillServiceTimeout); EventLog writes 6006 as it stops;
3. NtShutdownSystem: the kernel ends smss and what is left, then flushes and closes the
   hives (its own ``smss`` and ``kernel`` phases).

``ShutdownBackend`` is how the coordinator reaches the rest of the machine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from nt.log import get_logger
from nt.win32 import Win32Error

log = get_logger()

EWX_SHUTDOWN = 0x1
EWX_REBOOT = 0x2
EWX_FORCE = 0x4
EWX_POWEROFF = 0x8


class ShutdownBackend(Protocol):
    def report_1074(self, request: ShutdownRequest) -> None: ...

    def notify_lsm(self, event: str) -> None: ...

    def sessions(self) -> list[int]:
        """Session ids with a winlogon (not session 0), in LSM's order."""
        ...

    def end_session_apps(self, session: int, flags: int) -> int:
        """That session's winlogon: ExitWindowsEx(flags) in its csrss (an NTSTATUS)."""
        ...

    def preshutdown_services(self) -> str:
        """The SCM's PRESHUTDOWN round; returns what happened (or why it was skipped)."""
        ...

    def shutdown_services(self) -> str:
        """The SCM's SHUTDOWN round; returns what happened (or why it was skipped)."""
        ...

    def nt_shutdown(self, reboot: bool) -> None: ...


@dataclass(frozen=True)
class ShutdownRequest:
    """BaseInitiateShutdownEx's arguments and who called (for 1074)."""

    comment: str = ""
    timeout: int = 0
    force: bool = False
    reboot: bool = False
    reason: int = 0
    process: str = ""
    pid: int = 0
    user: str = ""

    @property
    def flags(self) -> int:
        flags = EWX_REBOOT if self.reboot else EWX_SHUTDOWN | EWX_POWEROFF
        return flags | (EWX_FORCE if self.force else 0)

    @property
    def kind(self) -> str:
        return "restart" if self.reboot else "power off"


class ShutdownCoordinator:
    """Pending → running; ``timer`` is threading.Timer-like (a test passes a fake)."""

    def __init__(
        self,
        backend: ShutdownBackend,
        *,
        scale: float = 1.0,
        timer: Callable[[float, Callable[[], None]], threading.Timer] = threading.Timer,
    ) -> None:
        self.backend = backend
        self.scale = scale  # the model's seconds per Windows second (shutdown -t)
        self._timer_factory = timer
        self._lock = threading.Lock()
        self.pending: ShutdownRequest | None = None
        self.running = False
        self._timer: threading.Timer | None = None
        self.done = threading.Event()

    def initiate(self, request: ShutdownRequest) -> int:
        with self._lock:
            if self.pending is not None or self.running:
                log.warning("shutdown.refused", by_pid=request.pid, error=1115)
                return Win32Error.ERROR_SHUTDOWN_IN_PROGRESS
            self.pending = request
        self.backend.report_1074(request)
        self.backend.notify_lsm("shutdown")
        log.info(
            "shutdown.initiated",
            by_pid=request.pid,
            by_image=request.process,
            user=request.user,
            reboot=request.reboot,
            timeout_s=request.timeout,
            comment=request.comment,
        )
        if request.timeout:
            timer = self._timer_factory(request.timeout * self.scale, self._expired)
            timer.daemon = True
            with self._lock:
                self._timer = timer
            timer.start()
        else:
            self._expired()
        return Win32Error.ERROR_SUCCESS

    def abort(self, pid: int = 0) -> int:
        with self._lock:
            if self.running:
                return Win32Error.ERROR_SHUTDOWN_IN_PROGRESS  # past the point of no return
            if self.pending is None:
                return Win32Error.ERROR_NO_SHUTDOWN_IN_PROGRESS
            self.pending = None
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        self.backend.notify_lsm("shutdown_aborted")
        log.info("shutdown.aborted", by_pid=pid)
        return Win32Error.ERROR_SUCCESS

    def _expired(self) -> None:
        with self._lock:
            request = self.pending
            if request is None or self.running:
                return  # aborted in the meantime
            self.running = True
        threading.Thread(target=self.run, args=(request,), name="ShutdownThread").start()

    def run(self, request: ShutdownRequest) -> None:
        t0 = time.monotonic()
        phase_start = t0

        def phase(name: str, **kw: object) -> None:
            nonlocal phase_start
            now = time.monotonic()
            log.info("shutdown.phase", phase=name, ms=round((now - phase_start) * 1000, 3), **kw)
            phase_start = now

        sessions = self.backend.sessions()
        console_last = sorted(sessions, key=lambda s: (s == 1, s))
        results = {}
        for session in console_last:
            results[session] = self.backend.end_session_apps(session, request.flags)
        phase("apps", sessions=console_last, statuses=list(results.values()))
        phase("preshutdown", scm=self.backend.preshutdown_services())
        what = self.backend.shutdown_services()
        phase("services", scm=what)
        log.info(
            "shutdown.nt_shutdown",
            reboot=request.reboot,
            total_ms=round((time.monotonic() - t0) * 1000, 3),
        )
        self.backend.nt_shutdown(request.reboot)
        self.done.set()
