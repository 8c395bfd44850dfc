"""BASESRV handlers: real behaviour and error statuses."""

from __future__ import annotations

import pytest

from nt.status import NtStatus
from ports.csr import lookup_api
from ports.schema import validate
from processes.csrss.api import ReplyCode
from processes.csrss.process import CsrProcessFlags
from tests.unit.test_csrsrv import SUCCESS, Client, boot, call, spawn, start

DDD_RAW, DDD_REMOVE, DDD_EXACT = 0x1, 0x2, 0x4


@pytest.fixture
def machine():
    csr, kernel, completed = boot()
    return csr, kernel, start(csr, kernel, 200, "cmd.exe")


def check_reply(name: str, reply) -> None:
    assert reply.status == SUCCESS, hex(reply.status)
    validate(lookup_api(name).reply, reply.body)


def test_get_temp_file_counts_up_and_wraps_at_16_bits(machine):
    csr, _, client = machine
    ids = [call(csr, client, "BaseSrvGetTempFile").body["unique_id"] for _ in range(3)]
    assert ids == [1, 2, 3]
    csr.loaded[1].state.temp_file_unique = 0xFFFE
    assert call(csr, client, "BasepGetTempFile").body["unique_id"] == 0xFFFF
    reply = call(csr, client, "BasepGetTempFile")
    assert reply.body["unique_id"] == 0
    check_reply("BasepGetTempFile", reply)


def test_create_process_registers_the_callers_child(machine):
    csr, kernel, parent = machine
    child = spawn(csr, kernel, parent, 210, flags=0x200)
    process = csr.processes.locate(210)
    assert process.parent_pid == 200 and process.image == "child.exe"
    assert process.flags & CsrProcessFlags.CsrProcessIsConsoleApp
    assert process.flags & CsrProcessFlags.CsrProcessCreateNewGroup
    assert process.shutdown_level == 0x280
    assert process.nt_session is csr.processes.locate(200).nt_session
    assert call(csr, child, "BasepGetTempFile").status == SUCCESS
    gui = spawn(csr, kernel, parent, 211, gui=True)
    assert not csr.processes.locate(gui.pid).flags & CsrProcessFlags.CsrProcessIsConsoleApp


def test_create_process_errors(machine):
    csr, kernel, parent = machine
    assert (
        call(csr, parent, "BasepCreateProcess", process_id=999).status
        == NtStatus.STATUS_INVALID_CID
    )
    kernel.spawn(220, "notmine.exe", parent_pid=12345)
    denied = call(csr, parent, "BasepCreateProcess", process_id=220)
    assert denied.status == NtStatus.STATUS_ACCESS_DENIED
    spawn(csr, kernel, parent, 210)
    again = call(csr, parent, "BasepCreateProcess", process_id=210)
    assert again.status == NtStatus.STATUS_OBJECT_NAME_COLLISION
    kernel.spawn(230, "gone.exe", parent_pid=200)["state"] = "exited"
    gone = call(csr, parent, "BasepCreateProcess", process_id=230)
    assert gone.status == NtStatus.STATUS_INVALID_CID


def test_a_child_takes_its_own_token_identity(machine):
    csr, kernel, parent = machine
    kernel.spawn(240, "runas.exe", parent_pid=200, sid="S-1-5-21-9-9")
    assert call(csr, parent, "BasepCreateProcess", process_id=240).status == SUCCESS
    assert csr.processes.locate(240).logon_id == "S-1-5-21-9-9"


def test_create_process_from_a_dying_parent_is_a_dead_client_reply(machine):
    csr, kernel, parent = machine
    kernel.spawn(210, "child.exe", parent_pid=200)
    csr.processes.locate(200).flags |= CsrProcessFlags.CsrProcessTerminating
    base = csr.loaded[1].state
    body = {"process_id": 210, "thread_id": 0, "creation_flags": 0, "gui": False}
    reply = base.create_process(body, parent)
    assert reply.status == NtStatus.STATUS_THREAD_IS_TERMINATING
    assert reply.reply_code == ReplyCode.CsrReplyDeadClient


