"""What killing a process does: the README's "Making it crash" table, as data.

One table for two readers. The README's rows are generated from it (``python -m
nt.faulttable`` prints them; a test keeps the README in step), and ``ntctl chaos``'s
oracle predicts each trial's outcome from the same rows' rules, so the documented
behaviour and the checked behaviour cannot drift apart. Codes and P1 strings come from
nt/bugcodes.py and smss's wait-slot names (reliability-security.md §1.2, nt-spec §1.9).

A rule says which victim it is about (its *role*), the state that victim was in when it
died (conditions on :class:`VictimState`, read from the kernel's records of that moment)
and what follows. Rules are tried by precedence, the first match wins: the order in
which the kernel and smss make their own checks (NtTerminateProcess of a
critical process bugchecks before anything is killed; the kernel looks at smss's 5-second
window before its critical flag).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from nt.bugcodes import BugCode

# Victim roles: what a process is to the machine, whatever its image is called.
KERNEL = "kernel"  # System
MASTER = "master"  # the master smss (no session)
INSTANCE = "instance"  # an smss copy making session 0 or 1
BOOT_EXECUTE = "boot_execute"  # autochk, run by smss from BootExecute
SUBSYSTEM = "subsystem"  # csrss of a session
INITIAL_COMMAND = "initial_command"  # wininit (session 0), winlogon (session 1)
SERVICE_CONTROLLER = "service_controller"  # services.exe: critical once it starts
SERVICE_PROCESS = "service_process"  # a svchost host or an own-process service (spoolsv)
LSA = "lsa"  # lsass.exe: wininit restarts the machine when it dies
SESSION_MANAGER = "session_manager"  # lsm.exe, the Local Session Manager
LOGON_UI = "logon_ui"  # LogonUI.exe, started by winlogon at the SAS
USERINIT = "userinit"  # the user's userinit.exe (created suspended before LsaLogonUser)
SHELL = "shell"  # the user's explorer.exe
USER_PROGRAM = "user_program"  # a program of hers (condemo.exe, from HKLM ...\Run)
ROLES = (
    KERNEL,
    MASTER,
    INSTANCE,
    BOOT_EXECUTE,
    SUBSYSTEM,
    INITIAL_COMMAND,
    SERVICE_CONTROLLER,
    SERVICE_PROCESS,
    LSA,
    SESSION_MANAGER,
    LOGON_UI,
    USERINIT,
    SHELL,
    USER_PROGRAM,
)
LOGON_ROLES = (USERINIT, SHELL, USER_PROGRAM)  # the processes a logon makes

# The state of a victim when it died: each is True, False, or None when the records
# cannot order the event and the death (the oracle then accepts either outcome).
STATE_KEYS = (
    "terminated",  # killed by NtTerminateProcess (else a signal)
    "critical",  # the kernel's critical flag at the exit (proc.exit)
    "in_window",  # smss: its exit came within 5 s of its creation
    "resumed",  # the kernel had resumed it (proc.resume)
    "connected",  # csrss: smss had accepted its connection (smss.subsystem_connected)
    "session_ready",  # an instance: SbCreateSession for its initial command succeeded
    "shutdown",  # a Windows shutdown was asked for in this boot (winlogon's shutdown.initiated)
    "stopping",  # the kernel was ending every process (NtShutdownSystem: shutdown.begin)
    "ready",  # LogonUI had made its port (its logonui.ready)
    "submitted",  # LogonUI had passed the credentials on (its logonui.submit)
    "lsa_logon",  # LsaLogonUser was in flight (after logonui.submit, before winlogon's
    # logon.success/logon.failure, and winlogon had its LSA connection)
)

CRITICAL = -1  # the profile's critical-process bugcheck (0xEF, or 0xF4 on win7)
CALLER = "the caller"  # detected_by: the process that called NtTerminateProcess
PROFILE_CRITICAL = {
    "win10": BugCode.CRITICAL_PROCESS_DIED,
    "win7": BugCode.CRITICAL_OBJECT_TERMINATION,
}


@dataclass(frozen=True)
class Outcome:
    """What follows a death. ``code`` None is no bugcheck; CRITICAL is the profile's."""

    code: int | None
    p1_text: str = ""  # 0xC000021A's P1 string (the process or step smss names)
    status_param: int | None = None  # which parameter (0-based) carries the exit status
    detected_by: str = "System"  # who raises it: the kernel or smss.exe
    machine_stops: bool = True  # False: the machine stays up
    next_boot_events: tuple[int, ...] = ()  # System events the next boot logs
    # What must follow a death that leaves the machine up: log events (by name) logged
    # after the kill, and what `ntctl logon`, when one was under way, ends with:
    # "fails" (exit 1, with ``logon_status`` in its message when given) or "succeeds".
    follows: tuple[str, ...] = ()
    logon: str = ""
    logon_status: str = ""

    def resolve(self, profile: str) -> Outcome:
        if self.code != CRITICAL:
            return self
        return Outcome(
            PROFILE_CRITICAL[profile],
            detected_by=self.detected_by,
            next_boot_events=self.next_boot_events,
        )

    def label(self) -> str:
        """Short text for the matrix: ``0xEF``, ``0xC000021A "Windows SubSystem"``."""
        if self.code is None:
            return "no bugcheck, machine gone" if self.machine_stops else "no bugcheck"
        if self.code == CRITICAL:
            return "critical-process bugcheck"
        return f"0x{self.code:X}" + (f' "{self.p1_text}"' if self.p1_text else "")


