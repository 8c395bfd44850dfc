"""Security identifiers, logon types, privileges and integrity levels: the constants every
component shares (winnt.h, ntsecapi.h, the well-known SIDs of MS-DTYP §2.4.2.4).

Pure data and pure functions, no ports: lsass builds tokens from these, and any server
that checks a token (the kernel, the SCM, csrss) reads the same names.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

# -- well-known SIDs ----------------------------------------------------------------------
EVERYONE: Final = "S-1-1-0"
LOCAL: Final = "S-1-2-0"
CONSOLE_LOGON: Final = "S-1-2-1"
NETWORK: Final = "S-1-5-2"
BATCH: Final = "S-1-5-3"
INTERACTIVE: Final = "S-1-5-4"
SERVICE: Final = "S-1-5-6"
AUTHENTICATED_USERS: Final = "S-1-5-11"
THIS_ORGANIZATION: Final = "S-1-5-15"
LOCAL_SYSTEM: Final = "S-1-5-18"
LOCAL_SERVICE: Final = "S-1-5-19"
NETWORK_SERVICE: Final = "S-1-5-20"
NTLM_AUTHENTICATION: Final = "S-1-5-64-10"
BUILTIN_ADMINISTRATORS: Final = "S-1-5-32-544"
BUILTIN_USERS: Final = "S-1-5-32-545"
BUILTIN_GUESTS: Final = "S-1-5-32-546"
LOCAL_ACCOUNT: Final = "S-1-5-113"
LOCAL_ACCOUNT_AND_ADMIN: Final = "S-1-5-114"

# Mandatory integrity labels (S-1-16-RID).
INTEGRITY_LOW: Final = "S-1-16-4096"
INTEGRITY_MEDIUM: Final = "S-1-16-8192"
INTEGRITY_HIGH: Final = "S-1-16-12288"
INTEGRITY_SYSTEM: Final = "S-1-16-16384"
INTEGRITY_NAMES: Final = {
    INTEGRITY_LOW: "Low",
    INTEGRITY_MEDIUM: "Medium",
    INTEGRITY_HIGH: "High",
    INTEGRITY_SYSTEM: "System",
}

WELL_KNOWN_NAMES: Final = {
    EVERYONE: "Everyone",
    LOCAL: "LOCAL",
    CONSOLE_LOGON: "CONSOLE LOGON",
    NETWORK: "NT AUTHORITY\\NETWORK",
    BATCH: "NT AUTHORITY\\BATCH",
    INTERACTIVE: "NT AUTHORITY\\INTERACTIVE",
    SERVICE: "NT AUTHORITY\\SERVICE",
    AUTHENTICATED_USERS: "NT AUTHORITY\\Authenticated Users",
    THIS_ORGANIZATION: "NT AUTHORITY\\This Organization",
    LOCAL_SYSTEM: "NT AUTHORITY\\SYSTEM",
    LOCAL_SERVICE: "NT AUTHORITY\\LOCAL SERVICE",
    NETWORK_SERVICE: "NT AUTHORITY\\NETWORK SERVICE",
    NTLM_AUTHENTICATION: "NT AUTHORITY\\NTLM Authentication",
    BUILTIN_ADMINISTRATORS: "BUILTIN\\Administrators",
    BUILTIN_USERS: "BUILTIN\\Users",
    BUILTIN_GUESTS: "BUILTIN\\Guests",
    LOCAL_ACCOUNT: "NT AUTHORITY\\Local account",
    LOCAL_ACCOUNT_AND_ADMIN: "NT AUTHORITY\\Local account and member of Administrators group",
    INTEGRITY_MEDIUM: "Mandatory Label\\Medium Mandatory Level",
    INTEGRITY_HIGH: "Mandatory Label\\High Mandatory Level",
    INTEGRITY_SYSTEM: "Mandatory Label\\System Mandatory Level",
}

# Built-in account RIDs (MS-SAMR §2.2.1.14) and alias RIDs.
DOMAIN_USER_RID_ADMIN: Final = 500
DOMAIN_USER_RID_GUEST: Final = 501
DOMAIN_USER_RID_DEFAULT_ACCOUNT: Final = 503
DOMAIN_ALIAS_RID_ADMINS: Final = 544
DOMAIN_ALIAS_RID_USERS: Final = 545
FIRST_USER_RID: Final = 1000

# -- logon types (SECURITY_LOGON_TYPE, ntsecapi.h) -----------------------------------------
Interactive: Final = 2
Network: Final = 3
Batch: Final = 4
Service: Final = 5
LOGON_TYPE_NAMES: Final = {
    Interactive: "Interactive",
    Network: "Network",
    Batch: "Batch",
    Service: "Service",
}
LOGON_TYPE_SIDS: Final = {
    Interactive: INTERACTIVE,
    Network: NETWORK,
    Batch: BATCH,
    Service: SERVICE,
}

# -- privileges by group: Windows 10's default User Rights Assignment -----------------------
ADMIN_PRIVILEGES: Final = (
    "SeIncreaseQuotaPrivilege",
    "SeSecurityPrivilege",
    "SeTakeOwnershipPrivilege",
    "SeLoadDriverPrivilege",
    "SeSystemProfilePrivilege",
    "SeSystemtimePrivilege",
    "SeProfileSingleProcessPrivilege",
    "SeIncreaseBasePriorityPrivilege",
    "SeCreatePagefilePrivilege",
    "SeBackupPrivilege",
    "SeRestorePrivilege",
    "SeShutdownPrivilege",
    "SeDebugPrivilege",
    "SeSystemEnvironmentPrivilege",
    "SeChangeNotifyPrivilege",
    "SeRemoteShutdownPrivilege",
    "SeUndockPrivilege",
    "SeManageVolumePrivilege",
    "SeImpersonatePrivilege",
    "SeCreateGlobalPrivilege",
    "SeIncreaseWorkingSetPrivilege",
    "SeTimeZonePrivilege",
    "SeCreateSymbolicLinkPrivilege",
    "SeDelegateSessionUserImpersonatePrivilege",
)
# Users on a workstation (a server grants Users no SeShutdownPrivilege).
USER_PRIVILEGES: Final = (
    "SeShutdownPrivilege",
    "SeChangeNotifyPrivilege",
    "SeUndockPrivilege",
    "SeIncreaseWorkingSetPrivilege",
    "SeTimeZonePrivilege",
)
EVERYONE_PRIVILEGES: Final = ("SeChangeNotifyPrivilege",)
SERVICE_PRIVILEGES: Final = ("SeImpersonatePrivilege", "SeCreateGlobalPrivilege")
PRIVILEGES_BY_SID: Final = {
    BUILTIN_ADMINISTRATORS: ADMIN_PRIVILEGES,
    BUILTIN_USERS: USER_PRIVILEGES,
    EVERYONE: EVERYONE_PRIVILEGES,
    SERVICE: SERVICE_PRIVILEGES,
}

# TOKEN_ELEVATION_TYPE.
TokenElevationTypeDefault: Final = "Default"
TokenElevationTypeFull: Final = "Full"
TokenElevationTypeLimited: Final = "Limited"


def privileges_for(groups: list[str]) -> list[str]:
    """The union of the rights the token's groups hold, in the table's order."""
    out: list[str] = []
    for sid in groups:
        for name in PRIVILEGES_BY_SID.get(sid, ()):
            if name not in out:
                out.append(name)
    return out


def domain_sid(sid: str) -> str:
    """``S-1-5-21-a-b-c-1001`` → ``S-1-5-21-a-b-c``."""
    return sid.rsplit("-", 1)[0]


def rid_of(sid: str) -> int:
    return int(sid.rsplit("-", 1)[1])


def format_luid(luid: int) -> str:
    """As whoami prints a logon id: ``0x0:0x3e7``... high and low parts."""
    return f"0x{luid >> 32:x}:0x{luid & 0xFFFFFFFF:x}"


# -- access checks (MS-DTYP 2.5.3.2, SeAccessCheck) -----------------------------------------
# Standard and generic rights (winnt.h).
DELETE: Final = 0x00010000
READ_CONTROL: Final = 0x00020000
WRITE_DAC: Final = 0x00040000
WRITE_OWNER: Final = 0x00080000
SYNCHRONIZE: Final = 0x00100000
ACCESS_SYSTEM_SECURITY: Final = 0x01000000
MAXIMUM_ALLOWED: Final = 0x02000000
GENERIC_ALL: Final = 0x10000000
GENERIC_EXECUTE: Final = 0x20000000
GENERIC_WRITE: Final = 0x40000000
GENERIC_READ: Final = 0x80000000
GENERIC_MASK: Final = GENERIC_ALL | GENERIC_EXECUTE | GENERIC_WRITE | GENERIC_READ
STATUS_SUCCESS: Final = 0x00000000
STATUS_ACCESS_DENIED: Final = 0xC0000022
STATUS_PRIVILEGE_NOT_HELD: Final = 0xC0000061

ACCESS_ALLOWED: Final = "A"
ACCESS_DENIED: Final = "D"


@dataclass(frozen=True)
class GenericMapping:
    """GENERIC_MAPPING: what each generic right means for one object type."""

    read: int
    write: int
    execute: int
    all: int

    def map(self, mask: int) -> int:
        """RtlMapGenericMask: generic bits replaced by the type's specific rights."""
        out = mask & ~GENERIC_MASK
        for bit, rights in (
            (GENERIC_READ, self.read),
            (GENERIC_WRITE, self.write),
            (GENERIC_EXECUTE, self.execute),
            (GENERIC_ALL, self.all),
        ):
            if mask & bit:
                out |= rights
        return out


