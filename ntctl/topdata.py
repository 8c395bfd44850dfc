"""What ``ntctl top`` shows, without the screen: polls of the kernel's process table, CPU
and memory from /proc, each process's ports and last events from the logs, and what a
kill would do. Kept apart from the Textual app so it is testable and cheap.

One event model: the rows come from the kernel's records (NtQuerySystemInformation),
ports from the log events the kernel and the servers write (``ob.port_create``,
``port.connect``/``port.closed``), never from another view's text.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ntctl.machine import QuickMachine
from ntctl.views import _uss

# Process Explorer's Description column: the images' file descriptions on Windows 10
DESCRIPTIONS: dict[str, str] = {
    "System": "NT Kernel & System",
    "smss.exe": "Windows Session Manager",
    "autochk.exe": "Auto Check Utility",
    "csrss.exe": "Client Server Runtime Process",
    "wininit.exe": "Windows Start-Up Application",
    "winlogon.exe": "Windows Logon Application",
    "services.exe": "Services and Controller app",
    "lsass.exe": "Local Security Authority Process",
    "lsm.exe": "Local Session Manager Service",
    "svchost.exe": "Host Process for Windows Services",
    "spoolsv.exe": "Spooler SubSystem App",
    "LogonUI.exe": "Windows Logon User Interface Host",
    "userinit.exe": "Userinit Logon Application",
    "explorer.exe": "Windows Explorer",
    "ntctl.exe": "ntctl (attached tool)",
}
HIGHLIGHT_S = 3.0  # new green, exited red, this long (Process Explorer: 1 s; scaled up)
USS_EVERY_S = 5.0  # reading smaps_rollup walks the page tables: ~0.7 ms a process
SCM_EVERY_S = 1.0  # the SCM's records: a service changes state in seconds, not 100 ms
CONFIG_EVERY_S = 10.0  # start types (sc config): rarer still
SCM_TIMEOUT = 1.0  # a call to a dying services.exe must not freeze the screen
CLK_TCK = os.sysconf("SC_CLK_TCK")

# What NtTerminateProcess of a live process does, by what the kernel's record says. The
# chaos oracle will want the same table beside the bugcheck tables (README "Making it crash").
PROFILE_CRITICAL_BUGCHECK = {"win10": 0xEF, "win7": 0xF4}
SUBSYSTEM_IMAGES = ("csrss.exe", "winlogon.exe", "wininit.exe")  # smss watches them: 0xC000021A


@dataclass
class Row:
    pid: int
    image: str
    parent_pid: int
    session: int | None
    user: str
    critical: bool
    state: str
    command_line: str
    create_time: str
    exit_status: int | None
    cpu: float | None = None  # % of one CPU since the previous poll
    uss_mib: float | None = None
    services: list[str] = field(default_factory=list)  # the SCM's: services in this pid
    standin: bool = False  # the kernel's record: a stand-in for an image not modelled
    first_seen: float = 0.0
    gone_at: float | None = None  # when the poll saw it exited (or vanish)

    @property
    def description(self) -> str:
        text = DESCRIPTIONS.get(self.image, "")
        return f"{text} (stand-in)".strip() if self.standin else text


@dataclass
class ServiceRow:
    """One service as the SCM's records give it (REnumServicesStatusExW, and the start type
    from RQueryServiceConfigW)."""

    name: str
    display_name: str
    state: int
    pid: int
    start_type: int | None = None

    @property
    def state_name(self) -> str:
        from nt.winsvc import STATE_NAMES

        return STATE_NAMES.get(self.state, str(self.state))

    @property
    def start_name(self) -> str:
        from nt.winsvc import START_NAMES

        return "" if self.start_type is None else START_NAMES.get(self.start_type, "?")


class ScmPoller:
    """The SCM's service records, at most every SCM_EVERY_S, through the svcctl stubs.

    Only while the machine has the SCM's port (NtOpenPort finds it): before services.exe
    serves it, or on a machine without one, the list is empty and nothing is an error. A
    failed call (services.exe gone, a bugcheck under way) drops the binding; the next poll
    binds again. Start types change rarely: re-read every CONFIG_EVERY_S through handles
    kept open.
    """

    def __init__(self, machine: QuickMachine) -> None:
        self.machine = machine
        self.services: dict[str, ServiceRow] = {}
        self._conn: Any = None
        self._scm: int | None = None
        self._handles: dict[str, int] = {}
        self._next = 0.0
        self._config_at = -CONFIG_EVERY_S

    def poll(self, now: float) -> dict[str, ServiceRow]:
        if now < self._next:
            return self.services
        self._next = now + SCM_EVERY_S
        from ports.client import PortError

        try:
            self._refresh(now)
        except (PortError, ConnectionError, OSError):
            self.reset()
        return self.services

    def by_pid(self) -> dict[int, list[str]]:
        """pid → the services the SCM says run in it (stopped ones have no pid)."""
        out: dict[int, list[str]] = {}
        for svc in sorted(self.services.values(), key=lambda s: s.name.lower()):
            if svc.pid and svc.state != 1:  # SERVICE_STOPPED
                out.setdefault(svc.pid, []).append(svc.name)
        return out

    def _refresh(self, now: float) -> None:
        from ports import svcctl as sv
        from ports.client import PortError

        if self._conn is None:
            self._conn = sv.ScConnectToScm(self.machine)  # duck-types LpcRuntime.connect_port
            self._scm = _body(
                sv.ROpenSCManagerW(self._conn, sv.SC_MANAGER_ENUMERATE_SERVICE, timeout=SCM_TIMEOUT)
            )["handle"]
        assert self._scm is not None
        rows: list[dict] = []
        resume = 0
        while True:
            reply = sv.REnumServicesStatusExW(
                self._conn,
                self._scm,
                sv.SERVICE_WIN32,
                sv.SERVICE_STATE_ALL,
                resume,
                timeout=SCM_TIMEOUT,
            )
            if not reply.ok:
                raise PortError(reply.status, "REnumServicesStatusExW")
            rows += reply.body["services"]
            if not reply.body["more_data"]:
                break
            resume = reply.body["resume_index"]
        old = self.services
        self.services = {}
        for rec in rows:
            status = rec["status"]
            name = str(rec["service_name"])
            before = old.get(name)
            self.services[name] = ServiceRow(
                name,
                str(rec["display_name"]),
                int(status["current_state"]),
                int(status.get("process_id") or 0),
                before.start_type if before else None,
            )
        stale = now - self._config_at >= CONFIG_EVERY_S
        for svc in self.services.values():
            if stale or svc.start_type is None:
                svc.start_type = self._start_type(svc.name)
        if stale:
            self._config_at = now

    def _start_type(self, name: str) -> int | None:
        from ports import svcctl as sv

        handle = self._handles.get(name)
        if handle is None:
            reply = sv.ROpenServiceW(
                self._conn, self._scm or 0, name, sv.SERVICE_QUERY_CONFIG, timeout=SCM_TIMEOUT
            )
            if not reply.ok or reply.body.get("error"):
                return None  # deleted meanwhile, or not ours to read: no start type shown
            handle = self._handles[name] = reply.body["handle"]
        reply = sv.RQueryServiceConfigW(self._conn, handle, timeout=SCM_TIMEOUT)
        if not reply.ok or reply.body.get("error"):
            self._handles.pop(name, None)
            return None
        return int(reply.body["config"]["start_type"])

    def reset(self) -> None:
        if self._conn is not None:
            self._conn.close(notify=False)
        self._conn, self._scm, self._handles, self.services = None, None, {}, {}


def _body(reply: Any) -> dict:
    from ports.client import PortError

    if not reply.ok or reply.body.get("error"):
        raise PortError(reply.status, "svcctl")
    return reply.body


class Poller:
    """The kernel's process table every ``poll()``, with CPU % and USS, and the
    highlights: rows seen for the first time (new) and rows that exited (gone)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.machine = QuickMachine(root)
        self.state = self.machine.state
        self.rows: dict[int, Row] = {}
        self._ticks: dict[int, tuple[int, float]] = {}
        self._uss_at: dict[int, float] = {}
        self.scm = ScmPoller(self.machine)
        self.polls = 0

    @property
    def log_dir(self) -> Path:
        return self.root / "logs" / self.state.boot_id

    def alive(self) -> bool:
        try:
            os.kill(self.state.kernel_pid, 0)
        except ProcessLookupError:
            return False
        return True

    @staticmethod
    def failures() -> tuple[type[Exception], ...]:
        """What ``poll`` raises when the machine is gone (anything else is a bug)."""
        from nt.syscalls import NtError
        from ports.client import PortError

        return NtError, PortError, ConnectionError

    def poll(self, now: float | None = None) -> dict[int, Row]:
        """One refresh; raises ``NtError``/``PortError`` when the kernel no longer answers."""
        now = time.monotonic() if now is None else now
        records = self.machine.nt.call(
            "NtQuerySystemInformation", 2.0, info_class="SystemProcessInformation"
        )["processes"]
        self.scm.poll(now)
        services = self.scm.by_pid()
        seen = set()
        for rec in records:
            if rec.get("image") == "ntctl.exe":
                continue
            pid = int(rec["pid"])
            seen.add(pid)
            row = self.rows.get(pid)
            if row is None:
                row = self.rows[pid] = Row(
                    pid,
                    str(rec.get("image")),
                    int(rec.get("parent_pid") or 0),
                    rec.get("session"),
                    str(rec.get("user") or ""),
                    bool(rec.get("critical")),
                    str(rec.get("state")),
                    str(rec.get("command_line") or ""),
                    str(rec.get("create_time") or ""),
                    rec.get("exit_status"),
                    first_seen=now if self.polls else now - HIGHLIGHT_S,
                )
            row.critical, row.state = bool(rec.get("critical")), str(rec.get("state"))
            row.exit_status = rec.get("exit_status")
            row.user, row.standin = str(rec.get("user") or ""), bool(rec.get("standin"))
            row.services = [] if row.state == "exited" else services.get(pid, [])
            if row.state == "exited":
                if row.gone_at is None:
                    row.gone_at = now if self.polls else now - HIGHLIGHT_S
                row.cpu = row.uss_mib = None
            else:
                row.cpu = self._cpu(pid, now)
                if now - self._uss_at.get(pid, -USS_EVERY_S) >= USS_EVERY_S:
                    row.uss_mib, self._uss_at[pid] = _uss(pid), now
        for pid, row in self.rows.items():
            if pid not in seen and row.gone_at is None:
                row.gone_at, row.state = now, "exited"
        self.polls += 1
        return self.rows

    def _cpu(self, pid: int, now: float) -> float | None:
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            return None
        ticks = int(fields[11]) + int(fields[12])  # utime + stime
        before = self._ticks.get(pid)
        self._ticks[pid] = (ticks, now)
        if before is None or now <= before[1]:
            return None
        return round(100.0 * (ticks - before[0]) / CLK_TCK / (now - before[1]), 1)

    def visible(self, now: float | None = None) -> list[Row]:
        """Live rows, plus exited ones for HIGHLIGHT_S after they went."""
        now = time.monotonic() if now is None else now
        return [r for r in self.rows.values() if r.gone_at is None or now - r.gone_at < HIGHLIGHT_S]

    def close(self) -> None:
        self.scm.reset()
        self.machine.close()


