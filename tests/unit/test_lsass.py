"""lsass without sockets: SAM, MSV1_0's lockout and caps, tokens, the auth-port and SAMR
handlers (reliability-security §4.2-4.4, §6.6 L1-L4, L7, L8, L10, L12)."""

from __future__ import annotations

import threading

import pytest
from structlog.testing import capture_logs

from nt import security as sec
from nt.log import ntstatus_processor
from nt.status import NtStatus as S
from ports import lsa, samr
from ports.contract import Reply
from processes.lsass import audit
from processes.lsass.msv1_0 import HashParameters, Msv1_0
from processes.lsass.sam import USERS, Sam
from tests.unit.lsass_fakes import ADMIN_TOKEN, SYSTEM_TOKEN, USER_TOKEN, Lsa, client

PW = b"C0rrect horse"


def add(m: Lsa, name: str = "alice", pw: bytes | None = PW, admin: bool = False) -> None:
    body = {"name": name, "password": pw, "admin": admin, "full_name": ""}
    assert isinstance(m.samsrv.SamrCreateUser2InDomain(body, client(ADMIN_TOKEN)), dict)


def logon(m: Lsa, name: str, pw: bytes, logon_type: int = sec.Network, token: dict = SYSTEM_TOKEN):
    c = client(token, {"logon_process_name": "Winlogon"})
    assert isinstance(m.lsa.accept(c), dict)
    body = {
        "origin": "test",
        "logon_type": logon_type,
        "auth_package": 0,
        "domain": "",
        "user": name,
        "password": pw,
        "source": "User32  ",
        "session": 0,
        "assign_pid": 0,
    }
    return m.lsa.LsapLogonUser(body, c)


def reports(logs: list[dict], event_id: int) -> list[dict]:
    return [e for e in logs if e["event"] == "event.report" and e["event_id"] == event_id]


def field(event: dict, fields: tuple, name: str) -> str:
    return event["strings"][fields.index(name)]


# -- SAM --------------------------------------------------------------------------------------
def test_first_boot_creates_the_builtin_accounts_disabled_with_their_rids() -> None:
    m = Lsa()
    users = {u.name: u for u in m.sam.users.values()}
    assert {n: u.rid for n, u in users.items()} == {
        "Administrator": 500,
        "Guest": 501,
        "DefaultAccount": 503,
    }
    assert not any(u.enabled for u in users.values())
    assert m.sam.domain_sid.startswith("S-1-5-21-") and len(m.sam.domain_sid.split("-")) == 7
    assert m.sam.is_admin(500) and not m.sam.is_admin(501)


def test_users_start_at_rid_1000_and_survive_a_reload() -> None:
    m = Lsa()
    add(m, "alice", admin=True)
    add(m, "bob")
    again = Sam(m.reg, clock=m.clock)
    assert again.open() is False
    assert again.domain_sid == m.sam.domain_sid
    assert again.lookup("ALICE").rid == 1000 and again.lookup("bob").rid == 1001
    assert again.is_admin(1000) and not again.is_admin(1001)
    assert again.sid_of(1001) in again.aliases[sec.DOMAIN_ALIAS_RID_USERS]


def test_the_hive_holds_an_argon2id_phc_string_never_the_password() -> None:
    m = Lsa()
    add(m)
    values = m.reg.keys[f"{USERS}\\{1000:08X}".casefold()]
    assert values["PasswordHash"][1].startswith("$argon2id$v=19$m=64,t=1,p=1$")
    assert all(PW not in repr(v).encode() for v in m.reg.keys.values())


def test_the_production_parameters_are_owasps() -> None:
    p = HashParameters()
    assert (p.time_cost, p.memory_cost, p.parallelism) == (2, 19456, 1)


