"""The service control manager, without sockets (services.c, database.c, rpcserver.c).

``ScmCore`` holds what services.exe keeps in globals: the service database, the images
(processes) and their control connections, the auto-start state. Its outside world is
injected, so the whole state machine runs under a fake clock in tests:

- ``ScmKernel``: create a process suspended, resume it, terminate it, set its priority,
  say whether an image exists, load a driver, set a named event, run a recovery command,
  reboot, report memory size, accept the boot (LastKnownGood), hear of an ErrorControl
  SEVERE/CRITICAL failure at boot;
- ``Clock``: ``now()`` and ``call_later(delay, fn)`` (every timeout is a timer, never a
  sleep: ServicesPipeTimeout, hung start, WaitToKillServiceTimeout, restart delays,
  AutoStartDelay); ``timers.TimerThread`` is the live one;
- ``ControlChannel``: the connected dispatcher of one image (``send(packet)``);
  ``controlpipe.PipeChannel`` is the live one;
- ``ServiceStore`` (optional): where configuration changes become durable;
- ``order``: the start order (``start.svcorder_order``: nt/svcorder over the database).

The core is single-threaded: every caller holds ``core.lock`` (the svcctl and control-pipe
handler tables take it; the timer thread takes it). The wiring calls in with what the
ports saw: ``control_connect`` (a dispatcher connected with its ServiceCurrent),
``control_reply`` (ScWriteReplyPacket), ``set_service_status`` (RSetServiceStatus),
``process_exited`` (the kernel's exit event), ``mark_drivers_loaded`` (the kernel's
driver list), ``auto_start``, ``shutdown_services``. Every long operation completes through
a callback taking the win32 error, so a port handler answers from ``client.defer()``.

Submodules, named as in ReactOS: database (ScmCreateServiceDatabase), image (service
images), start (RStartServiceW, ScmAutoStartServices, delayed auto-start), control
(RControlService, RSetServiceStatus, the timeouts), recovery (FailureActions), config
(create, change, delete, query), shutdown (preshutdown, shutdown), rpcserver (the svcctl
handlers), controlpipe (the control pipe's SCM end), timers (the live clock).
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from nt.evtmsg import EventRecord, report_event
from nt.log import get_logger
from processes.services import control as ctl
from processes.services import shutdown as shut
from processes.services import start
from processes.services.database import ServiceDatabase, ServiceRecord
from processes.services.image import ControlPacket, ServiceImage

log = get_logger()

Done = Callable[[int], None]
REPORTED_KEPT = 1000


def _ignore(_error: int) -> None:
    """A completion nobody waits for (auto-start, recovery restarts)."""


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds."""
        ...

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> Timer: ...


class ControlChannel(Protocol):
    def send(self, packet: ControlPacket) -> None:
        """Hand ``packet`` to the dispatcher (complete its pending ScReadControlPacket)."""
        ...


class ScmKernel(Protocol):
    def create_process(
        self,
        image_path: str,
        *,
        service_current: int,
        account: str,
        standin: bool,
        low_priority: bool,
    ) -> tuple[int, int]:
        """NtCreateUserProcess, suspended, session 0 → (NTSTATUS, pid)."""
        ...

    def resume_process(self, pid: int) -> int: ...

    def terminate_process(self, pid: int, exit_status: int) -> int: ...

    def set_process_priority(self, pid: int, low: bool) -> None:
        """Delayed auto-start services run at THREAD_PRIORITY_LOWEST until RUNNING."""
        ...

    def image_available(self, image_path: str) -> bool:
        """Whether the model implements this image (else: stand-in or file not found)."""
        ...

    def load_driver(self, name: str, image_path: str) -> int:
        """NtLoadDriver for a demand-start driver → NTSTATUS."""
        ...

    def set_event(self, name: str) -> None: ...

    def run_command(self, command_line: str, account: str) -> int:
        """SC_ACTION_RUN_COMMAND → win32 error."""
        ...

    def reboot(self, message: str | None, reason: str) -> None:
        """SC_ACTION_REBOOT: an orderly restart (the message is broadcast first)."""
        ...

    def memory_kb(self) -> int: ...

    def accept_boot(self, acceptable: bool) -> int:
        """RNotifyBootConfigStatus: TRUE saves LastKnownGood, FALSE reboots into it."""
        ...

    def start_failed(self, name: str, error_control: int, error: int) -> None:
        """An auto-start service with ErrorControl SEVERE or CRITICAL failed at boot: the
        caller decides (reboot into LastKnownGood; on LKG, CRITICAL stops the boot)."""
        ...


class ServiceStore(Protocol):
    """Where configuration changes are made durable (``Services\\<name>`` in the hive)."""

    def write_service(self, record: ServiceRecord) -> None: ...

    def delete_service(self, name: str) -> None: ...


class OrderResult(Protocol):
    sequence: Sequence[str]
    reasons: dict
    errors: dict


OrderFn = Callable[[ServiceDatabase], OrderResult]


@dataclass
class ScmSettings:
    time_scale: float = 1.0  # every timeout and delay is multiplied by this (a divergence)
    standins: bool = True  # run unimplemented images as stand-ins; False → 7000 / 2
    start_hang_grace_ms: int = 80000  # "80 seconds plus the last wait hint"
    initial_wait_hint_ms: int = 2000  # dwWaitHint of a fresh START_PENDING (database.c)
    win10_split: bool = True  # the profile splits svchost (Windows 10 1703+)
    # Auto-start starts in flight at once. Windows: 1 (each waits for its process to
    # connect and acknowledge); more is the model's divergence, for start-up time.
    auto_start_window: int = 1


