r"""The secure attention sequence and the logon screen's process (ReactOS ``sas.c``
DispatchSAS for the states; Vista and later for LogonUI.exe's lifetime).

Since Vista the "Press Ctrl+Alt+Del" notice is drawn by LogonUI.exe itself, so winlogon
starts LogonUI when it enters LOGGED_OFF (at boot, after a logoff) and LogonUI stays up:

- the SAS (``WlxSasNotify``) switches it to the credential tiles: the reply carries the
  port of the LogonUI already running (or is sent once a starting one is ready);
- a failed attempt leaves it up, showing the notice again (LOGGED_OFF; Windows keeps the
  tiles: the next SAS needs no new process);
- the tiles left without credentials (the keyboard went away, or ``TILES_TIMEOUT``
  seconds without them) → ``WlxReportSasAction(WLX_SAS_ACTION_NONE)`` / the timeout:
  back to the notice;
- a successful logon dismisses it: LogonUI answers its keyboard and exits; the next
  LogonUI is started after the logoff;
- LogonUI killed at any moment → no bugcheck: a SAS waiting for it is answered with the
  exit status, and winlogon starts a new one (``winlogon.logonui_restart``) unless it
  died before it was ever ready (then the next SAS starts one: no restart loop) or was
  ended with STATUS_SUCCESS (smss stopping the session, a shutdown: the next SAS, if any,
  starts one).

Every method here runs with winlogon's lock held unless it says otherwise.
"""

from __future__ import annotations

import enum
import threading
from typing import TYPE_CHECKING

from nt.status import NtStatus
from nt.syscalls import NtError
from nt.win32 import Win32Error
from ports import winlogon as wl
from ports.contract import PENDING, ClientContext, Deferred, HandlerResult

if TYPE_CHECKING:
    from processes.winlogon.wlx import Winlogon

LOGONUI_EXE = "C:\\Windows\\System32\\LogonUI.exe"
LOGONUI_COMMAND_LINE = "LogonUI.exe /flags:0x0"
TILES_TIMEOUT = 60.0  # s: the credential tiles go back to the notice without credentials

# RtlNtStatusToDosError for the statuses a logon ends with (the `error` of WMsg replies).
DOS_ERRORS = {
    NtStatus.STATUS_SUCCESS: 0,
    NtStatus.STATUS_LOGON_FAILURE: Win32Error.ERROR_LOGON_FAILURE,
    NtStatus.STATUS_ACCOUNT_DISABLED: Win32Error.ERROR_ACCOUNT_DISABLED,
    NtStatus.STATUS_ACCOUNT_LOCKED_OUT: Win32Error.ERROR_ACCOUNT_LOCKED_OUT,
    NtStatus.STATUS_SHUTDOWN_IN_PROGRESS: Win32Error.ERROR_SHUTDOWN_IN_PROGRESS,
    NtStatus.STATUS_LOGON_SESSION_EXISTS: Win32Error.ERROR_LOGON_SESSION_EXISTS,
    NtStatus.STATUS_INVALID_DEVICE_STATE: Win32Error.ERROR_INVALID_STATE,
}


def dos_error(status: int) -> int:
    return int(DOS_ERRORS.get(status, Win32Error.ERROR_GEN_FAILURE))


class State(enum.Enum):
    """winlogon's states (ReactOS winlogon.h; DISPLAY_LOGON is LOGGED_OFF_SAS)."""

    LOGGED_OFF = "LOGGED_OFF"
    DISPLAY_LOGON = "DISPLAY_LOGON"
    LOGGING_ON = "LOGGING_ON"
    LOGGED_ON = "LOGGED_ON"
    LOGGING_OFF = "LOGGING_OFF"


