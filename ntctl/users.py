r"""Local accounts, like ``net user``, ``net accounts``, ``runas`` and ``whoami``: every verb
goes through lsass (``\RPC Control\samss lpc`` for the SAM, ``\LsaAuthenticationPort`` for
logons), never around it — the SAM hive answers lsass alone.

Passwords come from a prompt (getpass, twice for a new one) or, with ``--password-stdin``,
from the first line of standard input; never from argv or the environment. They travel
as ``bytes`` in one port message and are not kept.
"""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from nt import security as sec
from nt.status import NtStatus, hexstatus, status_name
from ntctl.machine import Machine
from ports import lsa, samr
from ports.client import Connection
from ports.contract import Reply

# The win32 errors runas and net print for the logon statuses (RtlNtStatusToDosError).
WIN32_ERRORS = {
    NtStatus.STATUS_LOGON_FAILURE: (1326, "The user name or password is incorrect."),
    NtStatus.STATUS_ACCOUNT_LOCKED_OUT: (
        1909,
        "The referenced account is currently locked out and may not be logged on to.",
    ),
    NtStatus.STATUS_ACCOUNT_DISABLED: (
        1331,
        "This user can't sign in because this account is currently disabled.",
    ),
    NtStatus.STATUS_ACCOUNT_EXPIRED: (1793, "The user's account has expired."),
    NtStatus.STATUS_PASSWORD_EXPIRED: (1330, "The password for this account has expired."),
    NtStatus.STATUS_PASSWORD_MUST_CHANGE: (
        1907,
        "The user's password must be changed before signing in.",
    ),
    NtStatus.STATUS_ACCESS_DENIED: (5, "Access is denied."),
    NtStatus.STATUS_NO_SUCH_USER: (2221, "The user name could not be found."),
    NtStatus.STATUS_USER_EXISTS: (2224, "The account already exists."),
    NtStatus.STATUS_INSUFFICIENT_RESOURCES: (
        1450,
        "Insufficient system resources exist to complete the requested service.",
    ),
}


class UsersError(Exception):
    """A refused call: the status, and the text ``net`` would print."""

    def __init__(self, what: str, status: int) -> None:
        self.status = status
        code, text = WIN32_ERRORS.get(status, (0, ""))
        detail = f"System error {code} has occurred. {text} " if code else ""
        super().__init__(f"{what}: {detail}({hexstatus(status)} {status_name(status)})")


def read_password(from_stdin: bool, prompt: str = "Password: ", confirm: bool = False) -> bytes:
    if from_stdin:
        line = sys.stdin.buffer.readline()
        return line[:-1] if line.endswith(b"\n") else line
    first = getpass.getpass(prompt)
    if confirm and getpass.getpass("Retype the password to confirm: ") != first:
        raise UsersError("The passwords do not match", NtStatus.STATUS_INVALID_PARAMETER)
    return first.encode("utf-8")


def _check(reply: Reply, what: str) -> dict:
    if not reply.ok:
        raise UsersError(what, reply.status)
    return reply.body


def _samr(m: Machine, call: Callable[[Connection], Reply], what: str) -> dict:
    conn = samr.SamConnect(m.lpc)
    try:
        return _check(call(conn), what)
    finally:
        conn.close()


# -- net user -------------------------------------------------------------------------------
def user_add(m: Machine, name: str, password: bytes | None, admin: bool) -> dict:
    body = _samr(m, lambda c: samr.NetUserAdd(c, name, password, admin=admin), "user add")
    return {"name": name, **body, "admin": admin}


def user_list(m: Machine) -> list[dict]:
    return _samr(m, samr.NetUserEnum, "user list")["users"]


def user_show(m: Machine, name: str) -> dict:
    return _samr(m, lambda c: samr.NetUserGetInfo(c, name), f"user show {name}")["user"]


def user_delete(m: Machine, name: str) -> None:
    _samr(m, lambda c: samr.NetUserDel(c, name), f"user delete {name}")


def user_set(m: Machine, name: str, **changes: object) -> None:
    _samr(m, lambda c: samr.NetUserSetInfo(c, name, **changes), f"user {name}")  # type: ignore[arg-type]


def accounts(m: Machine, threshold: int, duration: int, window: int) -> dict:
    if (threshold, duration, window) != (samr.UNCHANGED,) * 3:
        _samr(
            m,
            lambda c: samr.NetUserModalsSet(
                c, lockout_threshold=threshold, lockout_duration=duration, lockout_window=window
            ),
            "accounts",
        )
    return _samr(m, samr.NetUserModalsGet, "accounts")["domain"]


# -- runas-like network logon ---------------------------------------------------------------
def logon_test(m: Machine, name: str, password: bytes) -> dict:
    conn = lsa.LsaConnectUntrusted(m.lpc)
    try:
        package = _check(
            lsa.LsaLookupAuthenticationPackage(conn, lsa.MSV1_0_PACKAGE_NAME), "lookup package"
        )["auth_package"]
        r = lsa.LsaLogonUser(
            conn, name, password, sec.Network, auth_package=package, origin="ntctl logon-test"
        )
    finally:
        conn.close()
    result: dict = {
        "user": name,
        "status": hexstatus(r.status),
        "status_name": status_name(r.status),
    }
    if r.ok:
        result.update(r.body)
    return result


