"""What a service DLL gets from its host: svchost's SVCHOST_GLOBAL_DATA, and the service
side of the status protocol every modelled service shares.

A ServiceDll loaded by svchost.exe may export ``SvchostPushServiceGlobals``; svchost calls
it with its global data before the first ServiceMain (svchost.c does exactly this with
``PSVCHOST_GLOBAL_DATA``: well-known SIDs, RPC helpers, the process's shared state). In
the model that data is what a service needs from the process it lives in: its logger, the
registry (the kernel's configuration manager, through ``nt.syscalls.SystemServices``), the
LPC runtime (to serve or connect ports), the data root, the boot id and the clock. An
own-process service (spoolsv.exe, TrustedInstaller.exe) builds the same record from its
bootstrap ``Process`` (``from_process``).

``ModelService`` is the skeleton a modelled ServiceMain runs: register the handler, report
START_PENDING with a checkpoint and wait hint while it initialises, RUNNING with its
accepted controls, call ``poll`` every ``interval`` seconds until a STOP, SHUTDOWN or
PRESHUTDOWN arrives, then STOP_PENDING and STOPPED (with the win32 exit code of a failed
start). Subclasses say what the service *does* in ``on_start``/``poll``/``on_stop``; the
protocol lives here once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from nt.log import Logger, get_logger
from nt.sctrl import ServiceContext
from nt.win32 import Win32Error as E
from nt.winsvc import (
    SERVICE_ACCEPT_PAUSE_CONTINUE,
    SERVICE_ACCEPT_PRESHUTDOWN,
    SERVICE_ACCEPT_SHUTDOWN,
    SERVICE_ACCEPT_STOP,
    SERVICE_CONTROL_CONTINUE,
    SERVICE_CONTROL_INTERROGATE,
    SERVICE_CONTROL_PAUSE,
    SERVICE_CONTROL_PRESHUTDOWN,
    SERVICE_CONTROL_SHUTDOWN,
    SERVICE_CONTROL_STOP,
    SERVICE_PAUSED,
    SERVICE_RUNNING,
    SERVICE_START_PENDING,
    SERVICE_STOP_PENDING,
    SERVICE_STOPPED,
)

SYSTEM_CCS = "\\Registry\\Machine\\SYSTEM\\CurrentControlSet"
SOFTWARE = "\\Registry\\Machine\\SOFTWARE"


class Registry(Protocol):
    """The registry calls services make (``nt.syscalls.SystemServices`` has them all);
    failures raise ``nt.syscalls.NtError`` with the NTSTATUS."""

    def query_value(self, path: str, name: str) -> tuple[int, Any]: ...

    def set_value(self, path: str, name: str, type: int, data: Any) -> None: ...

    def delete_value(self, path: str, name: str) -> None: ...

    def enum_keys(self, path: str) -> list[str]: ...

    def enum_values(self, path: str) -> list[tuple[Any, ...]]: ...

    def create_key(self, path: str, volatile: bool = False) -> bool: ...

    def delete_key(self, path: str, tree: bool = False) -> None: ...

    def key_exists(self, path: str) -> bool: ...


@dataclass
class SvchostGlobalData:
    """SVCHOST_GLOBAL_DATA, the model's: what the host process shares with its services."""

    log: Logger
    registry: Registry
    root: Path  # the data root: the system drive is root / "C"
    boot_id: str
    lpc: Any = None  # ports.runtime.LpcRuntime (nt/ does not import ports/); None in tests
    kernel: Any = None  # nt.syscalls.SystemServices for processes and events; None in tests
    clock: Callable[[], float] = time.time  # wall clock, seconds since the epoch
    image: str = "svchost.exe"

    @property
    def system32(self) -> Path:
        return self.root / "C" / "Windows" / "System32"

    def host_path(self, path: str) -> Path:
        """``C:\\Users\\Public`` (or ``%SystemRoot%\\...``) → its file under the data root."""
        from nt.dospath import host_path

        return host_path(self.root, path)

    def value(self, path: str, name: str, default: Any = None) -> Any:
        """A value's data, or ``default`` when the key or value is absent."""
        try:
            return self.registry.query_value(path, name)[1]
        except Exception:  # NtError (absent) or a fake's KeyError: the default stands
            return default


def from_process(proc: Any) -> SvchostGlobalData:
    """The global data of a running image (a bootstrap ``Process``)."""
    return SvchostGlobalData(
        log=proc.log,
        registry=proc.nt,
        root=proc.root,
        boot_id=proc.params["boot_id"],
        lpc=proc.lpc,
        kernel=proc.nt,
        image=proc.image,
    )


class ServiceError(Exception):
    """A start that fails: the service reports STOPPED with this win32 exit code."""

    def __init__(self, win32: int, what: str = "") -> None:
        self.win32 = win32
        super().__init__(what or str(win32))