# -- logon and its failures -----------------------------------------------------------------
def test_right_password_gives_a_token_and_4624() -> None:
    m = Lsa()
    add(m, "bob")
    with capture_logs(processors=[ntstatus_processor]) as logs:
        r = logon(m, "bob", PW)
    assert isinstance(r, dict)
    token = r["token"]
    assert token["sid"] == m.sam.sid_of(1001 - 1)
    assert {sec.EVERYONE, sec.NETWORK, sec.AUTHENTICATED_USERS, sec.BUILTIN_USERS} <= set(
        token["groups"]
    )
    assert f"S-1-5-5-0-{r['logon_id']}" in token["groups"]
    assert "SeChangeNotifyPrivilege" in token["privileges"]
    assert "SeDebugPrivilege" not in token["privileges"]
    assert token["integrity"] == sec.INTEGRITY_MEDIUM and token["elevation_type"] == "Default"
    (event,) = reports(logs, 4624)
    assert field(event, audit.LOGON_FIELDS, "TargetUserName") == "bob"
    assert field(event, audit.LOGON_FIELDS, "LogonType") == "3"
    assert r["logon_id"] in m.lsa.sessions.ids()


@pytest.mark.parametrize(
    ("logon_type", "elevation", "integrity", "debug"),
    [
        (sec.Interactive, "Limited", sec.INTEGRITY_MEDIUM, False),
        (sec.Network, "Limited", sec.INTEGRITY_MEDIUM, False),
        (sec.Batch, "Full", sec.INTEGRITY_HIGH, True),
        (sec.Service, "Full", sec.INTEGRITY_HIGH, True),
    ],
)
def test_an_administrators_token_follows_uac(logon_type, elevation, integrity, debug) -> None:
    m = Lsa()
    add(m, "ann", admin=True)
    token = logon(m, "ann", PW, logon_type)["token"]
    assert token["elevation_type"] == elevation and token["integrity"] == integrity
    assert ("SeDebugPrivilege" in token["privileges"]) is debug
    assert sec.LOGON_TYPE_SIDS[logon_type] in token["groups"]
    assert (sec.BUILTIN_ADMINISTRATORS in token["deny_only"]) is not debug


def test_wrong_password_and_unknown_user_look_the_same_to_the_caller() -> None:
    m = Lsa()
    add(m, "bob")
    with capture_logs(processors=[ntstatus_processor]) as logs:
        assert logon(m, "bob", b"nope") == S.STATUS_LOGON_FAILURE
        before = m.msv.verifies
        assert logon(m, "nobody", b"nope") == S.STATUS_LOGON_FAILURE
        assert m.msv.verifies == before + 1  # the dummy hash: same work as a wrong password
    wrong, unknown = reports(logs, 4625)
    for event, sub in ((wrong, S.STATUS_WRONG_PASSWORD), (unknown, S.STATUS_NO_SUCH_USER)):
        assert field(event, audit.FAILED_LOGON_FIELDS, "Status") == "0xC000006D"
        assert field(event, audit.FAILED_LOGON_FIELDS, "SubStatus") == f"0x{sub:08X}"
    assert m.sam.lookup("bob").bad_password_count == 1


@pytest.mark.parametrize(
    "password",
    [b"x" * (1 << 20), b"a\x00b", b"\xff\xfe", "é".encode() * 257],
    ids=["1MiB", "NUL", "not-utf8", "257-chars"],
)
def test_hostile_passwords_are_refused_before_hashing(password: bytes) -> None:
    m = Lsa()
    add(m, "bob")
    before = m.msv.verifies
    with capture_logs(processors=[ntstatus_processor]) as logs:
        assert logon(m, "bob", password) == S.STATUS_LOGON_FAILURE
    assert m.msv.verifies == before
    (event,) = reports(logs, 4625)
    assert field(event, audit.FAILED_LOGON_FIELDS, "SubStatus") == "0xC000000D"


@pytest.mark.parametrize("name", ["", "x" * 257])
def test_empty_or_overlong_user_names_are_refused_before_hashing(name: str) -> None:
    m = Lsa()
    before = m.msv.verifies
    assert logon(m, name, PW) == S.STATUS_LOGON_FAILURE
    assert m.msv.verifies == before


