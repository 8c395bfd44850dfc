"""SXSSRV, the side-by-side server DLL of Windows 7 and later (``ServerDll=sxssrv,4``).

What the sources say, and what the model copies:

- the slot: Windows 7 raised CsrLoadedServerDll from 4 to 5 for new server DLLs, Windows 8
  to 6 (Geoff Chappell, CSR_SERVER_DLL); the real SubSystems\\Windows line names
  ``ServerDll=sxssrv,4``;
- no API table of its own: sxssrv's ServerDllInitialization sets ApiBase,
  HighestApiSupported, DispatchTable and ValidTable to 0 (public disassembly of the
  Windows 10 sxssrv.dll), so every API number of server 4 is STATUS_ILLEGAL_FUNCTION;
- its work: it builds the activation-context cache (``BaseSrvSxsInitializeActivation-
  ContextCache``) and hands its routines to basesrv with ``BaseSrvRegisterSxS``
  (a BASESRV export from 6.1, Chappell). ``BaseSrvSxsCreateActivationContext`` and
  ``BaseSrvSxsCreateProcess`` run "inside SXSSRV.DLL" (Project Zero issue 1749, which
  also describes the cache: "CSRSS caches the parsed activation context binary format");
  clients reach them through basesrv's ``BasepCreateActivationContext`` (Windows 10 API
  0x10017; 0x1001B in the ReactOS/Windows Server 2003 numbering the model keeps).

The model's activation context: the manifest's NT path (DOS paths converted as
RtlDosPathNameToNtPathName_U does) with the processor architecture, language and
assembly directory it is for. The cache maps that key to one context id; a second
request for the same key is a hit. The model does not read the manifest (no XML parse):
the id stands for the generated ACTIVATION_CONTEXT_DATA section. Divergence: sxssrv has
``SizeOfProcessData`` 0; the model keeps the contexts a process created in its server
data slot, so that the log and the tests can see them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from nt.log import get_logger
from nt.status import NtStatus
from ports.contract import Reply
from ports.csr import SXSSRV_APIS, SXSSRV_FIRST_API_NUMBER, SXSSRV_HIGHEST_API_SUPPORTED
from processes.csrss.api import ServerDll, install_tables
from processes.csrss.basesrv import BaseSrvRegisterSxS, SxsFunctions, dos_path_to_nt_path
from processes.csrss.process import CsrProcess

log = get_logger()

# ACTCTX dwFlags (winbase.h); anything else is refused as kernel32 refuses it.
ACTCTX_FLAG_PROCESSOR_ARCHITECTURE_VALID = 0x01
ACTCTX_FLAG_LANGID_VALID = 0x02
ACTCTX_FLAG_ASSEMBLY_DIRECTORY_VALID = 0x04
ACTCTX_FLAG_RESOURCE_NAME_VALID = 0x08
ACTCTX_FLAG_SET_PROCESS_DEFAULT = 0x10
ACTCTX_FLAG_APPLICATION_NAME_VALID = 0x20
ACTCTX_FLAG_SOURCE_IS_ASSEMBLYREF = 0x40
ACTCTX_FLAG_HMODULE_VALID = 0x80
ACTCTX_FLAGS_ALL = 0xFF

CACHE_MAX = 1024  # entries; the oldest goes first (the real cache is bounded too)
CONTEXTS_PER_PROCESS_MAX = 256  # a client cannot grow csrss without bound


@dataclass
class SxsProcessData:
    """The activation contexts one process created, and its default one."""

    contexts: list[int] = field(default_factory=list)
    default: int | None = None


class SxsServer:
    """sxssrv's globals for one csrss: the activation-context cache."""

    def __init__(self, server_dll: ServerDll) -> None:
        self.dll = server_dll
        self.lock = threading.Lock()
        self.cache: OrderedDict[tuple[str, int, int, str], int] = OrderedDict()
        self.next_context = 1

    def create_activation_context(self, process: CsrProcess, message: dict) -> Reply:
        """BaseSrvSxsCreateActivationContext: a context for the manifest, from the cache
        when it holds one for the same manifest, architecture, language and directory."""
        flags = message["flags"]
        path = message["manifest_path"]
        directory = message["assembly_directory"]
        if flags & ~ACTCTX_FLAGS_ALL or not path:
            return Reply(NtStatus.STATUS_INVALID_PARAMETER)
        if bool(flags & ACTCTX_FLAG_ASSEMBLY_DIRECTORY_VALID) != bool(directory):
            return Reply(NtStatus.STATUS_INVALID_PARAMETER)
        nt_path = _absolute_nt_path(path)
        if nt_path is None:
            return Reply(NtStatus.STATUS_OBJECT_PATH_SYNTAX_BAD)
        key = (
            nt_path.lower(),
            message["processor_architecture"],
            message["lang_id"],
            directory.lower(),
        )
        slot = self.dll.server_id
        with self.lock:
            data = process.server_data[slot]
            if data is None:
                data = process.server_data[slot] = SxsProcessData()
            if len(data.contexts) >= CONTEXTS_PER_PROCESS_MAX:
                return Reply(NtStatus.STATUS_INSUFFICIENT_RESOURCES)
            context = self.cache.get(key)
            cached = context is not None
            if context is None:
                context = self.next_context
                self.next_context = (self.next_context + 1) & 0xFFFFFFFF or 1
                self.cache[key] = context
                while len(self.cache) > CACHE_MAX:
                    self.cache.popitem(last=False)
            else:
                self.cache.move_to_end(key)
            data.contexts.append(context)
            if flags & ACTCTX_FLAG_SET_PROCESS_DEFAULT:
                data.default = context
        log.info(
            "sxs.actctx_create",
            process_pid=process.pid,
            manifest=nt_path,
            activation_context=context,
            cached=cached,
        )
        return Reply(NtStatus.STATUS_SUCCESS, {"activation_context": context, "cached": cached})


def _absolute_nt_path(path: str) -> str | None:
    """The NT path of an absolute DOS or NT path; None for a relative one, which the
    client (kernel32) should have made absolute before it called csrss."""
    if path.startswith(("\\??\\", "\\\\")):
        return dos_path_to_nt_path(path)
    if len(path) >= 3 and path[0].isascii() and path[0].isalpha() and path[1:3] == ":\\":
        return dos_path_to_nt_path(path)
    return None


def ServerDllInitialization(server_dll: ServerDll) -> int:  # noqa: N802 - the export's name
    """sxssrv!ServerDllInitialization: an empty API table, the cache, BaseSrvRegisterSxS."""
    assert server_dll.csr is not None
    install_tables(
        server_dll, SXSSRV_APIS, {}, SXSSRV_FIRST_API_NUMBER, SXSSRV_HIGHEST_API_SUPPORTED
    )
    sxs = SxsServer(server_dll)
    server_dll.state = sxs
    return BaseSrvRegisterSxS(
        server_dll, SxsFunctions(create_activation_context=sxs.create_activation_context)
    )
