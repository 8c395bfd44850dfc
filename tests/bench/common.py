"""What every benchmark shares: figures, statistics, CPU accounting, a booted machine.

perf-floor.md's rules apply to every figure here: the machine is noisy and cross-vCPU
wake-ups dominate, so each benchmark measures its floor in the same run, interleaves the
repetitions of floor and project, and prints medians, p99 and ratios. Aggregates follow
perf-floor's tables: median = median of the repetition medians, p99 = median of the
repetition p99s, spread = min-max of the repetition medians.

Clean-up rule: every machine this module boots is found again by process group (the
kernel and the launcher daemon each lead their own), never by name, and every process
still alive at the end is killed by pid.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable


# -- figures -----------------------------------------------------------------------------
@dataclass
class Figure:
    """One line of the summary table. ``ok`` None: informational, no target."""

    bench: str
    name: str
    value: float | int
    unit: str = ""
    target: str = ""
    ok: bool | None = None

    def status(self) -> str:
        return "" if self.ok is None else ("PASS" if self.ok else "MISS")


def fmt(value: float, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, int):
        return f"{value:,} {unit}".rstrip()
    if unit in ("×", "x"):
        return f"{value:.2f}×"
    if unit == "%":
        return f"{value:.2f} %" if abs(value) < 10 else f"{value:.0f} %"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".rstrip()


def run_alone(doc: str, add_arguments, run, *extra: str) -> None:
    """``python -m tests.bench.bench_x``: one benchmark with its own options (and ``extra``
    store-true flags such as ``--keep``), then the summary."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    add_arguments(parser)
    for flag in extra:
        parser.add_argument(flag, action="store_true")
    print_summary(run(parser.parse_args()))


def print_summary(figures: Sequence[Figure]) -> None:
    rows = [(f.bench, f.name, fmt(f.value, f.unit), f.target, f.status()) for f in figures]
    head = ("benchmark", "figure", "value", "target", "")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(5)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*head))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line.format(*r).rstrip())


# -- statistics --------------------------------------------------------------------------
def quantile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank quantile (p99 of 2,000 samples is the 1,980th smallest)."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass
class Series:
    """Repetitions of one configuration: each repetition is a list of samples."""

    name: str
    reps: list[list[float]] = field(default_factory=list)

    def add(self, samples: Iterable[float]) -> None:
        self.reps.append(list(samples))

    @property
    def medians(self) -> list[float]:
        return [statistics.median(r) for r in self.reps if r]

    @property
    def p99s(self) -> list[float]:
        return [quantile(r, 0.99) for r in self.reps if r]

    @property
    def median(self) -> float:
        return statistics.median(self.medians) if self.medians else float("nan")

    @property
    def p99(self) -> float:
        return statistics.median(self.p99s) if self.p99s else float("nan")

    @property
    def pooled(self) -> list[float]:
        return [x for r in self.reps for x in r]

    def row(self, scale: float = 1.0) -> str:
        """``median / p99 (spread of medians; spread of p99s) n=...`` in scaled units."""
        if not self.medians:
            return "no samples"
        m = [x * scale for x in self.medians]
        p = [x * scale for x in self.p99s]
        return (
            f"median {self.median * scale:8.1f}  p99 {self.p99 * scale:8.1f}  "
            f"medians {min(m):.1f}-{max(m):.1f}  p99s {min(p):.1f}-{max(p):.1f}  "
            f"pooled p99 {quantile(self.pooled, 0.99) * scale:.1f}  "
            f"n={len(self.reps)}x{statistics.median(len(r) for r in self.reps):.0f}"
        )


