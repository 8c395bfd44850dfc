"""Boot analysis like systemd-analyze: blame, critical-chain, plot (the data), from the logs.

One event model: every figure comes from the log events of one boot (the kernel's
``proc.create``/``proc.exit`` records and each process's own events), never from
another view's text. A *unit* is a process (and, when their events exist, a service or
a driver). It *starts* when the kernel creates it and is *ready* at the first of the
events that :data:`READY` lists for its image: the moment it does the job the rest of
the boot waits for (csrss: ``csr.ready``, winlogon: ``logon.ready`` ...). The tables are
data, so a new image, service or driver kind is one row.

Times are seconds since the kernel's ``boot.start``. A boot that crashed half-way ends
at its ``bugcheck``: units not ready by then are reported as never ready.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from ntctl.term import Styled

When = tuple[tuple[str, Any], ...]


class Ready(NamedTuple):
    """``event`` (with the field values in ``when``) in the unit's own log marks it ready."""

    event: str
    when: When = ()


# image -> the events that make it ready (the earliest one found counts)
READY: dict[str, tuple[Ready, ...]] = {
    # Phase 1 is over when the kernel has created and resumed the initial process
    "System": (Ready("proc.resume", (("child_image", "smss.exe"),)),),
    # the master's SmpInit is done (BootExecute, page file, registry, environment); an
    # instance is done when its session's csrss and initial command run
    "smss.exe": (Ready("smss.init_done"), Ready("smss.session_ready")),
    "autochk.exe": (Ready("proc.exit_self"),),  # BootExecute waits for it to finish
    "csrss.exe": (Ready("csr.ready"),),
    "wininit.exe": (Ready("wininit.ready"),),
    "winlogon.exe": (Ready("logon.ready"),),
    "services.exe": (Ready("scm.ready"),),
    "lsass.exe": (Ready("lsa.ready"),),
    "lsm.exe": (Ready("lsm.ready"),),
    # the logon (issue 9): the tiles are up; Run and the shell started; the taskbar is up
    "logonui.exe": (Ready("logonui.ready"),),
    "userinit.exe": (Ready("userinit.done"),),
    "explorer.exe": (Ready("explorer.ready"),),
}
DEFAULT_READY = (Ready("proc.start"),)  # an image without a row: ready once it runs


class UnitEvents(NamedTuple):
    """Units that are not processes: events carrying the unit's name in ``name_field``;
    it starts at ``start`` and is ready at ``ready`` (each an event and field values)."""

    kind: str
    name_field: str
    start: Ready
    ready: Ready


OTHER_UNITS: tuple[UnitEvents, ...] = (
    UnitEvents(  # the SCM's SetServiceStatus records: 2 START_PENDING, 4 RUNNING
        "service",
        "service",
        Ready("svc.state", (("state", 2),)),
        Ready("svc.state", (("state", 4),)),
    ),
    # the kernel's I/O manager loads a driver in one step: a point on the chart
    UnitEvents("driver", "driver", Ready("io.driver_loaded"), Ready("io.driver_loaded")),
)

# Waits besides the NT parent: image -> (image waited for, same session only?, the event
# of that unit that releases the waiter; None: its being ready)
WAITS_FOR: dict[str, tuple[tuple[str, bool, str | None], ...]] = {
    # SmpExecuteInitialCommand runs once the session's csrss has connected to smss
    "wininit.exe": (("csrss.exe", True, "csr.sm_connected"),),
    # ... and reaches the SAS once lsass has set LSA_RPC_SERVER_ACTIVE
    "winlogon.exe": (("csrss.exe", True, "csr.sm_connected"), ("lsass.exe", False, None)),
    # the session instances start after BootExecute (autochk) has finished
    "smss.exe": (("autochk.exe", False, None),),
}
GOAL_EVENT = "logon.ready"  # the default unit of critical-chain: "Press Ctrl+Alt+Del"


