"""Logon sessions and the tokens lsass builds for them (lsasrv ``session.c``,
``authpackage.c`` ``LsapLogonUser``: groups, privileges, NtCreateToken).

A logon session is named by a LUID. The token of a session carries the user SID, the
groups (the logon SID S-1-5-5-X-Y, LOCAL, the logon type's group, Everyone,
Authenticated Users, the SAM aliases), the privileges those groups hold, an integrity
level and an elevation type:

- a member of Administrators logging on interactively, or over the network with a local
  account other than the built-in Administrator (UAC remote restrictions), gets the
  *filtered* token of UAC: Administrators deny-only, the privileges of Users, Medium
  integrity, elevation type Limited;
- otherwise an administrator's token is Full (High integrity); a service logon is High
  as well; everybody else is Default at Medium.
"""

from __future__ import annotations

import itertools
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from nt import security as sec


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class LogonSession:
    logon_id: int
    user: str
    domain: str
    sid: str
    logon_type: int
    auth_package: str
    session: int
    conn_id: int  # the LSA connection that asked for it: its token dies with that client
    logon_time: str = field(default_factory=now_iso)

    def data(self, logon_server: str) -> dict:
        """SECURITY_LOGON_SESSION_DATA."""
        return {
            "logon_id": self.logon_id,
            "user": self.user,
            "domain": self.domain,
            "sid": self.sid,
            "logon_type": self.logon_type,
            "auth_package": self.auth_package,
            "logon_time": self.logon_time,
            "session": self.session,
            "logon_server": logon_server,
        }


class LogonSessions:
    """The logon session list (LsapCreateLogonSession / LsapDeleteLogonSession)."""

    # LUIDs below 0x3e8 are the well-known ones (SYSTEM 0x3e7, LocalService 0x3e5,
    # NetworkService 0x3e4); new sessions start higher, from a per-boot random base.
    def __init__(self) -> None:
        self._luids = itertools.count(0x10000 + secrets.randbelow(0x10000))
        self._lock = threading.Lock()
        self.sessions: dict[int, LogonSession] = {}

    def create(self, **kw: object) -> LogonSession:
        with self._lock:
            session = LogonSession(logon_id=next(self._luids), **kw)  # type: ignore[arg-type]
            self.sessions[session.logon_id] = session
            return session

    def get(self, logon_id: int) -> LogonSession | None:
        with self._lock:
            return self.sessions.get(logon_id)

    def remove(self, logon_id: int) -> None:
        with self._lock:
            self.sessions.pop(logon_id, None)

    def ids(self) -> list[int]:
        with self._lock:
            return sorted(self.sessions)

    def end_connection(self, conn_id: int) -> list[LogonSession]:
        """The client that held these sessions' tokens is gone: the sessions end."""
        with self._lock:
            gone = [s for s in self.sessions.values() if s.conn_id == conn_id]
            for s in gone:
                del self.sessions[s.logon_id]
            return gone


def logon_sid(logon_id: int) -> str:
    """S-1-5-5-X-Y: the logon SID, unique per logon session."""
    return f"S-1-5-5-{logon_id >> 32}-{logon_id & 0xFFFFFFFF}"


def build_token(
    *,
    account: str,
    user_sid: str,
    rid: int,
    aliases: list[str],
    logon_type: int,
    logon_id: int,
    auth_package: str,
    privileges_of: Callable[[list[str]], list[str]] = sec.privileges_for,
) -> dict:
    """The token LsapLogonUser creates, as the port's TOKEN schema carries it;
    ``privileges_of`` is the LSA policy's User Rights Assignment (SIDs → privileges)."""
    groups = [sec.EVERYONE, sec.LOCAL]
    if logon_type == sec.Interactive:
        groups.append(sec.CONSOLE_LOGON)
    groups += [
        sec.LOGON_TYPE_SIDS[logon_type],
        sec.AUTHENTICATED_USERS,
        sec.THIS_ORGANIZATION,
        sec.LOCAL_ACCOUNT,
    ]
    admin = sec.BUILTIN_ADMINISTRATORS in aliases
    if admin:
        groups.append(sec.LOCAL_ACCOUNT_AND_ADMIN)
    groups += aliases
    groups += [logon_sid(logon_id), sec.NTLM_AUTHENTICATION]
    filtered = admin and (
        logon_type == sec.Interactive
        or (logon_type == sec.Network and rid != sec.DOMAIN_USER_RID_ADMIN)
    )
    deny_only: list[str] = []
    if filtered:
        deny_only = [sec.BUILTIN_ADMINISTRATORS, sec.LOCAL_ACCOUNT_AND_ADMIN]
        privileges = privileges_of([sec.BUILTIN_USERS, sec.EVERYONE])
        integrity, elevation = sec.INTEGRITY_MEDIUM, sec.TokenElevationTypeLimited
    else:
        privileges = privileges_of(
            [user_sid, *aliases, sec.EVERYONE, sec.LOGON_TYPE_SIDS[logon_type]]
        )
        if admin:
            integrity, elevation = sec.INTEGRITY_HIGH, sec.TokenElevationTypeFull
        else:
            high = logon_type == sec.Service
            integrity = sec.INTEGRITY_HIGH if high else sec.INTEGRITY_MEDIUM
            elevation = sec.TokenElevationTypeDefault
    return {
        "user": account,
        "sid": user_sid,
        "groups": groups,
        "deny_only": deny_only,
        "privileges": privileges,
        "logon_id": logon_id,
        "logon_type": logon_type,
        "integrity": integrity,
        "elevation_type": elevation,
        "auth_package": auth_package,
    }