@dataclass(frozen=True)
class Ace:
    type: str  # ACCESS_ALLOWED or ACCESS_DENIED
    mask: int
    sid: str


@dataclass(frozen=True)
class SecurityDescriptor:
    """Owner, group and DACL. ``dacl`` None is a NULL DACL (everyone, everything); an empty
    tuple grants nothing beyond the owner's implicit READ_CONTROL | WRITE_DAC."""

    owner: str
    group: str = LOCAL_SYSTEM
    dacl: tuple[Ace, ...] | None = ()


def token_sids(token: Mapping[str, object]) -> tuple[set[str], set[str]]:
    """(SIDs that allow and deny, SIDs that only deny): user, groups; deny-only groups."""
    deny_only = set(_strs(token.get("deny_only")))
    sids = {str(token.get("sid", ""))} | set(_strs(token.get("groups")))
    return sids - deny_only, deny_only


def _strs(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list | tuple) else []


def access_check(
    sd: SecurityDescriptor, token: Mapping[str, object], desired: int, mapping: GenericMapping
) -> tuple[int, int]:
    """SeAccessCheck: (granted mask, NTSTATUS). Deny ACEs before the allow that would grant
    a bit win (the DACL is walked in order, as Windows does); deny-only groups match deny
    ACEs only; the owner is implicitly granted READ_CONTROL and WRITE_DAC;
    ACCESS_SYSTEM_SECURITY needs SeSecurityPrivilege, and SeTakeOwnershipPrivilege grants
    WRITE_OWNER. MAXIMUM_ALLOWED asks for everything the DACL allows."""
    privileges = set(_strs(token.get("privileges")))
    allow_sids, deny_only = token_sids(token)
    maximum = bool(desired & MAXIMUM_ALLOWED)
    wanted = mapping.map(desired & ~MAXIMUM_ALLOWED)
    granted = 0
    if wanted & ACCESS_SYSTEM_SECURITY:
        if "SeSecurityPrivilege" not in privileges:
            return 0, STATUS_PRIVILEGE_NOT_HELD
        granted |= ACCESS_SYSTEM_SECURITY
    if "SeTakeOwnershipPrivilege" in privileges and wanted & WRITE_OWNER:
        granted |= WRITE_OWNER
    if sd.owner in allow_sids:
        granted |= READ_CONTROL | WRITE_DAC
    if sd.dacl is None:  # NULL DACL
        every = mapping.all | READ_CONTROL | WRITE_DAC | WRITE_OWNER | DELETE | SYNCHRONIZE
        granted |= wanted if not maximum else (wanted | every)
        return granted, STATUS_SUCCESS
    denied = 0
    for ace in sd.dacl:
        mask = mapping.map(ace.mask)
        if ace.type == ACCESS_DENIED and ace.sid in allow_sids | deny_only:
            denied |= mask & ~granted
        elif ace.type == ACCESS_ALLOWED and ace.sid in allow_sids:
            granted |= mask & ~denied
        if not maximum and wanted & ~granted & ~denied == 0:
            break
    if maximum:
        granted &= ~denied
        if not granted or wanted & ~granted:
            return 0, STATUS_ACCESS_DENIED
        return granted, STATUS_SUCCESS
    if wanted & ~granted:
        return 0, STATUS_ACCESS_DENIED
    return wanted, STATUS_SUCCESS


