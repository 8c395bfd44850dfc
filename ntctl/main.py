"""ntctl: the user's tool for the running machine (ps, kill, logs, analyze, reg, obj, csr).

``ntctl --as USER VERB ...`` runs VERB with USER's token (authenticated by lsass; the
password from a prompt, or the first line of stdin when it is not a terminal).

Every view has a ``--json`` twin built from the same record. A failure prints what went
wrong (with the NTSTATUS name) and how to fix it, and exits non-zero (2 for usage).

This module is the verb table: one small function per verb, declared with
``ntctl.cli`` (see its docstring for why not Typer), with the shared options and helpers
of ``ntctl.verbkit``; more verbs live in modules imported at the end (``viewverbs``).
The top levels import nothing but the dispatcher and the standard library, so
``ntctl --help`` and every verb pay only for what they use: each function imports its
own dependencies when it runs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ntctl.cli import Arg, Opt, fail
from ntctl.machine import MachineError
from ntctl.verbkit import (
    BOOT,
    JSON,
    ROOT,
    app,
    boot_dir,
    csr_app,
    display,
    emit,
    nt_errors,
    nt_failure,
    quick,
    reg_app,
)


# -- boot / shutdown ----------------------------------------------------------------
@app.verb(
    "boot",
    ROOT,
    Opt("--boot", dest="boot_options", default="", help='e.g. "/SOS /SAFEBOOT:MINIMAL"'),
    Opt("--profile", default="win10", help="win10 (0xEF) or win7 (0xF4)"),
    Opt("--reg", dest="regs", multiple=True, metavar="FILE", help=".reg file imported at boot"),
    Opt("--detach", flag=True, help="boot in the background"),
    Opt("-v", "--verbose", flag=True, help="stream every event of every process"),
    Opt(
        "--system-hive",
        type=Path,
        metavar="FILE",
        help="a Windows SYSTEM hive (LOG1/LOG2 beside it) as a fresh root's SYSTEM",
    ),
    Opt("--setup-user", metavar="NAME", help="first administrator account to create"),
    Opt("--password-stdin", flag=True, help="its password: the first line of stdin"),
)
def boot(
    root: Path,
    boot_options: str,
    profile: str,
    regs: list[str],
    detach: bool,
    verbose: bool,
    system_hive: Path | None,
    setup_user: str | None,
    password_stdin: bool,
) -> int:
    """Boot the machine (what ./run.sh runs)."""
    from ntctl import setup
    from ntctl.boot import boot as do_boot

    if profile not in ("win10", "win7"):
        fail(f"unknown profile {profile!r}: use win10 or win7", 2)
    root = root.resolve()
    hive = None if system_hive is None else system_hive.resolve()
    account = None
    if setup_user:
        from ntctl.users import read_password

        account = setup.FirstAccount(setup_user, read_password(password_stdin, confirm=True))
    elif not detach and sys.stdin.isatty() and setup.first_boot(root):
        account = setup.prompt_first_account()
    return do_boot(root, boot_options, profile, regs, detach, verbose, hive, account)


# shutdown and session: ntctl/sessionverbs.py (registered at the end)


# -- processes ----------------------------------------------------------------------
@app.verb(
    "ps", ROOT, JSON, Opt("--all", "-a", dest="all_", flag=True, help="keep exited processes")
)
def ps(root: Path, as_json: bool, all_: bool) -> None:
    """The NT process tree: image, pid, NT parent, session, critical, state, start time."""
    from ntctl import views

    with quick(root) as m:
        procs = views.process_rows(m.nt.processes(), include_exited=all_)
    emit(procs) if as_json else display(views.process_tree(procs))


@app.verb(
    "kill",
    Arg("target", help="image name (csrss or csrss.exe) or pid"),
    ROOT,
    Opt("--status", default="1", help="exit status (NTSTATUS)"),
)
def kill(target: str, root: Path, status: str) -> None:
    """NtTerminateProcess on NAME (image, e.g. csrss or csrss.exe) or PID."""
    from ntctl import views

    try:
        exit_status = int(status, 0)
    except ValueError:
        fail(f"--status {status!r} is not a number (e.g. 1 or 0xC0000005)", 2)
    with quick(root) as m:
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
            m.nt.terminate(victim["pid"], exit_status)
        except nt_errors() as exc:
            nt_failure(exc)
    print(f"Terminated {victim['image']} (pid {victim['pid']}).")


# -- logs and dumps -----------------------------------------------------------------
@app.verb(
    "logs",
    ROOT,
    JSON,
    Opt("--image", help="image name, e.g. csrss.exe"),
    Opt("--pid", type=int),
    Opt("--session", type=int),
    Opt("--level", help="minimum level: debug|info|warning|error"),
    Opt("--event", help="event name or glob, e.g. 'proc.*'"),
    Opt("--since", help="ISO time or relative: 30s, 5m, 1h"),
    Opt("--until", metavar="TIME"),
    Opt("-n", "--lines", type=int, help="only the last N events"),
    BOOT,
    Opt("--follow", "-f", dest="follow_", flag=True, help="keep printing new events"),
)
def logs(
    root: Path, as_json: bool, boot_: str, follow_: bool, lines: int | None, **filters: Any
) -> None:
    """Query the JSON-lines logs of this or an earlier boot."""
    from collections import deque

    from nt.logquery import follow, iter_events
    from ntctl.logview import print_events

    log_dir = boot_dir(root, boot_)
    if lines is not None and lines < 0:
        fail(f"-n {lines}: give a count of 0 or more", 2)
    try:
        events: Any = iter_events(log_dir, **filters)
        if lines is not None:
            events = deque(events, maxlen=lines)
        if follow_:
            if lines is not None:
                print_events(events, as_json=as_json)
            events = follow(log_dir, from_start=lines is None, **filters)
        print_events(events, as_json=as_json)
    except ValueError as exc:
        fail(str(exc), 2)


@app.verb(
    "analyze",
    Arg("dump_file", type=Path, optional=True, help="a Minidump file; default: the newest"),
    ROOT,
    JSON,
    Opt("--show", metavar="CODE", help="explain a bugcheck code, no dump"),
)
def analyze(dump_file: Path | None, root: Path, as_json: bool, show: str | None) -> None:
    """Explain a crash dump like WinDbg's !analyze -v."""
    from nt import dump
    from ntctl import analyze as analyzer

    if show is not None:
        from nt.bugcodes import lookup

        try:
            code = lookup(show)
        except ValueError as exc:
            fail(str(exc), 2)
        emit(analyzer.show_json(code)) if as_json else display(analyzer.show_lines(code))
        return
    minidump = root / "C" / "Windows" / "Minidump"
    path = dump_file or dump.latest_dump(minidump)
    if path is None:
        fail(f"no crash dump in {minidump}; kill a critical process first", 2)
    try:
        record = dump.read_dump(path)
    except (OSError, ValueError) as exc:
        fail(f"cannot read {path}: {exc}", 2)
    if as_json:
        emit(analyzer.analyze_json(record))
    else:
        analyzer.print_text(analyzer.analyze(record))


