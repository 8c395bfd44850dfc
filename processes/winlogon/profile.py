r"""LoadUserProfile / UnloadUserProfile, as winlogon calls userenv for a logon.

The profile of a user is ``%SystemDrive%\Users\<name>`` (``C:\Users\alice``: the data
root's ``C/Users/alice``), recorded in
``HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList\<SID>`` (ProfileImagePath,
REG_EXPAND_SZ). On the first logon userenv creates the folders and copies the Default
User's NTUSER.DAT; the model makes NTUSER.DAT from the DEFAULT hive (the kernel does it in
NtLoadKey). The hive is loaded at ``HKU\<SID>``, which the kernel serves as HKCU to every
process whose token is hers. Unloading flushes and closes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nt.dospath import host_path
from nt.regpath import REG_DWORD, REG_EXPAND_SZ
from nt.syscalls import NtError, SystemServices

PROFILE_LIST = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList"
PROFILES_DIRECTORY = r"%SystemDrive%\Users"
# The folders userenv makes in a new profile (the ones the model's programs use).
PROFILE_FOLDERS = (
    r"AppData\Roaming\Microsoft\Windows\Start Menu\Programs\Startup",
    r"AppData\Local\Temp",
    "Desktop",
    "Documents",
)
# The all-users Startup folder (ProgramData's Start Menu).
COMMON_STARTUP = r"C:\ProgramData\Microsoft\Windows\Start Menu\Programs\Startup"


@dataclass(frozen=True)
class Profile:
    sid: str
    path: str  # C:\Users\alice
    created: bool  # first logon: NTUSER.DAT made from DEFAULT

    @property
    def hive(self) -> str:
        return f"HKU\\{self.sid}"


def expand(path: str) -> str:
    return path.replace("%SystemDrive%", "C:").replace("%systemdrive%", "C:")


def profile_path(nt: SystemServices, sid: str, name: str) -> str:
    """ProfileImagePath of a known profile, else the new one's: <ProfilesDirectory>\\<name>."""
    if sid:
        try:
            return expand(str(nt.query_value(f"{PROFILE_LIST}\\{sid}", "ProfileImagePath")[1]))
        except NtError:
            pass
    try:
        base = str(nt.query_value(PROFILE_LIST, "ProfilesDirectory")[1])
    except NtError:
        base = PROFILES_DIRECTORY
    return expand(base) + "\\" + name


def load_user_profile(nt: SystemServices, root: Path, sid: str, name: str) -> Profile:
    """Raises NtError (the hive) or OSError (the folders)."""
    path = profile_path(nt, sid, name)
    for folder in PROFILE_FOLDERS:
        host_path(root, f"{path}\\{folder}").mkdir(parents=True, exist_ok=True)
    host_path(root, COMMON_STARTUP).mkdir(parents=True, exist_ok=True)
    key = f"{PROFILE_LIST}\\{sid}"
    if not nt.key_exists(key):
        nt.create_key(key)
        unexpanded = "%SystemDrive%" + path[2:] if path[:2].upper() == "C:" else path
        nt.set_value(key, "ProfileImagePath", REG_EXPAND_SZ, unexpanded)
        nt.set_value(key, "Flags", REG_DWORD, 0)
    nt.set_value(key, "State", REG_DWORD, 0)
    created = nt.load_key(f"HKU\\{sid}", f"{path}\\NTUSER.DAT")
    return Profile(sid, path, created)


def unload_user_profile(nt: SystemServices, profile: Profile) -> None:
    nt.unload_key(profile.hive)
