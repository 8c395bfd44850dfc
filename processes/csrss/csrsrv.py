"""CSRSRV: the csrss server, without sockets.

``CsrServer`` holds what csrsrv keeps in globals: ``CsrLoadedServerDll`` (slot 0 CSRSRV;
4 slots as in ReactOS, 5 in the ``win7`` profile and 6 in ``win10``: ``ports.csr``), the
process list under ``CsrRootProcess``, the CSR_NT_SESSIONs, and the hooks to the outside
world. The ports layer calls:

- ``initialize(argv)``: CsrParseServerCommandLine + CsrInitCsrRootProcess; loads the
  server DLLs named on the command line;
- ``accept_connection(pid, token)``: the ApiPort connect rule;
- ``dispatch(api_number, body, client)``: one ApiPort request -> ``Reply``;
- ``accept_sb_connection(client)`` / ``sb_handlers()``: the SbApiPort (a plain table);
- ``handle_hard_error(body)``: an LPC_ERROR_EVENT from the kernel;
- ``destroy_process(pid, exit_status)``: the kernel reported a process death.

Submodules: api (records, dispatch), process (CSR_PROCESS, sessions), session (SB API),
server (DLL loading, ClientConnect), shutdown (CsrShutdownProcesses).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

from nt.log import get_logger
from nt.status import NtStatus, nt_success
from ports.contract import ClientContext, Handler, Reply
from ports.csr import CSR_SERVER_DLL_MAX, csr_server_dll_max
from ports.pool import RequestThreadCounters
from processes.csrss import api, process, server, session, shutdown
from processes.csrss.api import ServerDll
from processes.csrss.cmdline import (
    DEFAULT_MAX_REQUEST_THREADS,
    CsrCommandLine,
    parse_server_command_line,
)
from processes.csrss.process import CsrProcess, CsrProcessList
from processes.csrss.server import HardError, LoadResult
from processes.csrss.services import KernelServices

__all__ = ["CsrServer", "RequestThreadCounters", "ServerDll", "CsrProcess"]

log = get_logger()


class CsrServer:
    def __init__(
        self,
        services: KernelServices,
        *,
        pid: int | None = None,
        session_id: int | None = 0,
        resume: Callable[[int], int] | None = None,
        terminate: Callable[[int, int], int] | None = None,
        sm_session_complete: Callable[[int, int], Any] | None = None,
        raise_hard_error: Callable[[HardError], Any] | None = None,
        profile: str | None = None,
    ) -> None:
        self.services = services
        self.pid = os.getpid() if pid is None else pid
        self.session_id = session_id  # csrss's own MuSessionId
        self.profile = profile
        # CsrLoadedServerDll's size; the per-process server data arrays have as many.
        self.server_dll_max = csr_server_dll_max(profile)
        self.loaded: list[ServerDll | None] = [None] * self.server_dll_max
        self.processes = CsrProcessList(self.pid, self.server_dll_max)
        self.total_per_process_data = 0
        self.command_line: CsrCommandLine | None = None
        self.max_request_threads = DEFAULT_MAX_REQUEST_THREADS
        self._resume = resume or services.resume_process
        self._terminate = terminate or services.terminate_process
        self._sm_session_complete = sm_session_complete
        self._raise_hard_error = raise_hard_error
        self._dll_globals: dict[str, dict[str, Any]] = {}
        self._globals_lock = threading.Lock()

    # --- initialisation ---------------------------------------------------------------

    def initialize(self, argv: Sequence[str] | str) -> CsrCommandLine:
        """Parse the command line, loading its DLLs; then give the root process to each."""
        if self.server_dll_max != CSR_SERVER_DLL_MAX:
            log.info(
                "divergence",
                what=f"CsrLoadedServerDll has {self.server_dll_max} slots ({self.profile}, "
                f"Windows 7: 5, Windows 8+: 6); ReactOS has {CSR_SERVER_DLL_MAX}",
            )
        cmd = parse_server_command_line(argv, loader=self._load_from_command_line)
        self.command_line = cmd
        self.max_request_threads = cmd.max_request_threads
        for line in cmd.log:
            log.info("csr.cmdline", note=line)
        if nt_success(cmd.status):
            for server_dll in self.loaded:
                if server_dll and server_dll.new_process_callback:
                    server_dll.new_process_callback(None, self.processes.root)
        return cmd

    def load_server_dll(self, dll_name: str, init_name: str | None, index: int) -> LoadResult:
        return server.load_server_dll(self, dll_name, init_name, index)

    def _load_from_command_line(self, dll_name: str, init_name: str | None, index: int) -> int:
        result = self.load_server_dll(dll_name, init_name, index)
        if result.hard_error is not None and self._raise_hard_error is not None:
            self._raise_hard_error(result.hard_error)
        return result.status

    def dll_globals(self, dll_name: str) -> dict[str, Any]:
        """One DLL's global variables in this csrss (winsrv's two servers share them)."""
        with self._globals_lock:
            return self._dll_globals.setdefault(dll_name.lower(), {})

    def request_thread_counters(self) -> RequestThreadCounters:
        """The ApiPort pool rule with this command line's MaxRequestThreads. The first
        thread exists whatever the value, so 0 (``MaxRequestThreads=junk``) means 1."""
        if self.max_request_threads < 1:
            log.info("csr.cmdline", note="MaxRequestThreads < 1: the first thread only")
        return RequestThreadCounters(initial=1, max_threads=max(1, self.max_request_threads))

    # --- ports ---------------------------------------------------------------------------

    def accept_connection(self, pid: int, token: dict | None = None) -> bool:
        return server.accept_connection(self, pid, token)

    def dispatch(self, api_number: int, message: Any, client: ClientContext) -> Reply:
        return api.dispatch(self, api_number, message, client)

    def call_server_from_server(
        self, api_number: int, message: Any, client: ClientContext
    ) -> Reply:
        return api.call_server_from_server(self, api_number, message, client)

    def accept_sb_connection(self, client: ClientContext) -> bool:
        return session.accept_sb_connection(client)

    def sb_handlers(self) -> dict[int, Handler]:
        return session.sb_handlers(self)

    def handle_hard_error(self, message: Any, client: ClientContext | None = None) -> Reply:
        return server.handle_hard_error(self, message, client)

    # --- processes -----------------------------------------------------------------------

    def client_process(self, client: ClientContext) -> CsrProcess | None:
        """The caller's CSR_PROCESS (the root process for csrss's own calls)."""
        if client.pid == self.pid:
            return self.processes.root
        return self.processes.locate(client.pid, include_terminating=True)

    def create_process(
        self, parent: CsrProcess, pid: int, tid: int = 0, flags: int = 0, info: dict | None = None
    ) -> tuple[int, CsrProcess | None]:
        return process.create_process(self, parent, pid, tid, flags, info)

    def sb_create_session(self, session_id: int, process_info: dict) -> Reply:
        return session.sb_create_session(self, session_id, process_info)

    def destroy_process(self, pid: int, exit_status: int) -> int:
        return process.destroy_process(self, pid, exit_status)

    def dereference_process(self, csr_process: CsrProcess) -> None:
        process.dereference_process(self, csr_process)

    def shutdown_processes(self, caller_logon_id: str | None, flags: int) -> int:
        return shutdown.shutdown_processes(self, caller_logon_id, flags)

    # --- hooks ---------------------------------------------------------------------------

    def resume(self, pid: int) -> int:
        return self.call_hook("resume", self._resume, pid)

    def terminate(self, pid: int, exit_status: int) -> int:
        return self.call_hook("terminate", self._terminate, pid, exit_status)

    def session_complete(self, session_id: int, exit_status: int) -> None:
        """SmSessionComplete to smss (which answers STATUS_NOT_IMPLEMENTED in ReactOS)."""
        log.info("csr.session_complete", nt_session=session_id, status=exit_status)
        if self._sm_session_complete is not None:
            self.call_hook(
                "sm_session_complete", self._sm_session_complete, session_id, exit_status
            )

    def call_hook(self, name: str, hook: Callable[..., Any], *args: Any) -> int:
        """Call out of csrss (a kernel service, smss): a failure is a status, not a crash."""
        try:
            status = hook(*args)
        except Exception:
            log.exception("csr.hook_failed", hook=name)
            return NtStatus.STATUS_UNSUCCESSFUL
        return int(status) if isinstance(status, int) else NtStatus.STATUS_SUCCESS
