r"""Registry key security (CmpSecurityMethod's descriptors, by where a key lives).

The model keeps one descriptor per part of the namespace, not one per key:
- ``HKU\<SID>`` and ``HKU\<SID>_Classes`` (a user's loaded NTUSER.DAT / UsrClass.dat):
  the user, SYSTEM and Administrators get full control — so a user's token may write under
  her own ``HKU\<SID>`` (HKCU) and not under another user's;
- everything else (HKLM's hives, ``HKU\.DEFAULT``): Administrators and SYSTEM full
  control, Users and Authenticated Users read (``nt.security.HKLM_DEFAULT_SDDL``).
SAM and SECURITY are closed to all but lsass before any descriptor is read (services.py).
Descriptors are parsed once per SID and cached.
"""

from __future__ import annotations

import re
from typing import Final

from nt import security as sec
from nt.regpath import HKU, RegistryError, split_root

USER_HIVE_SDDL: Final = "O:{sid}G:SYD:(A;;KA;;;{sid})(A;;KA;;;SY)(A;;KA;;;BA)"
_USER_SID = re.compile(r"(S-1-5-21(?:-\d{1,10}){4})(?:_Classes)?", re.IGNORECASE)


def key_security(path: str) -> sec.SecurityDescriptor:
    """The descriptor that governs ``path`` (HKLM's for anything unparseable: the stricter)."""
    try:
        root, parts = split_root(path)
    except RegistryError:
        return sec.cached_sddl(sec.HKLM_DEFAULT_SDDL)
    if root == HKU and parts:
        match = _USER_SID.fullmatch(parts[0])
        if match:
            return sec.cached_sddl(USER_HIVE_SDDL.format(sid=match.group(1).upper()))
    return sec.cached_sddl(sec.HKLM_DEFAULT_SDDL)


def may_write(token: dict, path: str) -> bool:
    """KEY_WRITE on the key at ``path`` for ``token``."""
    _, status = sec.access_check(key_security(path), token, sec.KEY_WRITE, sec.KEY_MAPPING)
    return status == sec.STATUS_SUCCESS


def may_read(token: dict, path: str) -> bool:
    """KEY_READ on the key at ``path``. HKLM's descriptor lets every logged-on token read
    (Users, Authenticated Users), so only a user hive's is walked: another user's HKCU is
    closed (its descriptor names that user, SYSTEM and Administrators alone)."""
    sd = key_security(path)
    if sd is sec.cached_sddl(sec.HKLM_DEFAULT_SDDL):
        return True
    _, status = sec.access_check(sd, token, sec.KEY_READ, sec.KEY_MAPPING)
    return status == sec.STATUS_SUCCESS