def run_as(root: Path, name: str, password: bytes, argv: list[str]) -> int:
    """``ntctl --as NAME VERB...``: runas. This process authenticates NAME through lsass and
    has the token made the primary token of a child ntctl (CreateProcessAsUser), which
    runs VERB once it has attached with it. The logon session lasts as long as the child."""
    from ntctl.userverbs import AS_GATE

    gate_r, gate_w = os.pipe()
    child = subprocess.Popen(
        [sys.executable, "-m", "ntctl", *argv],
        pass_fds=(gate_r,),
        env=dict(os.environ, **{AS_GATE: str(gate_r)}),
    )
    os.close(gate_r)
    try:
        with Machine(root) as m:
            conn = lsa.LsaConnectUntrusted(m.lpc)
            try:
                r = lsa.LsaLogonUser(
                    conn, name, password, sec.Network, origin="ntctl --as", assign_pid=child.pid
                )
                if not r.ok:
                    raise UsersError(f"--as {name}", r.status)
                os.write(gate_w, b"R")
                return child.wait()
            finally:
                conn.close()
    finally:
        os.close(gate_w)
        if child.poll() is None:
            child.kill()
            child.wait()


def whoami(m: Machine) -> dict:
    """The caller's own token, as the kernel recorded it for this process."""
    return m.nt.query_process(os.getpid())["token"]


# -- rendering ------------------------------------------------------------------------------
def _yes(flag: bool) -> str:
    return "Yes" if flag else "No"


def render_user(u: dict) -> str:
    groups = "  ".join("*" + sec.WELL_KNOWN_NAMES.get(g, g).split("\\")[-1] for g in u["groups"])
    rows = [
        ("User name", u["name"]),
        ("Full Name", u["full_name"]),
        ("Comment", u["comment"]),
        ("SID", u["sid"]),
        ("Account active", _yes(u["enabled"])),
        ("Account expires", u["account_expires"]),
        ("Account locked", _yes(u["locked"])),
        ("", ""),
        ("Password last set", u["password_last_set"]),
        ("Password must change", _yes(u["password_must_change"])),
        ("Bad password count", str(u["bad_password_count"])),
        ("Last bad password", u["last_bad_password"]),
        ("Lockout time", u["lockout_time"]),
        ("", ""),
        ("Last logon", u["last_logon"]),
        ("Logon count", str(u["logon_count"])),
        ("", ""),
        ("Local Group Memberships", groups or "*None"),
    ]
    return (
        "\n".join(f"{k:<29}{v}" if k else "" for k, v in rows)
        + "\nThe command completed successfully."
    )


def render_list(users: list[dict], computer: str = "NTMODEL") -> str:
    head = f"User accounts for \\\\{computer}\n\n" + "-" * 79 + "\n"
    rows = []
    for u in users:
        flags = [] if u["enabled"] else ["disabled"]
        flags += ["locked"] if u["locked"] else []
        flags += ["admin"] if u["admin"] else []
        rows.append(f"{u['name']:<25}{u['rid']:<8}{', '.join(flags)}")
    return head + "\n".join(rows) + "\nThe command completed successfully."


def render_accounts(d: dict) -> str:
    duration = d["lockout_duration"] or "Never (an administrator unlocks)"
    rows = [
        ("Lockout threshold", d["lockout_threshold"] or "Never"),
        ("Lockout duration (minutes)", duration),
        ("Lockout observation window (minutes)", d["lockout_window"]),
        ("Allow Administrator account lockout", _yes(d["allow_administrator_lockout"])),
        ("Computer role", "WORKSTATION"),
        ("Domain SID", d["domain_sid"]),
    ]
    return "\n".join(f"{k + ':':<55}{v}" for k, v in rows) + "\nThe command completed successfully."


def render_logon(r: dict) -> str:
    if "token" not in r:
        code, text = WIN32_ERRORS.get(int(r["status"], 16), (0, ""))
        return (
            f"RUNAS ERROR: Unable to acquire user password\n{code}: {text} "
            f"({r['status']} {r['status_name']})"
        )
    t = r["token"]
    return (
        f'Attempting to start as user "{t["user"]}" ...\n'
        f"Logon succeeded: {t['user']} ({t['sid']})\n"
        f"  Logon ID: {sec.format_luid(r['logon_id'])}  Logon type: "
        f"{sec.LOGON_TYPE_NAMES.get(t['logon_type'], t['logon_type'])}  "
        f"Package: {t['auth_package']}\n"
        f"  Integrity: {sec.INTEGRITY_NAMES.get(t['integrity'], t['integrity'])}  "
        f"Elevation: {t['elevation_type']}  Groups: {len(t['groups'])}  "
        f"Privileges: {len(t['privileges'])}"
    )


def render_whoami(token: dict, full: bool) -> str:
    user = str(token.get("user", "")).lower()
    if not full:
        return user
    lines = [
        "USER INFORMATION",
        "----------------",
        "",
        f"{'User Name':<30}SID",
        "=" * 29 + " " + "=" * 45,
    ]
    lines.append(f"{user:<30}{token.get('sid', '')}")
    lines += ["", "GROUP INFORMATION", "-----------------", ""]
    deny = set(token.get("deny_only", []))
    for g in token.get("groups", []):
        attrs = (
            "Group used for deny only"
            if g in deny
            else "Mandatory group, Enabled by default, Enabled group"
        )
        lines.append(f"{sec.WELL_KNOWN_NAMES.get(g, g):<55}{g:<15} {attrs}")
    lines += ["", "PRIVILEGES INFORMATION", "----------------------", ""]
    lines += [f"{p:<42}Enabled" for p in token.get("privileges", [])]
    return "\n".join(lines)
