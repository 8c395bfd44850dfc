"""What a chaos campaign may kill, in which phase, and the draw of each trial.

A trial is a pure function of (seed, index) and the campaign's choices (victims,
phases): the victim, the phase, the moment and the method come from SHA-256 of those
values, not from a generator's state, so trial 41 is the same trial whether it runs
alone (``ntctl chaos --seed 7 --trial 41``), first, last, or on another machine, and
campaigns split by index ranges merge into the campaign they would have been.
Standard library only: ``ntctl chaos --help`` must stay cheap.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

from nt import faulttable as ft

SEED_MAX = 2**32 - 1  # seeds are 32-bit unsigned, as numpy's and most CLIs' are
SIGKILL = "SIGKILL"
TERMINATE = "NtTerminateProcess"
# Exit statuses a terminating process is given (NtTerminateProcess's ExitStatus):
# what real crashes and killers leave behind.
TERMINATE_STATUSES = (
    0xC0000005,  # STATUS_ACCESS_VIOLATION
    0xC0000409,  # STATUS_STACK_BUFFER_OVERRUN (fail fast)
    0xC000013A,  # STATUS_CONTROL_C_EXIT
    0x00000001,  # what taskkill /F leaves
)
SIGKILL_EXIT_STATUS = 1  # the model's convention for a process ended by a signal


@dataclass(frozen=True)
class Victim:
    name: str  # what --victims takes: smss, smss@0, csrss@1, ...
    image: str  # the kernel's image name
    session: int | None
    role: str  # nt.faulttable role: which rows apply to it
    phases: tuple[str, ...]
    boot_ms: float  # the boot phase's moments: up to this long after its creation
    methods: tuple[str, ...] = (SIGKILL, TERMINATE)
    command: str = ""  # a part of the command line that picks one of several instances
    # the logon phase's moments: up to this long after its creation (a process the logon
    # makes) or after `ntctl logon` attached (one that was there before)
    logon_ms: float = 0.0

    @property
    def of_logon(self) -> bool:
        """Made by a logon (her userinit, shell and programs): an idle trial of it logs on
        first."""
        return self.role in ft.LOGON_ROLES


SHUTDOWN = ("shutdown",)
LIVE = ("boot", "idle", "logon", "shutdown")  # alive from their start until the machine stops
LOGON_MS = 200.0  # from `ntctl logon` attaching to explorer running takes ~100 ms here


VICTIMS: tuple[Victim, ...] = (
    # The kernel cannot be NtTerminateProcess'd (STATUS_INVALID_CID): a signal only.
    Victim("System", "System", None, ft.KERNEL, ("boot", "idle", "logon"), 2000.0, (SIGKILL,)),
    Victim("smss", "smss.exe", None, ft.MASTER, LIVE, 800.0),
    Victim("smss@0", "smss.exe", 0, ft.INSTANCE, ("boot",), 400.0),
    Victim("smss@1", "smss.exe", 1, ft.INSTANCE, ("boot",), 400.0),
    Victim("autochk", "autochk.exe", 0, ft.BOOT_EXECUTE, ("boot",), 100.0),
    Victim("csrss@0", "csrss.exe", 0, ft.SUBSYSTEM, LIVE, 500.0),
    Victim("csrss@1", "csrss.exe", 1, ft.SUBSYSTEM, LIVE, 500.0),
    Victim("wininit", "wininit.exe", 0, ft.INITIAL_COMMAND, LIVE, 300.0),
    Victim("winlogon", "winlogon.exe", 1, ft.INITIAL_COMMAND, LIVE, 300.0),
    Victim("services", "services.exe", 0, ft.SERVICE_CONTROLLER, LIVE, 300.0),
    # One host: the Task Scheduler's, whose FailureActions restart it (RpcSs's and
    # RpcEptMapper's hosts reboot the machine after 60 s, as on Windows).
    Victim("svchost", "svchost.exe", 0, ft.SERVICE_PROCESS, LIVE, 200.0, command="-s Schedule"),
    Victim("spoolsv", "spoolsv.exe", 0, ft.SERVICE_PROCESS, LIVE, 200.0),
    Victim("lsass", "lsass.exe", 0, ft.LSA, LIVE, 300.0),
    Victim("lsm", "lsm.exe", 0, ft.SESSION_MANAGER, LIVE, 200.0),
    # The console session's logon: LogonUI draws the notice from boot and the tiles at
    # the SAS until her logon succeeds; userinit lives from before LsaLogonUser to
    # starting the shell and the Run entries (~50 ms), the shell and condemo.exe (HKLM
    # Run) until she logs off.
    Victim("logonui", "logonui.exe", 1, ft.LOGON_UI, ("idle", "logon"), 0.0),
    Victim("userinit", "userinit.exe", 1, ft.USERINIT, ("logon",), 0.0, logon_ms=150.0),
    Victim("explorer", "explorer.exe", 1, ft.SHELL, ("idle", "logon"), 0.0, logon_ms=100.0),
    Victim("condemo", "condemo.exe", 1, ft.USER_PROGRAM, ("idle", "logon"), 0.0, logon_ms=100.0),
)
BY_NAME = {v.name: v for v in VICTIMS}
IDLE_MS = 200.0  # idle moments: up to this long after the machine is up ...
SMSS_IDLE_MS = 6000.0  # ... and for smss, across the end of its 5-second window
# shutdown moments: after the runner asks winlogon to shut down (InitiateSystemShutdownEx),
# log-uniform over winlogon's phases (~10 ms) and the kernel ending every process (~40 ms)
SHUTDOWN_MS = 100.0

# Phases and, for those whose behaviour is not in the model yet, what is missing.
PHASES = ("boot", "idle", "logon", "shutdown")
MISSING_PHASES: dict[str, str] = {}


class PlanError(ValueError):
    """A bad campaign option: the CLI reports it as a usage error."""


def select_victims(spec: str | None) -> tuple[Victim, ...]:
    """``csrss,smss@0``: a name selects that victim; an image name (csrss, csrss.exe)
    every victim of that image; None or empty selects them all."""
    if not spec:
        return VICTIMS
    chosen: list[Victim] = []
    for token in (t.strip() for t in spec.split(",")):
        if not token:
            continue
        key = token.lower().removesuffix(".exe")
        exact = [v for v in VICTIMS if v.name.lower() == key]
        found = exact or [v for v in VICTIMS if v.image.lower().removesuffix(".exe") == key]
        if not found:
            known = ", ".join(v.name for v in VICTIMS)
            raise PlanError(f"no victim named {token!r}; known victims: {known}")
        chosen += [v for v in found if v not in chosen]
    if not chosen:
        raise PlanError("--victims names no victim")
    return tuple(v for v in VICTIMS if v in chosen)  # the table's order: the draw's order


def select_phases(spec: str | None) -> tuple[str, ...]:
    if not spec:
        return PHASES
    phases: list[str] = []
    for token in (t.strip().lower() for t in spec.split(",")):
        if token in MISSING_PHASES:
            raise PlanError(f"phase {token!r} cannot be tested: {MISSING_PHASES[token]}")
        if token not in PHASES:
            raise PlanError(f"no phase {token!r}; phases: {', '.join(PHASES)}")
        if token not in phases:
            phases.append(token)
    return tuple(p for p in PHASES if p in phases)


def check_campaign(
    victims: tuple[Victim, ...], phases: tuple[str, ...], seed: int, trials: int
) -> None:
    if not 0 <= seed <= SEED_MAX:
        raise PlanError(f"--seed {seed} is out of range (0 to {SEED_MAX})")
    if trials < 1:
        raise PlanError(f"--trials {trials}: a campaign needs at least one trial")
    if not any(p in v.phases for v in victims for p in phases):
        raise PlanError(
            "none of these victims lives in these phases (smss@0, smss@1 and autochk "
            "exist only during boot, logonui and userinit only during a logon; the kernel "
            "is not killed during a shutdown)"
        )


@dataclass(frozen=True)
class Draw:
    index: int
    victim: str
    phase: str
    # after the victim's creation (boot), the machine being up (idle; after a logon for
    # the logon's processes), the shutdown request, or LogonUI's or the victim's creation
    # (logon)
    moment_ms: float
    method: str
    status: int | None  # NtTerminateProcess's exit status

    def public(self) -> dict:
        return asdict(self)


def _uniforms(seed: int, index: int, victims: tuple[Victim, ...], phases: tuple[str, ...]):
    """Numbers in [0, 1) that depend only on the arguments (SHA-256, 53 bits each)."""
    names = ",".join(v.name for v in victims) + "|" + ",".join(phases)
    counter = 0
    while True:
        digest = hashlib.sha256(f"ntctl-chaos/1 {seed} {index} {names} {counter}".encode()).digest()
        for i in range(0, 32, 8):
            yield (int.from_bytes(digest[i : i + 8], "big") >> 11) / 2**53
        counter += 1


def draw(seed: int, index: int, victims: tuple[Victim, ...], phases: tuple[str, ...]) -> Draw:
    """Trial ``index`` of campaign ``seed``: victim, phase, moment and method."""
    u = _uniforms(seed, index, victims, phases)
    pairs = [(v, p) for v in victims for p in phases if p in v.phases]
    victim, phase = pairs[min(int(next(u) * len(pairs)), len(pairs) - 1)]
    if phase == "boot":
        # Log-uniform from 0.1 ms: the short windows (csrss connected but not yet
        # critical lasts ~20 ms) get as many trials per decade as the long ones.
        moment = 0.1 * (victim.boot_ms / 0.1) ** next(u)
    elif phase == "shutdown":  # the same reason: winlogon's phases last a few ms
        moment = 0.1 * (SHUTDOWN_MS / 0.1) ** next(u)
    elif phase == "logon":  # and again: LsaLogonUser is ~40 ms of the logon's ~130
        moment = 0.1 * ((victim.logon_ms or LOGON_MS) / 0.1) ** next(u)
    else:
        moment = next(u) * (SMSS_IDLE_MS if victim.role == ft.MASTER else IDLE_MS)
    method = victim.methods[min(int(next(u) * len(victim.methods)), len(victim.methods) - 1)]
    status = None
    if method == TERMINATE:
        status = TERMINATE_STATUSES[int(next(u) * len(TERMINATE_STATUSES))]
    return Draw(index, victim.name, phase, round(moment, 2), method, status)
