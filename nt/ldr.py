"""The image loader's process start (ntdll ldrinit.c: LdrpInitializeProcess), as far as the
model has one: snapping the image's static imports (``nt.images.IMPORTS``).

Every modelled DLL is there, so imports fail only by fault injection:
``NTMODEL_FAULTS=condemo.exe:missing_dll=CONDEMOUI.dll`` makes that DLL absent for the
image. As in Windows, the loader then raises a hard error, STATUS_DLL_NOT_FOUND with the
DLL's name as its one string parameter (OptionOk: the user sees "The code execution
cannot proceed because X.dll was not found..."), and the process ends with that status
before its entry point runs.
"""

from __future__ import annotations

from typing import Protocol

from nt.images import IMPORTS
from nt.log import Logger
from nt.status import NtStatus
from nt.syscalls import OPTION_OK, NtError, SystemServices

UNICODE_STRING_PARAMETER_0 = 0x1  # parameter 0 is a string (UnicodeStringParameterMask)


class Image(Protocol):
    image: str
    log: Logger
    nt: SystemServices

    def fault(self, name: str) -> str | None: ...


def initialize_process(proc: Image) -> int:
    """LdrpInitializeProcess: STATUS_SUCCESS, or the status the process dies with."""
    missing = proc.fault("missing_dll")
    if not missing:
        return NtStatus.STATUS_SUCCESS
    imports = IMPORTS.get(proc.image.lower(), ())
    proc.log.error(
        "ldr.dll_not_found",
        dll=missing,
        imports=list(imports),
        status=NtStatus.STATUS_DLL_NOT_FOUND,
    )
    try:
        proc.nt.raise_hard_error(
            NtStatus.STATUS_DLL_NOT_FOUND, [missing], OPTION_OK, UNICODE_STRING_PARAMETER_0
        )
    except NtError as exc:
        proc.log.warning("ldr.hard_error_failed", status=exc.status)
    return NtStatus.STATUS_DLL_NOT_FOUND
