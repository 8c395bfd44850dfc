r"""winlogon's logon states (WlxLoggedOutSAS, WlxActivateUserShell, WlxLogoff; nt-spec §1.4,
§1.7, §5.2-5.5).

LOGGED_OFF ──SAS──▶ DISPLAY_LOGON (the tiles) ──credentials──▶ LOGGING_ON
(the notice:   ▲          │ no credentials / LogonUI died                 │
 LogonUI up)   │◀─────────┘◀──────────────── failure ─────────────────────┤
   ▲                                                                      ▼ success
   └──────────────── logoff (ExitWindowsEx, 4647/4634, profile unloaded) ─ LOGGED_ON

- The SAS comes from the machine's operator (``ntctl logon``) on ``WMsgKRpc<N>``
  (``WlxSasNotify``). LogonUI.exe runs while nobody is logged on: started on entering
  LOGGED_OFF, kept through failed attempts, gone after a successful logon (``sas.py``).
- LogonUI's provider hands the credentials over (``WlxReportCredentials``, from winlogon's
  own LogonUI only). winlogon, a trusted logon process (LsaRegisterLogonProcess), calls
  LsaLogonUser(Interactive) with the suspended ``userinit.exe`` as the process that takes
  the token (CreateProcessAsUser), loads the profile (``profile.py``), makes userinit
  known to csrss and resumes it.
- The logon session lives as long as winlogon's LSA connection for it: closing it at
  logoff ends the session in lsass (4634).
- AutoRestartShell: the user's ``explorer.exe`` exits → winlogon starts the shell again
  with the logon's token (logged ``winlogon.shell_restart``).
- The first successful interactive logon of a boot accepts it (RNotifyBootConfigStatus).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from nt import csrclient
from nt import security as sec
from nt.bootstrap import Process
from nt.evtmsg import report_event
from nt.status import NtStatus
from nt.syscalls import NtError
from nt.win32 import Win32Error
from ports import lsa, lsm, svcctl
from ports import winlogon as wl
from ports.client import Connection, PortError
from ports.contract import ClientContext, HandlerResult
from processes.winlogon import profile as userenv
from processes.winlogon.sas import LogonScreen, State, dos_error

WINLOGON_KEY = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon"
DEFAULT_USERINIT = "C:\\Windows\\system32\\userinit.exe"
DEFAULT_SHELL = "explorer.exe"
LOGON_PROCESS_NAME = "Winlogon"
EWX_LOGOFF = 0x0


@dataclass
class LoggedOnUser:
    name: str
    domain: str
    sid: str
    logon_id: int
    lsa: Connection  # the logon session lives as long as this connection
    profile: userenv.Profile
    environment: dict[str, str]
    userinit_pid: int = 0
    shell_pids: set[int] = field(default_factory=set)


class Background:
    """One call on its own thread; ``result()`` joins it and returns or raises its outcome."""

    def __init__(self, fn: Callable[[], Connection]) -> None:
        self._fn = fn
        self._value: Connection | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="lsa-connect", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._fn()
        except BaseException as exc:  # handed to result(), which re-raises it
            self._error = exc

    def result(self) -> Connection:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value

    def discard(self) -> None:
        try:
            self.result().close()
        except PortError:
            pass


def operator_or_system(who: dict) -> bool:
    """Who may reach WMsgKRpc: SYSTEM (LSM, csrss, the shutdown, LogonUI) and the
    machine's operator (Administrators: ``ntctl logon``/``logoff``)."""
    token = who.get("token") or {}
    allowed, _ = sec.token_sids(token)
    return token.get("sid") == sec.LOCAL_SYSTEM or sec.BUILTIN_ADMINISTRATORS in allowed


