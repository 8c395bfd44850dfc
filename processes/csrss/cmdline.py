"""``CsrParseServerCommandLine`` (subsystems/csr/csrsrv/init.c), quirks included.

Grammar and quirks: nt-spec.md §3.2 and §7 (#6, #7, #19). Each ``argv[1:]`` entry is split at
its first ``=``; names are case-insensitive. As in csrsrv, parsing *does* things: a
``SharedSection`` loads CSRSRV as server 0 and each ``ServerDll`` loads its DLL, through the
``loader`` callback (``CsrServer.load_server_dll``), at the point where it appears. Their
statuses take part in the "last status wins" rule (quirk #19): ``Status`` is overwritten by
every argument except ``ProfileControl``, and only the final value is returned, so an
unknown argument is fatal only when nothing after it resets ``Status``. Syntax errors in
``SharedSection``/``ServerDll`` and failed loads stop the parse at once, as in ReactOS.

Numbers go through ``rtl_char_to_integer``, a port of ``RtlCharToInteger``: it stops at
the first non-digit and succeeds even when there is none (the value is then 0).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from nt.status import NtStatus, nt_success
from ports.csr import CSRSRV_SERVERDLL_INDEX
from ports.sm import (
    IMAGE_SUBSYSTEM_NATIVE,
    IMAGE_SUBSYSTEM_OS2_CUI,
    IMAGE_SUBSYSTEM_POSIX_CUI,
    IMAGE_SUBSYSTEM_UNKNOWN,
    IMAGE_SUBSYSTEM_WINDOWS_CUI,
    IMAGE_SUBSYSTEM_WINDOWS_GUI,
)

DEFAULT_MAX_REQUEST_THREADS = 16
DEFAULT_INIT_ROUTINE = "ServerDllInitialization"
CSRSRV_DLL_NAME = "CSRSS"  # what CsrParseServerCommandLine passes for server 0
PAGE_SIZE = 4096

SUCCESS = NtStatus.STATUS_SUCCESS
INVALID = NtStatus.STATUS_INVALID_PARAMETER

# (dll name, init routine or None for the default, index) -> NTSTATUS
Loader = Callable[[str, str | None, int], int]


class ServerDllArg(NamedTuple):
    dll: str
    init: str | None
    index: int


@dataclass
class CsrCommandLine:
    """What the command line set, in csrsrv's variable terms."""

    object_directory: str | None = None  # CsrDirectoryName
    shared_section_kb: int | None = None  # the *second* number of SharedSection (quirk #6)
    shared_section_size: int = 0  # CsrSrvSharedSectionSize, bytes, page-rounded
    windows_control: bool = False  # CsrWindowsControl
    subsystem_type: int = IMAGE_SUBSYSTEM_UNKNOWN  # CsrSubSystemType
    max_request_threads: int = DEFAULT_MAX_REQUEST_THREADS  # CsrMaxApiRequestThreads
    server_dlls: list[ServerDllArg] = field(default_factory=list)  # command-line order
    load_order: list[int] = field(default_factory=list)  # CsrLoadServerDll calls, by index
    status: int = SUCCESS
    log: list[str] = field(default_factory=list)  # quirks applied, divergences


def split_command_line(command_line: str) -> list[str]:
    """argv as the C runtime builds it: whitespace separates, double quotes group."""
    args: list[str] = []
    current: list[str] = []
    quoted = in_arg = False
    for ch in command_line:
        if ch == '"':
            quoted = not quoted
            in_arg = True
        elif ch in " \t" and not quoted:
            if in_arg:
                args.append("".join(current))
                current, in_arg = [], False
        else:
            current.append(ch)
            in_arg = True
    if in_arg:
        args.append("".join(current))
    return args


def rtl_char_to_integer(text: str, base: int) -> tuple[int, int, bool]:
    """RtlCharToInteger: (status, ULONG value, whether any digit was read)."""
    i, n = 0, len(text)
    while i < n and text[i] <= " ":
        i += 1
    negative = False
    if i < n and text[i] in "+-":
        negative = text[i] == "-"
        i += 1
    if base == 0:
        base = 10
        if text[i : i + 1] == "0" and text[i + 1 : i + 2] in ("b", "o", "x"):
            base = {"b": 2, "o": 8, "x": 16}[text[i + 1]]
            i += 2
    elif base not in (2, 8, 10, 16):
        return INVALID, 0, False
    total, digits = 0, False
    while i < n:
        ch = text[i]
        digit = int(ch, 36) if ch.isascii() and ch.isalnum() else -1
        if not 0 <= digit < base:
            break
        total = (total * base + digit) & 0xFFFFFFFF
        digits = True
        i += 1
    return SUCCESS, (-total if negative else total) & 0xFFFFFFFF, digits


def shared_section_size(value: str) -> tuple[int, int, int]:
    """CsrSrvCreateSharedSection's parse: (status, KB, bytes). Only the text after the
    first comma counts (quirk #6)."""
    comma = value.find(",")
    if comma < 0 or comma + 1 >= len(value):
        return INVALID, 0, 0
    status, kb, _ = rtl_char_to_integer(value[comma + 1 :], 0)
    if not nt_success(status):
        return status, 0, 0
    size = (kb * 1024) & 0xFFFFFFFF
    size = (size + PAGE_SIZE - 1) // PAGE_SIZE * PAGE_SIZE
    if size == 0:  # NtCreateSection refuses an empty pagefile-backed section
        return INVALID, kb, 0
    return SUCCESS, kb, size


