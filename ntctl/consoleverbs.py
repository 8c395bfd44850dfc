"""Programs and their consoles (issue 9): `ntctl start` and `ntctl console`.

ntctl start IMAGE [ARGS...] [--session N]     CreateProcess of a program in session N
ntctl console PID [--follow] [--send TEXT | --interactive] [--json]
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ntctl.cli import Arg, Opt, fail
from ntctl.verbkit import JSON, ROOT, app, emit, nt_errors, nt_failure

if TYPE_CHECKING:  # imported inside the verb: ntctl --help stays fast
    from ntctl.conattach import AttachedConsole


@app.verb(
    "start",
    Arg("image", help="a program of the system drive, e.g. condemo.exe"),
    Arg("args", many=True, help="its command-line arguments"),
    ROOT,
    JSON,
    Opt("--session", type=int, default=1, help="the session to run it in (default 1)"),
)
def start(image: str, args: list[str], root: Path, as_json: bool, session: int) -> int:
    """Start a program in a session, the way CreateProcess does: the kernel creates it
    suspended, csrss of that session learns it (BasepCreateProcess), then it runs."""
    from nt.images import SYSTEM32, image_name, package_for
    from nt.status import NtStatus
    from ntctl.machine import QuickMachine

    name = image_name(image)
    if package_for(name) is None:
        fail(
            f"'{image}' is not recognized: no such program on the system drive",
            1,
            "programs a user can start: condemo.exe",
        )
    if session == 0:
        fail(
            "session 0 runs services only (session 0 isolation): no user program starts there",
            1,
            "use --session 1 (the console session) or a session from `ntctl session`",
        )
    path = image if "\\" in image else f"{SYSTEM32}\\{name}"
    command_line = " ".join([path, *args])
    with QuickMachine(root, session) as m:
        try:
            csr = m.csr_client()
        except nt_errors() as exc:
            if getattr(exc, "status", None) == NtStatus.STATUS_OBJECT_NAME_NOT_FOUND:
                fail(f"no session {session} (no csrss serves it)", 1, "see `ntctl session`")
            nt_failure(exc)
        try:
            pid = m.nt.create_process(path, command_line, {}, session, suspended=True)
            reply = csr.call("BasepCreateProcess", {"process_id": pid})
            if not reply.ok:
                m.nt.terminate(pid, reply.status)
                fail(f"csrss refused the new process {pid} (BasepCreateProcess)", 1)
            m.nt.resume(pid)
        except nt_errors() as exc:
            nt_failure(exc)
        finally:
            csr.close()
    if as_json:
        emit({"pid": pid, "image": name, "session": session, "command_line": command_line})
    else:
        print(f"{name} started: pid {pid}, session {session}")
    return 0


@app.verb(
    "console",
    Arg("pid", type=int, help="the process whose console to show"),
    ROOT,
    JSON,
    Opt("--follow", "-f", flag=True, help="keep showing new lines until the program exits"),
    Opt("--send", default=None, metavar="TEXT", help="type TEXT and Enter into its console"),
    Opt("--interactive", "-i", flag=True, help="type lines from stdin while following"),
)
def console(
    pid: int, root: Path, as_json: bool, follow: bool, send: str | None, interactive: bool
) -> int:
    """Show the console of process PID (what it wrote) and type into it (AttachConsole)."""
    from ntctl import conattach
    from ntctl.machine import QuickMachine

    if send is not None and interactive:
        fail("--send and --interactive do not go together", 2)
    if as_json and (follow or interactive):
        fail("--json shows one snapshot: it does not go with --follow or --interactive", 2)
    record = _process(root, pid)
    with QuickMachine(root, record["session"]) as m:
        try:
            attached = conattach.AttachedConsole(m.csr_client(), pid, record["image"])
        except conattach.ConsoleError as exc:
            fail(_said(exc), 1, "programs with a console: start one with `ntctl start condemo.exe`")
        except nt_errors() as exc:
            nt_failure(exc)
        try:
            return _show(attached, as_json, follow, send, interactive, record)
        except conattach.ConsoleError as exc:
            fail(_said(exc))
        except nt_errors() as exc:
            nt_failure(exc)
        finally:
            attached.close()
    return 0


def _said(exc: Exception) -> str:
    from nt.status import hexstatus, status_name

    status = getattr(exc, "status", None)
    return str(exc) if status is None else f"{exc} ({hexstatus(status)} {status_name(status)})"


def _process(root: Path, pid: int) -> dict:
    """The kernel's record of PID, or a clear failure."""
    from ntctl.verbkit import quick

    with quick(root) as m:
        try:
            record = m.nt.query_process(pid)
        except nt_errors():
            record = None
    if record is None or record.get("state") == "exited":
        fail(f"no process with PID {pid}", 1, "see `ntctl ps`")
    if record.get("session") is None:
        fail(f"process {pid} ({record['image']}) runs in no session: it has no console")
    return record


def _show(
    attached: AttachedConsole,
    as_json: bool,
    follow: bool,
    send: str | None,
    interactive: bool,
    record: dict,
) -> int:
    import sys

    from ntctl import conattach

    if send is not None:
        attached.send(send)
        attached.settle()
    lines, cursor = attached.screen()
    if as_json:
        emit(
            {
                "pid": attached.pid,
                "image": record["image"],
                "session": record["session"],
                "title": attached.title(),
                "cursor_row": cursor,
                "lines": lines,
            }
        )
        return 0
    if not (follow or interactive):
        print("\n".join(lines))
        return 0
    typed = _stdin_lines() if interactive else None

    def stop() -> bool:
        if typed is None:
            return False
        while typed:
            line = typed.pop(0)
            if line is None:  # end of input: show what the last lines did, then leave
                attached.settle()
                return True
            attached.send(line)
        return False

    try:
        ended = conattach.follow(attached, lambda s: print(s, flush=True), stop=stop)
    except KeyboardInterrupt:
        return 0
    if ended == "exited":
        sys.stderr.write(f"ntctl: process {attached.pid} left its console\n")
    return 0


def _stdin_lines() -> list:
    """Lines typed on stdin, filled by a reader thread; None marks end of input."""
    import sys
    import threading

    lines: list = []

    def reader() -> None:
        for line in sys.stdin:
            lines.append(line.rstrip("\n"))
        lines.append(None)

    threading.Thread(target=reader, name="stdin", daemon=True).start()
    return lines
