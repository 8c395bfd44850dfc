"""logon: ``ntctl logon`` → the user's explorer.exe running (issue 9), production argon2id.

Our path, on one booted machine: the port path ``ntctl logon`` uses (the SAS on
``WMsgKRpc1`` → LogonUI started → the credentials on LogonUI's port → winlogon →
LsaLogonUser (Interactive) → the profile loaded → userinit → explorer), from an attached
client, until explorer logs ``explorer.ready``; then a logoff (not timed). Also timed: the
whole ``ntctl logon`` command (its interpreter start included) to the same event.

Floor, interleaved: one argon2id verify at the production parameters (OWASP m = 19 MiB,
t = 2, p = 1) + 2 process starts (forks of a pre-imported interpreter opening a DEALER,
as the zygote starts LogonUI and userinit/explorer) + 50 ms. Target: median ≤ floor.
"""

from __future__ import annotations

import argparse
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


def _explorer_ready(bm: BenchMachine, since: float, timeout: float = 30) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ev in read_events(bm.log_dir, "explorer.exe", "explorer.ready"):
            t = ts_epoch(ev["ts"])
            if t >= since:
                return t
        time.sleep(0.005)
    raise RuntimeError("no explorer.ready after the logon")


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
        lg.logon(m, 1, "bench", PASSWORD)  # the first logon makes the profile: not timed
        lg.logoff(m, 1)
        for i in range(args.logons):
            floors.append(_floor_ms(hasher, phc, endpoint))
            t0 = time.time()
            lg.logon(m, 1, "bench", PASSWORD)
            ports.append((_explorer_ready(bm, t0) - t0) * 1000)
            lg.logoff(m, 1)
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
                lg.logoff(m, 1)
    floor, port, command = Series("floor"), Series("port path"), Series("ntctl logon")
    floor.add(floors)
    port.add(ports)
    command.add(commands)
    for s in (floor, port, command):
        print(f"  {s.name:14s} ms: {s.row()}")
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
