"""Service accounts on the SCM side (processes/services/logon.py): which accounts need a
logon, and what a refused logon becomes (1069, 7038 with LogonUser's error)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from nt.status import NtStatus as S
from processes.services import logon


@dataclass
class FakeLogon:
    status: int
    calls: list[tuple[str, str, int]] = field(default_factory=list)

    def logon(self, service: str, object_name: str, pid: int) -> int:
        self.calls.append((service, object_name, pid))
        return self.status


@dataclass
class Svc:
    name: str
    object_name: str
    event_name: str = ""

    def __post_init__(self) -> None:
        self.event_name = self.event_name or self.name


@dataclass
class Core:
    logon: FakeLogon | None
    events: list[tuple] = field(default_factory=list)

    def event(self, event_id: int, *strings: object) -> None:
        self.events.append((event_id, *strings))


@pytest.mark.parametrize(
    "account",
    ["LocalSystem", "", "NT AUTHORITY\\LocalService", "nt authority\\NetworkService"],
)
def test_builtin_accounts_need_no_logon(account: str) -> None:
    core = Core(FakeLogon(S.STATUS_SUCCESS))
    assert logon.logon_service_process(core, Svc("X", account), 42) == 0
    assert core.logon.calls == []


def test_a_user_account_is_logged_on_for_the_suspended_process() -> None:
    core = Core(FakeLogon(S.STATUS_SUCCESS))
    assert logon.logon_service_process(core, Svc("BobSvc", ".\\bob"), 42) == 0
    assert core.logon.calls == [("BobSvc", ".\\bob", 42)]
    assert logon.account_parts(".\\bob") == ("", "bob")
    assert logon.account_parts("NTMODEL\\bob") == ("NTMODEL", "bob")


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (S.STATUS_LOGON_TYPE_NOT_GRANTED, "not been granted the requested logon type"),
        (S.STATUS_LOGON_FAILURE, "user name or password is incorrect"),
        (S.STATUS_PORT_DISCONNECTED, "user name or password is incorrect"),
    ],
)
def test_a_refused_logon_is_1069_with_7038(status: int, text: str) -> None:
    core = Core(FakeLogon(status))
    assert logon.logon_service_process(core, Svc("BobSvc", ".\\bob"), 42) == 1069
    ((event_id, name, account, why),) = core.events
    assert (event_id, name, account) == (7038, "BobSvc", ".\\bob") and text in why


def test_without_an_lsa_wiring_nothing_is_stored_or_checked() -> None:
    core = Core(None)
    assert logon.logon_service_process(core, Svc("BobSvc", ".\\bob"), 42) == 0
    assert logon.store_password(core, "BobSvc", b"pw") == 0