@dataclass
class Unit:
    name: str
    kind: str  # kernel | process | service | driver
    image: str
    pid: int | None = None
    session: int | None = None
    parent_pid: int | None = None
    start: float = 0.0
    ready: float | None = None
    ready_event: str | None = None
    end: float | None = None
    exit_status: str | None = None
    exit_name: str | None = None
    marks: dict[str, float] = field(default_factory=dict)  # first time of each own event

    @property
    def took(self) -> float | None:
        return None if self.ready is None else self.ready - self.start

    def json(self) -> dict[str, Any]:
        ms = _ms
        return {
            "unit": self.name,
            "kind": self.kind,
            "image": self.image,
            "pid": self.pid,
            "session": self.session,
            "parent_pid": self.parent_pid,
            "start_ms": ms(self.start),
            "ready_ms": ms(self.ready),
            "took_ms": ms(self.took),
            "ready_event": self.ready_event,
            "end_ms": ms(self.end),
            "exit_status": self.exit_status,
            "exit_status_name": self.exit_name,
        }


@dataclass
class Chart:
    boot_id: str
    log_dir: Path
    started: str  # boot.start ts
    units: list[Unit] = field(default_factory=list)
    end: float = 0.0  # the last event (or the bugcheck)
    bugcheck: dict[str, Any] | None = None

    def by_pid(self) -> dict[int, Unit]:
        return {
            u.pid: u for u in self.units if u.pid is not None and u.kind in ("process", "kernel")
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _when(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def _matches(ev: Mapping[str, Any], when: When) -> bool:
    return all(ev.get(k) == v for k, v in when)


# -- building the chart from the events --------------------------------------------------
def load(log_dir: Path) -> Chart:
    """The chart of the boot whose logs are in ``log_dir``."""
    from nt.logquery import iter_events

    return build(iter_events(log_dir), log_dir)


def build(events: Iterable[Mapping[str, Any]], log_dir: Path = Path(".")) -> Chart:
    """The chart of one boot's events (merged in time order)."""
    evs = list(events)
    start = next((e for e in evs if e.get("event") == "boot.start"), evs[0] if evs else None)
    if start is None:
        return Chart(log_dir.name, log_dir, "")
    t0 = _when(str(start["ts"]))
    chart = Chart(str(start.get("boot_id", log_dir.name)), log_dir, str(start["ts"]))
    kernel = Unit("System", "kernel", "System", pid=start.get("pid"))
    procs: dict[int, Unit] = {}
    if kernel.pid is not None:
        procs[kernel.pid] = kernel
    others: dict[tuple[str, str], Unit] = {}
    for ev in evs:
        t = (_when(str(ev["ts"])) - t0).total_seconds()  # exact µs, unlike epoch floats
        name = ev.get("event")
        chart.end = max(chart.end, t)
        if name == "proc.create" and isinstance(ev.get("child_pid"), int):
            procs[ev["child_pid"]] = Unit(
                "",
                "process",
                str(ev.get("child_image")),
                pid=ev["child_pid"],
                session=ev.get("child_session"),
                parent_pid=ev.get("parent_pid"),
                start=t,
            )
        elif name == "proc.exit" and ev.get("child_pid") in procs:
            unit = procs[ev["child_pid"]]
            unit.end = t
            unit.exit_status, unit.exit_name = ev.get("status"), ev.get("status_name")
        elif name == "bugcheck" and chart.bugcheck is None:
            chart.bugcheck = {"ts_ms": _ms(t), **{k: v for k, v in ev.items() if k != "ts"}}
        unit = procs.get(ev.get("pid"))  # type: ignore[arg-type]
        if unit is not None:
            unit.marks.setdefault(str(name), t)
        if name == "smss.subsystem_connected" and ev.get("subsystem_pid") in procs:
            # the moment csrss's connection released smss: csrss's own csr.sm_connected
            # line can be written after smss has already gone on
            csr = procs[ev["subsystem_pid"]]
            csr.marks["csr.sm_connected"] = min(t, csr.marks.get("csr.sm_connected", t))
        if unit is not None and unit.ready is None:
            for rule in READY.get(unit.image, DEFAULT_READY):
                if name == rule.event and _matches(ev, rule.when):
                    unit.ready, unit.ready_event = t, rule.event
                    break
        _other_unit(ev, t, others)
    if chart.bugcheck is not None:
        chart.end = chart.bugcheck["ts_ms"] / 1000
    chart.units = [u for u in procs.values()] + list(others.values())
    _name_units(chart.units)
    return chart


def _other_unit(ev: Mapping[str, Any], t: float, others: dict[tuple[str, str], Unit]) -> None:
    name = ev.get("event")
    for rule in OTHER_UNITS:
        starts = name == rule.start.event and _matches(ev, rule.start.when)
        readies = name == rule.ready.event and _matches(ev, rule.ready.when)
        if not (starts or readies) or ev.get(rule.name_field) is None:
            continue
        key = (rule.kind, str(ev[rule.name_field]))
        unit = others.get(key)
        if unit is None:
            unit = others[key] = Unit(key[1], rule.kind, str(ev.get("image")), start=t)
            if rule.kind == "service":  # a driver lives in the kernel: no pid of its own
                unit.pid = ev.get("process_pid") or ev.get("pid")
            unit.session = ev.get("session")
        elif starts and unit.ready is None:
            unit.start = t
        if readies and unit.ready is None:
            unit.ready, unit.ready_event = t, str(name)


def _name_units(units: list[Unit]) -> None:
    """``csrss.exe@1`` where an image runs in several sessions; ``#pid`` if still ambiguous."""
    count: dict[str, int] = {}
    for u in units:
        if u.kind in ("process", "kernel"):
            count[u.image] = count.get(u.image, 0) + 1
    seen: set[str] = set()
    for u in sorted(units, key=lambda u: u.start):
        if u.kind not in ("process", "kernel"):
            continue
        name = u.image
        if count[u.image] > 1 and u.session is not None:
            name = f"{u.image}@{u.session}"
        if name in seen:
            name = f"{name}#{u.pid}"
        seen.add(name)
        u.name = name


# -- blame ---------------------------------------------------------------------------------
def blame_units(chart: Chart) -> list[Unit]:
    """Ready units, slowest first; then those never ready (in start order)."""
    ready = sorted((u for u in chart.units if u.took is not None), key=lambda u: -(u.took or 0))
    never = sorted((u for u in chart.units if u.took is None), key=lambda u: u.start)
    return ready + never


def _fate(unit: Unit, chart: Chart) -> str:
    if unit.end is not None:
        return f"exited {unit.exit_status or '?'} {unit.exit_name or ''}".rstrip()
    if chart.bugcheck is not None:
        return "stopped by the bugcheck"
    return "still starting"


def blame_json(chart: Chart) -> dict[str, Any]:
    return {
        "boot_id": chart.boot_id,
        "boot_start": chart.started,
        "end_ms": _ms(chart.end),
        "bugcheck": chart.bugcheck,
        "units": [u.json() for u in blame_units(chart)],
    }


def render_blame(chart: Chart) -> list[Styled]:
    lines = []
    for u in blame_units(chart):
        if u.took is not None:
            lines.append(Styled(f"{_dur(u.took):>9} ", "bold").append(u.name, _style(u)))
        else:
            lines.append(
                Styled(f"{'never':>9} ", "bold red")
                .append(u.name, _style(u))
                .append(f"  ({_fate(u, chart)})", "red")
            )
    lines.extend(_footer(chart))
    return lines


def _footer(chart: Chart) -> list[Styled]:
    if chart.bugcheck is None:
        return []
    code = chart.bugcheck.get("bugcheck_code") or chart.bugcheck.get("code")
    name = chart.bugcheck.get("bugcheck_name") or chart.bugcheck.get("name") or ""
    return [
        Styled(""),
        Styled(f"The boot ended in a bugcheck at {_dur(chart.end)}: {code} {name}".rstrip(), "red"),
    ]


def _style(u: Unit) -> str:
    return {"kernel": "bold", "service": "yellow", "driver": "blue"}.get(u.kind, "cyan")


def _dur(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms" if seconds < 1 else f"{seconds:.3f}s"


# -- critical chain -------------------------------------------------------------------------
class Link(NamedTuple):
    unit: Unit
    at: float  # when this link released the next one (or, for the last, became ready)
    added: float  # what this link added to the chain
    how: str  # "ready" | "created <next>" | the event that released the next | "not ready"


def find_unit(chart: Chart, name: str | None) -> Unit:
    """A unit by name (``winlogon``, ``csrss.exe@1``), pid, or the boot's goal by default."""
    if name is None:
        goal = [u for u in chart.units if u.ready_event == GOAL_EVENT]
        pool = goal or [u for u in chart.units if u.ready is not None] or chart.units
        if not pool:
            raise LookupError(f"boot {chart.boot_id} has no units")
        return max(pool, key=lambda u: u.ready if u.ready is not None else u.start)
    text = name.lower()
    exact = [u for u in chart.units if u.name.lower() == text or str(u.pid) == text]
    if exact:
        return exact[0]
    stem = [u for u in chart.units if u.name.lower().split("@")[0] in (text, text + ".exe")]
    if len(stem) == 1:
        return stem[0]
    if stem:
        names = ", ".join(u.name for u in stem)
        raise LookupError(f"{name!r} names {len(stem)} units ({names}); give one of them")
    raise LookupError(f"no unit {name!r} in boot {chart.boot_id}")


def _predecessor(
    chart: Chart, unit: Unit, by_pid: dict[int, Unit]
) -> tuple[Unit, float | None, str] | None:
    """What released ``unit``, when, and how: of the moments it waited for that came
    before it started (its NT parent ready, a :data:`WAITS_FOR` event), the latest;
    else its NT parent, which created it while still starting (moment None)."""
    parent = by_pid.get(unit.parent_pid) if unit.parent_pid is not None else None
    if parent is unit:
        parent = None
    moments: list[tuple[float, Unit, str]] = []
    if parent is not None and parent.ready is not None:
        moments.append((parent.ready, parent, "ready"))
    for image, same_session, event in WAITS_FOR.get(unit.image, ()):
        for u in chart.units:
            if u.image != image or (same_session and u.session != unit.session):
                continue
            t = u.ready if event is None else u.marks.get(event)
            if t is not None:
                moments.append((t, u, "ready" if event is None else event))
    done = [m for m in moments if m[0] <= unit.start]
    if done:
        t, who, how = max(done, key=lambda m: m[0])
        return who, t, how
    return (parent, None, f"created {unit.name}") if parent is not None else None


def critical_chain(chart: Chart, name: str | None = None) -> list[Link]:
    """The chain from the kernel to ``name``, first link first; the added times sum to
    the unit's ready time (or to the end of the boot when it never became ready)."""
    by_pid = chart.by_pid()
    target = find_unit(chart, name)
    last_at = target.ready if target.ready is not None else chart.end
    path = [(target, last_at, "ready" if target.ready is not None else "not ready")]
    while (found := _predecessor(chart, path[-1][0], by_pid)) is not None:
        who, t, how = found
        if any(who is p[0] for p in path):
            break
        path.append((who, path[-1][0].start if t is None else t, how))
    path.reverse()
    links: list[Link] = []
    previous = 0.0
    for unit, at, how in path:
        links.append(Link(unit, at, at - previous, how))
        previous = at
    return links


def chain_json(chart: Chart, chain: list[Link]) -> dict[str, Any]:
    return {
        "boot_id": chart.boot_id,
        "unit": chain[-1].unit.name if chain else None,
        "bugcheck": chart.bugcheck,
        "links": [
            {
                "unit": ln.unit.name,
                "pid": ln.unit.pid,
                "at_ms": _ms(ln.at),
                "added_ms": _ms(ln.added),
                "how": ln.how,
            }
            for ln in chain
        ],
    }


def render_chain(chart: Chart, chain: list[Link]) -> list[Styled]:
    lines = [
        Styled('The time the unit became ready (or released the next link) is after "@";', "dim"),
        Styled('the time the link added to the chain is after "+".', "dim"),
        Styled(""),
    ]
    for depth, link in enumerate(reversed(chain)):
        indent = "" if depth == 0 else "  " * (depth - 1) + "└─"
        line = Styled(indent, "dim").append(
            link.unit.name, "bold red" if depth == 0 else _style(link.unit)
        )
        line.append(f" @{_dur(link.at)} +{_dur(link.added)}")
        if link.how != "ready":
            line.append(f"  ({link.how})", "red" if link.how == "not ready" else "dim")
        lines.append(line)
    lines.extend(_footer(chart))
    return lines


# -- plot data ----------------------------------------------------------------------------
def plot_json(chart: Chart) -> dict[str, Any]:
    """The rows of ``ntctl plot`` (start order), as systemd-analyze plot --json has them."""
    return {
        "boot_id": chart.boot_id,
        "boot_start": chart.started,
        "end_ms": _ms(chart.end),
        "bugcheck": chart.bugcheck,
        "rows": [u.json() for u in sorted(chart.units, key=lambda u: u.start)],
    }
