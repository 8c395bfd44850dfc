"""shutdown: ``ntctl shutdown`` of a machine running every shipped service, two users
logged on (issue 9).

Boot the shipped configuration (the warm-up boot makes the accounts with ``ntctl user
add``), wait for the SCM's auto-start to settle, log two users on through the real
``ntctl logon`` path: alice on the console session, bob on a session made with ``ntctl
session new`` (each to ``explorer.ready``), then ``ntctl shutdown`` (>= 5 boots).
Measured: ``shutdown.initiated`` (winlogon) -> ``kernel.exit`` (System, after the hives
were closed) and the command's start -> every process of the machine gone. Printed per
shutdown: winlogon's phases (apps, preshutdown, services), the kernel's (smss, kernel)
and the SCM's two rounds (PRESHUTDOWN in PreshutdownOrder, then SHUTDOWN; who was late).
Target: median <= 1.0 s with the default (scaled) timeouts. Floor, interleaved: SIGTERM
to as many minimal components (Python + zmq + msgpack + structlog, a DEALER) as the
machine has processes, until the last is gone. The sessions benchmark measures the same
with a second session and nobody logged on.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

from tests.bench.bench_sessions import shutdowns
from tests.bench.common import (
    PY,
    REPO,
    BenchMachine,
    Figure,
    Reaper,
    banner,
    finish,
    read_events,
    ts_epoch,
)

NAME = "shutdown"
USERS = {"alice": "Al1ce-shutd0wn-bench", "bob": "B0b-shutd0wn-bench"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(NAME)
    g.add_argument("--shutdown-runs", type=int, default=7, help="measured shutdowns (boots)")


def _ntctl_secret(machine: BenchMachine, secret: str, *args: str) -> str:
    """ntctl with the secret on stdin (never argv); its stdout, or RuntimeError."""
    r = subprocess.run(
        [PY, "-m", "ntctl", *args, "--root", str(machine.root)],
        cwd=REPO,
        env=machine.env,
        input=secret + "\n",
        capture_output=True,
        text=True,
        timeout=90,
    )
    if r.returncode != 0:
        raise RuntimeError(f"ntctl {args[0]} {args[1]} failed:\n{r.stdout}{r.stderr}")
    return r.stdout


def _wait(machine: BenchMachine, image: str, event: str, since: float, **match: object) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for ev in read_events(machine.log_dir, image, event):
            if ts_epoch(ev["ts"]) >= since and all(ev.get(k) == v for k, v in match.items()):
                return
        time.sleep(0.01)
    raise RuntimeError(f"no {event} {match} of {image}")


def add_users(machine: BenchMachine) -> None:
    for name, password in USERS.items():
        _ntctl_secret(machine, password, "user", "add", name, "--password-stdin")


def two_users_logged_on(machine: BenchMachine) -> None:
    """alice on the console, bob on a session made on demand, through ``ntctl logon``."""
    t0 = time.time() - 1
    _ntctl_secret(machine, USERS["alice"], "logon", "alice", "--password-stdin")
    made = machine.ntctl("session", "new", "--json", timeout=90)
    if made.returncode != 0:
        raise RuntimeError(f"ntctl session new failed: {made.stderr}")
    session = json.loads(made.stdout)["session_id"]
    _wait(machine, "winlogon.exe", "logon.ready", t0, session=session)
    _ntctl_secret(
        machine, USERS["bob"], "logon", "bob", "--password-stdin", "--session", str(session)
    )
    _wait(machine, "explorer.exe", "explorer.ready", t0, user="alice", session=1)
    _wait(machine, "explorer.exe", "explorer.ready", t0, user="bob", session=session)
    print(f"  alice (session 1) and bob (session {session}) logged on", flush=True)


def run(args: argparse.Namespace) -> list[Figure]:
    banner(NAME)
    reaper = Reaper()
    root = Path(tempfile.mkdtemp(prefix="ntbench.shutdown."))
    machine = BenchMachine(root, reaper)
    try:
        machine.boot()  # warm-up: the first boot of the root creates the hives and accounts
        add_users(machine)
        machine.shutdown()
        return shutdowns(
            args.shutdown_runs,
            machine,
            reaper,
            sessions=0,
            name=NAME,
            before=two_users_logged_on,
        )
    finally:
        machine.shutdown()
        finish(reaper, root, args)


if __name__ == "__main__":
    from tests.bench.common import run_alone

    run_alone(__doc__, add_arguments, run)