# -- event logs -----------------------------------------------------------------------
@app.verb(
    "events",
    Arg("log", help="System, Application or Security"),
    ROOT,
    JSON,
    Opt("--id", dest="event_id", type=int, help="only this event id"),
    Opt("--source", help="only this source"),
    Opt("--since", help="ISO time or relative: 30s, 5m, 1h"),
    Opt("--newest", type=int, help="the N newest, newest first"),
)
def events(
    log: str,
    root: Path,
    as_json: bool,
    event_id: int | None,
    source: str | None,
    since: str | None,
    newest: int | None,
) -> None:
    """Read an event log like wevtutil qe <Log> /f:text (the EventLog service's logs)."""
    from nt.evtlog import format_text
    from ntctl import events as evq
    from ntctl.machine import QuickMachine  # one call to EventLog's port: no runtime needed

    try:
        request = evq.Request(log, event_id, source, since, newest)
        found, where = evq.query(root, request, QuickMachine)
    except evq.EventsError as exc:
        fail(str(exc), exc.code)
        return
    if where == "files":
        sys.stderr.write("ntctl: EventLog is not running; reading its log files\n")
    if as_json:
        emit([e.as_json() for e in found])
    else:
        sys.stdout.write(format_text(found))


@app.verb(
    "print",
    Arg("file", type=Path, help="the file to print"),
    ROOT,
    JSON,
    Opt("/d", "--printer", default="Microsoft Print to PDF", help="the printer (print /D:)"),
)
def print_(file: Path, root: Path, as_json: bool, printer: str) -> None:
    """Print a file through the Spooler (print.exe): StartDocPrinter, WritePrinter, EndDocPrinter."""
    from ntctl.machine import Machine  # a whole runtime: the verb connects to the spooler's port
    from ports import spoolss
    from ports.client import PortError

    try:
        data = file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}", 2)
        return
    with Machine(root) as m:
        try:
            conn = spoolss.connect(m.lpc)
        except PortError as exc:
            fail("the Print Spooler service is not running", 1, "ntctl sc start Spooler")
            raise AssertionError from exc  # fail() leaves
        try:
            error, job = spoolss.SubmitJob(conn, printer, file.name, data)
        finally:
            conn.close()
    if error:
        from nt.win32 import error_message

        fail(f"{error_message(error)} ({error})")
    if as_json:
        emit({"job_id": job, "printer": printer, "document": file.name, "size": len(data)})
    else:
        sys.stdout.write(f"{file} is currently being printed (job {job} on {printer})\n")


