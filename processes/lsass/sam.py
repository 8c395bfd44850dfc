r"""The SAM database (samsrv.dll's store), kept in the SAM hive through the kernel.

Layout, as Windows lays it out where that is cheap to keep:

    HKLM\SAM\SAM\Domains\Account                 DomainSid, NextRid, lockout policy
    HKLM\SAM\SAM\Domains\Account\Users\000001F4  one key per RID (hex, 8 digits)
        F             REG_BINARY  the fixed part: times, RID, ACB flags, counters
        Name, FullName, Comment   REG_SZ
        PasswordHash  REG_SZ      an argon2id PHC string ("" = no password)
    HKLM\SAM\SAM\Domains\Builtin\Aliases\00000220  Members (MULTI_SZ of SIDs)

Divergences: Windows keeps names and hashes in the binary ``V`` value and the NT hash
(MD4) encrypted with the boot key; the model keeps readable names and an argon2id hash
(reliability-security §4.1-4.2). ``F`` keeps Windows' offsets for the fields it holds
(last logon, password last set, account expiry, last bad password, RID, ACB flags, bad
password and logon counts), so every counter update is one atomic value write: a
``kill -9`` between two writes can never leave half a lockout.

lsass is the only reader (the kernel refuses every other process), so the whole database
is loaded once and served from memory; every change is written through to the hive
before it is applied in memory (acknowledged = durable).
"""

from __future__ import annotations

import secrets
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from nt import security as sec
from nt.log import get_logger
from nt.regpath import REG_BINARY, REG_DWORD, REG_MULTI_SZ, REG_SZ
from nt.status import NtStatus

SAM_ROOT = r"HKLM\SAM\SAM"
ACCOUNT = SAM_ROOT + r"\Domains\Account"
USERS = ACCOUNT + r"\Users"
ALIASES = SAM_ROOT + r"\Domains\Builtin\Aliases"

# ACB_* account control bits of F (MS-SAMR 2.2.1.12 USER_ACCOUNT codes).
ACB_DISABLED = 0x0001
ACB_PWNOTREQ = 0x0004
ACB_NORMAL = 0x0010
ACB_PWNOEXP = 0x0200
ACB_AUTOLOCK = 0x0400
ACB_PW_EXPIRED = 0x20000

# F: offsets Windows uses; the rest of the 0x50 bytes stays zero.
_F = struct.Struct("<8xQ8xQQQIIIHHHH12x")
FILETIME_EPOCH = 11644473600  # seconds from 1601-01-01 to 1970-01-01
NEVER = 0

# Windows 11 22H2's defaults: 10 attempts, 10 minutes, 10 minutes (reliability-security §4.4).
DEFAULT_POLICY = {"LockoutThreshold": 10, "LockoutDuration": 10, "LockoutObservationWindow": 10}
INVALID_NAME_CHARS = set('"/\\[]:;|=,+*?<>@')
MAX_NAME = 20  # SAM account names: 20 characters (net user's limit)

BUILTIN_USERS = (
    (
        sec.DOMAIN_USER_RID_ADMIN,
        "Administrator",
        "Built-in account for administering the computer/domain",
        sec.DOMAIN_ALIAS_RID_ADMINS,
    ),
    (
        sec.DOMAIN_USER_RID_GUEST,
        "Guest",
        "Built-in account for guest access to the computer/domain",
        None,
    ),
    (
        sec.DOMAIN_USER_RID_DEFAULT_ACCOUNT,
        "DefaultAccount",
        "A user account managed by the system.",
        None,
    ),
)


class RegistryAccess(Protocol):
    """What SAM needs of the registry: ``nt.syscalls.SystemServices`` in lsass, an
    in-memory fake in the unit tests. Failures raise an exception with ``.status``."""

    def create_key(self, path: str, volatile: bool = False) -> bool: ...

    def delete_key(self, path: str, tree: bool = False) -> None: ...

    def set_value(self, path: str, name: str, type: int, data: Any) -> None: ...

    def query_value(self, path: str, name: str) -> tuple[int, Any]: ...

    def enum_keys(self, path: str) -> list[str]: ...


class SamError(Exception):
    def __init__(self, status: int) -> None:
        self.status = int(status)
        super().__init__(NtStatus(status).name)


def filetime(seconds: float) -> int:
    return int((seconds + FILETIME_EPOCH) * 10_000_000) if seconds else NEVER


def unix(ft: int) -> float:
    return ft / 10_000_000 - FILETIME_EPOCH if ft else 0.0


