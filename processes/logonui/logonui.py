r"""LogonUI.exe: the logon screen (Vista and later).

winlogon starts it whenever nobody is logged on in the session: it draws the "Press
Ctrl+Alt+Del" notice and, after the SAS, the credential tiles. It loads the credential
providers named in the registry (``credprov/loader.py``), serves its keyboard
(``\RPC Control\LogonUI<N>``, ``ports/logonui.py``: the machine's operator types there,
``ntctl logon``) and tells winlogon it is ready. Each submission: the chosen provider
serializes the credentials, LogonUI hands them to winlogon (``WlxReportCredentials``)
and answers with the status and the text it shows. A failure leaves it up (the notice
again); a success ends it once the keyboard that typed has its answer. A keyboard that
goes away without submitting left the tiles: LogonUI tells winlogon
(``WlxReportSasAction``, WLX_SAS_ACTION_NONE), which shows the notice again.

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

EXIT_WAIT = 5.0  # s: after a success, how long the answer may take to be read


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
        self.logged_on = threading.Event()  # a submission succeeded: LogonUI's work is done
        self.answered = threading.Event()  # ... and its keyboard has the answer
        self._lock = threading.Lock()
        self._busy = False  # one submission at a time, as one set of tiles takes one
        self._typed: set[int] = set()  # connections that submitted
        self._winner = -1  # the connection whose logon succeeded

    def closed(self, client: ClientContext) -> None:
        with self._lock:
            if client.conn_id == self._winner:
                self.answered.set()
                return
            left = client.conn_id not in self._typed and not self.logged_on.is_set()
            self._typed.discard(client.conn_id)
        if left:  # the tiles were left without credentials: back to the notice
            try:
                wl.WlxReportSasAction(self.winlogon)
            except PortError as exc:
                self.proc.log.warning("logonui.sas_action_failed", status=exc.status)
            self.proc.log.info("logonui.cancelled", conn=client.conn_id)

    def CredUISubmit(self, msg: dict, client: ClientContext) -> HandlerResult:
        with self._lock:
            if self._busy or self.logged_on.is_set():
                return NtStatus.STATUS_INVALID_DEVICE_STATE
            self._busy = True
            self._typed.add(client.conn_id)
        try:
            return self._submit(msg, client)
        finally:
            with self._lock:
                self._busy = False

    def _submit(self, msg: dict, client: ClientContext) -> dict:
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
        if status == NtStatus.STATUS_SUCCESS:
            with self._lock:
                self._winner = client.conn_id
                self.logged_on.set()
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
    # Up until a logon succeeds (failures keep the tiles); then out once the answer is read.
    ui.logged_on.wait()
    ui.answered.wait(EXIT_WAIT)
    proc.log.info("logonui.exit", reason="logged_on")
    csr.close()
    return 0
