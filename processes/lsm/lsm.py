"""lsm.exe: the Local Session Manager (Vista+, nt-spec §1.10), wired to real ports.

Started by wininit in session 0. It connects to csrss, learns the boot's sessions from
the process table (session 1's winlogon may be up before LSM is), serves
``\\RPC Control\\LSMApi`` with the session table of ``processes/lsm/session.py``, and asks
smss for new sessions as termsrv does (SmStartCsr through ``\\SmApiPort``, one connection
per request so that requests made at once run in parallel smss instances).
"""

from __future__ import annotations

import threading

from nt import csrclient
from nt.bootstrap import Process
from nt.status import NtStatus
from nt.syscalls import NtError
from nt.win32 import Win32Error
from ports import lsm, sm
from ports import winlogon as wl
from ports.client import PortError
from ports.contract import ClientContext, Handler, HandlerResult
from processes.lsm.session import BOOT_SESSIONS, SessionTable

MAX_REQUEST_THREADS = 16  # ten sessions requested at once must not queue behind each other
NOTIFIERS = ("winlogon.exe", "lsm.exe", "wininit.exe", "smss.exe", "csrss.exe", "ntctl.exe")


class SmBackend:
    """SessionTable's way to smss and to the sessions' winlogons."""

    def __init__(self, proc: Process) -> None:
        self.proc = proc

    def start_session(self, session_id: int) -> tuple[int, dict]:
        try:
            conn = sm.SmConnectToSm(self.proc.lpc)
        except PortError as exc:
            return exc.status, {}
        try:
            reply = sm.SmStartCsr(conn, session_id, timeout=90.0)
            return reply.status, reply.body
        except PortError as exc:
            return exc.status, {}
        finally:
            conn.close()

    def stop_session(self, session_id: int) -> int:
        try:
            conn = sm.SmConnectToSm(self.proc.lpc)
        except PortError as exc:
            return exc.status
        try:
            return sm.SmStopCsr(conn, session_id).status
        except PortError as exc:
            return exc.status
        finally:
            conn.close()

    def logoff(self, session_id: int) -> int:
        try:
            conn = wl.WMsgConnect(self.proc.lpc, session_id)
        except PortError:
            return Win32Error.ERROR_CTX_WINSTATION_NOT_FOUND
        try:
            return wl.WMsgMessageHandler(conn, wl.WMSG_LOGOFF).body.get("error", 0)
        except PortError:
            return Win32Error.ERROR_GEN_FAILURE
        finally:
            conn.close()


class LsmApi:
    def __init__(self, table: SessionTable) -> None:
        self.table = table

    def handlers(self) -> dict[int, Handler]:
        return {
            lsm.OP_RpcGetEnumResult: self.RpcGetEnumResult,
            lsm.OP_RpcCreateSession: self.RpcCreateSession,
            lsm.OP_RpcConnect: self.RpcConnect,
            lsm.OP_RpcDisconnect: self.RpcDisconnect,
            lsm.OP_RpcLogoff: self.RpcLogoff,
            lsm.OP_RpcNotifySessionEvent: self.RpcNotifySessionEvent,
        }

    def RpcGetEnumResult(self, msg: dict, client: ClientContext) -> HandlerResult:
        return {"error": 0, "sessions": self.table.enumerate()}

    def RpcCreateSession(self, msg: dict, client: ClientContext) -> HandlerResult:
        error, status, record = self.table.create(msg["user"])
        if record is None:
            record = {
                **dict.fromkeys(("session_id", "state", "csrss_pid", "winlogon_pid"), 0),
                **dict.fromkeys(
                    ("name", "user", "state_name", "type", "device", "logon_time", "create_time"),
                    "",
                ),
                "requested_user": msg["user"],
            }
        return {"error": int(error), "session": record, "status": int(status)}

    def RpcConnect(self, msg: dict, client: ClientContext) -> HandlerResult:
        return {"error": int(self.table.connect(msg["session_id"]))}

    def RpcDisconnect(self, msg: dict, client: ClientContext) -> HandlerResult:
        return {"error": int(self.table.disconnect(msg["session_id"]))}

    def RpcLogoff(self, msg: dict, client: ClientContext) -> HandlerResult:
        error, closed = self.table.logoff(msg["session_id"])
        return {"error": int(error), "closed": int(closed)}

    def RpcNotifySessionEvent(self, msg: dict, client: ClientContext) -> HandlerResult:
        if client.image not in NOTIFIERS:
            return {"error": int(Win32Error.ERROR_ACCESS_DENIED)}
        if msg["event"] not in lsm.EVENTS:
            return {"error": int(Win32Error.ERROR_INVALID_PARAMETER)}
        error = self.table.notify(msg["session_id"], msg["event"], msg["user"], client.pid)
        return {"error": int(error)}


def learn_boot_sessions(proc: Process, table: SessionTable) -> None:
    """The boot's csrss and winlogon pids, from the process table."""
    try:
        processes = proc.nt.processes()
    except (NtError, PortError):
        return
    for p in processes:
        session = table.sessions.get(p.get("session") or 0)
        if p["state"] == "exited" or p.get("session") not in BOOT_SESSIONS or session is None:
            continue
        if p["image"] == "csrss.exe":
            session.csrss_pid = p["pid"]
        elif p["image"] == "winlogon.exe":
            session.winlogon_pid = p["pid"]


def main(proc: Process) -> int:
    try:
        csrclient.connect(proc.lpc, proc.session)
    except PortError as exc:
        proc.log.error("lsm.csr_connect_failed", status=exc.status)
        return exc.status
    table = SessionTable(SmBackend(proc))
    learn_boot_sessions(proc, table)
    api = LsmApi(table)
    proc.lpc.create_port(
        lsm.LSM_PORT_NAME,
        lsm.LSM_API_PORT,
        api.handlers(),
        threads=2,
        max_threads=MAX_REQUEST_THREADS,
    )
    proc.log.info("lsm.ready", port=lsm.LSM_PORT_NAME, sessions=sorted(table.sessions))
    threading.Event().wait()
    return NtStatus.STATUS_SUCCESS
