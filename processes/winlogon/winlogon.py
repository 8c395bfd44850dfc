"""winlogon.exe, first duties (winlogon.c WinMain, nt-spec §1.4).

kernel32 connects to the session's csrss before WinMain runs: if that fails the process
ends with the status while it is not yet critical, so smss raises 0xC000021A
("Windows Logon Process"). Then winlogon marks itself critical, registers with csrss as
the logon process (UserpRegisterLogonProcess), creates WinSta0 and its desktops, serves
its session's ``WMsgKRpc`` port (logoff, its part of a shutdown), tells LSM it is ready,
and waits for the secure attention sequence. Winlogon of the console session also serves
``\\RPC Control\\InitShutdown`` and runs the machine's shutdown (``wlshutdown.py``).
The logon path (the SAS, LogonUI, LsaLogonUser, userinit, the shell, logoff) is ``wlx.py``.
"""

from __future__ import annotations

import threading
import time

from nt import csrclient
from nt.bootstrap import Process
from nt.security import LOCAL_SYSTEM
from nt.status import NtStatus
from nt.syscalls import NtError
from nt.win32 import Win32Error
from ports import lsm
from ports import winlogon as wl
from ports.client import Connection, PortError
from ports.contract import ClientContext, HandlerResult
from ports.lsa import LSA_RPC_SERVER_ACTIVE
from processes.winlogon.wlshutdown import serve_init_shutdown
from processes.winlogon.wlx import Winlogon, operator_or_system

DESKTOPS = ("Default", "Winlogon", "Screen-saver")
LSA_WAIT_MS = 60_000

CONSOLE_SESSION = 1
EWX_SHUTDOWN = 0x1


def main(proc: Process) -> int:
    try:
        csr = csrclient.connect(proc.lpc, proc.session)
    except PortError as exc:
        proc.log.error("winlogon.csr_connect_failed", status=exc.status)
        return exc.status
    if proc.fault("exit_before_critical"):
        return int(proc.fault("exit_before_critical"), 0)
    proc.set_critical()
    reply = csr.call("UserpRegisterLogonProcess", {"process_id": proc.pid, "register": True})
    if not reply.ok:
        proc.log.error("winlogon.register_failed", status=reply.status)
        return reply.status
    proc.log.info("winlogon.registered", csrss_port=csr.conn.port)
    create_window_station(proc)
    session = proc.session or 0
    exit_windows = ExitWindows(proc, csr)
    wlx = Winlogon(
        proc,
        csr,
        lambda event, user="": notify_lsm(proc, event, user=user),
        exit_windows.exit_windows,
    )
    exit_windows.wlx = wlx
    if proc.lpc.events is not None:
        proc.lpc.events.subscribe(wlx.on_exit)
    proc.lpc.create_port(
        wl.wmsg_port_name(session),
        wl.WMSG_PORT,
        {wl.OP_WMsgMessageHandler: exit_windows.WMsgMessageHandler, **wlx.handlers()},
        allow=operator_or_system,
        threads=1,
        max_threads=4,
    )
    if session == CONSOLE_SESSION:
        serve_init_shutdown(proc, exit_windows.exit_windows)
    wait_for_lsa(proc)
    notify_lsm(proc, lsm.EVENT_WINLOGON_READY)
    wlx.ready()
    wait_for_sas(proc)
    return 0