@dataclass
class ModelService:
    """One modelled service's life: START_PENDING → RUNNING → (poll)* → STOPPED."""

    ctx: ServiceContext
    argv: Sequence[str]
    g: SvchostGlobalData
    accepted: ClassVar[int] = SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN
    interval: ClassVar[float | None] = None  # seconds between polls; None: no polling
    start_wait_hint_ms: ClassVar[int] = 3000
    # Where this service departs from Windows: logged as ``divergence`` events at start.
    divergences: ClassVar[tuple[str, ...]] = ()
    stop_event: threading.Event = field(default_factory=threading.Event)
    stop_control: int = 0
    check_point: int = 0
    state: int = SERVICE_STOPPED

    @property
    def log(self) -> Logger:
        return self.g.log

    @property
    def params_key(self) -> str:
        return f"{SYSTEM_CCS}\\Services\\{self.ctx.name}\\Parameters"

    # -- what a service does (override) --------------------------------------------------
    def on_start(self) -> None:
        """Initialise; raise ServiceError to fail the start. Call ``pending()`` for long
        steps so the SCM sees the checkpoint move (no 7022 "hung on starting")."""

    def poll(self) -> None:
        """Periodic work while RUNNING (every ``interval`` seconds)."""

    def on_stop(self, control: int) -> None:
        """Clean up; ``control`` is STOP, SHUTDOWN or PRESHUTDOWN (0: the service ended
        itself through ``stop_by_itself``)."""

    def on_control(self, control: int) -> int:
        """Controls beyond stop/interrogate (PARAMCHANGE, PAUSE...)."""
        return E.ERROR_CALL_NOT_IMPLEMENTED

    # -- the protocol ----------------------------------------------------------------------
    def report(self, state: int, **kw: int) -> None:
        self.state = state
        accepted = self.accepted if state in (SERVICE_RUNNING, SERVICE_PAUSED) else 0
        self.ctx.set_status(state, accepted, **kw)

    def pending(self, wait_hint_ms: int | None = None) -> None:
        """START_PENDING with the next checkpoint (SetServiceStatus while initialising)."""
        self.check_point += 1
        self.report(
            SERVICE_START_PENDING,
            check_point=self.check_point,
            wait_hint=self.start_wait_hint_ms if wait_hint_ms is None else wait_hint_ms,
        )

    def handler(self, control: int) -> int:
        """HandlerEx: stop-like controls end the poll loop; INTERROGATE re-reports."""
        if control == SERVICE_CONTROL_INTERROGATE:
            return E.ERROR_SUCCESS
        stops = {SERVICE_CONTROL_STOP: SERVICE_ACCEPT_STOP}
        stops[SERVICE_CONTROL_SHUTDOWN] = SERVICE_ACCEPT_SHUTDOWN
        stops[SERVICE_CONTROL_PRESHUTDOWN] = SERVICE_ACCEPT_PRESHUTDOWN
        if control in stops:
            if not self.accepted & stops[control] or self.state not in (
                SERVICE_RUNNING,
                SERVICE_PAUSED,
            ):
                return E.ERROR_INVALID_SERVICE_CONTROL
            self.stop_control = control
            self.report(SERVICE_STOP_PENDING, check_point=1, wait_hint=5000)
            self.stop_event.set()
            return E.ERROR_SUCCESS
        if control in (SERVICE_CONTROL_PAUSE, SERVICE_CONTROL_CONTINUE):
            return self._pause(control == SERVICE_CONTROL_PAUSE)
        return self.on_control(control)

    def _pause(self, pause: bool) -> int:
        """PAUSE / CONTINUE for a service accepting them: polling holds while paused."""
        if not self.accepted & SERVICE_ACCEPT_PAUSE_CONTINUE:
            return E.ERROR_INVALID_SERVICE_CONTROL
        if self.state not in (SERVICE_RUNNING, SERVICE_PAUSED):
            return E.ERROR_SERVICE_NOT_ACTIVE
        self.report(SERVICE_PAUSED if pause else SERVICE_RUNNING)
        self.log.info("svc.paused" if pause else "svc.continued", service=self.ctx.name)
        return E.ERROR_SUCCESS

    def stop_by_itself(self) -> None:
        """The service's work is done (TrustedInstaller idle): it stops on its own."""
        self.stop_event.set()

    def run(self) -> None:
        """The ServiceMain body: returns after STOPPED has been reported."""
        self.ctx.register_handler(self.handler)
        for what in self.divergences:
            self.log.info("divergence", what=what, service=self.ctx.name)
        self.pending()
        try:
            self.on_start()
        except ServiceError as exc:
            self.log.error("svc.start_failed", service=self.ctx.name, error=exc.win32, why=str(exc))
            self.report(SERVICE_STOPPED, win32_exit_code=exc.win32)
            return
        self.report(SERVICE_RUNNING)
        self.log.info("svc.running", service=self.ctx.name)
        while not self.stop_event.wait(self.interval):
            if self.state == SERVICE_RUNNING:
                self.poll()
        try:
            self.on_stop(self.stop_control)
        finally:
            self.log.info("svc.stopped", service=self.ctx.name, control=self.stop_control)
            self.report(SERVICE_STOPPED)


class GlobalsSlot:
    """A DLL's SvchostPushServiceGlobals target, with the fallback for a host that never
    pushes (a test, or a host that predates the export): a logger-only record."""

    def __init__(self) -> None:
        self.data: SvchostGlobalData | None = None

    def push(self, data: SvchostGlobalData | Mapping[str, Any]) -> None:
        """svchost's push: the record itself, or ``{"process": proc}`` (svchost.py hands
        its bootstrap Process; the record is built from it)."""
        if isinstance(data, SvchostGlobalData):
            self.data = data
        else:
            self.data = from_process(data["process"])

    def get(self) -> SvchostGlobalData:
        if self.data is None:
            raise ServiceError(E.ERROR_SERVICE_NO_THREAD, "SvchostPushServiceGlobals not called")
        return self.data


def service_main(cls: type[ModelService], slot: GlobalsSlot) -> Callable[..., None]:
    """A ServiceMain(ctx, argv) running ``cls`` with the host's pushed globals."""

    def ServiceMain(ctx: ServiceContext, argv: Sequence[str]) -> None:
        try:
            g = slot.get()
        except ServiceError as exc:
            get_logger().error("svc.no_globals", service=ctx.name)
            ctx.set_status(SERVICE_STOPPED, win32_exit_code=exc.win32)
            return
        cls(ctx, argv, g).run()

    ServiceMain.__qualname__ = f"{cls.__name__}.ServiceMain"
    return ServiceMain
