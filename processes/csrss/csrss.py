"""csrss.exe: CsrServerInitialization wired to real ports (csrss.c, csrsrv/init.c).

In order: base priority 13; parse the command line and load the server DLLs into their
slots (a DLL that does not load raises a hard error; before any hard-error port exists
the kernel turns that into a bugcheck with the status as its code); ``<dir>\\ApiPort``
with one request thread growing to MaxRequestThreads; ``<dir>\\SbApiPort`` with exactly
one thread; SmConnectToSm (this releases smss); NtSetDefaultHardErrorPort; become
critical. Windows marks csrss critical in every session; ReactOS only in session 0.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from nt.bootstrap import Process
from nt.status import NtStatus
from nt.syscalls import NtError
from ports import csr as csrproto
from ports import sb, sm
from ports.client import Connection, PortError
from processes.csrss.csrsrv import CsrServer
from processes.csrss.server import HardError

SHUTDOWN_SCALE_ENV = "NTMODEL_SHUTDOWN_SCALE"
CSRSS_PRIORITY = 13  # PROCESS_PRIORITY_NORMAL_FOREGROUND + 4

# APIs whose handlers only read or write csrss's own tables (no call to the kernel or to
# another process): the port thread runs them itself, without the hand-off to a request
# thread (ports/server.py). Everything else goes to the CSRSRV request-thread pool.
QUICK_APIS = (
    "CsrpClientConnect",
    "BasepGetTempFile",
    "BasepSetProcessShutdownParam",
    "BasepGetProcessShutdownParam",
    "BasepNlsGetUserInfo",
    "BasepNlsSetUserInfo",
    "UserpGetThreadConsoleDesktop",
    "UserpRegisterLogonProcess",
    "UserpRegisterServicesProcess",
    "ConsolepGetTitle",
    "ConsolepSetTitle",
    "ConsolepWriteConsole",
    "ConsolepReadConsole",
    "ConsolepGetMode",
    "ConsolepSetMode",
    "ConsolepGetScreenBufferInfo",
    "ConsolepReadConsoleOutputString",
    "ConsolepGetNumberOfInputEvents",
    "ConsolepWriteConsoleInput",
    "ConsolepGetProcessList",
)


def quick_api_numbers() -> frozenset[int]:
    return frozenset(a.number for a in map(csrproto.lookup_api, QUICK_APIS) if a is not None)


class KernelServicesImpl:
    """csrss's way to the kernel and to winlogon (processes/csrss/services.py)."""

    def __init__(self, proc: Process) -> None:
        self.proc = proc

    def _status(self, fn: Any, *args: Any) -> int:
        try:
            fn(*args)
        except (NtError, PortError) as exc:
            return exc.status
        return NtStatus.STATUS_SUCCESS

    def create_symbolic_link(self, name: str, target: str) -> int:
        return self._status(self.proc.nt.create_link, name, target)

    def delete_symbolic_link(self, name: str) -> int:
        return self._status(self.proc.nt.delete_object, name)

    def query_symbolic_link(self, name: str) -> tuple[int, str | None]:
        try:
            return NtStatus.STATUS_SUCCESS, self.proc.nt.query_link(name)
        except (NtError, PortError) as exc:
            return exc.status, None

    def query_process(self, pid: int) -> dict | None:
        try:
            return self.proc.nt.query_process(pid)
        except (NtError, PortError):
            return None

    def terminate_process(self, pid: int, exit_status: int) -> int:
        return self._status(self.proc.nt.terminate, pid, exit_status)

    def resume_process(self, pid: int) -> int:
        return self._status(self.proc.nt.resume, pid)

    def notify_winlogon(self, session: int, flags: int) -> int:
        # WM_LOGONNOTIFY/LN_LOGOFF: winlogon's SAS window arrives with the logon issue.
        self.proc.log.info("csr.notify_winlogon", target_session=session, flags=flags)
        return NtStatus.STATUS_SUCCESS


