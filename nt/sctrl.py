"""The service side of the control protocol: StartServiceCtrlDispatcher,
RegisterServiceCtrlHandlerEx, SetServiceStatus (advapi32 ``service/sctrl.c``), without
the pipe.

A service process (svchost.exe -k GROUP, an own-process service, a stand-in, lsass with
ServiceCurrent 0) builds a ``ServiceDispatcher`` from its SERVICE_TABLE_ENTRY list and
feeds it each SCM_CONTROL_PACKET its ``ScReadControlPacket`` returns; the win32 error it
gives back is the SCM_REPLY_PACKET. START_OWN / START_SHARE start the named ServiceMain on
a thread of its own (``spawn``) with ``[name, *arguments]``; STOP with an empty name ends
the dispatcher (the SCM sends it when the process's last service stopped). Other controls
go to the handler the service registered. ``ServiceContext.set_status`` is
SetServiceStatus: it sends RSetServiceStatus through ``report``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from nt.win32 import Win32Error as E
from nt.winsvc import (
    SERVICE_CONTROL_CONTINUE,
    SERVICE_CONTROL_INTERROGATE,
    SERVICE_CONTROL_PAUSE,
    SERVICE_CONTROL_PRESHUTDOWN,
    SERVICE_CONTROL_SHUTDOWN,
    SERVICE_CONTROL_START_OWN,
    SERVICE_CONTROL_START_SHARE,
    SERVICE_CONTROL_STOP,
    SERVICE_PAUSED,
    SERVICE_RUNNING,
    SERVICE_START_PENDING,
    SERVICE_STOP_PENDING,
    SERVICE_STOPPED,
    SERVICE_WIN32_OWN_PROCESS,
    SERVICE_WIN32_SHARE_PROCESS,
)

# HandlerEx(dwControl, dwEventType, lpEventData) -> win32 error (NO_ERROR when handled).
HandlerEx = Callable[[int], int]
ServiceMain = Callable[["ServiceContext", Sequence[str]], None]
ReportFn = Callable[[int, dict[str, int]], int]  # RSetServiceStatus(status_handle, status)
SpawnFn = Callable[[Callable[[], None], str], None]


@dataclass
class ServiceContext:
    """What a ServiceMain holds: its name, its status handle and its handler."""

    name: str
    status_handle: int
    service_type: int
    report: ReportFn
    handler: HandlerEx | None = None
    last_status: dict[str, int] = field(default_factory=dict)

    def register_handler(self, handler: HandlerEx) -> int:
        """RegisterServiceCtrlHandlerEx: returns the status handle."""
        self.handler = handler
        return self.status_handle

    def set_status(
        self,
        state: int,
        controls_accepted: int = 0,
        *,
        win32_exit_code: int = 0,
        service_specific_exit_code: int = 0,
        check_point: int = 0,
        wait_hint: int = 0,
    ) -> int:
        """SetServiceStatus → the SCM's win32 answer (0 on success)."""
        status = {
            "service_type": self.service_type,
            "current_state": state,
            "controls_accepted": controls_accepted,
            "win32_exit_code": win32_exit_code,
            "service_specific_exit_code": service_specific_exit_code,
            "check_point": check_point,
            "wait_hint": wait_hint,
        }
        self.last_status = status
        return self.report(self.status_handle, status)