# -- drivers --------------------------------------------------------------------------
@app.verb("drivers", ROOT, JSON)
def drivers(root: Path, as_json: bool) -> None:
    """The loaded drivers in load order, like driverquery (SystemModuleInformation)."""
    from ntctl import views

    with quick(root) as m:
        try:
            rows = views.driver_rows(m.nt.modules())
        except nt_errors() as exc:
            nt_failure(exc)
    if as_json:
        emit(rows)
    else:
        sys.stdout.write("\n" + views.driverquery_table(rows) + "\n")


# -- objects --------------------------------------------------------------------------
@app.verb(
    "obj",
    Arg("path", optional=True, default="\\", help="an object directory, e.g. \\Windows"),
    ROOT,
    JSON,
    Opt("--recursive", "-r", flag=True, help="descend into directories"),
)
def obj(path: str, root: Path, as_json: bool, recursive: bool) -> None:
    """The object namespace, like WinObj (directories, ports, symbolic links, events)."""
    from ntctl import views

    with quick(root) as m:
        try:
            tree = views.object_tree(m.nt, path, recursive)
        except nt_errors() as exc:
            nt_failure(exc)
    emit(tree) if as_json else display(views.render_object_tree(tree))


# -- registry -------------------------------------------------------------------------
VALUE = Opt("/v", "--value", metavar="NAME", help="one value")


@reg_app.verb(
    "query", Arg("key"), ROOT, JSON, VALUE, Opt("/s", "--recursive", flag=True, help="subkeys too")
)
def reg_query(key: str, root: Path, as_json: bool, value: str | None, recursive: bool) -> None:
    """reg query KEY [/v NAME] [/s]."""
    from ntctl import views

    with quick(root) as m:
        try:
            data = views.reg_query(m.nt, key, value, recursive)
        except nt_errors() as exc:
            nt_failure(exc)
    emit(data) if as_json else sys.stdout.write(views.render_reg(data) + "\n")


@reg_app.verb(
    "add",
    Arg("key"),
    ROOT,
    VALUE,
    Opt("/t", "--type", dest="vtype", default="REG_SZ", help="REG_SZ, REG_DWORD, ..."),
    Opt("/d", "--data", default="", help="the data, as reg.exe takes it"),
)
def reg_add(key: str, root: Path, value: str | None, vtype: str, data: str) -> None:
    """reg add KEY [/v NAME /t TYPE /d DATA]."""
    from ntctl import views

    try:
        type_number, parsed = views.parse_reg_data(vtype, data)
    except ValueError as exc:
        fail(str(exc), 2)
    with quick(root) as m:
        try:
            m.nt.create_key(key)
            if value is not None:
                m.nt.set_value(key, value, type_number, parsed)
        except nt_errors() as exc:
            nt_failure(exc)
    print("The operation completed successfully.")


@reg_app.verb("delete", Arg("key"), ROOT, VALUE)
def reg_delete(key: str, root: Path, value: str | None) -> None:
    """reg delete KEY [/v NAME] (a key goes with everything below it)."""
    with quick(root) as m:
        try:
            m.nt.delete_value(key, value) if value is not None else m.nt.delete_key(key, tree=True)
        except nt_errors() as exc:
            nt_failure(exc)
    print("The operation completed successfully.")