@dataclass(frozen=True)
class Rule:
    roles: tuple[str, ...]
    when: dict[str, bool] = field(default_factory=dict)
    outcome: Outcome = Outcome(None, machine_stops=False)
    precedence: int = 9  # lower is tried first: the order of the kernel's own checks

    def matches(self, role: str, state: dict[str, bool]) -> bool:
        return role in self.roles and all(state[k] == v for k, v in self.when.items())


@dataclass(frozen=True)
class Row:
    """One row of the README table; ``rule`` is None for behaviour the chaos oracle does not
    judge (a configuration fault, a window only a fault hook opens, a row another row's
    rule already covers)."""

    what: str
    result: str
    rule: Rule | None = None


BUGCHECK_NEXT = (1001, 41)  # BugCheck and Kernel-Power, logged by the next boot
ALL = (MASTER, INSTANCE, BOOT_EXECUTE, SUBSYSTEM, INITIAL_COMMAND, SERVICE_CONTROLLER)
# Everything alive when a shutdown begins (the kernel's own death is not judged there).
AT_SHUTDOWN = ALL + (SERVICE_PROCESS, LSA, SESSION_MANAGER)
STAYS_UP = Outcome(None, machine_stops=False)
# lsass's death: wininit's critical-process handling starts the 60-s restart countdown
# (a trial checks that it started, wininit.critical_process_died, not its end).
LSASS_DIED = Outcome(None, machine_stops=False, follows=("wininit.critical_process_died",))
SHUTDOWN_GOES_ON = Outcome(None, machine_stops=True)
_021A = BugCode.STATUS_SYSTEM_PROCESS_TERMINATED


def _by_smss(p1_text: str) -> Outcome:
    return Outcome(_021A, p1_text, 1, "smss.exe", next_boot_events=BUGCHECK_NEXT)