def time_command(cmd: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one command as a user runs it (output to a pipe); a failure raises."""
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    took = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.decode()}")
    return took


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


# -- machine state and CPU accounting ----------------------------------------------------
def versions() -> str:
    import msgpack
    import structlog
    import zmq

    return (
        f"Python {platform.python_version()} ({sys.executable}), pyzmq {zmq.__version__}, "
        f"libzmq {zmq.zmq_version()}, msgpack {'.'.join(map(str, msgpack.version))}, "
        f"structlog {structlog.__version__}, psutil {psutil.__version__}; "
        f"{platform.system()} {platform.release()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs"
    )


def tree_state() -> str:
    """The code measured: HEAD and the files that differ from it (others edit the tree)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", "nt", "ports", "processes", "ntctl", "configs"],
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout.split("\n")
    except OSError:
        return "code: (no git)"
    dirty = [line[3:] for line in status if line.strip()]
    return f"code: {REPO} at {head}" + (
        f", uncommitted changes in {', '.join(dirty)}" if dirty else ", clean"
    )


def loadavg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def _busy_seconds() -> float:
    """Machine-wide non-idle CPU seconds since boot (/proc/stat, USER_HZ ticks)."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _usage(pids: Iterable[int]) -> tuple[float, int]:
    """(CPU seconds, context switches) of ``pids``, all threads included."""
    cpu, switches = 0.0, 0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            p = psutil.Process(pid)
            t = p.cpu_times()
            cpu += t.user + t.system
            switches += _switches(pid)
    return cpu, switches


def _switches(pid: int) -> int:
    """Context switches of every live thread (psutil only reads the main thread's)."""
    total = 0
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/status") as fh:
                for line in fh:
                    if "ctxt_switches:" in line:  # voluntary_... and nonvoluntary_...
                        total += int(line.split()[1])
    return total


class CpuMeter:
    """CPU used in a window by named groups of processes, and by everyone else (foreign).

    ``groups`` maps a label to pids; ``per`` (calls, messages) turns seconds into µs per
    unit in :meth:`text`.
    """

    def __init__(self, groups: dict[str, Iterable[int]]) -> None:
        self.groups = {k: [p for p in v if p] for k, v in groups.items()}

    def __enter__(self) -> CpuMeter:
        self.t0 = time.monotonic()
        self.busy0 = _busy_seconds()
        self.use0 = {k: _usage(v) for k, v in self.groups.items()}
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.monotonic() - self.t0
        self.busy = _busy_seconds() - self.busy0
        use = {k: _usage(v) for k, v in self.groups.items()}
        self.cpu = {k: use[k][0] - self.use0[k][0] for k in use}
        self.switches = {k: use[k][1] - self.use0[k][1] for k in use}
        # /proc/stat under-counts wake-up-heavy runs (perf-floor caveats): clamp at 0.
        self.foreign = max(0.0, self.busy - sum(self.cpu.values()))

    def text(self, per: int = 0, unit: str = "call") -> str:
        if per:
            parts = [f"{k} {v / per * 1e6:.0f}" for k, v in self.cpu.items()]
            cs = [f"{k} {v / per:.1f}" for k, v in self.switches.items()]
            return (
                f"CPU µs/{unit}: {', '.join(parts)}; context switches/{unit}: {', '.join(cs)};"
                f" foreign load {self.foreign / max(self.wall, 1e-9):.2f} CPU"
            )
        parts = [f"{k} {v:.2f}" for k, v in self.cpu.items()]
        return f"CPU s: {', '.join(parts)}, foreign {self.foreign:.2f} in {self.wall:.2f} s"


# -- log timestamps ----------------------------------------------------------------------
def ts_epoch(ts: str) -> float:
    """``2026-11-22T06:19:25.988475Z`` -> seconds since the epoch (time.time's clock)."""
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def read_events(log_dir: Path, image_prefix: str, event: str) -> list[dict]:
    """Events named ``event`` in the files ``<image_prefix>.*.jsonl`` of one boot."""
    found = []
    for path in sorted(log_dir.glob(f"{image_prefix}.*.jsonl")):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        needle = f'"event":"{event}"'.encode()
        for line in data.splitlines():
            if needle not in line.replace(b" ", b""):
                continue
            with contextlib.suppress(ValueError):
                ev = json.loads(line)
                if ev.get("event") == event:
                    found.append(ev)
    return found


def wait_event(
    log_dir: Path, image_prefix: str, event: str, timeout: float = 20.0, poll: float = 0.005
) -> dict | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = read_events(log_dir, image_prefix, event)
        if found:
            return found[0]
        time.sleep(poll)
    return None


# -- process clean-up --------------------------------------------------------------------
def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def kill_pid(pid: int, since: float) -> bool:
    """SIGKILL ``pid`` if it is alive and was created after ``since`` (no reused pid)."""
    try:
        p = psutil.Process(pid)
        if p.create_time() < since - 1.0 or p.status() == psutil.STATUS_ZOMBIE:
            return False
        os.kill(pid, signal.SIGKILL)
        return True
    except (psutil.Error, ProcessLookupError, PermissionError):
        return False


class Reaper:
    """Remembers every process a benchmark started (children, machine process groups)."""

    def __init__(self) -> None:
        self.since = time.time()
        self.children: list[subprocess.Popen] = []
        self.groups: set[int] = set()  # pgids: each kernel and each launcher daemon
        self.pids: set[int] = set()
        self.keep = False  # set when something failed: keep the data root for a post-mortem

    def popen(self, *args, **kw) -> subprocess.Popen:
        p = subprocess.Popen(*args, **kw)
        self.children.append(p)
        return p

    def members(self) -> set[int]:
        """Live processes of the remembered groups (a scan of /proc by pgid)."""
        found = set()
        if not self.groups:
            return found
        for pid in psutil.pids():
            if _pgid(pid) in self.groups:
                found.add(pid)
        found.discard(os.getpid())
        return found

    def cleanup(self) -> list[int]:
        """Kill whatever is still alive, by pid; returns the pids killed."""
        killed = []
        for p in self.children:
            if p.poll() is None:
                p.kill()
                killed.append(p.pid)
        for pid in sorted(self.members() | self.pids):
            if kill_pid(pid, self.since):
                killed.append(pid)
        for p in self.children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=5)
        return killed


# -- a machine in a fresh data root ------------------------------------------------------
BOOT_TIMEOUT = 60.0


class BenchMachine:
    """A machine booted through the user's entry point (``ntctl boot --detach``)."""

    def __init__(self, root: Path, reaper: Reaper) -> None:
        self.root = Path(root)
        self.reaper = reaper
        self.env = dict(os.environ, NTMODEL_FAULTS="", PYTHONDONTWRITEBYTECODE="1")

    def ntctl(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
        return subprocess.run(
            [PY, "-m", "ntctl", *args, "--root", str(self.root)],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def boot(self, via_run_sh: bool = False) -> tuple[float, float]:
        """(time.time() before the command started, seconds until it returned).
        ``via_run_sh``: boot with ``./run.sh --detach``, the user's command."""
        t0 = time.time()
        if via_run_sh:
            r = subprocess.run(
                [str(REPO / "run.sh"), "--detach", "--root", str(self.root)],
                cwd=REPO,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=BOOT_TIMEOUT + 10,
            )
        else:
            r = self.ntctl("boot", "--detach", timeout=BOOT_TIMEOUT + 10)
        took = time.time() - t0
        self.remember()
        if r.returncode != 0:
            self.reaper.keep = True  # the evidence stays: finish() keeps the root
            raise RuntimeError(
                f"boot failed ({r.returncode}):\n{r.stdout}\n{r.stderr}\n{self.diagnose()}"
            )
        return t0, took

    def diagnose(self) -> str:
        """The end of the launcher's console log and any bugcheck of the latest boot."""
        lines = [f"data root kept: {self.root}"]
        with contextlib.suppress(OSError):
            tail = (self.root / "logs" / "console.log").read_text(errors="replace")
            lines += ["console.log (end):", *tail.splitlines()[-25:]]
        for ev in read_events(self.log_dir, "System", "bugcheck"):
            lines.append(f"bugcheck: {json.dumps(ev)}")
        return "\n".join(lines)

    def state(self) -> dict | None:
        try:
            return json.loads((self.root / "machine.json").read_text())
        except (OSError, ValueError):
            return None

    def kernel_pid(self) -> int | None:
        st = self.state()
        return int(st["kernel_pid"]) if st else None

    def launcher_pid(self) -> int | None:
        try:
            return int((self.root / "machine.lock").read_text().strip() or 0) or None
        except (OSError, ValueError):
            return None

    def remember(self) -> None:
        """Note this boot's process groups so clean-up can find stragglers."""
        for pid in (self.kernel_pid(), self.launcher_pid()):
            if pid:
                self.reaper.groups.add(pid)
                self.reaper.pids.add(pid)

    @property
    def log_dir(self) -> Path:
        return (self.root / "logs" / "latest").resolve()

    def ps(self) -> list[dict]:
        r = self.ntctl("ps", "--json")
        if r.returncode != 0:
            raise RuntimeError(f"ntctl ps failed:\n{r.stdout}\n{r.stderr}")
        procs = [p for p in json.loads(r.stdout) if p["image"] != "ntctl.exe"]
        self.reaper.pids.update(p["pid"] for p in procs)
        return procs

    def running(self) -> bool:
        kernel, launcher = self.kernel_pid(), self.launcher_pid()
        return any(pid and _alive(pid) for pid in (kernel, launcher))

    def wait_stopped(self, timeout: float = 15.0) -> bool:
        """Until the launcher, the kernel and every process of its group are gone."""
        deadline = time.monotonic() + timeout
        groups = {g for g in (self.kernel_pid(), self.launcher_pid()) if g}
        while time.monotonic() < deadline:
            alive = [pid for pid in psutil.pids() if _pgid(pid) in groups and pid != os.getpid()]
            if not any(_alive(pid) for pid in alive):
                return True
            time.sleep(0.01)
        return False

    def shutdown(self) -> None:
        if self.running():
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.ntctl("shutdown", timeout=30)
        if not self.wait_stopped(10.0):
            self.reaper.cleanup()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def banner(name: str) -> None:
    print(f"\n=== {name} === {time.strftime('%H:%M:%S')}  {loadavg()}", flush=True)


# -- a client process of the machine -----------------------------------------------------
def attach_csr_clients(root: Path, count: int, session: int = 1):
    """Attach this process to the machine, register it with csrss, connect ``count`` times.

    As ``ntctl csr call`` does: KdAttachProcess (ntctl.machine.Machine), then SmExecPgm so
    smss tells csrss about the process, then CsrClientConnectToServer per connection.
    Returns (machine, [CsrClient, ...], csrss pid of the session).
    """
    from nt import csrclient
    from ntctl.machine import Machine

    m = Machine(root, session)
    try:
        m.register_with_csrss()
        clients = [csrclient.connect(m.lpc, session) for _ in range(count)]
        csrss = [
            p["pid"]
            for p in m.nt.processes()
            if p["image"] == "csrss.exe" and p.get("session") == session and p["state"] != "exited"
        ]
    except BaseException:
        m.close()
        raise
    return m, clients, (csrss[0] if csrss else None)


def temp_file_api() -> int:
    """BaseSrvGetTempFile: the lightest real CSR API (a counter under a lock, no kernel call)."""
    from ports import csr

    return csr.lookup_api("BaseSrvGetTempFile").number


def pin_all(pid: int, cpus: set[int]) -> None:
    """Set the affinity of every thread of ``pid`` (new threads inherit their creator's)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:  # gone: nothing to pin
        return
    for tid in tids:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(tid), cpus)


def finish(reaper: Reaper, root: Path | None, args) -> None:
    """End of a benchmark: kill leftovers by pid, remove the data root unless --keep."""
    failed = sys.exc_info()[1] is not None  # called from a ``finally`` after an error
    killed = reaper.cleanup()
    if killed:
        print(f"killed leftover processes: {killed}")
    if reaper.keep or failed:
        print(f"data root kept for inspection: {root}")
    elif root is not None and not getattr(args, "keep", False):
        shutil.rmtree(root, ignore_errors=True)
