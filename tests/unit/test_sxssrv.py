"""CsrLoadedServerDll's size per profile, and sxssrv: the real Windows 10 command line,
its empty API table, and the activation contexts it creates through basesrv."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from nt.log import ntstatus_processor
from nt.status import NtStatus
from ports.csr import (
    CSR_SERVER_DLL_MAX,
    csr_api_number,
    csr_server_dll_max,
    lookup_api,
)
from processes.csrss.sxssrv import CONTEXTS_PER_PROCESS_MAX, SxsProcessData
from tests.unit.test_csrsrv import CSRSS_PID, boot, call, start

SUCCESS = NtStatus.STATUS_SUCCESS
# HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\SubSystems\Windows, Windows 10.
WIN10_CMDLINE = (
    r"%SystemRoot%\system32\csrss.exe ObjectDirectory=\Windows SharedSection=1024,20480,768 "
    r"Windows=On SubSystemType=Windows ServerDll=basesrv,1 "
    r"ServerDll=winsrv:UserServerDllInitialization,3 ServerDll=sxssrv,4 "
    r"ProfileControl=Off MaxRequestThreads=16"
)
# Windows 7: the console server is still in winsrv, sxssrv is the fifth DLL.
WIN7_CMDLINE = WIN10_CMDLINE.replace(
    "ServerDll=sxssrv,4", "ServerDll=winsrv:ConServerDllInitialization,2 ServerDll=sxssrv,4"
)
MANIFEST = r"C:\Program Files\App\app.exe.manifest"


def activation_context(csr, client, **body):
    return call(csr, client, "BasepSxsCreateActivationContext", **body)


@pytest.mark.parametrize(
    ("profile", "slots"), [("win10", 6), ("win7", 5), (None, 4), ("reactos", 4)]
)
def test_slot_count_follows_the_profile(profile, slots):
    assert csr_server_dll_max(profile) == slots
    csr, kernel, _ = boot(WIN10_CMDLINE, profile=profile)
    assert len(csr.loaded) == slots
    client = start(csr, kernel, 300)  # a process's server data has one entry per slot
    assert len(csr.processes.locate(client.pid).server_data) == slots
    assert len(csr.processes.root.server_data) == slots


def test_the_windows_10_command_line_loads_sxssrv_into_slot_4():
    with capture_logs(processors=[ntstatus_processor]) as logs:
        csr, _, _ = boot(WIN10_CMDLINE, profile="win10")
    assert csr.command_line.status == SUCCESS
    assert csr.command_line.load_order == [0, 1, 3, 4]
    names = [d.name if d else None for d in csr.loaded]
    assert names == ["CSRSS", "basesrv", None, "winsrv", "sxssrv", None]
    sxssrv = csr.loaded[4]
    assert (sxssrv.api_base, sxssrv.highest_api_supported, sxssrv.dispatch_table) == (0, 0, [])
    (divergence,) = [e for e in logs if e["event"] == "divergence"]
    assert "6 slots" in divergence["what"] and "ReactOS has 4" in divergence["what"]


def test_reactos_slots_refuse_sxssrv_with_too_many_names():
    csr, _, _ = boot(WIN10_CMDLINE)
    assert csr.command_line.status == NtStatus.STATUS_TOO_MANY_NAMES
    assert csr.server_dll_max == CSR_SERVER_DLL_MAX


def test_win7_takes_five_dlls_and_refuses_a_sixth_slot():
    csr, _, _ = boot(WIN7_CMDLINE, profile="win7")
    assert csr.command_line.status == SUCCESS
    assert [d.name for d in csr.loaded] == ["CSRSS", "basesrv", "winsrv", "winsrv", "sxssrv"]
    with capture_logs(processors=[ntstatus_processor]) as logs:
        csr, _, _ = boot(WIN7_CMDLINE.replace("sxssrv,4", "sxssrv,5"), profile="win7")
    assert csr.command_line.status == NtStatus.STATUS_TOO_MANY_NAMES
    (refused,) = [e for e in logs if e["event"] == "csr.too_many_server_dlls"]
    assert (refused["server_id"], refused["slots"]) == (5, 5)


@pytest.mark.parametrize(
    ("profile", "server_id", "status"),
    [
        ("win10", 4, NtStatus.STATUS_ILLEGAL_FUNCTION),  # sxssrv: no API table
        ("win10", 5, NtStatus.STATUS_ILLEGAL_FUNCTION),  # an empty slot
        ("win10", 6, NtStatus.STATUS_ILLEGAL_FUNCTION),  # past CsrLoadedServerDll
        ("win10", 0xFFFF, NtStatus.STATUS_ILLEGAL_FUNCTION),
        ("win7", 5, NtStatus.STATUS_ILLEGAL_FUNCTION),
    ],
)
def test_dispatch_bounds_follow_the_slot_count(profile, server_id, status):
    cmdline = WIN10_CMDLINE if profile == "win10" else WIN7_CMDLINE
    csr, kernel, _ = boot(cmdline, profile=profile)
    client = start(csr, kernel, 300)
    assert csr.dispatch(csr_api_number(server_id, 0), {}, client).status == status
    # the port survives: a valid request still works
    assert call(csr, client, "BasepGetTempFile").status == SUCCESS


def test_client_connect_to_sxssrv_and_past_the_slots():
    csr, kernel, _ = boot(WIN10_CMDLINE, profile="win10")
    client = start(csr, kernel, 300)

    def connect(server_id: int) -> int:
        return call(
            csr, client, "CsrpClientConnect", server_id=server_id, connection_info={}
        ).status

    assert connect(4) == SUCCESS  # no ConnectCallback
    assert connect(5) == NtStatus.STATUS_INVALID_PARAMETER  # empty slot
    assert connect(6) == NtStatus.STATUS_TOO_MANY_NAMES


def test_activation_contexts_come_from_the_cache_and_are_recorded_per_process():
    csr, kernel, _ = boot(WIN10_CMDLINE, profile="win10")
    first, second = start(csr, kernel, 300), start(csr, kernel, 301)
    with capture_logs() as logs:
        a = activation_context(csr, first, manifest_path=MANIFEST, flags=0x10)
        b = activation_context(csr, second, manifest_path="\\??\\" + MANIFEST.upper())
        c = activation_context(csr, second, manifest_path=MANIFEST, processor_architecture=0)
    assert a.status == b.status == c.status == SUCCESS
    assert a.body == {"activation_context": 1, "cached": False}
    assert b.body == {"activation_context": 1, "cached": True}  # same NT path, any case
    assert c.body == {"activation_context": 2, "cached": False}  # x86: another context
    assert csr.processes.locate(300).server_data[4] == SxsProcessData([1], default=1)
    assert csr.processes.locate(301).server_data[4] == SxsProcessData([1, 2])
    created = [e for e in logs if e["event"] == "sxs.actctx_create"]
    assert [(e["process_pid"], e["cached"]) for e in created] == [
        (300, False),
        (301, True),
        (301, False),
    ]
    assert created[0]["manifest"] == "\\??\\" + MANIFEST


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"manifest_path": ""}, NtStatus.STATUS_INVALID_PARAMETER),
        ({"manifest_path": MANIFEST, "flags": 0x100}, NtStatus.STATUS_INVALID_PARAMETER),
        ({"manifest_path": MANIFEST, "flags": 0x4}, NtStatus.STATUS_INVALID_PARAMETER),
        (
            {"manifest_path": MANIFEST, "assembly_directory": r"C:\App"},
            NtStatus.STATUS_INVALID_PARAMETER,
        ),
        ({"manifest_path": "app.exe.manifest"}, NtStatus.STATUS_OBJECT_PATH_SYNTAX_BAD),
        ({"manifest_path": r"C:app.manifest"}, NtStatus.STATUS_OBJECT_PATH_SYNTAX_BAD),
        ({"manifest_path": 7}, NtStatus.STATUS_INVALID_PARAMETER),  # the schema
    ],
)
def test_bad_activation_context_requests_are_refused(body, status):
    csr, kernel, _ = boot(WIN10_CMDLINE, profile="win10")
    client = start(csr, kernel, 300)
    assert activation_context(csr, client, **body).status == status
    assert csr.processes.locate(300).server_data[4] is None  # nothing recorded
    assert activation_context(csr, client, manifest_path=MANIFEST).status == SUCCESS


def test_a_process_cannot_grow_csrss_without_bound():
    csr, kernel, _ = boot(WIN10_CMDLINE, profile="win10")
    client = start(csr, kernel, 300)
    for _ in range(CONTEXTS_PER_PROCESS_MAX):
        assert activation_context(csr, client, manifest_path=MANIFEST).status == SUCCESS
    over = activation_context(csr, client, manifest_path=MANIFEST)
    assert over.status == NtStatus.STATUS_INSUFFICIENT_RESOURCES


def test_without_sxssrv_basesrv_keeps_reactos_stub():
    csr, kernel, _ = boot(profile="win10")  # the model's own line: no sxssrv
    client = start(csr, kernel, 300)
    reply = activation_context(csr, client, manifest_path=MANIFEST)
    assert reply.status == NtStatus.STATUS_NOT_IMPLEMENTED


def test_csrss_itself_may_create_one_server_to_server():
    csr, _, _ = boot(WIN10_CMDLINE, profile="win10")
    api = lookup_api("BaseSrvSxsCreateActivationContext")
    assert api.number == 0x0001001B and api.valid_from_server
    me = type("Me", (), {"pid": CSRSS_PID, "session": 1, "token": None})()
    reply = csr.dispatch(api.number, {"manifest_path": MANIFEST}, me)
    assert reply.status == SUCCESS
    assert csr.processes.root.server_data[4].contexts == [1]