ROWS: tuple[Row, ...] = (
    Row(
        "`kill -9` csrss (either session), wininit, winlogon, or smss after its first 5 s",
        "`0x000000EF CRITICAL_PROCESS_DIED`, P1 = the process object (profile `win7`: "
        "`0xF4 CRITICAL_OBJECT_TERMINATION`, P1 = 3, P3 = image name)",
        Rule(ALL, {"critical": True}, Outcome(CRITICAL, next_boot_events=BUGCHECK_NEXT)),
    ),
    Row(
        "smss exits within 5 s of its creation",
        "`0x71 SESSION5_INITIALIZATION_FAILED` (P1 = its exit status)",
        Rule(
            (MASTER,),
            {"in_window": True},
            Outcome(
                BugCode.SESSION5_INITIALIZATION_FAILED,
                status_param=0,
                next_boot_events=BUGCHECK_NEXT,
            ),
            precedence=1,
        ),
    ),
    Row(
        "csrss dies after connecting to smss, before it became critical",
        '`0xC000021A`, "Windows SubSystem", P2 = its exit status — raised by smss',
        Rule((SUBSYSTEM,), {"critical": False, "connected": True}, _by_smss("Windows SubSystem")),
    ),
    Row(
        "csrss dies before connecting to smss",
        '`0xC000021A`, "Session Manager Initialization", P2 = its exit status — raised by '
        "its session's smss instance (ReactOS hangs for ever in session 0)",
        Rule(
            (SUBSYSTEM,),
            {"critical": False, "connected": False},
            _by_smss("Session Manager Initialization"),
        ),
    ),
    Row(
        "the initial command dies before it became critical",
        '`0xC000021A`, "Windows Logon Process"',
        Rule(
            (INITIAL_COMMAND,),
            {"critical": False, "resumed": True},
            _by_smss("Windows Logon Process"),
        ),
    ),
    Row(
        "the initial command killed while still suspended (after smss created it, before "
        "csrss resumed it)",
        '`0xC000021A`, "Windows Logon Process", P2 = its exit status; the dump names it '
        "(pid, image, exit status) — raised by smss at once",
        Rule(
            (INITIAL_COMMAND,),
            {"critical": False, "resumed": False},
            _by_smss("Windows Logon Process"),
        ),
    ),
    Row(
        "a session smss instance dies before its session is ready (session 0 or the "
        "console session)",
        '`0xC000021A`, "Session Manager Initialization", P2 = its exit status; the dump '
        "names the instance — raised by the master smss at once",
        Rule((INSTANCE,), {"session_ready": False}, _by_smss("Session Manager Initialization")),
    ),
    Row(
        "a session smss instance killed once its session is ready",
        "no bugcheck: the instance's work is done (it was about to exit)",
        Rule((INSTANCE,), {"session_ready": True}),
    ),
    Row(
        "a session smss instance made on demand (`SmStartCsr`) dies before its session is ready",
        "no bugcheck: the request fails (the instance's status, or `STATUS_UNSUCCESSFUL`), "
        "what it started in the session is stopped, the machine stays up",
    ),
    Row(
        "`autochk` (BootExecute) killed",
        "no bugcheck: smss logs its status (`smss.boot_execute`) and carries on, as it "
        "does for any BootExecute failure",
        Rule((BOOT_EXECUTE,)),
    ),
    Row(
        "a process is being created when a bugcheck comes",
        "it is stopped with the rest: creation is closed once KeBugCheckEx stops the machine",
    ),
    Row(
        "a `ServerDll=` on csrss's command line does not exist",
        "the hard error has no port yet, so the kernel stops with its status: "
        '`0xC0000135 STATUS_DLL_NOT_FOUND` (P1 = the DLL, P2 = "Default Load Path")',
    ),
    Row(
        "`ntctl kill` on a critical process",
        "the bugcheck is raised inside NtTerminateProcess, before the kill; the dump names "
        "the caller as the one who detected it",
        Rule(
            ALL,
            {"terminated": True, "critical": True},
            Outcome(CRITICAL, detected_by=CALLER, next_boot_events=BUGCHECK_NEXT),
            precedence=0,
        ),
    ),
    Row(
        "`kill -9` services.exe",
        "`0xEF CRITICAL_PROCESS_DIED` (services.exe marks itself critical, Windows 8+)",
        # covered by the first row's rule (SERVICE_CONTROLLER is one of ALL)
    ),
    Row(
        "services.exe killed in its first moments, before it became critical",
        "no bugcheck: nothing watches it before it is critical; the machine stays up "
        "without its services",
        Rule((SERVICE_CONTROLLER,), {"critical": False}, STAYS_UP),
    ),
    Row(
        "`kill -9` a service process (svchost or own-process)",
        "no bugcheck, the machine stays up: every service in it goes STOPPED with "
        "ERROR_PROCESS_ABORTED (1067) at once; System event 7034, or 7031 with the "
        "corrective action, and `FailureActions` apply (restart after the delay, run a "
        "command, reboot)",
        Rule((SERVICE_PROCESS,), outcome=STAYS_UP),
    ),
    Row(
        "`kill -9` lsass",
        "no bugcheck: wininit logs event 1015, csrss of the console session shows the hard "
        'error ("The Local Security Authority Process system process terminated '
        'unexpectedly...", event 26), and "The system is shutting down ... lsass.exe '
        "terminated unexpectedly with status code ... The system will now shut down and "
        'restart" counts down 60 s (scaled), then the machine restarts in order',
        Rule((LSA,), outcome=LSASS_DIED),
    ),
    Row(
        "`kill -9` lsm.exe",
        "no bugcheck, the machine stays up: nothing restarts it; `ntctl session` and new "
        "sessions fail until the next boot",
        Rule((SESSION_MANAGER,), outcome=STAYS_UP),
    ),
    Row(
        "any process killed during `ntctl shutdown` once the kernel ends every process "
        "(NtShutdownSystem)",
        "no bugcheck: the shutdown completes (critical processes are no longer checked)",
        Rule(AT_SHUTDOWN, {"stopping": True}, SHUTDOWN_GOES_ON, precedence=-2),
    ),
    Row(
        "a process that is not critical killed during `ntctl shutdown` (lsass, lsm, a "
        "service process, ...)",
        "no bugcheck: the shutdown goes on and the machine stops",
        Rule(AT_SHUTDOWN, {"shutdown": True, "critical": False}, SHUTDOWN_GOES_ON, precedence=-1),
    ),
    Row(
        "a critical process killed during `ntctl shutdown`, before NtShutdownSystem (while "
        "winlogon ends the applications and the services)",
        "`0xEF CRITICAL_PROCESS_DIED`, as at any other time",
    ),
    Row(
        "a service never connects / stalls in START_PENDING / ignores STOP",
        '7009 + 7000 (1053) after `ServicesPipeTimeout`; 7022 "hung on starting"; ended '
        "after `WaitToKillServiceTimeout`",
    ),
    Row(
        "LogonUI.exe killed before winlogon resumed it (it is created suspended)",
        "no bugcheck: winlogon's NtResumeThread fails (`winlogon.logonui_failed`); a SAS "
        "waiting for it gets that status, the next SAS starts one",
        Rule(
            (LOGON_UI,),
            {"resumed": False},
            Outcome(None, machine_stops=False, follows=("winlogon.logonui_failed",)),
            precedence=8,  # before the rows below, which look at its readiness and submit
        ),
    ),
    Row(
        "`kill -9` LogonUI.exe before it was ready (its port not yet created)",
        "no bugcheck: a SAS waiting for it gets its exit status; no new LogonUI until the "
        "next SAS (no restart loop)",
        Rule(
            (LOGON_UI,),
            {"ready": False, "submitted": False},
            Outcome(None, machine_stops=False, follows=("winlogon.logonui_exit",)),
        ),
    ),
    Row(
        "`kill -9` LogonUI.exe at the notice or on the tiles (before it passed the credentials on)",
        'no bugcheck: winlogon says "Press Ctrl+Alt+Del" again with a new LogonUI '
        "(`winlogon.logonui_restart`); a logon on those tiles fails with "
        "STATUS_PORT_DISCONNECTED",
        Rule(
            (LOGON_UI,),
            {"ready": True, "submitted": False},
            Outcome(None, machine_stops=False, follows=("winlogon.logonui_restart",)),
        ),
    ),
    Row(
        "`kill -9` LogonUI.exe after it passed the credentials on (winlogon is logging her "
        "on), or once dismissed by her logon",
        "no bugcheck: winlogon finishes the logon without it (`winlogon.logonui_exit`), "
        "which completes or fails with its own status; `ntctl logon` may lose LogonUI's "
        "answer (STATUS_PORT_DISCONNECTED)",
        Rule(
            (LOGON_UI,),
            {"submitted": True},
            Outcome(None, machine_stops=False, follows=("winlogon.logonui_exit",)),
        ),
    ),
    Row(
        "the user's userinit.exe killed while still suspended (winlogon creates it before "
        "LsaLogonUser and resumes it once she is logged on)",
        'no bugcheck: the logon fails (`logon.failure`), winlogon says "Press '
        'Ctrl+Alt+Del" again (`logon.ready`)',
        Rule(
            (USERINIT,),
            {"resumed": False},
            Outcome(
                None,
                machine_stops=False,
                follows=("logon.failure", "logon.ready"),
                logon="fails",
            ),
        ),
    ),
    Row(
        "`kill -9` the user's userinit.exe once it runs",
        "no bugcheck: she stays logged on (`winlogon.userinit_exit`); what it had not "
        "started yet (the shell, then Run entries) is not started",
        Rule(
            (USERINIT,),
            {"resumed": True},
            Outcome(
                None, machine_stops=False, follows=("winlogon.userinit_exit",), logon="succeeds"
            ),
        ),
    ),
    Row(
        "`kill -9` the user's explorer.exe",
        "no bugcheck; the shell is started again with her token when "
        "`Winlogon\\AutoRestartShell` is 1 (the default: `winlogon.shell_restart`)",
        Rule(
            (SHELL,),
            outcome=Outcome(None, machine_stops=False, follows=("winlogon.shell_restart",)),
        ),
    ),
    Row(
        "`kill -9` a program of hers (condemo.exe, started from `HKLM\\...\\Run`)",
        "no bugcheck: nothing restarts it, her session goes on",
        Rule((USER_PROGRAM,), outcome=STAYS_UP),
    ),
    Row(
        "`kill -9` lsass while LsaLogonUser runs for `ntctl logon`",
        "the logon fails at once with STATUS_PORT_DISCONNECTED (LogonUI's text); then the "
        "lsass row above",
        Rule(
            (LSA,),
            {"lsa_logon": True},
            Outcome(
                None,
                machine_stops=False,
                follows=("wininit.critical_process_died",),
                logon="fails",
                logon_status="STATUS_PORT_DISCONNECTED",
            ),
            precedence=8,  # before the lsass row's rule, which matches any state
        ),
    ),
    Row(
        "`kill -9` the kernel",
        "every process is gone within 1 s (`PR_SET_PDEATHSIG`), one being forked at that "
        "moment included; the next boot logs events 6008 and 41, however early the kernel "
        "died (`bootstat.dat` is its first write)",
        Rule((KERNEL,), outcome=Outcome(None, detected_by="", next_boot_events=(6008, 41))),
    ),
)

