"""\\SmApiPort: SmpHandleConnectionRequest and the SM API table (smloop.c, smsbapi.c).

Subsystems (csrss) connect with their image type and SbApiPort name; smss connects back
to that SbApiPort and signals the session's subsystem event, which releases the smss
instance waiting in SmpLoadSubSystem. SmExecPgm from an instance makes smss send
SbCreateSession to the subsystem serving the new process's session, which registers
the process with csrss and resumes it.

SmExecPgm names a process the caller created suspended: ReactOS's client passes handles
from its own ``RTL_USER_PROCESS_INFORMATION``, so it can only name processes it holds.
The model passes pids, so smss checks the kernel's record instead: the process's parent
must be the caller. The one exception is an attached tool (``KdAttachProcess``, ntctl):
it has no NT parent to register it, so it may name itself.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nt.status import NtStatus
from nt.syscalls import NtError
from ports import sb, sm
from ports.client import Connection, PortError
from ports.contract import NOT_IMPLEMENTED, PENDING, ClientContext, Deferred, Handler, HandlerResult
from processes.smss.smwatch import INITIAL_COMMAND_NAME, SUBSYSTEM_NAME, Watch

WINDOWS_TYPES = (sm.IMAGE_SUBSYSTEM_WINDOWS_GUI, sm.IMAGE_SUBSYSTEM_WINDOWS_CUI)


def created_by(record: dict, caller: int) -> bool:
    """SmExecPgm's rule: the caller created the process, or is an attached tool naming
    itself."""
    if record.get("parent_pid") == caller:
        return True
    return record.get("pid") == caller and record.get("state") == "attached"


def subsystem_event(session: int) -> str:
    r"""The event SmpLoadSubSystem waits on (SMP_SUBSYSTEM.Event); named so an smss
    instance, a separate process here, can wait on what the master signals."""
    return f"\\Sessions\\{session}\\SmSubSystemReady"


@dataclass
class Subsystem:
    """SMP_SUBSYSTEM: one per (session, image type)."""

    pid: int
    session: int
    image_type: int
    sb_port: str
    sb: Connection


class SmApi:
    def __init__(self, proc: Any, watch: Watch) -> None:
        self.proc = proc
        self.log = proc.log
        self.watch = watch
        self.subsystems: dict[tuple[int, int], Subsystem] = {}
        self.initial_commands: dict[int, int] = {}  # MuSessionId -> pid
        self.sessions: set[int] = set()  # MuSessionIds made or being made
        self.boot_sessions: frozenset[int] = frozenset()  # made at boot: never stopped
        # SmpStartCsr's work, set by the master once it has its configuration:
        # (session, deferred reply) -> None; it answers through the reply.
        self.start_session: Callable[[int, Deferred], None] | None = None
        self.stop_session: Callable[[int, Deferred], None] | None = None
        self.stopping: set[int] = set()  # sessions being ended (SmpStopCsr): deaths expected
        self._session_ids = itertools.count(1)  # SmpNextSessionId starts at 1
        self._lock = threading.Lock()

    def handlers(self) -> dict[int, Handler]:
        not_implemented = NOT_IMPLEMENTED
        return {
            sm.SmpCreateForeignSessionApi: self._session_api(not_implemented),
            sm.SmpSessionCompleteApi: self._session_api(not_implemented),
            sm.SmpTerminateForeignSessionApi: self._session_api(not_implemented),
            sm.SmpExecPgmApi: self.exec_pgm,
            sm.SmpLoadDeferedSubsystemApi: self.load_deferred_subsystem,
            sm.SmpStartCsrApi: self.start_csr,
            sm.SmpStopCsrApi: self.stop_csr,
        }

    def _session_api(self, handler: Handler) -> Handler:
        """APIs 0-2 are for subsystems only: anyone else gets STATUS_INVALID_PARAMETER."""

        def check(msg: dict, client: ClientContext) -> HandlerResult:
            if client.state.get("subsystem") is None:
                return NtStatus.STATUS_INVALID_PARAMETER
            return handler(msg, client)

        return check

    # -- SmpHandleConnectionRequest ---------------------------------------------
    def accept(self, client: ClientContext) -> Any:
        image_type = client.info.get("subsystem_type", 0)
        sb_port = client.info.get("sb_port", "")
        if image_type == sm.IMAGE_SUBSYSTEM_UNKNOWN:
            return True  # a plain client: no subsystem context
        if not sb_port:
            return NtStatus.STATUS_INVALID_PARAMETER_MIX
        session = client.session or 0
        with self._lock:
            served = self.subsystems.get((session, image_type))
            if served is not None and served.pid != client.pid and self._alive(served.pid):
                self.log.warning(
                    "smss.subsystem_refused",
                    peer_pid=client.pid,
                    target_session=session,
                    image_type=image_type,
                    reason="Image type already being served",
                )
                return False
        # Connect back first; only a subsystem smss can talk to is stored and watched,
        # so a failed connect leaves nothing behind for a later SmExecPgm to trip over.
        try:
            conn = self.proc.lpc.connect_port(sb_port)
        except PortError as exc:
            self.log.error("smss.sb_connect_failed", sb_port=sb_port, status=exc.status)
            return exc.status
        subsystem = Subsystem(client.pid, session, image_type, sb_port, conn)
        with self._lock:
            self.subsystems[(session, image_type)] = subsystem
        self.watch.add(client.pid, SUBSYSTEM_NAME, session)
        client.state["subsystem"] = subsystem
        self.log.info(
            "smss.subsystem_connected",
            subsystem_pid=client.pid,
            target_session=session,
            image_type=image_type,
            sb_port=sb_port,
        )
        try:
            self.proc.nt.set_event(subsystem_event(session))
        except NtError as exc:  # no instance is waiting (the master made every event)
            self.log.warning(
                "smss.subsystem_event_missing", target_session=session, status=exc.status
            )
        return True

    def _alive(self, pid: int) -> bool:
        try:
            return self.proc.nt.query_process(pid)["state"] != "exited"
        except Exception:
            return False

    # -- SmpExecPgm / SmpSbCreateSession ----------------------------------------
    def exec_pgm(self, msg: dict, client: ClientContext) -> HandlerResult:
        info = msg["process"]
        try:
            record = self.proc.nt.query_process(info["pid"])
        except Exception:
            return NtStatus.STATUS_INVALID_CID
        if not created_by(record, client.pid):
            self.log.warning(
                "smss.exec_pgm_refused",
                peer_pid=client.pid,
                child_pid=info["pid"],
                reason="not a process the caller created",
            )
            return NtStatus.STATUS_ACCESS_DENIED
        session = record.get("session") or 0
        image_type = info.get("subsystem_type") or sm.IMAGE_SUBSYSTEM_WINDOWS_GUI
        with self._lock:
            subsystem = self.subsystems.get((session, image_type))
            if subsystem is None and image_type in WINDOWS_TYPES:  # csrss serves GUI and CUI alike
                subsystem = next(
                    (
                        self.subsystems[(session, t)]
                        for t in WINDOWS_TYPES
                        if (session, t) in self.subsystems
                    ),
                    None,
                )
        if subsystem is None:
            if image_type == sm.IMAGE_SUBSYSTEM_NATIVE:
                self.proc.nt.resume(info["pid"])
                return {}
            self.log.error(
                "smss.subsystem_not_found", target_session=session, image_type=image_type
            )
            return NtStatus.STATUS_OBJECT_NAME_NOT_FOUND
        session_id = next(self._session_ids)
        process = {
            "pid": info["pid"],
            "image": record["image"],
            "session": session,
            "subsystem_type": image_type,
        }
        instance = client.image == "smss.exe" and client.pid != self.proc.pid
        if instance:  # an initial command: watched like ReactOS's WaitAny slot, from now on
            self.watch.add(info["pid"], INITIAL_COMMAND_NAME, session)
            if self.proc.fault("kill_initial_command") == "before_sb_create_session":
                self.log.warning("fault.kill_initial_command", child_pid=info["pid"])
                os.kill(info["pid"], signal.SIGKILL)  # the window before csrss resumes it
        reply = sb.SbCreateSession(subsystem.sb, session_id, process)
        self.log.info(
            "smss.sb_create_session",
            sm_session_id=session_id,
            child_pid=info["pid"],
            child_image=record["image"],
            target_session=session,
            status=reply.status,
        )
        if instance and reply.ok:
            self.initial_commands[session] = info["pid"]
            self.watch.session_ready(session)
        return reply.status

    def csrss_of(self, session: int) -> int:
        with self._lock:
            return next((s.pid for (n, _), s in self.subsystems.items() if n == session), 0)

    # -- SmpStartCsr ----------------------------------------------------------------
    def start_csr(self, msg: dict, client: ClientContext) -> HandlerResult:
        """SmpStartCsr: a session made on demand (its smss instance, csrss, initial
        command). The reply comes when the instance is done: the pids on success, the
        failure's status otherwise; a failed session never stops the machine."""
        session = msg["session_id"]
        if self.start_session is None:
            return NtStatus.STATUS_UNSUCCESSFUL  # smss is still initialising
        with self._lock:
            if session in self.sessions:
                return NtStatus.STATUS_OBJECT_NAME_COLLISION
            self.sessions.add(session)
        if msg.get("command"):
            self.log.info(
                "divergence", what="SmpStartCsr's command is not used: the instance runs winlogon"
            )
        self.start_session(session, client.defer())
        return PENDING

    # -- SmpStopCsr -----------------------------------------------------------------
    def stop_csr(self, msg: dict, client: ClientContext) -> HandlerResult:
        """End a session made on demand (termsrv's SmStopCsr after its user logged off):
        answered once its processes are gone and its objects removed."""
        session = msg["session_id"]
        if self.stop_session is None:
            return NtStatus.STATUS_UNSUCCESSFUL  # smss is still initialising
        with self._lock:
            if session in self.boot_sessions:
                return NtStatus.STATUS_ACCESS_DENIED
            if session not in self.sessions or session in self.stopping:
                return NtStatus.STATUS_OBJECT_NAME_NOT_FOUND
            self.stopping.add(session)
        self.stop_session(session, client.defer())
        return PENDING

    def session_stopped(self, session: int) -> None:
        """Forget the session: its subsystem, initial command and id may be used again."""
        with self._lock:
            for key in [k for k in self.subsystems if k[0] == session]:
                self.subsystems.pop(key).sb.close()
            self.initial_commands.pop(session, None)
            self.sessions.discard(session)
            self.stopping.discard(session)

    def session_failed(self, session: int) -> None:
        with self._lock:
            self.sessions.discard(session)

    def load_deferred_subsystem(self, msg: dict, client: ClientContext) -> HandlerResult:
        name = msg["name"]
        if not 1 <= len(name.encode("utf-16-le")) <= 64:
            return NtStatus.STATUS_INVALID_PARAMETER
        # The model's Optional list is empty on win10 (no POSIX/OS2 subsystem ships).
        return NtStatus.STATUS_OBJECT_NAME_NOT_FOUND