class Winlogon:
    def __init__(
        self,
        proc: Process,
        csr: csrclient.CsrClient,
        notify_lsm: Callable[..., None],
        exit_windows: Callable[[int, str], int],
    ) -> None:
        self.proc = proc
        self.csr = csr
        self.notify_lsm = notify_lsm
        self.exit_windows = exit_windows
        self.session = proc.session or 0
        self.state = State.LOGGED_OFF
        self.user: LoggedOnUser | None = None
        self.shutting_down = False
        self.boot_accepted = False
        self.package: int | None = None  # Negotiate's package id in lsass
        self.lock = threading.RLock()
        self.screen = LogonScreen(self)

    def handlers(self) -> dict:
        return {
            wl.OP_WlxSasNotify: self.screen.WlxSasNotify,
            wl.OP_WlxLogonUIReady: self.screen.WlxLogonUIReady,
            wl.OP_WlxReportCredentials: self.WlxReportCredentials,
            wl.OP_WlxReportSasAction: self.screen.WlxReportSasAction,
        }

    def ready(self, show: bool = True) -> None:
        """STATE_LOGGED_OFF: the "press Ctrl+Alt+Del" notice, which LogonUI draws."""
        self.proc.log.info("logon.ready", state=State.LOGGED_OFF.value)
        if show:
            with self.lock:
                self.screen.show()

    # -- processes ----------------------------------------------------------------------
    def start_process(
        self, image: str, command_line: str, env: dict[str, str], logon_id: int = 0
    ) -> int:
        """CreateProcess(AsUser) in this session, suspended and made known to csrss;
        the caller resumes it. Raises NtError."""
        pid = self.proc.nt.create_process(
            image, command_line, env, self.session, suspended=True, logon_id=logon_id
        )
        self._register(pid)
        return pid

    def _register(self, pid: int) -> None:
        reply = self.csr.call("BasepCreateProcess", {"process_id": pid})
        if not reply.ok:
            self.proc.nt.terminate(pid, reply.status)
            raise NtError(reply.status, "BasepCreateProcess")

    def value(self, name: str, default: object) -> object:
        try:
            return self.proc.nt.query_value(WINLOGON_KEY, name)[1]
        except NtError:
            return default

    # -- the credentials from LogonUI ------------------------------------------------------
    def WlxReportCredentials(self, msg: dict, client: ClientContext) -> HandlerResult:
        with self.lock:
            if client.pid != self.screen.pid or self.state != State.DISPLAY_LOGON:
                self.proc.log.warning("winlogon.credentials_refused", caller_pid=client.pid)
                return NtStatus.STATUS_ACCESS_DENIED
            if self.shutting_down:
                status = NtStatus.STATUS_SHUTDOWN_IN_PROGRESS
                return {"error": dos_error(status), "status": int(status), "user": msg["user"]}
            self.state = State.LOGGING_ON
        status = self.logon(msg)
        with self.lock:
            if status == NtStatus.STATUS_SUCCESS:
                self.state = State.LOGGED_ON
                self.screen.dismiss()
            elif self.state == State.LOGGING_ON:
                # LogonUI shows the failure, then the notice again (a new one if it died).
                self.state = State.LOGGED_OFF
                self.ready()
        status = int(status) & 0xFFFFFFFF
        return {"error": dos_error(status), "status": status, "user": msg["user"]}

    # -- the logon ------------------------------------------------------------------------
    def logon(self, msg: dict) -> int:
        name, domain = msg["user"], msg["domain"]
        userinit = self.userinit_image()
        # The block is fixed at creation, before LsaLogonUser names her SID: it is built
        # from the typed name and the profile folder that name gets.
        home = userenv.profile_path(self.proc.nt, "", name.rpartition("\\")[2])
        env = self.user_environment(name.rpartition("\\")[2], home)
        # The LSA connection is made while userinit is created (two independent waits).
        connecting = Background(
            lambda: lsa.LsaRegisterLogonProcess(self.proc.lpc, LOGON_PROCESS_NAME)
        )
        try:
            pid = self.proc.nt.create_process(userinit, userinit, env, self.session, suspended=True)
        except NtError as exc:
            connecting.discard()
            self._failed(name, "userinit", exc.status)
            return exc.status
        try:
            lsa_conn = connecting.result()
        except PortError as exc:
            self._kill(pid)
            self._failed(name, "lsa_connect", exc.status)
            return exc.status
        try:
            status, token = self._lsa_logon(lsa_conn, msg, pid)
            if status != NtStatus.STATUS_SUCCESS:
                self._kill(pid)
                lsa_conn.close()
                self._failed(name, "lsa_logon", status)
                return status
            user = self._activate(lsa_conn, token, name, domain, pid)
        except (NtError, OSError) as exc:
            status = getattr(exc, "status", NtStatus.STATUS_UNSUCCESSFUL)
            self._kill(pid)
            lsa_conn.close()
            self._failed(name, "profile", status)
            return status
        account = token["user"].rpartition("\\")[2]
        self.notify_lsm(lsm.EVENT_LOGON, user=account)
        self.proc.log.info(
            "logon.success",
            user=account,
            sid=user.sid,
            logon_id=sec.format_luid(user.logon_id),
            userinit_pid=pid,
            profile=user.profile.path,
            first_logon=user.profile.created,
        )
        self.accept_boot()
        return NtStatus.STATUS_SUCCESS

    def _lsa_logon(self, conn: Connection, msg: dict, pid: int) -> tuple[int, dict]:
        try:
            if self.package is None:  # looked up once (winlogon's InitializeLsa)
                found = lsa.LsaLookupAuthenticationPackage(conn, lsa.NEGOTIATE_PACKAGE_NAME)
                self.package = found.body.get("auth_package", 0) if found.ok else 0
            reply = lsa.LsaLogonUser(
                conn,
                msg["user"],
                msg["secret"],
                sec.Interactive,
                auth_package=self.package,
                domain=msg["domain"],
                origin=LOGON_PROCESS_NAME,
                session=self.session,
                assign_pid=pid,
                pin=msg["pin"],
            )
        except PortError as exc:  # lsass died in the call: STATUS_PORT_DISCONNECTED
            return exc.status, {}
        return reply.status, reply.body.get("token", {})

    def _activate(
        self, lsa_conn: Connection, token: dict, name: str, domain: str, pid: int
    ) -> LoggedOnUser:
        """The token is userinit's: load her profile, register userinit, resume it."""
        account = token["user"].rpartition("\\")[2] or name
        prof = userenv.load_user_profile(self.proc.nt, self.proc.root, token["sid"], account)
        env = self.user_environment(account, prof.path)
        user = LoggedOnUser(
            account, domain, token["sid"], int(token["logon_id"]), lsa_conn, prof, env, pid
        )
        try:
            self._register(pid)
            with self.lock:  # logged on before userinit runs: its exits are hers
                self.user, self.state = user, State.LOGGED_ON
            self.proc.nt.resume(pid)
        except NtError:
            with self.lock:
                self.user, self.state = None, State.LOGGING_ON
            userenv.unload_user_profile(self.proc.nt, prof)
            raise
        return user

    def user_environment(self, name: str, home: str) -> dict[str, str]:
        """CreateEnvironmentBlock: the user's variables over the system's."""
        env = dict(self.proc.environment)
        env.update(
            USERNAME=name,
            USERDOMAIN=env.get("COMPUTERNAME", "NTMODEL"),
            USERPROFILE=home,
            HOMEDRIVE=home[:2],
            HOMEPATH=home[2:],
            APPDATA=home + "\\AppData\\Roaming",
            LOCALAPPDATA=home + "\\AppData\\Local",
            TEMP=home + "\\AppData\\Local\\Temp",
            TMP=home + "\\AppData\\Local\\Temp",
        )
        return env

    def userinit_image(self) -> str:
        """Winlogon\\Userinit: a comma-separated list; winlogon starts the first entry."""
        text = str(self.value("Userinit", DEFAULT_USERINIT + ","))
        first = next((p.strip() for p in text.split(",") if p.strip()), DEFAULT_USERINIT)
        return first

    def _kill(self, pid: int) -> None:
        try:
            self.proc.nt.terminate(pid, NtStatus.STATUS_LOGON_FAILURE)
        except NtError:
            pass  # already gone

    def _failed(self, name: str, step: str, status: int) -> None:
        self.proc.log.info("logon.failure", user=name[:256], step=step, status=status)

    def accept_boot(self) -> None:
        """NotifyBootConfigStatus(TRUE) once per boot, after the first interactive logon
        (Windows: winlogon, unless ReportBootOk is 0). Off the logon's path."""
        with self.lock:
            if self.boot_accepted or str(self.value("ReportBootOk", "1")) == "0":
                return
            self.boot_accepted = True
        threading.Thread(target=self._notify_boot_ok, name="boot-ok", daemon=True).start()

    def _notify_boot_ok(self) -> None:
        try:
            conn = svcctl.ScConnectToScm(self.proc.lpc)
        except PortError as exc:
            self.proc.log.warning("winlogon.boot_status_failed", status=exc.status)
            return
        try:
            error = svcctl.RNotifyBootConfigStatus(conn, True).body.get("error", 0)
            self.proc.log.info("winlogon.boot_accepted", error=error)
        except PortError as exc:
            self.proc.log.warning("winlogon.boot_status_failed", status=exc.status)
        finally:
            conn.close()

    # -- exits: LogonUI, userinit, the shell ----------------------------------------------
    def on_exit(self, pid: int, status: int, image: str) -> None:
        """The kernel's exit events (its event thread: nothing slow here)."""
        with self.lock:
            if self.screen.exited(pid, status):
                return
            user = self.user
            if user is None or self.state != State.LOGGED_ON:
                return
            if pid == user.userinit_pid:
                user.userinit_pid = 0
                self.proc.log.info("winlogon.userinit_exit", child_pid=pid, status=status)
                return
        if image.lower() == DEFAULT_SHELL:
            threading.Thread(
                target=self._shell_exited, args=(user, pid, status), name="shell", daemon=True
            ).start()

    def _shell_exited(self, user: LoggedOnUser, pid: int, status: int) -> None:
        try:
            record = self.proc.nt.query_process(pid)
        except NtError:
            return
        token = record.get("token") or {}
        if record.get("session") != self.session or token.get("logon_id") != user.logon_id:
            return
        self.proc.log.info("winlogon.shell_exit", child_pid=pid, status=status)
        if int(self.value("AutoRestartShell", 1) or 0) != 1:
            self.proc.log.info("winlogon.shell_not_restarted", reason="AutoRestartShell is 0")
            return
        with self.lock:
            if self.user is not user or self.state != State.LOGGED_ON or self.shutting_down:
                return
        self.start_shell(user, restarted=True)

    def start_shell(self, user: LoggedOnUser, restarted: bool = False) -> int:
        shell = str(self.value("Shell", DEFAULT_SHELL)).strip() or DEFAULT_SHELL
        image = shell.split(" ", 1)[0]
        try:
            pid = self.start_process(image, shell, user.environment, logon_id=user.logon_id)
            self.proc.nt.resume(pid)
        except NtError as exc:
            self.proc.log.warning("winlogon.shell_failed", shell=shell, status=exc.status)
            return 0
        user.shell_pids.add(pid)
        self.proc.log.info(
            "winlogon.shell_restart" if restarted else "winlogon.shell", child_pid=pid
        )
        return pid

    # -- logoff -----------------------------------------------------------------------------
    def logoff(self, flags: int) -> tuple[int, int]:
        """(win32 error, ExitWindowsEx status). WlxLogoff: the user's processes end
        (ExitWindowsEx impersonating her), 4647, the logon session ends in lsass (4634),
        the profile is unloaded, LSM hears of it, and winlogon waits for the SAS."""
        with self.lock:
            user = self.user
            if user is None or self.state != State.LOGGED_ON:
                self.proc.log.info("winlogon.logoff_refused", state=self.state.value)
                return Win32Error.ERROR_NO_SUCH_LOGON_SESSION, NtStatus.STATUS_NO_SUCH_LOGON_SESSION
            self.state = State.LOGGING_OFF
        report_event(
            self.proc.log,
            4647,
            [
                user.sid,
                user.name,
                user.domain or self.proc.environment.get("COMPUTERNAME", "NTMODEL"),
                sec.format_luid(user.logon_id),
            ],
        )
        status = self.exit_windows(EWX_LOGOFF | flags, user.sid)
        self.end_logon(user)
        return 0, status

    def end_logon(self, user: LoggedOnUser) -> None:
        user.lsa.close()  # lsass ends the logon session: 4634
        try:
            userenv.unload_user_profile(self.proc.nt, user.profile)
        except NtError as exc:
            self.proc.log.warning("winlogon.profile_unload_failed", status=exc.status)
        self.notify_lsm(lsm.EVENT_LOGOFF)
        with self.lock:
            self.user = None
            self.state = State.LOGGED_OFF
        self.proc.log.info("logoff.complete", user=user.name)
        if not self.shutting_down:
            self.ready()
