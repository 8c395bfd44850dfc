"""The Security log events lsass raises, with their insertion strings in the order of
Windows' audit templates (a prefix of each template's fields: Event Viewer's "Details").

Strings never hold a password: the callers pass names, SIDs, ids and statuses only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from nt import evtmsg
from nt.log import Logger
from nt.security import LOGON_TYPE_NAMES, format_luid
from nt.status import hexstatus

# Field names, in order, for each event (tests and `ntctl events` read them by position).
LOGON_FIELDS: Final = (
    "SubjectUserSid",
    "SubjectUserName",
    "SubjectDomainName",
    "SubjectLogonId",
    "TargetUserSid",
    "TargetUserName",
    "TargetDomainName",
    "TargetLogonId",
    "LogonType",
    "LogonProcessName",
    "AuthenticationPackageName",
    "WorkstationName",
    "ProcessId",
    "ProcessName",
    "ElevatedToken",
)
FAILED_LOGON_FIELDS: Final = (
    "SubjectUserSid",
    "SubjectUserName",
    "SubjectDomainName",
    "SubjectLogonId",
    "TargetUserSid",
    "TargetUserName",
    "TargetDomainName",
    "Status",
    "FailureReason",
    "SubStatus",
    "LogonType",
    "LogonProcessName",
    "AuthenticationPackageName",
    "WorkstationName",
    "ProcessId",
    "ProcessName",
)
LOGOFF_FIELDS: Final = (
    "TargetUserSid",
    "TargetUserName",
    "TargetDomainName",
    "TargetLogonId",
    "LogonType",
)
ACCOUNT_FIELDS: Final = (
    "TargetUserName",
    "TargetDomainName",
    "TargetSid",
    "SubjectUserSid",
    "SubjectUserName",
    "SubjectDomainName",
    "SubjectLogonId",
)

# %%2313 "Unknown user name or bad password." and friends (msobjs.dll), by status.
FAILURE_REASONS: Final = {
    0xC000006D: "Unknown user name or bad password.",
    0xC0000234: "Account locked out.",
    0xC0000072: "Account currently disabled.",
    0xC0000193: "The specified account has expired.",
    0xC0000224: "The user's password must be changed before signing in.",
    0xC0000071: "The specified user's password has expired.",
    0xC000015B: "The user has not been granted the requested logon type at this machine.",
}


class Subject:
    """Who asked: the caller's token (from the kernel's process record)."""

    def __init__(self, token: dict, pid: int, image: str) -> None:
        user = str(token.get("user", ""))
        domain, _, name = user.rpartition("\\")
        self.sid = str(token.get("sid", "S-1-0-0"))
        self.name, self.domain = name or user, domain or "-"
        self.logon_id = format_luid(int(token.get("logon_id", 0x3E7) or 0x3E7))
        self.pid, self.image = pid, image

    def strings(self) -> list[str]:
        return [self.sid, self.name, self.domain, self.logon_id]


def _report(log: Logger, event_id: int, fields: Sequence[str], values: Sequence[object]) -> None:
    assert len(fields) == len(values)
    evtmsg.report_event(log, event_id, [str(v) for v in values])


def logon_success(
    log: Logger,
    subject: Subject,
    token: dict,
    domain: str,
    name: str,
    origin: str,
    workstation: str,
) -> None:
    _report(
        log,
        4624,
        LOGON_FIELDS,
        [
            *subject.strings(),
            token["sid"],
            name,
            domain,
            format_luid(token["logon_id"]),
            token["logon_type"],
            origin or "-",
            token["auth_package"],
            workstation,
            hex(subject.pid),
            subject.image,
            "%%1843" if token["elevation_type"] == "Full" else "%%1842",  # Yes / No
        ],
    )


def logon_failure(
    log: Logger,
    subject: Subject,
    *,
    name: str,
    domain: str,
    sid: str,
    status: int,
    sub_status: int,
    logon_type: int,
    origin: str,
    package: str,
    workstation: str,
) -> None:
    _report(
        log,
        4625,
        FAILED_LOGON_FIELDS,
        [
            *subject.strings(),
            sid,
            name[:256],
            domain,
            hexstatus(status),
            FAILURE_REASONS.get(status, "An Error occured during Logon."),
            hexstatus(sub_status),
            logon_type,
            origin or "-",
            package,
            workstation,
            hex(subject.pid),
            subject.image,
        ],
    )


def logoff(log: Logger, sid: str, name: str, domain: str, logon_id: int, logon_type: int) -> None:
    _report(log, 4634, LOGOFF_FIELDS, [sid, name, domain, format_luid(logon_id), logon_type])


def account(log: Logger, event_id: int, subject: Subject, name: str, domain: str, sid: str) -> None:
    """4720 created, 4722 enabled, 4724 password reset, 4725 disabled, 4726 deleted,
    4738 changed, 4740 locked out, 4767 unlocked."""
    _report(log, event_id, ACCOUNT_FIELDS, [name, domain, sid, *subject.strings()])


def logon_type_name(logon_type: int) -> str:
    return LOGON_TYPE_NAMES.get(logon_type, str(logon_type))