def run_until_stopped(
    ctx: ServiceContext,
    accepts: int,
    *,
    ignore_stop: bool = False,
    ignore_shutdown: bool = False,
    hang_starting: bool = False,
    when_running: Callable[[], None] | None = None,
) -> None:
    """The whole life of a service that only answers the protocol: RUNNING at once (or one
    START_PENDING checkpoint and never another, ``hang_starting``), PAUSE/CONTINUE and
    INTERROGATE answered, STOP, SHUTDOWN and PRESHUTDOWN → STOP_PENDING then STOPPED (unless
    ``ignore_stop``, for a service the SCM must end itself; ``ignore_shutdown``: SHUTDOWN and
    PRESHUTDOWN are acknowledged and nothing more happens)."""
    stopped = threading.Event()
    ending = (SERVICE_CONTROL_STOP, SERVICE_CONTROL_SHUTDOWN, SERVICE_CONTROL_PRESHUTDOWN)

    def handler(control: int) -> int:
        ignored = ignore_stop or (ignore_shutdown and control != SERVICE_CONTROL_STOP)
        if control in ending and not ignored:
            ctx.set_status(SERVICE_STOP_PENDING, 0, check_point=1, wait_hint=1000)
            stopped.set()
        elif control == SERVICE_CONTROL_PAUSE:
            ctx.set_status(SERVICE_PAUSED, accepts)
        elif control == SERVICE_CONTROL_CONTINUE:
            ctx.set_status(SERVICE_RUNNING, accepts)
        elif control == SERVICE_CONTROL_INTERROGATE:
            last = ctx.last_status
            ctx.set_status(
                last.get("current_state", SERVICE_RUNNING), last.get("controls_accepted", accepts)
            )
        return 0

    ctx.register_handler(handler)
    if hang_starting:
        ctx.set_status(SERVICE_START_PENDING, 0, check_point=1, wait_hint=500)
    else:
        ctx.set_status(SERVICE_RUNNING, accepts)
        if when_running is not None:
            when_running()
    stopped.wait()
    ctx.set_status(SERVICE_STOPPED)


def _thread(fn: Callable[[], None], name: str) -> None:
    threading.Thread(target=fn, name=name, daemon=True).start()


class ServiceDispatcher:
    def __init__(
        self,
        table: Mapping[str, ServiceMain],
        report: ReportFn,
        spawn: SpawnFn = _thread,
        on_main_exception: Callable[[str, BaseException], None] | None = None,
        fallback: ServiceMain | None = None,
    ) -> None:
        self.table = {name.lower(): (name, main) for name, main in table.items()}
        # The stand-in host's table has no names: it runs whatever the SCM starts in it.
        self.fallback = fallback
        self.report = report
        self.spawn = spawn
        self.on_main_exception = on_main_exception
        self.services: dict[str, ServiceContext] = {}
        self.finished = threading.Event()
        self.lock = threading.Lock()

    def handle_packet(self, packet: Mapping[str, object]) -> int:
        """One SCM_CONTROL_PACKET → SCM_REPLY_PACKET.dwError."""
        control = int(str(packet["control"]))
        name = str(packet["service_name"])
        if control in (SERVICE_CONTROL_START_OWN, SERVICE_CONTROL_START_SHARE):
            raw = packet.get("arguments") or []
            arguments = [str(a) for a in raw] if isinstance(raw, list) else []
            return self._start(name, int(str(packet["status_handle"])), control, arguments)
        if control == SERVICE_CONTROL_STOP and not name:
            self.finished.set()  # the process's last service stopped: the dispatcher returns
            return 0
        with self.lock:
            ctx = self.services.get(name.lower())
        if ctx is None:
            return (
                E.ERROR_SERVICE_NOT_IN_EXE
                if name.lower() not in self.table and self.fallback is None
                else E.ERROR_SERVICE_NOT_ACTIVE
            )
        if ctx.handler is None:
            return E.ERROR_SERVICE_CANNOT_ACCEPT_CTRL
        return ctx.handler(control)

    def _start(self, name: str, status_handle: int, control: int, arguments: list[str]) -> int:
        entry = self.table.get(name.lower())
        if entry is None and self.fallback is not None:
            entry = (name, self.fallback)
        if entry is None:
            return E.ERROR_SERVICE_NOT_IN_EXE
        real_name, main = entry
        with self.lock:
            running = self.services.get(name.lower())
            if running is not None and running.last_status.get("current_state") != SERVICE_STOPPED:
                return E.ERROR_SERVICE_ALREADY_RUNNING
            own = control == SERVICE_CONTROL_START_OWN
            ctx = ServiceContext(
                real_name,
                status_handle,
                SERVICE_WIN32_OWN_PROCESS if own else SERVICE_WIN32_SHARE_PROCESS,
                self.report,
            )
            self.services[name.lower()] = ctx

        def service_main() -> None:
            try:
                main(ctx, [real_name, *arguments])
            except Exception as exc:  # a ServiceMain that raises: the service has failed
                if self.on_main_exception is not None:
                    self.on_main_exception(real_name, exc)
                ctx.set_status(SERVICE_STOPPED, win32_exit_code=E.ERROR_EXCEPTION_IN_SERVICE)

        self.spawn(service_main, f"ServiceMain:{real_name}")
        return 0
