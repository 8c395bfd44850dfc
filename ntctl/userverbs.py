"""The account verbs (``user ...``, ``accounts``, ``logon-test``, ``whoami``) and ``--as``:
thin registrations; the work is in ``ntctl/users.py`` (imported when a verb runs)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ntctl.cli import Arg, Exit, Opt, fail
from ntctl.verbkit import JSON, ROOT, app, emit, nt_errors, nt_failure

user_app = app.group("user", "Local accounts through lsass, like net user.")
PASSWORD_STDIN = Opt("--password-stdin", flag=True, help="the password: the first line of stdin")
AS_GATE = "NTMODEL_AS_GATE"  # the fd a --as child reads its go byte from (ntctl/users.py)


def _call(root: Path, fn_name: str, *args: Any, **kw: Any) -> Any:
    from ntctl import users
    from ntctl.machine import Machine

    with Machine(root) as m:
        try:
            return getattr(users, fn_name)(m, *args, **kw)
        except users.UsersError as exc:
            fail(str(exc))
        except nt_errors() as exc:
            nt_failure(exc)


def _call_in(root: Path, fn: Any, *args: Any) -> Any:
    """``fn(machine, *args)`` from another verb module, failures reported as _call does."""
    from ntctl import users
    from ntctl.machine import Machine

    with Machine(root) as m:
        try:
            return fn(m, *args)
        except users.UsersError as exc:
            fail(str(exc))
        except nt_errors() as exc:
            nt_failure(exc)


def _password(from_stdin: bool, prompt: str = "Password: ", confirm: bool = False) -> bytes:
    from ntctl.users import read_password

    try:
        return read_password(from_stdin, prompt, confirm)
    except Exception as exc:  # the passwords did not match
        fail(str(exc), 2)
        raise


@user_app.verb(
    "add", Arg("name"), ROOT, Opt("--admin", flag=True, help="member of Administrators"),
    PASSWORD_STDIN, JSON,
)  # fmt: skip
def user_add(name: str, root: Path, admin: bool, password_stdin: bool, as_json: bool) -> None:
    """net user NAME /add: a new account (password from a prompt or stdin)."""
    data = _call(root, "user_add", name, _password(password_stdin, confirm=True), admin)
    emit(data) if as_json else print(f"User {name} created ({data['sid']}).")


@user_app.verb("list", ROOT, JSON)
def user_list(root: Path, as_json: bool) -> None:
    """net user: every account."""
    from ntctl.users import render_list

    data = _call(root, "user_list")
    emit(data) if as_json else print(render_list(data))


@user_app.verb("show", Arg("name"), ROOT, JSON)
def user_show(name: str, root: Path, as_json: bool) -> None:
    """net user NAME: SID, groups, flags, logons, bad passwords, lockout."""
    from ntctl.users import render_user

    data = _call(root, "user_show", name)
    emit(data) if as_json else print(render_user(data))


@user_app.verb("delete", Arg("name"), ROOT, JSON)
def user_delete(name: str, root: Path, as_json: bool) -> None:
    """net user NAME /delete."""
    _call(root, "user_delete", name)
    emit({"name": name, "deleted": True}) if as_json else print(f"User {name} deleted.")


@user_app.verb("passwd", Arg("name"), ROOT, PASSWORD_STDIN, JSON)
def user_passwd(name: str, root: Path, password_stdin: bool, as_json: bool) -> None:
    """net user NAME *: set a new password (as the machine's administrator)."""
    password = _password(password_stdin, "New password: ", confirm=True)
    _call(root, "user_set", name, password=password)
    emit({"name": name, "password_set": True}) if as_json else print("Password set.")


def _flag_verb(verb: str, past: str, **change: object) -> None:
    def command(name: str, root: Path, as_json: bool) -> None:
        _call(root, "user_set", name, **change)
        emit({"name": name, verb: True}) if as_json else print(f"User {name}: {past}.")

    command.__doc__ = f"net user NAME: {verb} the account."
    user_app.verb(verb, Arg("name"), ROOT, JSON)(command)


_flag_verb("enable", "enabled", enabled=1)
_flag_verb("disable", "disabled", enabled=0)
_flag_verb("unlock", "unlocked", unlock=True)


@user_app.verb(
    "rights", Arg("name"), ROOT,
    Opt("--grant", multiple=True, metavar="RIGHT", help="grant a privilege or logon right"),
    Opt("--revoke", multiple=True, metavar="RIGHT", help="revoke one"),
    JSON,
)  # fmt: skip
def user_rights(name: str, root: Path, grant: list[str], revoke: list[str], as_json: bool) -> None:
    """ntrights: NAME's privileges and logon rights (NAME: a user, a group or a SID)."""
    from ntctl import rights

    data = _call_in(root, rights.user_rights, name, grant, revoke)
    emit(data) if as_json else print(rights.render(data))


@app.verb(
    "accounts",
    ROOT,
    Opt("--lockout-threshold", dest="threshold", type=int, default=-1, help="0-999; 0 never"),
    Opt(
        "--lockout-duration",
        dest="duration",
        type=int,
        default=-1,
        help="minutes; 0: until unlocked",
    ),
    Opt("--lockout-window", dest="window", type=int, default=-1, help="minutes"),
    JSON,
)
def accounts(root: Path, threshold: int, duration: int, window: int, as_json: bool) -> None:
    """net accounts: the lockout policy (and set it)."""
    from ntctl.users import render_accounts

    data = _call(root, "accounts", threshold, duration, window)
    emit(data) if as_json else print(render_accounts(data))


@app.verb("logon-test", Arg("name"), ROOT, PASSWORD_STDIN, JSON)
def logon_test(name: str, root: Path, password_stdin: bool, as_json: bool) -> int:
    """LsaLogonUser as a network logon; prints the result like runas."""
    from ntctl.users import render_logon

    data = _call(root, "logon_test", name, _password(password_stdin))
    emit(data) if as_json else print(render_logon(data))
    return 0 if "token" in data else 1


@app.verb(
    "whoami", ROOT, Opt("/all", "--all", dest="full", flag=True, help="groups and privileges"), JSON
)
def whoami(root: Path, full: bool, as_json: bool) -> None:
    """whoami [/all]: this ntctl's token."""
    from ntctl.users import render_whoami

    data = _call(root, "whoami")
    emit(data) if as_json else print(render_whoami(data, full))


# -- --as ------------------------------------------------------------------------------
def wait_for_gate() -> None:
    """In a --as child: nothing runs (nor attaches) before the parent says the token is in
    place; a closed pipe means the logon failed."""
    fd = os.environ.pop(AS_GATE, None)
    if fd is None:
        return
    go = os.read(int(fd), 1)
    os.close(int(fd))
    if go != b"R":
        os._exit(1)


def run_as_or_dispatch(argv: list[str]) -> int:
    """``ntctl --as NAME VERB ...``: authenticate NAME, run VERB in a child with its token."""
    from ntctl.machine import DEFAULT_ROOT

    i = argv.index("--as")
    if i + 1 >= len(argv):
        sys.stderr.write("ntctl: --as needs a user name\n")
        return 2
    name, rest = argv[i + 1], argv[:i] + argv[i + 2 :]
    root = Path(rest[rest.index("--root") + 1]) if "--root" in rest[:-1] else DEFAULT_ROOT
    try:
        from ntctl import users

        try:
            password = users.read_password(
                not sys.stdin.isatty(), f"Enter the password for {name}: "
            )
            return users.run_as(root, name, password, rest)
        except users.UsersError as exc:
            fail(str(exc))
        except nt_errors() as exc:
            nt_failure(exc)
    except Exit as done:
        return done.code
    return 1
