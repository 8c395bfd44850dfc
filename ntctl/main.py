"""ntctl: the user's tool for the running machine (ps, kill, logs, analyze, reg, obj, csr).

``ntctl --as USER VERB ...`` runs VERB with USER's token (authenticated by lsass; the
password from a prompt, or the first line of stdin when it is not a terminal).

Every view has a ``--json`` twin built from the same record. A failure prints what went
wrong (with the NTSTATUS name) and how to fix it, and exits non-zero.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from nt import dump
from nt.bugcodes import lookup as lookup_bugcode
from nt.logquery import follow, iter_events, resolve_boot
from nt.status import hexstatus, status_name
from nt.syscalls import NtError
from ntctl import analyze as analyzer
from ntctl import users, views
from ntctl.logview import print_events
from ntctl.machine import DEFAULT_ROOT, Machine, MachineError
from ports.client import PortError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.splitlines()[0])
reg_app = typer.Typer(no_args_is_help=True, help="Read and write the registry through the kernel.")
csr_app = typer.Typer(no_args_is_help=True, help="Call csrss's ApiPort as a client process would.")
user_app = typer.Typer(no_args_is_help=True, help="Local accounts through lsass, like net user.")
app.add_typer(reg_app, name="reg")
app.add_typer(csr_app, name="csr")
app.add_typer(user_app, name="user")
console = Console(soft_wrap=True)  # command output is for copying, not reflowing
err = Console(stderr=True, soft_wrap=True)

Root = Annotated[Path, typer.Option("--root", help="data root of the machine")]
Json = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def fail(message: str, code: int = 1) -> None:
    err.print(f"[red]ntctl: {message}[/]")
    raise typer.Exit(code)


def emit(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def machine(root: Path, session: int | None = 1) -> Machine:
    try:
        return Machine(root, session)
    except MachineError as exc:
        fail(str(exc))
        raise


def nt_failure(exc: Exception) -> None:
    status = getattr(exc, "status", None)
    fail(f"{exc}" if status is None else f"{exc} ({hexstatus(status)} {status_name(status)})")


# -- boot / shutdown ----------------------------------------------------------------
@app.command()
def boot(
    root: Root = DEFAULT_ROOT,
    boot_options: Annotated[str, typer.Option("--boot", help='e.g. "/SOS /SAFEBOOT:MINIMAL"')] = "",
    profile: Annotated[str, typer.Option(help="win10 (0xEF) or win7 (0xF4)")] = "win10",
    reg: Annotated[list[str], typer.Option(help=".reg file imported at boot (repeatable)")] = [],  # noqa: B006
    detach: Annotated[bool, typer.Option("--detach", help="boot in the background")] = False,
    setup_user: Annotated[
        str | None, typer.Option("--setup-user", help="first administrator account to create")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="its password: the first line of stdin")
    ] = False,
) -> None:
    """Boot the machine (what ./run.sh runs)."""
    from ntctl import setup
    from ntctl.boot import boot as do_boot

    if profile not in ("win10", "win7"):
        fail(f"unknown profile {profile!r}: use win10 or win7", 2)
    root = root.resolve()
    account = None
    if setup_user:
        account = setup.FirstAccount(setup_user, users.read_password(password_stdin, confirm=True))
    elif not detach and sys.stdin.isatty() and setup.first_boot(root):
        account = setup.prompt_first_account()
    raise typer.Exit(do_boot(root, boot_options, profile, reg, detach, console, account))


@app.command()
def shutdown(
    root: Root = DEFAULT_ROOT,
    reboot: Annotated[bool, typer.Option("-r", "--reboot", help="restart after")] = False,
) -> None:
    """NtShutdownSystem: stop every process, close the hives."""
    import time

    with machine(root) as m:
        kernel_pid = m.state.kernel_pid
        try:
            m.nt.shutdown(1 if reboot else 0)
        except (NtError, PortError) as exc:
            nt_failure(exc)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and Path(f"/proc/{kernel_pid}").exists():
        time.sleep(0.02)
    if Path(f"/proc/{kernel_pid}").exists():
        fail(
            f"the kernel (pid {kernel_pid}) is still running 15 s after NtShutdownSystem; "
            "see `ntctl logs --event 'shutdown.*'`"
        )
    console.print("The machine is restarting." if reboot else "The machine was shut down.")


# -- processes ----------------------------------------------------------------------
@app.command()
def ps(
    root: Root = DEFAULT_ROOT,
    as_json: Json = False,
    all_: Annotated[bool, typer.Option("--all", "-a", help="keep exited processes")] = False,
) -> None:
    """The NT process tree: image, pid, NT parent, session, critical, state, start time."""
    with machine(root) as m:
        procs = views.process_rows(m.nt.processes(), include_exited=all_)
    if as_json:
        emit(procs)
    else:
        console.print(views.process_tree(procs))


@app.command()
def kill(
    target: str,
    root: Root = DEFAULT_ROOT,
    status: Annotated[str, typer.Option(help="exit status (NTSTATUS)")] = "1",
) -> None:
    """NtTerminateProcess on NAME (image, e.g. csrss or csrss.exe) or PID."""
    with machine(root) as m:
        procs = [
            p for p in m.nt.processes() if p["state"] != "exited" and p["image"] != "ntctl.exe"
        ]
        matches = views.match_processes(procs, target)
        if not matches:
            fail(f"no such process of the machine: {target!r} (see `ntctl ps`)", 2)
        if len(matches) > 1:
            listing = ", ".join(
                f"{p['image']} pid {p['pid']} session {p['session']}" for p in matches
            )
            fail(f"{target!r} names {len(matches)} processes ({listing}); give a pid", 2)
        victim = matches[0]
        try:
            m.nt.terminate(victim["pid"], int(status, 0))
        except (NtError, PortError) as exc:
            nt_failure(exc)
    console.print(f"Terminated {victim['image']} (pid {victim['pid']}).")


# -- logs and dumps -----------------------------------------------------------------
@app.command()
def logs(
    root: Root = DEFAULT_ROOT,
    as_json: Json = False,
    image: Annotated[str | None, typer.Option(help="image name, e.g. csrss.exe")] = None,
    pid: Annotated[int | None, typer.Option()] = None,
    session: Annotated[int | None, typer.Option()] = None,
    level: Annotated[
        str | None, typer.Option(help="minimum level: debug|info|warning|error")
    ] = None,
    event: Annotated[str | None, typer.Option(help="event name or glob, e.g. 'proc.*'")] = None,
    since: Annotated[str | None, typer.Option(help="ISO time or relative: 30s, 5m, 1h")] = None,
    until: Annotated[str | None, typer.Option()] = None,
    boot_: Annotated[
        str, typer.Option("--boot", help="latest, -1 (previous) or a boot id")
    ] = "latest",
    follow_: Annotated[bool, typer.Option("--follow", "-f")] = False,
) -> None:
    """Query the JSON-lines logs of this or an earlier boot."""
    try:
        log_dir = resolve_boot(root / "logs", boot_)
    except (FileNotFoundError, ValueError) as exc:
        fail(f"no logs for boot {boot_!r}: {exc}", 2)
    filters = dict(
        image=image, pid=pid, session=session, level=level, event=event, since=since, until=until
    )
    try:
        events = (
            follow(log_dir, from_start=True, **filters)
            if follow_
            else iter_events(log_dir, **filters)
        )
        print_events(events, console, as_json=as_json)
    except ValueError as exc:
        fail(str(exc), 2)
    except KeyboardInterrupt:
        pass


@app.command()
def analyze(
    dump_file: Annotated[
        Path | None, typer.Argument(help="a Minidump file; default: the newest")
    ] = None,
    root: Root = DEFAULT_ROOT,
    as_json: Json = False,
    show: Annotated[
        str | None, typer.Option("--show", help="explain a bugcheck code, no dump")
    ] = None,
) -> None:
    """Explain a crash dump like WinDbg's !analyze -v."""
    if show is not None:
        try:
            code = lookup_bugcode(show)
        except ValueError as exc:
            fail(str(exc), 2)
        emit(analyzer.show_json(code)) if as_json else console.print(analyzer.show(code))
        return
    path = dump_file or dump.latest_dump(root / "C" / "Windows" / "Minidump")
    if path is None:
        fail(
            f"no crash dump in {root / 'C' / 'Windows' / 'Minidump'}; kill a critical process first",
            2,
        )
    try:
        record = dump.read_dump(path)
    except (OSError, ValueError) as exc:
        fail(f"cannot read {path}: {exc}", 2)
    emit(analyzer.analyze_json(record)) if as_json else console.print(analyzer.analyze(record))


