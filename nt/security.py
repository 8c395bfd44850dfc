"""Security identifiers, logon types, privileges and integrity levels: the constants every
component shares (winnt.h, ntsecapi.h, the well-known SIDs of MS-DTYP §2.4.2.4).

Pure data and pure functions, no ports: lsass builds tokens from these, and any server
that checks a token (the kernel, the SCM, csrss) reads the same names.
"""

from __future__ import annotations

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
