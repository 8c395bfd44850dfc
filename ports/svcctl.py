"""The SCM's ports: the svcctl API table (MS-SCMR opnums) and the service control pipe.

``\\RPC Control\\ntsvcs`` stands for ``ncacn_np:\\pipe\\ntsvcs`` (``ScmStartRpcServer``,
nt-spec §1.5). API numbers are the MS-SCMR opnums (svcctl.idl; [MS-SCMR] 3.1.4), names are
the server routines (``RStartServiceW``), so a trace reads like one of the real interface.
Only the W (Unicode) routines exist: the model has no ANSI callers. Handles are opaque
u32s the SCM hands out (SC_RPC_HANDLE); rights are checked against the caller's token
when the handle is opened, as ``ScmCheckAccess`` does.

The control pipe (``\\\\.\\pipe\\net\\NtControlPipe<N>``, nt-spec §4.9) is one port here,
``CONTROL_PORT``; a service process connects with its ``ServiceCurrent`` N and its pid in
the connection information (StartServiceCtrlDispatcher). The SCM cannot send on a pipe the
client reads, so the dispatcher keeps one ``ScReadControlPacket`` outstanding (the pipe
``ReadFile``); the SCM completes it with the next SCM_CONTROL_PACKET (START_OWN / START_SHARE
with the arguments, then STOP, PAUSE...), the dispatcher answers with ``ScWriteReplyPacket``
(SCM_REPLY_PACKET.dwError) and reports states through ``RSetServiceStatus`` on ntsvcs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nt.status import NtStatus

# winsvc.h / winnt.h enumerations (nt-spec §4.1): defined once in nt/winsvc.py, re-exported.
from nt.winsvc import (  # noqa: F401
    DELETE,
    INFINITE,
    SC_ACTION_NONE,
    SC_ACTION_REBOOT,
    SC_ACTION_RESTART,
    SC_ACTION_RUN_COMMAND,
    SC_ENUM_PROCESS_INFO,
    SC_GROUP_IDENTIFIER,
    SC_MANAGER_ALL_ACCESS,
    SC_MANAGER_CONNECT,
    SC_MANAGER_CREATE_SERVICE,
    SC_MANAGER_ENUMERATE_SERVICE,
    SC_MANAGER_LOCK,
    SC_MANAGER_MODIFY_BOOT_CONFIG,
    SC_MANAGER_QUERY_LOCK_STATUS,
    SC_STATUS_PROCESS_INFO,
    SERVICE_ACCEPT_HARDWAREPROFILECHANGE,
    SERVICE_ACCEPT_NETBINDCHANGE,
    SERVICE_ACCEPT_PARAMCHANGE,
    SERVICE_ACCEPT_PAUSE_CONTINUE,
    SERVICE_ACCEPT_POWEREVENT,
    SERVICE_ACCEPT_PRESHUTDOWN,
    SERVICE_ACCEPT_SESSIONCHANGE,
    SERVICE_ACCEPT_SHUTDOWN,
    SERVICE_ACCEPT_STOP,
    SERVICE_ACTIVE,
    SERVICE_ADAPTER,
    SERVICE_ALL_ACCESS,
    SERVICE_AUTO_START,
    SERVICE_BOOT_START,
    SERVICE_CHANGE_CONFIG,
    SERVICE_CONFIG_DELAYED_AUTO_START_INFO,
    SERVICE_CONFIG_DESCRIPTION,
    SERVICE_CONFIG_FAILURE_ACTIONS,
    SERVICE_CONFIG_FAILURE_ACTIONS_FLAG,
    SERVICE_CONFIG_PRESHUTDOWN_INFO,
    SERVICE_CONFIG_REQUIRED_PRIVILEGES_INFO,
    SERVICE_CONFIG_SERVICE_SID_INFO,
    SERVICE_CONTINUE_PENDING,
    SERVICE_CONTROL_CONTINUE,
    SERVICE_CONTROL_DEVICEEVENT,
    SERVICE_CONTROL_HARDWAREPROFILECHANGE,
    SERVICE_CONTROL_INTERROGATE,
    SERVICE_CONTROL_NETBINDADD,
    SERVICE_CONTROL_NETBINDDISABLE,
    SERVICE_CONTROL_NETBINDENABLE,
    SERVICE_CONTROL_NETBINDREMOVE,
    SERVICE_CONTROL_PARAMCHANGE,
    SERVICE_CONTROL_PAUSE,
    SERVICE_CONTROL_POWEREVENT,
    SERVICE_CONTROL_PRESHUTDOWN,
    SERVICE_CONTROL_SESSIONCHANGE,
    SERVICE_CONTROL_SHUTDOWN,
    SERVICE_CONTROL_START_OWN,
    SERVICE_CONTROL_START_SHARE,
    SERVICE_CONTROL_STOP,
    SERVICE_DEMAND_START,
    SERVICE_DISABLED,
    SERVICE_DRIVER,
    SERVICE_ENUMERATE_DEPENDENTS,
    SERVICE_ERROR_CRITICAL,
    SERVICE_ERROR_IGNORE,
    SERVICE_ERROR_NORMAL,
    SERVICE_ERROR_SEVERE,
    SERVICE_FILE_SYSTEM_DRIVER,
    SERVICE_INACTIVE,
    SERVICE_INTERACTIVE_PROCESS,
    SERVICE_INTERROGATE,
    SERVICE_KERNEL_DRIVER,
    SERVICE_NO_CHANGE,
    SERVICE_PAUSE_CONTINUE,
    SERVICE_PAUSE_PENDING,
    SERVICE_PAUSED,
    SERVICE_QUERY_CONFIG,
    SERVICE_QUERY_STATUS,
    SERVICE_RECOGNIZER_DRIVER,
    SERVICE_RUNNING,
    SERVICE_RUNS_IN_SYSTEM_PROCESS,
    SERVICE_START,
    SERVICE_START_PENDING,
    SERVICE_STATE_ALL,
    SERVICE_STOP,
    SERVICE_STOP_PENDING,
    SERVICE_STOPPED,
    SERVICE_SYSTEM_START,
    SERVICE_TYPE_ALL,
    SERVICE_USER_DEFINED_CONTROL,
    SERVICE_USER_SERVICE,
    SERVICE_WIN32,
    SERVICE_WIN32_OWN_PROCESS,
    SERVICE_WIN32_SHARE_PROCESS,
)
from ports.client import Connection, call_api
from ports.contract import Reply
from ports.schema import U32, Api, Bin, Bool, Float, Int, List, Map, Protocol, Str

if TYPE_CHECKING:
    from ports.runtime import LpcRuntime

SVCCTL_PORT_NAME = "\\RPC Control\\ntsvcs"
CONTROL_PORT_NAME = "\\RPC Control\\NtControlPipe"
# MS-SCMR bounds the enumeration buffers at 256 KiB (BOUNDED_DWORD_256K).
MAX_MESSAGE_LENGTH = 256 * 1024
CONTROL_MAX_MESSAGE_LENGTH = 8000  # the control pipe's out-buffer size (ScmCreateNewControlPipe)
MAX_NAME = 256  # a service name: 256 characters at most (CreateService)
MAX_PATH_LEN = 32767
MAX_ARGS = 256
SD_MAX = 64 * 1024  # a self-relative descriptor: an ACL is at most 64 KiB
ENUM_PAGE = 256  # entries per enumeration reply; more → ERROR_MORE_DATA + resume index

# --- opnums ([MS-SCMR] 3.1.4; impacket scmr.py OPNUMS agree); the routine names are the stubs' --
OP_RCloseServiceHandle = 0
OP_RControlService = 1
OP_RDeleteService = 2
OP_RLockServiceDatabase = 3
OP_RQueryServiceObjectSecurity = 4
OP_RSetServiceObjectSecurity = 5
OP_RQueryServiceStatus = 6
OP_RSetServiceStatus = 7
OP_RUnlockServiceDatabase = 8
OP_RNotifyBootConfigStatus = 9
OP_RChangeServiceConfigW = 11
OP_RCreateServiceW = 12
OP_REnumDependentServicesW = 13
OP_REnumServicesStatusW = 14
OP_ROpenSCManagerW = 15
OP_ROpenServiceW = 16
OP_RQueryServiceConfigW = 17
OP_RStartServiceW = 19
OP_RGetServiceDisplayNameW = 20
OP_RGetServiceKeyNameW = 21
OP_RChangeServiceConfig2W = 37
OP_RQueryServiceConfig2W = 39
OP_RQueryServiceStatusEx = 40
OP_REnumServicesStatusExW = 42
# The model's own (no MS-SCMR opnum): how the machine's shutdown reaches the SCM. Windows:
# csrss tells services.exe (the process RegisterServicesProcess named) with a console
# CTRL_SHUTDOWN_EVENT and waits up to WaitToKillServiceTimeout; here the shutdown's
# coordinator (winlogon) asks the SCM for each round on ntsvcs (a logged divergence).
OP_ScPreshutdownServices = 0x8000
OP_ScShutdownServices = 0x8001


SERVICE_STATUS = {
    "service_type": U32(),
    "current_state": Int(lo=1, hi=7),
    "controls_accepted": U32(),
    "win32_exit_code": U32(),
    "service_specific_exit_code": U32(),
    "check_point": U32(),
    "wait_hint": U32(),
}
SERVICE_STATUS_PROCESS = {**SERVICE_STATUS, "process_id": U32(), "service_flags": U32()}
NAME = Str(max_len=MAX_NAME)
OPT_STR = Str(max_len=MAX_PATH_LEN, optional=True)  # None → no change / not given
DEPENDENCIES = List(item=NAME, max_len=256, optional=True)
ENUM_SERVICE_STATUS = {
    "service_name": NAME,
    "display_name": Str(),
    "status": Map(fields=SERVICE_STATUS),
}
ENUM_SERVICE_STATUS_PROCESS = {
    "service_name": NAME,
    "display_name": Str(),
    "status": Map(fields=SERVICE_STATUS_PROCESS),
}
QUERY_SERVICE_CONFIG = {
    "service_type": U32(),
    "start_type": U32(),
    "error_control": U32(),
    "binary_path_name": Str(max_len=MAX_PATH_LEN),
    "load_order_group": Str(),
    "tag_id": U32(),
    "dependencies": List(item=NAME, max_len=256),
    "service_start_name": Str(),
    "display_name": Str(),
}
SC_ACTION = {"type": Int(lo=0, hi=3), "delay": U32()}
FAILURE_ACTIONS = {
    "reset_period": U32(),
    "reboot_msg": Str(max_len=4096, optional=True),
    "command": Str(max_len=MAX_PATH_LEN, optional=True),
    "actions": List(item=Map(fields=SC_ACTION), max_len=64),
}
CONFIG2_INFO = {  # SC_RPC_CONFIG_INFOW: exactly the member named by the info level is used
    "description": Str(max_len=4096, optional=True),
    "failure_actions": Map(fields=FAILURE_ACTIONS, optional=True),
    "delayed_auto_start": Bool(optional=True),
    "failure_actions_on_non_crash_failures": Bool(optional=True),
    "service_sid_type": Int(lo=0, hi=3, optional=True),
    "required_privileges": List(item=Str(max_len=64), max_len=64, optional=True),
    "preshutdown_timeout": U32(optional=True),
}
HANDLE = {"handle": U32()}
SHUTDOWN_OUTCOME = {
    "service": NAME,
    "outcome": Str(max_len=16),  # stopped | timeout (7043) | killed (at WaitToKill)
    "ms": Float(),  # from the round's start (SHUTDOWN) or from its control (PRESHUTDOWN)
}
SHUTDOWN_ROUND = {
    "services": U32(),  # how many the round sent its control to
    "ms": Float(),  # the round's length
    "late": List(item=Map(fields=SHUTDOWN_OUTCOME), max_len=ENUM_PAGE),  # not stopped in time
}
ENUM_REQUEST = {
    "scm_handle": U32(),
    "service_type": U32(),
    "service_state": Int(lo=1, hi=3),
    "resume_index": U32(optional=True, default=0),
}


def _api(number: int, name: str, request: dict, reply: dict | None = None, doc: str = "") -> Api:
    """An svcctl row: every reply carries the routine's DWORD return value as ``error``
    (a win32 error, 0 on success); the port's NTSTATUS is the RPC layer's."""
    return Api(number, name, request, {"error": U32(), **(reply or {})}, doc)


SVCCTL_APIS = (
    _api(OP_RCloseServiceHandle, "RCloseServiceHandle", HANDLE, {}, "Close an SC_RPC_HANDLE."),
    _api(
        OP_RControlService,
        "RControlService",
        {"handle": U32(), "control": U32()},
        {"status": Map(fields=SERVICE_STATUS)},
        "Send a control; the reply carries the status even for 1061/1062 (MS-SCMR).",
    ),
    _api(OP_RDeleteService, "RDeleteService", HANDLE, {}, "Mark for delete; 1072 if already."),
    _api(OP_RLockServiceDatabase, "RLockServiceDatabase", {"scm_handle": U32()}, {"lock": U32()}),
    _api(
        OP_RQueryServiceObjectSecurity,
        "RQueryServiceObjectSecurity",
        {"handle": U32(), "security_information": U32()},
        {"security_descriptor": Bin(max_len=SD_MAX)},
        "A self-relative SECURITY_DESCRIPTOR with the parts asked for (READ_CONTROL).",
    ),
    _api(
        OP_RSetServiceObjectSecurity,
        "RSetServiceObjectSecurity",
        {
            "handle": U32(),
            "security_information": U32(),
            "security_descriptor": Bin(max_len=SD_MAX),
        },
        {},
        "WRITE_DAC (DACL) / WRITE_OWNER (owner, group); stored in the Security value.",
    ),
    _api(
        OP_RQueryServiceStatus,
        "RQueryServiceStatus",
        HANDLE,
        {"status": Map(fields=SERVICE_STATUS)},
    ),
    _api(
        OP_RSetServiceStatus,
        "RSetServiceStatus",
        {"status_handle": U32(), "status": Map(fields=SERVICE_STATUS)},
        {},
        "From a service's dispatcher: its SERVICE_STATUS (ScmSetServiceStatus rules).",
    ),
    _api(OP_RUnlockServiceDatabase, "RUnlockServiceDatabase", {"lock": U32()}, {}),
    _api(
        OP_RNotifyBootConfigStatus,
        "RNotifyBootConfigStatus",
        {"machine_name": OPT_STR, "boot_acceptable": U32()},
        {},
        "TRUE accepts the boot (LastKnownGood); 1076 if already accepted.",
    ),
    _api(
        OP_RChangeServiceConfigW,
        "RChangeServiceConfigW",
        {
            "handle": U32(),
            "service_type": U32(),  # SERVICE_NO_CHANGE keeps the value
            "start_type": U32(),
            "error_control": U32(),
            "binary_path_name": OPT_STR,
            "load_order_group": OPT_STR,
            "dependencies": DEPENDENCIES,
            "service_start_name": OPT_STR,
            "password": Bin(max_len=512, optional=True),
            "display_name": OPT_STR,
        },
        {"tag_id": U32()},
    ),
    _api(
        OP_RCreateServiceW,
        "RCreateServiceW",
        {
            "scm_handle": U32(),
            "service_name": NAME,
            "display_name": OPT_STR,
            "desired_access": U32(),
            "service_type": U32(),
            "start_type": U32(),
            "error_control": U32(),
            "binary_path_name": Str(max_len=MAX_PATH_LEN),
            "load_order_group": OPT_STR,
            "dependencies": DEPENDENCIES,
            "service_start_name": OPT_STR,
            "password": Bin(max_len=512, optional=True),
        },
        {"handle": U32(), "tag_id": U32()},
        "1073 exists, 1078 duplicate display name; event 7045.",
    ),
    _api(
        OP_REnumDependentServicesW,
        "REnumDependentServicesW",
        {"handle": U32(), "service_state": Int(lo=1, hi=3)},
        {"services": List(item=Map(fields=ENUM_SERVICE_STATUS), max_len=ENUM_PAGE * 8)},
        "Dependents in reverse start order (deepest first), as sc enumdepend prints them.",
    ),
    _api(
        OP_REnumServicesStatusW,
        "REnumServicesStatusW",
        ENUM_REQUEST,
        {
            "services": List(item=Map(fields=ENUM_SERVICE_STATUS), max_len=ENUM_PAGE),
            "resume_index": U32(),
            "more_data": Bool(),
        },
    ),
    _api(
        OP_ROpenSCManagerW,
        "ROpenSCManagerW",
        {"machine_name": OPT_STR, "database_name": OPT_STR, "desired_access": U32()},
        {"handle": U32()},
        "ServicesActive only; another name → ERROR_DATABASE_DOES_NOT_EXIST 1065.",
    ),
    _api(
        OP_ROpenServiceW,
        "ROpenServiceW",
        {"scm_handle": U32(), "service_name": NAME, "desired_access": U32()},
        {"handle": U32()},
        "Case-insensitive name; 1060 if absent.",
    ),
    _api(
        OP_RQueryServiceConfigW,
        "RQueryServiceConfigW",
        HANDLE,
        {"config": Map(fields=QUERY_SERVICE_CONFIG), "standin": Bool(optional=True)},
        "`standin` (model extension, outside QUERY_SERVICE_CONFIG): the model does not "
        "implement the service's image, so it runs as a stand-in (`sc qc` says so).",
    ),
    _api(
        OP_RStartServiceW,
        "RStartServiceW",
        {"handle": U32(), "argv": List(item=Str(max_len=4096), max_len=MAX_ARGS)},
        {},
        "Returns once the start control is delivered (dependencies first, waited for).",
    ),
    _api(
        OP_RGetServiceDisplayNameW,
        "RGetServiceDisplayNameW",
        {"scm_handle": U32(), "service_name": NAME},
        {"display_name": Str()},
    ),
    _api(
        OP_RGetServiceKeyNameW,
        "RGetServiceKeyNameW",
        {"scm_handle": U32(), "display_name": Str()},
        {"service_name": NAME},
    ),
    _api(
        OP_RChangeServiceConfig2W,
        "RChangeServiceConfig2W",
        {"handle": U32(), "info_level": Int(lo=1, hi=7), "info": Map(fields=CONFIG2_INFO)},
        {},
    ),
    _api(
        OP_RQueryServiceConfig2W,
        "RQueryServiceConfig2W",
        {"handle": U32(), "info_level": Int(lo=1, hi=7)},
        {"info": Map(fields=CONFIG2_INFO)},
    ),
    _api(
        OP_RQueryServiceStatusEx,
        "RQueryServiceStatusEx",
        {"handle": U32(), "info_level": Int(lo=0, hi=0)},
        {"status": Map(fields=SERVICE_STATUS_PROCESS)},
    ),
    _api(
        OP_REnumServicesStatusExW,
        "REnumServicesStatusExW",
        {
            **ENUM_REQUEST,
            "info_level": Int(lo=0, hi=0),
            "group_name": Str(optional=True),  # None: every service; "": ungrouped only
        },
        {
            "services": List(item=Map(fields=ENUM_SERVICE_STATUS_PROCESS), max_len=ENUM_PAGE),
            "resume_index": U32(),
            "more_data": Bool(),
        },
    ),
)

SVCCTL_APIS += (
    _api(
        OP_ScPreshutdownServices,
        "ScPreshutdownServices",
        {},
        SHUTDOWN_ROUND,
        "The model's own: SERVICE_CONTROL_PRESHUTDOWN in PreshutdownOrder, each service "
        "waited for up to its PreshutdownTimeout (7043 if it did not stop). SYSTEM only "
        "(5); from now on the other routines answer 1115. Replies when the round is over.",
    ),
    _api(
        OP_ScShutdownServices,
        "ScShutdownServices",
        {},
        SHUTDOWN_ROUND,
        "The model's own: SERVICE_CONTROL_SHUTDOWN to every running service that accepts "
        "it; those still running after WaitToKillServiceTimeout are terminated. SYSTEM "
        "only (5). Replies when the round is over.",
    ),
)

SVCCTL_PORT = Protocol(
    title="\\RPC Control\\ntsvcs (services.exe, MS-SCMR svcctl)",
    max_message_length=MAX_MESSAGE_LENGTH,
    apis=SVCCTL_APIS,
    connect_info={},
    doc="Every reply body carries the routine's win32 error as ``error``; the NTSTATUS is the port's.",
)

# --- the control pipe (SCM_CONTROL_PACKET / SCM_REPLY_PACKET, services.h) ----------------
OP_ScReadControlPacket = 0
OP_ScWriteReplyPacket = 1

CONTROL_CONNECT_INFO = {"service_current": U32(), "pid": U32()}
SCM_CONTROL_PACKET = {
    "sequence": U32(),
    "control": U32(),
    "service_name": Str(max_len=MAX_NAME),  # "" with STOP: the dispatcher itself ends
    "status_handle": U32(),  # hServiceStatus for RSetServiceStatus
    "arguments": List(item=Str(max_len=4096), max_len=MAX_ARGS),
}
CONTROL_APIS = (
    Api(
        OP_ScReadControlPacket,
        "ScReadControlPacket",
        {},
        SCM_CONTROL_PACKET,
        "Pended until the SCM has a control for this process (the dispatcher's ReadFile).",
    ),
    Api(
        OP_ScWriteReplyPacket,
        "ScWriteReplyPacket",
        {"sequence": U32(), "error": U32()},
        {},
        "The handler's answer (SCM_REPLY_PACKET.dwError) to packet ``sequence``.",
    ),
)
CONTROL_PORT = Protocol(
    title="\\RPC Control\\NtControlPipe (service control pipe)",
    max_message_length=CONTROL_MAX_MESSAGE_LENGTH,
    apis=CONTROL_APIS,
    connect_info=CONTROL_CONNECT_INFO,
    doc="One port for every NtControlPipe<N>: N travels in the connection information; "
    "a ServiceCurrent the SCM is not waiting for is refused.",
    statuses=(
        (
            NtStatus.STATUS_PORT_DISCONNECTED,
            "ScReadControlPacket on a connection the SCM has dropped",
        ),
        (NtStatus.STATUS_INVALID_PARAMETER, "a second ScReadControlPacket while one is pending"),
    ),
)


# --- client stubs (advapi32's side), one per routine, each through call_api -------------

_BY_NAME = {api.name: api for api in SVCCTL_APIS}
_CONTROL_BY_NAME = {api.name: api for api in CONTROL_APIS}
NO_CHANGE_CONFIG = {
    "service_type": SERVICE_NO_CHANGE,
    "start_type": SERVICE_NO_CHANGE,
    "error_control": SERVICE_NO_CHANGE,
    "binary_path_name": None,
    "load_order_group": None,
    "dependencies": None,
    "service_start_name": None,
    "password": None,
    "display_name": None,
}


def _call(conn: Connection, name: str, body: dict, timeout: float | None = 30.0) -> Reply:
    """A NULL pointer argument is an absent key (the schemas' optional fields)."""
    present = {k: v for k, v in body.items() if v is not None}
    return call_api(conn, _BY_NAME[name], present, timeout)


def ScConnectToScm(lpc: LpcRuntime) -> Connection:
    """Bind to ``\\RPC Control\\ntsvcs`` (OpenSCManager's RPC binding)."""
    return lpc.connect_port(SVCCTL_PORT_NAME, {})


def ScConnectControlPipe(lpc: LpcRuntime, service_current: int, pid: int) -> Connection:
    """StartServiceCtrlDispatcher's CreateFile of ``\\\\.\\pipe\\net\\NtControlPipe<N>``."""
    info = {"service_current": service_current, "pid": pid}
    return lpc.connect_port(CONTROL_PORT_NAME, info)


def ROpenSCManagerW(
    conn: Connection,
    desired_access: int = SC_MANAGER_CONNECT,
    database_name: str | None = None,
    timeout: float | None = 30.0,
) -> Reply:
    body = {"machine_name": None, "database_name": database_name, "desired_access": desired_access}
    return _call(conn, "ROpenSCManagerW", body, timeout)


def ROpenServiceW(
    conn: Connection, scm_handle: int, name: str, desired_access: int, timeout: float | None = 30.0
) -> Reply:
    body = {"scm_handle": scm_handle, "service_name": name, "desired_access": desired_access}
    return _call(conn, "ROpenServiceW", body, timeout)


def RCloseServiceHandle(conn: Connection, handle: int) -> Reply:
    return _call(conn, "RCloseServiceHandle", {"handle": handle})


def RStartServiceW(
    conn: Connection, handle: int, argv: list[str] | None = None, timeout: float | None = 300.0
) -> Reply:
    return _call(conn, "RStartServiceW", {"handle": handle, "argv": argv or []}, timeout)


def RControlService(
    conn: Connection, handle: int, control: int, timeout: float | None = 300.0
) -> Reply:
    return _call(conn, "RControlService", {"handle": handle, "control": control}, timeout)


def RDeleteService(conn: Connection, handle: int) -> Reply:
    return _call(conn, "RDeleteService", {"handle": handle})


def RQueryServiceObjectSecurity(conn: Connection, handle: int, security_information: int) -> Reply:
    return _call(
        conn,
        "RQueryServiceObjectSecurity",
        {"handle": handle, "security_information": security_information},
    )


def RSetServiceObjectSecurity(
    conn: Connection, handle: int, security_information: int, descriptor: bytes
) -> Reply:
    body = {
        "handle": handle,
        "security_information": security_information,
        "security_descriptor": descriptor,
    }
    return _call(conn, "RSetServiceObjectSecurity", body)


def RQueryServiceStatus(conn: Connection, handle: int) -> Reply:
    return _call(conn, "RQueryServiceStatus", {"handle": handle})


def RQueryServiceStatusEx(conn: Connection, handle: int) -> Reply:
    body = {"handle": handle, "info_level": SC_STATUS_PROCESS_INFO}
    return _call(conn, "RQueryServiceStatusEx", body)


def RQueryServiceConfigW(conn: Connection, handle: int, timeout: float | None = 30.0) -> Reply:
    return _call(conn, "RQueryServiceConfigW", {"handle": handle}, timeout)


def RQueryServiceConfig2W(conn: Connection, handle: int, info_level: int) -> Reply:
    return _call(conn, "RQueryServiceConfig2W", {"handle": handle, "info_level": info_level})


def RChangeServiceConfigW(conn: Connection, handle: int, **changes: object) -> Reply:
    """Fields not given keep their value (SERVICE_NO_CHANGE / NULL)."""
    return _call(conn, "RChangeServiceConfigW", {**NO_CHANGE_CONFIG, **changes, "handle": handle})


def RChangeServiceConfig2W(conn: Connection, handle: int, info_level: int, info: dict) -> Reply:
    body = {"handle": handle, "info_level": info_level, "info": info}
    return _call(conn, "RChangeServiceConfig2W", body)


def RCreateServiceW(
    conn: Connection, scm_handle: int, name: str, binary_path_name: str, **config: object
) -> Reply:
    body = {
        "scm_handle": scm_handle,
        "service_name": name,
        "display_name": None,
        "desired_access": SERVICE_ALL_ACCESS,
        "service_type": SERVICE_WIN32_OWN_PROCESS,
        "start_type": SERVICE_DEMAND_START,
        "error_control": SERVICE_ERROR_NORMAL,
        "binary_path_name": binary_path_name,
        "load_order_group": None,
        "dependencies": None,
        "service_start_name": None,
        "password": None,
        **config,
    }
    return _call(conn, "RCreateServiceW", body)


def REnumDependentServicesW(
    conn: Connection, handle: int, service_state: int = SERVICE_STATE_ALL
) -> Reply:
    body = {"handle": handle, "service_state": service_state}
    return _call(conn, "REnumDependentServicesW", body)


def REnumServicesStatusExW(
    conn: Connection,
    scm_handle: int,
    service_type: int = SERVICE_WIN32,
    service_state: int = SERVICE_ACTIVE,
    resume_index: int = 0,
    group_name: str | None = None,
    timeout: float | None = 30.0,
) -> Reply:
    body = {
        "scm_handle": scm_handle,
        "service_type": service_type,
        "service_state": service_state,
        "resume_index": resume_index,
        "info_level": SC_ENUM_PROCESS_INFO,
        "group_name": group_name,
    }
    return _call(conn, "REnumServicesStatusExW", body, timeout)


def RSetServiceStatus(conn: Connection, status_handle: int, status: dict) -> Reply:
    body = {"status_handle": status_handle, "status": status}
    return _call(conn, "RSetServiceStatus", body)


def ScReadControlPacket(conn: Connection) -> Reply:
    """The dispatcher's ReadFile on its pipe: no deadline (the SCM answers when it has one)."""
    return call_api(conn, _CONTROL_BY_NAME["ScReadControlPacket"], {}, None)


def ScWriteReplyPacket(conn: Connection, sequence: int, error: int) -> Reply:
    body = {"sequence": sequence, "error": error}
    return call_api(conn, _CONTROL_BY_NAME["ScWriteReplyPacket"], body)


def RNotifyBootConfigStatus(conn: Connection, boot_acceptable: bool) -> Reply:
    """NotifyBootConfigStatus: TRUE saves LastKnownGood, FALSE restarts into it."""
    body = {"machine_name": None, "boot_acceptable": int(boot_acceptable)}
    return _call(conn, "RNotifyBootConfigStatus", body)


def ScPreshutdownServices(conn: Connection, timeout: float | None = 900.0) -> Reply:
    """The shutdown's PRESHUTDOWN round (bounded by the services' scaled timeouts)."""
    return _call(conn, "ScPreshutdownServices", {}, timeout)


def ScShutdownServices(conn: Connection, timeout: float | None = 900.0) -> Reply:
    """The shutdown's SHUTDOWN round (bounded by WaitToKillServiceTimeout, scaled)."""
    return _call(conn, "ScShutdownServices", {}, timeout)
