"""LSM's session table, without sockets (lsm.exe's CSession objects; nt-spec §1.10, §5).

``SessionTable`` is the core the port handlers call. It reaches smss and the session's
winlogon through ``SessionBackend`` (a Protocol): the process wiring gives it stubs on
``\\SmApiPort`` and on winlogon's ``WMsgKRpc`` port, the tests a fake.

States follow WTS_CONNECTSTATE_CLASS: session 0 is ``Disconnected`` (no one can connect
to it), a session whose winlogon waits for the SAS is ``Connected``, one with a user is
``Active``; ``RpcDisconnect`` makes it ``Disconnected``, ``RpcConnect`` brings it back.
A session made on demand is ``Init`` while smss makes it and is removed when it is closed.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Protocol

from nt.log import get_logger
from nt.status import NtStatus
from nt.win32 import Win32Error
from ports.lsm import MAX_SESSIONS, STATE_TEXT, WtsConnectState

log = get_logger()

SERVICES_SESSION = 0
CONSOLE_SESSION = 1
BOOT_SESSIONS = (SERVICES_SESSION, CONSOLE_SESSION)  # made by smss at boot (win10)
S = WtsConnectState


class SessionBackend(Protocol):
    def start_session(self, session_id: int) -> tuple[int, dict]:
        """SmStartCsr: (NTSTATUS, {"csrss_pid", "initial_pid"})."""
        ...

    def stop_session(self, session_id: int) -> int:
        """SmStopCsr: end every process of the session and remove its objects."""
        ...

    def logoff(self, session_id: int) -> int:
        """Ask the session's winlogon to log its user off (a win32 error)."""
        ...


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Session:
    session_id: int
    name: str
    state: int
    user: str = ""
    type: str = ""
    device: str = ""
    logon_time: str = ""
    create_time: str = ""
    csrss_pid: int = 0
    winlogon_pid: int = 0
    requested_user: str = ""

    def record(self) -> dict:
        out = asdict(self)
        out["state"] = int(self.state)  # the schema takes exact ints, not IntEnum
        out["state_name"] = S(self.state).name
        return out