def test_lockout_at_the_threshold_then_no_hashing_even_with_the_right_password() -> None:
    m = Lsa()
    add(m, "bob")
    m.sam.set_policy(3, 10, 10)
    with capture_logs(processors=[ntstatus_processor]) as logs:
        for _ in range(3):
            assert logon(m, "bob", b"guess") == S.STATUS_LOGON_FAILURE
        assert len(reports(logs, 4740)) == 1
        before = m.msv.verifies
        assert logon(m, "bob", PW) == S.STATUS_ACCOUNT_LOCKED_OUT
        assert logon(m, "bob", b"guess") == S.STATUS_ACCOUNT_LOCKED_OUT
        assert m.msv.verifies == before
    locked = reports(logs, 4625)[-1]
    assert field(locked, audit.FAILED_LOGON_FIELDS, "Status") == "0xC0000234"
    # persisted: a restarted lsass still sees the lockout
    again = Sam(m.reg, clock=m.clock)
    again.open()
    assert again.is_locked(again.lookup("bob"), m.clock())


def test_lockout_ends_after_the_duration_to_the_second() -> None:
    m = Lsa()
    add(m, "bob")
    m.sam.set_policy(2, 10, 5)
    logon(m, "bob", b"a")
    logon(m, "bob", b"b")
    m.clock.advance(10 * 60 - 1)
    assert logon(m, "bob", PW) == S.STATUS_ACCOUNT_LOCKED_OUT
    m.clock.advance(2)
    assert isinstance(logon(m, "bob", PW), dict)
    assert m.sam.lookup("bob").bad_password_count == 0


def test_the_bad_password_count_resets_after_the_observation_window() -> None:
    m = Lsa()
    add(m, "bob")
    m.sam.set_policy(3, 10, 5)
    logon(m, "bob", b"a")
    logon(m, "bob", b"b")
    m.clock.advance(5 * 60 - 1)
    logon(m, "bob", b"c")
    assert m.sam.lookup("bob").bad_password_count == 3  # inside the window: locked
    assert logon(m, "bob", PW) == S.STATUS_ACCOUNT_LOCKED_OUT
    m2 = Lsa()
    add(m2, "bob")
    m2.sam.set_policy(3, 10, 5)
    logon(m2, "bob", b"a")
    logon(m2, "bob", b"b")
    m2.clock.advance(5 * 60 + 1)
    logon(m2, "bob", b"c")
    assert m2.sam.lookup("bob").bad_password_count == 1


def test_duration_zero_locks_until_an_administrator_unlocks_4767() -> None:
    m = Lsa()
    add(m, "bob")
    m.sam.set_policy(1, 0, 1)
    logon(m, "bob", b"x")
    m.clock.advance(10**7)
    assert logon(m, "bob", PW) == S.STATUS_ACCOUNT_LOCKED_OUT
    with capture_logs(processors=[ntstatus_processor]) as logs:
        body = {"name": "bob", "password": None, "enabled": -1, "admin": -1, "unlock": True}
        body["password_must_change"] = -1
        assert m.samsrv.SamrSetInformationUser2(body, client(ADMIN_TOKEN)) == {}
    assert len(reports(logs, 4767)) == 1
    assert isinstance(logon(m, "bob", PW), dict)


def test_threshold_zero_never_locks() -> None:
    m = Lsa()
    add(m, "bob")
    m.sam.set_policy(0, 10, 10)
    for _ in range(15):
        logon(m, "bob", b"x")
    assert isinstance(logon(m, "bob", PW), dict)


def set_info(m: Lsa, name: str, **kw) -> object:
    body = {"name": name, "password": None, "enabled": -1, "admin": -1, "unlock": False}
    body["password_must_change"] = -1
    body.update(kw)
    return m.samsrv.SamrSetInformationUser2(body, client(ADMIN_TOKEN))


