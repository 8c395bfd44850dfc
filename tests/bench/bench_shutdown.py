"""shutdown: ``ntctl shutdown`` of a machine running every shipped service (issue 9).

Boot the shipped configuration, wait for the SCM's auto-start to settle, ``ntctl
shutdown`` (>= 5 boots). Measured: ``shutdown.initiated`` (winlogon) -> ``kernel.exit``
(System, after the hives were closed) and the command's start -> every process of the
machine gone. Printed per shutdown: winlogon's phases (apps, preshutdown, services), the
kernel's (smss, kernel) and the SCM's two rounds (PRESHUTDOWN in PreshutdownOrder, then
SHUTDOWN; who was late). Target: median <= 1.0 s with the default (scaled) timeouts.
Floor, interleaved: SIGTERM to as many minimal components (Python + zmq + msgpack +
structlog, a DEALER) as the machine has processes, until the last is gone. The sessions
benchmark measures the same with a second session.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tests.bench.bench_sessions import shutdowns
from tests.bench.common import BenchMachine, Figure, Reaper, banner, finish

NAME = "shutdown"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(NAME)
    g.add_argument("--shutdown-runs", type=int, default=7, help="measured shutdowns (boots)")


def run(args: argparse.Namespace) -> list[Figure]:
    banner(NAME)
    reaper = Reaper()
    root = Path(tempfile.mkdtemp(prefix="ntbench.shutdown."))
    machine = BenchMachine(root, reaper)
    try:
        machine.boot()  # warm-up: the first boot of the root creates the hives
        machine.shutdown()
        return shutdowns(args.shutdown_runs, machine, reaper, sessions=0, name=NAME)
    finally:
        machine.shutdown()
        finish(reaper, root, args)


if __name__ == "__main__":
    from tests.bench.common import run_alone

    run_alone(__doc__, add_arguments, run)
