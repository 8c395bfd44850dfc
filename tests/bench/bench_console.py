"""console: `ntctl console PID` and a keystroke's round trip through csrss and condemo.exe.

On one booted machine with condemo.exe started by `ntctl start`:

- CLI: wall time of ``ntctl console PID`` (a snapshot: attach, AttachConsole, read the
  screen, FreeConsole) next to ``ntctl ps`` and the floor ``python -c pass``, interleaved;
- echo: from WriteConsoleInput("echo N" + Enter) to "N" on condemo's screen, read back
  with ReadConsoleOutputString, from a CSR client in this process; the floor is one bare
  CSR round trip on the same connection (GetNumberOfInputEvents). condemo's reader
  thread sits in ReadConsole, parked in csrss until the Enter arrives, so the echo is
  the wire, csrss's wait completion and condemo's answer.

Informational: no target in the issue; medians, p99 and ratios to the floors.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from tests.bench.common import (
    PY,
    REPO,
    BenchMachine,
    Figure,
    Reaper,
    Series,
    attach_csr_clients,
    banner,
    finish,
    ratio,
    time_command,
)

NAME = "console"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(NAME)
    g.add_argument("--console-reps", type=int, default=3, help="repetitions (default 3)")
    g.add_argument("--console-runs", type=int, default=8, help="runs per repetition")


def _echo_round_trips(root: Path, pid: int, runs: int) -> tuple[list[float], list[float]]:
    """(echo seconds, bare CSR round-trip seconds), measured by a child process: it
    attaches to the machine as ntctl.exe does, and an attached process belongs to the
    machine until it exits (the kernel ends it with the rest at shutdown)."""
    r = subprocess.run(
        [PY, "-m", "tests.bench.bench_console", "--echo-child", str(root), str(pid), str(runs)],
        cwd=REPO,
        env=dict(os.environ, NTMODEL_FAULTS=""),
        capture_output=True,
        text=True,
        timeout=60 + 10 * runs,
    )
    if r.returncode != 0:
        raise RuntimeError(f"the echo client failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    out = json.loads(r.stdout.splitlines()[-1])
    return out["echo"], out["bare"]


def echo_child(root: Path, pid: int, runs: int) -> None:
    from ntctl.conattach import AttachedConsole

    m, (csr,), _ = attach_csr_clients(root, 1)
    try:
        con = AttachedConsole(csr, pid, "condemo.exe")
        echoes, bare = [], []
        for i in range(runs):
            t0 = time.perf_counter()
            con.pending_input()
            bare.append(time.perf_counter() - t0)
            word = f"bench{os.getpid()}x{i}"
            t0 = time.perf_counter()
            con.send(f"echo {word}")
            deadline = t0 + 5.0
            while time.perf_counter() < deadline and word not in con.screen()[0]:
                pass
            echoes.append(time.perf_counter() - t0)
            time.sleep(0.6)  # condemo back at its idle poll: each sample pays the same wait
        con.close()
    finally:
        m.close()
    print(json.dumps({"echo": echoes, "bare": bare}))


def run(args: argparse.Namespace) -> list[Figure]:
    banner(NAME)
    reaper = Reaper()
    root = Path(tempfile.mkdtemp(prefix="ntbench.console."))
    machine = BenchMachine(root, reaper)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["NTMODEL_FAULTS"] = ""
    ntctl = str(Path(PY).parent / "ntctl")
    series = {n: Series(n) for n in ("floor: python -c pass", "ntctl ps", "ntctl console PID")}
    echo, bare = Series("echo round trip"), Series("bare CSR round trip")
    try:
        machine.boot()
        started = machine.ntctl("start", "condemo.exe", "/tick", "3600", "--json")
        if started.returncode != 0:
            raise RuntimeError(f"ntctl start failed:\n{started.stdout}\n{started.stderr}")
        pid = json.loads(started.stdout)["pid"]
        reaper.pids.add(pid)
        r = ["--root", str(root)]
        cmds = {
            "floor: python -c pass": [PY, "-c", "pass"],
            "ntctl ps": [ntctl, "ps", *r],
            "ntctl console PID": [ntctl, "console", str(pid), *r],
        }
        for cmd in cmds.values():  # warm the page cache and the .pyc files once
            time_command(cmd, env)
        for rep in range(args.console_reps):
            samples: dict[str, list[float]] = {n: [] for n in cmds}
            names = list(cmds)
            for i in range(args.console_runs):
                for name in names[i % len(names) :] + names[: i % len(names)]:
                    samples[name].append(time_command(cmds[name], env))
            for name, xs in samples.items():
                series[name].add(xs)
            e, b = _echo_round_trips(root, pid, args.console_runs)
            echo.add(e)
            bare.add(b)
            print(f"  repetition {rep + 1}/{args.console_reps} done", flush=True)
    finally:
        machine.shutdown()
        finish(reaper, root, args)
    floor = series["floor: python -c pass"]
    print("\nms (wall time)")
    figures = [Figure(NAME, "floor python -c pass median", floor.median, "s")]
    for name in ("ntctl ps", "ntctl console PID"):
        s = series[name]
        print(f"  {name:24s} {s.row(1000)}  ×floor {ratio(s.median, floor.median):.2f}")
        figures.append(Figure(NAME, f"{name} median", s.median, "s"))
        figures.append(Figure(NAME, f"{name} / floor", ratio(s.median, floor.median), "×"))
    print(f"  {'bare CSR round trip':24s} {bare.row(1000)}")
    print(
        f"  {'echo round trip':24s} {echo.row(1000)}  ×bare {ratio(echo.median, bare.median):.0f}"
    )
    figures.append(Figure(NAME, "bare CSR round trip median", bare.median * 1000, "ms"))
    figures.append(Figure(NAME, "keystroke → echo on screen median", echo.median * 1000, "ms"))
    figures.append(Figure(NAME, "echo / bare CSR round trip", ratio(echo.median, bare.median), "×"))
    return figures


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--echo-child"]:
        echo_child(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    else:
        from tests.bench.common import run_alone

        run_alone(__doc__, add_arguments, run, "--keep")
