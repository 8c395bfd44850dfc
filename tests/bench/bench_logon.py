"""logon: ``ntctl logon`` → the user's explorer.exe running (issue 9), production argon2id.

Our path, on one booted machine: the port path ``ntctl logon`` uses (the SAS on
``WMsgKRpc1`` → the tiles of the LogonUI already showing the notice → the credentials on
LogonUI's port → winlogon → LsaLogonUser (Interactive) → the profile loaded → userinit →
explorer), from an attached client, until explorer logs ``explorer.ready``; then a
logoff and the next LogonUI's ``logonui.ready`` (the notice is up again: not timed, as a
user sees the lock screen before pressing Ctrl+Alt+Del). Also timed: the whole ``ntctl
logon`` command (its interpreter start included) to the same event. Printed: where the
time goes, from the components' log timestamps (SAS → credentials at LogonUI →
LsaLogonUser done → profile loaded and userinit resumed → shell started → explorer.ready).

Floor, interleaved: one argon2id verify at the production parameters (OWASP m = 19 MiB,
t = 2, p = 1) + 2 process starts (forks of a pre-imported interpreter opening a DEALER,
as the zygote starts LogonUI and userinit/explorer) + 50 ms. Target: median ≤ floor.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import argon2

from ntctl import logon as lg
from ntctl.machine import Machine
from ports import samr
from tests.bench.bench_sessions import _floor_fork_chain
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
    run_alone,
    ts_epoch,
)

NAME = "logon"
PASSWORD = b"Bench-l0gon-pa55"
ALLOWANCE_MS = 50.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(NAME)
    g.add_argument("--logons", type=int, default=15, help="timed logons on the port path")
    g.add_argument("--commands", type=int, default=3, help="timed `ntctl logon` commands")


# The path's steps as the components log them: (label, image, event).
STEPS = (
    ("SAS at winlogon", "winlogon.exe", "winlogon.sas"),
    ("credentials at LogonUI", "logonui.exe", "logonui.submit"),
    ("LsaLogonUser done", "lsass.exe", "lsa.logon"),
    ("profile loaded, userinit resumed", "winlogon.exe", "logon.success"),
    ("userinit started the shell", "userinit.exe", "userinit.run"),  # the shell runs first
    ("explorer.ready", "explorer.exe", "explorer.ready"),
)


def _event_after(bm: BenchMachine, image: str, event: str, since: float, timeout: float = 30):  # noqa: ANN202
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ev in read_events(bm.log_dir, image, event):
            t = ts_epoch(ev["ts"])
            if t >= since:
                return t
        time.sleep(0.005)
    raise RuntimeError(f"no {event} of {image} after the logon")


def _explorer_ready(bm: BenchMachine, since: float, timeout: float = 30) -> float:
    return _event_after(bm, "explorer.exe", "explorer.ready", since, timeout)


def _logoff(m: Machine, bm: BenchMachine) -> None:
    """Log off, then wait for the notice (the next LogonUI ready): not timed."""
    t = time.time()
    lg.logoff(m, 1)
    _event_after(bm, "logonui.exe", "logonui.ready", t)


def _steps(bm: BenchMachine, t0: float) -> list[float]:
    """ms from ``t0`` (the client's SAS) to each step, in order."""
    return [(_event_after(bm, image, ev, t0, 5) - t0) * 1000 for _, image, ev in STEPS]


def _floor_ms(hasher: argon2.PasswordHasher, phc: str, endpoint: str) -> float:
    t0 = time.perf_counter()
    hasher.verify(phc, PASSWORD)
    verify = time.perf_counter() - t0
    starts = _floor_fork_chain(endpoint, 2)
    return (verify + starts) * 1000 + ALLOWANCE_MS


def run(args: argparse.Namespace) -> list[Figure]:
    banner(NAME)
    reaper = Reaper()
    root = Path(tempfile.mkdtemp(prefix="ntbench.logon."))
    bm = BenchMachine(root / "m", reaper)
    try:
        bm.boot()
        return _measure(bm, args, root)
    finally:
        bm.shutdown()
        finish(reaper, root, args)


def _measure(bm: BenchMachine, args: argparse.Namespace, root: Path) -> list[Figure]:
    hasher = argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
    phc = hasher.hash(PASSWORD)
    endpoint = f"ipc://{root}/floor"
    floors: list[float] = []
    ports: list[float] = []
    commands: list[float] = []
    with Machine(bm.root) as m:
        deadline = time.monotonic() + 30
        while True:  # lsass and winlogon come up after the boot command returns
            try:
                sam = samr.SamConnect(m.lpc)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        assert samr.NetUserAdd(sam, "bench", PASSWORD).ok
        sam.close()
        _event_after(bm, "logonui.exe", "logonui.ready", 0)
        lg.logon(m, 1, "bench", PASSWORD)  # the first logon makes the profile: not timed
        _logoff(m, bm)
        steps: list[list[float]] = []
        for i in range(args.logons):
            floors.append(_floor_ms(hasher, phc, endpoint))
            t0 = time.time()
            lg.logon(m, 1, "bench", PASSWORD)
            ports.append((_explorer_ready(bm, t0) - t0) * 1000)
            steps.append(_steps(bm, t0))
            _logoff(m, bm)
            if i < args.commands:
                t0 = time.time()
                r = subprocess.run(
                    [
                        PY,
                        "-m",
                        "ntctl",
                        "logon",
                        "bench",
                        "--password-stdin",
                        "--root",
                        str(bm.root),
                    ],
                    cwd=REPO,
                    env=bm.env,
                    input=PASSWORD + b"\n",
                    capture_output=True,
                    timeout=60,
                )
                if r.returncode != 0:
                    raise RuntimeError(r.stderr.decode(errors="replace"))
                commands.append((_explorer_ready(bm, t0) - t0) * 1000)
                _logoff(m, bm)
    floor, port, command = Series("floor"), Series("port path"), Series("ntctl logon")
    floor.add(floors)
    port.add(ports)
    command.add(commands)
    for s in (floor, port, command):
        print(f"  {s.name:14s} ms: {s.row()}")
    print("  where the port path's time goes (median ms of each step, from the logs):")
    last = 0.0
    for k, (label, image, _) in enumerate(STEPS):
        at = statistics.median(r[k] for r in steps)
        print(f"    {label:34s} +{at - last:6.1f}  (at {at:6.1f}; {image})")
        last = at
    ours, base = port.median, floor.median
    print(
        f"port path / floor: {ratio(ours, base):.2f}x; ntctl logon / floor: {ratio(command.median, base):.2f}x"
    )
    return [
        Figure(NAME, "floor (verify + 2 starts + 50 ms) median", base, "ms"),
        Figure(NAME, "logon → explorer (port path) median", ours, "ms", "≤ floor", ours <= base),
        Figure(NAME, "logon → explorer (port path) p99", port.p99, "ms"),
        Figure(NAME, "ntctl logon → explorer median", command.median, "ms"),
        Figure(NAME, "port path / floor", ratio(ours, base), "×"),
    ]


if __name__ == "__main__":
    run_alone(__doc__, add_arguments, run, "--keep")