def test_disabled_expired_and_must_change_come_after_the_password_check() -> None:
    m = Lsa()
    add(m, "bob")
    add(m, "keep", admin=True)
    set_info(m, "bob", enabled=0)
    assert logon(m, "bob", b"wrong") == S.STATUS_LOGON_FAILURE
    assert logon(m, "bob", PW) == S.STATUS_ACCOUNT_DISABLED
    set_info(m, "bob", enabled=1, password_must_change=1)
    assert logon(m, "bob", PW) == S.STATUS_PASSWORD_MUST_CHANGE
    set_info(m, "bob", password_must_change=0)
    m.sam.lookup("bob").account_expires = m.clock() - 1
    assert logon(m, "bob", PW) == S.STATUS_ACCOUNT_EXPIRED


def test_raised_parameters_rehash_on_the_next_logon_and_old_hashes_still_verify() -> None:
    m = Lsa()
    add(m, "bob")
    old = m.sam.lookup("bob").password_hash
    m.msv = Msv1_0(m.sam, HashParameters(time_cost=2, memory_cost=128, parallelism=1))
    m.lsa.msv = m.msv
    assert isinstance(logon(m, "bob", PW), dict)
    new = m.sam.lookup("bob").password_hash
    assert new != old and "m=128,t=2" in new
    key = f"{USERS}\\{1000:08X}".casefold()
    assert m.reg.keys[key]["PasswordHash"][1] == new


