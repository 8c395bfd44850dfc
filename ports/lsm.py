"""The Local Session Manager's port: ``\\RPC Control\\LSMApi`` (lsm.exe, Vista and later).

lsm.exe keeps the session table: id, WinStation name (``Services``, ``Console``,
``RDP-Tcp#N``), user, connect state (``WTS_CONNECTSTATE_CLASS``), logon time. Windows
reaches it over ncalrpc:[LSMApi]; the model's port stands for that endpoint.

Names: ``RpcGetEnumResult``, ``RpcConnect``, ``RpcDisconnect`` and ``RpcLogoff`` are the
real routines of the LSM Enumeration and LSM Session interfaces ([MS-TSTS] 3.3.4.1/3.3.4.2;
here they take a session id instead of an opened session handle). ``RpcCreateSession`` and
``RpcNotifySessionEvent`` are the model's names for termsrv's internal steps: a listener
accepting a connection makes a session (SmStartCsr through ``\\SmApiPort``), and
winlogon/csrss/smss tell LSM what happened in a session (Windows: the WinStation
notifications). Opnum constants are ``OP_<routine>``; the routine names are the client stubs.
Every reply carries the routine's return value as ``error`` (a win32
error, 0 on success), as the svcctl rows do; the NTSTATUS is the RPC layer's.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING

from ports.client import Connection, call_api
from ports.contract import Reply
from ports.schema import U32, Api, Int, List, Map, Protocol, Str

if TYPE_CHECKING:
    from ports.runtime import LpcRuntime

LSM_PORT_NAME = "\\RPC Control\\LSMApi"
MAX_MESSAGE_LENGTH = 64 * 1024
MAX_SESSIONS = 256  # the model's session ids fit NtCreateUserProcess's 0..255


class WtsConnectState(IntEnum):
    """WTS_CONNECTSTATE_CLASS (wtsapi32.h)."""

    WTSActive = 0
    WTSConnected = 1
    WTSConnectQuery = 2
    WTSShadow = 3
    WTSDisconnected = 4
    WTSIdle = 5
    WTSListen = 6
    WTSReset = 7
    WTSDown = 8
    WTSInit = 9


# The STATE column of `query session` (qwinsta's abbreviations).
STATE_TEXT = {
    WtsConnectState.WTSActive: "Active",
    WtsConnectState.WTSConnected: "Conn",
    WtsConnectState.WTSConnectQuery: "ConnQ",
    WtsConnectState.WTSShadow: "Shadow",
    WtsConnectState.WTSDisconnected: "Disc",
    WtsConnectState.WTSIdle: "Idle",
    WtsConnectState.WTSListen: "Listen",
    WtsConnectState.WTSReset: "Reset",
    WtsConnectState.WTSDown: "Down",
    WtsConnectState.WTSInit: "Init",
}

# RpcNotifySessionEvent's events.
EVENT_WINLOGON_READY = "winlogon_ready"  # winlogon waits for the SAS: Connected
EVENT_LOGON = "logon"  # a user logged on: Active
EVENT_LOGOFF = "logoff"  # the user logged off: Connected again
EVENT_SHUTDOWN = "shutdown"  # the machine is shutting down: no new session from now on
EVENT_SHUTDOWN_ABORTED = "shutdown_aborted"
EVENTS = (EVENT_WINLOGON_READY, EVENT_LOGON, EVENT_LOGOFF, EVENT_SHUTDOWN, EVENT_SHUTDOWN_ABORTED)

SESSION_ID = {"session_id": Int(lo=0, hi=MAX_SESSIONS - 1)}
SESSION = Map(
    fields={
        "session_id": U32(),
        "name": Str(max_len=32),  # WinStationName
        "user": Str(max_len=256),
        "state": Int(lo=0, hi=9),
        "state_name": Str(max_len=32),
        "type": Str(max_len=32),  # the WD: "" for the console, "rdpwd"
        "device": Str(max_len=32),
        "logon_time": Str(max_len=40),
        "create_time": Str(max_len=40),
        "csrss_pid": U32(),
        "winlogon_pid": U32(),
        "requested_user": Str(max_len=256),
    }
)


def _api(number: int, name: str, request: dict, reply: dict | None = None, doc: str = "") -> Api:
    return Api(number, name, request, {"error": U32(), **(reply or {})}, doc)


OP_RpcGetEnumResult = 0
OP_RpcCreateSession = 1
OP_RpcConnect = 2
OP_RpcDisconnect = 3
OP_RpcLogoff = 4
OP_RpcNotifySessionEvent = 5

LSM_APIS = (
    _api(
        OP_RpcGetEnumResult,
        "RpcGetEnumResult",
        {},
        {"sessions": List(item=SESSION, max_len=MAX_SESSIONS)},
        "Every session, by id (query session).",
    ),
    _api(
        OP_RpcCreateSession,
        "RpcCreateSession",
        {"user": Str(max_len=256, optional=True, default="")},
        {"session": SESSION, "status": U32()},
        "A new session (model name for termsrv's listener): the lowest free id >= 2, "
        "made by SmStartCsr; answered when its winlogon was handed to its csrss. `status` "
        "is smss's NTSTATUS when it failed (error 1115 during shutdown).",
    ),
    _api(OP_RpcConnect, "RpcConnect", SESSION_ID, {}, "Reconnect a disconnected session."),
    _api(OP_RpcDisconnect, "RpcDisconnect", SESSION_ID, {}, "Disconnect (tsdiscon)."),
    _api(
        OP_RpcLogoff,
        "RpcLogoff",
        SESSION_ID,
        {"closed": Int(lo=0, hi=1)},
        "Log the session's user off; a session made on demand is closed with its "
        "processes and objects (SmStopCsr). 1312 with no one logged on, 5 for session 0.",
    ),
    _api(
        OP_RpcNotifySessionEvent,
        "RpcNotifySessionEvent",
        {
            **SESSION_ID,
            "event": Str(max_len=32),
            "user": Str(max_len=256, optional=True, default=""),
        },
        {},
        "From winlogon of the session (or the shutdown coordinator): "
        + ", ".join(EVENTS)
        + " (model name).",
    ),
)

LSM_API_PORT = Protocol(
    title="\\RPC Control\\LSMApi (lsm.exe)",
    max_message_length=MAX_MESSAGE_LENGTH,
    apis=LSM_APIS,
    connect_info={},
    doc="The session table of the Local Session Manager; win32 errors in `error`.",
)


# -- client stubs ---------------------------------------------------------------------------
def LsmConnect(lpc: LpcRuntime) -> Connection:
    return lpc.connect_port(LSM_PORT_NAME, {})


def RpcGetEnumResult(conn: Connection) -> Reply:
    return call_api(conn, LSM_APIS[OP_RpcGetEnumResult], {})


def RpcCreateSession(conn: Connection, user: str = "", timeout: float = 90.0) -> Reply:
    return call_api(conn, LSM_APIS[OP_RpcCreateSession], {"user": user}, timeout=timeout)


def RpcConnect(conn: Connection, session_id: int) -> Reply:
    return call_api(conn, LSM_APIS[OP_RpcConnect], {"session_id": session_id})


def RpcDisconnect(conn: Connection, session_id: int) -> Reply:
    return call_api(conn, LSM_APIS[OP_RpcDisconnect], {"session_id": session_id})


def RpcLogoff(conn: Connection, session_id: int, timeout: float = 60.0) -> Reply:
    return call_api(conn, LSM_APIS[OP_RpcLogoff], {"session_id": session_id}, timeout=timeout)


def RpcNotifySessionEvent(conn: Connection, session_id: int, event: str, user: str = "") -> Reply:
    body = {"session_id": session_id, "event": event, "user": user}
    return call_api(conn, LSM_APIS[OP_RpcNotifySessionEvent], body)
