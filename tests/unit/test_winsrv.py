"""WINSRV: USERSRV (logon registration, ExitWindowsEx, EndTask) and CONSRV (consoles)."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from nt.log import ntstatus_processor
from nt.status import NtStatus
from ports.contract import PENDING
from ports.csr import lookup_api
from ports.schema import validate
from processes.csrss import console as con
from processes.csrss.process import SYSTEM_LOGON_ID
from tests.unit.test_csrsrv import SUCCESS, USER_SID, Client, boot, call, spawn, start

EWX_LOGOFF, EWX_SHUTDOWN, EWX_REBOOT, EWX_FORCE = 0x0, 0x1, 0x2, 0x4
EWX_CALLER_WINLOGON = 0x200
INVALID_HANDLE = NtStatus.STATUS_INVALID_HANDLE


@pytest.fixture
def desktop():
    """csrss of session 1 with winlogon registered."""
    csr, kernel, _ = boot()
    winlogon = start(csr, kernel, 200, "winlogon.exe", critical=True)
    assert (
        call(csr, winlogon, "SrvRegisterLogonProcess", process_id=200, register=True).status
        == SUCCESS
    )
    return csr, kernel, winlogon


# --- USERSRV: registrations -------------------------------------------------------------


def test_register_logon_process_rules():
    csr, kernel, _ = boot()
    winlogon = start(csr, kernel, 200, "winlogon.exe")
    other = start(csr, kernel, 201, "other.exe")
    register = lookup_api("UserpRegisterLogonProcess").number
    assert (
        csr.dispatch(register, {"process_id": 201, "register": True}, winlogon).status
        == NtStatus.STATUS_ACCESS_DENIED
    )
    assert (
        call(csr, winlogon, "SrvRegisterLogonProcess", process_id=200, register=True).status
        == SUCCESS
    )
    second = call(csr, other, "SrvRegisterLogonProcess", process_id=201, register=True)
    assert second.status == NtStatus.STATUS_LOGON_SESSION_EXISTS
    not_me = call(csr, other, "SrvRegisterLogonProcess", process_id=201, register=False)
    assert not_me.status == NtStatus.STATUS_NOT_LOGON_PROCESS
    assert (
        call(csr, winlogon, "SrvRegisterLogonProcess", process_id=200, register=False).status
        == SUCCESS
    )
    assert (
        call(csr, other, "SrvRegisterLogonProcess", process_id=201, register=True).status == SUCCESS
    )


def test_register_services_process_only_once(desktop):
    csr, kernel, _ = desktop
    services = start(csr, kernel, 210, "services.exe")
    assert (
        call(csr, services, "SrvRegisterServicesProcess", process_id=211).status
        == NtStatus.STATUS_ACCESS_DENIED
    )
    assert call(csr, services, "SrvRegisterServicesProcess", process_id=210).status == SUCCESS
    again = call(csr, services, "SrvRegisterServicesProcess", process_id=210)
    assert again.status == NtStatus.STATUS_INVALID_PARAMETER


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("SrvActivateDebugger", NtStatus.STATUS_NOT_IMPLEMENTED),
        ("SrvDeviceEvent", NtStatus.STATUS_NOT_IMPLEMENTED),
        ("SrvRecordShutdownReason", NtStatus.STATUS_NOT_IMPLEMENTED),
        ("SrvGetThreadConsoleDesktop", SUCCESS),
        ("SrvCreateSystemThreads", SUCCESS),
    ],
)
def test_simple_usersrv_apis(desktop, name, status):
    csr, _, winlogon = desktop
    reply = call(csr, winlogon, name)
    assert reply.status == status
    if status == SUCCESS:
        validate(lookup_api(name).reply, reply.body)


def test_logon_rereads_the_shutdown_timeouts(desktop):
    csr, _, winlogon = desktop
    user = csr.loaded[3].state
    user.settings_loader = lambda client: {
        "wait_to_kill_app_timeout": 1000,
        "process_terminate_timeout": 10,
        "junk": 1,
    }
    assert call(csr, winlogon, "SrvLogon", logon=True).status == SUCCESS
    assert user.logged_on is True
    assert user.settings.wait_to_kill_app_timeout == 1000
    assert user.settings.process_terminate_timeout == 5000  # at least 5 s


# --- USERSRV: ExitWindowsEx -------------------------------------------------------------


def test_caller_winlogon_flag_from_another_process_is_access_denied(desktop):
    csr, kernel, _ = desktop
    app = start(csr, kernel, 220, "app.exe", sid=USER_SID)
    reply = call(csr, app, "SrvExitWindowsEx", flags=EWX_CALLER_WINLOGON | EWX_SHUTDOWN)
    assert reply.status == NtStatus.STATUS_ACCESS_DENIED
    assert kernel.winlogon_notes == [] and kernel.terminated == []


def test_an_application_request_goes_to_winlogon_and_is_pending(desktop):
    csr, kernel, _ = desktop
    app = start(csr, kernel, 220, "app.exe", sid=USER_SID)
    reply = call(csr, app, "SrvExitWindowsEx", flags=EWX_REBOOT)
    assert reply.status == NtStatus.STATUS_PENDING
    assert kernel.winlogon_notes == [(1, EWX_REBOOT | EWX_SHUTDOWN)]
    assert kernel.terminated == []


def test_shutdown_needs_the_privilege(desktop):
    csr, kernel, _ = desktop
    app = start(csr, kernel, 220, "app.exe", sid=USER_SID)
    app.token = {"sid": USER_SID, "privileges": []}
    assert (
        call(csr, app, "SrvExitWindowsEx", flags=EWX_SHUTDOWN).status
        == NtStatus.STATUS_PRIVILEGE_NOT_HELD
    )
    assert call(csr, app, "SrvExitWindowsEx", flags=EWX_LOGOFF).status == NtStatus.STATUS_PENDING


def test_winlogon_shutdown_walks_every_process_but_winlogon(desktop):
    csr, kernel, winlogon = desktop
    services = start(csr, kernel, 210, "services.exe")
    call(csr, services, "BasepSetProcessShutdownParam", level=480, flags=0)
    lsass = start(csr, kernel, 211, "lsass.exe")
    app = start(csr, kernel, 220, "app.exe", sid=USER_SID, console=True)
    flags = EWX_CALLER_WINLOGON | EWX_SHUTDOWN | EWX_FORCE
    assert call(csr, winlogon, "SrvExitWindowsEx", flags=flags).status == SUCCESS
    assert [pid for pid, _ in kernel.terminated] == [211, 220, 210]
    assert 200 not in [pid for pid, _ in kernel.terminated]
    # the console process got CTRL_SHUTDOWN_EVENT from consrv before it went
    assert list(csr.processes.locate(app.pid).server_data[2].ctrl_events) == [
        con.CTRL_SHUTDOWN_EVENT
    ]
    assert lsass.pid in dict(kernel.terminated)


def test_winlogon_logoff_spares_system_and_other_users(desktop):
    csr, kernel, winlogon = desktop
    winlogon.token = {"sid": USER_SID}  # HandleLogoff impersonates the user
    csr.processes.locate(200).logon_id = USER_SID
    start(csr, kernel, 210, "services.exe", sid=SYSTEM_LOGON_ID)
    start(csr, kernel, 230, "other.exe", sid="S-1-5-21-1-2000")
    start(csr, kernel, 220, "explorer.exe", sid=USER_SID)
    start(csr, kernel, 221, "cmd.exe", sid=USER_SID, console=True)
    reply = call(csr, winlogon, "SrvExitWindowsEx", flags=EWX_CALLER_WINLOGON | EWX_LOGOFF)
    assert reply.status == SUCCESS
    assert sorted(pid for pid, _ in kernel.terminated) == [220, 221]


def test_an_application_that_refuses_cancels_the_shutdown(desktop):
    csr, kernel, winlogon = desktop
    start(csr, kernel, 220, "editor.exe", sid=USER_SID)
    start(csr, kernel, 221, "later.exe", sid=USER_SID)
    csr.processes.locate(221).shutdown_level = 0x100
    csr.loaded[3].state.query_end_session = lambda pid, flags: False if pid == 220 else None
    reply = call(csr, winlogon, "SrvExitWindowsEx", flags=EWX_CALLER_WINLOGON | EWX_SHUTDOWN)
    assert reply.status == NtStatus.STATUS_CANCELLED
    assert kernel.terminated == []


@pytest.mark.parametrize("force_if_hung", [False, True])
def test_a_hung_application_is_ended_after_the_shutdown_timeouts(desktop, force_if_hung):
    import threading
    import time

    csr, kernel, winlogon = desktop
    start(csr, kernel, 220, "hung.exe", sid=USER_SID)
    start(csr, kernel, 221, "fine.exe", sid=USER_SID)
    user = csr.loaded[3].state
    user.settings.hung_app_timeout, user.settings.wait_to_kill_app_timeout = 5000, 20000
    user.time_scale = 0.01  # 50 ms / 200 ms
    never = threading.Event()
    user.query_end_session = lambda pid, flags: never.wait(2) if pid == 220 else True
    flags = EWX_CALLER_WINLOGON | EWX_SHUTDOWN | (0x10 if force_if_hung else 0)
    t0 = time.monotonic()
    with capture_logs(processors=[ntstatus_processor]) as logs:
        reply = call(csr, winlogon, "SrvExitWindowsEx", flags=flags)
    took = time.monotonic() - t0
    never.set()
    assert reply.status == SUCCESS
    assert sorted(pid for pid, _ in kernel.terminated) == [220, 221]
    (hung,) = [e for e in logs if e["event"] == "csr.hung_app_killed"]
    assert hung["process_pid"] == 220 and hung["force_if_hung"] is force_if_hung
    # Which timeout ended it (HungAppTimeout alone with EWX_FORCEIFHUNG, else
    # WaitToKillAppTimeout), and that it was really waited for (a lower bound only: a
    # loaded machine can only make the wait longer).
    assert hung["waited_ms"] == (5000 if force_if_hung else 20000)
    assert took >= (0.05 if force_if_hung else 0.2)


def test_without_windows_the_second_phase_kills_non_console_processes(desktop):
    csr, kernel, winlogon = desktop
    start(csr, kernel, 220, "tray.exe", sid=USER_SID)
    reply = call(csr, winlogon, "SrvExitWindowsEx", flags=EWX_CALLER_WINLOGON | EWX_SHUTDOWN)
    assert reply.status == SUCCESS
    assert kernel.terminated == [(220, 0)]


# --- USERSRV: EndTask (C7) --------------------------------------------------------------


def test_end_task_on_csrss_itself_is_access_denied(desktop):
    csr, kernel, _ = desktop
    app = start(csr, kernel, 220, "taskmgr.exe", sid=USER_SID)
    with capture_logs(processors=[ntstatus_processor]) as logs:
        reply = call(csr, app, "SrvEndTask", process_id=100, force=True)
    assert reply.status == NtStatus.STATUS_ACCESS_DENIED and reply.body == {"success": False}
    assert kernel.terminated == []
    assert any(e["event"] == "csr.end_task_refused" for e in logs)


def test_end_task_on_a_critical_process_is_access_denied(desktop):
    csr, kernel, _ = desktop
    app = start(csr, kernel, 220, "taskmgr.exe", sid=USER_SID)
    reply = call(csr, app, "SrvEndTask", process_id=200, force=True)  # winlogon is critical
    assert reply.status == NtStatus.STATUS_ACCESS_DENIED
    assert kernel.terminated == []


def test_end_task_across_sessions_is_access_denied(desktop):
    csr, kernel, _ = desktop
    app = start(csr, kernel, 220, "taskmgr.exe", sid=USER_SID)
    start(csr, kernel, 230, "svc.exe", session=0)
    assert call(csr, app, "SrvEndTask", process_id=230).status == NtStatus.STATUS_ACCESS_DENIED


def test_end_task_on_another_users_process_needs_sedebugprivilege(desktop):
    csr, kernel, _ = desktop
    app = start(csr, kernel, 220, "taskmgr.exe", sid=USER_SID)
    start(csr, kernel, 231, "other.exe", sid="S-1-5-21-1-2-3-1009")
    with capture_logs(processors=[ntstatus_processor]) as logs:
        reply = call(csr, app, "SrvEndTask", process_id=231)
    assert reply.status == NtStatus.STATUS_ACCESS_DENIED and kernel.terminated == []
    assert any(e.get("event_id") == 4656 for e in logs)
    app.token = {"sid": USER_SID, "privileges": ["SeDebugPrivilege"]}
    assert call(csr, app, "SrvEndTask", process_id=231).status == SUCCESS


def test_end_task_terminates_an_ordinary_process(desktop):
    csr, kernel, _ = desktop
    app = start(csr, kernel, 220, "taskmgr.exe", sid=USER_SID)
    start(csr, kernel, 221, "hung.exe", sid=USER_SID)
    reply = call(csr, app, "SrvEndTask", process_id=221)
    assert reply.status == SUCCESS and reply.body == {"success": True}
    assert kernel.terminated == [(221, 1)]
    missing = call(csr, app, "SrvEndTask", process_id=4242)
    assert missing.status == NtStatus.STATUS_INVALID_CID


# --- CONSRV -----------------------------------------------------------------------------


@pytest.fixture
def shell():
    csr, kernel, _ = boot()
    cmd = start(csr, kernel, 300, "cmd.exe", sid=USER_SID, console=True)
    return csr, kernel, cmd


def test_a_client_without_a_console_gets_invalid_handle():
    csr, kernel, _ = boot()
    gui = start(csr, kernel, 300, "notepad.exe")
    assert call(csr, gui, "ConsolepGetTitle").status == INVALID_HANDLE
    assert call(csr, gui, "ConsolepWriteConsole", handle=7, text="x").status == INVALID_HANDLE
    assert call(csr, gui, "ConsolepFree").status == INVALID_HANDLE
    assert call(csr, gui, "ConsolepGetProcessList").status == INVALID_HANDLE


def test_alloc_gives_the_standard_handles_once():
    csr, kernel, _ = boot()
    gui = start(csr, kernel, 300, "notepad.exe")
    reply = call(csr, gui, "ConsolepAlloc", title="Debug")
    assert reply.status == SUCCESS
    assert reply.body == {
        "console_handle": 1,
        "input_handle": 3,
        "output_handle": 7,
        "error_handle": 11,
    }
    validate(lookup_api("ConsolepAlloc").reply, reply.body)
    assert call(csr, gui, "ConsolepAlloc").status == NtStatus.STATUS_ACCESS_DENIED
    assert call(csr, gui, "ConsolepGetTitle").body["title"] == "Debug"


def test_write_console_appends_to_the_screen_buffer(shell):
    csr, _, cmd = shell
    reply = call(csr, cmd, "ConsolepWriteConsole", handle=7, text="hello\r\nworld\tx\b!")
    assert reply.status == SUCCESS and reply.body == {"written": 16}
    console = csr.loaded[2].state.consoles[1]
    assert console.active.lines() == ["hello", "world   !"]
    info = call(csr, cmd, "ConsolepGetScreenBufferInfo", handle=7)
    validate(lookup_api("ConsolepGetScreenBufferInfo").reply, info.body)
    assert (info.body["cursor_x"], info.body["cursor_y"]) == (9, 1)


def test_screen_buffer_is_bounded_and_scrolls(shell):
    csr, _, cmd = shell
    for i in range(40):
        text = "".join(f"line {n}\n" for n in range(i * 10, i * 10 + 10))
        call(csr, cmd, "ConsolepWriteConsole", handle=7, text=text)
    rows = csr.loaded[2].state.consoles[1].active.rows
    assert len(rows) == 300
    assert rows[0] == "line 101" and rows[-2] == "line 399"


def test_long_lines_wrap(shell):
    csr, _, cmd = shell
    call(csr, cmd, "ConsolepWriteConsole", handle=7, text="x" * 100)
    assert csr.loaded[2].state.consoles[1].active.lines() == ["x" * 80, "x" * 20]


def test_read_console_waits_for_a_line_and_write_console_input_completes_it(shell):
    csr, _, cmd = shell
    assert call(csr, cmd, "ConsolepReadConsole", handle=3, max_chars=80) is PENDING
    (parked,) = cmd.deferred
    reply = call(csr, cmd, "ConsolepWriteConsoleInput", handle=3, records=list("di"))
    assert reply.body == {"written": 2} and parked.replies == []  # no whole line yet
    assert call(csr, cmd, "ConsolepGetNumberOfInputEvents", handle=3).body == {"count": 2}
    call(csr, cmd, "ConsolepWriteConsoleInput", handle=3, records=list("r\r"))
    assert parked.replies == [(SUCCESS, {"text": "dir\r\n"})]  # CsrNotifyWait
    assert csr.loaded[2].state.consoles[1].active.lines() == ["dir"]  # echoed
    call(csr, cmd, "ConsolepWriteConsoleInput", handle=3, records=list("ver\r"))
    assert call(csr, cmd, "ConsolepReadConsole", handle=3, max_chars=80).body == {"text": "ver\r\n"}
    # a parked read ends with the caller's console: STATUS_INVALID_HANDLE
    assert call(csr, cmd, "ConsolepReadConsole", handle=3, max_chars=80) is PENDING
    assert call(csr, cmd, "ConsolepFree").status == SUCCESS
    assert cmd.deferred[-1].replies == [(NtStatus.STATUS_INVALID_HANDLE, {})]


def test_read_console_reads_what_write_console_input_fed(shell):
    csr, _, cmd = shell
    reply = call(csr, cmd, "ConsolepWriteConsoleInput", handle=3, records=list("dir\r"))
    assert reply.body == {"written": 4}
    assert call(csr, cmd, "ConsolepGetNumberOfInputEvents", handle=3).body == {"count": 4}
    assert call(csr, cmd, "ConsolepReadConsole", handle=3, max_chars=80).body == {"text": "dir\r\n"}
    assert csr.loaded[2].state.consoles[1].active.lines() == ["dir"]  # echoed
    call(csr, cmd, "ConsolepSetMode", handle=3, mode=0)
    call(csr, cmd, "ConsolepWriteConsoleInput", handle=3, records=list("ab"))
    assert call(csr, cmd, "ConsolepGetConsoleInput", handle=3, count=5, peek=True).body == {
        "records": ["a", "b"]
    }
    assert call(csr, cmd, "ConsolepReadConsole", handle=3, max_chars=1).body == {"text": "a"}
    call(csr, cmd, "ConsolepFlushInputBuffer", handle=3)
    assert call(csr, cmd, "ConsolepGetNumberOfInputEvents", handle=3).body == {"count": 0}


def test_input_buffer_is_bounded(shell):
    csr, _, cmd = shell
    total = 0
    for _ in range(5):
        total += call(csr, cmd, "ConsolepWriteConsoleInput", handle=3, records=["a"] * 1024).body[
            "written"
        ]
    assert total == con.INPUT_BUFFER_MAX


def test_titles_are_data_and_length_capped(shell):
    csr, _, cmd = shell
    assert call(csr, cmd, "ConsolepSetTitle", title="%n%s%x %p").status == SUCCESS
    assert call(csr, cmd, "ConsolepGetTitle").body == {"title": "%n%s%x %p", "length": 9}
    assert call(csr, cmd, "ConsolepGetTitle", max_length=2).body == {"title": "%n", "length": 9}
    too_long = call(csr, cmd, "ConsolepSetTitle", title="t" * 1025)
    assert too_long.status == NtStatus.STATUS_INVALID_PARAMETER
    surrogate = call(csr, cmd, "ConsolepSetTitle", title="\udc00")
    assert surrogate.status == NtStatus.STATUS_INVALID_PARAMETER


def test_children_share_the_console_and_the_last_one_out_destroys_it(shell):
    csr, kernel, cmd = shell
    child = spawn(csr, kernel, cmd, 310, console_handle=1)
    reply = call(csr, child, "ConsolepGetProcessList")
    assert reply.body == {"process_ids": [310, 300], "count": 2}
    assert call(csr, child, "ConsolepGetProcessList", max_count=1).body == {
        "process_ids": [],
        "count": 2,
    }
    assert call(csr, child, "ConsolepWriteConsole", handle=7, text="from child").status == SUCCESS
    assert call(csr, child, "ConsolepFree").status == SUCCESS
    assert call(csr, cmd, "ConsolepGetProcessList").body["process_ids"] == [300]
    csr.destroy_process(300, 0)
    assert csr.loaded[2].state.consoles == {}


def test_a_child_cannot_claim_a_console_it_did_not_inherit(shell):
    csr, kernel, cmd = shell
    child = spawn(csr, kernel, cmd, 310)
    info = {"is_console_app": True, "console_handle": 99}
    reply = call(csr, child, "CsrpClientConnect", server_id=2, connection_info=info)
    assert reply.status == INVALID_HANDLE


def test_attach_to_the_parent_console(shell):
    csr, kernel, cmd = shell
    gui = spawn(csr, kernel, cmd, 310, gui=True)
    assert call(csr, gui, "ConsolepGetTitle").status == INVALID_HANDLE
    reply = call(csr, gui, "ConsolepAttach", process_id=0xFFFFFFFF)
    assert reply.status == SUCCESS and reply.body["console_handle"] == 1
    assert call(csr, gui, "ConsolepAttach", process_id=300).status == NtStatus.STATUS_ACCESS_DENIED
    loner = start(csr, kernel, 320, "loner.exe")
    assert call(csr, loner, "ConsolepAttach", process_id=4242).status == INVALID_HANDLE


def test_handles_kinds_and_lifetimes(shell):
    csr, _, cmd = shell
    assert call(csr, cmd, "ConsolepWriteConsole", handle=3, text="x").status == INVALID_HANDLE
    assert call(csr, cmd, "ConsolepReadConsole", handle=7, max_chars=1).status == INVALID_HANDLE
    assert call(csr, cmd, "ConsolepWriteConsole", handle=8, text="x").status == INVALID_HANDLE
    dup = call(csr, cmd, "ConsolepDuplicateHandle", source_handle=7, options=2)
    assert dup.status == SUCCESS and dup.body == {"handle": 15}
    assert call(csr, cmd, "ConsolepVerifyIoHandle", handle=15).body == {"valid": True}
    assert call(csr, cmd, "ConsolepCloseHandle", handle=15).status == SUCCESS
    assert call(csr, cmd, "ConsolepVerifyIoHandle", handle=15).body == {"valid": False}
    assert call(csr, cmd, "ConsolepCloseHandle", handle=15).status == INVALID_HANDLE
    opened = call(csr, cmd, "ConsolepOpenConsole", handle_type=1)
    assert opened.body == {"handle": 15}
    assert call(csr, cmd, "ConsolepGetHandleInformation", handle=15).body == {"flags": 0}
    call(csr, cmd, "ConsolepSetHandleInformation", handle=15, mask=3, flags=2)
    assert call(csr, cmd, "ConsolepGetHandleInformation", handle=15).body == {"flags": 2}


def test_handle_table_is_bounded(shell):
    csr, _, cmd = shell
    statuses = {call(csr, cmd, "ConsolepOpenConsole", handle_type=2).status for _ in range(300)}
    assert statuses == {SUCCESS, NtStatus.STATUS_INSUFFICIENT_RESOURCES}


def test_modes_are_validated(shell):
    csr, _, cmd = shell
    assert call(csr, cmd, "ConsolepGetMode", handle=3).body == {"mode": con.DEFAULT_INPUT_MODE}
    assert call(csr, cmd, "ConsolepGetMode", handle=7).body == {"mode": 3}
    assert (
        call(csr, cmd, "ConsolepSetMode", handle=3, mode=0x200).status
        == NtStatus.STATUS_INVALID_PARAMETER
    )
    assert (
        call(csr, cmd, "ConsolepSetMode", handle=7, mode=0x20).status
        == NtStatus.STATUS_INVALID_PARAMETER
    )
    assert call(csr, cmd, "ConsolepSetMode", handle=7, mode=0x7).status == SUCCESS


def test_cursor_attributes_and_sizes(shell):
    csr, _, cmd = shell
    assert (
        call(csr, cmd, "ConsolepSetCursorInfo", handle=7, size=0, visible=True).status
        == NtStatus.STATUS_INVALID_PARAMETER
    )
    assert (
        call(csr, cmd, "ConsolepSetCursorInfo", handle=7, size=50, visible=False).status == SUCCESS
    )
    assert call(csr, cmd, "ConsolepGetCursorInfo", handle=7).body == {"size": 50, "visible": False}
    assert (
        call(csr, cmd, "ConsolepSetCursorPosition", handle=7, x=80, y=0).status
        == NtStatus.STATUS_INVALID_PARAMETER
    )
    assert call(csr, cmd, "ConsolepSetCursorPosition", handle=7, x=5, y=2).status == SUCCESS
    assert call(csr, cmd, "ConsolepSetTextAttribute", handle=7, attributes=0x1F).status == SUCCESS
    assert (
        call(csr, cmd, "ConsolepSetScreenBufferSize", handle=7, size_x=10, size_y=10).status
        == NtStatus.STATUS_INVALID_PARAMETER
    )
    assert (
        call(csr, cmd, "ConsolepSetScreenBufferSize", handle=7, size_x=9999, size_y=9999).status
        == NtStatus.STATUS_INVALID_PARAMETER
    )
    assert (
        call(csr, cmd, "ConsolepSetScreenBufferSize", handle=7, size_x=120, size_y=100).status
        == SUCCESS
    )
    info = call(csr, cmd, "ConsolepGetScreenBufferInfo", handle=7).body
    assert (info["size_x"], info["size_y"], info["attributes"]) == (120, 100, 0x1F)
    assert (info["cursor_x"], info["cursor_y"]) == (5, 2)


def test_screen_buffers(shell):
    csr, _, cmd = shell
    assert (
        call(csr, cmd, "ConsolepCreateScreenBuffer", buffer_type=2).status
        == NtStatus.STATUS_NOT_SUPPORTED
    )
    new = call(csr, cmd, "ConsolepCreateScreenBuffer").body["handle"]
    call(csr, cmd, "ConsolepWriteConsole", handle=new, text="offscreen")
    assert call(csr, cmd, "ConsolepSetActiveScreenBuffer", handle=new).status == SUCCESS
    assert csr.loaded[2].state.consoles[1].active.lines() == ["offscreen"]


def test_code_pages_and_history(shell):
    csr, _, cmd = shell
    assert call(csr, cmd, "ConsolepGetCP", output=True).body == {"code_page": 437}
    assert call(csr, cmd, "ConsolepSetCP", output=True, code_page=65001).status == SUCCESS
    assert call(csr, cmd, "ConsolepGetCP", output=True).body == {"code_page": 65001}
    assert (
        call(csr, cmd, "ConsolepSetCP", output=False, code_page=12345).status
        == NtStatus.STATUS_INVALID_PARAMETER
    )
    history = {"history_buffer_size": 10, "number_of_history_buffers": 2, "flags": 1}
    assert call(csr, cmd, "ConsolepSetHistory", **history).status == SUCCESS
    assert call(csr, cmd, "ConsolepGetHistory").body == history


def test_ctrl_events_reach_the_console_processes(shell):
    csr, kernel, cmd = shell
    child = spawn(csr, kernel, cmd, 310, console_handle=1, flags=0x200)  # its own group
    assert (
        call(csr, cmd, "ConsolepGenerateCtrlEvent", ctrl_event=1, process_group_id=310).status
        == SUCCESS
    )
    data = {pid: csr.processes.locate(pid).server_data[2] for pid in (300, 310)}
    assert list(data[310].ctrl_events) == [con.CTRL_BREAK_EVENT] and not data[300].ctrl_events
    call(csr, child, "ConsolepWriteConsoleInput", handle=3, records=["\x03"])
    assert list(data[300].ctrl_events) == [con.CTRL_C_EVENT]
    bad = call(csr, cmd, "ConsolepGenerateCtrlEvent", ctrl_event=5, process_group_id=0)
    assert bad.status == NtStatus.STATUS_INVALID_PARAMETER


@pytest.mark.parametrize(
    "name", ["ConsolepSetFont", "ConsolepGetAlias", "ConsolepRegisterVDM", "ConsolepGetLangId"]
)
def test_unimplemented_console_apis(shell, name):
    csr, _, cmd = shell
    assert call(csr, cmd, name).status == NtStatus.STATUS_NOT_IMPLEMENTED


def test_bad_console_connect_info_is_unsuccessful(shell):
    csr, kernel, _ = shell
    other = start(csr, kernel, 320, "x.exe")
    reply = call(
        csr, other, "CsrpClientConnect", server_id=2, connection_info={"is_console_app": 1}
    )
    assert reply.status == NtStatus.STATUS_UNSUCCESSFUL


def test_client_dataclass_is_a_client():
    assert Client(1).session == 1


def test_registrations_and_console_calls_in_parallel_do_not_deadlock(shell):
    """NewProcessCallback runs under the process lock; console APIs must never take the
    process lock while they hold the console lock."""
    import threading

    csr, kernel, cmd = shell
    errors: list[BaseException] = []

    def registrar(base: int) -> None:
        try:
            for i in range(50):
                pid = base + i
                kernel.spawn(pid, "child.exe", 1, parent_pid=cmd.pid)
                assert call(csr, cmd, "BasepCreateProcess", process_id=pid).status == SUCCESS
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    def console_user() -> None:
        try:
            for _ in range(200):
                call(csr, cmd, "ConsolepGenerateCtrlEvent", ctrl_event=0, process_group_id=0)
                call(csr, cmd, "ConsolepWriteConsole", handle=7, text="x")
                call(csr, cmd, "ConsolepGetProcessList")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=registrar, args=(1000 + 100 * n,)) for n in range(3)]
    threads += [threading.Thread(target=console_user) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert not any(t.is_alive() for t in threads), "deadlock"
    assert errors == []
    assert len(csr.processes.snapshot()) == 1 + 150


def test_read_console_output_string_reads_cells_row_after_row(shell):
    csr, _, cmd = shell
    call(csr, cmd, "ConsolepWriteConsole", handle=7, text="first\nsecond\n")
    reply = call(csr, cmd, "ConsolepReadConsoleOutputString", handle=7, x=0, y=0, count=85)
    assert reply.status == SUCCESS
    assert reply.body == {"text": "first".ljust(80) + "secon", "count": 85}
    tail = call(csr, cmd, "ConsolepReadConsoleOutputString", handle=7, x=0, y=299, count=200)
    assert tail.body["count"] == 80  # stops at the end of the buffer
    bad = call(csr, cmd, "ConsolepReadConsoleOutputString", handle=7, x=80, y=0, count=1)
    assert bad.status == NtStatus.STATUS_INVALID_PARAMETER
    attrs = call(
        csr, cmd, "ConsolepReadConsoleOutputString", handle=7, x=0, y=0, count=1, code_type=3
    )
    assert attrs.status == NtStatus.STATUS_NOT_SUPPORTED
    wrong = call(csr, cmd, "ConsolepReadConsoleOutputString", handle=3, x=0, y=0, count=1)
    assert wrong.status == INVALID_HANDLE  # an input handle


def test_another_process_attaches_reads_the_screen_and_types(shell):
    """What `ntctl console PID` does: AttachConsole(PID), read its screen, type a line."""
    csr, kernel, cmd = shell
    call(csr, cmd, "ConsolepWriteConsole", handle=7, text="C:\\> ")
    tool = start(csr, kernel, 330, "ntctl.exe")
    handles = call(csr, tool, "ConsolepAttach", process_id=300).body
    out, inp = handles["output_handle"], handles["input_handle"]
    seen = call(csr, tool, "ConsolepReadConsoleOutputString", handle=out, x=0, y=0, count=80)
    assert seen.body["text"].rstrip() == "C:\\>"
    typed = call(csr, tool, "ConsolepWriteConsoleInput", handle=inp, records=list("ver\r"))
    assert typed.body == {"written": 4}
    assert call(csr, cmd, "ConsolepReadConsole", handle=3, max_chars=80).body == {"text": "ver\r\n"}
    assert call(csr, tool, "ConsolepGetProcessList").body["count"] == 2
    assert call(csr, tool, "ConsolepFree").status == SUCCESS