@dataclass
class User:
    rid: int
    name: str
    full_name: str = ""
    comment: str = ""
    acb: int = ACB_NORMAL
    password_hash: str = ""
    password_last_set: float = 0.0
    account_expires: float = 0.0
    last_logon: float = 0.0
    logon_count: int = 0
    bad_password_count: int = 0
    last_bad_password: float = 0.0

    @property
    def enabled(self) -> bool:
        return not self.acb & ACB_DISABLED

    @property
    def auto_locked(self) -> bool:
        return bool(self.acb & ACB_AUTOLOCK)

    @property
    def lockout_time(self) -> float:
        """Windows derives it: the last bad password of an account flagged ACB_AUTOLOCK."""
        return self.last_bad_password if self.auto_locked else 0.0

    def pack_f(self) -> bytes:
        return _F.pack(
            filetime(self.last_logon),
            filetime(self.password_last_set),
            filetime(self.account_expires),
            filetime(self.last_bad_password),
            self.rid,
            513,  # primary group: None (DOMAIN_GROUP_RID_USERS)
            self.acb,
            0,
            min(self.bad_password_count, 0xFFFF),
            min(self.logon_count, 0xFFFF),
            0,
        )

    def unpack_f(self, data: bytes) -> None:
        ll, pls, exp, lbp, _rid, _pg, acb, _cc, bad, count, _ = _F.unpack(data[: _F.size])
        self.last_logon, self.password_last_set = unix(ll), unix(pls)
        self.account_expires, self.last_bad_password = unix(exp), unix(lbp)
        self.acb, self.bad_password_count, self.logon_count = acb, bad, count


@dataclass
class Policy:
    threshold: int = DEFAULT_POLICY["LockoutThreshold"]
    duration: int = DEFAULT_POLICY["LockoutDuration"]  # minutes; 0: until an admin unlocks
    window: int = DEFAULT_POLICY["LockoutObservationWindow"]  # minutes
    allow_admin_lockout: bool = True  # KB5020282; on by default since Windows 11 22H2


