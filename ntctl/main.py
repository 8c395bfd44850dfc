"""ntctl: the user's tool for the running machine (ps, kill, logs, analyze, reg, obj, csr).

Every view has a ``--json`` twin built from the same record. A failure prints what went
wrong (with the NTSTATUS name) and how to fix it, and exits non-zero.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from nt import dump
from nt.bugcodes import lookup as lookup_bugcode
from nt.logquery import follow, iter_events, resolve_boot
from nt.status import hexstatus, status_name
from nt.syscalls import NtError
from ntctl import analyze as analyzer
from ntctl import views
from ntctl.logview import print_events
from ntctl.machine import DEFAULT_ROOT, Machine, MachineError
from ports.client import PortError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.splitlines()[0])
reg_app = typer.Typer(no_args_is_help=True, help="Read and write the registry through the kernel.")
csr_app = typer.Typer(no_args_is_help=True, help="Call csrss's ApiPort as a client process would.")
app.add_typer(reg_app, name="reg")
app.add_typer(csr_app, name="csr")
console = Console(soft_wrap=True)  # command output is for copying, not reflowing
err = Console(stderr=True, soft_wrap=True)

Root = Annotated[Path, typer.Option("--root", help="data root of the machine")]
Json = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def fail(message: str, code: int = 1) -> NoReturn:
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
) -> None:
    """Boot the machine (what ./run.sh runs)."""
    from ntctl.boot import boot as do_boot

    if profile not in ("win10", "win7"):
        fail(f"unknown profile {profile!r}: use win10 or win7", 2)
    raise typer.Exit(do_boot(root.resolve(), boot_options, profile, reg, detach, console))


@app.command()
def shutdown(
    root: Root = DEFAULT_ROOT,
    reboot: Annotated[bool, typer.Option("-r", "--reboot", help="restart after")] = False,
    timeout: Annotated[
        int, typer.Option("-t", help="seconds before the shutdown (0..315360000)")
    ] = 0,
    comment: Annotated[str, typer.Option("-c", help="why (up to 512 characters)")] = "",
    abort: Annotated[bool, typer.Option("-a", help="abort a pending shutdown")] = False,
    force: Annotated[bool, typer.Option("-f", help="close applications without warning")] = False,
) -> None:
    """Shut down or restart the Windows way (winlogon, ExitWindowsEx, SCM, NtShutdownSystem)."""
    from ntctl import sessions

    if not 0 <= timeout <= 315360000 or len(comment) > 512:
        fail("shutdown: -t is 0..315360000 seconds, -c at most 512 characters", 2)
    with machine(root) as m:
        kernel_pid = m.state.kernel_pid
        try:
            if abort:
                sessions.abort_shutdown(m)
                console.print("The pending shutdown was aborted.")
                return
            went = sessions.initiate_shutdown(m, reboot, timeout, comment, force)
        except sessions.VerbError as exc:
            fail(str(exc))
    if not went:
        what = "restart" if reboot else "shut down"
        console.print(f"The machine will {what} in {timeout} s (`ntctl shutdown -a` aborts).")
        return
    if not sessions.wait_kernel_gone(kernel_pid):
        fail(
            f"the kernel (pid {kernel_pid}) is still running {sessions.KERNEL_EXIT_WAIT:.0f} s "
            "after the shutdown began; see `ntctl logs --event 'shutdown.*'`"
        )
    console.print("The machine is restarting." if reboot else "The machine was shut down.")


# -- sessions (verb logic in ntctl/sessions.py) --------------------------------------------
session_app = typer.Typer(
    invoke_without_command=True, help="The sessions, like query session; new, disconnect, ..."
)
app.add_typer(session_app, name="session")


@session_app.callback()
def session_list(ctx: typer.Context, root: Root = DEFAULT_ROOT, as_json: Json = False) -> None:
    """query session: SESSIONNAME USERNAME ID STATE TYPE DEVICE ('>' = this session)."""
    if ctx.invoked_subcommand is not None:
        return
    from ntctl import sessions

    with machine(root) as m:
        try:
            rows = sessions.query_sessions(m)
        except sessions.VerbError as exc:
            fail(str(exc))
    emit(rows) if as_json else sys.stdout.write(sessions.render_sessions(rows) + "\n")


@session_app.command("new")
def session_new(
    root: Root = DEFAULT_ROOT,
    as_json: Json = False,
    user: Annotated[str, typer.Option("--user", help="who will log on to it")] = "",
) -> None:
    """A new session (termsrv's way: LSM asks smss, a new smss instance makes it)."""
    from ntctl import sessions

    with machine(root) as m:
        try:
            record = sessions.new_session(m, user)
        except sessions.VerbError as exc:
            fail(str(exc))
    if as_json:
        emit(record)
    else:
        console.print(
            f"Session {record['session_id']} ({record['name']}) created: csrss pid "
            f"{record['csrss_pid']}, winlogon pid {record['winlogon_pid']}."
        )


def _session_verb(verb: str, session_id: int, root: Path) -> None:
    from ntctl import sessions

    with machine(root) as m:
        try:
            result = getattr(sessions, verb)(m, session_id)
        except sessions.VerbError as exc:
            fail(str(exc))
    if verb == "logoff":
        console.print(f"Session {session_id} " + ("closed." if result else "logged off."))
    else:
        console.print(f"Session {session_id}: {verb} done.")


@session_app.command("disconnect")
def session_disconnect(session_id: int, root: Root = DEFAULT_ROOT) -> None:
    """tsdiscon N."""
    _session_verb("disconnect", session_id, root)


@session_app.command("reconnect")
def session_reconnect(session_id: int, root: Root = DEFAULT_ROOT) -> None:
    """tscon N."""
    _session_verb("reconnect", session_id, root)


@session_app.command("logoff")
def session_logoff(session_id: int, root: Root = DEFAULT_ROOT) -> None:
    """logoff N: a session made on demand is closed (its processes and objects go)."""
    _session_verb("logoff", session_id, root)


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


def main() -> None:
    try:
        app()
    except MachineError as exc:
        err.print(f"[red]ntctl: {exc}[/]")
        sys.exit(1)
