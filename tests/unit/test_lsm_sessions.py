"""LSM's session table without sockets: states, ids, names, the win32 errors of
query session / tsdiscon / tscon / logoff, and refusal during shutdown."""

from __future__ import annotations

import threading

from nt.status import NtStatus
from nt.win32 import Win32Error as E
from ports.lsm import WtsConnectState as S
from processes.lsm.session import SessionTable


class FakeBackend:
    def __init__(self, status: int = NtStatus.STATUS_SUCCESS) -> None:
        self.status = status
        self.started: list[int] = []
        self.stopped: list[int] = []
        self.logged_off: list[int] = []
        self.gate: threading.Event | None = None
        self.lock = threading.Lock()

    def start_session(self, session_id: int) -> tuple[int, dict]:
        with self.lock:
            self.started.append(session_id)
        if self.gate is not None:
            self.gate.wait(5)
        return self.status, {"csrss_pid": 100 + session_id, "initial_pid": 200 + session_id}

    def stop_session(self, session_id: int) -> int:
        self.stopped.append(session_id)
        return NtStatus.STATUS_SUCCESS

    def logoff(self, session_id: int) -> int:
        self.logged_off.append(session_id)
        return 0


def states(table: SessionTable) -> dict[int, int]:
    return {r["session_id"]: r["state"] for r in table.enumerate()}


def test_boot_sessions_services_disconnected_console_connected() -> None:
    rows = SessionTable(FakeBackend()).enumerate()
    assert [(r["session_id"], r["name"], r["state_name"]) for r in rows] == [
        (0, "Services", "WTSDisconnected"),
        (1, "Console", "WTSConnected"),
    ]


def test_new_sessions_take_the_lowest_free_id_and_rdp_names() -> None:
    backend = FakeBackend()
    table = SessionTable(backend)
    first = table.create("bob")
    second = table.create()
    assert first[0] == E.ERROR_SUCCESS and first[2]["session_id"] == 2
    assert first[2]["name"] == "RDP-Tcp#0" and first[2]["requested_user"] == "bob"
    assert first[2]["csrss_pid"] == 102 and first[2]["winlogon_pid"] == 202
    assert second[2]["session_id"] == 3 and second[2]["name"] == "RDP-Tcp#1"
    assert table.logoff(2) == (E.ERROR_SUCCESS, True)
    assert backend.stopped == [2]
    assert table.create()[2]["session_id"] == 2  # reused, as termsrv does


def test_requests_at_once_reach_smss_at_once() -> None:
    backend = FakeBackend()
    backend.gate = threading.Event()
    table = SessionTable(backend)
    threads = [threading.Thread(target=table.create) for _ in range(10)]
    for t in threads:
        t.start()
    while len(backend.started) < 10:  # all ten are with smss before any is answered
        threading.Event().wait(0.005)
    assert states(table) == {0: S.WTSDisconnected, 1: S.WTSConnected} | dict.fromkeys(
        range(2, 12), S.WTSInit
    )
    backend.gate.set()
    for t in threads:
        t.join()
    assert sorted(backend.started) == list(range(2, 12))
    assert all(states(table)[n] == S.WTSConnected for n in range(2, 12))


def test_a_failed_session_leaves_no_row() -> None:
    table = SessionTable(FakeBackend(NtStatus.STATUS_UNSUCCESSFUL))
    error, status, record = table.create()
    assert (error, status, record) == (E.ERROR_GEN_FAILURE, NtStatus.STATUS_UNSUCCESSFUL, None)
    assert sorted(states(table)) == [0, 1]


def test_no_session_during_shutdown_and_again_after_an_abort() -> None:
    backend = FakeBackend()
    table = SessionTable(backend)
    table.notify(0, "shutdown")
    assert table.create()[:2] == (
        E.ERROR_SHUTDOWN_IN_PROGRESS,
        NtStatus.STATUS_SHUTDOWN_IN_PROGRESS,
    )
    assert backend.started == []
    table.notify(0, "shutdown_aborted")
    assert table.create()[0] == E.ERROR_SUCCESS


def test_disconnect_reconnect_and_logon_states() -> None:
    table = SessionTable(FakeBackend())
    assert table.notify(1, "logon", "alice") == E.ERROR_SUCCESS
    assert states(table)[1] == S.WTSActive
    assert table.disconnect(1) == E.ERROR_SUCCESS
    assert states(table)[1] == S.WTSDisconnected
    assert table.connect(1) == E.ERROR_SUCCESS
    assert states(table)[1] == S.WTSActive
    assert table.enumerate()[1]["user"] == "alice" and table.enumerate()[1]["logon_time"]


def test_the_errors_windows_gives() -> None:
    backend = FakeBackend()
    table = SessionTable(backend)
    assert table.logoff(0) == (E.ERROR_ACCESS_DENIED, False)  # logoff 0: "Error code 5"
    assert table.disconnect(0) == E.ERROR_ACCESS_DENIED
    assert table.logoff(1) == (E.ERROR_NO_SUCH_LOGON_SESSION, False)  # no one logged on
    assert table.logoff(7) == (E.ERROR_CTX_WINSTATION_NOT_FOUND, False)
    assert table.connect(7) == E.ERROR_CTX_WINSTATION_NOT_FOUND
    assert table.notify(1, "nonsense") == E.ERROR_INVALID_PARAMETER
    assert backend.logged_off == [] and backend.stopped == []


def test_console_logoff_logs_the_user_off_and_keeps_the_session() -> None:
    backend = FakeBackend()
    table = SessionTable(backend)
    table.notify(1, "logon", "alice")
    assert table.logoff(1) == (E.ERROR_SUCCESS, False)
    assert backend.logged_off == [1] and backend.stopped == []
    row = table.enumerate()[1]
    assert (row["user"], row["state"]) == ("", S.WTSConnected)


def test_a_session_made_behind_lsms_back_is_adopted_when_its_winlogon_reports() -> None:
    table = SessionTable(FakeBackend())
    assert table.notify(2, "winlogon_ready", pid=42) == E.ERROR_SUCCESS
    row = table.enumerate()[2]
    assert (row["session_id"], row["state"], row["winlogon_pid"]) == (2, S.WTSConnected, 42)
    assert table.create()[2]["session_id"] == 3
    assert table.notify(9, "logon", "x") == E.ERROR_CTX_WINSTATION_NOT_FOUND