@dataclass
class Waiter:
    ready: Callable[[], bool]
    then: Callable[[], None]


@dataclass
class AutoStartState:
    sequence: list[str] = field(default_factory=list)
    delayed: list[str] = field(default_factory=list)
    delayed_set: set[str] = field(default_factory=set)
    started: bool = False
    complete: bool = False
    delayed_complete: bool = False


class ScmCore:
    def __init__(
        self,
        db: ServiceDatabase,
        kernel: ScmKernel,
        clock: Clock,
        order: OrderFn = start.svcorder_order,
        *,
        settings: ScmSettings | None = None,
        report: Callable[..., EventRecord] | None = None,
        on_auto_start_complete: Callable[[], None] | None = None,
        store: ServiceStore | None = None,
    ) -> None:
        self.db = db
        self.kernel = kernel
        self.clock = clock
        self.order = order
        self.settings = settings or ScmSettings()
        self._report = report or report_event
        self.on_auto_start_complete = on_auto_start_complete
        self.store = store
        self.logon: object | None = None  # logon.ServiceLogon, set by the wiring (user accounts)
        self.boot_accepted = False
        self.lock_owner: int | None = None  # RLockServiceDatabase: the locking connection
        self.lock = threading.RLock()  # callers hold it around every call (single-threaded core)
        self.images: dict[str, ServiceImage] = {}
        self.images_by_pid: dict[int, ServiceImage] = {}
        self.service_current = 0  # Control\ServiceCurrent: the last N handed out
        self.shutdown = False
        self.auto = AutoStartState()
        self.waiters: list[Waiter] = []
        self.starting: set[str] = set()  # lower-case names between RStartServiceW and load
        self.auto_pending: set[str] = set()  # auto-start services not yet reached
        self.reported: deque[EventRecord] = deque(maxlen=REPORTED_KEPT)  # the latest, for views
        self.standins_logged: set[str] = set()
        self.split = self.settings.win10_split and kernel.memory_kb() > db.split_threshold_kb
        self._sequence = itertools.count(1)
        self._tags = itertools.count(1)
        self.status_handles: dict[int, str] = {}  # hServiceStatus → service name
        if self.settings.auto_start_window > 1:
            log.info(
                "divergence",
                what="auto-start overlaps starts (Windows waits for each one's connect)",
                window=self.settings.auto_start_window,
            )
        if self.settings.time_scale != 1.0:
            log.info(
                "divergence",
                what="SCM timeouts and delays scaled",
                time_scale=self.settings.time_scale,
            )
        for name, why in db.problems.items():  # V12: an invalid key is reported, not loaded
            self.event(7000, name, f"{why} (ERROR_INVALID_PARAMETER 87)")

    # --- helpers shared by the submodules -----------------------------------------------

    def ms(self, milliseconds: float) -> float:
        """A configured duration in ms → scaled seconds for the clock."""
        return milliseconds / 1000.0 * self.settings.time_scale

    def event(self, event_id: int, *strings: object) -> EventRecord:
        record = self._report(log, event_id, strings)
        self.reported.append(record)
        return record

    def next_sequence(self) -> int:
        return next(self._sequence)

    def new_service_tag(self) -> int:
        return next(self._tags)

    def lookup(self, name: str) -> ServiceRecord | None:
        return self.db.get(name)

    def wait_until(self, ready: Callable[[], bool], then: Callable[[], None]) -> None:
        """Run ``then`` once ``ready()`` holds (checked now and after every state change)."""
        if ready():
            then()
        else:
            self.waiters.append(Waiter(ready, then))

    def state_changed(self) -> None:
        """Re-check the waiters; a waiter's action may change state again, so loop."""
        while True:
            fired = [w for w in self.waiters if w.ready()]
            if not fired:
                return
            self.waiters = [w for w in self.waiters if w not in fired]
            for waiter in fired:
                waiter.then()

    def mark_drivers_loaded(self, names: Sequence[str]) -> None:
        """ScmGetBootAndSystemDriverState: the drivers the kernel loaded are RUNNING."""
        for name in names:
            svc = self.lookup(name)
            if svc is not None and svc.is_driver:
                svc.status.current_state = 4  # SERVICE_RUNNING
                svc.status.win32_exit_code = 0

    # --- entry points for the wiring (see the submodules for the logic) -----------------

    def start_service(self, name: str, argv: Sequence[str] = (), done: Done = _ignore) -> None:
        start.start_service(self, name, tuple(argv), done)

    def control_service(self, name: str, control: int, done: Callable[[int, dict], None]) -> None:
        ctl.control_service(self, name, control, done)

    def auto_start(self) -> None:
        start.auto_start_services(self)

    def control_connect(self, service_current: int, pid: int, channel: ControlChannel) -> int:
        return ctl.control_connect(self, service_current, pid, channel)

    def control_reply(self, pid: int, sequence: int, error: int) -> None:
        ctl.control_reply(self, pid, sequence, error)

    def set_service_status(self, status_handle: int, status: dict[str, int]) -> int:
        return ctl.set_service_status(self, status_handle, status)

    def shutdown_services(self, done: Callable[[], None]) -> None:
        shut.shutdown_services(self, done)

    def process_exited(self, pid: int, exit_status: int) -> None:
        ctl.process_exited(self, pid, exit_status)
