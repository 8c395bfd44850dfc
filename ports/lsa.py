r"""The LSA authentication port ``\LsaAuthenticationPort`` (lsass, nt-spec §5.1).

``LSA_API_NUMBER`` of ReactOS's ``sdk/include/reactos/subsys/lsass/lsass.h``, handled by
``AuthPortThreadRoutine`` (``dll/win32/lsasrv/authport.c``). The connection information is
``LSA_CONNECTION_INFO``: a logon process names itself (LsaRegisterLogonProcess, which
needs SeTcbPrivilege: STATUS_PORT_CONNECTION_REFUSED otherwise, reliability-security §6.6
L10); LsaConnectUntrusted names nobody. lsass answers with ``OperationalMode``
0x43218765 and whether it took the caller as trusted.

A password travels only in a request body (``Bin``, never logged: the port logs schema
failures by field path, never by value). Field caps on names and passwords are generous
on the wire on purpose: lsass applies the real caps itself so an overlong credential is
STATUS_LOGON_FAILURE (SubStatus STATUS_INVALID_PARAMETER), as reliability-security §4.2
says, not a port-level refusal.

Client stubs follow the table, named after the secur32 routines (``lsalpc.c``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from nt.status import NtStatus as S
from ports.client import Connection, call_api
from ports.contract import Reply
from ports.schema import U32, U64, Api, Bin, Bool, Int, List, Map, Protocol, Str

if TYPE_CHECKING:
    from ports.runtime import LpcRuntime

LSA_PORT_NAME: Final = "\\LsaAuthenticationPort"
MAX_MESSAGE_LENGTH: Final = 2 << 20  # room for a 1 MiB hostile password, refused by lsass
LSA_OPERATIONAL_MODE: Final = 0x43218765
LSA_AUTHENTICATION_INITIALIZED: Final = "\\SECURITY\\LSA_AUTHENTICATION_INITIALIZED"
LSA_RPC_SERVER_ACTIVE: Final = "\\BaseNamedObjects\\LSA_RPC_SERVER_ACTIVE"

# LSA_API_NUMBER
LSASS_REQUEST_CALL_AUTHENTICATION_PACKAGE: Final = 0
LSASS_REQUEST_DEREGISTER_LOGON_PROCESS: Final = 1
LSASS_REQUEST_LOGON_USER: Final = 2
LSASS_REQUEST_LOOKUP_AUTHENTICATION_PACKAGE: Final = 3
LSASS_REQUEST_ENUM_LOGON_SESSIONS: Final = 4
LSASS_REQUEST_GET_LOGON_SESSION_DATA: Final = 5
LSASS_REQUEST_POLICY_CHANGE_NOTIFY: Final = 6
LSASS_REQUEST_MAXIMUM: Final = 7

MSV1_0_PACKAGE_NAME: Final = "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0"
NEGOTIATE_PACKAGE_NAME: Final = "Negotiate"
# MSV1_0_PROTOCOL_MESSAGE_TYPE (ntsecapi.h)
MsV1_0ChangePassword: Final = 5

WIRE_NAME_MAX: Final = 4096  # lsass itself caps user names at 256 characters
PASSWORD = Bin(max_len=(1 << 20) + 4096, doc="secret: never logged")

CONNECT_INFO = {
    "logon_process_name": Str(max_len=127, optional=True, default=""),
    "create_context": Int(lo=0, hi=1, optional=True, default=1),
}

TOKEN = Map(
    fields={
        "user": Str(max_len=600),
        "sid": Str(max_len=200),
        "groups": List(item=Str(max_len=200), max_len=64),
        "deny_only": List(item=Str(max_len=200), max_len=64),
        "privileges": List(item=Str(max_len=64), max_len=64),
        "logon_id": U64(),
        "logon_type": U32(),
        "integrity": Str(max_len=32),
        "elevation_type": Str(max_len=16),
        "auth_package": Str(max_len=64),
    }
)
SESSION = Map(
    fields={
        "logon_id": U64(),
        "user": Str(max_len=256),
        "domain": Str(max_len=256),
        "sid": Str(max_len=200),
        "logon_type": U32(),
        "auth_package": Str(max_len=64),
        "logon_time": Str(max_len=64),
        "session": U32(),
        "logon_server": Str(max_len=256),
    }
)
PROFILE = Map(
    fields={
        "logon_count": U32(),
        "bad_password_count": U32(),
        "password_last_set": Str(max_len=64),
        "last_logon": Str(max_len=64),
    }
)

LSA_APIS = (
    Api(
        LSASS_REQUEST_CALL_AUTHENTICATION_PACKAGE,
        "LsapCallAuthenticationPackage",
        {
            "auth_package": U32(),
            "message_type": U32(),
            "domain": Str(max_len=WIRE_NAME_MAX, optional=True, default=""),
            "account": Str(max_len=WIRE_NAME_MAX),
            "old_password": PASSWORD,
            "new_password": PASSWORD,
        },
        {"protocol_status": U32()},
        "MSV1_0 MsV1_0ChangePassword: the account's own old password, then the new one.",
    ),
    Api(
        LSASS_REQUEST_DEREGISTER_LOGON_PROCESS,
        "LsapDeregisterLogonProcess",
        {},
        {},
        "Replied before processing; then the connection's context is dropped.",
    ),
    Api(
        LSASS_REQUEST_LOGON_USER,
        "LsapLogonUser",
        {
            "origin": Str(max_len=256, optional=True, default=""),
            "logon_type": Int(lo=2, hi=11),
            "auth_package": U32(),
            "domain": Str(max_len=WIRE_NAME_MAX, optional=True, default=""),
            "user": Str(max_len=WIRE_NAME_MAX),
            "password": PASSWORD,
            "source": Str(max_len=8, optional=True, default="User32  "),
            "session": U32(optional=True, default=0),
            "assign_pid": U32(optional=True, default=0),
        },
        {"logon_id": U64(), "token": TOKEN, "profile": PROFILE},
        "Authenticate; a new logon session and its token. Bad user or password: "
        "STATUS_LOGON_FAILURE alone. `assign_pid`: a child of the caller, not yet attached, "
        "that gets the token as its primary token (CreateProcessAsUser; ntctl --as).",
    ),
    Api(
        LSASS_REQUEST_LOOKUP_AUTHENTICATION_PACKAGE,
        "LsapLookupAuthenticationPackage",
        {"package_name": Str(max_len=127)},
        {"auth_package": U32()},
        "MSV1_0 (0) and Negotiate (1).",
    ),
    Api(
        LSASS_REQUEST_ENUM_LOGON_SESSIONS,
        "LsapEnumLogonSessions",
        {},
        {"sessions": List(item=U64(), max_len=4096)},
        "The LUIDs of every logon session.",
    ),
    Api(
        LSASS_REQUEST_GET_LOGON_SESSION_DATA,
        "LsapGetLogonSessionData",
        {"logon_id": U64()},
        {"session": SESSION},
        "SECURITY_LOGON_SESSION_DATA of one session.",
    ),
    Api(
        LSASS_REQUEST_POLICY_CHANGE_NOTIFY,
        "LsapPolicyChangeNotify",
        {"notify_class": U32(), "register": Bool()},
        {},
        "Register or unregister for a policy change class.",
    ),
)

LSA_AUTH_PORT = Protocol(
    title="\\LsaAuthenticationPort (lsass)",
    max_message_length=MAX_MESSAGE_LENGTH,
    apis=LSA_APIS,
    connect_info=CONNECT_INFO,
    doc="LSA_API_MSG; an unknown request number is STATUS_INVALID_SYSTEM_SERVICE (authport.c).",
    statuses=(
        (S.STATUS_INVALID_SYSTEM_SERVICE, "a request number outside the table"),
        (
            S.STATUS_PORT_CONNECTION_REFUSED,
            "CONNECT naming a logon process from a caller without SeTcbPrivilege",
        ),
        (S.STATUS_NO_SUCH_PACKAGE, "an authentication package lsass does not have"),
        (S.STATUS_NOT_LOGON_PROCESS, "an untrusted caller asking for a non-network logon"),
        (S.STATUS_LOGON_FAILURE, "unknown user, wrong password, or an overlong credential"),
        (
            S.STATUS_NO_SUCH_USER,
            "never to the caller: 4625's SubStatus for an unknown user (the caller sees "
            "STATUS_LOGON_FAILURE)",
        ),
        (S.STATUS_ACCOUNT_LOCKED_OUT, "the account is locked out (no hash computed)"),
        (
            S.STATUS_LOGON_TYPE_NOT_GRANTED,
            "a right password for a Service or Batch logon the policy does not grant "
            "(SeServiceLogonRight, SeBatchLogonRight)",
        ),
        (S.STATUS_ACCOUNT_DISABLED, "right password, disabled account"),
        (S.STATUS_ACCOUNT_EXPIRED, "right password, expired account"),
        (S.STATUS_PASSWORD_EXPIRED, "right password, expired password"),
        (S.STATUS_PASSWORD_MUST_CHANGE, "right password, must change at next logon"),
        (S.STATUS_WRONG_PASSWORD, "change-password: the old password is wrong"),
        (S.STATUS_PASSWORD_RESTRICTION, "change-password: the new password is refused"),
        (S.STATUS_INSUFFICIENT_RESOURCES, "too many verifies queued past their deadline"),
        (S.STATUS_NO_SUCH_LOGON_SESSION, "no logon session with that id"),
        (S.STATUS_INVALID_PARAMETER, "a logon type lsass does not serve"),
        (S.STATUS_ACCESS_DENIED, "`assign_pid` is not a child of the caller"),
    ),
)


# -- client stubs (secur32 lsalpc.c) ---------------------------------------------------------
def LsaRegisterLogonProcess(lpc: LpcRuntime, name: str) -> Connection:
    """CONNECT as a trusted logon process; refused without SeTcbPrivilege."""
    return lpc.connect_port(LSA_PORT_NAME, {"logon_process_name": name, "create_context": 1})


def LsaConnectUntrusted(lpc: LpcRuntime) -> Connection:
    return lpc.connect_port(LSA_PORT_NAME, {"create_context": 1})


def LsaLookupAuthenticationPackage(conn: Connection, name: str) -> Reply:
    return call_api(
        conn, LSA_APIS[LSASS_REQUEST_LOOKUP_AUTHENTICATION_PACKAGE], {"package_name": name}
    )


def LsaLogonUser(
    conn: Connection,
    user: str,
    password: bytes,
    logon_type: int,
    *,
    auth_package: int = 0,
    domain: str = "",
    origin: str = "",
    session: int = 0,
    assign_pid: int = 0,
    timeout: float | None = 30.0,
) -> Reply:
    body = {
        "assign_pid": assign_pid,
        "origin": origin,
        "logon_type": logon_type,
        "auth_package": auth_package,
        "domain": domain,
        "user": user,
        "password": bytes(password),
        "session": session,
    }
    return call_api(conn, LSA_APIS[LSASS_REQUEST_LOGON_USER], body, timeout)


def LsaCallAuthenticationPackage(
    conn: Connection,
    account: str,
    old_password: bytes,
    new_password: bytes,
    *,
    auth_package: int = 0,
    message_type: int = MsV1_0ChangePassword,
    domain: str = "",
) -> Reply:
    body = {
        "auth_package": auth_package,
        "message_type": message_type,
        "domain": domain,
        "account": account,
        "old_password": bytes(old_password),
        "new_password": bytes(new_password),
    }
    return call_api(conn, LSA_APIS[LSASS_REQUEST_CALL_AUTHENTICATION_PACKAGE], body)


def LsaDeregisterLogonProcess(conn: Connection) -> Reply:
    return call_api(conn, LSA_APIS[LSASS_REQUEST_DEREGISTER_LOGON_PROCESS], {})


def LsaEnumerateLogonSessions(conn: Connection) -> Reply:
    return call_api(conn, LSA_APIS[LSASS_REQUEST_ENUM_LOGON_SESSIONS], {})


def LsaGetLogonSessionData(conn: Connection, logon_id: int) -> Reply:
    return call_api(conn, LSA_APIS[LSASS_REQUEST_GET_LOGON_SESSION_DATA], {"logon_id": logon_id})


def LsaRegisterPolicyChangeNotification(conn: Connection, notify_class: int) -> Reply:
    return call_api(
        conn,
        LSA_APIS[LSASS_REQUEST_POLICY_CHANGE_NOTIFY],
        {"notify_class": notify_class, "register": True},
    )
