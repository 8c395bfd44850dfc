"""``ntctl logon`` / ``ntctl logoff``: the operator at the machine's keyboard.

logon: the secure attention sequence to winlogon of the session (``WlxSasNotify`` on
``WMsgKRpc<N>``), which starts LogonUI; then the credentials typed on a provider's tile
(``CredUISubmit`` on LogonUI's port). The secret goes ntctl → LogonUI → winlogon → lsass,
over ports only, never argv, the environment or a log.
logoff: ``WMsgMessageHandler(logoff)`` to winlogon of the session.
"""

from __future__ import annotations

from nt.status import NtStatus, hexstatus, status_name
from nt.win32 import error_message, error_name
from ntctl.machine import Machine
from ports import logonui as lui
from ports import winlogon as wl
from ports.client import PortError

SAS_REFUSALS = {
    NtStatus.STATUS_LOGON_SESSION_EXISTS: "a user is already logged on in session {n}",
    NtStatus.STATUS_INVALID_DEVICE_STATE: "a logon is already under way in session {n}",
    NtStatus.STATUS_SHUTDOWN_IN_PROGRESS: "the system is shutting down",
}


class LogonError(Exception):
    """What the verb prints (exit 1)."""

    def __init__(self, text: str, status: int = 0) -> None:
        super().__init__(text)
        self.status = status


def _status_text(status: int) -> str:
    return f"{hexstatus(status)} {status_name(status)}"


def _winlogon(m: Machine, session: int, what: str):  # noqa: ANN202
    try:
        return wl.WMsgConnect(m.lpc, session)
    except PortError as exc:
        raise LogonError(
            f"{what}: no winlogon serves session {session} ({_status_text(exc.status)})",
            exc.status,
        ) from exc


def logon(m: Machine, session: int, user: str, secret: bytes, pin: bool = False) -> dict:
    """SAS, then the tile: {user, session, status, message}; raises LogonError."""
    conn = _winlogon(m, session, "logon")
    try:
        sas = wl.WlxSasNotify(conn)
    except PortError as exc:
        raise LogonError(f"logon: the SAS was not delivered ({_status_text(exc.status)})") from exc
    finally:
        conn.close()
    if not sas.ok:
        raise LogonError(
            f"logon: winlogon refused the SAS ({_status_text(sas.status)})", sas.status
        )
    status = sas.body["status"]
    if status:
        text = SAS_REFUSALS.get(status, "LogonUI did not start").format(n=session)
        raise LogonError(f"logon: {text} ({_status_text(status)})", status)
    provider = lui.PIN_PROVIDER if pin else lui.PASSWORD_PROVIDER
    try:
        ui = lui.LogonUIConnect(m.lpc, sas.body["port"])
    except PortError as exc:
        raise LogonError(
            f"logon: LogonUI is gone ({_status_text(exc.status)})", exc.status
        ) from exc
    try:
        reply = lui.CredUISubmit(ui, provider, user, secret)
    except PortError as exc:
        raise LogonError(
            f"logon: LogonUI did not answer ({_status_text(exc.status)})", exc.status
        ) from exc
    finally:
        ui.close()
    if not reply.ok:
        raise LogonError(f"logon: {_status_text(reply.status)}", reply.status)
    body = reply.body
    result = {
        "user": body["user"],
        "session": session,
        "status": body["status"],
        "message": body["message"],
    }
    if body["status"]:
        raise LogonError(f"{body['message']} ({_status_text(body['status'])})", body["status"])
    return result


def logoff(m: Machine, session: int) -> dict:
    conn = _winlogon(m, session, "logoff")
    try:
        body = wl.WMsgMessageHandler(conn, wl.WMSG_LOGOFF).body
    except PortError as exc:
        raise LogonError(f"logoff: winlogon did not answer ({_status_text(exc.status)})") from exc
    finally:
        conn.close()
    if body.get("error"):
        error = body["error"]
        raise LogonError(
            f"logoff: nobody is logged on in session {session}: {error_message(error)} "
            f"({error_name(error)} {error})",
            error,
        )
    return {"session": session, "status": body.get("status", 0)}
