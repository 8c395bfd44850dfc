"""sessions: the Windows shutdown with two sessions, and sessions made on demand (issue 9).

Shutdown (>= 5 boots): boot, make one session on demand (so two sessions run winlogon),
then ``ntctl shutdown``. Measured: ``shutdown.initiated`` (winlogon) -> ``kernel.exit``
(System, after the hives were closed) and the command's start -> every process of the
machine gone; the phase timeline (apps, preshutdown, services from winlogon; smss and
kernel from System). Target: median <= 1.0 s. Floor, interleaved: SIGTERM to as many
minimal components (Python + zmq + msgpack + structlog, a DEALER) as the machine has
processes, until the last is gone.

New sessions, on one machine: a request (RpcCreateSession on LSMApi, from one attached
client) -> ``logon.ready`` of that session's winlogon ("Press Ctrl+Alt+Del"), for 1
session (>= 5 times), for 10 requested at once (parallel smss instances) and for 10 one
after the other (3 times each); every session is closed (RpcLogoff) between rounds. Floor:
3 sequential process starts (instance -> csrss -> winlogon), each a fork of a
pre-imported interpreter opening a DEALER, as the zygote starts the model's processes.
Memory: Σ USS of each session's processes (csrss + winlogon + the LogonUI that draws the
notice, measured once every LogonUI is ready).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil

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
    read_events,
    ts_epoch,
    wait_event,
)

NAME = "sessions"
MIB = 2**20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(NAME)
    g.add_argument("--shutdowns", type=int, default=5, help="measured shutdowns")
    g.add_argument("--rounds", type=int, default=3, help="rounds of 10 sessions (each way)")


def lsm_client(machine: BenchMachine, *args: str) -> dict:
    out = subprocess.run(
        [PY, "-m", "tests.cluster.session_client", str(machine.root), *args],
        cwd=REPO,
        env=machine.env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if out.returncode != 0:
        raise RuntimeError(f"session client failed:\n{out.stderr}")
    return json.loads(out.stdout)


def _floor_terminate(reaper: Reaper, endpoint: str, n: int) -> float:
    procs = []
    for _ in range(n):
        p = reaper.popen(
            [PY, "-m", "tests.bench.echo", "component", endpoint],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        procs.append(p)
    for p in procs:
        if p.stdout.readline().strip() != b"ready":
            raise RuntimeError("floor component did not start")
    t0 = time.monotonic()
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait()
    return time.monotonic() - t0


def _floor_fork_chain(endpoint: str, n: int = 3) -> float:
    """``n`` process starts one after the other, the way the model starts its processes:
    a fork of an interpreter that has already imported everything (the zygote), each
    child opening a zmq context and a DEALER and saying ready before the next is made.
    Seconds from the first fork to the last ready."""
    import os

    import zmq

    t0 = time.monotonic()
    for _ in range(n):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: what a new process does before it can serve
            os.close(r)
            ctx = zmq.Context()
            sock = ctx.socket(zmq.DEALER)
            sock.linger = 0
            sock.connect(endpoint)
            os.write(w, b"R")
            os._exit(0)
        os.close(w)
        os.read(r, 1)
        os.close(r)
        os.waitpid(pid, 0)
    return time.monotonic() - t0


def _ready_times(
    machine: BenchMachine, sessions: list[int], since: float, timeout: float = 60
) -> list[float]:
    """logon.ready of each session after ``since`` (ids are reused between rounds)."""
    deadline = time.monotonic() + timeout
    found: dict[int, float] = {}
    while time.monotonic() < deadline and len(found) < len(sessions):
        for ev in read_events(machine.log_dir, "winlogon.exe", "logon.ready"):
            t = ts_epoch(ev["ts"])
            if ev["session"] in sessions and t >= since:
                found[ev["session"]] = t
        time.sleep(0.01)
    if len(found) < len(sessions):
        raise RuntimeError(f"no logon.ready for sessions {set(sessions) - set(found)}")
    return [found[s] for s in sessions]


def _make(machine: BenchMachine, how: str, n: int) -> tuple[list[float], list[int]]:
    """(seconds from the request to each session's logon.ready, the session ids)."""
    out = lsm_client(machine, how, str(n))
    ids = [r["session"]["session_id"] for r in out["results"]]
    if any(r["error"] for r in out["results"]):
        raise RuntimeError(f"session request failed: {out['results']}")
    return [t - out["t0"] for t in _ready_times(machine, ids, out["t0"])], ids


def _logonui_ready(machine: BenchMachine, ids: list[int], since: float) -> None:
    """Each session's LogonUI has drawn the notice (so Σ USS counts it in every session)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready = {
            ev["session"]
            for ev in read_events(machine.log_dir, "logonui.exe", "logonui.ready")
            if ts_epoch(ev["ts"]) >= since
        }
        if ready >= set(ids):
            return
        time.sleep(0.01)
    raise RuntimeError("a LogonUI of the new sessions never became ready")


def _uss_per_session(machine: BenchMachine, ids: list[int]) -> list[float]:
    sums = dict.fromkeys(ids, 0.0)
    for p in machine.ps():
        if p["session"] in sums:
            try:
                sums[p["session"]] += psutil.Process(p["pid"]).memory_full_info().uss / MIB
            except psutil.Error:
                pass
    return list(sums.values())


def _scm_rounds(log_dir: Path) -> str:
    """The SCM's side of the timeline: each round's length, and who was late."""
    out = []
    for e in read_events(log_dir, "services.exe", "scm.shutdown_round"):
        late = f" late {','.join(e['timeouts'])}" if e.get("timeouts") else ""
        out.append(f"scm {e['round']} {e['ms']:.0f} ({e['services']} svc{late})")
    return "  ".join(out)


def shutdowns(
    runs: int,
    machine: BenchMachine,
    reaper: Reaper,
    *,
    sessions: int = 1,
    name: str = NAME,
    before: Callable[[BenchMachine], None] | None = None,
) -> list[Figure]:
    """``runs`` boots, each with ``sessions`` sessions made on demand (or, with 0, the
    SCM's auto-start complete), ``before`` (not timed), then ``ntctl shutdown``."""
    root = machine.root
    machine_view, command_view, floor = Series("machine"), Series("command"), Series("floor")
    phases: dict[str, list[float]] = {}
    count = 0
    for i in range(runs):
        machine.boot()
        if sessions:
            _make(machine, "new", sessions)
        else:
            wait_event(machine.log_dir, "services.exe", "scm.auto_start_complete", 30)
        if before is not None:
            before(machine)
        count = len(machine.ps())
        if i % 2:
            floor.add([_floor_terminate(reaper, f"ipc://{root}/floor", count)])
        log_dir = machine.log_dir
        t0 = time.time()
        machine.ntctl("shutdown", timeout=60)
        machine.wait_stopped(30)
        gone = time.time()
        initiated = read_events(log_dir, "winlogon.exe", "shutdown.initiated")
        exited = read_events(log_dir, "System", "kernel.exit")
        if i % 2 == 0:
            floor.add([_floor_terminate(reaper, f"ipc://{root}/floor", count)])
        if not initiated or not exited:
            print(f"  shutdown {i}: events missing")
            continue
        machine_view.add([ts_epoch(exited[0]["ts"]) - ts_epoch(initiated[0]["ts"])])
        command_view.add([gone - t0])
        steps = read_events(log_dir, "winlogon.exe", "shutdown.phase")
        steps += read_events(log_dir, "System", "shutdown.phase")
        timeline = "  ".join(f"{e['phase']} {e['ms']:.0f}" for e in steps)
        for e in steps:
            phases.setdefault(e["phase"], []).append(e["ms"])
        print(
            f"  shutdown {i}: initiated -> kernel.exit {machine_view.reps[-1][0] * 1000:6.0f} ms,"
            f" command -> all gone {command_view.reps[-1][0] * 1000:6.0f} ms; phases (ms): "
            f"{timeline}; {_scm_rounds(log_dir)}; floor SIGTERM x{count}"
            f" {floor.reps[-1][0] * 1000:5.0f} ms",
            flush=True,
        )
    m, c, f = (Series(s.name, [s.pooled]) for s in (machine_view, command_view, floor))
    print("\nshutdown, ms over boots")
    for label, s in (
        ("shutdown.initiated -> kernel.exit (hives closed)", m),
        ("ntctl shutdown start -> every process gone", c),
        (f"floor: SIGTERM {count} components -> all gone", f),
    ):
        print(f"  {label:52s} {s.row(1000)}")
    print(
        "  phase medians (ms): "
        + ", ".join(f"{k} {sorted(v)[len(v) // 2]:.1f}" for k, v in phases.items())
    )
    return [
        Figure(name, "shutdown initiated -> hives closed median", m.median, "s", "≤ 1.00 s", m.median <= 1.0),
        Figure(name, "shutdown initiated -> hives closed p99", m.p99, "s"),
        Figure(name, "ntctl shutdown -> all gone median", c.median, "s"),
        Figure(name, "floor SIGTERM components median", f.median, "s"),
        Figure(name, "shutdown / floor", ratio(m.median, f.median), "×"),
    ]  # fmt: skip


def _new_sessions(args: argparse.Namespace, machine: BenchMachine, reaper: Reaper) -> list[Figure]:
    one, parallel, serial, floor, uss = (
        Series(n) for n in ("one", "parallel", "serial", "floor", "uss")
    )
    machine.boot()
    wait_event(machine.log_dir, "lsm.exe", "lsm.ready", 20)
    for _ in range(max(5, args.rounds)):
        took, ids = _make(machine, "new", 1)
        one.add(took)
        lsm_client(machine, "logoff", *map(str, ids))
        floor.add([_floor_fork_chain(f"ipc://{machine.root}/floor", 3)])
    for i in range(args.rounds):
        took, ids = _make(machine, "new", 10)
        parallel.add([max(took)])
        _logonui_ready(machine, ids, time.time() - max(took) - 0.2)
        uss.add(_uss_per_session(machine, ids))
        lsm_client(machine, "logoff", *map(str, ids))
        took, ids = _make(machine, "serial", 10)
        serial.add([max(took)])
        lsm_client(machine, "logoff", *map(str, ids))
        print(
            f"  round {i}: 10 at once {parallel.reps[-1][0] * 1000:6.0f} ms, 10 one after the"
            f" other {serial.reps[-1][0] * 1000:6.0f} ms",
            flush=True,
        )
    machine.shutdown()
    o, p, s, f, u = (Series(x.name, [x.pooled]) for x in (one, parallel, serial, floor, uss))
    print("\nnew sessions, ms (request -> logon.ready)")
    for label, x in (
        ("1 session", o),
        ("10 at once (last ready)", p),
        ("10 one after the other (last ready)", s),
        ("floor: 3 sequential forks (zygote-like)", f),
    ):
        print(f"  {label:40s} {x.row(1000)}")
    print(f"  Σ USS per session (csrss + winlogon + LogonUI), MiB: {u.row(1)}")
    return [
        Figure(NAME, "1 session -> Ctrl+Alt+Del median", o.median, "s"),
        Figure(NAME, "1 session p99", o.p99, "s"),
        Figure(NAME, "1 session / floor (3 starts)", ratio(o.median, f.median), "×"),
        Figure(NAME, "10 at once -> last ready median", p.median, "s"),
        Figure(NAME, "10 one after the other median", s.median, "s"),
        Figure(NAME, "serial / parallel", ratio(s.median, p.median), "×"),
        Figure(NAME, "Σ USS per session median", u.median, "MiB"),
    ]


def run(args: argparse.Namespace) -> list[Figure]:
    banner(NAME)
    reaper = Reaper()
    root = Path(tempfile.mkdtemp(prefix="ntbench.sessions."))
    machine = BenchMachine(root, reaper)
    figures: list[Figure] = []
    try:
        machine.boot()  # warm-up: the first boot of the root creates the hives
        machine.shutdown()
        figures += shutdowns(args.shutdowns, machine, reaper)
        figures += _new_sessions(args, machine, reaper)
    finally:
        machine.shutdown()
        finish(reaper, root, args)
    return figures


if __name__ == "__main__":
    from tests.bench.common import run_alone

    run_alone(__doc__, add_arguments, run)
