"""The SmApiPort protocol: clients and subsystems -> smss (``\\SmApiPort``).

``SM_API_MSG`` and ``SMSRV_API_NUMBER`` (sdk/include/reactos/subsys/sm/smmsg.h), handlers in
``base/system/smss/smloop.c`` (nt-spec.md §2.3). The connection information is
``SB_CONNECTION_INFO``: a subsystem gives its image type and its SbApiPort name; a plain
client gives type 0 (IMAGE_SUBSYSTEM_UNKNOWN) and no name.
"""

from __future__ import annotations

from ports.schema import U32, Api, Bool, Int, Map, Protocol, Str

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
        "Create a session: its csrss, then the initial command.",
    ),
    Api(SmpStopCsrApi, "SmpStopCsrApi", SESSION_ID, {}, "STATUS_NOT_IMPLEMENTED"),
)

SM_API_PORT = Protocol(
    title="\\SmApiPort (smss)",
    max_message_length=MAX_MESSAGE_LENGTH,
    apis=SM_APIS,
    connect_info=CONNECT_INFO,
    doc="SM_API_MSG; ApiNumber >= SmpMaxApiNumber is answered STATUS_NOT_IMPLEMENTED.",
)
