r"""The LSA policy database (lsarpc ``lsarpc.c``, ``privileges.c``, ``secret.c``): account
rights and LSA secrets, in the SECURITY hive, and the ``\RPC Control\lsarpc`` handlers.

Storage (``HKLM\SECURITY\Policy``):
- ``Accounts\<SID>``: ``ActSysAc`` (4 bytes, the SECURITY_ACCESS_* logon-right bits, as
  Windows keeps them) and ``Privilgs`` (the privilege names, REG_MULTI_SZ: Windows keeps a
  binary PRIVILEGE_SET of LUIDs). A SID without the key has Windows 10's defaults
  (``nt.security.PRIVILEGES_BY_SID``; SeServiceLogonRight: ``NT SERVICE\ALL SERVICES``
  only, so a local user must be granted it to run a service).
- ``Secrets\<name>\CurrVal``: the secret sealed under the LSA key (``PolEKList``, 32 random
  bytes made at first use): HMAC-SHA256 in counter mode for the stream, HMAC-SHA256 over
  name, nonce and ciphertext for integrity. Windows seals with AES-256 under a key that the
  boot key in the SYSTEM hive protects; the model's key sits unwrapped in SECURITY, which
  only lsass may read (a divergence, logged at start).
The rights are read once and kept in memory; every change is written before it is kept.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from nt import security as sec
from nt.log import Logger
from nt.seaudit import audit_open_denied
from nt.status import NtStatus
from ports import lsarpc
from ports.contract import ClientContext, Handler, HandlerResult
from processes.lsass.sam import RegistryAccess
from processes.lsass.samsrv import may_administer

POLICY: Final = r"HKLM\SECURITY\Policy"
ACCOUNTS: Final = POLICY + r"\Accounts"
SECRETS: Final = POLICY + r"\Secrets"
REG_BINARY, REG_MULTI_SZ = 3, 7

# SECURITY_ACCESS_* (ntlsa.h): the logon rights' bits in ActSysAc.
LOGON_RIGHTS: Final = {
    "SeInteractiveLogonRight": 0x1,
    "SeNetworkLogonRight": 0x2,
    "SeBatchLogonRight": 0x4,
    "SeServiceLogonRight": 0x10,
    "SeDenyInteractiveLogonRight": 0x40,
    "SeDenyNetworkLogonRight": 0x80,
    "SeDenyBatchLogonRight": 0x100,
    "SeDenyServiceLogonRight": 0x200,
    "SeRemoteInteractiveLogonRight": 0x400,
    "SeDenyRemoteInteractiveLogonRight": 0x800,
}
ALL_SERVICES: Final = "S-1-5-80-0"  # NT SERVICE\ALL SERVICES
DEFAULT_LOGON_RIGHTS: Final = {
    sec.BUILTIN_ADMINISTRATORS: 0x1 | 0x2 | 0x4 | 0x400,
    sec.BUILTIN_USERS: 0x1 | 0x2,
    sec.EVERYONE: 0x2,
    ALL_SERVICES: 0x10,
    sec.LOCAL_SERVICE: 0x10,
    sec.NETWORK_SERVICE: 0x10,
}
PRIVILEGES: Final = frozenset(
    (
        *sec.ADMIN_PRIVILEGES,
        *sec.USER_PRIVILEGES,
        *sec.SERVICE_PRIVILEGES,
        "SeTcbPrivilege",
        "SeAssignPrimaryTokenPrivilege",
        "SeCreateTokenPrivilege",
        "SeAuditPrivilege",
        "SeLockMemoryPrivilege",
        "SeCreatePermanentPrivilege",
        "SeRelabelPrivilege",
        "SeTrustedCredManAccessPrivilege",
    )
)
SID_RE: Final = re.compile(r"S-1-\d{1,15}(-\d{1,10}){0,15}")
SECRET_RE: Final = re.compile(r"[A-Za-z0-9_$.{}\-]{1,256}")  # no "\": never a registry path
LOGON_TYPE_RIGHTS: Final = {  # logon type → (the right, the deny right)
    sec.Service: ("SeServiceLogonRight", "SeDenyServiceLogonRight"),
    sec.Batch: ("SeBatchLogonRight", "SeDenyBatchLogonRight"),
}


class PolicyError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"{status:#010x}")
        self.status = status


@dataclass
class AccountRights:
    logon: int
    privileges: list[str] = field(default_factory=list)


def _default(sid: str) -> AccountRights:
    return AccountRights(DEFAULT_LOGON_RIGHTS.get(sid, 0), list(sec.PRIVILEGES_BY_SID.get(sid, ())))


class LsaPolicy:
    def __init__(self, nt: RegistryAccess) -> None:
        self.nt = nt
        self._lock = threading.Lock()
        self.accounts: dict[str, AccountRights] = {}
        self._key: bytes | None = None

    def open(self) -> None:
        """Read every Accounts\\<SID> once."""
        try:
            sids = self.nt.enum_keys(ACCOUNTS)
        except Exception as exc:  # no Accounts key yet: every SID has its defaults
            _raise_unless_absent(exc)
            sids = []
        for sid in (s.upper() for s in sids):
            rights = _default(sid)
            try:
                data = self.nt.query_value(f"{ACCOUNTS}\\{sid}", "ActSysAc")[1]
                rights.logon = int.from_bytes(bytes(data)[:4], "little")
            except Exception as exc:
                _raise_unless_absent(exc)
            try:
                rights.privileges = list(self.nt.query_value(f"{ACCOUNTS}\\{sid}", "Privilgs")[1])
            except Exception as exc:
                _raise_unless_absent(exc)
            self.accounts[sid] = rights

    # -- rights -----------------------------------------------------------------------------
    def rights_of(self, sid: str) -> AccountRights:
        with self._lock:
            found = self.accounts.get(sid)
            return AccountRights(found.logon, list(found.privileges)) if found else _default(sid)

    def enumerate(self, sid: str) -> list[str]:
        _check_sid(sid)
        r = self.rights_of(sid)
        return list(r.privileges) + [n for n, bit in LOGON_RIGHTS.items() if r.logon & bit]

    def change(
        self, sid: str, rights: Iterable[str], grant: bool, all_rights: bool = False
    ) -> None:
        _check_sid(sid)
        names = list(rights)
        for name in names:
            if name not in PRIVILEGES and name not in LOGON_RIGHTS:
                raise PolicyError(NtStatus.STATUS_NO_SUCH_PRIVILEGE)
        r = AccountRights(0, []) if all_rights and not grant else self.rights_of(sid)
        for name in names:
            if name in LOGON_RIGHTS:
                r.logon = r.logon | LOGON_RIGHTS[name] if grant else r.logon & ~LOGON_RIGHTS[name]
            elif grant and name not in r.privileges:
                r.privileges.append(name)
            elif not grant and name in r.privileges:
                r.privileges.remove(name)
        key = f"{ACCOUNTS}\\{sid}"
        self.nt.create_key(key)
        self.nt.set_value(key, "ActSysAc", REG_BINARY, r.logon.to_bytes(4, "little"))
        self.nt.set_value(key, "Privilgs", REG_MULTI_SZ, r.privileges)
        with self._lock:
            self.accounts[sid] = r

    def privileges_for(self, sids: Iterable[str]) -> list[str]:
        """The union of the privileges the SIDs hold (token order: the SIDs' order)."""
        out: list[str] = []
        for sid in sids:
            for name in self.rights_of(sid).privileges:
                if name not in out:
                    out.append(name)
        return out

    def may_log_on(self, sids: Iterable[str], logon_type: int) -> bool:
        """LsapCheckLogonRights for the types the model enforces (Service, Batch): one of
        the SIDs holds the right and none holds its deny right."""
        rights = LOGON_TYPE_RIGHTS.get(logon_type)
        if rights is None:
            return True
        allow, deny = LOGON_RIGHTS[rights[0]], LOGON_RIGHTS[rights[1]]
        held = 0
        for sid in sids:
            held |= self.rights_of(sid).logon
        return bool(held & allow) and not held & deny

    # -- secrets ----------------------------------------------------------------------------
    def _lsa_key(self) -> bytes:
        if self._key is None:
            try:
                self._key = bytes(self.nt.query_value(POLICY + r"\PolEKList", "")[1])
            except Exception as exc:  # only a key that is not there is made anew: a new
                _raise_unless_absent(exc)  # key would make every stored secret unreadable
                key = os.urandom(32)
                self.nt.create_key(POLICY + r"\PolEKList")
                self.nt.set_value(POLICY + r"\PolEKList", "", REG_BINARY, key)
                self._key = key
        return self._key

    def store_secret(self, name: str, data: bytes | None) -> None:
        _check_secret(name)
        key = f"{SECRETS}\\{name}"
        if data is None:
            try:
                self.nt.delete_key(key, tree=True)
            except Exception as exc:
                _raise_unless_absent(exc)
                raise PolicyError(NtStatus.STATUS_OBJECT_NAME_NOT_FOUND) from None
            return
        sealed = seal(self._lsa_key(), name, data)
        self.nt.create_key(key + r"\CurrVal")
        self.nt.set_value(key + r"\CurrVal", "", REG_BINARY, sealed)

    def retrieve_secret(self, name: str) -> bytes:
        _check_secret(name)
        try:
            sealed = bytes(self.nt.query_value(f"{SECRETS}\\{name}\\CurrVal", "")[1])
        except Exception as exc:
            _raise_unless_absent(exc)
            raise PolicyError(NtStatus.STATUS_OBJECT_NAME_NOT_FOUND) from None
        data = unseal(self._lsa_key(), name, sealed)
        if data is None:
            raise PolicyError(NtStatus.STATUS_INTERNAL_DB_CORRUPTION)
        return data


def _raise_unless_absent(exc: Exception) -> None:
    """A key or value that is not there (the registry's STATUS_OBJECT_NAME_NOT_FOUND, as
    sam.py reads it) is an answer; anything else (the kernel's port lost, a timeout) is
    raised, never taken for "absent"."""
    if getattr(exc, "status", None) != NtStatus.STATUS_OBJECT_NAME_NOT_FOUND:
        raise exc


def _check_sid(sid: str) -> None:
    if not SID_RE.fullmatch(sid):
        raise PolicyError(NtStatus.STATUS_INVALID_SID)


def _check_secret(name: str) -> None:
    if not SECRET_RE.fullmatch(name):
        raise PolicyError(NtStatus.STATUS_INVALID_PARAMETER)


SEAL_VERSION = 2  # AES-256-GCM (1 was the stdlib HMAC construction of an earlier build)


def seal(key: bytes, name: str, data: bytes) -> bytes:
    """Version byte, 12-byte nonce, AES-256-GCM ciphertext and tag; the secret's name is
    the associated data, so a sealed value moved under another name does not open."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    return bytes([SEAL_VERSION]) + nonce + AESGCM(key).encrypt(nonce, data, name.encode())


def unseal(key: bytes, name: str, sealed: bytes) -> bytes | None:
    """The secret, or None for a value that is not ours or was tampered with."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if len(sealed) < 1 + 12 + 16 or sealed[0] != SEAL_VERSION:
        return None
    try:
        return AESGCM(key).decrypt(sealed[1:13], sealed[13:], name.encode())
    except InvalidTag:
        return None


def _policy_call(admin: bool = True, system: bool = False):
    """Who may call (an administrator, or SYSTEM alone) and PolicyError → its status."""

    def wrap(fn):
        def wrapper(self: LsaPolicyServer, msg: dict, client: ClientContext) -> HandlerResult:
            token = client.token or {}
            allowed = token.get("sid") == sec.LOCAL_SYSTEM if system else may_administer(token)
            if admin and not allowed:
                self.log.warning(
                    "lsa.policy_access_denied",
                    api=fn.__name__,
                    caller_pid=client.pid,
                    caller_image=client.image,
                    status=NtStatus.STATUS_ACCESS_DENIED,
                )
                audit_open_denied(
                    self.log,
                    token,
                    server="LSA",
                    object_type="SecretObject" if "PrivateData" in fn.__name__ else "Policy",
                    object_name=str(msg.get("key_name") or msg.get("account_sid") or ""),
                    desired=0,
                    pid=client.pid,
                    image=client.image,
                )
                return NtStatus.STATUS_ACCESS_DENIED
            try:
                return fn(self, msg, client)
            except PolicyError as exc:
                return exc.status

        wrapper.__name__ = fn.__name__
        return wrapper

    return wrap


class LsaPolicyServer:
    def __init__(self, policy: LsaPolicy, log: Logger) -> None:
        self.policy, self.log = policy, log

    def handlers(self) -> dict[int, Handler]:
        return {api.number: getattr(self, api.name) for api in lsarpc.LSARPC_APIS}

    @_policy_call()
    def LsarEnumerateAccountRights(self, msg: dict, client: ClientContext) -> HandlerResult:
        return {"rights": self.policy.enumerate(msg["account_sid"])}

    @_policy_call()
    def LsarAddAccountRights(self, msg: dict, client: ClientContext) -> HandlerResult:
        self.policy.change(msg["account_sid"], msg["rights"], grant=True)
        self.log.info("lsa.rights_added", account_sid=msg["account_sid"], rights=msg["rights"])
        return {}

    @_policy_call()
    def LsarRemoveAccountRights(self, msg: dict, client: ClientContext) -> HandlerResult:
        self.policy.change(msg["account_sid"], msg["rights"], False, msg["all_rights"])
        self.log.info("lsa.rights_removed", account_sid=msg["account_sid"], rights=msg["rights"])
        return {}

    @_policy_call()
    def LsarStorePrivateData(self, msg: dict, client: ClientContext) -> HandlerResult:
        self.policy.store_secret(msg["key_name"], msg["data"])
        self.log.info("lsa.secret_stored", key_name=msg["key_name"], deleted=msg["data"] is None)
        return {}

    @_policy_call(system=True)
    def LsarRetrievePrivateData(self, msg: dict, client: ClientContext) -> HandlerResult:
        return {"data": self.policy.retrieve_secret(msg["key_name"])}