# -- drivers --------------------------------------------------------------------------
@app.command()
def drivers(root: Root = DEFAULT_ROOT, as_json: Json = False) -> None:
    """The loaded drivers in load order, like driverquery (SystemModuleInformation)."""
    with machine(root) as m:
        try:
            rows = views.driver_rows(m.nt.modules())
        except (NtError, PortError) as exc:
            nt_failure(exc)
    if as_json:
        emit(rows)
    else:
        sys.stdout.write("\n" + views.driverquery_table(rows) + "\n")


# -- objects --------------------------------------------------------------------------
@app.command()
def obj(
    path: Annotated[str, typer.Argument()] = "\\",
    root: Root = DEFAULT_ROOT,
    as_json: Json = False,
    recursive: Annotated[bool, typer.Option("--recursive", "-r")] = False,
) -> None:
    """The object namespace, like WinObj (directories, ports, symbolic links, events)."""
    with machine(root) as m:
        try:
            tree = views.object_tree(m.nt, path, recursive)
        except (NtError, PortError) as exc:
            nt_failure(exc)
    emit(tree) if as_json else console.print(views.render_object_tree(tree))


# -- registry -------------------------------------------------------------------------
@reg_app.command("query")
def reg_query(
    key: str,
    root: Root = DEFAULT_ROOT,
    as_json: Json = False,
    value: Annotated[str | None, typer.Option("/v", "--value")] = None,
    recursive: Annotated[bool, typer.Option("/s", "--recursive")] = False,
) -> None:
    """reg query KEY [/v NAME] [/s]."""
    with machine(root) as m:
        try:
            data = views.reg_query(m.nt, key, value, recursive)
        except (NtError, PortError) as exc:
            nt_failure(exc)
    emit(data) if as_json else console.print(views.render_reg(data), highlight=False)


