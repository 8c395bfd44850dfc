"""Event 4656 ("A handle to an object was requested.", Audit Failure): the one helper every
server calls when an access check refuses a caller (SeOpenObjectAuditAlarm's record).

The insertion strings follow the Windows template's field order (``OPEN_HANDLE_FIELDS``),
so `ntctl events Security` and tests read them by position. Nothing here names a secret:
the subject is the token's SID and name, the object its type and name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from nt import evtmsg
from nt.security import format_luid

OPEN_HANDLE_FIELDS: Final = (
    "SubjectUserSid",
    "SubjectUserName",
    "SubjectDomainName",
    "SubjectLogonId",
    "ObjectServer",
    "ObjectType",
    "ObjectName",
    "HandleId",
    "AccessMask",
    "PrivilegeList",
    "ProcessId",
    "ProcessName",
    "Status",
)


def audit_open_denied(
    log: evtmsg._Logger,
    token: Mapping[str, object] | None,
    *,
    server: str,
    object_type: str,
    object_name: str,
    desired: int,
    pid: int,
    image: str,
    status: int = 0xC0000022,
    privilege: str = "-",
) -> evtmsg.EventRecord:
    """Report 4656 for a refused open (``status``: STATUS_ACCESS_DENIED, or
    STATUS_PRIVILEGE_NOT_HELD with the ``privilege`` it needed)."""
    token = token or {}
    domain, _, name = str(token.get("user", "")).rpartition("\\")
    strings = (
        str(token.get("sid", "")) or "S-1-0-0",
        name or "-",
        domain or "-",
        format_luid(int(str(token.get("logon_id", 0) or 0))),
        server,
        object_type,
        object_name[:512],
        "0x0",
        f"0x{desired & 0xFFFFFFFF:x}",
        privilege,
        f"0x{pid:x}",
        image,
        f"0x{status & 0xFFFFFFFF:08X}",
    )
    return evtmsg.report_event(log, 4656, strings)


def audit_privilege_denied(
    log: evtmsg._Logger,
    token: Mapping[str, object] | None,
    privilege: str,
    *,
    server: str,
    object_name: str,
    pid: int,
    image: str,
) -> evtmsg.EventRecord:
    """4656 for a call refused because the token lacks ``privilege`` (Windows audits this
    as 4673; the model keeps one denial event)."""
    return audit_open_denied(
        log,
        token,
        server=server,
        object_type="Privilege",
        object_name=object_name,
        desired=0,
        pid=pid,
        image=image,
        status=0xC0000061,
        privilege=privilege,
    )
