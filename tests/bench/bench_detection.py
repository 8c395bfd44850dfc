"""detection: SIGKILL of a critical process -> the kernel's bugcheck -> every process gone.

Per boot (>= 10): boot the machine (``ntctl boot --detach``), list its processes
(``ntctl ps --json``), open a pidfd on every one of them, SIGKILL csrss of session 1
(``time.time()`` right before ``os.kill``), then read the kernel's ``bugcheck`` event
(image "System") and its ``bugcheck.stopped`` event (``stop_ms``: the kernel's own view
of kill_all + wait_all), and wait until the machine is stopped (launcher, kernel and
every process of its group gone). A watcher thread polls the pidfds and stamps each exit
with ``time.time()``: that gives the external view, bugcheck ts -> last process gone.
The kernel itself stays up for the dump (its 200 ms consequence window, then the dump
file), so "last process" is reported without it, and the kernel's exit on its own line.

Floor, interleaved (after each boot's machine is gone): perf-floor.md §4 (b), the same
pidfd detector on perf-floor §3's minimal component (a Python child that imported zmq,
msgpack, structlog and holds a DEALER), SIGKILLed by this process; and "all gone": as
many such children as the kernel killed, SIGKILLed one after another, until the last exit.

Targets: kill -> bugcheck p99 <= 10 ms; bugcheck -> last process gone <= 250 ms.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from tests.bench.common import (
    PY,
    REPO,
    BenchMachine,
    Figure,
    Reaper,
    Series,
    banner,
    finish,
    ratio,
    ts_epoch,
    wait_event,
)

NAME = "detection"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(NAME)
    g.add_argument("--det-boots", type=int, default=10, help="boots (one kill each)")


class ExitWatcher:
    """pidfds in a poll loop on a thread: ``exits[pid] = time.time()`` at each exit."""

    def __init__(self, pids: list[int], timeout: float = 20.0) -> None:
        self.exits: dict[int, float] = {}
        self._fds: dict[int, int] = {}
        for pid in pids:
            try:
                self._fds[os.pidfd_open(pid)] = pid
            except ProcessLookupError:
                self.exits[pid] = float("nan")
        self._deadline = time.monotonic() + timeout
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        poller = select.poll()
        for fd in self._fds:
            poller.register(fd, select.POLLIN)
        left = dict(self._fds)
        try:
            while left and time.monotonic() < self._deadline:
                for fd, _ in poller.poll(100):
                    now = time.time()
                    self.exits[left.pop(fd)] = now
                    poller.unregister(fd)
        finally:
            for fd in self._fds:
                os.close(fd)

    def join(self, timeout: float = 20.0) -> None:
        self._thread.join(timeout)


def _component(reaper: Reaper, endpoint: str) -> subprocess.Popen:
    p = reaper.popen(
        [PY, "-m", "tests.bench.echo", "component", endpoint],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    return p


def _floor(reaper: Reaper, endpoint: str, n: int) -> tuple[float, float]:
    """(kill -> pidfd of one component, first kill -> last of ``n`` others gone), in ms."""
    procs = [_component(reaper, endpoint) for _ in range(n + 1)]
    try:
        for p in procs:
            if p.stdout.readline().strip() != b"ready":
                raise RuntimeError("floor component did not start")
        time.sleep(0.03)  # let the children settle into their idle wait, as the machine's do
        watcher = ExitWatcher([procs[0].pid])
        t_kill = time.time()
        os.kill(procs[0].pid, signal.SIGKILL)
        watcher.join()
        one = (watcher.exits[procs[0].pid] - t_kill) * 1000
        rest = procs[1:]
        watcher = ExitWatcher([p.pid for p in rest])
        t_kill = time.time()
        for p in rest:
            os.kill(p.pid, signal.SIGKILL)
        watcher.join()
        return one, (max(watcher.exits.values()) - t_kill) * 1000
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()


def run(args: argparse.Namespace) -> list[Figure]:
    banner(NAME)
    reaper = Reaper()
    root = Path(tempfile.mkdtemp(prefix="ntbench.det."))
    machine = BenchMachine(root, reaper)
    figures: list[Figure] = []
    detect, stop_ms, last_gone, kernel_gone = (Series(n) for n in ("det", "stop", "last", "k"))
    floor_one, floor_all = Series("floor1"), Series("floorN")
    try:
        for i in range(args.det_boots):
            machine.boot()
            procs = machine.ps()
            victim = next(p for p in procs if p["image"] == "csrss.exe" and p["session"] == 1)
            kernel = next(p["pid"] for p in procs if p["image"] == "System")
            watcher = ExitWatcher([p["pid"] for p in procs])
            log_dir = machine.log_dir
            t_kill = time.time()
            os.kill(victim["pid"], signal.SIGKILL)
            bugcheck = wait_event(log_dir, "System", "bugcheck", 10.0, 0.002)
            stopped = wait_event(log_dir, "System", "bugcheck.stopped", 10.0)
            if not machine.wait_stopped(15.0):
                print(f"  boot {i}: the machine did not stop within 15 s; killing it")
                reaper.cleanup()
            watcher.join()
            if bugcheck is None:
                print(f"  boot {i}: no bugcheck event after the kill")
                continue
            t_bc = ts_epoch(bugcheck["ts"])
            others = [t for pid, t in watcher.exits.items() if pid != kernel]
            d_ms = (t_bc - t_kill) * 1000
            last_ms = (max(others) - t_bc) * 1000
            k_ms = (watcher.exits.get(kernel, float("nan")) - t_bc) * 1000
            s_ms = float(stopped["stop_ms"]) if stopped else float("nan")
            detect.add([d_ms])
            last_gone.add([last_ms])
            kernel_gone.add([k_ms])
            stop_ms.add([s_ms])
            n_killed = int(stopped.get("processes", 6)) if stopped else 6
            f1, fn = _floor(reaper, f"ipc://{root}/floor", max(1, n_killed))
            floor_one.add([f1])
            floor_all.add([fn])
            print(
                f"  boot {i}: {bugcheck.get('code')} {bugcheck.get('name')}; kill->bugcheck "
                f"{d_ms:6.2f} ms (floor kill->pidfd {f1:5.2f}); stop_ms {s_ms:6.1f}, "
                f"bugcheck->last process gone {last_ms:6.1f} ms ({n_killed} killed; floor "
                f"{fn:5.1f}), ->kernel gone {k_ms:6.1f} ms",
                flush=True,
            )
        rows = [
            ("kill -> bugcheck event", detect),
            ("floor: kill -> pidfd (minimal component)", floor_one),
            ("bugcheck.stopped stop_ms (kernel's view)", stop_ms),
            ("bugcheck -> last process gone (pidfds)", last_gone),
            ("floor: first kill -> last of N gone", floor_all),
            ("bugcheck -> kernel gone (after the dump)", kernel_gone),
        ]
        print("\nms over boots (one sample per boot; p99 of 10 samples is the maximum)")
        for label, s in rows:
            pooled = Series(label, [s.pooled])
            print(f"  {label:42s} {pooled.row()}")
        det, lst, stp = (Series("", [s.pooled]) for s in (detect, last_gone, stop_ms))
        f1s, fns = Series("", [floor_one.pooled]), Series("", [floor_all.pooled])
        print(
            f"ratios to the floor: detection median {ratio(det.median, f1s.median):.1f}x "
            f"p99 {ratio(det.p99, f1s.p99):.1f}x; last gone median "
            f"{ratio(lst.median, fns.median):.1f}x p99 {ratio(lst.p99, fns.p99):.1f}x"
        )
        figures += [
            Figure(NAME, "kill -> bugcheck median", det.median, "ms"),
            Figure(NAME, "kill -> bugcheck p99", det.p99, "ms", "≤ 10 ms", det.p99 <= 10),
            Figure(NAME, "floor kill -> pidfd median", f1s.median, "ms"),
            Figure(NAME, "stop_ms median (kernel)", stp.median, "ms"),
            Figure(NAME, "stop_ms p99 (kernel)", stp.p99, "ms", "≤ 250 ms", stp.p99 <= 250),
            Figure(NAME, "bugcheck -> last gone median", lst.median, "ms"),
            Figure(NAME, "bugcheck -> last gone p99", lst.p99, "ms", "≤ 250 ms", lst.p99 <= 250),
            Figure(NAME, "floor kill N -> last gone median", fns.median, "ms"),
            Figure(
                NAME,
                "bugcheck -> kernel gone median",
                Series("", [kernel_gone.pooled]).median,
                "ms",
            ),
        ]
    finally:
        machine.shutdown()
        finish(reaper, root, args)
    return figures


if __name__ == "__main__":
    from tests.bench.common import run_alone

    run_alone(__doc__, add_arguments, run)