def test_create_thread_and_register_thread(machine):
    csr, kernel, parent = machine
    child = spawn(csr, kernel, parent, 210)
    assert call(csr, parent, "BasepCreateThread", process_id=200, thread_id=5).status == SUCCESS
    assert call(csr, parent, "BasepCreateThread", process_id=210, thread_id=6).status == SUCCESS
    assert call(csr, parent, "BasepCreateThread", process_id=100, thread_id=7).status == SUCCESS
    missing = call(csr, parent, "BasepCreateThread", process_id=999, thread_id=8)
    assert missing.status == NtStatus.STATUS_UNSUCCESSFUL
    assert call(csr, child, "BaseSrvRegisterThread", thread_id=9).status == SUCCESS
    assert csr.processes.locate(200).threads == {5}
    assert csr.processes.locate(210).threads == {6, 9}


def test_exit_process_forgets_the_caller_and_sends_no_reply(machine):
    csr, _, client = machine
    reply = call(csr, client, "BasepExitProcess", exit_code=3)
    assert reply.status == SUCCESS and reply.reply_code == ReplyCode.CsrReplyDeadClient
    assert csr.processes.locate(200) is None
    assert call(csr, client, "BasepGetTempFile").status == NtStatus.STATUS_ILLEGAL_FUNCTION


def test_shutdown_parameters(machine):
    csr, _, client = machine
    reply = call(csr, client, "BasepGetProcessShutdownParam")
    assert reply.body == {"level": 0x280, "flags": 0}
    check_reply("BasepGetProcessShutdownParam", reply)
    assert call(csr, client, "BasepSetProcessShutdownParam", level=480, flags=1).status == SUCCESS
    assert csr.processes.locate(200).shutdown_level == 480
    assert call(csr, client, "BasepGetProcessShutdownParam").body == {"level": 480, "flags": 1}


@pytest.mark.parametrize(
    ("level", "flags"), [(0x500, 0), (0xFFFFFFFF, 0), (0x100, 2), (0x100, 0x4)]
)
def test_bad_shutdown_parameters_are_invalid_parameter(machine, level, flags):
    csr, _, client = machine
    reply = call(csr, client, "BasepSetProcessShutdownParam", level=level, flags=flags)
    assert reply.status == NtStatus.STATUS_INVALID_PARAMETER
    assert csr.processes.locate(200).shutdown_level == 0x280


def test_define_dos_device_creates_and_removes_a_link(machine):
    csr, kernel, client = machine
    client.session = 0  # the global DosDevices
    assert (
        call(
            csr, client, "BasepDefineDosDevice", flags=0, device_name="x:", target_path="C:\\Temp"
        ).status
        == SUCCESS
    )
    assert kernel.links == {"\\??\\X:": "\\??\\C:\\Temp"}
    raw = call(
        csr,
        client,
        "BasepDefineDosDevice",
        flags=DDD_RAW,
        device_name="Y:",
        target_path="\\Device\\HarddiskVolume2",
    )
    assert raw.status == SUCCESS and kernel.links["\\??\\Y:"] == "\\Device\\HarddiskVolume2"
    assert (
        call(csr, client, "BasepDefineDosDevice", flags=DDD_REMOVE, device_name="X:").status
        == SUCCESS
    )
    assert "\\??\\X:" not in kernel.links


def test_define_dos_device_is_per_session(machine):
    csr, kernel, client = machine
    reply = call(
        csr,
        client,
        "BasepDefineDosDevice",
        flags=DDD_RAW,
        device_name="Z:",
        target_path="\\Device\\X",
    )
    assert reply.status == SUCCESS
    assert kernel.links == {"\\Sessions\\1\\DosDevices\\Z:": "\\Device\\X"}


def test_redefining_stacks_and_removing_restores(machine):
    csr, kernel, client = machine
    client.session = 0

    def define(target: str, flags: int = DDD_RAW) -> int:
        return call(
            csr, client, "BasepDefineDosDevice", flags=flags, device_name="Q:", target_path=target
        ).status

    assert define("\\Device\\A") == SUCCESS
    assert define("\\Device\\B") == SUCCESS
    assert kernel.links["\\??\\Q:"] == "\\Device\\B"
    assert define("\\Device\\A", DDD_RAW | DDD_REMOVE | DDD_EXACT) == SUCCESS  # from history
    assert kernel.links["\\??\\Q:"] == "\\Device\\B"
    assert (
        define("\\Device\\C", DDD_RAW | DDD_REMOVE | DDD_EXACT)
        == NtStatus.STATUS_OBJECT_NAME_NOT_FOUND
    )
    assert define("\\Device\\A") == SUCCESS
    assert define("\\Dev", DDD_RAW | DDD_REMOVE) == SUCCESS  # a prefix match
    assert kernel.links["\\??\\Q:"] == "\\Device\\B"
    assert define("", DDD_REMOVE) == SUCCESS
    assert "\\??\\Q:" not in kernel.links
    assert define("", DDD_REMOVE) == NtStatus.STATUS_OBJECT_NAME_NOT_FOUND


