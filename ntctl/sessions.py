"""ntctl's session and shutdown verbs: `query session`, tsdiscon/tscon/logoff, and
shutdown.exe's /s /r /t /c /a, through LSM (``\\RPC Control\\LSMApi``) and winlogon's
InitShutdown port. The verbs' logic lives here; ``ntctl/main.py`` only registers them.
"""

from __future__ import annotations

import time
from pathlib import Path

from nt.status import NtStatus, hexstatus, status_name
from nt.syscalls import NtError
from nt.win32 import error_message, error_name
from ntctl.machine import Machine
from ports import lsm
from ports import winlogon as wl
from ports.client import PortError

ERROR_PRIVILEGE_NOT_HELD = 1314
STATUS_PRIVILEGE_NOT_HELD = 0xC0000061
SESSION_COLUMNS = ("SESSIONNAME", "USERNAME", "ID", "STATE", "TYPE", "DEVICE")
KERNEL_EXIT_WAIT = 20.0  # s: a shutdown with scaled timeouts is over well before this


class VerbError(Exception):
    """What the verb prints on failure (its exit code is 1)."""


def win32_failure(what: str, error: int) -> VerbError:
    if error == ERROR_PRIVILEGE_NOT_HELD:  # as advapi32 gets it: the token lacks the privilege
        return VerbError(
            f"{what}: {error_message(error)} ({error_name(error)} {error}; "
            f"{hexstatus(STATUS_PRIVILEGE_NOT_HELD)} STATUS_PRIVILEGE_NOT_HELD)"
        )
    return VerbError(f"{what}: {error_message(error)} ({error_name(error)} {error})")


def nt_failure(what: str, status: int) -> VerbError:
    return VerbError(f"{what}: {hexstatus(status)} {status_name(status)}")


def _lsm_call(m: Machine, what: str, call, *args: object):  # noqa: ANN001, ANN202
    try:
        conn = lsm.LsmConnect(m.lpc)
    except PortError as exc:
        raise VerbError(
            f"{what}: the Local Session Manager is not reachable "
            f"({hexstatus(exc.status)} {status_name(exc.status)}); is the machine still booting?"
        ) from exc
    try:
        reply = call(conn, *args)
    except PortError as exc:
        raise nt_failure(what, exc.status) from exc
    finally:
        conn.close()
    if not reply.ok:
        raise nt_failure(what, reply.status)
    return reply.body


# -- query session ------------------------------------------------------------------------
def query_sessions(m: Machine) -> list[dict]:
    rows = _lsm_call(m, "query session", lsm.RpcGetEnumResult)["sessions"]
    for row in rows:
        row["current"] = row["session_id"] == (m.session or 0)
        row["state_text"] = lsm.STATE_TEXT[lsm.WtsConnectState(row["state"])]
    return rows


def render_sessions(rows: list[dict]) -> str:
    """qwinsta's layout: a '>' before the caller's session, names in lower case, a
    disconnected session without its WinStation name."""
    lines = [f" {'SESSIONNAME':<18}{'USERNAME':<25}{'ID':>5}  {'STATE':<7} {'TYPE':<11} DEVICE"]
    for row in rows:
        disconnected = row["state"] == lsm.WtsConnectState.WTSDisconnected and row["session_id"]
        name = "" if disconnected else row["name"].lower()
        lines.append(
            f"{'>' if row['current'] else ' '}{name:<18}{row['user']:<25}"
            f"{row['session_id']:>5}  {row['state_text']:<7} {row['type']:<11} {row['device']}"
        )
    return "\n".join(lines)


# -- new / disconnect / reconnect / logoff ------------------------------------------------
def new_session(m: Machine, user: str = "") -> dict:
    body = _lsm_call(m, "session new", lsm.RpcCreateSession, user)
    if body["error"]:
        what = "session new"
        if body["status"]:
            what += f" (smss: {hexstatus(body['status'])} {status_name(body['status'])})"
        raise win32_failure(what, body["error"])
    return body["session"]


def disconnect(m: Machine, session_id: int) -> None:
    body = _lsm_call(m, f"session disconnect {session_id}", lsm.RpcDisconnect, session_id)
    if body["error"]:
        raise win32_failure(f"Could not disconnect session ID {session_id}", body["error"])


def reconnect(m: Machine, session_id: int) -> None:
    body = _lsm_call(m, f"session reconnect {session_id}", lsm.RpcConnect, session_id)
    if body["error"]:
        raise win32_failure(f"Could not connect session ID {session_id}", body["error"])


def logoff(m: Machine, session_id: int) -> bool:
    body = _lsm_call(m, f"session logoff {session_id}", lsm.RpcLogoff, session_id)
    if body["error"]:
        raise win32_failure(f"Could not logoff session ID {session_id}", body["error"])
    return bool(body["closed"])


# -- shutdown -----------------------------------------------------------------------------
def initiate_shutdown(
    m: Machine, reboot: bool, timeout: int, comment: str, force: bool = False
) -> bool:
    """InitiateSystemShutdownEx. True when the machine went down (waited for); False when a
    countdown was started (``timeout`` > 0)."""
    try:
        conn = wl.InitShutdownConnect(m.lpc)
    except PortError as exc:
        # No console winlogon (still booting, or a boot that failed before it): straight
        # to NtShutdownSystem, which ends every process and closes the hives.
        if timeout:
            raise VerbError(
                f"shutdown -t: nobody listens on {wl.INIT_SHUTDOWN_PORT_NAME} "
                f"({hexstatus(exc.status)} {status_name(exc.status)}) to keep the countdown"
            ) from exc
        try:
            m.nt.shutdown(1 if reboot else 0)
        except (NtError, PortError) as exc2:
            raise nt_failure("NtShutdownSystem", exc2.status) from exc2
        return True
    try:
        reply = wl.BaseInitiateShutdownEx(
            conn,
            message=comment,
            timeout=timeout,
            force_apps_closed=force,
            reboot=reboot,
            reason=wl.SHTDN_REASON_FLAG_PLANNED if comment else 0,
        )
    except PortError as exc:
        raise nt_failure("shutdown", exc.status) from exc
    finally:
        conn.close()
    if reply.status == NtStatus.STATUS_PORT_DISCONNECTED and timeout == 0:
        # winlogon runs an immediate shutdown before it answers, and NtShutdownSystem may
        # end it first: the caller's wait for the kernel says whether the machine went.
        return True
    if not reply.ok:
        raise nt_failure("shutdown", reply.status)
    if reply.body["error"]:
        raise win32_failure("shutdown", reply.body["error"])
    return timeout == 0


def abort_shutdown(m: Machine) -> None:
    try:
        conn = wl.InitShutdownConnect(m.lpc)
    except PortError as exc:
        raise nt_failure("shutdown -a", exc.status) from exc
    try:
        reply = wl.BaseAbortShutdown(conn)
    except PortError as exc:
        raise nt_failure("shutdown -a", exc.status) from exc
    finally:
        conn.close()
    if reply.body.get("error"):
        raise win32_failure("shutdown -a", reply.body["error"])


def wait_kernel_gone(kernel_pid: int, timeout: float = KERNEL_EXIT_WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{kernel_pid}").exists():
            return True
        time.sleep(0.02)
    return not Path(f"/proc/{kernel_pid}").exists()
