"""The chaos oracle: the state a victim was in when it died, read from the machine's own
records, and whether what followed is what nt/faulttable.py's rows say.

The state comes from the kernel's records (proc.create, proc.resume, proc.exit with the
critical flag it had at the exit, proc.terminate, shutdown.begin), smss's
(subsystem_connected, sb_create_session), winlogon's (shutdown.initiated, logon.success,
logon.failure) and LogonUI's (logonui.submit), never from the runner's guesses. The runner brackets the death in
time: it was not before ``t_kill`` (taken just before the kill) and not after the
kernel's proc.exit. An event logged inside that bracket (give or take ``SLACK``, for the
thread that logs it) cannot be ordered against the death, so that state is None and
the table's outcomes for both values are accepted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nt import faulttable as ft
from nt.bugcodes import BugCode
from nt.status import NtStatus
from ntctl.chaosplan import SIGKILL_EXIT_STATUS, TERMINATE, Victim

CALLER_IMAGE = "ntctl.exe"  # what the runner attaches as to call NtTerminateProcess
SLACK = 0.02  # s: a logged state change may trail the change itself by this much
SMSS_WINDOW = 5.0  # s: the kernel's watch on smss (ExpLoadInitialProcess)
WINDOW_SLACK = 0.05  # s: proc.create/proc.exit stamps bracket the kernel's own clock reads


def epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def _status(value: Any) -> int | None:
    if value is None:
        return None
    return int(value, 16) if isinstance(value, str) else int(value)


@dataclass
class Records:
    """A boot's events, indexed for the questions the oracle asks."""

    events: list[dict]

    def first(self, event: str, **fields: Any) -> dict | None:
        for e in self.events:
            if e.get("event") == event and all(e.get(k) == v for k, v in fields.items()):
                return e
        return None

    def all(self, event: str, **fields: Any) -> list[dict]:
        return [
            e
            for e in self.events
            if e.get("event") == event and all(e.get(k) == v for k, v in fields.items())
        ]


def is_victim(event: Mapping[str, Any], victim: Victim) -> bool:
    """Is this proc.create the victim's: its image, session and (for one of several
    instances, a svchost) a part of its command line."""
    return (
        event.get("event") == "proc.create"
        and event.get("child_image") == victim.image
        and event.get("child_session") == victim.session
        and victim.command in str(event.get("command_line", ""))
    )


def find_victim(records: Records, victim: Victim) -> dict | None:
    """The kernel's proc.create of ``victim`` (the first that matches)."""
    for e in records.all("proc.create", image="System"):
        if is_victim(e, victim):
            return e
    return None


def _before(ts: str | None, t_kill: float, t_exit: float) -> bool | None:
    """Did an event logged at ``ts`` happen before the death in [t_kill, t_exit]?"""
    if ts is None:
        return False
    t = epoch(ts)
    if t < t_kill - SLACK:
        return True
    if t > t_exit + SLACK:
        return False
    return None


@dataclass
class Death:
    """How the victim ended, by the kernel's record."""

    pid: int
    created: float
    exited: float | None
    status: int | None
    signal: int | None
    critical: bool | None


def death_of(records: Records, victim: Victim, pid: int) -> Death:
    created = records.first("proc.create", image="System", child_pid=pid)
    exit_ = records.first("proc.exit", image="System", child_pid=pid)
    if victim.image == "System":
        start = records.first("boot.start", image="System")
        created = start
    return Death(
        pid,
        epoch(created["ts"]) if created else 0.0,
        epoch(exit_["ts"]) if exit_ else None,
        _status(exit_.get("status")) if exit_ else None,
        exit_.get("signal") if exit_ else None,
        exit_.get("critical") if exit_ else None,
    )


