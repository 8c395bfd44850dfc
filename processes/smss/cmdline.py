"""SmpParseCommandLine (ReactOS ``base/system/smss/smutil.c``), for BootExecute, Execute,
SubSystems and the initial command.

Tokens are separated by characters <= ' '. Leading keywords ``debug``, ``async`` and
``autocheck`` (any case, repeatable) become flags; the next token is the image, looked up
along the ``Path`` of smss's default environment and then along SmpDefaultLibPath (which
the first call prefixes with ``<SystemRoot>\\system32``), with ``.exe`` as the default
extension. The rest of the line, after leading blanks, is the arguments.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nt.status import NtStatus
from processes.smss.images import DEFAULT_SYSTEM_ROOT, resolve_image, split_search_path

# smss.h
SMP_DEBUG_FLAG = 0x01
SMP_ASYNC_FLAG = 0x02
SMP_AUTOCHK_FLAG = 0x04
SMP_SUBSYSTEM_FLAG = 0x08
SMP_INVALID_PATH = 0x10
SMP_DEFERRED_FLAG = 0x20
SMP_POSIX_FLAG = 0x100
SMP_OS2_FLAG = 0x200

KEYWORDS: dict[str, int] = {
    "debug": SMP_DEBUG_FLAG,
    "async": SMP_ASYNC_FLAG,
    "autocheck": SMP_AUTOCHK_FLAG,
}

_TOKEN = re.compile(r"[^\x00-\x20]+")
_BLANKS = "".join(map(chr, range(0x21)))


class SmCommandLineError(Exception):
    """The command line cannot be parsed; ``status`` is what SmpParseCommandLine returns."""

    def __init__(self, status: int, command_line: str, detail: str) -> None:
        self.status = NtStatus(status)
        self.command_line = command_line
        super().__init__(f"{self.status.name}: {detail}: {command_line!r}")


@dataclass(frozen=True)
class SmCommand:
    flags: int
    # The full DOS path when found; the token as written when SMP_INVALID_PATH is set.
    image: str
    package: str | None
    arguments: str
    # The command line the started process receives.
    command_line: str

    @property
    def found(self) -> bool:
        return not self.flags & SMP_INVALID_PATH

    @property
    def status(self) -> NtStatus:
        """What SmpExecuteCommand returns for an image that is not there."""
        return NtStatus.STATUS_SUCCESS if self.found else NtStatus.STATUS_OBJECT_NAME_NOT_FOUND

    @property
    def nt_path(self) -> str:
        return "\\??\\" + self.image if self.found else self.image

    @property
    def directory(self) -> str | None:
        """The image's directory, the child's current directory (SmpExecuteImage)."""
        return self.image.rsplit("\\", 1)[0] if self.found and "\\" in self.image else None


def smp_parse_command_line(
    command_line: str,
    environment: Mapping[str, str],
    default_lib_path: str | Sequence[str] = "",
    *,
    system_root: str | None = None,
) -> SmCommand:
    """Parse one SM command line. Raises SmCommandLineError with STATUS_UNSUCCESSFUL when
    there is no image token and STATUS_OBJECT_NAME_NOT_FOUND when the environment has no
    ``Path``. An image that is not found sets SMP_INVALID_PATH instead of raising."""
    env = {key.upper(): value for key, value in environment.items()}
    root = system_root or env.get("SYSTEMROOT") or DEFAULT_SYSTEM_ROOT
    flags = 0
    position = 0
    while True:
        match = _TOKEN.search(command_line, position)
        if match is None:
            raise SmCommandLineError(NtStatus.STATUS_UNSUCCESSFUL, command_line, "no image name")
        keyword = KEYWORDS.get(match.group().lower())
        if keyword is None:
            break
        flags |= keyword
        position = match.end()
    token = match.group()
    if "PATH" not in env:
        raise SmCommandLineError(
            NtStatus.STATUS_OBJECT_NAME_NOT_FOUND, command_line, "Path is not in the environment"
        )
    lib_path = [root + "\\system32", *split_search_path(default_lib_path)]
    found = resolve_image(token, env["PATH"], root) or resolve_image(token, lib_path, root)
    if found is None:
        # ReactOS returns before reading the arguments of an image it cannot find.
        return SmCommand(flags | SMP_INVALID_PATH, token, None, "", command_line)
    image, package = found
    arguments = command_line[match.end() :].lstrip(_BLANKS)
    # SmpInvokeAutoChk runs "<NT file name> <arguments>"; other images get the line as is.
    started = f"\\??\\{image} {arguments}" if flags & SMP_AUTOCHK_FLAG else command_line
    return SmCommand(flags, image, package, arguments, started)