@reg_app.verb("import", Arg("file", type=Path), ROOT)
def reg_import(file: Path, root: Path) -> None:
    """reg import FILE.reg: all of it, or nothing (any size: sent in chunks)."""
    from nt import regfile
    from nt.syscalls import NtError
    from ntctl import reg

    try:
        ops, lines = reg.read_reg_file(file)  # a syntax error, with its line, first
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}", 2)
    except regfile.RegFileError as exc:
        fail(f"{file}: {exc}", 2)
    with quick(root) as m:
        try:
            counts = reg.import_ops(m.nt, ops)
        except nt_errors() as exc:
            line = reg.failed_line(exc.detail, lines) if isinstance(exc, NtError) else None
            if line is not None:
                fail(f"{file}: line {line}: nothing was imported: {exc}")
            nt_failure(exc)
    print(
        f"The operation completed successfully ({counts['keys']} keys, {counts['values']} values)."
    )


@reg_app.verb("export", Arg("key"), Arg("file", type=Path, optional=True), ROOT)
def reg_export(key: str, file: Path | None, root: Path) -> None:
    """reg export KEY [FILE] (UTF-16 LE with BOM, as regedit writes; stdout without FILE)."""
    from ntctl import reg

    with quick(root) as m:
        try:
            reg.export_key(m.nt, key, file)
        except nt_errors() as exc:
            nt_failure(exc)
        except OSError as exc:
            fail(f"cannot write {file}: {exc.strerror}", 2)
    if file is not None:
        print("The operation completed successfully.")


# -- csrss ----------------------------------------------------------------------------
@csr_app.verb(
    "call",
    Arg("api", help="e.g. BaseSrvGetTempFile, or an API number such as 0x00040000"),
    Arg("args", many=True, help="name=value ..."),
    ROOT,
    JSON,
    Opt("--session", type=int, default=1, help="whose csrss: 0 or 1"),
)
def csr_call(api: str, args: list[str], root: Path, as_json: bool, session: int) -> int:
    """Call any CSR API by name (e.g. BaseSrvGetTempFile) with name=value arguments, or
    send a raw API number (one outside every table shows how csrss refuses it)."""
    from nt.status import hexstatus, status_name
    from ntctl import views
    from ntctl.machine import Machine
    from ports import csr

    found = csr.lookup_api(api)
    number = found.number if found is not None else _api_number(api)
    if number is None:
        fail(f"no CSR API named {api!r}; names are like BaseSrvGetTempFile or BasepGetTempFile", 2)
    try:
        body = views.parse_call_args(args)
    except ValueError as exc:
        fail(str(exc), 2)
    with Machine(root, session) as m:
        try:
            reply = m.csr_client().call(number, body)
        except nt_errors() as exc:
            nt_failure(exc)
    result = {
        "api": found.name if found is not None else None,
        "api_number": f"0x{number:08X}",
        "status": hexstatus(reply.status),
        "status_name": status_name(reply.status),
        "reply": reply.body,
    }
    if as_json:
        emit(result)
    else:
        routine = found.routine if found is not None else "(no such API)"
        print(f"{routine} ({result['api_number']}) → {result['status']} {result['status_name']}")
        for k, v in reply.body.items():
            print(f"  {k} = {v!r}")
    return 0 if reply.ok else 1


def _api_number(text: str) -> int | None:
    """A CSR API number typed as an integer (0x00040000 or 262144)."""
    try:
        number = int(text, 0)
    except ValueError:
        return None
    return number if 0 <= number <= 0xFFFFFFFF else None


# Registered by import: sc; user, accounts, logon-test, whoami, --as; blame, critical-chain,
# plot, top; chaos; session, shutdown (sessionverbs).
from ntctl import (  # noqa: E402, F401
    chaosverb,
    consoleverbs,
    logonverbs,
    scverbs,
    sessionverbs,
    userverbs,
    viewverbs,
)


def main(argv: list[str] | None = None) -> None:
    """The console script: dispatch, then exit with the verb's code."""
    argv = sys.argv[1:] if argv is None else argv
    userverbs.wait_for_gate()  # a --as child: not before its token is in place
    try:
        code = userverbs.run_as_or_dispatch(argv) if "--as" in argv else None
        if code is None:
            code = app.dispatch(argv, "ntctl")
    except MachineError as exc:
        from ntctl.cli import Exit

        try:
            fail(str(exc))
        except Exit as done:
            code = done.code
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # the reader left (`ntctl logs | head`): nothing more to say
        pass
    # Everything is said and every connection closed: skip the interpreter's finalization
    # (module teardown, pyzmq's atexit clean-up), 10-50 ms of a call that must take < 150.
    os._exit(code)