# Registry keys (winnt.h KEY_*): the mapping, and the default descriptor of HKLM's hives
# (Administrators and SYSTEM full control, Users and Authenticated Users read).
KEY_READ: Final = 0x20019
KEY_WRITE: Final = 0x20006
KEY_ALL_ACCESS: Final = 0xF003F
KEY_MAPPING: Final = GenericMapping(
    read=KEY_READ, write=KEY_WRITE, execute=KEY_READ, all=KEY_ALL_ACCESS
)

# -- SDDL (the subset `sc sdshow` and the registry's default descriptors use) ----------------
SDDL_SIDS: Final = {
    "SY": LOCAL_SYSTEM,
    "BA": BUILTIN_ADMINISTRATORS,
    "BU": BUILTIN_USERS,
    "BG": BUILTIN_GUESTS,
    "AU": AUTHENTICATED_USERS,
    "WD": EVERYONE,
    "IU": INTERACTIVE,
    "NU": NETWORK,
    "SU": SERVICE,
    "LS": LOCAL_SERVICE,
    "NS": NETWORK_SERVICE,
    "AC": "S-1-15-2-1",  # ALL APPLICATION PACKAGES (the SCM's descriptor names it)
}
SDDL_RIGHTS: Final = {
    "GA": GENERIC_ALL,
    "GR": GENERIC_READ,
    "GW": GENERIC_WRITE,
    "GX": GENERIC_EXECUTE,
    "RC": READ_CONTROL,
    "SD": DELETE,
    "WD": WRITE_DAC,
    "WO": WRITE_OWNER,
    "KA": 0xF003F,  # KEY_ALL_ACCESS
    "KR": 0x20019,  # KEY_READ
    "KW": 0x20006,  # KEY_WRITE
    # The object-specific bits as SDDL names them (the directory-service letters).
    "CC": 0x1,
    "DC": 0x2,
    "LC": 0x4,
    "SW": 0x8,
    "RP": 0x10,
    "WP": 0x20,
    "DT": 0x40,
    "LO": 0x80,
    "CR": 0x100,
}


