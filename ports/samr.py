r"""The SAM server's port ``\RPC Control\samss lpc`` (lsass's samsrv, MS-SAMR over ALPC).

Windows reaches the SAM through RPC (ncalrpc ``samss lpc``, ncacn_np ``\pipe\samr``); the
model carries the same calls as LPC requests whose API numbers are the MS-SAMR opnums.
The handle dance (SamrConnect, SamrOpenDomain, SamrOpenUser) is folded into each call:
the account domain is implied and users are named, not opened. Calls that change
anything need the caller's token to hold BUILTIN\Administrators or be SYSTEM
(STATUS_ACCESS_DENIED otherwise); the token comes from the kernel's process record,
never from the body.

Stubs carry the netapi32 names (NetUserAdd, NetUserEnum, ...) that ``net user`` and
``net accounts`` call on top of these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from nt.status import NtStatus as S
from ports.client import Connection, call_api
from ports.contract import Reply
from ports.schema import U32, Api, Bin, Bool, Int, List, Map, Nil, Nullable, OneOf, Protocol, Str

if TYPE_CHECKING:
    from ports.runtime import LpcRuntime

SAMR_PORT_NAME: Final = "\\RPC Control\\samss lpc"
MAX_MESSAGE_LENGTH: Final = 64 << 10

# MS-SAMR opnums
SamrSetInformationDomain: Final = 9
SamrEnumerateUsersInDomain: Final = 13
SamrDeleteUser: Final = 35
SamrQueryInformationDomain2: Final = 46
SamrQueryInformationUser2: Final = 47
SamrCreateUser2InDomain: Final = 50
SamrSetInformationUser2: Final = 58

NAME = Str(max_len=256)
PASSWORD = Bin(max_len=1024, doc="secret: never logged")
UNCHANGED = -1  # a policy or flag field left as it is

USER_SUMMARY = Map(
    fields={
        "name": NAME,
        "rid": U32(),
        "sid": Str(max_len=200),
        "enabled": Bool(),
        "locked": Bool(),
        "admin": Bool(),
    }
)
USER = Map(
    fields={
        "name": NAME,
        "full_name": Str(max_len=256),
        "comment": Str(max_len=256),
        "rid": U32(),
        "sid": Str(max_len=200),
        "enabled": Bool(),
        "locked": Bool(),
        "groups": List(item=Str(max_len=200), max_len=64),
        "password_last_set": Str(max_len=64),
        "password_must_change": Bool(),
        "account_expires": Str(max_len=64),
        "last_logon": Str(max_len=64),
        "logon_count": U32(),
        "bad_password_count": U32(),
        "last_bad_password": Str(max_len=64),
        "lockout_time": Str(max_len=64),
    }
)
DOMAIN = Map(
    fields={
        "domain_sid": Str(max_len=200),
        "lockout_threshold": U32(),
        "lockout_duration": U32(),
        "lockout_window": U32(),
        "allow_administrator_lockout": Bool(),
        "users": U32(),
        "next_rid": U32(),
    }
)
POLICY_FIELD = Int(lo=UNCHANGED, hi=99999, optional=True, default=UNCHANGED)
FLAG_FIELD = Int(lo=UNCHANGED, hi=1, optional=True, default=UNCHANGED)

SAMR_APIS = (
    Api(
        SamrSetInformationDomain,
        "SamrSetInformationDomain",
        {
            "lockout_threshold": Int(lo=UNCHANGED, hi=999, optional=True, default=UNCHANGED),
            "lockout_duration": POLICY_FIELD,
            "lockout_window": POLICY_FIELD,
        },
        {},
        "DomainLockoutInformation (minutes); duration ≥ window, window ≥ 1.",
    ),
    Api(
        SamrEnumerateUsersInDomain,
        "SamrEnumerateUsersInDomain",
        {},
        {"users": List(item=USER_SUMMARY, max_len=4096)},
        "Every account of the account domain.",
    ),
    Api(SamrDeleteUser, "SamrDeleteUser", {"name": NAME}, {}, "Delete an account."),
    Api(
        SamrQueryInformationDomain2,
        "SamrQueryInformationDomain2",
        {},
        {"domain": DOMAIN},
        "The account domain and its lockout policy.",
    ),
    Api(
        SamrQueryInformationUser2,
        "SamrQueryInformationUser2",
        {"name": NAME},
        {"user": USER},
        "UserAllInformation, less the password hash.",
    ),
    Api(
        SamrCreateUser2InDomain,
        "SamrCreateUser2InDomain",
        {
            "name": NAME,
            "password": Nullable(PASSWORD),
            "admin": Bool(optional=True, default=False),
            "full_name": Str(max_len=256, optional=True, default=""),
        },
        {"rid": U32(), "sid": Str(max_len=200)},
        "Create an enabled user (Users, or Administrators with `admin`); RIDs from 1000.",
    ),
    Api(
        SamrSetInformationUser2,
        "SamrSetInformationUser2",
        {
            "name": NAME,
            "password": Nullable(PASSWORD),
            "enabled": FLAG_FIELD,
            "admin": FLAG_FIELD,
            "unlock": Bool(optional=True, default=False),
            "password_must_change": FLAG_FIELD,
            "pin": OneOf(choices=(PASSWORD, Nil()), optional=True, default=None),
        },
        {},
        "Reset the password, enable/disable, unlock, join or leave Administrators; `pin` "
        "sets the PIN the PIN credential provider checks (4-127 digits; b'' removes it).",
    ),
)

SAMR_PORT = Protocol(
    title="\\RPC Control\\samss lpc (lsass SAM server)",
    max_message_length=MAX_MESSAGE_LENGTH,
    apis=SAMR_APIS,
    doc="MS-SAMR opnums as API numbers; the account domain is implied.",
    statuses=(
        (S.STATUS_ACCESS_DENIED, "a change asked by a caller neither SYSTEM nor an administrator"),
        (S.STATUS_NO_SUCH_USER, "no account of that name"),
        (S.STATUS_USER_EXISTS, "an account of that name exists"),
        (S.STATUS_INVALID_ACCOUNT_NAME, "a name with characters SAM refuses"),
        (S.STATUS_PASSWORD_RESTRICTION, "a password with a NUL or beyond 256 characters"),
        (S.STATUS_SPECIAL_ACCOUNT, "deleting a built-in account"),
        (S.STATUS_LAST_ADMIN, "removing the last enabled administrator"),
        (S.STATUS_INVALID_PARAMETER, "a lockout policy Windows refuses (window > duration)"),
        (S.STATUS_INSUFFICIENT_RESOURCES, "too many hashes queued past their deadline"),
    ),
)


# -- client stubs (netapi32 over samlib) -----------------------------------------------------
def SamConnect(lpc: LpcRuntime) -> Connection:
    return lpc.connect_port(SAMR_PORT_NAME, {})


def NetUserAdd(
    conn: Connection, name: str, password: bytes | None, *, admin: bool = False, full_name: str = ""
) -> Reply:
    body = {"name": name, "password": password, "admin": admin, "full_name": full_name}
    return call_api(conn, SAMR_APIS[5], body, 60.0)


def NetUserEnum(conn: Connection) -> Reply:
    return call_api(conn, SAMR_APIS[1], {})


def NetUserDel(conn: Connection, name: str) -> Reply:
    return call_api(conn, SAMR_APIS[2], {"name": name})


def NetUserGetInfo(conn: Connection, name: str) -> Reply:
    return call_api(conn, SAMR_APIS[4], {"name": name})


def NetUserSetInfo(
    conn: Connection,
    name: str,
    *,
    password: bytes | None = None,
    enabled: int = UNCHANGED,
    admin: int = UNCHANGED,
    unlock: bool = False,
    password_must_change: int = UNCHANGED,
    pin: bytes | None = None,
) -> Reply:
    body = {
        "pin": pin,
        "name": name,
        "password": password,
        "enabled": enabled,
        "admin": admin,
        "unlock": unlock,
        "password_must_change": password_must_change,
    }
    return call_api(conn, SAMR_APIS[6], body, 60.0)


def NetUserModalsGet(conn: Connection) -> Reply:
    return call_api(conn, SAMR_APIS[3], {})


def NetUserModalsSet(
    conn: Connection,
    *,
    lockout_threshold: int = UNCHANGED,
    lockout_duration: int = UNCHANGED,
    lockout_window: int = UNCHANGED,
) -> Reply:
    body = {
        "lockout_threshold": lockout_threshold,
        "lockout_duration": lockout_duration,
        "lockout_window": lockout_window,
    }
    return call_api(conn, SAMR_APIS[0], body)