class SessionTable:
    def __init__(self, backend: SessionBackend) -> None:
        self.backend = backend
        self.sessions: dict[int, Session] = {
            SERVICES_SESSION: Session(
                SERVICES_SESSION, "Services", S.WTSDisconnected, create_time=_now()
            ),
            CONSOLE_SESSION: Session(
                CONSOLE_SESSION, "Console", S.WTSConnected, create_time=_now()
            ),
        }
        self.shutting_down = False
        self._rdp_numbers = 0  # RDP-Tcp#N: termsrv numbers its connections from 0
        self._lock = threading.Lock()

    # -- queries -----------------------------------------------------------------------
    def enumerate(self) -> list[dict]:
        with self._lock:
            return [self.sessions[n].record() for n in sorted(self.sessions)]

    def get(self, session_id: int) -> Session | None:
        with self._lock:
            return self.sessions.get(session_id)

    # -- a new session (termsrv's listener → SmStartCsr) -----------------------------------
    def create(self, user: str = "") -> tuple[int, int, dict | None]:
        """(win32 error, smss's NTSTATUS, the session record). Blocks until smss answers;
        several calls at once make their sessions in parallel (one smss instance each)."""
        with self._lock:
            if self.shutting_down:
                return (
                    Win32Error.ERROR_SHUTDOWN_IN_PROGRESS,
                    NtStatus.STATUS_SHUTDOWN_IN_PROGRESS,
                    None,
                )
            session_id = next((n for n in range(2, MAX_SESSIONS) if n not in self.sessions), None)
            if session_id is None:
                return (
                    Win32Error.ERROR_NOT_ENOUGH_MEMORY,
                    NtStatus.STATUS_INSUFFICIENT_RESOURCES,
                    None,
                )
            name = f"RDP-Tcp#{self._rdp_numbers}"
            self._rdp_numbers += 1
            session = Session(
                session_id, name, S.WTSInit, type="rdpwd", create_time=_now(), requested_user=user
            )
            self.sessions[session_id] = session
        log.info("lsm.session_create", target_session=session_id, name=name, requested_user=user)
        status, body = self.backend.start_session(session_id)
        with self._lock:
            if status != NtStatus.STATUS_SUCCESS:
                self.sessions.pop(session_id, None)
                error = (
                    Win32Error.ERROR_SHUTDOWN_IN_PROGRESS
                    if status == NtStatus.STATUS_SHUTDOWN_IN_PROGRESS or self.shutting_down
                    else Win32Error.ERROR_GEN_FAILURE
                )
                log.error("lsm.session_create_failed", target_session=session_id, status=status)
                return error, status, None
            session.csrss_pid = body.get("csrss_pid", 0)
            session.winlogon_pid = body.get("initial_pid", 0)
            if session.state == S.WTSInit:
                session.state = S.WTSConnected
            record = session.record()
        log.info(
            "lsm.session_created",
            target_session=session_id,
            csrss_pid=session.csrss_pid,
            winlogon_pid=session.winlogon_pid,
        )
        return Win32Error.ERROR_SUCCESS, NtStatus.STATUS_SUCCESS, record

    # -- connect / disconnect / logoff -------------------------------------------------------
    def disconnect(self, session_id: int) -> int:
        with self._lock:
            session = self.sessions.get(session_id)
            if session is None:
                return Win32Error.ERROR_CTX_WINSTATION_NOT_FOUND
            if session_id == SERVICES_SESSION:
                return Win32Error.ERROR_ACCESS_DENIED  # tsdiscon 0: "Error code 5"
            session.state = S.WTSDisconnected
        log.info("lsm.session_disconnect", target_session=session_id)
        return Win32Error.ERROR_SUCCESS

    def connect(self, session_id: int) -> int:
        with self._lock:
            session = self.sessions.get(session_id)
            if session is None:
                return Win32Error.ERROR_CTX_WINSTATION_NOT_FOUND
            if session_id == SERVICES_SESSION:
                return Win32Error.ERROR_ACCESS_DENIED
            if session.state == S.WTSDisconnected:
                session.state = S.WTSActive if session.user else S.WTSConnected
        log.info("lsm.session_connect", target_session=session_id)
        return Win32Error.ERROR_SUCCESS

    def logoff(self, session_id: int) -> tuple[int, bool]:
        """(win32 error, closed). A session made on demand is closed whether or not a user
        is logged on (``logoff N`` resets it); the console session needs a user."""
        with self._lock:
            session = self.sessions.get(session_id)
            if session is None:
                return Win32Error.ERROR_CTX_WINSTATION_NOT_FOUND, False
            if session_id == SERVICES_SESSION:
                return Win32Error.ERROR_ACCESS_DENIED, False
            if session.state == S.WTSInit:
                return Win32Error.ERROR_CTX_WINSTATION_NOT_FOUND, False  # still being made
            closing = session_id not in BOOT_SESSIONS
            if not closing and not session.user:
                return Win32Error.ERROR_NO_SUCH_LOGON_SESSION, False
            if closing:
                session.state = S.WTSReset
        if session.user:
            error = self.backend.logoff(session_id)
            if error:
                return error, False
            self.notify(session_id, "logoff")
        if not closing:
            return Win32Error.ERROR_SUCCESS, False
        status = self.backend.stop_session(session_id)
        with self._lock:
            self.sessions.pop(session_id, None)
        log.info("lsm.session_closed", target_session=session_id, status=status)
        if status != NtStatus.STATUS_SUCCESS:
            return Win32Error.ERROR_GEN_FAILURE, True
        return Win32Error.ERROR_SUCCESS, True

    # -- what winlogon and the shutdown coordinator report ---------------------------------
    def notify(self, session_id: int, event: str, user: str = "", pid: int = 0) -> int:
        with self._lock:
            if event == "shutdown":
                self.shutting_down = True
            elif event == "shutdown_aborted":
                self.shutting_down = False
            else:
                session = self.sessions.get(session_id)
                if session is None and event == "winlogon_ready" and session_id >= 2:
                    session = self._adopt(session_id)  # made by SmStartCsr without LSM
                if session is None:
                    return Win32Error.ERROR_CTX_WINSTATION_NOT_FOUND
                if event == "winlogon_ready":
                    if pid:
                        session.winlogon_pid = pid
                    if session.state == S.WTSInit or (
                        session.state != S.WTSDisconnected and not session.user
                    ):
                        session.state = S.WTSConnected
                elif event == "logon":
                    session.user, session.logon_time = user, _now()
                    if session.state != S.WTSDisconnected:
                        session.state = S.WTSActive
                elif event == "logoff":
                    session.user, session.logon_time = "", ""
                    if session.state == S.WTSActive:
                        session.state = S.WTSConnected
                else:
                    return Win32Error.ERROR_INVALID_PARAMETER
        log.info("lsm.session_event", target_session=session_id, what=event, user=user)
        return Win32Error.ERROR_SUCCESS

    def _adopt(self, session_id: int) -> Session:
        """A session someone made through \\SmApiPort directly (a tool acting as termsrv):
        LSM learns it from its winlogon, so the table and the next id stay right."""
        session = Session(
            session_id, f"RDP-Tcp#{self._rdp_numbers}", S.WTSInit, type="rdpwd", create_time=_now()
        )
        self._rdp_numbers += 1
        self.sessions[session_id] = session
        log.info("lsm.session_adopted", target_session=session_id)
        return session


def state_text(state: int) -> str:
    return STATE_TEXT[S(state)]