class SddlError(ValueError):
    pass


def _sid_from_sddl(text: str) -> str:
    if text in SDDL_SIDS:
        return SDDL_SIDS[text]
    if text.startswith("S-1-"):
        return text
    raise SddlError(f"unknown SID {text!r}")


def _sid_to_sddl(sid: str) -> str:
    for alias, value in SDDL_SIDS.items():
        if value == sid:
            return alias
    return sid


def _rights_from_sddl(text: str) -> int:
    if text.lower().startswith("0x"):
        try:
            return int(text, 16) & 0xFFFFFFFF
        except ValueError:
            raise SddlError(f"bad rights {text!r}") from None
    if len(text) % 2:
        raise SddlError(f"bad rights {text!r}")
    mask = 0
    for i in range(0, len(text), 2):
        try:
            mask |= SDDL_RIGHTS[text[i : i + 2]]
        except KeyError:
            raise SddlError(f"unknown right {text[i : i + 2]!r}") from None
    return mask


# As ConvertSecurityDescriptorToStringSecurityDescriptor writes a mask: a whole-mask alias
# (KA for 0xF003F) when one matches exactly, else one letter pair per bit in this order.
_WHOLE_RIGHTS: Final = ("KA", "KR", "KW")
_BIT_ORDER: Final = (
    "GA", "GR", "GW", "GX", "CC", "DC", "LC", "SW", "RP", "WP", "DT", "LO", "CR",
    "SD", "RC", "WD", "WO",
)  # fmt: skip


