"""The model's executable images: NT image file name → Python package under processes/.

A name absent here is a file that does not exist on the model's system drive, so
creating a process from it fails with STATUS_OBJECT_NAME_NOT_FOUND, as it would in NT.
"""

from __future__ import annotations

import ntpath

KNOWN_IMAGES: dict[str, str] = {
    "smss.exe": "smss",
    "autochk.exe": "autochk",
    "csrss.exe": "csrss",
    "wininit.exe": "wininit",
    "winlogon.exe": "winlogon",
    "services.exe": "services",
    "svchost.exe": "svchost",
    "spoolsv.exe": "spoolsv",
    "trustedinstaller.exe": "trustedinstaller",
    "lsass.exe": "lsass",
    "lsm.exe": "lsm",
    "logonui.exe": "logonui",
    "userinit.exe": "userinit",
    "explorer.exe": "explorer",
    "condemo.exe": "condemo",
}

# Static imports the loader snaps at process start (nt/ldr.py), for the images whose
# imports a user can break (NTMODEL_FAULTS=<image>:missing_dll=<dll>).
IMPORTS: dict[str, tuple[str, ...]] = {
    "condemo.exe": ("ntdll.dll", "kernel32.dll", "KERNELBASE.dll", "condemoui.dll"),
}

SYSTEM_ROOT = "C:\\Windows"
SYSTEM32 = SYSTEM_ROOT + "\\System32"


def image_name(path: str) -> str:
    """``C:\\Windows\\system32\\csrss.exe`` → ``csrss.exe`` (lower case, ``.exe`` added)."""
    name = ntpath.basename(path.replace("\\SystemRoot", SYSTEM_ROOT)).lower()
    return name if "." in name else name + ".exe"


def package_for(path: str) -> str | None:
    return KNOWN_IMAGES.get(image_name(path))
