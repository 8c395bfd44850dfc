"""The SbApiPort protocol: smss -> subsystem (``<ObjectDirectory>\\SbApiPort``).

``SB_API_MSG`` (sdk/include/reactos/subsys/sm/smmsg.h); csrss's handlers are in
``subsystems/csr/csrsrv/session.c`` (nt-spec.md §2.4). A subsystem's SB loop clamps
``ApiNumber > SbpMaxApiNumber`` to ``SbpMaxApiNumber`` and answers that with
STATUS_NOT_IMPLEMENTED.

Client stubs (smss's side, smsbapi.c) follow the table, one per API, named after the
routine; ``call_api`` checks each body against the row's request schema before sending.
"""

from __future__ import annotations

from nt.status import NtStatus
from ports.client import Connection, call_api
from ports.contract import Reply
from ports.schema import U32, Api, Int, Map, Protocol, Str

SB_PORT_NAME = "SbApiPort"
MAX_MESSAGE_LENGTH = 4096

SbpCreateSession = 0
SbpTerminateSession = 1
SbpForeignSessionComplete = 2
SbpCreateProcess = 3
SbpMaxApiNumber = 4

# SbpCreateProcess flags (smmsg.h).
SB_PROCESS_FLAGS_DEBUG = 0x1
SB_PROCESS_FLAGS_WAIT_ON_THREAD = 0x2
SB_PROCESS_FLAGS_RESERVE_1MB = 0x8
SB_PROCESS_FLAGS_SKIP_CHECKS = 0x20

# RTL_USER_PROCESS_INFORMATION as the model carries it: ids, not handles.
PROCESS_INFO = Map(
    fields={
        "pid": U32(),
        "tid": U32(optional=True, default=0),
        "image": Str(max_len=260, optional=True, default=""),
        "session": U32(optional=True, default=0),  # MuSessionId
        "subsystem_type": Int(lo=0, hi=16, optional=True, default=0),
    }
)
SESSION_ID = {"session_id": U32()}

SB_APIS = (
    Api(
        SbpCreateSession,
        "SbpCreateSession",
        {
            "session_id": U32(),
            "process": PROCESS_INFO,
            "debug_session_id": U32(optional=True, default=0),
            "debug_client_pid": U32(optional=True, default=0),
        },
        {},
        "CsrSbCreateSession: register the process as a CSR process, then resume it.",
    ),
    Api(SbpTerminateSession, "SbpTerminateSession", SESSION_ID, {}, "STATUS_NOT_IMPLEMENTED"),
    Api(
        SbpForeignSessionComplete,
        "SbpForeignSessionComplete",
        SESSION_ID,
        {},
        "STATUS_NOT_IMPLEMENTED",
    ),
    Api(
        SbpCreateProcess,
        "SbpCreateProcess",
        {
            "image_name": Str(max_len=260),
            "current_directory": Str(max_len=260, optional=True, default=""),
            "command_line": Str(max_len=2048, optional=True, default=""),
            "dll_path": Str(max_len=1024, optional=True, default=""),
            "flags": U32(optional=True, default=0),
            "debug_flags": U32(optional=True, default=0),
        },
        {"process_id": U32(), "thread_id": U32(), "subsystem_type": U32()},
        "STATUS_NOT_IMPLEMENTED",
    ),
)

SB_API_PORT = Protocol(
    title="<ObjectDirectory>\\SbApiPort (subsystem)",
    max_message_length=MAX_MESSAGE_LENGTH,
    apis=SB_APIS,
    connect_info={},
    doc="SB_API_MSG; smss connects back here after SmConnectToSm.",
    statuses=(
        (NtStatus.STATUS_PORT_CONNECTION_REFUSED, "CONNECT from any image but smss.exe"),
        (
            NtStatus.STATUS_INVALID_PARAMETER,
            "SbpCreateSession: the kernel knows no such live process",
        ),
        (
            NtStatus.STATUS_OBJECT_NAME_COLLISION,
            "SbpCreateSession: the process or the session id is already registered",
        ),
        (
            NtStatus.STATUS_NOT_IMPLEMENTED,
            "every API but SbpCreateSession, and numbers past the table",
        ),
        (NtStatus.STATUS_SUCCESS, "SbpCreateSession: otherwise NtResumeThread's status"),
    ),
)


# -- client stubs (smss -> subsystem) ----------------------------------------------------
def SbCreateSession(
    conn: Connection, session_id: int, process: dict, debug_session_id: int = 0
) -> Reply:
    """SbCreateSession: ``process`` is RTL_USER_PROCESS_INFORMATION (``PROCESS_INFO``)."""
    body = {"session_id": session_id, "process": process, "debug_session_id": debug_session_id}
    return call_api(conn, SB_APIS[SbpCreateSession], body)


def SbTerminateSession(conn: Connection, session_id: int) -> Reply:
    return call_api(conn, SB_APIS[SbpTerminateSession], {"session_id": session_id})


def SbForeignSessionComplete(conn: Connection, session_id: int) -> Reply:
    return call_api(conn, SB_APIS[SbpForeignSessionComplete], {"session_id": session_id})


def SbCreateProcess(conn: Connection, image_name: str, command_line: str = "") -> Reply:
    body = {"image_name": image_name, "command_line": command_line}
    return call_api(conn, SB_APIS[SbpCreateProcess], body)