def split_server_dll(value: str) -> tuple[str, str | None, str] | None:
    """The ServerDll scan: ``dll[:Init],index``; the first ':' before the first ',' starts
    the entry point. None when there is no ',' or nothing after it."""
    i, n = 0, len(value)
    colon = entry = comma = None
    while i < n:
        if value[i] == ":" and colon is None:
            colon, entry = i, i + 1
            i += 1
            if i >= n:
                break
        ch = value[i]
        i += 1
        if ch == ",":
            comma = i - 1
            break
    if comma is None or i >= n:
        return None
    dll = value[: colon if colon is not None else comma]
    init = value[entry:comma] if entry is not None else None
    return dll, init, value[comma + 1 :]


def parse_server_command_line(
    argv: Sequence[str] | str, loader: Loader | None = None
) -> CsrCommandLine:
    """Parse csrss's argv (``argv[0]`` is the image); load DLLs through ``loader``."""
    if isinstance(argv, str):
        argv = split_command_line(argv)
    result = CsrCommandLine()
    for arg in argv[1:]:
        name, sep, value = arg.partition("=")
        handler = _HANDLERS.get(name.lower())
        if handler is None:
            result.status = INVALID
            result.log.append(f"unknown argument {name!r}: Status = STATUS_INVALID_PARAMETER")
            continue
        if not sep and handler is not _profile_control:
            # ReactOS dereferences the NULL value here; the model refuses the argument.
            result.status = INVALID
            result.log.append(f"divergence: {name} without '=' refused")
            return result
        if handler(result, value, loader):
            return result
    if not nt_success(result.status):
        result.log.append("quirk #19: the last Status is returned")
    return result


def _object_directory(r: CsrCommandLine, value: str, loader: Loader | None) -> bool:
    r.object_directory = value
    r.status = SUCCESS
    return False


def _subsystem_type(r: CsrCommandLine, value: str, loader: Loader | None) -> bool:
    named = {
        "posix": IMAGE_SUBSYSTEM_POSIX_CUI,
        "os2": IMAGE_SUBSYSTEM_OS2_CUI,
        "native": IMAGE_SUBSYSTEM_NATIVE,
    }
    key = value.lower()
    r.status = SUCCESS
    if key == "windows":
        r.subsystem_type = (
            IMAGE_SUBSYSTEM_WINDOWS_GUI if r.windows_control else IMAGE_SUBSYSTEM_WINDOWS_CUI
        )
        if not r.windows_control:
            r.log.append("quirk #7: SubSystemType=Windows before Windows=On gives CUI (3)")
    elif key in named:
        r.subsystem_type = named[key]
    else:
        r.status, r.subsystem_type, _ = rtl_char_to_integer(value, 0)
    return False


def _max_request_threads(r: CsrCommandLine, value: str, loader: Loader | None) -> bool:
    r.status, number, digits = rtl_char_to_integer(value, 0)
    if nt_success(r.status):
        r.max_request_threads = number
        if not digits:
            r.log.append(f"quirk: MaxRequestThreads={value!r} has no digits, read as 0")
    return False


def _request_threads(r: CsrCommandLine, value: str, loader: Loader | None) -> bool:
    r.status = SUCCESS
    return False


def _profile_control(r: CsrCommandLine, value: str, loader: Loader | None) -> bool:
    if not nt_success(r.status):
        r.log.append("quirk #19: ProfileControl does not reset Status")
    return False


def _shared_section(r: CsrCommandLine, value: str, loader: Loader | None) -> bool:
    status, kb, size = shared_section_size(value)
    if not nt_success(status):
        r.status = status
        r.log.append(f"invalid syntax for SharedSection={value}")
        return True
    r.shared_section_kb, r.shared_section_size = kb, size
    r.log.append(f"quirk #6: SharedSection uses its second number ({kb} KB)")
    r.load_order.append(CSRSRV_SERVERDLL_INDEX)
    r.status = loader(CSRSRV_DLL_NAME, None, CSRSRV_SERVERDLL_INDEX) if loader else SUCCESS
    return False


def _server_dll(r: CsrCommandLine, value: str, loader: Loader | None) -> bool:
    parts = split_server_dll(value)
    if parts is None:
        r.status = INVALID
        r.log.append(f"invalid syntax for ServerDll={value}")
        return True
    dll, init, index_text = parts
    _, index, _ = rtl_char_to_integer(index_text, 10)
    r.server_dlls.append(ServerDllArg(dll, init, index))
    r.load_order.append(index)
    r.status = loader(dll, init, index) if loader else SUCCESS
    if not nt_success(r.status):
        r.log.append(f"failed loading ServerDll={value} (status 0x{r.status:08X})")
        return True
    return False


def _windows(r: CsrCommandLine, value: str, loader: Loader | None) -> bool:
    r.windows_control = value.lower() == "on"
    r.status = SUCCESS
    return False


_HANDLERS: dict[str, Callable[[CsrCommandLine, str, Loader | None], bool]] = {
    "objectdirectory": _object_directory,
    "subsystemtype": _subsystem_type,
    "maxrequestthreads": _max_request_threads,
    "requestthreads": _request_threads,
    "profilecontrol": _profile_control,
    "sharedsection": _shared_section,
    "serverdll": _server_dll,
    "windows": _windows,
}
