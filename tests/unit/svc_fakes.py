"""Fakes for driving a modelled service's ServiceMain without a machine: a registry in a
dict, a ServiceContext that records every SetServiceStatus, and a runner that starts the
ServiceMain on a thread and waits (on events, never on time) for the state it reports."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import structlog
from structlog.testing import CapturingLogger

from nt.regfile import SetKey, SetValue, parse
from nt.sctrl import ServiceContext
from nt.status import NtStatus
from nt.svcglobals import SOFTWARE, SYSTEM_CCS, ModelService, SvchostGlobalData
from nt.syscalls import NtError
from ports.contract import ClientContext

REG_SZ, REG_EXPAND_SZ, REG_DWORD, REG_MULTI_SZ, REG_QWORD = 1, 2, 4, 7, 11
REPO = Path(__file__).resolve().parents[2]
WAIT = 30.0  # a bound on waiting for a thread, never an assertion about time


class FakeRegistry:
    """Keys by lower-cased path; values keep their names' case."""

    def __init__(self) -> None:
        self.keys: dict[str, str] = {}  # lower path → path as created
        self.values: dict[str, dict[str, tuple[str, int, Any]]] = {}
        self.lock = threading.Lock()

    def _norm(self, path: str) -> str:
        return path.rstrip("\\").lower()

    def create_key(self, path: str, volatile: bool = False) -> bool:
        with self.lock:
            created = False
            parts = path.rstrip("\\").split("\\")
            for i in range(1, len(parts) + 1):
                sub = "\\".join(parts[:i])
                if sub and self._norm(sub) not in self.keys:
                    self.keys[self._norm(sub)] = sub
                    self.values[self._norm(sub)] = {}
                    created = True
            return created

    def key_exists(self, path: str) -> bool:
        return self._norm(path) in self.keys

    def set(self, path: str, name: str, type: int, data: Any) -> None:
        """A test's setup: the key is made first (``set_value`` needs it, as NtSetValueKey)."""
        self.create_key(path)
        self.set_value(path, name, type, data)

    def set_value(self, path: str, name: str, type: int, data: Any) -> None:
        if not self.key_exists(path):
            raise NtError(NtStatus.STATUS_OBJECT_NAME_NOT_FOUND, "NtSetValueKey")
        with self.lock:
            self.values[self._norm(path)][name.lower()] = (name, type, data)

    def query_value(self, path: str, name: str) -> tuple[int, Any]:
        with self.lock:
            found = self.values.get(self._norm(path), {}).get(name.lower())
        if found is None:
            raise NtError(NtStatus.STATUS_OBJECT_NAME_NOT_FOUND, "NtQueryValueKey")
        return found[1], found[2]

    def delete_value(self, path: str, name: str) -> None:
        with self.lock:
            if self.values.get(self._norm(path), {}).pop(name.lower(), None) is None:
                raise NtError(NtStatus.STATUS_OBJECT_NAME_NOT_FOUND, "NtDeleteValueKey")

    def enum_keys(self, path: str) -> list[str]:
        base = self._norm(path)
        if base not in self.keys:
            raise NtError(NtStatus.STATUS_OBJECT_NAME_NOT_FOUND, "NtEnumerateKey")
        depth = base.count("\\") + 1
        with self.lock:
            return sorted(
                self.keys[k].rsplit("\\", 1)[1]
                for k in self.keys
                if k.startswith(base + "\\") and k.count("\\") == depth
            )

    def enum_values(self, path: str) -> list[tuple[Any, ...]]:
        base = self._norm(path)
        if base not in self.keys:
            raise NtError(NtStatus.STATUS_OBJECT_NAME_NOT_FOUND, "NtEnumerateValueKey")
        with self.lock:
            return [v for v in self.values[base].values()]

    def delete_key(self, path: str, tree: bool = False) -> None:
        base = self._norm(path)
        with self.lock:
            for k in [k for k in self.keys if k == base or k.startswith(base + "\\")]:
                del self.keys[k]
                del self.values[k]