class LogonScreen:
    """LogonUI.exe of one session, as winlogon sees it."""

    def __init__(self, wlx: Winlogon) -> None:
        self.wlx = wlx
        self.pid = 0  # the LogonUI winlogon shows the notice/tiles with
        self.port = ""  # its keyboard, once it said it is ready
        self.leaving = 0  # a LogonUI dismissed after a successful logon, on its way out
        self.sas_reply: Deferred | None = None  # a SAS waiting for a starting LogonUI
        self.attempt = 0  # SAS count: the tiles' timeout belongs to one attempt
        self.restart_logged = False

    # -- the process ----------------------------------------------------------------------
    def show(self) -> int:
        """The notice: LogonUI running (started if none). Returns an NTSTATUS."""
        if self.pid or self.wlx.shutting_down:
            return NtStatus.STATUS_SUCCESS
        proc = self.wlx.proc
        try:
            pid = self.wlx.start_process(LOGONUI_EXE, LOGONUI_COMMAND_LINE, proc.environment)
            proc.nt.resume(pid)
        except NtError as exc:
            proc.log.warning("winlogon.logonui_failed", status=exc.status)
            return exc.status
        self.pid, self.port = pid, ""
        proc.log.info("winlogon.logonui_started", child_pid=pid)
        return NtStatus.STATUS_SUCCESS

    def dismiss(self) -> None:
        """A logon succeeded: LogonUI answers its keyboard and exits on its own."""
        self.leaving, self.pid, self.port = self.pid, 0, ""
        self.wlx.proc.log.info("winlogon.logonui_dismissed", child_pid=self.leaving)

    def exited(self, pid: int, status: int) -> bool:
        """The kernel's exit event (its thread: nothing slow). True if ``pid`` was LogonUI."""
        log = self.wlx.proc.log
        if pid == self.leaving:
            self.leaving = 0
            log.info("winlogon.logonui_exit", child_pid=pid, status=status)
            return True
        if pid != self.pid:
            return False
        was_ready = bool(self.port)
        self.pid, self.port = 0, ""
        reply, self.sas_reply = self.sas_reply, None
        if reply is not None:  # it died before it was ready: the SAS gets its status
            failed = int(status or NtStatus.STATUS_UNSUCCESSFUL) & 0xFFFFFFFF
            body = {"error": dos_error(failed), "status": failed}
            reply.complete(0, {**body, "logonui_pid": pid, "port": ""})
        log.info("winlogon.logonui_exit", child_pid=pid, status=status)
        wlx = self.wlx
        if wlx.state == State.DISPLAY_LOGON:
            wlx.state = State.LOGGED_OFF
            wlx.ready(show=False)
        # Ended with STATUS_SUCCESS without a logon: on purpose (smss stopping the session,
        # csrss's shutdown walk), so no new one; a kill (any other status) gets one.
        killed = status != NtStatus.STATUS_SUCCESS
        if was_ready and killed and wlx.state == State.LOGGED_OFF and not wlx.shutting_down:
            threading.Thread(target=self._restart, args=(pid,), name="logonui", daemon=True).start()
        return True

    def _restart(self, dead: int) -> None:
        """(Its own thread.) A new LogonUI for the notice the dead one drew."""
        with self.wlx.lock:
            if self.pid or self.wlx.state != State.LOGGED_OFF:
                return  # a SAS or a logon started one meanwhile
            log = self.wlx.proc.log
            if not self.restart_logged:
                self.restart_logged = True
                log.info(
                    "divergence",
                    what="LogonUI.exe is not a critical process: winlogon starts a new one "
                    "when it dies (issue 9; the 0xEF documentation lists logonui.exe among "
                    "the critical processes)",
                )
            status = self.show()
            log.info("winlogon.logonui_restart", dead_pid=dead, child_pid=self.pid, status=status)

    # -- the SAS and LogonUI's calls ------------------------------------------------------
    def WlxSasNotify(self, msg: dict, client: ClientContext) -> HandlerResult:
        wlx = self.wlx
        with wlx.lock:
            if wlx.shutting_down:
                status = NtStatus.STATUS_SHUTDOWN_IN_PROGRESS
            elif wlx.state == State.LOGGED_ON:
                status = NtStatus.STATUS_LOGON_SESSION_EXISTS  # a user is logged on here
            elif wlx.state != State.LOGGED_OFF:
                status = NtStatus.STATUS_INVALID_DEVICE_STATE  # a logon is under way
            else:
                wlx.proc.log.info("winlogon.sas", sas_type=msg["sas_type"], caller_pid=client.pid)
                status = self.show()  # no-op while LogonUI runs
            if status != NtStatus.STATUS_SUCCESS:
                wlx.proc.log.info("winlogon.sas_refused", state=wlx.state.value, status=status)
                return self._sas_body(status, 0, "")
            wlx.state = State.DISPLAY_LOGON
            self.attempt += 1
            timer = threading.Timer(TILES_TIMEOUT, self._tiles_timeout, (self.attempt,))
            timer.daemon = True
            timer.start()
            if self.port:  # the tiles at once: LogonUI is up
                return self._sas_body(NtStatus.STATUS_SUCCESS, self.pid, self.port)
            self.sas_reply = client.defer()
            return PENDING

    def _sas_body(self, status: int, pid: int, port: str) -> dict:
        return {"error": dos_error(status), "status": int(status), "logonui_pid": pid, "port": port}  # fmt: skip

    def WlxLogonUIReady(self, msg: dict, client: ClientContext) -> HandlerResult:
        with self.wlx.lock:
            if client.pid != self.pid or not self.pid:
                return NtStatus.STATUS_ACCESS_DENIED
            self.port = msg["port"]
            reply, self.sas_reply = self.sas_reply, None
        if reply is not None:
            reply.complete(0, self._sas_body(NtStatus.STATUS_SUCCESS, client.pid, msg["port"]))
        return {"error": 0}

    def WlxReportSasAction(self, msg: dict, client: ClientContext) -> HandlerResult:
        """LogonUI's tiles were left without credentials: WLX_SAS_ACTION_NONE."""
        with self.wlx.lock:
            if client.pid != self.pid or not self.pid:
                return NtStatus.STATUS_ACCESS_DENIED
            self.back_to_notice("keyboard_closed")
        return {"error": 0}

    def _tiles_timeout(self, attempt: int) -> None:
        with self.wlx.lock:
            if attempt == self.attempt:
                self.back_to_notice("timeout")

    def back_to_notice(self, reason: str) -> None:
        wlx = self.wlx
        if wlx.state != State.DISPLAY_LOGON:
            return  # credentials came (LOGGING_ON) or the attempt is already over
        reply, self.sas_reply = self.sas_reply, None
        if reply is not None:
            status = NtStatus.STATUS_IO_TIMEOUT
            reply.complete(0, self._sas_body(status, self.pid, ""))
        wlx.state = State.LOGGED_OFF
        wlx.proc.log.info("winlogon.sas_action", action=wl.WLX_SAS_ACTION_NONE, reason=reason)
        wlx.ready()