def test_a_verify_flood_is_bounded_and_every_request_answered() -> None:
    m = Lsa()
    add(m, "bob")
    m.msv.deadline = 0.0  # no waiting: whoever finds no slot is refused at once
    results: list[object] = []
    gate = threading.Barrier(40)

    def one() -> None:
        gate.wait()
        results.append(logon(m, "bob", PW))

    threads = [threading.Thread(target=one) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 40
    assert all(isinstance(r, dict) or r == S.STATUS_INSUFFICIENT_RESOURCES for r in results)


# -- the port's rules ------------------------------------------------------------------------
def test_a_logon_process_without_tcb_is_refused_at_connect() -> None:
    m = Lsa()
    c = client(ADMIN_TOKEN, {"logon_process_name": "Evil"})
    assert m.lsa.accept(c) == S.STATUS_PORT_CONNECTION_REFUSED
    untrusted = client(ADMIN_TOKEN, {"logon_process_name": ""})
    assert m.lsa.accept(untrusted)["operational_mode"] == lsa.LSA_OPERATIONAL_MODE


def test_an_untrusted_caller_gets_network_logons_only() -> None:
    m = Lsa()
    add(m, "bob")
    c = client(ADMIN_TOKEN)
    m.lsa.accept(c)
    body = {"origin": "", "logon_type": sec.Interactive, "auth_package": 0, "domain": ""}
    body.update(user="bob", password=PW, source="User32  ", session=0, assign_pid=0)
    assert m.lsa.LsapLogonUser(body, c) == S.STATUS_NOT_LOGON_PROCESS
    body["logon_type"] = sec.Network
    assert isinstance(m.lsa.LsapLogonUser(body, c), dict)


def test_unknown_request_is_invalid_system_service_and_bad_bodies_invalid_parameter() -> None:
    m = Lsa()
    c = client(SYSTEM_TOKEN)
    assert m.lsa.dispatch(lsa.LSASS_REQUEST_MAXIMUM, {}, c) == S.STATUS_INVALID_SYSTEM_SERVICE
    assert m.lsa.dispatch(0xFFFF, {}, c) == S.STATUS_INVALID_SYSTEM_SERVICE
    r = m.lsa.dispatch(lsa.LSASS_REQUEST_LOGON_USER, {"user": 5}, c)
    assert isinstance(r, Reply) and r.status == S.STATUS_INVALID_PARAMETER


def test_packages_sessions_and_logoff_when_the_client_goes() -> None:
    m = Lsa()
    add(m, "bob")
    c = client(SYSTEM_TOKEN)
    msv = {"package_name": lsa.MSV1_0_PACKAGE_NAME}
    assert m.lsa.LsapLookupAuthenticationPackage(msv, c) == {"auth_package": 0}
    kerb = {"package_name": "Kerberos"}
    assert m.lsa.LsapLookupAuthenticationPackage(kerb, c) == S.STATUS_NO_SUCH_PACKAGE
    r = logon(m, "bob", PW)
    data = m.lsa.LsapGetLogonSessionData({"logon_id": r["logon_id"]}, c)["session"]
    assert data["user"] == "bob" and data["logon_type"] == sec.Network
    with capture_logs(processors=[ntstatus_processor]) as logs:
        m.lsa.closed(client(SYSTEM_TOKEN, conn_id=1))
    assert len(reports(logs, 4634)) == 1
    assert m.lsa.LsapEnumLogonSessions({}, c) == {"sessions": []}


def test_change_password_needs_the_old_one_and_writes_the_hash_once() -> None:
    m = Lsa()
    add(m, "bob")
    c = client(USER_TOKEN)
    body = {"auth_package": 0, "message_type": lsa.MsV1_0ChangePassword, "domain": ""}
    body.update(account="bob", old_password=b"wrong", new_password=b"N3w pass")
    assert m.lsa.LsapCallAuthenticationPackage(body, c) == S.STATUS_WRONG_PASSWORD
    body["old_password"] = PW
    r = m.lsa.LsapCallAuthenticationPackage(body, c)
    assert isinstance(r, Reply) and r.ok
    assert logon(m, "bob", PW) == S.STATUS_LOGON_FAILURE
    assert isinstance(logon(m, "bob", b"N3w pass"), dict)


# -- SAMR --------------------------------------------------------------------------------------
def test_only_administrators_change_accounts() -> None:
    m = Lsa()
    body = {"name": "eve", "password": PW, "admin": True, "full_name": ""}
    assert m.samsrv.SamrCreateUser2InDomain(body, client(USER_TOKEN)) == S.STATUS_ACCESS_DENIED
    filtered = dict(ADMIN_TOKEN, deny_only=[sec.BUILTIN_ADMINISTRATORS])
    assert m.samsrv.SamrCreateUser2InDomain(body, client(filtered)) == S.STATUS_ACCESS_DENIED
    assert isinstance(m.samsrv.SamrEnumerateUsersInDomain({}, client(USER_TOKEN)), dict)


def test_account_management_events_and_rules() -> None:
    m = Lsa()
    with capture_logs(processors=[ntstatus_processor]) as logs:
        add(m, "alice", admin=True)
        body = {"name": "ALICE", "password": PW, "admin": False, "full_name": ""}
        assert m.samsrv.SamrCreateUser2InDomain(body, client(ADMIN_TOKEN)) == S.STATUS_USER_EXISTS
        bad = dict(body, name="a/b")
        bad_status = m.samsrv.SamrCreateUser2InDomain(bad, client(ADMIN_TOKEN))
        assert bad_status == S.STATUS_INVALID_ACCOUNT_NAME
        assert set_info(m, "alice", password=b"an0ther") == {}
        assert set_info(m, "alice", enabled=0) == S.STATUS_LAST_ADMIN
        add(m, "bob")
        assert set_info(m, "bob", enabled=0) == {}
        assert set_info(m, "bob", enabled=1) == {}
        admin = client(ADMIN_TOKEN)
        assert m.samsrv.SamrDeleteUser({"name": "Administrator"}, admin) == S.STATUS_SPECIAL_ACCOUNT
        assert m.samsrv.SamrDeleteUser({"name": "alice"}, admin) == S.STATUS_LAST_ADMIN
        assert m.samsrv.SamrDeleteUser({"name": "bob"}, admin) == {}
        assert m.samsrv.SamrDeleteUser({"name": "bob"}, admin) == S.STATUS_NO_SUCH_USER
    ids = [e["event_id"] for e in logs if e["event"] == "event.report"]
    assert ids == [4720, 4724, 4720, 4725, 4722, 4726]
    info = m.samsrv.SamrQueryInformationUser2({"name": "alice"}, admin)["user"]
    assert info["rid"] == 1000 and sec.BUILTIN_ADMINISTRATORS in info["groups"]


def test_lockout_policy_follows_windows_rules() -> None:
    m = Lsa()
    admin = client(ADMIN_TOKEN)
    body = {"lockout_threshold": 5, "lockout_duration": 10, "lockout_window": 20}
    assert m.samsrv.SamrSetInformationDomain(body, admin) == S.STATUS_INVALID_PARAMETER
    body["lockout_window"] = 10
    assert m.samsrv.SamrSetInformationDomain(body, admin) == {}
    domain = m.samsrv.SamrQueryInformationDomain2({}, admin)["domain"]
    assert (domain["lockout_threshold"], domain["lockout_duration"]) == (5, 10)
    assert samr.UNCHANGED == -1


class Crash(Exception):
    pass


def test_a_crash_at_any_write_of_a_password_change_leaves_the_old_or_the_new_hash() -> None:
    """kill -9 lsass during a password change (issue 8): whichever registry write it
    dies before, a restarted lsass verifies the old or the new password, never neither."""
    new = b"N3w-secret"
    for crash_at in range(1, 6):
        m = Lsa()
        add(m, "bob")
        writes, real_set = [0], m.reg.set_value

        def dying_set(*a, _n=crash_at, _w=writes, _set=real_set, **kw) -> None:
            _w[0] += 1
            if _w[0] == _n:
                raise Crash
            _set(*a, **kw)

        m.reg.set_value = dying_set  # type: ignore[method-assign]
        try:
            set_info(m, "bob", password=new)
        except Crash:
            pass
        m.reg.set_value = real_set  # type: ignore[method-assign]
        restarted = Lsa(m.reg, m.clock)
        old_ok = isinstance(logon(restarted, "bob", PW), dict)
        new_ok = isinstance(logon(restarted, "bob", new), dict)
        assert old_ok != new_ok, crash_at


def test_a_deleted_users_session_keeps_its_token_but_new_logons_fail() -> None:
    m = Lsa()
    add(m, "bob")
    r = logon(m, "bob", PW)
    admin = client(ADMIN_TOKEN)
    assert m.samsrv.SamrDeleteUser({"name": "bob"}, admin) == {}
    data = m.lsa.LsapGetLogonSessionData({"logon_id": r["logon_id"]}, admin)
    assert data["session"]["user"] == "bob"  # the held token's session lives on
    assert logon(m, "bob", PW) == S.STATUS_LOGON_FAILURE
    add(m, "bob")  # a new bob is a new SID: RIDs are never reused
    assert logon(m, "bob", PW)["token"]["sid"] != r["token"]["sid"]


def test_a_token_goes_only_to_a_child_of_the_caller() -> None:
    m = Lsa()
    add(m, "bob")
    assigned: list[tuple[int, dict]] = []
    m.lsa._assign_token = lambda pid, token: assigned.append((pid, token)) or 0
    m.lsa._parent_of = {777: 4242, 778: 1}.get  # client() is pid 4242
    c = client(SYSTEM_TOKEN)
    m.lsa.accept(c)
    body = {"origin": "", "logon_type": sec.Network, "auth_package": 0, "domain": ""}
    body.update(user="bob", password=PW, source="User32  ", session=0, assign_pid=778)
    assert m.lsa.LsapLogonUser(body, c) == S.STATUS_ACCESS_DENIED
    body["assign_pid"] = 777
    r = m.lsa.LsapLogonUser(body, c)
    assert assigned == [(777, r["token"])]