class Recorder:
    """SetServiceStatus's receiver: every status, and an event per state reached."""

    def __init__(self) -> None:
        self.statuses: list[dict[str, int]] = []
        self.reached: dict[int, threading.Event] = {s: threading.Event() for s in range(1, 8)}

    def __call__(self, handle: int, status: dict[str, int]) -> int:
        self.statuses.append(dict(status))
        self.reached[status["current_state"]].set()
        return 0

    @property
    def states(self) -> list[int]:
        return [s["current_state"] for s in self.statuses]


def make_globals(tmp: Path, registry: FakeRegistry | None = None, **kw: Any) -> SvchostGlobalData:
    log = structlog.wrap_logger(CapturingLogger(), processors=[])
    return SvchostGlobalData(
        log=log,
        registry=registry or base_registry(),
        root=tmp,
        boot_id=kw.pop("boot_id", "boot-1"),
        **kw,
    )


def base_registry() -> FakeRegistry:
    reg = FakeRegistry()
    reg.set(f"{SYSTEM_CCS}\\Control\\ComputerName\\ComputerName", "ComputerName", REG_SZ, "NTMODEL")
    cv = f"{SOFTWARE}\\Microsoft\\Windows NT\\CurrentVersion"
    reg.set(cv, "CurrentMajorVersionNumber", REG_DWORD, 10)
    reg.set(cv, "CurrentMinorVersionNumber", REG_DWORD, 0)
    reg.set(cv, "CurrentBuildNumber", REG_SZ, "19045")
    reg.set(cv, "CurrentType", REG_SZ, "Multiprocessor Free")
    return reg


def log_calls(g: SvchostGlobalData) -> list[tuple[str, dict[str, Any]]]:
    """(event, fields) of everything the service logged."""
    calls = g.log._logger.calls  # type: ignore[attr-defined]
    return [(c.kwargs.get("event", c.args[0] if c.args else ""), c.kwargs) for c in calls]


def events_named(g: SvchostGlobalData, name: str) -> list[dict[str, Any]]:
    return [kw for event, kw in log_calls(g) if event == name]


class Running:
    """A ServiceMain on its own thread, with its context and recorded statuses."""

    def __init__(
        self, main: Callable[[ServiceContext, Sequence[str]], None], name: str, *args: str
    ) -> None:
        self.recorder = Recorder()
        self.ctx = ServiceContext(name, 1, 0x20, self.recorder)
        self.thread = threading.Thread(target=main, args=(self.ctx, [name, *args]), daemon=True)
        self.thread.start()

    def wait(self, state: int) -> bool:
        return self.recorder.reached[state].wait(WAIT)

    def control(self, control: int) -> int:
        assert self.ctx.handler is not None
        return self.ctx.handler(control)

    def stop(self) -> None:
        assert self.control(1) == 0
        self.thread.join(WAIT)
        assert not self.thread.is_alive()
        assert self.recorder.states[-1] == 1


@functools.cache
def shipped_ops() -> tuple:
    return tuple(
        op
        for n in ("SYSTEM.reg", "SOFTWARE.reg")
        for op in parse((REPO / "configs" / n).read_bytes())
    )


def shipped_registry() -> FakeRegistry:
    """configs/SYSTEM.reg and SOFTWARE.reg, as the first boot imports them."""
    reg = base_registry()
    for op in shipped_ops():
        path = op.path.replace("HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001", SYSTEM_CCS)
        path = path.replace("HKEY_LOCAL_MACHINE", "\\Registry\\Machine")
        if isinstance(op, SetKey):
            reg.create_key(path)
        elif isinstance(op, SetValue):
            reg.set(path, op.name, op.type, op.data)
    return reg


def make(cls: type[ModelService], name: str, g) -> ModelService:  # type: ignore[no-untyped-def]
    return cls(ServiceContext(name, 1, 0x20, Recorder()), [name], g)


def reported(g) -> list[int]:  # type: ignore[no-untyped-def]
    return [kw["event_id"] for kw in events_named(g, "event.report")]


def client(pid: int = 77) -> ClientContext:
    return ClientContext(pid, "app.exe", 1, {"user": "NTMODEL\\alice"}, 1, "p", {})
