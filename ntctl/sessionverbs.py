"""The session and shutdown verbs' registrations (their logic: ntctl/sessions.py).

ntctl session [--json]                        query session
ntctl session new [--user U] [--json]         a session made on demand
ntctl session disconnect|reconnect|logoff N   tsdiscon / tscon / logoff
ntctl shutdown [-r] [-t S] [-c TEXT] [-f] | -a
"""

from __future__ import annotations

from pathlib import Path

from ntctl.cli import Arg, Opt, fail
from ntctl.verbkit import JSON, ROOT, app, emit

SESSION_ACTIONS = ("list", "new", "disconnect", "reconnect", "logoff")
MAX_SHUTDOWN_TIMEOUT = 315360000  # shutdown /t's bound (10 years)


def _machine(root: Path):  # noqa: ANN202 - a QuickMachine
    """A one-shot attach: the session verbs make a call or two to LSM and serve nothing."""
    from ntctl.machine import QuickMachine

    return QuickMachine(root, 1)


@app.verb(
    "session",
    Arg("action", optional=True, default="list", help="new | disconnect | reconnect | logoff"),
    Arg("session_id", type=int, optional=True, help="N, for disconnect/reconnect/logoff"),
    ROOT,
    JSON,
    Opt("--user", default="", help="session new: who will log on to it"),
)
def session(action: str, session_id: int | None, root: Path, as_json: bool, user: str) -> None:
    """The sessions, like query session ('>' = this session); new, disconnect, reconnect, logoff N."""
    from ntctl import sessions

    if action not in SESSION_ACTIONS:
        fail(f"session: unknown action {action!r}: use one of {', '.join(SESSION_ACTIONS)}", 2)
    if action in ("disconnect", "reconnect", "logoff") and session_id is None:
        fail(f"session {action}: give the session id (see `ntctl session`)", 2)
    with _machine(root) as m:
        try:
            if action == "list":
                rows = sessions.query_sessions(m)
            elif action == "new":
                record = sessions.new_session(m, user)
            else:
                result = getattr(sessions, action)(m, session_id)
        except sessions.VerbError as exc:
            fail(str(exc))
    if action == "list":
        emit(rows) if as_json else print(sessions.render_sessions(rows))
    elif action == "new":
        if as_json:
            emit(record)
        else:
            print(
                f"Session {record['session_id']} ({record['name']}) created: csrss pid "
                f"{record['csrss_pid']}, winlogon pid {record['winlogon_pid']}."
            )
    elif action == "logoff":
        print(f"Session {session_id} " + ("closed." if result else "logged off."))
    else:
        print(f"Session {session_id}: {action} done.")


@app.verb(
    "shutdown",
    ROOT,
    Opt("-r", "--reboot", flag=True, help="restart after"),
    Opt("-t", dest="timeout", type=int, default=0, help="seconds before the shutdown"),
    Opt("-c", dest="comment", default="", help="why (up to 512 characters)"),
    Opt("-a", dest="abort", flag=True, help="abort a pending shutdown"),
    Opt("-f", dest="force", flag=True, help="close applications without asking"),
)
def shutdown(
    root: Path, reboot: bool, timeout: int, comment: str, abort: bool, force: bool
) -> None:
    """Shut down or restart the Windows way (winlogon, ExitWindowsEx, SCM, NtShutdownSystem)."""
    from ntctl import sessions

    if not 0 <= timeout <= MAX_SHUTDOWN_TIMEOUT or len(comment) > 512:
        fail("shutdown: -t is 0..315360000 seconds, -c at most 512 characters", 2)
    from ntctl.machine import Machine

    # A whole runtime: winlogon ends while the call is in flight, and only the runtime's
    # exit events fail the call at once (a one-shot attach would wait out its timeout).
    with Machine(root, 1) as m:
        kernel_pid = m.state.kernel_pid
        try:
            if abort:
                sessions.abort_shutdown(m)
                print("The pending shutdown was aborted.")
                return
            went = sessions.initiate_shutdown(m, reboot, timeout, comment, force)
        except sessions.VerbError as exc:
            fail(str(exc))
    if not went:
        what = "restart" if reboot else "shut down"
        print(f"The machine will {what} in {timeout} s (`ntctl shutdown -a` aborts).")
        return
    if not sessions.wait_kernel_gone(kernel_pid):
        fail(
            f"the kernel (pid {kernel_pid}) is still running {sessions.KERNEL_EXIT_WAIT:.0f} s "
            "after the shutdown began; see `ntctl logs --event 'shutdown.*'`"
        )
    print("The machine is restarting." if reboot else "The machine was shut down.")