@reg_app.command("add")
def reg_add(
    key: str,
    root: Root = DEFAULT_ROOT,
    value: Annotated[str | None, typer.Option("/v", "--value")] = None,
    vtype: Annotated[str, typer.Option("/t", "--type")] = "REG_SZ",
    data: Annotated[str, typer.Option("/d", "--data")] = "",
) -> None:
    """reg add KEY [/v NAME /t TYPE /d DATA]."""
    try:
        type_number, parsed = views.parse_reg_data(vtype, data)
    except ValueError as exc:
        fail(str(exc), 2)
    with machine(root) as m:
        try:
            m.nt.create_key(key)
            if value is not None:
                m.nt.set_value(key, value, type_number, parsed)
        except (NtError, PortError) as exc:
            nt_failure(exc)
    console.print("The operation completed successfully.")


@reg_app.command("delete")
def reg_delete(
    key: str,
    root: Root = DEFAULT_ROOT,
    value: Annotated[str | None, typer.Option("/v", "--value")] = None,
) -> None:
    """reg delete KEY [/v NAME] (a key goes with everything below it)."""
    with machine(root) as m:
        try:
            m.nt.delete_value(key, value) if value is not None else m.nt.delete_key(key, tree=True)
        except (NtError, PortError) as exc:
            nt_failure(exc)
    console.print("The operation completed successfully.")