@pytest.mark.parametrize(
    ("flags", "device"),
    [(0x10, "X:"), (DDD_EXACT, "X:"), (0, ""), (0, "..\\ApiPort"), (0, "a/b")],
)
def test_define_dos_device_rejects_bad_requests(machine, flags, device):
    csr, kernel, client = machine
    reply = call(
        csr, client, "BasepDefineDosDevice", flags=flags, device_name=device, target_path="C:\\"
    )
    assert reply.status == NtStatus.STATUS_INVALID_PARAMETER
    assert kernel.links == {}


def test_define_without_a_target_is_invalid(machine):
    csr, _, client = machine
    reply = call(csr, client, "BasepDefineDosDevice", flags=0, device_name="X:")
    assert reply.status == NtStatus.STATUS_INVALID_PARAMETER


def test_nls_user_info_is_per_session(machine):
    csr, kernel, client = machine
    reply = call(csr, client, "BasepNlsGetUserInfo")
    check_reply("BasepNlsGetUserInfo", reply)
    assert reply.body["locale_id"] == 0x409 and reply.body["values"]["LOCALE_SDECIMAL"] == "."
    assert call(csr, client, "BasepNlsSetUserInfo", lc_type=0x0E, data=",").status == SUCCESS
    after = call(csr, client, "BasepNlsGetUserInfo").body
    assert after["values"]["LOCALE_SDECIMAL"] == "," and after["cache_update_count"] == 1
    other = start(csr, kernel, 230, session=2)
    assert call(csr, other, "BasepNlsGetUserInfo").body["values"]["LOCALE_SDECIMAL"] == "."
    bad = call(csr, client, "BasepNlsSetUserInfo", lc_type=0x7777, data="x")
    assert bad.status == NtStatus.STATUS_INVALID_PARAMETER


def test_is_first_vdm_answers_true_once(machine):
    csr, _, client = machine
    assert call(csr, client, "BasepIsFirstVDM").body == {"first_vdm": True}
    assert call(csr, client, "BasepIsFirstVDM").body == {"first_vdm": False}


def test_sound_sentry_needs_winsrv():
    csr, kernel, _ = boot()
    assert call(csr, start(csr, kernel, 200), "BasepSoundSentryNotification").status == SUCCESS
    bare, kernel, _ = boot("csrss.exe SharedSection=1024,3072 ServerDll=basesrv,1")
    reply = call(bare, start(bare, kernel, 200), "BasepSoundSentryNotification")
    assert reply.status == NtStatus.STATUS_ACCESS_DENIED


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("BasepCheckVDM", NtStatus.STATUS_NOT_IMPLEMENTED),
        ("BasepNlsSetMultipleUserInfo", NtStatus.STATUS_NOT_IMPLEMENTED),
        ("BasepRefreshIniFileMapping", NtStatus.STATUS_NOT_IMPLEMENTED),
        ("BasepDebugProcess", NtStatus.STATUS_UNSUCCESSFUL),
        ("BasepDebugProcessStop", NtStatus.STATUS_UNSUCCESSFUL),
    ],
)
def test_stubbed_apis_answer_like_reactos(machine, name, status):
    csr, _, client = machine
    assert call(csr, client, name).status == status


def test_csrss_own_children_have_no_session_to_join():
    csr, kernel, _ = boot()
    kernel.spawn(300, "orphan.exe", parent_pid=4)
    me = Client(100, "csrss.exe")
    assert (
        call(csr, me, "BasepCreateProcess", process_id=300).status == NtStatus.STATUS_ACCESS_DENIED
    )
    kernel.spawn(301, "helper.exe", parent_pid=100)
    reply = call(csr, me, "BasepCreateProcess", process_id=301)
    assert reply.status == NtStatus.STATUS_INVALID_PARAMETER
    assert csr.processes.locate(301) is None
