"""winlogon.exe, first duties (winlogon.c WinMain, nt-spec §1.4).

kernel32 connects to the session's csrss before WinMain runs: if that fails the process
ends with the status while it is not yet critical, so smss raises 0xC000021A
("Windows Logon Process"). Then winlogon marks itself critical, registers with csrss as
the logon process (UserpRegisterLogonProcess), creates WinSta0 and its desktops, serves
its session's ``WMsgKRpc`` port (logoff, its part of a shutdown), tells LSM it is ready,
and waits for the secure attention sequence. Winlogon of the console session also serves
``\\RPC Control\\InitShutdown`` and runs the machine's shutdown (``wlshutdown.py``).
The logon work of later issues slots in after ``wait_for_sas``.
"""

from __future__ import annotations

import threading

from nt import csrclient
from nt.bootstrap import Process
from nt.syscalls import NtError
from ports import lsm
from ports import winlogon as wl
from ports.client import PortError
from ports.contract import ClientContext, HandlerResult
from ports.lsa import LSA_RPC_SERVER_ACTIVE
from processes.winlogon.wlshutdown import serve_init_shutdown

DESKTOPS = ("Default", "Winlogon", "Screen-saver")
LSA_WAIT_MS = 60_000

CONSOLE_SESSION = 1
EWX_LOGOFF = 0x0
SYSTEM_SID = "S-1-5-18"


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
    proc.lpc.create_port(
        wl.wmsg_port_name(session),
        wl.WMSG_PORT,
        {wl.OP_WMsgMessageHandler: exit_windows.WMsgMessageHandler},
        allow=lambda who: who.get("token", {}).get("sid") == SYSTEM_SID,
        threads=1,
        max_threads=2,
    )
    if session == CONSOLE_SESSION:
        serve_init_shutdown(proc, exit_windows.exit_windows)
    wait_for_lsa(proc)
    notify_lsm(proc, lsm.EVENT_WINLOGON_READY)
    wait_for_sas(proc)
    return 0


class ExitWindows:
    """ExitWindowsEx as winlogon calls it in its own csrss (EWX_CALLER_WINLOGON)."""

    def __init__(self, proc: Process, csr: csrclient.CsrClient) -> None:
        self.proc = proc
        self.csr = csr
        self._lock = threading.Lock()  # one ExitWindowsEx at a time, as winlogon's loop does

    def exit_windows(self, flags: int) -> int:
        with self._lock:
            try:
                status = self.csr.call("UserpExitWindowsEx", {"flags": flags}).status
            except PortError as exc:
                status = exc.status
        self.proc.log.info("winlogon.exit_windows", flags=hex(flags), status=status)
        return status

    def WMsgMessageHandler(self, msg: dict, client: ClientContext) -> HandlerResult:
        if msg["message"] == wl.WMSG_LOGOFF:
            status = self.exit_windows(EWX_LOGOFF | msg["flags"])
            notify_lsm(self.proc, lsm.EVENT_LOGOFF)
        else:
            status = self.exit_windows(msg["flags"])
        return {"error": 0, "status": int(status) & 0xFFFFFFFF}


def notify_lsm(proc: Process, event: str, session: int | None = None) -> None:
    """Tell LSM what happened in this session. LSM may not be up yet at boot: it reads
    the boot's sessions from the process table when it starts, so nothing is lost."""
    try:
        conn = lsm.LsmConnect(proc.lpc)
    except PortError as exc:
        proc.log.info("winlogon.lsm_not_reached", what=event, status=exc.status)
        return
    try:
        target = (proc.session or 0) if session is None else session
        lsm.RpcNotifySessionEvent(conn, target, event)
    except PortError as exc:
        proc.log.warning("winlogon.lsm_notify_failed", what=event, status=exc.status)
    finally:
        conn.close()


def create_window_station(proc: Process) -> None:
    """WinSta0 of this session and its desktops (CreateWindowStationW, CreateDesktopW)."""
    try:
        path = proc.nt.create_window_station("WinSta0")
        for desktop in DESKTOPS:
            proc.nt.create_desktop("WinSta0", desktop)
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
    """STATE_LOGGED_OFF: the "press Ctrl+Alt+Del" notice, then the message loop."""
    proc.log.info("logon.ready", state="LOGGED_OFF")
    threading.Event().wait()
