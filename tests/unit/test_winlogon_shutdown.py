"""The shutdown coordinator without sockets: 1074 first, the countdown and its abort,
1115 / 1116, the phases in order with the console session last."""

from __future__ import annotations

import threading

from nt.win32 import Win32Error as E
from processes.winlogon.shutdown import (
    EWX_FORCE,
    EWX_POWEROFF,
    EWX_REBOOT,
    EWX_SHUTDOWN,
    ShutdownCoordinator,
    ShutdownRequest,
)


class FakeTimer:
    made: list[FakeTimer] = []

    def __init__(self, seconds: float, fn) -> None:  # noqa: ANN001
        self.seconds, self.fn, self.cancelled, self.daemon = seconds, fn, False, False
        FakeTimer.made.append(self)

    def start(self) -> None:
        pass

    def cancel(self) -> None:
        self.cancelled = True

    def fire(self) -> None:
        if not self.cancelled:
            self.fn()


class Backend:
    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.down = threading.Event()

    def report_1074(self, request: ShutdownRequest) -> None:
        self.calls.append(("1074", request.process, request.comment, request.kind))

    def notify_lsm(self, event: str) -> None:
        self.calls.append(("lsm", event))

    def sessions(self) -> list[int]:
        return [1, 2, 3]

    def end_session_apps(self, session: int, flags: int) -> int:
        self.calls.append(("apps", session, flags))
        return 0

    def preshutdown_services(self) -> str:
        self.calls.append(("preshutdown",))
        return "done"

    def shutdown_services(self) -> str:
        self.calls.append(("services",))
        return "done"

    def nt_shutdown(self, reboot: bool) -> None:
        self.calls.append(("NtShutdownSystem", reboot))
        self.down.set()


def test_shutdown_now_runs_every_phase_in_order() -> None:
    backend = Backend()
    coordinator = ShutdownCoordinator(backend)
    request = ShutdownRequest(comment="patch", process="ntctl.exe", pid=7, user="admin")
    assert coordinator.initiate(request) == E.ERROR_SUCCESS
    assert backend.down.wait(5)
    flags = EWX_SHUTDOWN | EWX_POWEROFF
    assert backend.calls == [
        ("1074", "ntctl.exe", "patch", "power off"),
        ("lsm", "shutdown"),
        ("apps", 2, flags),
        ("apps", 3, flags),
        ("apps", 1, flags),  # the console session last
        ("preshutdown",),
        ("services",),
        ("NtShutdownSystem", False),
    ]


def test_a_second_request_is_1115_and_abort_without_one_is_1116() -> None:
    backend = Backend()
    FakeTimer.made.clear()
    coordinator = ShutdownCoordinator(backend, scale=0.01, timer=FakeTimer)
    assert coordinator.abort() == E.ERROR_NO_SHUTDOWN_IN_PROGRESS
    assert coordinator.initiate(ShutdownRequest(timeout=30, reboot=True)) == E.ERROR_SUCCESS
    assert FakeTimer.made[0].seconds == 30 * 0.01  # -t scaled
    assert coordinator.initiate(ShutdownRequest()) == E.ERROR_SHUTDOWN_IN_PROGRESS
    assert coordinator.abort() == E.ERROR_SUCCESS
    assert FakeTimer.made[0].cancelled and ("lsm", "shutdown_aborted") in backend.calls
    assert coordinator.abort() == E.ERROR_NO_SHUTDOWN_IN_PROGRESS
    FakeTimer.made[0].fire()  # a late timer after the abort does nothing
    assert not backend.down.is_set()
    assert coordinator.initiate(ShutdownRequest(reboot=True, force=True)) == E.ERROR_SUCCESS
    assert backend.down.wait(5)
    assert ("NtShutdownSystem", True) in backend.calls
    assert ("apps", 1, EWX_REBOOT | EWX_FORCE) in backend.calls
    assert coordinator.abort() == E.ERROR_SHUTDOWN_IN_PROGRESS  # past the point of no return


def test_the_countdown_expiring_shuts_down() -> None:
    backend = Backend()
    FakeTimer.made.clear()
    coordinator = ShutdownCoordinator(backend, timer=FakeTimer)
    coordinator.initiate(ShutdownRequest(timeout=5))
    assert ("lsm", "shutdown") in backend.calls and not backend.down.is_set()
    FakeTimer.made[0].fire()
    assert backend.down.wait(5)