@dataclass
class Sam:
    reg: RegistryAccess
    clock: Callable[[], float] = time.time
    domain_sid: str = ""
    next_rid: int = sec.FIRST_USER_RID
    policy: Policy = field(default_factory=Policy)
    users: dict[int, User] = field(default_factory=dict)
    aliases: dict[int, list[str]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    # Fault injection (lsass.exe:stall_password_change=SECONDS): a change stalls between
    # its two writes (the hash written, the F value not yet), so a kill lands there.
    stall_after_hash: float = 0.0

    # -- start-up ---------------------------------------------------------------------
    def open(self) -> bool:
        """Load the database; on first boot create it (machine SID, built-in accounts).
        Returns True when it was created."""
        created = False
        try:
            self.domain_sid = self.reg.query_value(ACCOUNT, "DomainSid")[1]
        except Exception as exc:
            if getattr(exc, "status", None) != NtStatus.STATUS_OBJECT_NAME_NOT_FOUND:
                raise
            self._create()
            created = True
        self._load()
        return created

    def _create(self) -> None:
        a, b, c = (secrets.randbits(32) for _ in range(3))
        sid = f"S-1-5-21-{a}-{b}-{c}"
        for rid in (sec.DOMAIN_ALIAS_RID_ADMINS, sec.DOMAIN_ALIAS_RID_USERS):
            self.reg.create_key(f"{ALIASES}\\{rid:08X}")
            self.reg.set_value(f"{ALIASES}\\{rid:08X}", "Members", REG_MULTI_SZ, [])
        self.reg.create_key(USERS)
        for name, value in DEFAULT_POLICY.items():
            self.reg.set_value(ACCOUNT, name, REG_DWORD, value)
        self.reg.set_value(ACCOUNT, "AllowAdministratorLockout", REG_DWORD, 1)
        self.reg.set_value(ACCOUNT, "NextRid", REG_DWORD, sec.FIRST_USER_RID)
        self.domain_sid = sid
        for rid, name, comment, alias in BUILTIN_USERS:
            # Disabled by default, as Windows has shipped them since Vista.
            user = User(rid, name, comment=comment, acb=ACB_NORMAL | ACB_DISABLED | ACB_PWNOEXP)
            self._write_user(user)
            if alias is not None:
                self._add_member(alias, self.sid_of(rid))
        # Written last: its presence says the database is complete.
        self.reg.set_value(ACCOUNT, "DomainSid", REG_SZ, sid)

    def _load(self) -> None:
        def dword(name: str, default: int) -> int:
            try:
                return int(self.reg.query_value(ACCOUNT, name)[1])
            except Exception:
                return default

        self.next_rid = dword("NextRid", sec.FIRST_USER_RID)
        self.policy = Policy(
            dword("LockoutThreshold", 10),
            dword("LockoutDuration", 10),
            dword("LockoutObservationWindow", 10),
            bool(dword("AllowAdministratorLockout", 1)),
        )
        for rid in (sec.DOMAIN_ALIAS_RID_ADMINS, sec.DOMAIN_ALIAS_RID_USERS):
            self.aliases[rid] = list(self.reg.query_value(f"{ALIASES}\\{rid:08X}", "Members")[1])
        for key in self.reg.enum_keys(USERS):
            try:
                rid = int(key, 16)
            except ValueError:
                continue
            path = f"{USERS}\\{key}"
            user = User(rid, self.reg.query_value(path, "Name")[1])
            user.full_name = self.reg.query_value(path, "FullName")[1]
            user.comment = self.reg.query_value(path, "Comment")[1]
            user.password_hash = self.reg.query_value(path, "PasswordHash")[1]
            user.unpack_f(self.reg.query_value(path, "F")[1])
            self.users[rid] = user

    # -- reading ----------------------------------------------------------------------
    def sid_of(self, rid: int) -> str:
        return f"{self.domain_sid}-{rid}"

    def lookup(self, name: str) -> User | None:
        folded = name.casefold()
        with self.lock:
            for user in self.users.values():
                if user.name.casefold() == folded:
                    return user
        return None

    def get(self, name: str) -> User:
        user = self.lookup(name)
        if user is None:
            raise SamError(NtStatus.STATUS_NO_SUCH_USER)
        return user

    def alias_rids(self, rid: int) -> list[int]:
        sid = self.sid_of(rid)
        return [alias for alias, members in self.aliases.items() if sid in members]

    def is_admin(self, rid: int) -> bool:
        return sec.DOMAIN_ALIAS_RID_ADMINS in self.alias_rids(rid)

    def enabled_admins(self) -> list[User]:
        return [u for u in self.users.values() if u.enabled and self.is_admin(u.rid)]

    def is_locked(self, user: User, now: float) -> bool:
        """Locked while ``now < LockoutTime + Duration`` (or for ever with Duration 0)."""
        if not user.auto_locked:
            return False
        duration = self.policy.duration
        return duration == 0 or now < user.lockout_time + duration * 60

    # -- writing: hive first, then memory ---------------------------------------------
    def _write_user(self, user: User) -> None:
        path = f"{USERS}\\{user.rid:08X}"
        self.reg.create_key(path)
        self.reg.set_value(path, "Name", REG_SZ, user.name)
        self.reg.set_value(path, "FullName", REG_SZ, user.full_name)
        self.reg.set_value(path, "Comment", REG_SZ, user.comment)
        self.reg.set_value(path, "PasswordHash", REG_SZ, user.password_hash)
        self.reg.set_value(path, "F", REG_BINARY, user.pack_f())
        self.users[user.rid] = user

    def save_f(self, user: User) -> None:
        """One atomic write of the counters, flags and times."""
        self.reg.set_value(f"{USERS}\\{user.rid:08X}", "F", REG_BINARY, user.pack_f())

    def save_hash(self, user: User, phc: str) -> None:
        """The hash alone, in one value write: after a crash it is the old or the new one."""
        self.reg.set_value(f"{USERS}\\{user.rid:08X}", "PasswordHash", REG_SZ, phc)
        user.password_hash = phc

    def _add_member(self, alias: int, sid: str) -> None:
        members = [m for m in self.aliases.get(alias, []) if m != sid] + [sid]
        self.reg.set_value(f"{ALIASES}\\{alias:08X}", "Members", REG_MULTI_SZ, members)
        self.aliases[alias] = members

    def _remove_member(self, alias: int, sid: str) -> None:
        members = [m for m in self.aliases.get(alias, []) if m != sid]
        self.reg.set_value(f"{ALIASES}\\{alias:08X}", "Members", REG_MULTI_SZ, members)
        self.aliases[alias] = members

    def check_name(self, name: str) -> None:
        if (
            not name.strip()
            or len(name) > MAX_NAME
            or any(ch in INVALID_NAME_CHARS or ord(ch) < 32 for ch in name)
            or name.endswith(".")
        ):
            raise SamError(NtStatus.STATUS_INVALID_ACCOUNT_NAME)

    def create_user(self, name: str, phc: str, admin: bool, full_name: str = "") -> User:
        self.check_name(name)
        with self.lock:
            if self.lookup(name) is not None:
                raise SamError(NtStatus.STATUS_USER_EXISTS)
            rid = self.next_rid
            self.reg.set_value(ACCOUNT, "NextRid", REG_DWORD, rid + 1)  # never reused
            self.next_rid = rid + 1
            now = self.clock()
            acb = ACB_NORMAL | (0 if phc else ACB_PWNOTREQ)
            user = User(rid, name, full_name=full_name, acb=acb, password_hash=phc)
            user.password_last_set = now if phc else 0.0
            self._write_user(user)
            self._add_member(sec.DOMAIN_ALIAS_RID_USERS, self.sid_of(rid))
            if admin:
                self._add_member(sec.DOMAIN_ALIAS_RID_ADMINS, self.sid_of(rid))
            return user

    def delete_user(self, name: str) -> User:
        with self.lock:
            user = self.get(name)
            if user.rid < sec.FIRST_USER_RID:
                raise SamError(NtStatus.STATUS_SPECIAL_ACCOUNT)
            if self._last_admin(user):
                raise SamError(NtStatus.STATUS_LAST_ADMIN)
            sid = self.sid_of(user.rid)
            for alias in self.alias_rids(user.rid):
                self._remove_member(alias, sid)
            self.reg.delete_key(f"{USERS}\\{user.rid:08X}", tree=True)
            del self.users[user.rid]
            return user

    def _last_admin(self, user: User) -> bool:
        admins = self.enabled_admins()
        return user.enabled and self.is_admin(user.rid) and len(admins) == 1

    def set_enabled(self, user: User, enabled: bool) -> None:
        with self.lock:
            if not enabled and self._last_admin(user):
                raise SamError(NtStatus.STATUS_LAST_ADMIN)
            user.acb = (user.acb & ~ACB_DISABLED) | (0 if enabled else ACB_DISABLED)
            self.save_f(user)

    def set_admin(self, user: User, admin: bool) -> None:
        with self.lock:
            sid = self.sid_of(user.rid)
            if admin:
                self._add_member(sec.DOMAIN_ALIAS_RID_ADMINS, sid)
            elif self.is_admin(user.rid):
                if self._last_admin(user):
                    raise SamError(NtStatus.STATUS_LAST_ADMIN)
                self._remove_member(sec.DOMAIN_ALIAS_RID_ADMINS, sid)

    def set_must_change(self, user: User, must: bool) -> None:
        with self.lock:
            user.acb = (user.acb & ~ACB_PW_EXPIRED) | (ACB_PW_EXPIRED if must else 0)
            self.save_f(user)

    def unlock(self, user: User) -> bool:
        """Administrator unlock: clears the flag and the count. True if it was locked."""
        with self.lock:
            was = self.is_locked(user, self.clock())
            user.acb &= ~ACB_AUTOLOCK
            user.bad_password_count = 0
            self.save_f(user)
            return was

    def set_password_hash(self, user: User, phc: str) -> None:
        with self.lock:
            self.save_hash(user, phc)
            if self.stall_after_hash:
                get_logger().info("fault.stall_password_change", seconds=self.stall_after_hash)
                time.sleep(self.stall_after_hash)
            user.password_last_set = self.clock()
            user.acb &= ~(ACB_PW_EXPIRED | ACB_PWNOTREQ)
            self.save_f(user)

    def set_policy(self, threshold: int, duration: int, window: int) -> None:
        """``-1`` leaves a field as it is. Windows' rule: window ≤ duration (unless the
        duration is 0, locked until an administrator unlocks), window ≥ 1."""
        with self.lock:
            new = Policy(
                self.policy.threshold if threshold < 0 else threshold,
                self.policy.duration if duration < 0 else duration,
                self.policy.window if window < 0 else window,
                self.policy.allow_admin_lockout,
            )
            if new.window < 1 or (new.duration and new.window > new.duration):
                raise SamError(NtStatus.STATUS_INVALID_PARAMETER)
            self.reg.set_value(ACCOUNT, "LockoutThreshold", REG_DWORD, new.threshold)
            self.reg.set_value(ACCOUNT, "LockoutDuration", REG_DWORD, new.duration)
            self.reg.set_value(ACCOUNT, "LockoutObservationWindow", REG_DWORD, new.window)
            self.policy = new