def victim_state(
    records: Records, victim: Victim, death: Death, t_kill: float, method: str
) -> dict[str, bool | None]:
    """The victim's state at its death, as the kernel and smss recorded it."""
    t_exit = death.exited if death.exited is not None else t_kill
    state: dict[str, bool | None] = dict.fromkeys(ft.STATE_KEYS, False)
    state["terminated"] = method == TERMINATE
    state["critical"] = bool(death.critical)
    lifetime = t_exit - death.created
    if abs(lifetime - SMSS_WINDOW) <= WINDOW_SLACK:
        state["in_window"] = None
    else:
        state["in_window"] = lifetime < SMSS_WINDOW
    resume = records.first("proc.resume", image="System", child_pid=death.pid)
    state["resumed"] = _before(resume["ts"] if resume else None, t_kill, t_exit)
    connected = records.first("smss.subsystem_connected", subsystem_pid=death.pid)
    state["connected"] = _before(connected["ts"] if connected else None, t_kill, t_exit)
    ready = next(
        (
            e
            for e in records.all("smss.sb_create_session", target_session=victim.session)
            if _status(e.get("status")) == 0
            and e.get("child_image") in ("wininit.exe", "winlogon.exe")
        ),
        None,
    )
    state["session_ready"] = _before(ready["ts"] if ready else None, t_kill, t_exit)
    # The Windows shutdown: winlogon began it (a request in flight at the death goes on
    # after it, so any time in this boot counts), then the kernel ended every process.
    state["shutdown"] = records.first("shutdown.initiated", image="winlogon.exe") is not None
    stopping = records.first("shutdown.begin", image="System")
    state["stopping"] = _before(stopping["ts"] if stopping else None, t_kill, t_exit)
    # The logon: LogonUI passed the credentials on (its own record), then winlogon called
    # LsaLogonUser until its logon.success or logon.failure.
    submit = records.first("logonui.submit", image="logonui.exe")
    shown = records.first("logonui.ready", image="logonui.exe", pid=death.pid)
    state["ready"] = _before(shown["ts"] if shown else None, t_kill, t_exit)
    mine = records.first("logonui.submit", image="logonui.exe", pid=death.pid)
    state["submitted"] = _before(mine["ts"] if mine else None, t_kill, t_exit)
    state["lsa_logon"] = _in_flight(records, submit, t_kill, t_exit)
    # Only what the table's rows for this victim look at: an unordered event that no
    # row depends on is no boundary.
    return {k: state[k] for k in ft.state_keys(victim.role)}


def _in_flight(records: Records, submit: dict | None, t_kill: float, t_exit: float) -> bool | None:
    """Was LsaLogonUser in flight at the death: after the submit, before winlogon's
    answer? A logon that failed connecting to the LSA never made the call."""
    ends = [
        e
        for e in records.events
        if e.get("event") in ("logon.success", "logon.failure") and e.get("image") == "winlogon.exe"
    ]
    end = ends[0] if ends else None
    if end is not None and end.get("step") == "lsa_connect":
        return False
    began = _before(submit["ts"] if submit else None, t_kill, t_exit)
    ended = _before(end["ts"] if end else None, t_kill, t_exit)
    if ended is None and end is not None:
        # winlogon's answer follows the death at once, so it falls inside the kill's
        # bracket: its status says on which side the call ended (lsass's reply, or
        # the port disconnected under the call)
        ended = not (
            end.get("event") == "logon.failure"
            and end.get("step") == "lsa_logon"
            and _status(end.get("status")) == NtStatus.STATUS_PORT_DISCONNECTED
        )
    if began is False or ended is True:
        return False
    if began is None or ended is None:
        return None
    return True


def logged_after(records: Records, t_kill: float) -> set[str]:
    """The names of the events logged after the kill (what follows a death)."""
    return {
        str(e.get("event"))
        for e in records.events
        if e.get("ts") and epoch(e["ts"]) >= t_kill - SLACK
    }


def expected_follows(
    records: Records, victim: Victim, pid: int, t_kill: float, method: str, profile: str
) -> list[set[str]] | None:
    """What the table says must be logged after this death: one set per outcome it
    allows that leaves the machine up (one of them must come); None while the kernel
    has not logged the exit. The runner waits for one before it shuts a machine down."""
    death = death_of(records, victim, pid)
    if death.exited is None and victim.image != "System":
        return None
    state = victim_state(records, victim, death, t_kill, method)
    try:
        predicted = ft.predict(victim.role, state, profile)
    except ft.NoRule:
        return set()
    return [set(o.follows) for o in predicted if o.code is None]


@dataclass
class Observed:
    """What the machine did: its bugchecks, dumps, and whether it stopped on its own."""

    bugchecks: int
    dumps: list[Mapping[str, Any]]
    unreadable: list[str] = field(default_factory=list)
    stopped_by_itself: bool = False
    after: set[str] = field(default_factory=set)  # events logged after the kill
    logon_exit: int | None = None  # `ntctl logon`'s exit status, when one ran
    logon_text: str = ""  # and its message (stderr: no secret is ever in it)

    def label(self) -> str:
        if not self.dumps:
            return "no bugcheck, machine gone" if self.stopped_by_itself else "no bugcheck"
        d = self.dumps[0]
        p1 = (d.get("decoded") or {}).get("p1_text")
        code = int(d.get("bugcheck_code") or 0)
        text = f"0x{code:X}" + (
            f' "{p1}"' if p1 and code == BugCode.STATUS_SYSTEM_PROCESS_TERMINATED else ""
        )
        return text if len(self.dumps) == 1 else f"{text} (+{len(self.dumps) - 1} dumps)"


