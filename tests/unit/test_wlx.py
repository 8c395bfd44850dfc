"""winlogon's logon states without sockets (processes/winlogon/wlx.py, sas.py): who may
send the SAS and the credentials, what a SAS answers in each state, LogonUI's lifetime
(up with the notice, kept through failures, gone after a success, started again when it
dies), a logoff with nobody logged on, and no SAS once a shutdown has begun."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from nt.log import get_logger
from nt.status import NtStatus as S
from ports.contract import PENDING, ClientContext, Reply
from processes.winlogon.wlx import State, Winlogon, operator_or_system

SYSTEM = {"sid": "S-1-5-18", "groups": ["S-1-5-32-544"]}
OPERATOR = {"sid": "S-1-5-21-1-2-3-500", "groups": ["S-1-5-32-544", "S-1-1-0"]}
FILTERED = {"sid": "S-1-5-21-1-2-3-1000", "groups": ["S-1-5-32-544"], "deny_only": ["S-1-5-32-544"]}


class Sink:
    def __init__(self) -> None:
        self.replies: list[tuple[int, dict]] = []

    def _send_reply(self, rid: bytes, conn_id: int, msg_id: int, status: int, body: dict) -> None:
        self.replies.append((status, body))


@dataclass
class FakeNt:
    created: list[tuple[str, int]] = field(default_factory=list)
    resumed: list[int] = field(default_factory=list)
    next_pid: int = 500

    def create_process(self, image, command_line, env, session, suspended=True, logon_id=0):  # noqa: ANN001, ANN201
        self.next_pid += 1
        self.created.append((image, self.next_pid))
        return self.next_pid

    def resume(self, pid: int) -> None:
        self.resumed.append(pid)

    def terminate(self, pid: int, status: int) -> None:
        pass

    def query_value(self, path: str, name: str):  # noqa: ANN201
        from nt.syscalls import NtError

        raise NtError(S.STATUS_OBJECT_NAME_NOT_FOUND)


class FakeCsr:
    def call(self, api: str, body: dict) -> Reply:
        return Reply(S.STATUS_SUCCESS, {})


@dataclass
class FakeProc:
    nt: FakeNt = field(default_factory=FakeNt)
    log: object = field(default_factory=get_logger)
    session: int = 1
    environment: dict = field(default_factory=dict)
    pid: int = 100


def make() -> tuple[Winlogon, list]:
    events: list = []
    wlx = Winlogon(
        FakeProc(), FakeCsr(), lambda e, user="": events.append((e, user)), lambda f, s: 0
    )  # type: ignore[arg-type]
    return wlx, events


def client(pid: int, sink: Sink | None = None, token: dict = OPERATOR) -> ClientContext:
    return ClientContext(pid, "x.exe", 1, token, 1, "p", {}, _server=sink)


def test_only_system_and_the_operator_reach_winlogon() -> None:
    assert operator_or_system({"token": SYSTEM}) and operator_or_system({"token": OPERATOR})
    assert not operator_or_system({"token": FILTERED})  # Administrators deny-only (UAC)
    assert not operator_or_system({"token": {"sid": "S-1-5-21-1-2-3-1001", "groups": []}})


def test_the_sas_starts_logonui_and_is_answered_when_it_is_ready() -> None:
    wlx, _ = make()
    sink = Sink()
    assert wlx.screen.WlxSasNotify({"sas_type": 1}, client(7, sink)) is PENDING
    [(image, pid)] = wlx.proc.nt.created
    assert image.endswith("LogonUI.exe") and wlx.state == State.DISPLAY_LOGON
    assert wlx.screen.WlxLogonUIReady({"port": "P"}, client(8)) == S.STATUS_ACCESS_DENIED
    assert wlx.WlxReportCredentials({"user": "a"}, client(8)) == S.STATUS_ACCESS_DENIED
    assert wlx.screen.WlxLogonUIReady({"port": "P"}, client(pid)) == {"error": 0}
    assert sink.replies == [(0, {"error": 0, "status": 0, "logonui_pid": pid, "port": "P"})]
    busy = wlx.screen.WlxSasNotify({"sas_type": 1}, client(7))
    assert busy["status"] == S.STATUS_INVALID_DEVICE_STATE and busy["error"] == 5023


def test_logonui_dying_before_it_is_ready_answers_the_sas_and_waits_again() -> None:
    wlx, _ = make()
    sink = Sink()
    wlx.screen.WlxSasNotify({"sas_type": 1}, client(7, sink))
    pid = wlx.screen.pid
    wlx.on_exit(pid, 0xC0000005, "logonui.exe")
    assert sink.replies[0][1]["status"] == 0xC0000005 and sink.replies[0][1]["port"] == ""
    assert wlx.state == State.LOGGED_OFF and wlx.screen.pid == 0
    assert len(wlx.proc.nt.created) == 1  # never ready: no restart loop, the SAS starts one
    assert wlx.screen.WlxSasNotify({"sas_type": 1}, client(7, Sink())) is PENDING


def test_no_sas_during_a_shutdown_and_no_logoff_without_a_user() -> None:
    wlx, events = make()
    assert wlx.logoff(0) == (1312, S.STATUS_NO_SUCH_LOGON_SESSION)
    wlx.shutting_down = True
    reply = wlx.screen.WlxSasNotify({"sas_type": 1}, client(7))
    assert reply["status"] == S.STATUS_SHUTDOWN_IN_PROGRESS and reply["error"] == 1115
    assert wlx.proc.nt.created == [] and events == []


def notice_up(wlx: Winlogon) -> int:
    """LOGGED_OFF entered: LogonUI started and ready with the notice."""
    wlx.ready()
    [(_, pid)] = wlx.proc.nt.created
    assert wlx.screen.WlxLogonUIReady({"port": "P"}, client(pid)) == {"error": 0}
    return pid


def test_logonui_shows_the_notice_stays_through_a_failure_and_goes_after_a_success() -> None:
    wlx, _ = make()
    pid = notice_up(wlx)
    sas = wlx.screen.WlxSasNotify({"sas_type": 1}, client(7))
    assert sas == {"error": 0, "status": 0, "logonui_pid": pid, "port": "P"}  # no wait
    wlx.logon = lambda msg: S.STATUS_LOGON_FAILURE  # type: ignore[method-assign]
    failed = wlx.WlxReportCredentials({"user": "bob"}, client(pid))
    assert failed["status"] == S.STATUS_LOGON_FAILURE and failed["error"] == 1326
    assert wlx.state == State.LOGGED_OFF and wlx.screen.pid == pid  # the same LogonUI
    assert wlx.screen.WlxSasNotify({"sas_type": 1}, client(7))["logonui_pid"] == pid
    wlx.logon = lambda msg: S.STATUS_SUCCESS  # type: ignore[method-assign]
    assert wlx.WlxReportCredentials({"user": "bob"}, client(pid))["status"] == 0
    assert wlx.state == State.LOGGED_ON and wlx.screen.pid == 0
    wlx.on_exit(pid, 0, "logonui.exe")  # it exits after the success: no new one
    assert len(wlx.proc.nt.created) == 1 and wlx.screen.leaving == 0


def test_logonui_killed_at_the_notice_is_started_again() -> None:
    wlx, _ = make()
    pid = notice_up(wlx)
    wlx.on_exit(pid, 0xC000013A, "logonui.exe")
    deadline = time.monotonic() + 5
    while len(wlx.proc.nt.created) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    [_, (image, new)] = wlx.proc.nt.created
    assert image.endswith("LogonUI.exe") and wlx.screen.pid == new != pid
    assert wlx.state == State.LOGGED_OFF


def test_tiles_left_without_credentials_go_back_to_the_notice() -> None:
    wlx, _ = make()
    pid = notice_up(wlx)
    wlx.screen.WlxSasNotify({"sas_type": 1}, client(7))
    assert wlx.screen.WlxReportSasAction({"action": 2}, client(8)) == S.STATUS_ACCESS_DENIED
    assert wlx.state == State.DISPLAY_LOGON
    assert wlx.screen.WlxReportSasAction({"action": 2}, client(pid)) == {"error": 0}
    assert wlx.state == State.LOGGED_OFF and wlx.screen.pid == pid
    wlx.screen.WlxSasNotify({"sas_type": 1}, client(7))
    wlx.screen._tiles_timeout(wlx.screen.attempt - 1)  # an earlier attempt's timer: ignored
    assert wlx.state == State.DISPLAY_LOGON
    wlx.screen._tiles_timeout(wlx.screen.attempt)
    assert wlx.state == State.LOGGED_OFF


def test_logonui_ended_with_success_on_purpose_is_not_started_again() -> None:
    wlx, _ = make()
    pid = notice_up(wlx)
    wlx.on_exit(pid, 0, "logonui.exe")  # smss stopping the session, a shutdown's walk
    assert wlx.screen.pid == 0 and len(wlx.proc.nt.created) == 1
    assert wlx.screen.WlxSasNotify({"sas_type": 1}, client(7, Sink())) is PENDING  # the SAS
    assert len(wlx.proc.nt.created) == 2
