"""cli: wall time of read-only ``ntctl`` verbs against a running machine, and the floor.

The floor is ``python -c pass`` from the same venv: what any Python command costs before
it does anything. Each repetition runs every command (floor included) ``--cli-runs``
times, in an interleaved order, so noise from the other users of the machine hits all of
them alike. Commands run as a user runs them: the ``ntctl`` console script of the venv,
output to a pipe. Target: median <= 150 ms for every verb (issue 10).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from tests.bench.common import (
    PY,
    BenchMachine,
    Figure,
    Reaper,
    Series,
    banner,
    finish,
    ratio,
    time_command,
)

NAME = "cli"
TARGET_S = 0.150
SESSION_MANAGER = r"HKLM\SYSTEM\CurrentControlSet\Control\Session Manager"


def commands(root: Path) -> dict[str, list[str]]:
    ntctl = str(Path(PY).parent / "ntctl")
    r = ["--root", str(root)]
    return {
        "floor: python -c pass": [PY, "-c", "pass"],
        "ntctl --help": [ntctl, "--help"],
        "ntctl ps": [ntctl, "ps", *r],
        "ntctl logs -n 20": [ntctl, "logs", "-n", "20", *r],
        "ntctl reg query": [ntctl, "reg", "query", SESSION_MANAGER, *r],
        "ntctl analyze --show 0xEF": [ntctl, "analyze", "--show", "0xEF", *r],
        "ntctl sc query": [ntctl, "sc", "query", *r],
        "ntctl events System --newest 20": [ntctl, "events", "System", "--newest", "20", *r],
        "ntctl session": [ntctl, "session", *r],
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(NAME)
    g.add_argument("--cli-reps", type=int, default=5, help="repetitions (default 5)")
    g.add_argument("--cli-runs", type=int, default=10, help="runs per command per repetition")


def run(args: argparse.Namespace) -> list[Figure]:
    banner(NAME)
    reaper = Reaper()
    root = Path(tempfile.mkdtemp(prefix="ntbench.cli."))
    machine = BenchMachine(root, reaper)
    # As a user runs them: with the .pyc files Python writes on the first run (a session
    # or CI may set PYTHONDONTWRITEBYTECODE, and every run would compile ntctl anew).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["NTMODEL_FAULTS"] = ""
    cmds = commands(root)
    series = {name: Series(name) for name in cmds}
    try:
        machine.boot()
        for cmd in cmds.values():  # warm the page cache and the .pyc files once
            time_command(cmd, env)
        for rep in range(args.cli_reps):
            samples: dict[str, list[float]] = {name: [] for name in cmds}
            names = list(cmds)
            for i in range(args.cli_runs):
                order = names[i % len(names) :] + names[: i % len(names)]
                for name in order:
                    samples[name].append(time_command(cmds[name], env))
            for name, xs in samples.items():
                series[name].add(xs)
            print(f"  repetition {rep + 1}/{args.cli_reps} done", flush=True)
    finally:
        machine.shutdown()
        finish(reaper, root, args)
    floor = series["floor: python -c pass"]
    print("\nms per command (wall time, output to a pipe)")
    figures: list[Figure] = [Figure(NAME, "floor python -c pass median", floor.median, "s")]
    for name, s in series.items():
        print(f"  {name:28s} {s.row(1000)}  ×floor {ratio(s.median, floor.median):.2f}")
        if s is floor:
            continue
        figures.append(
            Figure(NAME, f"{name} median", s.median, "s", "≤ 0.150 s", s.median <= TARGET_S)
        )
        figures.append(Figure(NAME, f"{name} / floor", ratio(s.median, floor.median), "×"))
    return figures


if __name__ == "__main__":
    from tests.bench.common import run_alone

    run_alone(__doc__, add_arguments, run, "--keep")