def highlight(row: Row, now: float) -> str:
    """ "new", "gone" or "" (Process Explorer's green and red)."""
    if row.gone_at is not None:
        return "gone"
    return "new" if now - row.first_seen < HIGHLIGHT_S else ""


def tree_order(rows: Iterable[Row]) -> list[tuple[Row, int]]:
    """(row, depth) in NT-tree order; children by creation time, orphans at the top level."""
    rows = list(rows)
    pids = {r.pid for r in rows}
    children: dict[int, list[Row]] = {}
    roots = []
    for r in sorted(rows, key=lambda r: r.create_time):
        if r.parent_pid in pids and r.parent_pid != r.pid:
            children.setdefault(r.parent_pid, []).append(r)
        else:
            roots.append(r)
    out: list[tuple[Row, int]] = []

    def add(row: Row, depth: int) -> None:
        out.append((row, depth))
        for child in children.get(row.pid, []):
            add(child, depth + 1)

    for r in roots:
        add(r, 0)
    return out


def filter_tree(ordered: list[tuple[Row, int]], text: str) -> list[tuple[Row, int]]:
    """Rows whose image, pid or command line contain ``text``, with their ancestors kept
    visible (System Informer #2561: a filtered row without its parents is lost)."""
    if not text:
        return ordered
    needle = text.lower()
    by_pid = {r.pid: r for r, _ in ordered}
    keep: set[int] = set()
    for row, _ in ordered:
        if (
            needle in row.image.lower()
            or needle in str(row.pid)
            or needle in row.command_line.lower()
        ):
            pid: int | None = row.pid
            while pid is not None and pid in by_pid and pid not in keep:
                keep.add(pid)
                pid = by_pid[pid].parent_pid
    return [(r, d) for r, d in ordered if r.pid in keep]


