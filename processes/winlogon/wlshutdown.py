"""The InitShutdown port of the console session's winlogon, and the shutdown
coordinator's way to the machine (``ShutdownBackend`` over real ports).

Windows listens on \\pipe\\InitShutdown in wininit, which hands the shutdown to winlogon
of the console session; the model's console winlogon listens itself (logged as a
divergence). The SCM step goes through ``\\RPC Control\\ntsvcs`` once the SCM serves a
shutdown call there; until then it is skipped with the reason logged.
"""

from __future__ import annotations

from collections.abc import Callable

from nt.bootstrap import Process
from nt.evtmsg import report_event
from nt.log import get_logger
from nt.seaudit import audit_privilege_denied
from ports import lsm
from ports import winlogon as wl
from ports.client import PortError
from ports.contract import ClientContext, HandlerResult
from processes.winlogon.shutdown import ShutdownCoordinator, ShutdownRequest

SCM_PORT_NAME = "\\RPC Control\\ntsvcs"
SHUTDOWN_PRIVILEGE = "SeShutdownPrivilege"
SHTDN_REASON_FLAG_PLANNED = 0x80000000


def reason_text(reason: int) -> str:
    """The "for the following reason" line of 1074 for the reasons shutdown.exe sends."""
    return "Other (Planned)" if reason & SHTDN_REASON_FLAG_PLANNED else "Other (Unplanned)"


class MachineBackend:
    def __init__(self, proc: Process, exit_windows: Callable[[int], int]) -> None:
        self.proc = proc
        self.exit_windows = exit_windows

    def report_1074(self, request: ShutdownRequest) -> None:
        computer = self.proc.environment.get("COMPUTERNAME", "NTMODEL")
        report_event(
            self.proc.log,
            1074,
            [
                f"{request.process} ({computer})",
                computer,
                reason_text(request.reason),
                f"0x{request.reason:x}",
                request.kind,
                request.comment,
                request.user,
            ],
        )

    def notify_lsm(self, event: str) -> None:
        try:
            conn = lsm.LsmConnect(self.proc.lpc)
        except PortError as exc:
            self.proc.log.info("shutdown.lsm_not_reached", status=exc.status)
            return
        try:
            lsm.RpcNotifySessionEvent(conn, 0, event)
        except PortError as exc:
            self.proc.log.warning("shutdown.lsm_notify_failed", status=exc.status)
        finally:
            conn.close()

    def sessions(self) -> list[int]:
        try:
            conn = lsm.LsmConnect(self.proc.lpc)
        except PortError:
            return [self.proc.session or 0]
        try:
            reply = lsm.RpcGetEnumResult(conn)
            ids = [s["session_id"] for s in reply.body.get("sessions", []) if s["session_id"]]
            return ids or [self.proc.session or 0]
        except PortError:
            return [self.proc.session or 0]
        finally:
            conn.close()

    def end_session_apps(self, session: int, flags: int) -> int:
        if session == self.proc.session:
            return self.exit_windows(flags)
        try:
            conn = wl.WMsgConnect(self.proc.lpc, session)
        except PortError as exc:
            return exc.status  # the session ended meanwhile
        try:
            return wl.WMsgMessageHandler(conn, wl.WMSG_SHUTDOWN, flags).body.get("status", 0)
        except PortError as exc:
            return exc.status
        finally:
            conn.close()

    def _scm(self, what: str) -> str:
        try:
            self.proc.lpc.namespace.open_port(SCM_PORT_NAME)
        except PortError:
            reason = f"no SCM port ({SCM_PORT_NAME})"
        else:
            reason = "svcctl has no shutdown call yet (the SCM core's shutdown.py waits for it)"
        self.proc.log.info("shutdown.scm_skipped", step=what, reason=reason)
        return f"skipped: {reason}"

    def preshutdown_services(self) -> str:
        return self._scm("preshutdown")

    def shutdown_services(self) -> str:
        return self._scm("shutdown")

    def report_6006(self) -> None:
        # EventLog reports 6006 as it stops; the model's EventLog service is not in this
        # build, so the coordinator reports it in its place.
        self.proc.log.info("divergence", what="6006 reported by winlogon: no EventLog service")
        report_event(self.proc.log, 6006, source="EventLog")

    def nt_shutdown(self, reboot: bool) -> None:
        self.proc.nt.shutdown(1 if reboot else 0)


class InitShutdownApi:
    def __init__(self, coordinator: ShutdownCoordinator) -> None:
        self.coordinator = coordinator

    def handlers(self) -> dict:
        return {
            wl.OP_BaseInitiateShutdown: self.BaseInitiateShutdown,
            wl.OP_BaseAbortShutdown: self.BaseAbortShutdown,
            wl.OP_BaseInitiateShutdownEx: self.BaseInitiateShutdownEx,
        }

    def BaseInitiateShutdown(self, msg: dict, client: ClientContext) -> HandlerResult:
        return self.BaseInitiateShutdownEx({**msg, "reason": 0}, client)

    def BaseInitiateShutdownEx(self, msg: dict, client: ClientContext) -> HandlerResult:
        privileges = (client.token or {}).get("privileges")
        if privileges is not None and SHUTDOWN_PRIVILEGE not in privileges:
            audit_privilege_denied(
                get_logger(),
                client.token,
                SHUTDOWN_PRIVILEGE,
                server="Win32 SystemShutdown module",
                object_name="InitiateSystemShutdownEx",
                pid=client.pid,
                image=client.image,
            )
            return {"error": 1314}  # ERROR_PRIVILEGE_NOT_HELD (STATUS_PRIVILEGE_NOT_HELD)
        request = ShutdownRequest(
            comment=msg["message"],
            timeout=msg["timeout"],
            force=msg["force_apps_closed"],
            reboot=msg["reboot"],
            reason=msg["reason"],
            process=client.image,
            pid=client.pid,
            user=(client.token or {}).get("user", ""),
        )
        return {"error": int(self.coordinator.initiate(request))}

    def BaseAbortShutdown(self, msg: dict, client: ClientContext) -> HandlerResult:
        return {"error": int(self.coordinator.abort(client.pid))}


def serve_init_shutdown(proc: Process, exit_windows: Callable[[int], int]) -> ShutdownCoordinator:
    coordinator = ShutdownCoordinator(MachineBackend(proc, exit_windows))  # -t: real seconds
    proc.log.info(
        "divergence",
        what="\\RPC Control\\InitShutdown is served by the console winlogon (Windows: wininit)",
    )
    proc.lpc.create_port(
        wl.INIT_SHUTDOWN_PORT_NAME,
        wl.INIT_SHUTDOWN_PORT,
        InitShutdownApi(coordinator).handlers(),
        threads=1,
        max_threads=4,
    )
    return coordinator
