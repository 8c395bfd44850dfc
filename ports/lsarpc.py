r"""The LSA policy port ``\RPC Control\lsarpc`` (lsass's lsarpc interface, MS-LSAD opnums).

Two parts of the LSA policy database a user of the model meets:
- account rights (LsarEnumerateAccountRights / LsarAddAccountRights /
  LsarRemoveAccountRights): the privileges (``SeShutdownPrivilege``...) and logon rights
  (``SeServiceLogonRight``...) held by a SID, the User Rights Assignment of secpol.msc that
  ``ntrights`` edits; lsass builds every token's privileges from them;
- private data (LsarStorePrivateData / LsarRetrievePrivateData): LSA secrets such as
  ``_SC_<service>``, a service account's password that the SCM stores at ``sc config
  obj= password=`` and reads back to log the service on.
As for the SAM port, the policy handle (LsarOpenPolicy2) is folded into each call. Every
call needs an administrator or SYSTEM; retrieving a secret needs SYSTEM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from nt.status import NtStatus as S
from ports.client import Connection, call_api
from ports.contract import Reply
from ports.schema import Api, Bin, Bool, List, Nullable, Protocol, Str

if TYPE_CHECKING:
    from ports.runtime import LpcRuntime

LSARPC_PORT_NAME: Final = "\\RPC Control\\lsarpc"
MAX_MESSAGE_LENGTH: Final = 16 << 10

# MS-LSAD opnums
LsarEnumerateAccountRights: Final = 36
LsarAddAccountRights: Final = 37
LsarRemoveAccountRights: Final = 38
LsarStorePrivateData: Final = 42
LsarRetrievePrivateData: Final = 43

SID = Str(max_len=200)
RIGHT = Str(max_len=64)
RIGHTS = List(item=RIGHT, max_len=64)
SECRET_NAME = Str(max_len=300)
SECRET = Bin(max_len=1024, doc="secret: never logged")

LSARPC_APIS = (
    Api(
        LsarEnumerateAccountRights,
        "LsarEnumerateAccountRights",
        {"account_sid": SID},
        {"rights": RIGHTS},
        "The privileges and logon rights held by the SID itself (not through its groups).",
    ),
    Api(
        LsarAddAccountRights,
        "LsarAddAccountRights",
        {"account_sid": SID, "rights": RIGHTS},
        {},
        "Grant; a name that is no privilege or logon right is STATUS_NO_SUCH_PRIVILEGE.",
    ),
    Api(
        LsarRemoveAccountRights,
        "LsarRemoveAccountRights",
        {"account_sid": SID, "all_rights": Bool(optional=True, default=False), "rights": RIGHTS},
        {},
        "Revoke the named rights (or all of them).",
    ),
    Api(
        LsarStorePrivateData,
        "LsarStorePrivateData",
        {"key_name": SECRET_NAME, "data": Nullable(SECRET)},
        {},
        "Store (null: delete) a secret, sealed under the LSA key in the SECURITY hive.",
    ),
    Api(
        LsarRetrievePrivateData,
        "LsarRetrievePrivateData",
        {"key_name": SECRET_NAME},
        {"data": SECRET},
        "SYSTEM only; STATUS_OBJECT_NAME_NOT_FOUND if there is no such secret.",
    ),
)

LSARPC_PORT = Protocol(
    title="\\RPC Control\\lsarpc (lsass LSA policy: rights and secrets)",
    max_message_length=MAX_MESSAGE_LENGTH,
    apis=LSARPC_APIS,
    doc="MS-LSAD opnums as API numbers; the policy handle is implied.",
    statuses=(
        (S.STATUS_ACCESS_DENIED, "a caller neither SYSTEM nor an administrator (SYSTEM for "
         "LsarRetrievePrivateData)"),
        (S.STATUS_NO_SUCH_PRIVILEGE, "a right that is neither a privilege nor a logon right"),
        (S.STATUS_INVALID_SID, "an account SID that does not parse"),
        (S.STATUS_OBJECT_NAME_NOT_FOUND, "no secret of that name"),
        (S.STATUS_INVALID_PARAMETER, "a secret name outside the model's characters"),
        (S.STATUS_INTERNAL_DB_CORRUPTION, "a stored secret whose seal does not verify"),
    ),
)  # fmt: skip

_BY_NAME = {api.name: api for api in LSARPC_APIS}


# -- client stubs (advapi32: LsaEnumerateAccountRights, LsaStorePrivateData...) -------------
def LsaOpenPolicy(lpc: LpcRuntime) -> Connection:
    return lpc.connect_port(LSARPC_PORT_NAME, {})


def LsaEnumerateAccountRights(conn: Connection, sid: str) -> Reply:
    return call_api(conn, _BY_NAME["LsarEnumerateAccountRights"], {"account_sid": sid})


def LsaAddAccountRights(conn: Connection, sid: str, rights: list[str]) -> Reply:
    return call_api(conn, _BY_NAME["LsarAddAccountRights"], {"account_sid": sid, "rights": rights})


def LsaRemoveAccountRights(
    conn: Connection, sid: str, rights: list[str], all_rights: bool = False
) -> Reply:
    body = {"account_sid": sid, "rights": rights, "all_rights": all_rights}
    return call_api(conn, _BY_NAME["LsarRemoveAccountRights"], body)


def LsaStorePrivateData(conn: Connection, key_name: str, data: bytes | None) -> Reply:
    return call_api(conn, _BY_NAME["LsarStorePrivateData"], {"key_name": key_name, "data": data})


def LsaRetrievePrivateData(conn: Connection, key_name: str) -> Reply:
    return call_api(conn, _BY_NAME["LsarRetrievePrivateData"], {"key_name": key_name})