def _rights_to_sddl(mask: int) -> str:
    for name in _WHOLE_RIGHTS:
        if SDDL_RIGHTS[name] == mask:
            return name
    out, rest = "", mask
    for name in _BIT_ORDER:
        bit = SDDL_RIGHTS[name]
        if rest & bit:
            out += name
            rest &= ~bit
    return out if not rest else f"0x{mask:x}"


def parse_sddl(text: str) -> SecurityDescriptor:
    """``O:SYG:SYD:(A;;CCLCSWRPWPDTLOCRRC;;;SY)(D;;GA;;;NU)`` (no flags, no object ACEs)."""
    owner, group, dacl = LOCAL_SYSTEM, LOCAL_SYSTEM, None
    rest = text.strip()
    while rest:
        tag, rest = rest[:2], rest[2:]
        if tag in ("O:", "G:"):
            end = min((rest.find(t) for t in ("G:", "D:", "S:") if t in rest), default=len(rest))
            value, rest = rest[:end], rest[end:]
            if tag == "O:":
                owner = _sid_from_sddl(value)
            else:
                group = _sid_from_sddl(value)
        elif tag == "D:":
            aces = []
            if rest.startswith("NO_ACCESS_CONTROL"):
                rest = rest[len("NO_ACCESS_CONTROL") :]
                dacl = None
                continue
            while rest[:2] in ("P(", "AI", "AR") or rest[:1] == "P":  # DACL flags
                rest = rest[1:] if rest[0] == "P" else rest[2:]
            while rest.startswith("("):
                end = rest.find(")")
                if end < 0:
                    raise SddlError("an ACE without its closing parenthesis")
                fields = rest[1:end].split(";")
                if len(fields) != 6 or fields[0] not in (ACCESS_ALLOWED, ACCESS_DENIED):
                    raise SddlError(f"unsupported ACE {rest[: end + 1]!r}")
                aces.append(Ace(fields[0], _rights_from_sddl(fields[2]), _sid_from_sddl(fields[5])))
                rest = rest[end + 1 :]
            dacl = tuple(aces)
        elif tag == "S:":  # the SACL: the model keeps no auditing ACEs (a divergence)
            rest = ""
        else:
            raise SddlError(f"unexpected {tag!r} in SDDL")
    return SecurityDescriptor(owner, group, dacl)


# SECURITY_INFORMATION (winnt.h): which parts of a descriptor a query or a set names.
OWNER_SECURITY_INFORMATION: Final = 0x1
GROUP_SECURITY_INFORMATION: Final = 0x2
DACL_SECURITY_INFORMATION: Final = 0x4
SACL_SECURITY_INFORMATION: Final = 0x8
ALL_SECURITY_INFORMATION: Final = 0x7  # the parts the model keeps (no SACL)


def format_sddl(sd: SecurityDescriptor, parts: int = ALL_SECURITY_INFORMATION) -> str:
    """ConvertSecurityDescriptorToStringSecurityDescriptor for the ``parts`` asked for
    (``sc sdshow`` asks for the DACL alone and prints ``D:...``)."""
    head = ""
    if parts & OWNER_SECURITY_INFORMATION:
        head += f"O:{_sid_to_sddl(sd.owner)}"
    if parts & GROUP_SECURITY_INFORMATION:
        head += f"G:{_sid_to_sddl(sd.group)}"
    if not parts & DACL_SECURITY_INFORMATION:
        return head
    if sd.dacl is None:
        return head + "D:NO_ACCESS_CONTROL"
    aces = "".join(
        f"({a.type};;{_rights_to_sddl(a.mask)};;;{_sid_to_sddl(a.sid)})" for a in sd.dacl
    )
    return f"{head}D:{aces}"


@functools.lru_cache(maxsize=256)
def cached_sddl(text: str) -> SecurityDescriptor:
    """parse_sddl, memoised: servers check against a few descriptors many times."""
    return parse_sddl(text)


# -- self-relative binary form (MS-DTYP 2.4.6): the registry's ``Security`` values ---------
SE_DACL_PRESENT: Final = 0x0004
SE_SELF_RELATIVE: Final = 0x8000
_ACE_TYPES: Final = {ACCESS_ALLOWED: 0, ACCESS_DENIED: 1}