class ExitWindows:
    """ExitWindowsEx as winlogon calls it in its own csrss (EWX_CALLER_WINLOGON)."""

    def __init__(self, proc: Process, csr: csrclient.CsrClient) -> None:
        self.proc = proc
        self.csr = csr
        self.wlx: Winlogon | None = None
        self._lock = threading.Lock()  # one ExitWindowsEx at a time, as winlogon's loop does

    def exit_windows(self, flags: int, logon_id: str = "") -> int:
        """``logon_id``: the user a logoff impersonates (her processes end, not SYSTEM's)."""
        if flags & EWX_SHUTDOWN and self.wlx is not None:
            self.wlx.shutting_down = True  # no SAS, no shell restart from now on
            stall = self.proc.fault("stall_exit_windows")  # tests: a slow shutdown here
            if stall:
                self.proc.log.info("fault.stall_exit_windows", seconds=float(stall))
                time.sleep(float(stall))
        with self._lock:
            try:
                body = {"flags": flags, "logon_id": logon_id}
                status = self.csr.call("UserpExitWindowsEx", body).status
            except PortError as exc:
                status = exc.status
        self.proc.log.info("winlogon.exit_windows", flags=hex(flags), status=status)
        return status

    def WMsgMessageHandler(self, msg: dict, client: ClientContext) -> HandlerResult:
        if msg["message"] == wl.WMSG_LOGOFF:
            if self.wlx is None:
                return {"error": Win32Error.ERROR_NO_SUCH_LOGON_SESSION, "status": 0}
            error, status = self.wlx.logoff(msg["flags"])
            return {"error": int(error), "status": int(status) & 0xFFFFFFFF}
        if (client.token or {}).get("sid") != LOCAL_SYSTEM:
            # The session's part of a shutdown comes from the shutdown coordinator (SYSTEM);
            # the operator may log a user off, not end a session's applications this way.
            self.proc.log.warning("winlogon.wmsg_denied", caller_pid=client.pid)
            return {"error": Win32Error.ERROR_ACCESS_DENIED, "status": 0}
        status = self.exit_windows(msg["flags"])
        return {"error": 0, "status": int(status) & 0xFFFFFFFF}


class LsmLink:
    """winlogon's connection to LSM, made once and kept (as winlogon keeps its RPC binding
    handle): a logon's notification then costs one call, not a connect (the logon path).
    A broken connection (LSM restarted or gone) is dropped and made again once."""

    def __init__(self) -> None:
        self.conn: Connection | None = None
        self.lock = threading.Lock()

    def notify(self, proc: Process, event: str, target: int, user: str) -> None:
        with self.lock:
            for attempt in (0, 1):
                if self.conn is None:
                    try:
                        self.conn = lsm.LsmConnect(proc.lpc)
                    except PortError as exc:
                        proc.log.info("winlogon.lsm_not_reached", what=event, status=exc.status)
                        return
                try:
                    status = lsm.RpcNotifySessionEvent(self.conn, target, event, user).status
                except PortError as exc:
                    status = exc.status
                if status != NtStatus.STATUS_PORT_DISCONNECTED:
                    if status:
                        proc.log.warning("winlogon.lsm_notify_failed", what=event, status=status)
                    return
                self.conn.close()  # LSM went away since: once more, on a new connection
                self.conn = None
                if attempt:
                    proc.log.warning("winlogon.lsm_notify_failed", what=event, status=status)


LSM_LINK = LsmLink()


def notify_lsm(proc: Process, event: str, session: int | None = None, user: str = "") -> None:
    """Tell LSM what happened in this session. LSM may not be up yet at boot: it reads
    the boot's sessions from the process table when it starts, so nothing is lost."""
    LSM_LINK.notify(proc, event, (proc.session or 0) if session is None else session, user)


def create_window_station(proc: Process) -> None:
    """WinSta0 of this session and its desktops (CreateWindowStationW, CreateDesktopW)."""
    try:
        path = proc.nt.create_window_station("WinSta0", DESKTOPS)
    except NtError as exc:
        proc.log.error("winlogon.winsta_failed", status=exc.status)
        return
    proc.log.info("winlogon.winsta", window_station=path, desktops=list(DESKTOPS))


def wait_for_lsa(proc: Process) -> None:
    """WaitForLsass: open (or create) LSA_RPC_SERVER_ACTIVE and wait until lsass sets it
    (nt-spec §1.4 step 8). Windows waits for ever; the model gives up after
    LSA_WAIT_MS and logs it, so a machine without lsass still reaches the SAS."""
    proc.nt.create_event(LSA_RPC_SERVER_ACTIVE)
    status = proc.nt.wait_event(LSA_RPC_SERVER_ACTIVE, LSA_WAIT_MS)
    if status != 0:
        proc.log.warning("winlogon.lsa_wait_timeout", status=status, timeout_ms=LSA_WAIT_MS)


def wait_for_sas(proc: Process) -> None:
    """The message loop: the SAS, LogonUI, logon and logoff arrive on the WMsg port."""
    threading.Event().wait()
