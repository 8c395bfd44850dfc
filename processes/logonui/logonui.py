r"""LogonUI.exe: the logon screen (Vista and later; winlogon starts it after the SAS).

It loads the credential providers named in the registry (``credprov/loader.py``), serves
its keyboard (``\RPC Control\LogonUI<N>``, ``ports/logonui.py``: the machine's operator
types there, ``ntctl logon``), tells winlogon it is ready, and waits for one submission:
the chosen provider serializes the credentials, LogonUI hands them to winlogon
(``WlxReportCredentials``) and answers with the status and the text it shows. Then it
exits and winlogon waits for the next SAS. If the keyboard goes away without submitting,
or nothing is typed within ``IDLE_TIMEOUT`` seconds, LogonUI exits (the logon screen
times out to the lock screen) and winlogon waits again.

The secret is never logged: only the provider, the user name and the status are.
"""

from __future__ import annotations

import threading

from nt import csrclient
from nt import security as sec
from nt.bootstrap import Process
from nt.status import NtStatus
from ports import logonui as lui
from ports import winlogon as wl
from ports.client import Connection, PortError
from ports.contract import ClientContext, HandlerResult
from processes.logonui.credprov.loader import Provider, load_providers

IDLE_TIMEOUT = 60.0


def operator_or_system(who: dict) -> bool:
    """The keyboard's DACL: SYSTEM and Administrators (the machine's operator)."""
    token = who.get("token") or {}
    allowed, _ = sec.token_sids(token)
    return token.get("sid") == sec.LOCAL_SYSTEM or sec.BUILTIN_ADMINISTRATORS in allowed


class LogonUI:
    def __init__(self, proc: Process, providers: dict[str, Provider], winlogon: Connection):
        self.proc = proc
        self.providers = providers
        self.winlogon = winlogon
        self.submitted = threading.Event()
        self.keyboard_gone = threading.Event()
        self._lock = threading.Lock()

    def closed(self, client: ClientContext) -> None:
        self.keyboard_gone.set()

    def CredUISubmit(self, msg: dict, client: ClientContext) -> HandlerResult:
        with self._lock:
            if self.submitted.is_set():
                return NtStatus.STATUS_INVALID_DEVICE_STATE
            self.submitted.set()
        provider = self.providers.get(msg["provider"].casefold())
        if provider is None:
            self.proc.log.warning("logonui.no_such_provider", clsid=msg["provider"][:64])
            status = int(NtStatus.STATUS_NO_SUCH_PACKAGE)
            return {"status": status, "message": lui.logon_message(status), "user": msg["user"]}
        creds = provider.get_serialization(msg["user"], msg["secret"])
        self.proc.log.info("logonui.submit", provider=provider.name, user=creds["user"])
        try:
            reply = wl.WlxReportCredentials(
                self.winlogon,
                creds["user"],
                creds["secret"],
                domain=creds["domain"],
                pin=creds["pin"],
                provider=provider.clsid,
            )
            status = reply.body.get("status", reply.status) if reply.ok else reply.status
        except PortError as exc:
            status = exc.status
        message = lui.logon_message(status, pin=creds["pin"])
        self.proc.log.info("logonui.result", user=creds["user"], status=status, message=message)
        return {"status": int(status) & 0xFFFFFFFF, "message": message, "user": creds["user"]}


def main(proc: Process) -> int:
    session = proc.session or 0
    try:
        csr = csrclient.connect(proc.lpc, proc.session)  # kernel32's connection
    except PortError as exc:
        proc.log.error("logonui.csr_connect_failed", status=exc.status)
        return exc.status
    providers = load_providers(proc.nt, proc.log)
    winlogon = wl.WMsgConnect(proc.lpc, session)
    ui = LogonUI(proc, providers, winlogon)
    port = lui.logonui_port_name(session)
    proc.lpc.create_port(
        port,
        lui.LOGONUI_PORT,
        {lui.OP_CredUISubmit: ui.CredUISubmit},
        allow=operator_or_system,
        on_closed=ui.closed,
        threads=1,
        max_threads=2,
    )
    if proc.fault("exit_before_ready"):
        return int(proc.fault("exit_before_ready"), 0)
    reply = wl.WlxLogonUIReady(winlogon, port)
    if not reply.ok:
        proc.log.error("logonui.winlogon_refused", status=reply.status)
        return reply.status
    proc.log.info("logonui.ready", port=port, providers=[p.name for p in providers.values()])
    # One submission, then the keyboard closes; or it closes (or idles) without one.
    ui.keyboard_gone.wait(IDLE_TIMEOUT)
    if not ui.submitted.is_set():
        proc.log.info("logonui.cancelled", idle=not ui.keyboard_gone.is_set())
    csr.close()
    return 0
