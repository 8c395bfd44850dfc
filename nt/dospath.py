"""The model's drives: a Windows path (``C:\\Users\\alice``, ``%SystemRoot%\\...``) →
its file under the data root (``<root>/C/Users/alice``). ``..`` and empty parts are
dropped, so no path escapes the drive."""

from __future__ import annotations

from pathlib import Path

SYSTEM_DRIVE = "C:"


def host_path(root: Path, path: str) -> Path:
    text = path.replace("%SystemRoot%", "C:\\Windows").replace("%systemroot%", "C:\\Windows")
    text = text.replace("%SystemDrive%", SYSTEM_DRIVE).replace("%systemdrive%", SYSTEM_DRIVE)
    drive, _, rest = text.partition(":")
    if not rest or len(drive) != 1 or not drive.isalpha():  # relative: the system drive
        drive, rest = "C", text
    parts = [p for p in rest.replace("/", "\\").split("\\") if p not in ("", ".", "..")]
    return Path(root).joinpath(drive.upper(), *parts)