def kill_consequence(row: Row, profile: str) -> tuple[int | None, str]:
    """(bugcheck code or None, the sentence for the confirmation) of killing ``row``."""
    from nt import bugcodes

    if row.critical:
        code = PROFILE_CRITICAL_BUGCHECK.get(profile, 0xEF)
        name = bugcodes.describe(code).name
        return code, (
            f"{row.image} is a critical process: killing it will bugcheck the machine "
            f"({bugcodes.format_code(code)} {name})."
        )
    if row.image in SUBSYSTEM_IMAGES:
        code = 0xC000021A
        return code, (
            f"{row.image} is not critical yet, but smss watches it: killing it will bugcheck "
            f"the machine ({bugcodes.format_code(code)} STATUS_SYSTEM_PROCESS_TERMINATED)."
        )
    return None, f"{row.image} is not critical: the machine keeps running."


# -- the detail pane: ports and last events, from the logs ---------------------------------
def ports_of(log_dir: Path, pid: int) -> tuple[list[str], list[str]]:
    """(ports the process created, ports it is connected to now), from the log events."""
    from nt.logquery import iter_events

    served: list[str] = []
    connected: dict[tuple[str, Any], str] = {}
    for ev in iter_events(log_dir, event="*port*"):
        name = ev.get("event")
        if name == "ob.port_create" and ev.get("owner_pid") == pid:
            served.append(str(ev.get("name")))
        elif name == "port.connect" and ev.get("peer_pid") == pid:
            connected[(str(ev.get("port")), ev.get("conn"))] = str(ev.get("port"))
        elif name == "port.closed" and ev.get("peer_pid") == pid:
            connected.pop((str(ev.get("port")), ev.get("conn")), None)
    return served, sorted(set(connected.values()))


def last_events(log_dir: Path, pid: int, n: int = 8) -> list[dict]:
    from nt.logquery import tail

    return tail(log_dir, pid, n)


def bugcheck_of(root: Path, boot_id: str) -> tuple[dict | None, Path | None]:
    """The dump of this boot's bugcheck (None while it is not written, or without one)."""
    from nt import dump

    path = dump.latest_dump(root / "C" / "Windows" / "Minidump")
    if path is None:
        return None, None
    try:
        record = dump.read_dump(path)
    except (OSError, ValueError):
        return None, None
    return (record, path) if record.get("boot_id") == boot_id else (None, None)
