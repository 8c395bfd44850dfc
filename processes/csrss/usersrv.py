"""USERSRV, winsrv's User server (win32ss/user/winsrv/usersrv; nt-spec.md §3.9, §3.10, §5.5).

Server 3, API base 1024, ``UserpMaxApiNumber`` 1034. The model has no win32k and no
windows, so:

- ``SrvExitWindowsEx`` does win32k's part itself: a caller other than winlogon has its
  request posted to winlogon (``notify_winlogon``) and gets STATUS_PENDING; winlogon's own
  call runs ``CsrShutdownProcesses``;
- ``SrvEndTask`` names a process, not a window. It refuses csrss itself and any critical
  process with STATUS_ACCESS_DENIED (the hugsy 2020 0xEF bug; reliability C7), a
  process of another session, and another user's process unless the caller holds
  SeDebugPrivilege (event 4656). The model cannot post WM_CLOSE, so it terminates;
- a process "has top-level windows" when ``query_end_session`` (an optional hook) answers
  for it: True to agree, False to cancel the shutdown. Without the hook no process has
  windows, and console/non-console rules decide (nt-spec.md §3.10).

Registrations take the process id from the message, as user32 sends it, but it must be
the caller's own (identity comes from the port, never from the payload).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nt.log import get_logger
from nt.seaudit import audit_open_denied, audit_privilege_denied
from nt.security import may_terminate
from nt.status import NtStatus, nt_success
from ports.contract import NOT_IMPLEMENTED, ClientContext, Reply
from ports.csr import (
    USERSRV_APIS,
    USERSRV_CONNECT_INFO,
    USERSRV_FIRST_API_NUMBER,
    UserpMaxApiNumber,
)
from ports.schema import SchemaError, validate
from processes.csrss.api import ServerDll, ShutdownResult, install_tables
from processes.csrss.harderror import show_box
from processes.csrss.process import SYSTEM_LOGON_ID, CsrProcess, CsrShutdownFlags

log = get_logger()
HUNG = object()  # _query_end_session: the application did not answer in time

EWX_LOGOFF = 0x0
EWX_SHUTDOWN = 0x1
EWX_REBOOT = 0x2
EWX_FORCE = 0x4
EWX_POWEROFF = 0x8
EWX_FORCEIFHUNG = 0x10
EWX_CALLER_SYSTEM = 0x100
EWX_CALLER_WINLOGON = 0x200
EWX_NONOTIFY = 0x10000
SHUTDOWN_PRIVILEGE = "SeShutdownPrivilege"
CONTEXT_FLAGS = CsrShutdownFlags.CsrShutdownSystem | CsrShutdownFlags.CsrShutdownOther

# HARDERROR_RESPONSE for the first button of each HARDERROR_RESPONSE_OPTION: the model
# has no desktop to show the box on, so the default button is "pressed".
HARD_ERROR_DEFAULT_RESPONSE = {0: 2, 1: 6, 2: 6, 3: 7, 4: 8, 5: 8, 6: 6, 7: 6, 8: 3}


@dataclass
class ShutdownSettings:
    """GetTimeouts (win32ss/user/winsrv/init.c), in milliseconds."""

    hung_app_timeout: int = 5000
    wait_to_kill_app_timeout: int = 20000
    auto_end_tasks: int = 0
    wait_to_kill_service_timeout: int = 20000
    process_terminate_timeout: int = 90000


class UserServer:
    """usersrv's globals for one csrss, and its API routines."""

    def __init__(self, server_dll: ServerDll) -> None:
        assert server_dll.csr is not None
        self.dll = server_dll
        self.csr = server_dll.csr
        self.logon_process_id = 0  # LogonProcessId
        self.services_process_id = 0
        self.services_process_id_valid = False
        self.logged_on = False
        self.system_threads = 0
        self.settings = ShutdownSettings()
        self.settings_loader: Callable[[Any], dict] | None = None
        self.query_end_session: Callable[[int, int], bool | None] | None = None
        self.time_scale = 1.0  # the shutdown timeouts are multiplied by this (a divergence)

    # --- shutdown ------------------------------------------------------------------------

    def exit_windows_ex(self, message: dict, client: ClientContext) -> int | Reply:
        """SrvExitWindowsEx -> UserExitReactOS."""
        flags = message["flags"]
        is_winlogon = self.logon_process_id != 0 and client.pid == self.logon_process_id
        if flags & EWX_CALLER_WINLOGON and not is_winlogon:
            log.warning("csr.exit_windows_denied", caller_pid=client.pid, flags=hex(flags))
            return NtStatus.STATUS_ACCESS_DENIED
        if flags & (EWX_POWEROFF | EWX_REBOOT):
            flags |= EWX_SHUTDOWN
        process = self.csr.client_process(client)
        logon_id = process.logon_id if process else None
        if is_winlogon and message.get("logon_id"):
            # winlogon logs a user off impersonating her: her processes are the caller's.
            logon_id = message["logon_id"]
        if logon_id == SYSTEM_LOGON_ID:
            flags |= EWX_CALLER_SYSTEM
        if not is_winlogon:
            return self._forward_to_winlogon(flags & ~EWX_CALLER_WINLOGON, client)
        return self.csr.shutdown_processes(logon_id, flags)

    def _forward_to_winlogon(self, flags: int, client: ClientContext) -> int | Reply:
        """win32k's half: check the privilege, post WM_LOGONNOTIFY/LN_LOGOFF to winlogon."""
        privileges = (client.token or {}).get("privileges")
        if flags & EWX_SHUTDOWN and privileges is not None and SHUTDOWN_PRIVILEGE not in privileges:
            audit_privilege_denied(
                log,
                client.token,
                SHUTDOWN_PRIVILEGE,
                server="Win32 SystemShutdown module",
                object_name="ExitWindowsEx",
                pid=client.pid,
                image=client.image,
            )
            return NtStatus.STATUS_PRIVILEGE_NOT_HELD
        session = client.session if client.session is not None else self.csr.session_id
        status = self.csr.call_hook(
            "notify_winlogon", self.csr.services.notify_winlogon, session or 0, flags
        )
        log.info(
            "csr.exit_windows_forwarded",
            caller_pid=client.pid,
            flags=hex(flags),
            status=status,
        )
        if not nt_success(status):
            return status
        return Reply(NtStatus.STATUS_PENDING)

    def client_shutdown(self, process: CsrProcess, flags: int, first_phase: bool) -> int:
        """UserClientShutdown, the usersrv ShutdownProcessCallback."""
        if flags & EWX_SHUTDOWN == EWX_LOGOFF and process.shutdown_flags & CONTEXT_FLAGS:
            return ShutdownResult.CsrShutdownNonCsrProcess
        if process.pid == self.logon_process_id:
            return ShutdownResult.CsrShutdownCsrProcess  # handled: winlogon is never killed
        result = self._notify_user_process(process, flags)
        if result != ShutdownResult.CsrShutdownCsrProcess:
            return result
        self.csr.terminate(process.pid, 0)
        return ShutdownResult.CsrShutdownCsrProcess

    def _notify_user_process(self, process: CsrProcess, flags: int) -> int:
        """NotifyUserProcessForShutdown: WM_QUERYENDSESSION to its top-level windows."""
        if flags & EWX_FORCE:
            return ShutdownResult.CsrShutdownCsrProcess
        answer = self._query_end_session(process, flags) if self.query_end_session else None
        if answer is HUNG:
            return ShutdownResult.CsrShutdownCsrProcess  # ended like EndTask: see _wait
        if answer is None:
            return ShutdownResult.CsrShutdownNonCsrProcess  # no top-level window
        if not answer:
            return ShutdownResult.CsrShutdownCancelled
        return ShutdownResult.CsrShutdownCsrProcess

    def _query_end_session(self, process: CsrProcess, flags: int) -> bool | None | object:
        """WM_QUERYENDSESSION with the shutdown timeouts: an application that has not
        answered after HungAppTimeout is hung; with EWX_FORCEIFHUNG it is ended at once,
        otherwise after WaitToKillAppTimeout (no "End task" dialog in the model: it is
        ended as AutoEndTasks would). Timeouts are multiplied by ``time_scale``."""
        answer: list = []
        done = threading.Event()

        def ask() -> None:
            answer.append(self.query_end_session(process.pid, flags))
            done.set()

        threading.Thread(target=ask, name=f"QueryEndSession-{process.pid}", daemon=True).start()
        hung = self.settings.hung_app_timeout / 1000 * self.time_scale
        if done.wait(hung):
            return answer[0]
        wait_more = 0.0 if flags & EWX_FORCEIFHUNG else self.settings.wait_to_kill_app_timeout
        if wait_more and done.wait(max(0.0, wait_more / 1000 * self.time_scale - hung)):
            return answer[0]
        log.warning(
            "csr.hung_app_killed",
            process_pid=process.pid,
            hung_ms=self.settings.hung_app_timeout,
            waited_ms=max(self.settings.hung_app_timeout, wait_more),
            force_if_hung=bool(flags & EWX_FORCEIFHUNG),
        )
        return HUNG

    def end_task(self, message: dict, client: ClientContext) -> Reply:
        """SrvEndTask, for a process id. Never csrss, never a critical process."""
        pid = message["process_id"]
        denied = Reply(NtStatus.STATUS_ACCESS_DENIED, {"success": False})
        if pid == self.csr.pid:
            log.warning(
                "csr.end_task_refused", caller_pid=client.pid, target_pid=pid, reason="csrss"
            )
            return denied
        kernel = self.csr.services.query_process(pid)
        if kernel is None or self.csr.processes.locate(pid) is None:
            return Reply(NtStatus.STATUS_INVALID_CID, {"success": False})
        if kernel.get("critical"):
            log.warning(
                "csr.end_task_refused", caller_pid=client.pid, target_pid=pid, reason="critical"
            )
            return denied
        if client.pid != self.csr.pid and kernel.get("session") != client.session:
            log.warning(
                "csr.end_task_refused", caller_pid=client.pid, target_pid=pid, reason="session"
            )
            return denied
        if client.pid != self.csr.pid and not may_terminate(
            client.token or {}, kernel.get("token") or {}
        ):
            # csrss terminates with its own rights: it checks the caller's first (PROCESS_
            # TERMINATE: the same user, or SeDebugPrivilege), as NtTerminateProcess would.
            log.warning(
                "csr.end_task_refused", caller_pid=client.pid, target_pid=pid, reason="user"
            )
            audit_open_denied(
                log,
                client.token,
                server="Security",
                object_type="Process",
                object_name=f"{kernel.get('image', '')} ({pid})",
                desired=0x0001,  # PROCESS_TERMINATE
                pid=client.pid,
                image=client.image,
            )
            return denied
        status = self.csr.terminate(pid, 1)
        log.info(
            "csr.end_task",
            caller_pid=client.pid,
            target_pid=pid,
            force=message["force"],
            status=status,
        )
        return Reply(status, {"success": nt_success(status)})

    # --- registrations -------------------------------------------------------------------

    def logon(self, message: dict, client: ClientContext) -> int:
        """SrvLogon: remember the logon state and re-read the shutdown timeouts."""
        self.logged_on = message["logon"]
        if self.settings_loader is not None:
            values = self.settings_loader(client) or {}
            known = {k: int(v) for k, v in values.items() if hasattr(self.settings, k)}
            self.settings = ShutdownSettings(**{**self.settings.__dict__, **known})
            self.settings.process_terminate_timeout = max(
                5000, self.settings.process_terminate_timeout
            )
        return NtStatus.STATUS_SUCCESS

    def register_services_process(self, message: dict, client: ClientContext) -> int:
        if message["process_id"] != client.pid:
            return NtStatus.STATUS_ACCESS_DENIED
        with self.csr.processes.lock:
            if self.services_process_id_valid:
                return NtStatus.STATUS_INVALID_PARAMETER  # only one call is accepted
            self.services_process_id, self.services_process_id_valid = client.pid, True
        return NtStatus.STATUS_SUCCESS

    def register_logon_process(self, message: dict, client: ClientContext) -> int:
        with self.csr.processes.lock:
            if message["register"]:
                if message["process_id"] != client.pid:
                    return NtStatus.STATUS_ACCESS_DENIED
                if self.logon_process_id != 0:
                    return NtStatus.STATUS_LOGON_SESSION_EXISTS
                self.logon_process_id = client.pid
            else:
                if client.pid != self.logon_process_id:
                    return NtStatus.STATUS_NOT_LOGON_PROCESS
                self.logon_process_id = 0
        log.info("csr.logon_process", process_pid=client.pid, registered=message["register"])
        return NtStatus.STATUS_SUCCESS

    def get_thread_console_desktop(self, message: dict, client: ClientContext) -> dict:
        return {"console_desktop": 0}  # ReactOS: "Return nothing for the moment", success

    def create_system_threads(self, message: dict, client: ClientContext) -> int:
        """CsrExecServerThread(CreateSystemThreads): win32k's RIT and desktop threads. The
        model has no win32k to run them; it counts the requests."""
        with self.csr.processes.lock:
            self.system_threads += 1
        return NtStatus.STATUS_SUCCESS

    # --- callbacks -----------------------------------------------------------------------

    def connect(self, process: CsrProcess, info: dict) -> Reply:
        """UserClientConnect: the client must send its USERCONNECT."""
        try:
            body = validate(USERSRV_CONNECT_INFO, info)
        except SchemaError:
            return Reply(NtStatus.STATUS_INVALID_PARAMETER)
        process.server_data[self.dll.server_id] = {"version": body["version"]}
        return Reply(NtStatus.STATUS_SUCCESS, {"connection_info": {"dispatch_count": 0}})

    def hard_error(self, process: CsrProcess | None, message: dict) -> int:
        """UserServerHardError: the message box nobody sees (harderror.py)."""
        response = HARD_ERROR_DEFAULT_RESPONSE.get(message["valid_response_options"], 1)
        show_box(message, response)
        return response


def UserServerDllInitialization(server_dll: ServerDll) -> int:  # noqa: N802 - export name
    user = UserServer(server_dll)
    assert server_dll.csr is not None
    server_dll.csr.dll_globals("winsrv")["user"] = user
    handlers = {api.name: NOT_IMPLEMENTED for api in USERSRV_APIS}
    handlers.update(
        UserpExitWindowsEx=user.exit_windows_ex,
        UserpEndTask=user.end_task,
        UserpLogon=user.logon,
        UserpRegisterServicesProcess=user.register_services_process,
        UserpGetThreadConsoleDesktop=user.get_thread_console_desktop,
        UserpRegisterLogonProcess=user.register_logon_process,
        UserpCreateSystemThreads=user.create_system_threads,
    )
    install_tables(server_dll, USERSRV_APIS, handlers, USERSRV_FIRST_API_NUMBER, UserpMaxApiNumber)
    server_dll.state = user
    server_dll.connect_callback = user.connect
    server_dll.hard_error_callback = user.hard_error
    server_dll.shutdown_process_callback = user.client_shutdown
    return NtStatus.STATUS_SUCCESS