@reg_app.command("import")
def reg_import(file: Path, root: Root = DEFAULT_ROOT) -> None:
    """reg import FILE.reg: all of it, or nothing."""
    from nt import regfile

    try:
        raw = file.read_bytes()
        regfile.parse(raw)  # report a syntax error with its line before touching the machine
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}", 2)
    except regfile.RegFileError as exc:
        fail(f"{file}: {exc}", 2)
    with machine(root) as m:
        try:
            counts = m.nt.import_reg(regfile._decode_text(raw))
        except (NtError, PortError) as exc:
            nt_failure(exc)
    console.print(
        f"The operation completed successfully ({counts['keys']} keys, {counts['values']} values)."
    )


@reg_app.command("export")
def reg_export(
    key: str, file: Annotated[Path | None, typer.Argument()] = None, root: Root = DEFAULT_ROOT
) -> None:
    """reg export KEY [FILE] (UTF-16 LE with BOM, as regedit writes; stdout without FILE)."""
    with machine(root) as m:
        try:
            text = m.nt.export_key(key)
        except (NtError, PortError) as exc:
            nt_failure(exc)
    if file is None:
        sys.stdout.write(text)
    else:
        file.write_bytes(b"\xff\xfe" + text.replace("\n", "\r\n").encode("utf-16-le"))
        console.print("The operation completed successfully.")


# -- csrss ----------------------------------------------------------------------------
@csr_app.command("call")
def csr_call(
    api: str,
    args: Annotated[list[str] | None, typer.Argument(help="name=value ...")] = None,
    root: Root = DEFAULT_ROOT,
    as_json: Json = False,
    session: Annotated[int, typer.Option(help="whose csrss: 0 or 1")] = 1,
) -> None:
    """Call any CSR API by name (e.g. BaseSrvGetTempFile) with name=value arguments."""
    from ports import csr

    found = csr.lookup_api(api)
    if found is None:
        fail(f"no CSR API named {api!r}; names are like BaseSrvGetTempFile or BasepGetTempFile", 2)
    try:
        body = views.parse_call_args(args or [])
    except ValueError as exc:
        fail(str(exc), 2)
    with machine(root, session) as m:
        try:
            client = m.csr_client()
            reply = client.call(found.number, body)
        except (NtError, PortError) as exc:
            nt_failure(exc)
    result = {
        "api": found.name,
        "api_number": f"0x{found.number:08X}",
        "status": hexstatus(reply.status),
        "status_name": status_name(reply.status),
        "reply": reply.body,
    }
    if as_json:
        emit(result)
    else:
        console.print(
            f"{found.routine} ({result['api_number']}) → {result['status']} {result['status_name']}"
        )
        for k, v in reply.body.items():
            console.print(f"  {k} = {v!r}", highlight=False)
    if not reply.ok:
        raise typer.Exit(1)


# -- accounts (logic in ntctl/users.py) ------------------------------------------------
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="read the password from the first line of stdin")
]


def _users(root: Path, fn, *args, **kw):  # noqa: ANN001, ANN202 - a thin registration
    with machine(root) as m:
        try:
            return fn(m, *args, **kw)
        except users.UsersError as exc:
            fail(str(exc))
        except (NtError, PortError) as exc:
            nt_failure(exc)


@user_app.command("add")
def user_add(
    name: str,
    root: Root = DEFAULT_ROOT,
    admin: Annotated[bool, typer.Option("--admin", help="member of Administrators")] = False,
    password_stdin: PasswordStdin = False,
    as_json: Json = False,
) -> None:
    """net user NAME /add: a new account (password from a prompt or stdin)."""
    password = users.read_password(password_stdin, confirm=True)
    data = _users(root, users.user_add, name, password, admin)
    emit(data) if as_json else console.print(f"User {name} created ({data['sid']}).")


@user_app.command("list")
def user_list(root: Root = DEFAULT_ROOT, as_json: Json = False) -> None:
    """net user: every account."""
    data = _users(root, users.user_list)
    emit(data) if as_json else console.print(users.render_list(data), highlight=False)


@user_app.command("show")
def user_show(name: str, root: Root = DEFAULT_ROOT, as_json: Json = False) -> None:
    """net user NAME: SID, groups, flags, logons, bad passwords, lockout."""
    data = _users(root, users.user_show, name)
    emit(data) if as_json else console.print(users.render_user(data), highlight=False)


