"""chaos: trials per minute of ``ntctl chaos`` with ``--jobs 1`` and ``--jobs 2``.

The same campaign (a seed, ``--chaos-trials`` trials, every victim and phase) runs
through the user's entry point once per job count, on a scratch directory; the figure is
trials finished per minute of wall time, the template boot included (a user waits for
it too); then the same for the logon phase alone with ``--jobs 2`` (its trials also make
a user and log on). Informational: a trial is two boots and a kill, so the figure
follows the machine's load, and the anomalies found are printed beside it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

from tests.bench.common import PY, REPO, Figure, banner

NAME = "chaos"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(NAME)
    g.add_argument("--chaos-trials", type=int, default=12, help="trials per job count")
    g.add_argument("--chaos-seed", type=int, default=7, help="the campaign's seed")


def _campaign(seed: int, trials: int, jobs: int, phase: str = "") -> tuple[float, dict]:
    with tempfile.TemporaryDirectory(prefix="ntbench.chaos.") as tmp:
        report = Path(tmp) / "report.json"
        t0 = time.monotonic()
        subprocess.run(
            [
                PY,
                "-m",
                "ntctl",
                "chaos",
                "--seed",
                str(seed),
                "--trials",
                str(trials),
                "--jobs",
                str(jobs),
                "--report",
                str(report),
                "--scratch",
                str(Path(tmp) / "s"),
                *(["--phase", phase] if phase else []),
            ],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            timeout=60 * trials,
            check=False,
        )
        wall = time.monotonic() - t0
        return wall, json.loads(report.read_text())


def run(args: argparse.Namespace) -> list[Figure]:
    banner(NAME)
    figures = []
    for jobs, phase in ((1, ""), (2, ""), (2, "logon")):
        wall, report = _campaign(args.chaos_seed, args.chaos_trials, jobs, phase)
        s = report["summary"]
        per_minute = s["trials"] * 60 / wall
        what = f"--jobs {jobs}" + (f" --phase {phase}" if phase else "")
        print(
            f"  {what}: {s['trials']} trials in {wall:.1f} s = {per_minute:.1f}/min "
            f"({s['ok']} ok, {s['missed']} missed, {s['anomalies']} anomalies)"
        )
        figures.append(Figure(NAME, f"trials per minute, {what}", per_minute, "/min"))
    return figures
