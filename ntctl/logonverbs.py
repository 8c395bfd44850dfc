"""``ntctl logon``, ``ntctl logoff`` and ``ntctl user pin`` (logic: ntctl/logon.py)."""

from __future__ import annotations

from pathlib import Path

from ntctl.cli import Arg, Opt, fail
from ntctl.userverbs import PASSWORD_STDIN, _call, user_app
from ntctl.verbkit import JSON, ROOT, app, emit

SESSION = Opt("--session", type=int, default=1, help="the session (default 1, the console)")
PIN_STDIN = Opt("--pin-stdin", flag=True, help="the PIN: the first line of stdin")


def _secret(from_stdin: bool, prompt: str) -> bytes:
    from ntctl.users import read_password

    return read_password(from_stdin, prompt)


@app.verb("logon", Arg("name"), ROOT, PASSWORD_STDIN, PIN_STDIN, SESSION, JSON)
def logon(
    name: str, root: Path, password_stdin: bool, pin_stdin: bool, session: int, as_json: bool
) -> None:
    """Ctrl+Alt+Del and log NAME on (password from a prompt; --pin-stdin: the PIN provider)."""
    from ntctl import logon as lg
    from ntctl.machine import Machine

    if password_stdin and pin_stdin:
        fail("logon: give --password-stdin or --pin-stdin, not both", 2)
    secret = _secret(password_stdin or pin_stdin, "PIN: " if pin_stdin else "Password: ")
    with Machine(root, session) as m:
        try:
            result = lg.logon(m, session, name, secret, pin=pin_stdin)
        except lg.LogonError as exc:
            fail(str(exc))
    if as_json:
        emit(result)
    else:
        print(f"{result['user']} logged on in session {session}.")


@app.verb("logoff", ROOT, SESSION, JSON)
def logoff(root: Path, session: int, as_json: bool) -> None:
    """Log the user of the session off (ExitWindowsEx through winlogon)."""
    from ntctl import logon as lg
    from ntctl.machine import Machine

    with Machine(root, session) as m:
        try:
            result = lg.logoff(m, session)
        except lg.LogonError as exc:
            fail(str(exc))
    emit(result) if as_json else print(f"Session {session} logged off.")


@user_app.verb("pin", Arg("name"), ROOT, PIN_STDIN, JSON)
def user_pin(name: str, root: Path, pin_stdin: bool, as_json: bool) -> None:
    """Set NAME's PIN for the PIN credential provider (4-127 digits)."""
    from ntctl.users import read_password

    pin = read_password(pin_stdin, "PIN: ", confirm=not pin_stdin)
    _call(root, "user_set", name, pin=pin)
    emit({"name": name, "pin_set": True}) if as_json else print("PIN set.")
