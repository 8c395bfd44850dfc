"""SCM object security (processes/services/scsecure.py): Windows' default descriptors, the
check at every open, object security query/set persisted as the Security value, 4656."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from nt import security as sec
from ports import svcctl as sv
from processes.services.scsecure import (
    DEFAULT_SERVICE_SDDL,
    SCM_SDDL,
    MemoryStore,
    ScSecurity,
)
from tests.unit.test_svcctl_server import SYSTEM, USER, Caller, call, env, open_service  # noqa: F401

NETWORK_USER = {
    "user": "NTMODEL\\bob",
    "sid": "S-1-5-21-1-2-3-1001",
    "groups": ["S-1-5-32-545", sec.NETWORK, sec.AUTHENTICATED_USERS],
    "privileges": [],
}
FILTERED_ADMIN = {
    "user": "NTMODEL\\alice",
    "sid": "S-1-5-21-1-2-3-1000",
    "groups": [sec.BUILTIN_ADMINISTRATORS, sec.INTERACTIVE, sec.AUTHENTICATED_USERS],
    "deny_only": [sec.BUILTIN_ADMINISTRATORS],
    "privileges": [],
}


def test_the_default_descriptors_are_windows_and_round_trip_through_the_binary_form() -> None:
    for text in (SCM_SDDL, DEFAULT_SERVICE_SDDL):
        sd = sec.parse_sddl(text)
        assert sec.sd_from_bytes(sec.sd_to_bytes(sd)) == sd
        assert sec.format_sddl(sd) == text
    assert sec.format_sddl(sec.parse_sddl(SCM_SDDL), sec.DACL_SECURITY_INFORMATION) == (
        "D:(A;;CC;;;AU)(A;;CCLCRPRC;;;IU)(A;;CCLCRPRC;;;SU)(A;;CCLCRPWPRC;;;SY)(A;;KA;;;BA)"
        "(A;;CC;;;AC)"
    )


@pytest.mark.parametrize(
    "data", [b"", b"\x01\x00", b"\x01" * 20, b"\x01\x00\x04\x80" + b"\xff" * 16]
)
def test_a_malformed_binary_descriptor_is_an_sddl_error_never_a_crash(data: bytes) -> None:
    with pytest.raises(sec.SddlError):
        sec.sd_from_bytes(data)


@pytest.mark.parametrize("text", ["D:(A;;GA;;;SY", "D:(A;;0xZZ;;;SY)", "D:(A;;GA;;;S-1-x)", "Q:"])
def test_bad_sddl_is_refused_with_sddl_error(text: str) -> None:
    with pytest.raises(sec.SddlError):
        sec.sd_to_bytes(sec.parse_sddl(text))


def test_network_user_may_connect_to_the_scm_but_not_enumerate_or_open_a_service() -> None:
    s = ScSecurity()
    caller = Caller(NETWORK_USER)
    assert s.check(caller, sv.SC_MANAGER_CONNECT, None) == sv.SC_MANAGER_CONNECT
    assert s.check(caller, sv.SC_MANAGER_ENUMERATE_SERVICE, None) is None
    assert s.check(caller, sv.SERVICE_QUERY_STATUS, "EventLog") is None


def test_interactive_user_queries_a_service_a_filtered_admin_cannot_stop_it() -> None:
    s = ScSecurity()
    assert s.check(Caller(USER), sv.SERVICE_QUERY_STATUS, "EventLog") == sv.SERVICE_QUERY_STATUS
    assert s.check(Caller(USER), sv.SERVICE_STOP, "EventLog") is None
    assert s.check(Caller(FILTERED_ADMIN), sv.SERVICE_STOP, "EventLog") is None
    full = s.check(Caller(SYSTEM), sec.MAXIMUM_ALLOWED, "EventLog")
    assert full is not None and full & sv.SERVICE_ALL_ACCESS == sv.SERVICE_ALL_ACCESS


def test_a_denial_reports_4656_with_the_subject_object_and_access() -> None:
    log = __import__("structlog").get_logger()
    s = ScSecurity(log=log)
    with capture_logs() as logs:
        assert s.check(Caller(NETWORK_USER), sv.SERVICE_STOP, "EventLog") is None
    report = next(e for e in logs if e["event"] == "event.report")
    assert report["event_id"] == 4656 and report["log"] == "Security"
    strings = report["strings"]
    assert strings[0] == NETWORK_USER["sid"] and strings[1] == "bob"
    assert strings[5:7] == ["SERVICE OBJECT", "EventLog"] or strings[5:7] == (
        "SERVICE OBJECT",
        "EventLog",
    )
    assert strings[8] == "0x20"  # SERVICE_STOP
    assert "A handle to an object was requested." in report["message"]


def test_sdset_then_sdshow_persists_and_grants_the_new_rights() -> None:
    store = MemoryStore()
    s = ScSecurity(store)
    admin = s.check(Caller(SYSTEM), sec.READ_CONTROL | sec.WRITE_DAC, "Spooler")
    assert admin is not None
    new = sec.parse_sddl("D:(A;;GA;;;BA)(A;;RPWPLC;;;IU)")
    dacl = sec.DACL_SECURITY_INFORMATION
    assert s.set("Spooler", dacl, sec.sd_to_bytes(new), admin) == 0
    assert store.read("spooler") is not None
    fresh = ScSecurity(store)  # a restarted SCM reads the stored value
    assert fresh.check(Caller(USER), sv.SERVICE_STOP, "Spooler") == sv.SERVICE_STOP
    error, data = fresh.query("Spooler", dacl, sec.READ_CONTROL)
    assert error == 0
    assert sec.format_sddl(sec.sd_from_bytes(data), dacl) == "D:(A;;GA;;;BA)(A;;LCRPWP;;;IU)"


def test_object_security_needs_read_control_and_write_dac() -> None:
    s = ScSecurity()
    dacl = sec.DACL_SECURITY_INFORMATION
    assert s.query("Spooler", dacl, sv.SERVICE_QUERY_STATUS)[0] == 5
    data = sec.sd_to_bytes(sec.parse_sddl("D:(A;;GA;;;WD)"))
    assert s.set("Spooler", dacl, data, sec.READ_CONTROL) == 5
    assert s.set("Spooler", dacl, b"junk", sec.WRITE_DAC) == 1338
    assert s.set("Spooler", sec.SACL_SECURITY_INFORMATION, data, sec.WRITE_DAC) == 1314
    assert s.query("Spooler", 0, sec.READ_CONTROL)[0] == 87


def test_the_routines_through_svcctl_handles(env) -> None:  # noqa: F811
    _, server = env
    user = Caller(USER)
    _, opened = open_service(server, user, access=sv.SERVICE_QUERY_STATUS)
    assert opened["error"] == 0
    q = call(
        server, "RQueryServiceObjectSecurity", user, handle=opened["handle"], security_information=4
    )
    assert q["error"] == 5  # the handle has no READ_CONTROL
    admin = Caller(SYSTEM, conn_id=2)
    _, full = open_service(server, admin, access=sec.READ_CONTROL | sec.WRITE_DAC)
    q = call(
        server, "RQueryServiceObjectSecurity", admin, handle=full["handle"], security_information=4
    )
    assert q["error"] == 0
    assert sec.format_sddl(sec.sd_from_bytes(q["security_descriptor"]), 4).startswith(
        "D:(A;;CCLCSWRPWPDTLOCRRC;;;SY)"
    )
    data = sec.sd_to_bytes(sec.parse_sddl("D:(A;;GA;;;SY)"))
    r = call(
        server,
        "RSetServiceObjectSecurity",
        admin,
        handle=full["handle"],
        security_information=4,
        security_descriptor=data,
    )
    assert r["error"] == 0
    _, again = open_service(server, Caller(USER, conn_id=3), access=sv.SERVICE_QUERY_STATUS)
    assert again["error"] == 5


SIDS = st.sampled_from(
    [sec.LOCAL_SYSTEM, sec.BUILTIN_ADMINISTRATORS, sec.EVERYONE, "S-1-5-21-1-2-3-1001", "S-1-0-0"]
)
ACES = st.builds(sec.Ace, st.sampled_from(["A", "D"]), st.integers(0, 0xFFFFFFFF), SIDS)


@given(
    owner=SIDS,
    group=SIDS,
    dacl=st.one_of(st.none(), st.lists(ACES, max_size=8).map(tuple)),
)
def test_any_descriptor_round_trips_through_the_self_relative_form(owner, group, dacl) -> None:
    sd = sec.SecurityDescriptor(owner, group, dacl)
    assert sec.sd_from_bytes(sec.sd_to_bytes(sd)) == sd


@given(st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_raise_sddl_error_only(data: bytes) -> None:
    try:
        sd = sec.sd_from_bytes(data)
    except sec.SddlError:
        return
    sec.format_sddl(sd)  # whatever parsed can be shown


@given(st.text(alphabet="ODGSAPI:();0123456789xXCLRWSTU-", max_size=60))
def test_arbitrary_sddl_text_parses_or_raises_sddl_error_only(text: str) -> None:
    try:
        sec.parse_sddl(text)
    except sec.SddlError:
        pass