# In the order the kernel and smss check (stable: rows of equal precedence keep theirs).
RULES: tuple[Rule, ...] = tuple(
    sorted((r.rule for r in ROWS if r.rule is not None), key=lambda rule: rule.precedence)
)


def state_keys(role: str) -> tuple[str, ...]:
    """The parts of a victim's state that the rules for ``role`` look at."""
    used = {k for rule in RULES if role in rule.roles for k in rule.when}
    return tuple(k for k in STATE_KEYS if k in used)


class NoRule(LookupError):
    """The table says nothing about this victim in this state: a gap in the table."""


def predict(role: str, state: dict[str, bool | None], profile: str = "win10") -> list[Outcome]:
    """The outcomes the table allows for ``role`` dying in ``state``. A key that is None
    (the records cannot tell) is tried both ways, a missing one is False; each
    completion must match a rule."""
    unknown = [k for k in STATE_KEYS if k in state and state[k] is None]
    found: list[Outcome] = []
    for values in itertools.product((False, True), repeat=len(unknown)):
        complete = {k: bool(state.get(k)) for k in STATE_KEYS} | dict(
            zip(unknown, values, strict=True)
        )
        rule = next((r for r in RULES if r.matches(role, complete)), None)
        if rule is None:
            raise NoRule(f"no row of the fault table for {role} in state {complete}")
        outcome = rule.outcome.resolve(profile)
        if outcome not in found:
            found.append(outcome)
    return found


# -- the README's table ----------------------------------------------------------------
HEADER = "| what you do | what Windows does, and so does the model |\n|---|---|"


def readme_table() -> str:
    """The table as the README shows it (between the faulttable markers)."""
    lines = [HEADER] + [f"| {r.what} | {r.result} |" for r in ROWS]
    return "\n".join(lines)


BEGIN = "<!-- fault table: generated from nt/faulttable.py (python -m nt.faulttable --write) -->"
END = "<!-- end of the fault table -->"


def replace_in(readme: str) -> str:
    """``readme`` with the text between the markers replaced by :func:`readme_table`."""
    head, sep, rest = readme.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise ValueError("the README has no fault-table markers")
    return f"{head}{BEGIN}\n{readme_table()}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    import sys
    from pathlib import Path

    args = sys.argv[1:] if argv is None else argv
    if "--write" in args:
        readme = Path(__file__).resolve().parents[1] / "README.md"
        readme.write_text(replace_in(readme.read_text()))
    else:
        print(readme_table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
