"""fault_windows: kill -> bugcheck and kill -> last gone in the windows of issue 6.

Each window is hit the way tests/cluster/test_fault_windows.py hits it (a fault hook from
``NTMODEL_FAULTS``, a registry overlay), on boots through ``ntctl boot --detach``:

    1 kernel-at-fork   the kernel SIGKILLed while winlogon's zygote fork is not yet
                       adopted: kill -> last process gone (pidfds on every process the
                       kernel created, the held fork included)
    2 bugcheck-create  smss killed while winlogon is being created: the kernel's
                       bugcheck.stopped stop_ms, bugcheck -> last proc.exit
    3 initial-suspend  winlogon SIGKILLed before SmExecPgm / wininit or winlogon before
                       SbCreateSession: kill -> 0xC000021A, kill -> last process gone
    4 instance-death   session 1's smss instance SIGKILLed after starting csrss
    5 late-detection   wininit exits before it is critical (session 1 in its Execute delay)

"kill" is the timestamp of the event the fault hook logs right before the kill (or the
kernel's proc.exit of the process that exits); "last gone" is the last proc.exit the
kernel logged (its pidfd view), or for window 1 (no kernel left) this process's pidfds.
The floor, interleaved after each boot: perf-floor's minimal component, SIGKILLed and
seen through a pidfd (one; and N killed one after another until the last is gone).
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.bench.bench_detection import ExitWatcher, _floor
from tests.bench.common import (
    PY,
    REPO,
    Figure,
    Reaper,
    Series,
    banner,
    finish,
    ratio,
    read_events,
    ts_epoch,
    wait_event,
)

NAME = "fault_windows"
EXECUTE_WINLOGON = (
    "Windows Registry Editor Version 5.00\n\n"
    "[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Control\\Session Manager]\n"
    '"Execute"=hex(7):77,00,69,00,6e,00,6c,00,6f,00,67,00,6f,00,6e,00,2e,00,65,00,78,00,'
    "65,00,00,00,00,00\n"
)


@dataclass(frozen=True)
class Window:
    key: str
    faults: str
    kill_image: str  # the log file prefix holding the kill's event
    kill_event: str
    overlay: bool = False


WINDOWS = [
    Window("2 bugcheck-create", "System:bugcheck_while_creating=winlogon.exe", "System",
           "fault.bugcheck_while_creating"),
    Window("3 initial-suspend (instance)", "smss.exe@1:kill_initial_command=before_exec_pgm",
           "smss.exe", "fault.kill_initial_command"),
    Window("3 initial-suspend (master)", "smss.exe:kill_initial_command=before_sb_create_session",
           "smss.exe", "fault.kill_initial_command"),
    Window("4 instance-death", "smss.exe@1:die_at=subsystem_started", "smss.exe", "fault.die"),
    Window("5 late-detection", "wininit.exe:exit_before_critical=0xC0000005", "wininit.exe",
           "proc.exit_self", overlay=True),
]  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(NAME)
    g.add_argument("--fw-boots", type=int, default=5, help="boots per window (default 5)")


def _boot(reaper: Reaper, root: Path, faults: str, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, NTMODEL_FAULTS=faults, PYTHONDONTWRITEBYTECODE="1")
    return reaper.popen(
        [PY, "-m", "ntctl", "boot", "--detach", *extra, "--root", str(root)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _log_dir(root: Path) -> Path:
    return (root / "logs" / "latest").resolve()


def _crash(reaper: Reaper, root: Path, w: Window, overlay: Path) -> tuple[float, float, float]:
    """(kill -> bugcheck, kill -> last gone, kernel stop_ms) of one crashing boot, in ms."""
    launcher = _boot(reaper, root, w.faults, *(["--reg", str(overlay)] if w.overlay else []))
    launcher.wait(90)
    log_dir = _log_dir(root)
    bugcheck = wait_event(log_dir, "System", "bugcheck", 5.0)
    stopped = wait_event(log_dir, "System", "bugcheck.stopped", 5.0)
    kills = read_events(log_dir, w.kill_image, w.kill_event)
    if bugcheck is None or stopped is None or not kills:
        raise RuntimeError(f"{w.key}: no bugcheck or no kill event in {log_dir}")
    t_kill = min(ts_epoch(e["ts"]) for e in kills)
    t_bc = ts_epoch(bugcheck["ts"])
    exits = [ts_epoch(e["ts"]) for e in read_events(log_dir, "System", "proc.exit")]
    return (t_bc - t_kill) * 1000, (max(exits) - t_kill) * 1000, float(stopped["stop_ms"])


def _kernel_at_fork(reaper: Reaper, root: Path) -> tuple[float, int]:
    """(kernel kill -> last process gone in ms, processes watched) of one boot."""
    latest = root / "logs" / "latest"
    before = os.readlink(latest) if latest.is_symlink() else None
    launcher = _boot(reaper, root, "zygote:hold_fork=winlogon")
    try:
        log_dir = None
        deadline = time.monotonic() + 60
        created = None
        while created is None and time.monotonic() < deadline:
            new = latest.is_symlink() and os.readlink(latest) != before
            log_dir = _log_dir(root) if new else None
            found = read_events(log_dir, "System", "proc.create") if log_dir else []
            created = next((e for e in found if e.get("child_image") == "winlogon.exe"), None)
            time.sleep(0.01)
        if created is None:
            raise RuntimeError("kernel-at-fork: winlogon was never created")
        pids = [e["child_pid"] for e in read_events(log_dir, "System", "proc.create")]
        reaper.pids.update(pids)
        watcher = ExitWatcher(pids)
        t_kill = time.time()
        os.kill(created["pid"], signal.SIGKILL)
        watcher.join()
        ended = [t for t in watcher.exits.values() if not math.isnan(t)]  # nan: gone before
        return (max(ended) - t_kill) * 1000, len(ended)
    finally:
        launcher.wait(30)


def run(args: argparse.Namespace) -> list[Figure]:
    banner(NAME)
    reaper = Reaper()
    root = Path(tempfile.mkdtemp(prefix="ntbench.fw."))
    overlay = root / "execute.reg"
    overlay.write_text(EXECUTE_WINLOGON)
    fork_gone = Series("1 kernel-at-fork")
    detect = {w.key: Series(w.key) for w in WINDOWS}
    gone = {w.key: Series(w.key) for w in WINDOWS}
    stop = {w.key: Series(w.key) for w in WINDOWS}
    floor_one, floor_all = Series("floor1"), Series("floorN")
    figures: list[Figure] = []
    try:
        for i in range(args.fw_boots):
            ms, n = _kernel_at_fork(reaper, root)
            fork_gone.add([ms])
            f1, fn = _floor(reaper, f"ipc://{root}/floor", n)
            floor_one.add([f1])
            floor_all.add([fn])
            print(f"  {i}: 1 kernel-at-fork: kill -> last of {n} gone {ms:7.1f} ms "
                  f"(floor {fn:5.1f})", flush=True)  # fmt: skip
            for w in WINDOWS:
                d, g, s = _crash(reaper, root, w, overlay)
                detect[w.key].add([d])
                gone[w.key].add([g])
                stop[w.key].add([s])
                print(f"  {i}: {w.key:30s} kill -> bugcheck {d:7.1f} ms, kill -> last gone "
                      f"{g:7.1f} ms, stop_ms {s:6.1f}", flush=True)  # fmt: skip
        f1, fn = Series("", [floor_one.pooled]), Series("", [floor_all.pooled])
        print(f"\nms over {args.fw_boots} boots per window (p99 of few samples is the maximum)")
        print(f"  {'floor: kill -> pidfd (one component)':44s} {f1.row()}")
        print(f"  {'floor: kill N -> last gone':44s} {fn.row()}")
        fg = Series("", [fork_gone.pooled])
        print(f"  {'1 kernel-at-fork: kill -> last gone':44s} {fg.row()}")
        print(f"    ratio to the floor: median {ratio(fg.median, fn.median):.1f}x "
              f"p99 {ratio(fg.p99, fn.p99):.1f}x")  # fmt: skip
        figures += [
            Figure(NAME, "1 kernel-at-fork kill -> last gone median", fg.median, "ms"),
            Figure(NAME, "1 kernel-at-fork kill -> last gone p99", fg.p99, "ms", "≤ 1000 ms",
                   fg.p99 <= 1000),
            Figure(NAME, "floor kill -> pidfd median", f1.median, "ms"),
        ]  # fmt: skip
        for w in WINDOWS:
            d, g, s = (Series("", [x[w.key].pooled]) for x in (detect, gone, stop))
            print(f"  {w.key + ': kill -> bugcheck':44s} {d.row()}")
            print(f"  {w.key + ': kill -> last gone':44s} {g.row()}")
            print(f"  {w.key + ': stop_ms (kernel)':44s} {s.row()}")
            print(f"    ratio to the floor: kill -> bugcheck median "
                  f"{ratio(d.median, f1.median):.1f}x p99 {ratio(d.p99, f1.p99):.1f}x")  # fmt: skip
            figures += [
                Figure(NAME, f"{w.key} kill -> bugcheck median", d.median, "ms"),
                Figure(NAME, f"{w.key} kill -> bugcheck p99", d.p99, "ms", "≤ 100 ms",
                       d.p99 <= 100),
                Figure(NAME, f"{w.key} kill -> last gone p99", g.p99, "ms", "≤ 350 ms",
                       g.p99 <= 350),
                Figure(NAME, f"{w.key} stop_ms p99", s.p99, "ms", "≤ 250 ms", s.p99 <= 250),
            ]  # fmt: skip
    finally:
        reaper.cleanup()
        finish(reaper, root, args)
    return figures


if __name__ == "__main__":
    from tests.bench.common import run_alone

    run_alone(__doc__, add_arguments, run)
