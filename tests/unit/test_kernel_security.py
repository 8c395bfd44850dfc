"""The kernel's doors: HKLM\\SAM and HKLM\\SECURITY answer lsass alone (by its process
record, never the payload), HKLM writes need Administrators or SYSTEM, terminating
another user's process needs SeDebugPrivilege."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from structlog.testing import capture_logs

from nt.log import get_logger
from nt.status import NtStatus as S
from ports.contract import ClientContext
from processes.kernel import keysec
from processes.kernel.services import SystemServiceHandlers

SYSTEM = {"user": "NT AUTHORITY\\SYSTEM", "sid": "S-1-5-18", "groups": [], "privileges": []}
ADMIN = {"sid": "S-1-5-21-9-500", "groups": ["S-1-5-32-544"], "privileges": ["SeDebugPrivilege"]}
USER = {"sid": "S-1-5-21-9-1001", "groups": ["S-1-5-32-545", "S-1-5-11"], "privileges": []}
FILTERED = dict(ADMIN, deny_only=["S-1-5-32-544"], privileges=[])


@dataclass
class Rec:
    pid: int
    image: str
    state: str
    token: dict


@dataclass
class FakePs:
    table: dict[int, Rec] = field(default_factory=dict)

    def get(self, pid: int) -> Rec | None:
        return self.table.get(pid)


class FakeCm:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __getattr__(self, name: str) -> Any:
        def call(*a: object, **kw: object) -> Any:
            self.calls.append((name, a))
            return {"enum_keys": [], "query_value": (1, "x")}.get(name, {})

        return call


class FakeKernel:
    def __init__(self) -> None:
        self.ps = FakePs()
        self.cm = FakeCm()
        self.log = get_logger()
        self.terminated: list[int] = []

    def terminate(self, pid: int, status: int, by: int) -> int:
        self.terminated.append(pid)
        return S.STATUS_SUCCESS


def setup() -> tuple[FakeKernel, SystemServiceHandlers]:
    k = FakeKernel()
    k.ps.table = {
        10: Rec(10, "lsass.exe", "running", SYSTEM),
        11: Rec(11, "lsass.exe", "attached", ADMIN),  # an impostor that attached by that name
        12: Rec(12, "ntctl.exe", "attached", ADMIN),
        13: Rec(13, "ntctl.exe", "attached", USER),
        14: Rec(14, "services.exe", "running", SYSTEM),
        15: Rec(15, "ntctl.exe", "attached", FILTERED),
    }
    return k, SystemServiceHandlers(k)


def ctx(k: FakeKernel, pid: int) -> ClientContext:
    rec = k.ps.get(pid)
    return ClientContext(pid, rec.image, 0, rec.token, 1, "\\KiSystemService", {})


def test_the_sam_and_security_hives_answer_lsass_alone() -> None:
    k, h = setup()
    for path in (r"HKLM\SAM\SAM", r"\Registry\Machine\SECURITY\Policy", r"hklm\sam"):
        assert h.NtEnumerateKey({"path": path}, ctx(k, 10)) == {"keys": []}
        for pid in (11, 12, 14):
            assert h.NtEnumerateKey({"path": path}, ctx(k, pid)) == S.STATUS_ACCESS_DENIED
            body = {"path": path, "name": "x"}
            assert h.NtQueryValueKey(body, ctx(k, pid)) == S.STATUS_ACCESS_DENIED
    assert h.CmExportKey({"path": "HKLM"}, ctx(k, 12)) == S.STATUS_ACCESS_DENIED
    text = "Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\SAM\\SAM\\X]\r\n"
    assert h.CmImportRegFile({"text": text}, ctx(k, 12)) == S.STATUS_ACCESS_DENIED
    assert h.NtEnumerateKey({"path": r"HKLM\SYSTEM"}, ctx(k, 12)) == {"keys": []}


def test_hklm_writes_need_an_enabled_administrators_group_or_system() -> None:
    k, h = setup()
    body = {"path": r"HKLM\SOFTWARE\X", "name": "v", "type": 4, "data": 1}
    assert h.NtSetValueKey(body, ctx(k, 12)) == {}
    assert h.NtSetValueKey(body, ctx(k, 14)) == {}
    assert h.NtSetValueKey(body, ctx(k, 13)) == S.STATUS_ACCESS_DENIED
    assert h.NtSetValueKey(body, ctx(k, 15)) == S.STATUS_ACCESS_DENIED  # UAC-filtered
    assert h.NtCreateKey({"path": r"HKLM\SOFTWARE\Y", "volatile": False}, ctx(k, 13)) == (
        S.STATUS_ACCESS_DENIED
    )
    assert h.NtEnumerateKey({"path": r"HKLM\SOFTWARE"}, ctx(k, 13)) == {"keys": []}  # reads ok


def test_terminating_another_users_process_needs_sedebugprivilege() -> None:
    k, h = setup()
    assert h.NtTerminateProcess({"pid": 14, "exit_status": 1}, ctx(k, 13)) == S.STATUS_ACCESS_DENIED
    assert h.NtTerminateProcess({"pid": 14, "exit_status": 1}, ctx(k, 12)) == S.STATUS_SUCCESS
    k.ps.table[16] = Rec(16, "x.exe", "running", USER)  # same user: allowed
    assert h.NtTerminateProcess({"pid": 16, "exit_status": 1}, ctx(k, 13)) == S.STATUS_SUCCESS
    assert k.terminated == [14, 16]


def test_staged_imports_and_chunked_exports_keep_the_rules() -> None:
    from nt.regfile import SetKey

    k, h = setup()
    assert h.CmExportBegin({"path": r"HKLM\SAM\SAM"}, ctx(k, 12)) == S.STATUS_ACCESS_DENIED
    assert h.CmExportBegin({"path": "HKLM"}, ctx(k, 12)) == S.STATUS_ACCESS_DENIED
    assert h.CmImportBegin({}, ctx(k, 13)) == S.STATUS_ACCESS_DENIED  # a plain user

    class Staged:
        ops = [SetKey(r"HKEY_LOCAL_MACHINE\SOFTWARE\A"), SetKey(r"HKEY_LOCAL_MACHINE\SAM\SAM\B")]

    c = ctx(k, 12)
    c.state["cm_imports"] = {7: Staged()}
    assert h.CmImportCommit({"handle": 7}, c) == S.STATUS_ACCESS_DENIED
    assert c.state["cm_imports"] == {}  # the staged import is dropped


def test_a_user_writes_under_her_own_hku_sid_and_not_under_anothers() -> None:
    k, h = setup()
    alice = "S-1-5-21-1-2-3-1000"
    bob = {"sid": "S-1-5-21-1-2-3-1001", "groups": ["S-1-5-32-545", "S-1-5-11"], "privileges": []}
    k.ps.table[20] = Rec(20, "ntctl.exe", "attached", bob)
    own = {"path": rf"HKU\{bob['sid']}\Software\X", "name": "v", "type": 4, "data": 1}
    assert h.NtSetValueKey(own, ctx(k, 20)) == {}  # reaches the hive (the fake takes it)
    classes = dict(own, path=rf"\Registry\User\{bob['sid']}_Classes\X")
    assert h.NtSetValueKey(classes, ctx(k, 20)) == {}
    with capture_logs() as logs:
        other = dict(own, path=rf"HKU\{alice}\Software\X")
        assert h.NtSetValueKey(other, ctx(k, 20)) == S.STATUS_ACCESS_DENIED
        assert h.NtCreateKey({"path": r"HKU\.DEFAULT\X", "volatile": False}, ctx(k, 20)) == (
            S.STATUS_ACCESS_DENIED
        )
    assert h.NtSetValueKey(other, ctx(k, 12)) == {}  # an administrator may
    read_other = {"path": rf"HKU\{alice}\Software"}
    assert h.NtEnumerateKey(read_other, ctx(k, 20)) == S.STATUS_ACCESS_DENIED
    assert h.NtEnumerateKey({"path": rf"HKU\{bob['sid']}\Software"}, ctx(k, 20)) == {"keys": []}
    audits = [e for e in logs if e["event"] == "event.report" and e["event_id"] == 4656]
    assert audits[0]["strings"][0] == bob["sid"]
    assert audits[0]["strings"][5] == "Key" and alice in audits[0]["strings"][6]


def test_key_security_by_namespace_part() -> None:
    sid = "S-1-5-21-1-2-3-1001"
    user = keysec.key_security(rf"HKEY_USERS\{sid}\Software")
    assert user.owner == sid and {a.sid for a in user.dacl} == {sid, "S-1-5-18", "S-1-5-32-544"}
    hklm = keysec.key_security(r"HKLM\SOFTWARE")
    assert hklm is keysec.key_security(r"HKU\.DEFAULT")  # one cached descriptor
    assert keysec.key_security(r"\Bogus\X") is hklm  # unparseable: the stricter


def test_only_system_may_name_an_account_for_a_new_process() -> None:
    from processes.kernel.ps import account_token

    k, h = setup()
    k.stopping = False
    local_service = account_token("NT AUTHORITY\\LocalService")
    assert "SeAssignPrimaryTokenPrivilege" in local_service["privileges"]
    assert "S-1-5-32-544" not in local_service["groups"]
    k.ps.table[21] = Rec(21, "svchost.exe", "running", local_service)
    body = {
        "image": "cmd.exe",
        "command_line": "cmd.exe",
        "environment": {},
        "session": 0,
        "suspended": True,
        "account": "LocalSystem",
        "standin": False,
    }
    assert h.NtCreateUserProcess(body, ctx(k, 21)) == S.STATUS_ACCESS_DENIED
    assert h.NtCreateUserProcess(body, ctx(k, 13)) == S.STATUS_PRIVILEGE_NOT_HELD  # a user
