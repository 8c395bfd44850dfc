"""The images smss can start, and the path search that finds them.

The model's system drive holds no executables: an image "exists" when its file name is
in ``KNOWN_IMAGES`` and the path being searched is the directory it lives in
(``%SystemRoot%\\System32``). That gives RtlDosSearchPath_U's behaviour: a search path
without System32 does not find ``csrss.exe``, a full path to the wrong directory fails.
"""

from __future__ import annotations

import ntpath
from collections.abc import Mapping, Sequence

from nt import images as _nt_images

# The image table lives in nt/images.py (the kernel needs it too); here as module names.
KNOWN_IMAGES: dict[str, str] = {
    name: f"processes.{package}" for name, package in _nt_images.KNOWN_IMAGES.items()
}

IMAGE_DIRECTORY = r"%SystemRoot%\System32"
DEFAULT_SYSTEM_ROOT = "C:\\Windows"


def expand_environment(text: str, env: Mapping[str, str]) -> str:
    """RtlExpandEnvironmentStrings_U: ``%NAME%`` (case-insensitive) becomes its value.
    An undefined name keeps its ``%`` and scanning resumes after it, so in
    ``%UNDEFINED%Path%`` the second ``%`` may open a reference, as in Windows."""
    upper = {key.upper(): value for key, value in env.items()}
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "%":
            end = text.find("%", i + 1)
            if end > i + 1 and text[i + 1 : end].upper() in upper:
                out.append(upper[text[i + 1 : end].upper()])
                i = end + 1
                continue
        out.append(text[i])
        i += 1
    return "".join(out)


def split_search_path(path: str | Sequence[str]) -> list[str]:
    """``"a;b;;c"`` → ``["a", "b", "c"]``; a list is returned without empty entries."""
    items = path.split(";") if isinstance(path, str) else list(path)
    return [item.strip() for item in items if item and item.strip()]


def system_environment(system_root: str) -> dict[str, str]:
    return {"SystemRoot": system_root, "SystemDrive": system_root[:2], "windir": system_root}


def image_directory(system_root: str = DEFAULT_SYSTEM_ROOT) -> str:
    return expand_environment(IMAGE_DIRECTORY, system_environment(system_root))


def resolve_image(
    nt_path_or_name: str,
    search_path: str | Sequence[str],
    system_root: str = DEFAULT_SYSTEM_ROOT,
    extension: str = ".exe",
) -> tuple[str, str] | None:
    """(full path such as ``C:\\Windows\\System32\\csrss.exe``, package) or None.

    Accepts a bare name (searched along ``search_path`` in order), a DOS path, or the NT
    forms ``\\SystemRoot\\...`` and ``\\??\\C:\\...``; ``%SystemRoot%`` is expanded and
    ``extension`` added when the file name has none. Comparison is case-insensitive."""
    env = system_environment(system_root)
    name = expand_environment(nt_path_or_name.strip(), env)
    if name.lower().startswith("\\systemroot\\"):
        name = system_root + name[len("\\SystemRoot") :]
    elif name.startswith("\\??\\"):
        name = name[4:]
    if not name:
        return None
    if "." not in ntpath.basename(name):
        name += extension
    if name.startswith("\\"):
        # A rooted name is on the current drive: the system drive for smss.
        return _lookup(system_root[:2] + name, system_root)
    if name[1:3] == ":\\":
        return _lookup(name, system_root)
    for directory in split_search_path(search_path):
        found = _lookup(ntpath.join(expand_environment(directory, env), name), system_root)
        if found:
            return found
    return None


def _lookup(full_path: str, system_root: str) -> tuple[str, str] | None:
    directory, base = ntpath.split(ntpath.normpath(full_path))
    package = KNOWN_IMAGES.get(base.lower())
    home = image_directory(system_root)
    if package is None or directory.lower() != ntpath.normpath(home).lower():
        return None
    return f"{home}\\{base.lower()}", package