def sid_to_bytes(sid: str) -> bytes:
    """``S-1-5-32-544`` → SID (revision, count, 48-bit big-endian authority, LE sub-ids)."""
    parts = sid.split("-")
    if len(parts) < 3 or parts[0] != "S" or parts[1] != "1" or len(parts) - 3 > 15:
        raise SddlError(f"bad SID {sid!r}")
    try:
        authority, subs = int(parts[2]), [int(p) for p in parts[3:]]
        return (
            bytes((1, len(subs)))
            + authority.to_bytes(6, "big")
            + b"".join(s.to_bytes(4, "little") for s in subs)
        )
    except (ValueError, OverflowError):
        raise SddlError(f"bad SID {sid!r}") from None


def sid_from_bytes(data: bytes, offset: int = 0) -> tuple[str, int]:
    """(the SID's string form, its length in bytes) at ``offset``."""
    if len(data) < offset + 8 or data[offset] != 1:
        raise SddlError("bad SID in descriptor")
    count = data[offset + 1]
    end = offset + 8 + 4 * count
    if count > 15 or len(data) < end:
        raise SddlError("bad SID in descriptor")
    authority = int.from_bytes(data[offset + 2 : offset + 8], "big")
    subs = [int.from_bytes(data[i : i + 4], "little") for i in range(offset + 8, end, 4)]
    return "-".join(["S-1", str(authority), *map(str, subs)]), end - offset


def sd_to_bytes(sd: SecurityDescriptor) -> bytes:
    """The self-relative SECURITY_DESCRIPTOR: header, DACL, owner, group."""
    owner, group = sid_to_bytes(sd.owner), sid_to_bytes(sd.group)
    dacl = b""
    if sd.dacl is not None:
        aces = b""
        for ace in sd.dacl:
            sid = sid_to_bytes(ace.sid)
            aces += struct.pack("<BBHI", _ACE_TYPES[ace.type], 0, 8 + len(sid), ace.mask) + sid
        dacl = struct.pack("<BBHHH", 2, 0, 8 + len(aces), len(sd.dacl), 0) + aces
    off_dacl = 20 if dacl else 0
    off_owner = 20 + len(dacl)
    off_group = off_owner + len(owner)
    header = struct.pack(
        "<BBHIIII", 1, 0, SE_SELF_RELATIVE | SE_DACL_PRESENT, off_owner, off_group, 0, off_dacl
    )
    return header + dacl + owner + group


def sd_from_bytes(data: bytes) -> SecurityDescriptor:
    """The inverse of sd_to_bytes; SddlError for anything malformed (never an IndexError)."""
    try:
        _rev, _sbz, control, off_owner, off_group, _sacl, off_dacl = struct.unpack_from(
            "<BBHIIII", data
        )
        owner = sid_from_bytes(data, off_owner)[0] if off_owner else LOCAL_SYSTEM
        group = sid_from_bytes(data, off_group)[0] if off_group else LOCAL_SYSTEM
        if not control & SE_DACL_PRESENT or not off_dacl:
            return SecurityDescriptor(owner, group, None)
        _arev, _s1, _size, count, _s2 = struct.unpack_from("<BBHHH", data, off_dacl)
        aces, at = [], off_dacl + 8
        types = {v: k for k, v in _ACE_TYPES.items()}
        for _ in range(count):
            kind, _flags, size, mask = struct.unpack_from("<BBHI", data, at)
            if kind not in types or size < 16:
                raise SddlError(f"unsupported ACE type {kind}")
            aces.append(Ace(types[kind], mask, sid_from_bytes(data, at + 8)[0]))
            at += size
        return SecurityDescriptor(owner, group, tuple(aces))
    except struct.error:
        raise SddlError("truncated security descriptor") from None


HKLM_DEFAULT_SDDL: Final = "O:BAG:SYD:(A;;KA;;;BA)(A;;KA;;;SY)(A;;KR;;;BU)(A;;KR;;;AU)"


def may_terminate(caller: Mapping[str, object], target: Mapping[str, object]) -> bool:
    """PROCESS_TERMINATE on another process: the same user, or SeDebugPrivilege."""
    if "SeDebugPrivilege" in _strs(caller.get("privileges")):
        return True
    return bool(caller.get("sid")) and caller.get("sid") == target.get("sid")
