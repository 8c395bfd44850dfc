"""Fakes for the SCM core: a clock with timers, a kernel that records processes, a
control channel per dispatcher, and a minimal ordering function (registry order, with
dependencies first) standing in for nt/svcorder."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from ports.svcctl import (
    SERVICE_ACCEPT_PAUSE_CONTINUE,
    SERVICE_ACCEPT_SHUTDOWN,
    SERVICE_ACCEPT_STOP,
    SERVICE_AUTO_START,
    SERVICE_RUNNING,
    SERVICE_START_PENDING,
    SERVICE_STOPPED,
)
from processes.services.database import ServiceDatabase, ServiceRecord
from processes.services.image import ControlPacket
from processes.services.scm import ScmCore, ScmSettings


class FakeTimer:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0
        self.heap: list[tuple[float, int, FakeTimer, Callable[[], None]]] = []
        self.seq = itertools.count()

    def now(self) -> float:
        return self.t

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer()
        heapq.heappush(self.heap, (self.t + delay_s, next(self.seq), timer, fn))
        return timer

    def advance(self, dt: float) -> None:
        end = self.t + dt
        while self.heap and self.heap[0][0] <= end:
            when, _, timer, fn = heapq.heappop(self.heap)
            self.t = when
            if not timer.cancelled:
                fn()
        self.t = end


@dataclass
class FakeKernel:
    memory: int = 2 * 1024 * 1024  # 2 GB: below the split threshold
    missing: set[str] = field(default_factory=set)
    created: list[dict] = field(default_factory=list)
    terminated: list[int] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    reboots: list[str | None] = field(default_factory=list)
    priorities: list[tuple[int, bool]] = field(default_factory=list)
    boot_calls: list[bool] = field(default_factory=list)
    boot_failures: list[tuple[str, int, int]] = field(default_factory=list)
    pids: itertools.count = field(default_factory=lambda: itertools.count(1000))

    def create_process(self, image_path, *, service_current, account, standin, low_priority):
        pid = next(self.pids)
        self.created.append(
            {
                "image": image_path,
                "pid": pid,
                "current": service_current,
                "standin": standin,
                "low": low_priority,
            }
        )
        return 0, pid

    def resume_process(self, pid):
        return 0

    def terminate_process(self, pid, exit_status):
        self.terminated.append(pid)
        return 0

    def set_process_priority(self, pid, low):
        self.priorities.append((pid, low))

    def image_available(self, image_path):
        return not any(m in image_path.lower() for m in self.missing)

    def load_driver(self, name, image_path):
        return 0

    def set_event(self, name):
        self.events.append(name)

    def run_command(self, command_line, account):
        self.commands.append(command_line)
        return 0

    def reboot(self, message, reason):
        self.reboots.append(message)

    def memory_kb(self):
        return self.memory

    def accept_boot(self, acceptable):
        self.boot_calls.append(acceptable)
        return 0

    def start_failed(self, name, error_control, error):
        self.boot_failures.append((name, error_control, error))


class FakeChannel:
    def __init__(self) -> None:
        self.packets: list[ControlPacket] = []

    def send(self, packet: ControlPacket) -> None:
        self.packets.append(packet)


@dataclass
class SimpleOrder:
    sequence: list[str]
    reasons: dict
    errors: dict


def simple_order(db: ServiceDatabase) -> SimpleOrder:
    """Registry order, each service's DependOnService first (depth-first)."""
    seq: list[str] = []
    seen: set[str] = set()

    def visit(svc: ServiceRecord) -> None:
        if svc.name.lower() in seen:
            return
        seen.add(svc.name.lower())
        for dep in svc.depend_on_service:
            d = db.get(dep)
            if d is not None and d.start != 4:
                visit(d)
        seq.append(svc.name)

    for svc in db.services.values():
        if svc.is_auto_start:
            visit(svc)
    return SimpleOrder(seq, {n: "registry order" for n in seq}, {})


def service(name: str, **kw) -> ServiceRecord:
    kw.setdefault("service_type", 0x10)
    kw.setdefault("start", SERVICE_AUTO_START)
    kw.setdefault("error_control", 1)
    kw.setdefault("image_path", f"C:\\Windows\\System32\\{name.lower()}.exe")
    return ServiceRecord(name=name, **kw)


class Machine:
    """An SCM core with fakes, and helpers that play the service processes' side."""

    def __init__(
        self, *records: ServiceRecord, settings: ScmSettings | None = None, **db_kw
    ) -> None:
        self.db = ServiceDatabase(**db_kw)
        for r in records:
            self.db.add(r)
        self.clock = FakeClock()
        self.kernel = FakeKernel()
        self.channels: dict[int, FakeChannel] = {}
        self.core = ScmCore(self.db, self.kernel, self.clock, simple_order, settings=settings)
        self.results: dict[str, list[int]] = {}

    def start(self, name: str, *argv: str) -> list[int]:
        out: list[int] = []
        self.core.start_service(name, argv, out.append)
        self.results[name] = out
        return out

    def connect(self, pid: int | None = None) -> tuple[int, FakeChannel]:
        """The newest created process connects (StartServiceCtrlDispatcher)."""
        proc = (
            self.kernel.created[-1]
            if pid is None
            else next(p for p in self.kernel.created if p["pid"] == pid)
        )
        channel = FakeChannel()
        self.channels[proc["pid"]] = channel
        assert self.core.control_connect(proc["current"], proc["pid"], channel) == 0
        return proc["pid"], channel

    def ack_all(self, pid: int, error: int = 0) -> list[ControlPacket]:
        channel = self.channels[pid]
        packets, channel.packets = channel.packets, []
        for p in packets:
            self.core.control_reply(pid, p.sequence, error)
        return packets

    def report(self, name: str, state: int, accepted: int = SERVICE_ACCEPT_STOP, **kw) -> int:
        svc = self.db.get(name)
        status = {
            "service_type": svc.service_type,
            "current_state": state,
            "controls_accepted": accepted if state != SERVICE_STOPPED else 0,
            "win32_exit_code": kw.get("exit_code", 0),
            "service_specific_exit_code": kw.get("specific", 0),
            "check_point": kw.get("check_point", 0),
            "wait_hint": kw.get("wait_hint", 0),
        }
        return self.core.set_service_status(svc.service_tag, status)

    def run(self, name: str, accepted: int = SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN) -> int:
        """Start ``name`` in a new process, connect, acknowledge, report RUNNING → pid."""
        result = self.start(name)
        pid, _ = self.connect()
        self.ack_all(pid)
        assert result == [0], result
        assert self.report(name, SERVICE_RUNNING, accepted) == 0
        return pid

    def ids(self) -> list[int]:
        return [e.event_id for e in self.core.reported]

    def state(self, name: str) -> int:
        return self.db.get(name).status.current_state


__all__ = [
    "SERVICE_ACCEPT_PAUSE_CONTINUE",
    "SERVICE_RUNNING",
    "SERVICE_START_PENDING",
    "Machine",
    "service",
]
