"""The SmApiPort protocol: clients and subsystems -> smss (``\\SmApiPort``).

``SM_API_MSG`` and ``SMSRV_API_NUMBER`` (sdk/include/reactos/subsys/sm/smmsg.h), handlers in
``base/system/smss/smloop.c`` (nt-spec.md §2.3). The connection information is
``SB_CONNECTION_INFO``: a subsystem gives its image type and its SbApiPort name; a plain
client gives type 0 (IMAGE_SUBSYSTEM_UNKNOWN) and no name.

Client stubs (smclient.c) follow the table, one per API, named after the NT routine: each
builds the body, and ``call_api`` checks it against the row's request schema before it is
sent. ``SmConnectToSm`` is the CONNECT.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nt.status import NtStatus
from ports.client import Connection, call_api
from ports.contract import Reply
from ports.schema import U32, Api, Bool, Int, Map, Protocol, Str

if TYPE_CHECKING:
    from ports.runtime import LpcRuntime

SM_PORT_NAME = "\\SmApiPort"
MAX_MESSAGE_LENGTH = 4096

SmpCreateForeignSessionApi = 0
SmpSessionCompleteApi = 1
SmpTerminateForeignSessionApi = 2
SmpExecPgmApi = 3
SmpLoadDeferedSubsystemApi = 4
SmpStartCsrApi = 5
SmpStopCsrApi = 6
SmpMaxApiNumber = 7

# IMAGE_SUBSYSTEM_* (the ImageType a subsystem registers for).
IMAGE_SUBSYSTEM_UNKNOWN = 0
IMAGE_SUBSYSTEM_NATIVE = 1
IMAGE_SUBSYSTEM_WINDOWS_GUI = 2
IMAGE_SUBSYSTEM_WINDOWS_CUI = 3
IMAGE_SUBSYSTEM_OS2_CUI = 5
IMAGE_SUBSYSTEM_POSIX_CUI = 7

# SB_CONNECTION_INFO.SbApiPortName is WCHAR[120]; SmConnectToSm wants it shorter than that.
SB_PORT_NAME_MAX = 119
CONNECT_INFO = {
    "subsystem_type": Int(lo=0, hi=0xFFFF),
    "sb_port": Str(max_len=SB_PORT_NAME_MAX, optional=True, default=""),
}

SESSION_ID = {"session_id": U32()}
PROCESS_INFO = Map(
    fields={
        "pid": U32(),
        "tid": U32(optional=True, default=0),
        "image": Str(max_len=260, optional=True, default=""),
        "session": U32(optional=True, default=0),
        "subsystem_type": Int(lo=0, hi=16, optional=True, default=0),
    }
)

SM_APIS = (
    Api(SmpCreateForeignSessionApi, "SmpCreateForeignSessionApi", {}, {}, "STATUS_NOT_IMPLEMENTED"),
    Api(
        SmpSessionCompleteApi,
        "SmpSessionCompleteApi",
        {"session_id": U32(), "session_status": U32()},
        {},
        "STATUS_NOT_IMPLEMENTED in ReactOS; csrss still sends it.",
    ),
    Api(
        SmpTerminateForeignSessionApi,
        "SmpTerminateForeignSessionApi",
        SESSION_ID,
        {},
        "STATUS_NOT_IMPLEMENTED",
    ),
    Api(
        SmpExecPgmApi,
        "SmpExecPgmApi",
        {"process": PROCESS_INFO, "debug_flag": Bool(optional=True, default=False)},
        {},
        "SmpSbCreateSession for a process the caller created suspended.",
    ),
    Api(
        SmpLoadDeferedSubsystemApi,
        "SmpLoadDeferedSubsystemApi",
        {"name": Str(max_len=32)},  # WCHAR[32]; 1..64 bytes
        {},
        "Start a subsystem from the Optional list.",
    ),
    Api(
        SmpStartCsrApi,
        "SmpStartCsrApi",
        {
            "session_id": U32(),
            "command": Str(max_len=128, optional=True, default=""),
        },
        {"session_id": U32(), "csrss_pid": U32(), "initial_pid": U32()},
        "Create a session on demand through an smss instance: its csrss, then the initial "
        "command. Answered when the instance is done; a failed session fails the call only.",
    ),
    Api(
        SmpStopCsrApi,
        "SmpStopCsrApi",
        SESSION_ID,
        {},
        "End a session made on demand: its processes (their critical flags cleared first), "
        "then its objects (\\Sessions\\N and what is under it). Boot sessions cannot be "
        "stopped.",
    ),
)

SM_API_PORT = Protocol(
    title="\\SmApiPort (smss)",
    max_message_length=MAX_MESSAGE_LENGTH,
    apis=SM_APIS,
    connect_info=CONNECT_INFO,
    doc="SM_API_MSG; ApiNumber >= SmpMaxApiNumber is answered STATUS_NOT_IMPLEMENTED.",
    statuses=(
        (
            NtStatus.STATUS_INVALID_PARAMETER_MIX,
            "CONNECT: `subsystem_type` given without `sb_port` (INVALID_PARAMETER_MIX)",
        ),
        (
            NtStatus.STATUS_PORT_CONNECTION_REFUSED,
            "CONNECT: that session's image type is already served by a live subsystem",
        ),
        (NtStatus.STATUS_INVALID_PARAMETER, "APIs 0-2 from a connection that is not a subsystem's"),
        (
            NtStatus.STATUS_ACCESS_DENIED,
            "SmpExecPgmApi: the process is not one the caller created (see §0.4)",
        ),
        (NtStatus.STATUS_INVALID_CID, "SmpExecPgmApi: no such process (INVALID_CID)"),
        (
            NtStatus.STATUS_OBJECT_NAME_NOT_FOUND,
            "SmpExecPgmApi: no subsystem serves the session; LoadDefered: no such name; "
            "SmpStopCsrApi: no such session",
        ),
        (NtStatus.STATUS_NOT_IMPLEMENTED, "APIs the model (like ReactOS) does not implement"),
        (
            NtStatus.STATUS_OBJECT_NAME_COLLISION,
            "SmpStartCsrApi: that session exists or is being made",
        ),
        (
            NtStatus.STATUS_UNSUCCESSFUL,
            "SmpStartCsrApi: smss is still initialising, or the session's instance died "
            "(otherwise its failure status)",
        ),
        (
            NtStatus.STATUS_ACCESS_DENIED,
            "SmpStopCsrApi: a session the boot made (0 and the console session)",
        ),
        (
            NtStatus.STATUS_SHUTDOWN_IN_PROGRESS,
            "SmpStartCsrApi: the machine is shutting down (no process may be created)",
        ),
        (
            NtStatus.STATUS_SUCCESS,
            "SmpExecPgmApi: otherwise the subsystem's SbpCreateSession status",
        ),
    ),
)


# -- client stubs (smclient.c) -----------------------------------------------------------
def SmConnectToSm(
    lpc: LpcRuntime, subsystem_type: int = IMAGE_SUBSYSTEM_UNKNOWN, sb_port: str = ""
) -> Connection:
    """CONNECT to ``\\SmApiPort``: a subsystem names its type and SbApiPort, a plain
    client gives neither. Raises ``PortError`` when refused."""
    info: dict = {"subsystem_type": subsystem_type}
    if sb_port:
        info["sb_port"] = sb_port
    return lpc.connect_port(SM_PORT_NAME, info)


def SmSessionComplete(conn: Connection, session_id: int, session_status: int) -> Reply:
    return call_api(
        conn,
        SM_APIS[SmpSessionCompleteApi],
        {"session_id": session_id, "session_status": session_status & 0xFFFFFFFF},
    )


def SmExecPgm(
    conn: Connection,
    pid: int,
    *,
    session: int = 0,
    subsystem_type: int = IMAGE_SUBSYSTEM_WINDOWS_GUI,
    debug_flag: bool = False,
) -> Reply:
    """SmExecPgm: hand smss a process the caller created suspended (``pid``)."""
    process = {"pid": pid, "session": session, "subsystem_type": subsystem_type}
    return call_api(conn, SM_APIS[SmpExecPgmApi], {"process": process, "debug_flag": debug_flag})


def SmLoadDeferedSubsystem(conn: Connection, name: str) -> Reply:
    return call_api(conn, SM_APIS[SmpLoadDeferedSubsystemApi], {"name": name})


def SmStartCsr(
    conn: Connection, session_id: int, command: str = "", timeout: float | None = 30.0
) -> Reply:
    body = {"session_id": session_id, "command": command}
    return call_api(conn, SM_APIS[SmpStartCsrApi], body, timeout=timeout)


def SmStopCsr(conn: Connection, session_id: int, timeout: float | None = 30.0) -> Reply:
    return call_api(conn, SM_APIS[SmpStopCsrApi], {"session_id": session_id}, timeout=timeout)


def SmTerminateForeignSession(conn: Connection, session_id: int) -> Reply:
    return call_api(conn, SM_APIS[SmpTerminateForeignSessionApi], {"session_id": session_id})


def SmCreateForeignSession(conn: Connection) -> Reply:
    return call_api(conn, SM_APIS[SmpCreateForeignSessionApi], {})
