"""CSRSRV: server DLL loading, dispatch, processes and sessions, the pool rule, shutdown.

Also home of the in-memory ``FakeKernel`` (a ``KernelServices``) and the helpers the
basesrv and winsrv tests share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from structlog.testing import capture_logs

from nt.log import ntstatus_processor
from nt.status import NtStatus
from ports import sb
from ports.contract import Reply, dispatch
from ports.csr import lookup_api
from processes.csrss.api import ServerDll, ShutdownResult
from processes.csrss.csrsrv import CsrServer, RequestThreadCounters
from processes.csrss.process import SYSTEM_LOGON_ID, CsrProcessFlags, CsrShutdownFlags
from processes.csrss.services import KernelServices

DESIGN_CMDLINE = (
    r"%SystemRoot%\system32\csrss.exe ObjectDirectory=\Windows SharedSection=1024,3072,512 "
    r"Windows=On SubSystemType=Windows ServerDll=basesrv,1 "
    r"ServerDll=winsrv:UserServerDllInitialization,3 ServerDll=winsrv:ConServerDllInitialization,2 "
    r"ProfileControl=Off MaxRequestThreads=16"
)
CSRSS_PID = 100
SMSS_PID = 50
USER_SID = "S-1-5-21-1-1000"
SUCCESS = NtStatus.STATUS_SUCCESS
EWX_SHUTDOWN, EWX_FORCE = 0x1, 0x4


@dataclass
class Deferred:
    """A reply parked by a handler (CsrReplyPending), as ports.contract.Deferred: kept here."""

    replies: list[tuple[int, dict]] = field(default_factory=list)

    def complete(self, status: int, body: dict | None = None) -> None:
        if not self.replies:  # exactly once, as the real one
            self.replies.append((int(status), body or {}))


@dataclass
class Client:
    pid: int
    image: str = "app.exe"
    session: int | None = 1
    token: dict[str, Any] | None = field(
        default_factory=lambda: {"sid": USER_SID, "privileges": ["SeShutdownPrivilege"]}
    )
    deferred: list[Deferred] = field(default_factory=list)

    def defer(self) -> Deferred:
        self.deferred.append(Deferred())
        return self.deferred[-1]


class FakeKernel:
    """The object namespace and process table, in memory."""

    def __init__(self) -> None:
        self.processes: dict[int, dict] = {}
        self.links: dict[str, str] = {}
        self.terminated: list[tuple[int, int]] = []
        self.resumed: list[int] = []
        self.winlogon_notes: list[tuple[int, int]] = []
        self.resume_status = SUCCESS

    def spawn(
        self,
        pid: int,
        image: str,
        session: int = 1,
        parent_pid: int = SMSS_PID,
        critical: bool = False,
        sid: str = SYSTEM_LOGON_ID,
    ) -> dict:
        record = {
            "pid": pid,
            "image": image,
            "session": session,
            "critical": critical,
            "parent_pid": parent_pid,
            "state": "suspended",
            "token": {"sid": sid},
        }
        self.processes[pid] = record
        return record

    def create_symbolic_link(self, name: str, target: str) -> int:
        if name.lower() in {k.lower() for k in self.links}:
            return NtStatus.STATUS_OBJECT_NAME_COLLISION
        self.links[name] = target
        return SUCCESS

    def delete_symbolic_link(self, name: str) -> int:
        return (
            SUCCESS
            if self.links.pop(name, None) is not None
            else NtStatus.STATUS_OBJECT_NAME_NOT_FOUND
        )

    def query_symbolic_link(self, name: str) -> tuple[int, str | None]:
        if name in self.links:
            return SUCCESS, self.links[name]
        return NtStatus.STATUS_OBJECT_NAME_NOT_FOUND, None

    def query_process(self, pid: int) -> dict | None:
        return self.processes.get(pid)

    def terminate_process(self, pid: int, exit_status: int) -> int:
        self.terminated.append((pid, exit_status))
        return SUCCESS

    def resume_process(self, pid: int) -> int:
        self.resumed.append(pid)
        return self.resume_status

    def notify_winlogon(self, session: int, flags: int) -> int:
        self.winlogon_notes.append((session, flags))
        return SUCCESS


def boot(cmdline: str = DESIGN_CMDLINE, **kwargs: Any) -> tuple[CsrServer, FakeKernel, list]:
    kernel = FakeKernel()
    completed: list[tuple[int, int]] = []
    csr = CsrServer(
        kernel,
        pid=CSRSS_PID,
        session_id=1,
        sm_session_complete=lambda sid, status: completed.append((sid, status)),
        **kwargs,
    )
    csr.initialize(cmdline)
    return csr, kernel, completed


_next_session = [100]


def start(
    csr: CsrServer,
    kernel: FakeKernel,
    pid: int,
    image: str = "app.exe",
    *,
    sid: str = SYSTEM_LOGON_ID,
    session: int = 1,
    critical: bool = False,
    console: bool = False,
) -> Client:
    """Start a process the way smss does (SbpCreateSession), then connect it."""
    kernel.spawn(pid, image, session, critical=critical, sid=sid)
    _next_session[0] += 1
    assert csr.sb_create_session(_next_session[0], {"pid": pid}).status == SUCCESS
    client = Client(pid, image, session, {"sid": sid, "privileges": ["SeShutdownPrivilege"]})
    assert csr.accept_connection(pid, client.token)
    if console:
        reply = call(
            csr, client, "CsrpClientConnect", server_id=2, connection_info={"is_console_app": True}
        )
        assert reply.status == SUCCESS
    return client


def spawn(
    csr: CsrServer,
    kernel: FakeKernel,
    parent: Client,
    pid: int,
    image: str = "child.exe",
    *,
    gui: bool = False,
    console_handle: int | None = None,
    flags: int = 0,
) -> Client:
    """CreateProcess: the parent registers its child (BaseSrvCreateProcess), which connects."""
    kernel.spawn(pid, image, parent.session or 0, parent_pid=parent.pid)
    reply = call(csr, parent, "BasepCreateProcess", process_id=pid, gui=gui, creation_flags=flags)
    assert reply.status == SUCCESS
    child = Client(pid, image, parent.session, dict(parent.token or {}))
    assert csr.accept_connection(pid, child.token)
    if console_handle is not None:
        info = {"is_console_app": True, "console_handle": console_handle}
        assert (
            call(csr, child, "CsrpClientConnect", server_id=2, connection_info=info).status
            == SUCCESS
        )
    return child


def call(csr: CsrServer, client: Any, name: str, **body: Any) -> Reply:
    return csr.dispatch(lookup_api(name).number, body, client)


# --- loading ---------------------------------------------------------------------------


def test_design_command_line_loads_0_1_3_2_into_their_slots():
    csr, _, _ = boot()
    assert csr.command_line.load_order == [0, 1, 3, 2]
    slots = [(d.name, d.server_id, d.api_base, d.highest_api_supported) for d in csr.loaded]
    assert slots == [
        ("CSRSS", 0, 0, 5),
        ("basesrv", 1, 0, 31),
        ("winsrv", 2, 512, 599),
        ("winsrv", 3, 1024, 1034),
    ]
    assert [d.table_size for d in csr.loaded] == [5, 31, 87, 10]
    assert csr.loaded[2].state.dll is csr.loaded[2]
    # CsrInitCsrRootProcess: every NewProcessCallback saw the root process.
    assert csr.processes.root.server_data[2] is not None


def test_missing_dll_is_dll_not_found_with_hard_error_parameters():
    raised = []
    csr, _, _ = boot(
        DESIGN_CMDLINE.replace("basesrv,1", "nosuchsrv,1"), raise_hard_error=raised.append
    )
    assert csr.command_line.status == NtStatus.STATUS_DLL_NOT_FOUND
    assert csr.command_line.load_order == [0, 1]
    assert [e.parameters for e in raised] == [("nosuchsrv", "Default Load Path")]
    assert raised[0].status == NtStatus.STATUS_DLL_NOT_FOUND
    assert raised[0].unicode_string_parameter_mask == 3
    assert csr.loaded[1] is None and csr.loaded[3] is None


def test_load_server_dll_errors():
    csr, _, _ = boot("csrss.exe SharedSection=1024,3072")
    assert csr.load_server_dll("basesrv", None, 4).status == NtStatus.STATUS_TOO_MANY_NAMES
    assert csr.load_server_dll("basesrv", None, 0).status == NtStatus.STATUS_INVALID_PARAMETER
    missing_entry = csr.load_server_dll("winsrv", "NoSuchInit", 3)
    assert missing_entry.status == NtStatus.STATUS_PROCEDURE_NOT_FOUND == 0xC000007A
    for name in ("../kernel", "os.path", "", "x y"):
        result = csr.load_server_dll(name, None, 1)
        assert result.status == NtStatus.STATUS_DLL_NOT_FOUND
        assert result.hard_error.parameters == (name, "Default Load Path")
    # a module that is not a server DLL has no entry point
    assert csr.load_server_dll("cmdline", None, 1).status == NtStatus.STATUS_PROCEDURE_NOT_FOUND
    assert csr.load_server_dll("BASESRV.DLL", None, 1).status == SUCCESS
    assert csr.load_server_dll("basesrv", None, 1).status == NtStatus.STATUS_INVALID_PARAMETER


def test_failing_init_leaves_the_slot_empty():
    csr, _, _ = boot("csrss.exe SharedSection=1024,3072")
    assert csr.load_server_dll("usersrv", "UserServerDllInitialization", 3).status == SUCCESS
    # index 2 is free, but the module has no ServerDllInitialization
    assert csr.load_server_dll("consrv", None, 2).status == NtStatus.STATUS_PROCEDURE_NOT_FOUND
    assert csr.loaded[2] is None


# --- dispatch ---------------------------------------------------------------------------


def test_dispatch_a_real_api():
    csr, kernel, _ = boot()
    client = start(csr, kernel, 200)
    reply = call(csr, client, "BasepGetTempFile")
    assert reply == Reply(SUCCESS, {"unique_id": 1})


@pytest.mark.parametrize("api_number", [0x00040000, 0xFFFF0000, 0x00050001])
def test_server_id_out_of_range_is_illegal_function(api_number):
    csr, kernel, _ = boot()
    client = start(csr, kernel, 200)
    with capture_logs(processors=[ntstatus_processor]) as logs:
        assert csr.dispatch(api_number, {}, client).status == NtStatus.STATUS_ILLEGAL_FUNCTION
    assert [e["event"] for e in logs] == ["csr.bad_api"]


def test_empty_slot_is_illegal_function():
    csr, kernel, _ = boot(
        DESIGN_CMDLINE.replace("ServerDll=winsrv:ConServerDllInitialization,2", "")
    )
    client = start(csr, kernel, 200)
    reply = csr.dispatch(0x00020200, {"handle_type": 1}, client)
    assert reply.status == NtStatus.STATUS_ILLEGAL_FUNCTION


def test_usersrv_index_10_is_refused_unlike_reactos_quirk_4():
    csr, kernel, _ = boot()
    client = start(csr, kernel, 200)
    with capture_logs(processors=[ntstatus_processor]) as logs:
        reply = csr.dispatch(0x0003040A, {}, client)
    assert reply.status == NtStatus.STATUS_ILLEGAL_FUNCTION
    (event,) = logs
    assert event["event"] == "csr.bad_api" and "#4" in event["divergence"]
    # consrv index 87 (api 599) too; an index past even ReactOS's bound logs no divergence
    assert csr.dispatch(0x00020257, {}, client).status == NtStatus.STATUS_ILLEGAL_FUNCTION
    with capture_logs(processors=[ntstatus_processor]) as logs:
        assert csr.dispatch(0x0003FFFF, {}, client).status == NtStatus.STATUS_ILLEGAL_FUNCTION
    assert "divergence" not in logs[0]


def test_api_id_below_the_base_is_illegal_function():
    csr, kernel, _ = boot()
    client = start(csr, kernel, 200)
    assert csr.dispatch(0x000301FF, {}, client).status == NtStatus.STATUS_ILLEGAL_FUNCTION
    assert csr.dispatch(0x00020000, {}, client).status == NtStatus.STATUS_ILLEGAL_FUNCTION


def test_non_csr_sender_is_illegal_function():
    csr, kernel, _ = boot()
    kernel.spawn(300, "rogue.exe")
    with capture_logs(processors=[ntstatus_processor]) as logs:
        reply = call(csr, Client(300), "BasepGetTempFile")
    assert reply.status == NtStatus.STATUS_ILLEGAL_FUNCTION
    assert logs[0]["event"] == "csr.bad_api" and logs[0]["caller_pid"] == 300


def test_bad_body_is_invalid_parameter():
    csr, kernel, _ = boot()
    client = start(csr, kernel, 200)
    assert (
        call(csr, client, "BasepExitProcess", exit_code="0").status
        == NtStatus.STATUS_INVALID_PARAMETER
    )
    assert csr.dispatch(0x00010002, [1, 2], client).status == NtStatus.STATUS_INVALID_PARAMETER
    assert csr.dispatch(0x00010002, None, client).status == NtStatus.STATUS_INVALID_PARAMETER


def test_handler_exception_is_internal_error_and_csrss_survives():
    csr, kernel, _ = boot()
    client = start(csr, kernel, 200)

    def boom(message: dict, client: Any) -> int:
        raise RuntimeError("injected fault")

    csr.loaded[1].dispatch_table[2] = boom
    with capture_logs(processors=[ntstatus_processor]) as logs:
        assert call(csr, client, "BasepGetTempFile").status == NtStatus.STATUS_INTERNAL_ERROR
    assert "csr.api_exception" in [e["event"] for e in logs]
    assert call(csr, client, "BasepIsFirstVDM").status == SUCCESS
    assert csr.processes.root.pid == CSRSS_PID


def test_every_call_is_logged_with_its_name_and_status():
    csr, kernel, _ = boot()
    client = start(csr, kernel, 200)
    with capture_logs(processors=[ntstatus_processor]) as logs:
        call(csr, client, "SrvRecordShutdownReason")
    (event,) = logs
    assert event["event"] == "csr.api"
    assert event["api"] == "UserpRecordShutdownReason"
    assert event["status"] == "0xC0000002" and event["status_name"] == "STATUS_NOT_IMPLEMENTED"


def test_server_to_server_checks_the_valid_table():
    csr, _, _ = boot()
    me = Client(CSRSS_PID, "csrss.exe", 1, {"sid": SYSTEM_LOGON_ID})
    assert call(csr, me, "BasepGetTempFile").status == SUCCESS
    assert call(csr, me, "BasepExitProcess", exit_code=0).status == NtStatus.STATUS_ILLEGAL_FUNCTION
    assert call(csr, me, "BasepDebugProcessStop").status == NtStatus.STATUS_ILLEGAL_FUNCTION
    assert call(csr, me, "UserpGetThreadConsoleDesktop").status == SUCCESS
    assert call(csr, me, "UserpExitWindowsEx", flags=0).status == NtStatus.STATUS_ILLEGAL_FUNCTION
    assert call(csr, me, "CsrpClientConnect", server_id=0, connection_info={}).status == SUCCESS


def test_server_to_server_fault_is_access_violation():
    csr, _, _ = boot()

    def boom(message: dict, client: Any) -> int:
        raise KeyError("x")

    csr.loaded[1].dispatch_table[2] = boom
    reply = csr.call_server_from_server(0x00010002, {}, Client(CSRSS_PID))
    assert reply.status == NtStatus.STATUS_ACCESS_VIOLATION


# --- connect ----------------------------------------------------------------------------


def test_only_csr_processes_may_connect():
    csr, kernel, _ = boot()
    kernel.spawn(300, "rogue.exe")
    with capture_logs(processors=[ntstatus_processor]) as logs:
        assert csr.accept_connection(300) is False
    assert logs[0]["event"] == "csr.connect_refused"
    start(csr, kernel, 200, sid=USER_SID)
    assert csr.processes.locate(200).logon_id == USER_SID and csr.processes.locate(200).connected


def test_client_connect_per_server():
    csr, kernel, _ = boot()
    client = start(csr, kernel, 200)

    def connect(server_id: int, info: dict) -> int:
        return call(
            csr, client, "CsrpClientConnect", server_id=server_id, connection_info=info
        ).status

    assert connect(4, {}) == NtStatus.STATUS_TOO_MANY_NAMES
    assert connect(0, {}) == SUCCESS
    assert connect(1, {}) == NtStatus.STATUS_INVALID_PARAMETER
    assert connect(1, {"debug_flags": 0}) == SUCCESS
    assert connect(1, {"debug_flags": 0, "extra": 1}) == NtStatus.STATUS_INVALID_PARAMETER
    assert connect(3, {"debug_flags": 0}) == NtStatus.STATUS_INVALID_PARAMETER
    assert connect(3, {"version": 0x50000}) == SUCCESS
    assert connect(2, {"is_console_app": False}) == SUCCESS


def test_client_connect_to_an_empty_slot_is_invalid_parameter():
    csr, kernel, _ = boot("csrss.exe SharedSection=1024,3072 ServerDll=basesrv,1")
    client = start(csr, kernel, 200)
    reply = call(csr, client, "CsrpClientConnect", server_id=3, connection_info={})
    assert reply.status == NtStatus.STATUS_INVALID_PARAMETER


@pytest.mark.parametrize(
    "name",
    [
        "CsrpThreadConnect",
        "CsrpProfileControl",
        "CsrpIdentifyAlertableThread",
        "CsrpSetPriorityClass",
    ],
)
def test_unused_csrsrv_apis_are_invalid_parameter(name):
    csr, kernel, _ = boot()
    assert call(csr, start(csr, kernel, 200), name).status == NtStatus.STATUS_INVALID_PARAMETER


# --- the pool rule (§3.5) ---------------------------------------------------------------


def test_first_thread_counts_in_both_counters():
    counters = RequestThreadCounters(initial=1, max_threads=16)
    assert (counters.static_count, counters.dynamic_total) == (1, 1)


def test_pool_grows_only_when_the_last_idle_thread_takes_a_request():
    counters = RequestThreadCounters(initial=1, max_threads=4)
    assert counters.check_request_threads() is True  # the only thread took one: grow
    assert (counters.static_count, counters.dynamic_total) == (1, 2)
    counters.request_done()  # two idle threads now
    assert counters.check_request_threads() is False  # one idle thread is left
    assert counters.check_request_threads() is True  # that was the last one
    assert counters.dynamic_total == 3


def test_pool_never_exceeds_max_request_threads():
    counters = RequestThreadCounters(initial=1, max_threads=3)
    grown = [counters.check_request_threads() for _ in range(10)]
    assert grown[:2] == [True, True] and not any(grown[2:])
    assert counters.dynamic_total == 3
    for _ in range(10):
        counters.request_done()
    assert counters.check_request_threads() is False
    assert counters.dynamic_total == 3


def test_csrss_pool_follows_its_command_line():
    csr, _, _ = boot(DESIGN_CMDLINE.replace("MaxRequestThreads=16", "MaxRequestThreads=2"))
    counters = csr.request_thread_counters()
    assert counters.max_threads == 2
    assert counters.check_request_threads() is True
    assert counters.check_request_threads() is False
    junk, _, _ = boot(DESIGN_CMDLINE.replace("MaxRequestThreads=16", "MaxRequestThreads=junk"))
    single = junk.request_thread_counters()
    assert single.max_threads == 1 and single.check_request_threads() is False


# --- processes and sessions -------------------------------------------------------------


def sb_call(csr: CsrServer, api: int, body: Any, client: Any) -> Reply:
    """An SbApiPort request the way the port runs it: the plain-table dispatch."""
    return dispatch(sb.SB_API_PORT, csr.sb_handlers(), api, body, client)


def test_sb_create_session_registers_and_resumes():
    csr, kernel, _ = boot()
    kernel.spawn(200, "winlogon.exe", 1, critical=True)
    smss = Client(SMSS_PID, "smss.exe", None, None)
    reply = sb_call(csr, 0, {"session_id": 7, "process": {"pid": 200, "tid": 201}}, smss)
    assert reply.status == SUCCESS
    process = csr.processes.locate(200)
    assert process.image == "winlogon.exe" and process.nt_session.session_id == 7
    assert process.shutdown_level == 0x280 and process.sequence_number >= 5
    assert process.threads == {201}
    assert kernel.resumed == [200]


def test_sb_create_session_failures():
    csr, kernel, _ = boot()
    smss = Client(SMSS_PID, "smss.exe", None, None)
    body = {"session_id": 7, "process": {"pid": 200}}
    assert sb_call(csr, 0, body, smss).status == NtStatus.STATUS_INVALID_PARAMETER  # unknown pid
    kernel.spawn(200, "winlogon.exe")
    assert sb_call(csr, 0, body, smss).status == SUCCESS
    assert sb_call(csr, 0, body, smss).status == NtStatus.STATUS_OBJECT_NAME_COLLISION
    kernel.spawn(201, "other.exe")
    dup = {"session_id": 7, "process": {"pid": 201}}
    assert sb_call(csr, 0, dup, smss).status == NtStatus.STATUS_OBJECT_NAME_COLLISION
    assert sb_call(csr, 0, {"session_id": "7"}, smss).status == NtStatus.STATUS_INVALID_PARAMETER


def test_registration_trusts_the_kernel_not_the_message():
    csr, kernel, _ = boot()
    kernel.spawn(200, "userinit.exe", 1, sid=USER_SID)
    body = {"pid": 200, "image": "lies.exe", "session": 0}
    assert csr.sb_create_session(8, body).status == SUCCESS
    process = csr.processes.locate(200)
    assert (process.image, process.session, process.logon_id) == ("userinit.exe", 1, USER_SID)
    assert not process.connected


def test_an_exited_process_is_not_registered():
    csr, kernel, _ = boot()
    kernel.spawn(200, "gone.exe")["state"] = "exited"
    assert csr.sb_create_session(8, {"pid": 200}).status == NtStatus.STATUS_INVALID_PARAMETER
    assert csr.processes.locate(200) is None


def test_sb_resume_failure_is_reported_not_hidden_quirk_21():
    csr, kernel, _ = boot()
    kernel.spawn(200, "winlogon.exe")
    kernel.resume_status = NtStatus.STATUS_ACCESS_DENIED
    reply = csr.sb_create_session(9, {"pid": 200})
    assert reply.status == NtStatus.STATUS_ACCESS_DENIED


@pytest.mark.parametrize("api", [1, 2, 3, 4, 7, 0xFFFFFFFF])
def test_other_sb_apis_are_not_implemented(api):
    csr, _, _ = boot()
    body = {1: {"session_id": 1}, 2: {"session_id": 1}, 3: {"image_name": "x.exe"}}.get(api, {})
    reply = sb_call(csr, api, body, Client(SMSS_PID, "smss.exe"))
    assert reply.status == NtStatus.STATUS_NOT_IMPLEMENTED


def test_only_smss_may_connect_to_the_sb_port():
    csr, _, _ = boot()
    assert csr.accept_sb_connection(Client(SMSS_PID, "\\SystemRoot\\System32\\smss.exe"))
    assert csr.accept_sb_connection(Client(SMSS_PID, "SMSS.EXE"))
    assert not csr.accept_sb_connection(Client(300, "evil.exe"))


def test_death_cleans_up_and_the_last_process_completes_the_session():
    csr, kernel, completed = boot()
    parent = start(csr, kernel, 200, "winlogon.exe", console=True)
    child = spawn(csr, kernel, parent, 210, console_handle=1)
    session = csr.processes.locate(200).nt_session
    assert session.reference_count == 2 and csr.processes.locate(210).nt_session is session
    consoles = csr.loaded[2].state.consoles
    assert consoles[1].processes == [210, 200]

    assert csr.destroy_process(210, 0) == SUCCESS
    assert csr.processes.locate(210) is None and session.reference_count == 1
    assert consoles[1].processes == [200]  # consrv's DisconnectCallback ran
    assert completed == []

    assert csr.destroy_process(200, 0xC000013A) == SUCCESS
    assert completed == [(session.session_id, 0xC000013A)]
    assert consoles == {} and csr.processes.session(session.session_id) is None
    assert call(csr, child, "BasepGetTempFile").status == NtStatus.STATUS_ILLEGAL_FUNCTION


def test_destroy_is_idempotent():
    csr, kernel, completed = boot()
    start(csr, kernel, 200)
    assert csr.destroy_process(200, 0) == SUCCESS
    assert csr.destroy_process(200, 0) == NtStatus.STATUS_THREAD_IS_TERMINATING
    assert csr.destroy_process(999, 0) == NtStatus.STATUS_THREAD_IS_TERMINATING
    assert len(completed) == 1


def test_a_running_request_keeps_the_process_until_it_ends_c10():
    csr, kernel, completed = boot()
    start(csr, kernel, 200)
    process, status = csr.processes.reference(200)  # what dispatch does for a request
    assert status == SUCCESS
    csr.destroy_process(200, 1)
    assert completed == [] and not process.freed
    assert csr.processes.reference(200) == (None, NtStatus.STATUS_PROCESS_IS_TERMINATING)
    assert (
        call(csr, Client(200), "BasepGetTempFile").status == NtStatus.STATUS_PROCESS_IS_TERMINATING
    )
    csr.dereference_process(process)
    assert process.freed and len(completed) == 1
    csr.dereference_process(process)  # a stray extra dereference frees nothing twice
    assert len(completed) == 1


def test_hooks_that_raise_become_statuses():
    csr, kernel, _ = boot(resume=lambda pid: 1 / 0)
    kernel.spawn(200, "winlogon.exe")
    assert csr.sb_create_session(3, {"pid": 200}).status == NtStatus.STATUS_UNSUCCESSFUL


# --- shutdown walk (§3.10) --------------------------------------------------------------


def make_levels(csr: CsrServer, kernel: FakeKernel) -> None:
    for pid, level in [(201, 0x280), (202, 0x1E0), (203, 0x100), (204, 0x280)]:
        start(csr, kernel, pid, f"p{pid}.exe", sid=USER_SID)
        csr.processes.locate(pid).shutdown_level = level


def recording_dll(results: Any) -> tuple[ServerDll, list]:
    seen: list[tuple[int, bool]] = []

    def callback(process: Any, flags: int, first_phase: bool) -> int:
        seen.append((process.pid, first_phase))
        return results(process, first_phase)

    return ServerDll("recorder", 2, shutdown_process_callback=callback), seen


def test_walk_order_highest_level_first_services_after_default():
    csr, kernel, _ = boot("csrss.exe SharedSection=1024,3072")
    dll, seen = recording_dll(lambda p, first: ShutdownResult.CsrShutdownCsrProcess)
    csr.loaded[2] = dll
    make_levels(csr, kernel)
    assert csr.shutdown_processes(USER_SID, EWX_SHUTDOWN) == SUCCESS
    assert [pid for pid, _ in seen] == [201, 204, 202, 203]


def test_walk_with_winsrv_terminates_in_level_order_and_spares_winlogon():
    csr, kernel, _ = boot()
    winlogon = start(csr, kernel, 200, "winlogon.exe")
    call(csr, winlogon, "UserpRegisterLogonProcess", process_id=200, register=True)
    make_levels(csr, kernel)
    status = csr.shutdown_processes(SYSTEM_LOGON_ID, EWX_SHUTDOWN | EWX_FORCE)
    assert status == SUCCESS
    assert [pid for pid, _ in kernel.terminated] == [201, 204, 202, 203]


def test_walk_cancel_is_status_cancelled_and_stops():
    csr, kernel, _ = boot("csrss.exe SharedSection=1024,3072")

    def results(process: Any, first: bool) -> int:
        if process.pid == 204:
            return ShutdownResult.CsrShutdownCancelled
        return ShutdownResult.CsrShutdownCsrProcess

    dll, seen = recording_dll(results)
    csr.loaded[2] = dll
    make_levels(csr, kernel)
    with capture_logs(processors=[ntstatus_processor]) as logs:
        assert csr.shutdown_processes(USER_SID, EWX_SHUTDOWN) == NtStatus.STATUS_CANCELLED
    assert [pid for pid, _ in seen] == [201, 204]
    assert "csr.shutdown_cancelled" in [e["event"] for e in logs]


def test_walk_runs_a_second_phase_when_every_server_says_non_csr():
    csr, kernel, _ = boot("csrss.exe SharedSection=1024,3072")

    def results(process: Any, first: bool) -> int:
        return (
            ShutdownResult.CsrShutdownNonCsrProcess
            if first
            else ShutdownResult.CsrShutdownCsrProcess
        )

    dll, seen = recording_dll(results)
    csr.loaded[2] = dll
    start(csr, kernel, 201)
    assert csr.shutdown_processes(USER_SID, 0) == SUCCESS
    assert seen == [(201, True), (201, False)]


def test_walk_marks_system_and_other_contexts_and_skips_unreadable():
    csr, kernel, _ = boot("csrss.exe SharedSection=1024,3072")
    dll, seen = recording_dll(lambda p, first: ShutdownResult.CsrShutdownCsrProcess)
    csr.loaded[2] = dll
    start(csr, kernel, 201, sid=SYSTEM_LOGON_ID)
    start(csr, kernel, 202, sid="S-1-5-21-other")
    start(csr, kernel, 203, sid=USER_SID)
    start(csr, kernel, 204)
    csr.processes.locate(204).logon_id = None
    csr.shutdown_processes(USER_SID, 0)
    flags = {pid: csr.processes.locate(pid).shutdown_flags for pid in (201, 202, 203)}
    assert flags == {
        201: CsrShutdownFlags.CsrShutdownSystem,
        202: CsrShutdownFlags.CsrShutdownOther,
        203: 0,
    }
    assert [pid for pid, _ in seen] == [201, 202, 203]
    assert csr.processes.locate(204).flags & CsrProcessFlags.CsrProcessSkipShutdown
    assert csr.processes.root.shutdown_flags & CsrShutdownFlags.CsrShutdownSystem


# --- hard errors ------------------------------------------------------------------------


def test_hard_error_strings_are_data_and_the_default_button_answers():
    csr, _, _ = boot()
    message = {
        "status": 0xC0000135,
        "parameters": ["%n%s%x", "Default Load Path"],
        "unicode_string_parameter_mask": 3,
        "valid_response_options": 1,
    }
    with capture_logs(processors=[ntstatus_processor]) as logs:
        reply = csr.handle_hard_error(message)
    assert reply == Reply(SUCCESS, {"response": 6})  # ResponseOk
    box = next(e for e in logs if e["event"] == "csr.hard_error_box")
    assert box["parameters"] == ["%n%s%x", "Default Load Path"]


@pytest.mark.parametrize(
    "parameters", [["x" * (1 << 20)], ["\ud800"], ["a", "b", "c", "d", "e"], [{"k": 1}]]
)
def test_hostile_hard_errors_are_invalid_parameter_c8(parameters):
    csr, _, _ = boot()
    reply = csr.handle_hard_error({"status": 0xC0000135, "parameters": parameters})
    assert reply.status == NtStatus.STATUS_INVALID_PARAMETER


def test_fake_kernel_is_a_kernel_services():
    services: KernelServices = FakeKernel()
    assert services.query_process(1) is None
