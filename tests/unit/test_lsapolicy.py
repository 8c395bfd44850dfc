"""The LSA policy (processes/lsass/lsapolicy.py): rights by SID with Windows' defaults, the
Service logon right at LsaLogonUser, privileges from the policy, sealed secrets, and who may
call the lsarpc routines."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from nt import security as sec
from nt.status import NtStatus as S
from processes.lsass.lsapolicy import POLICY, LsaPolicy, LsaPolicyServer, seal, unseal
from processes.lsass.lsasrv import LsaServer
from tests.unit.lsass_fakes import (
    ADMIN_TOKEN,
    SYSTEM_TOKEN,
    USER_TOKEN,
    FakeRegistry,
    Lsa,
    RegError,
    client,
)
from tests.unit.test_lsass import PW, add, logon

BOB = "S-1-5-21-1-2-3-1001"


def machine() -> tuple[Lsa, LsaPolicy]:
    m = Lsa()
    policy = LsaPolicy(m.reg)
    policy.open()
    m.lsa = LsaServer(m.sam, m.msv, m.log, policy=policy)
    return m, policy


def test_defaults_are_windows_user_rights_assignment() -> None:
    policy = LsaPolicy(FakeRegistry())
    policy.open()
    assert "SeShutdownPrivilege" in policy.enumerate(sec.BUILTIN_USERS)
    assert "SeDebugPrivilege" in policy.enumerate(sec.BUILTIN_ADMINISTRATORS)
    assert "SeServiceLogonRight" not in policy.enumerate(BOB)
    assert policy.may_log_on([sec.LOCAL_SERVICE], sec.Service)
    assert not policy.may_log_on([BOB, sec.BUILTIN_USERS, sec.EVERYONE], sec.Service)
    assert policy.may_log_on([BOB], sec.Network)  # not enforced for other types


def test_a_service_logon_needs_seservicelogonright_then_succeeds() -> None:
    m, policy = machine()
    add(m, "alice")
    assert logon(m, "alice", PW, sec.Service) == S.STATUS_LOGON_TYPE_NOT_GRANTED
    assert logon(m, "alice", b"wrong", sec.Service) == S.STATUS_LOGON_FAILURE  # password first
    sid = m.sam.sid_of(m.sam.get("alice").rid)
    policy.change(sid, ["SeServiceLogonRight"], grant=True)
    reply = logon(m, "alice", PW, sec.Service)
    assert isinstance(reply, dict) and sec.SERVICE in reply["token"]["groups"]
    policy.change(sid, ["SeDenyServiceLogonRight"], grant=True)
    assert logon(m, "alice", PW, sec.Service) == S.STATUS_LOGON_TYPE_NOT_GRANTED


def test_rights_persist_and_token_privileges_follow_the_policy() -> None:
    m, policy = machine()
    add(m, "bob")
    policy.change(sec.BUILTIN_USERS, ["SeShutdownPrivilege"], grant=False)
    again = LsaPolicy(m.reg)
    again.open()
    assert "SeShutdownPrivilege" not in again.enumerate(sec.BUILTIN_USERS)
    m.lsa = LsaServer(m.sam, m.msv, m.log, policy=again)
    token = logon(m, "bob", PW, sec.Network)["token"]
    assert "SeShutdownPrivilege" not in token["privileges"]
    assert "SeChangeNotifyPrivilege" in token["privileges"]  # Everyone's still


@pytest.mark.parametrize(
    ("sid", "rights", "status"),
    [
        ("not-a-sid", ["SeServiceLogonRight"], S.STATUS_INVALID_SID),
        (BOB, ["SeMadeUpPrivilege"], S.STATUS_NO_SUCH_PRIVILEGE),
    ],
)
def test_bad_sids_and_rights_are_refused(sid: str, rights: list[str], status: int) -> None:
    server = LsaPolicyServer(LsaPolicy(FakeRegistry()), Lsa().log)
    body = {"account_sid": sid, "rights": rights}
    assert server.LsarAddAccountRights(body, client(ADMIN_TOKEN)) == status


def test_only_administrators_change_rights_and_only_system_reads_secrets() -> None:
    reg = FakeRegistry()
    policy = LsaPolicy(reg)
    server = LsaPolicyServer(policy, Lsa().log)
    body = {"account_sid": BOB, "rights": ["SeServiceLogonRight"]}
    with capture_logs() as logs:
        assert server.LsarAddAccountRights(body, client(USER_TOKEN)) == S.STATUS_ACCESS_DENIED
    (audit,) = [e for e in logs if e.get("event_id") == 4656]
    assert audit["strings"][0] == USER_TOKEN["sid"] and audit["strings"][6] == BOB
    assert server.LsarAddAccountRights(body, client(ADMIN_TOKEN)) == {}
    secret = {"key_name": "_SC_Test", "data": b"S3cret-pw"}
    assert server.LsarStorePrivateData(secret, client(USER_TOKEN)) == S.STATUS_ACCESS_DENIED
    assert server.LsarStorePrivateData(secret, client(ADMIN_TOKEN)) == {}
    ask = {"key_name": "_SC_Test"}
    assert server.LsarRetrievePrivateData(ask, client(ADMIN_TOKEN)) == S.STATUS_ACCESS_DENIED
    assert server.LsarRetrievePrivateData(ask, client(SYSTEM_TOKEN)) == {"data": b"S3cret-pw"}
    stored = repr(reg.keys).encode()
    assert b"S3cret-pw" not in stored  # sealed, never the password itself
    missing = {"key_name": "_SC_None"}
    assert server.LsarRetrievePrivateData(missing, client(SYSTEM_TOKEN)) == (
        S.STATUS_OBJECT_NAME_NOT_FOUND
    )
    escape = {"key_name": "..\\..\\SAM", "data": b"x"}
    assert server.LsarStorePrivateData(escape, client(ADMIN_TOKEN)) == S.STATUS_INVALID_PARAMETER


def test_a_tampered_or_moved_secret_does_not_unseal() -> None:
    key = b"k" * 32
    sealed = seal(key, "_SC_A", b"pw")
    assert unseal(key, "_SC_A", sealed) == b"pw"
    assert unseal(key, "_SC_B", sealed) is None  # bound to its name
    assert unseal(key, "_SC_A", sealed[:-1] + bytes([sealed[-1] ^ 1])) is None
    assert unseal(key, "_SC_A", b"\x01short") is None
    assert unseal(b"j" * 32, "_SC_A", sealed) is None  # another machine's LSA key
    other = seal(key, "_SC_A", b"pw")
    assert other != sealed and b"pw" not in sealed  # a fresh nonce each time, no plaintext


def test_a_service_logon_session_ends_when_its_process_exits() -> None:
    m, policy = machine()
    add(m, "alice")
    policy.change(m.sam.sid_of(m.sam.get("alice").rid), ["SeServiceLogonRight"], grant=True)
    assigned: list[int] = []
    m.lsa = LsaServer(
        m.sam,
        m.msv,
        m.log,
        policy=policy,
        assign_token=lambda pid, token: assigned.append(pid) or 0,
        parent_of=lambda pid: 4242,  # the caller (tests' client pid) created it
    )
    c = client(SYSTEM_TOKEN, {"logon_process_name": "services.exe"})
    assert isinstance(m.lsa.accept(c), dict)
    body = {
        "origin": "Service X", "logon_type": sec.Service, "auth_package": 0, "domain": "",
        "user": "alice", "password": PW, "source": "User32  ", "session": 0, "assign_pid": 777,
    }  # fmt: skip
    reply = m.lsa.LsapLogonUser(body, c)
    assert isinstance(reply, dict) and assigned == [777]
    assert reply["logon_id"] in m.lsa.sessions.ids()
    with capture_logs() as logs:
        m.lsa.process_exited(777, 0, "svchost.exe")
    assert reply["logon_id"] not in m.lsa.sessions.ids()
    assert [e["event_id"] for e in logs if e["event"] == "event.report"] == [4634]
    m.lsa.process_exited(777)  # a second exit event changes nothing


def test_a_lost_kernel_is_not_taken_for_a_missing_lsa_key() -> None:
    """Only an absent PolEKList makes a new LSA key: a new key on a transient failure
    would leave every stored secret unreadable."""
    reg = FakeRegistry()
    policy = LsaPolicy(reg)
    policy.store_secret("_SC_A", b"pw")
    key = bytes(reg.query_value(POLICY + r"\PolEKList", "")[1])

    class Lost(FakeRegistry):
        def query_value(self, path: str, name: str):  # noqa: ANN201 - as FakeRegistry's
            raise RegError(S.STATUS_PORT_DISCONNECTED)

    lost = Lost()
    lost.__dict__.update(reg.__dict__)
    with pytest.raises(RegError):
        LsaPolicy(lost).retrieve_secret("_SC_A")
    assert bytes(reg.query_value(POLICY + r"\PolEKList", "")[1]) == key
    assert LsaPolicy(reg).retrieve_secret("_SC_A") == b"pw"
