"""The boot console: what Windows shows while it starts, drawn from the log events.

Default view: a banner, the Phase 1 progress bar driven by the kernel's
InbvUpdateProgressBar percentages (``boot.phase1`` events), then one line per milestone
(:data:`MILESTONES`), plus every warning, error, bugcheck and ``divergence``. ``/SOS``
adds the rows marked ``sos`` (each service as it starts) to what the kernel itself
displays in SOS mode (``boot.display``: each Phase 1 step, each driver's ARC path), as
Windows' SOS mode lists what it loads. ``-v`` streams every event (``ntctl logs`` lines).

Milestones are data: one row per event name, so a new component's milestone (services,
logon) is one more row, not more code. Lines never wrap: each is cut to the terminal's
width (``ntctl logs`` has the whole event).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from ntctl.logview import format_event
from ntctl.term import Styled


class Milestone(NamedTuple):
    """``event`` (carrying the fields in ``when``) becomes the line ``text``, formatted with
    the event's fields; ``sos`` rows show only with /SOS (or -v, which shows everything)."""

    event: str
    text: str
    style: str = ""
    sos: bool = False
    when: tuple[tuple[str, Any], ...] = ()


MILESTONES: tuple[Milestone, ...] = (
    # NtDisplayString: autochk's report, and each Phase 1 step when the kernel runs with /SOS
    Milestone("boot.display", "{text}"),
    Milestone("csr.ready", "Windows subsystem ready in session {session}", "green"),
    Milestone("wininit.ready", "Session 0 initialized (wininit.exe)", "green"),
    Milestone("svc.state", "  Started {service}", "dim", sos=True, when=(("state", 4),)),  # RUNNING
    # the SCM's counts: auto-start services running / attempted
    Milestone("scm.auto_start_complete", "Services started {running}/{services}", "green"),
    Milestone("logon.ready", "Press Ctrl+Alt+Del to log on (session {session})", "bold"),
    Milestone("logon.success", "{user} logged on in session {session}", "green"),
    Milestone("shutdown.begin", "Shutting down...", "yellow"),
    # UserServerHardError's message box (processes/csrss/harderror.py), in its session
    Milestone("csr.hard_error_box", "[session {session}] {caption}: {popup}", "bold red"),
)
_BY_EVENT: dict[str, list[Milestone]] = {}
for _row in MILESTONES:
    _BY_EVENT.setdefault(_row.event, []).append(_row)

ALWAYS_SHOWN = ("bugcheck", "divergence")
ALERT_LEVELS = ("warning", "error", "critical")


class _Fields(dict):
    """str.format_map over an event: a missing field shows as ``?``, never raises."""

    def __missing__(self, key: str) -> str:
        return "?"


def milestone_line(ev: Mapping[str, Any], sos: bool) -> Styled | None:
    """The console line of a milestone event, or None when it is not one (in this mode)."""
    for row in _BY_EVENT.get(str(ev.get("event", "")), ()):
        if row.sos and not sos:
            continue
        if all(ev.get(k) == v for k, v in row.when):
            fields = _Fields(ev)
            if fields.get("session") is None:
                fields["session"] = "-"
            return Styled(row.text.format_map(fields), row.style)
    return None


def is_alert(ev: Mapping[str, Any]) -> bool:
    """Warnings, errors, bugchecks and divergences: always on the console."""
    name = str(ev.get("event", ""))
    level = str(ev.get("level", "")).lower()
    return level in ALERT_LEVELS or name in ALWAYS_SHOWN or "bugcheck" in name


def banner(ev: Mapping[str, Any]) -> list[Styled]:
    """The lines shown at ``boot.start``: what boots, with which options."""
    options = " ".join(f"/{o}" for o in ev.get("options") or []) or "(none)"
    profile = ev.get("profile", "?")
    return [
        Styled(f"ntmodel — Windows NT ({profile})", "bold"),
        Styled(f"boot {ev.get('boot_id', '?')}  options {options}", "dim"),
        Styled(""),
    ]


def console_lines(ev: Mapping[str, Any], *, sos: bool, verbose: bool) -> list[Styled]:
    """What one event adds to the console (possibly nothing)."""
    if verbose:
        return [format_event(ev)]
    if ev.get("event") == "boot.start":
        return banner(ev)
    line = milestone_line(ev, sos)
    if line is not None:
        return [line]
    if is_alert(ev):
        return [format_event(ev)]
    return []


class BootView:
    """Feeds events to a Rich console: the progress bar, milestones, alerts.

    ``sos`` is taken from ``boot.start`` (the kernel parsed the options); the bar starts
    there unless ``noguiboot``. Every line is cut to the console's width.
    """

    def __init__(self, console: Any, verbose: bool = False) -> None:
        self.console = console
        self.verbose = verbose
        self.sos = False
        self.progress: Any = None
        self.task: Any = None

    def feed(self, events: Iterable[Mapping[str, Any]]) -> None:
        for ev in events:
            self.handle(ev)

    def handle(self, ev: Mapping[str, Any]) -> None:
        name = ev.get("event")
        if name == "boot.start":
            self.sos = bool(ev.get("sos"))
        lines = console_lines(ev, sos=self.sos, verbose=self.verbose)
        for line in lines:
            self.print(line)
        if name == "boot.start" and not ev.get("noguiboot"):
            self._start_bar()
        elif name == "boot.phase1" and self.task is not None:
            percent = float(ev.get("percent", 0) or 0)
            self.progress.update(self.task, completed=percent)
            if percent >= 100:
                self.stop()

    def print(self, line: Styled) -> None:
        out = self.progress.console if self.progress is not None else self.console
        if self.verbose:  # -v: the whole event, as `ntctl logs` prints it
            out.print(line.to_rich(), soft_wrap=True)
        else:
            out.print(line.truncate(max(out.width, 20)).to_rich(), soft_wrap=True)

    def _start_bar(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn

        self.progress = Progress(
            TextColumn("[bold]Starting Windows"),
            BarColumn(bar_width=40),
            TextColumn("{task.percentage:>3.0f}%"),
            console=self.console,
        )
        self.progress.start()
        self.task = self.progress.add_task("boot", total=100)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
        self.progress = self.task = None