@user_app.command("delete")
def user_delete(name: str, root: Root = DEFAULT_ROOT, as_json: Json = False) -> None:
    """net user NAME /delete."""
    _users(root, users.user_delete, name)
    emit({"name": name, "deleted": True}) if as_json else console.print(f"User {name} deleted.")


@user_app.command("passwd")
def user_passwd(
    name: str,
    root: Root = DEFAULT_ROOT,
    password_stdin: PasswordStdin = False,
    as_json: Json = False,
) -> None:
    """net user NAME *: set a new password (as the machine's administrator)."""
    password = users.read_password(password_stdin, "New password: ", confirm=True)
    _users(root, users.user_set, name, password=password)
    emit({"name": name, "password_set": True}) if as_json else console.print("Password set.")


def _flag_verb(verb: str, past: str, **change: object):  # noqa: ANN202
    def command(name: str, root: Root = DEFAULT_ROOT, as_json: Json = False) -> None:
        _users(root, users.user_set, name, **change)
        emit({"name": name, verb: True}) if as_json else console.print(f"User {name}: {past}.")

    command.__doc__ = f"net user NAME /active or unlock: {verb} the account."
    return command


user_app.command("enable")(_flag_verb("enable", "enabled", enabled=1))
user_app.command("disable")(_flag_verb("disable", "disabled", enabled=0))
user_app.command("unlock")(_flag_verb("unlock", "unlocked", unlock=True))


@app.command("accounts")
def accounts_cmd(
    root: Root = DEFAULT_ROOT,
    threshold: Annotated[int, typer.Option("--lockout-threshold", help="0-999; 0 never")] = -1,
    duration: Annotated[
        int, typer.Option("--lockout-duration", help="minutes; 0 until unlocked")
    ] = -1,
    window: Annotated[int, typer.Option("--lockout-window", help="minutes")] = -1,
    as_json: Json = False,
) -> None:
    """net accounts: the lockout policy (and set it)."""
    data = _users(root, users.accounts, threshold, duration, window)
    emit(data) if as_json else console.print(users.render_accounts(data), highlight=False)


@app.command("logon-test")
def logon_test(
    name: str,
    root: Root = DEFAULT_ROOT,
    password_stdin: PasswordStdin = False,
    as_json: Json = False,
) -> None:
    """LsaLogonUser as a network logon; prints the result like runas."""
    password = users.read_password(password_stdin)
    data = _users(root, users.logon_test, name, password)
    emit(data) if as_json else console.print(users.render_logon(data), highlight=False)
    if "token" not in data:
        raise typer.Exit(1)


@app.command()
def whoami(
    root: Root = DEFAULT_ROOT,
    full: Annotated[bool, typer.Option("/all", "--all", help="groups and privileges")] = False,
    as_json: Json = False,
) -> None:
    """whoami [/all]: this ntctl's token."""
    data = _users(root, users.whoami)
    emit(data) if as_json else console.print(users.render_whoami(data, full), highlight=False)


def main() -> None:
    users.wait_for_gate()
    argv = sys.argv[1:]
    if "--as" in argv:  # runas: before Typer, so every verb takes it
        i = argv.index("--as")
        if i + 1 >= len(argv):
            err.print("[red]ntctl: --as needs a user name[/]")
            sys.exit(2)
        name, rest = argv[i + 1], argv[:i] + argv[i + 2 :]
        root = Path(rest[rest.index("--root") + 1]) if "--root" in rest[:-1] else DEFAULT_ROOT
        try:
            password = users.read_password(
                not sys.stdin.isatty(), f"Enter the password for {name}: "
            )
            sys.exit(users.run_as(root, name, password, rest))
        except (users.UsersError, MachineError, PortError) as exc:
            err.print(f"[red]ntctl: {exc}[/]")
            sys.exit(1)
    try:
        app()
    except MachineError as exc:
        err.print(f"[red]ntctl: {exc}[/]")
        sys.exit(1)