def main(proc: Process) -> int:
    proc.nt.set_base_priority(CSRSS_PRIORITY)
    services = KernelServicesImpl(proc)
    sm_conn: list[Connection] = []  # filled once SmConnectToSm succeeds

    def hard_error(err: HardError) -> None:
        proc.log.error("csr.server_dll_failed", status=err.status, parameters=list(err.parameters))
        proc.nt.raise_hard_error(
            err.status,
            list(err.parameters),
            err.valid_response_options,
            err.unicode_string_parameter_mask,
        )

    def session_complete(session_id: int, status: int) -> int:
        if not sm_conn:
            return NtStatus.STATUS_PORT_DISCONNECTED
        return sm.SmSessionComplete(sm_conn[0], session_id, status).status

    csr = CsrServer(
        services,
        pid=proc.pid,
        session_id=proc.session or 0,
        sm_session_complete=session_complete,
        raise_hard_error=hard_error,
        profile=proc.params.get("profile"),
    )
    cmd = csr.initialize(proc.command_line)
    if cmd.status != NtStatus.STATUS_SUCCESS:
        proc.log.error("csr.init_failed", status=cmd.status)
        return cmd.status
    user = csr.loaded[3].state if csr.loaded[3] is not None else None
    if user is not None and os.environ.get(SHUTDOWN_SCALE_ENV):
        # HungAppTimeout / WaitToKillAppTimeout multiplied by this (a divergence, logged)
        user.time_scale = float(os.environ[SHUTDOWN_SCALE_ENV])
        proc.log.info("divergence", what="shutdown timeouts scaled", scale=user.time_scale)
    directory = csrproto.object_directory(proc.session, cmd.object_directory or "\\Windows")
    if proc.session:
        proc.log.info(
            "divergence",
            what=f"csrss of session {proc.session} serves {directory} (Windows); "
            "ReactOS would reuse the command line's directory",
        )
    create_session_directories(proc)
    proc.nt.create_directory(directory, permanent=True)
    proc.lpc.events.subscribe(lambda pid, status, image: _client_died(csr, pid, status))
    kernel_pid = proc.params.get("kernel_pid")

    def accept(c: Any) -> bool:
        # The kernel connects to send hard errors (LPC_ERROR_EVENT) to the port named by
        # NtSetDefaultHardErrorPort; it is no CSR process, so its requests still fail.
        if c.pid == kernel_pid:
            return True
        return csr.accept_connection(c.pid, c.token)

    proc.lpc.create_port(
        f"{directory}\\{csrproto.API_PORT_NAME}",
        csrproto.API_PORT,
        dispatch=csr.dispatch,
        error_event=lambda m, c: (
            csr.handle_hard_error(m, c)
            if c.pid == kernel_pid
            else NtStatus.STATUS_ILLEGAL_FUNCTION  # LPC_ERROR_EVENT is the kernel's alone
        ),
        accept=accept,
        threads=1,
        max_threads=max(1, csr.max_request_threads),
        max_inflight=16,
        inline=quick_api_numbers(),
    )
    sb_name = f"{directory}\\{sb.SB_PORT_NAME}"
    proc.lpc.create_port(
        sb_name,
        sb.SB_API_PORT,
        csr.sb_handlers(),
        accept=csr.accept_sb_connection,
        threads=1,
        max_threads=1,
    )
    try:
        sm_conn.append(sm.SmConnectToSm(proc.lpc, cmd.subsystem_type, sb_name))
    except PortError as exc:
        proc.log.error("csr.sm_connect_failed", status=exc.status)
        return exc.status
    proc.log.info("csr.sm_connected", subsystem_type=cmd.subsystem_type, sb_port=sb_name)
    if proc.fault("exit_after_sm_connect"):  # the window before csrss is critical
        return int(proc.fault("exit_after_sm_connect"), 0)
    proc.nt.set_default_hard_error_port()
    if proc.session:
        proc.log.info(
            "divergence", what="csrss critical in every session (Windows); ReactOS: session 0 only"
        )
    proc.set_critical()
    proc.log.info(
        "csr.ready",
        api_port=f"{directory}\\ApiPort",
        max_request_threads=csr.max_request_threads,
        server_dlls=[d.name if d else None for d in csr.loaded],
    )
    threading.Event().wait()
    return 0


def create_session_directories(proc: Process) -> None:
    """What CsrParseServerCommandLine creates first: the session's object directories."""
    session = proc.session or 0
    base = "\\BaseNamedObjects" if session == 0 else f"\\Sessions\\{session}\\BaseNamedObjects"
    for path in (
        "\\Sessions\\BNOLINKS",
        f"\\Sessions\\{session}",
        f"\\Sessions\\{session}\\DosDevices",
        base,
    ):
        proc.nt.create_directory(path, permanent=True)
    try:
        proc.nt.create_link(f"\\Sessions\\BNOLINKS\\{session}", base, permanent=True)
    except NtError as exc:
        if exc.status != NtStatus.STATUS_OBJECT_NAME_COLLISION:
            raise


def _client_died(csr: CsrServer, pid: int, status: int) -> None:
    if csr.processes.locate(pid, include_terminating=True) is not None:
        csr.destroy_process(pid, status)