def differences(outcome: ft.Outcome, obs: Observed, death: Death) -> list[str]:
    """How the observation departs from one predicted outcome ([] when it agrees)."""
    out: list[str] = []
    if outcome.code is None:
        if obs.bugchecks or obs.dumps:
            out.append(f"expected no bugcheck, got {obs.label()}")
        if obs.stopped_by_itself != outcome.machine_stops:
            out.append(
                "the machine stopped by itself"
                if obs.stopped_by_itself
                else "the machine kept running"
            )
        if outcome.machine_stops:
            return out
        out += [
            f"no {name} was logged after the kill"
            for name in outcome.follows
            if name not in obs.after
        ]
        if outcome.logon and obs.logon_exit is not None:
            if outcome.logon == "succeeds" and obs.logon_exit != 0:
                out.append(f"ntctl logon failed: {obs.logon_text}")
            elif outcome.logon == "fails" and obs.logon_exit == 0:
                out.append("ntctl logon succeeded")
            elif outcome.logon == "fails" and outcome.logon_status not in obs.logon_text:
                out.append(f"ntctl logon failed without {outcome.logon_status}: {obs.logon_text}")
        return out
    if obs.bugchecks != 1:
        out.append(f"{obs.bugchecks} bugcheck events (expected exactly one)")
    if len(obs.dumps) != 1:
        out.append(f"{len(obs.dumps)} dumps (expected exactly one)")
    if not obs.dumps:
        return out
    d = obs.dumps[0]
    code = int(d.get("bugcheck_code") or 0)
    if code != outcome.code:
        out.append(f"bugcheck 0x{code:X}, expected 0x{outcome.code:X}")
        return out
    p1 = (d.get("decoded") or {}).get("p1_text")
    if outcome.p1_text and p1 != outcome.p1_text:
        out.append(f"P1 {p1!r}, expected {outcome.p1_text!r}")
    culprit = (d.get("faulting_process") or {}).get("pid")
    if culprit != death.pid:
        out.append(f"the dump blames pid {culprit}, the victim was {death.pid}")
    by = (d.get("detected_by") or {}).get("image")
    expected_by = CALLER_IMAGE if outcome.detected_by == ft.CALLER else outcome.detected_by
    if expected_by and by != expected_by:
        out.append(f"raised by {by}, expected {expected_by}")
    params = d.get("parameters") or []
    i = outcome.status_param
    if (
        i is not None
        and death.status is not None
        and len(params) > i
        and int(params[i]) != death.status
    ):
        out.append(f"P{i + 1} = {int(params[i]):#x}, the exit status was {death.status:#x}")
    return out


def expected_exit_status(method: str, status: int | None) -> int:
    return status if method == TERMINATE and status is not None else SIGKILL_EXIT_STATUS


def judge(
    role: str,
    state: dict[str, bool | None],
    obs: Observed,
    death: Death,
    profile: str,
) -> tuple[list[ft.Outcome], ft.Outcome | None, list[str]]:
    """(predicted outcomes, the one observed if any, anomalies)."""
    try:
        predicted = ft.predict(role, state, profile)
    except ft.NoRule as exc:
        return [], None, [str(exc)]
    best: list[str] | None = None
    for outcome in predicted:
        diff = differences(outcome, obs, death)
        if not diff:
            return predicted, outcome, [f"unreadable dump {u}" for u in obs.unreadable]
        if best is None or len(diff) < len(best):
            best = diff
    return predicted, None, (best or []) + [f"unreadable dump {u}" for u in obs.unreadable]


def next_boot_anomalies(outcome: ft.Outcome | None, events: Iterable[Mapping]) -> list[str]:
    """The System events the table says the next boot logs (1001 and 41, or 6008)."""
    if outcome is None:
        return []
    # the kernel reports them through ReportEvent (nt/evtmsg.py) at the next boot
    ids = {e.get("event_id") for e in events if e.get("event") == "event.report"}
    return [
        f"the next boot did not log event {i}" for i in outcome.next_boot_events if i not in ids
    ]
