"""The InitShutdown port of the console session's winlogon, and the shutdown
coordinator's way to the machine (``ShutdownBackend`` over real ports).

Windows listens on \\pipe\\InitShutdown in wininit, which hands the shutdown to winlogon
of the console session; the model's console winlogon listens itself (logged as a
divergence). The SCM's two rounds (PRESHUTDOWN, then SHUTDOWN) are asked for on
``\\RPC Control\\ntsvcs`` (``ScPreshutdownServices``, ``ScShutdownServices``: the model's
own routines; Windows' csrss notifies services.exe instead); without an SCM they are
skipped with the reason logged. EventLog writes 6006 itself as it stops in the SHUTDOWN
round.
"""

from __future__ import annotations

from collections.abc import Callable

from nt.bootstrap import Process
from nt.evtmsg import report_event
from nt.log import get_logger
from nt.seaudit import audit_privilege_denied
from ports import lsm, svcctl
from ports import winlogon as wl
from ports.client import Connection, PortError
from ports.contract import ClientContext, HandlerResult, Reply
from processes.winlogon.shutdown import ShutdownCoordinator, ShutdownRequest

SHUTDOWN_PRIVILEGE = "SeShutdownPrivilege"
SHTDN_REASON_FLAG_PLANNED = 0x80000000


def reason_text(reason: int) -> str:
    """The "for the following reason" line of 1074 for the reasons shutdown.exe sends."""
    return "Other (Planned)" if reason & SHTDN_REASON_FLAG_PLANNED else "Other (Unplanned)"


class MachineBackend:
    def __init__(self, proc: Process, exit_windows: Callable[[int], int]) -> None:
        self.proc = proc
        self.exit_windows = exit_windows
        self._divergence_logged = False

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

    def _scm(self, what: str, call: Callable[[Connection], Reply]) -> str:
        """One SCM round on ``\\RPC Control\\ntsvcs``; skipped (and said why) without an SCM."""
        try:
            conn = svcctl.ScConnectToScm(self.proc.lpc)
        except PortError as exc:
            self.proc.log.info("shutdown.scm_skipped", step=what, status=exc.status)
            return f"skipped: no SCM port ({svcctl.SVCCTL_PORT_NAME})"
        if not self._divergence_logged:
            self._divergence_logged = True
            self.proc.log.info(
                "divergence",
                what="the SCM's shutdown rounds are asked for by winlogon on ntsvcs "
                "(Windows: csrss notifies services.exe, CTRL_SHUTDOWN_EVENT)",
            )
        try:
            reply = call(conn)
        except PortError as exc:
            self.proc.log.warning("shutdown.scm_failed", step=what, status=exc.status)
            return f"failed: {exc.status:#x}"
        finally:
            conn.close()
        if not reply.ok or reply.body.get("error"):
            self.proc.log.warning(
                "shutdown.scm_failed", step=what, status=reply.status, error=reply.body.get("error")
            )
            return f"failed: {reply.status:#x} error {reply.body.get('error')}"
        late = reply.body["late"]
        self.proc.log.info(
            "shutdown.scm_round",
            step=what,
            services=reply.body["services"],
            scm_ms=reply.body["ms"],
            late=[f"{o['service']}:{o['outcome']}" for o in late],
        )
        return f"{reply.body['services']} services" + (f", {len(late)} late" if late else "")

    def preshutdown_services(self) -> str:
        return self._scm("preshutdown", svcctl.ScPreshutdownServices)

    def shutdown_services(self) -> str:
        return self._scm("shutdown", svcctl.ScShutdownServices)

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
