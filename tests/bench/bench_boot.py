"""boot: ``./run.sh --detach`` -> session 1's winlogon registered with its csrss; memory.

One warm-up boot first (the fresh root's first boot imports the .reg files and creates
the hives), then >= 5 measured boots of the same root. Per boot:

- user's view: ``winlogon.registered`` ts (winlogon.exe's log) minus ``time.time()`` taken
  just before the boot command started (the command is a Python process too: it is part
  of what a user waits for);
- kernel's view: ``boot.start`` ts (System's log) -> ``winlogon.registered`` ts;
- the command's own return (it returns at ``logon.ready``), for information;
- the split of the user's view: command start -> the kernel's process created (run.sh's
  venv check, the CLI's start-up and imports, the launcher's fork; psutil's create time,
  10 ms ticks), kernel process created -> ``boot.start`` (a fresh interpreter importing
  the kernel), ``boot.start`` -> ``winlogon.registered`` (the machine itself).

Floor, interleaved with the boots (perf-floor.md §3, "Popen, one after another"): the
critical path of a boot is a chain of 8 process starts, each waiting for the previous
one (boot command -> launcher daemon -> kernel -> smss -> autochk -> smss session 1
instance -> csrss -> winlogon); the floor starts 8 minimal components (Python, imports
zmq, msgpack and structlog, a DEALER, "ready") the same way. Target: median <= 1.0 s.

Memory: after the last boot, the USS of every process from ``ntctl ps --json`` (psutil
``memory_full_info().uss``), with PSS and RSS; target <= 20 MiB each.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
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

NAME = "boot"
CHAIN = 8
MIB = 2**20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(NAME)
    g.add_argument("--boots", type=int, default=5, help="measured boots (after one warm-up)")


def _floor_chain(reaper: Reaper, endpoint: str, n: int = CHAIN) -> float:
    """Seconds from the first launch to the last READY of ``n`` sequential components."""
    procs = []
    t0 = time.monotonic()
    try:
        for _ in range(n):
            p = reaper.popen(
                [PY, "-m", "tests.bench.echo", "component", endpoint],
                cwd=REPO,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            procs.append(p)
            if p.stdout.readline().strip() != b"ready":
                raise RuntimeError("floor component did not start")
        return time.monotonic() - t0
    finally:
        for p in procs:
            p.kill()
            p.wait()


def _clock_skew() -> float:
    """psutil's create_time() minus time.time() for a process started now: the two clocks
    differ (btime in /proc/stat is rounded, and off in some containers)."""
    t = time.time()
    p = subprocess.Popen(["sleep", "0.05"])
    try:
        return psutil.Process(p.pid).create_time() - t
    finally:
        p.wait()


def _memory(machine: BenchMachine) -> list[dict]:
    rows = []
    for p in machine.ps():
        try:
            info = psutil.Process(p["pid"]).memory_full_info()
        except psutil.Error:
            continue
        rows.append(
            {
                "image": p["image"],
                "pid": p["pid"],
                "session": p["session"],
                "uss": info.uss / MIB,
                "pss": info.pss / MIB,
                "rss": info.rss / MIB,
            }
        )
    launcher = machine.launcher_pid()
    if launcher:
        try:
            info = psutil.Process(launcher).memory_full_info()
            rows.append(
                {
                    "image": "(launcher daemon)",
                    "pid": launcher,
                    "session": None,
                    "uss": info.uss / MIB,
                    "pss": info.pss / MIB,
                    "rss": info.rss / MIB,
                }
            )
        except psutil.Error:
            pass
    return rows


def run(args: argparse.Namespace) -> list[Figure]:
    banner(NAME)
    reaper = Reaper()
    root = Path(tempfile.mkdtemp(prefix="ntbench.boot."))
    machine = BenchMachine(root, reaper)
    figures: list[Figure] = []
    user, kernel, command, floor, launch, cli, kstart = (
        Series(n) for n in ("user", "kernel", "cmd", "floor", "launch", "cli", "kstart")
    )
    memory: list[dict] = []
    try:
        t0, took = machine.boot()
        print(f"warm-up boot (first boot of the root: hives created) returned in {took:.2f} s")
        machine.shutdown()
        for i in range(args.boots):
            first_floor = i % 2 == 1
            if first_floor:
                floor.add([_floor_chain(reaper, f"ipc://{root}/floor")])
            t0, took = machine.boot(via_run_sh=True)
            log_dir = machine.log_dir
            reg = wait_event(log_dir, "winlogon.exe", "winlogon.registered", 10.0)
            start = read_events(log_dir, "System", "boot.start")
            ok = reg is not None and bool(start)
            if ok:
                t_reg = ts_epoch(reg["ts"])
                user.add([t_reg - t0])
                kernel.add([t_reg - ts_epoch(start[0]["ts"])])
                launch.add([ts_epoch(start[0]["ts"]) - t0])
                command.add([took])
                try:
                    created = psutil.Process(machine.kernel_pid()).create_time() - _clock_skew()
                    cli.add([created - t0])
                    kstart.add([ts_epoch(start[0]["ts"]) - created])
                except (psutil.Error, TypeError):
                    pass
            if i == args.boots - 1:
                time.sleep(0.5)  # idle after logon.ready, as a user would find it
                memory = _memory(machine)
            machine.shutdown()
            if not first_floor:
                floor.add([_floor_chain(reaper, f"ipc://{root}/floor")])
            if not ok:
                print(f"  boot {i}: no winlogon.registered or boot.start event")
                continue
            print(
                f"  boot {i}: command start -> winlogon.registered "
                f"{user.reps[-1][0] * 1000:6.0f} ms, boot.start -> winlogon.registered "
                f"{kernel.reps[-1][0] * 1000:6.0f} ms, command returned after {took * 1000:6.0f}"
                f" ms; floor chain of {CHAIN} starts {floor.reps[-1][0] * 1000:5.0f} ms",
                flush=True,
            )
        u, k, c, f, la, cl, ks = (
            Series(s.name, [s.pooled]) for s in (user, kernel, command, floor, launch, cli, kstart)
        )
        print("\nms over boots (one sample per boot)")
        for label, s in (
            ("command start -> winlogon.registered", u),
            ("command start -> boot.start (CLI, daemon, kernel start)", la),
            ("  of which: command start -> kernel process created", cl),
            ("  of which: kernel process created -> boot.start", ks),
            ("boot.start -> winlogon.registered (kernel)", k),
            ("command start -> command returned", c),
            (f"floor: {CHAIN} sequential component starts", f),
        ):
            print(f"  {label:56s} {s.row(1000)}")
        print(
            f"ratio to the floor: user view median {ratio(u.median, f.median):.2f}x, "
            f"kernel view {ratio(k.median, f.median):.2f}x"
        )
        figures += [
            Figure(
                NAME,
                "start -> winlogon.registered median",
                u.median,
                "s",
                "≤ 1.00 s",
                u.median <= 1.0,
            ),
            Figure(NAME, "start -> winlogon.registered p99", u.p99, "s"),
            Figure(NAME, "command start -> boot.start median", la.median, "s"),
            Figure(NAME, "  command start -> kernel created", cl.median, "s"),
            Figure(NAME, "  kernel created -> boot.start", ks.median, "s"),
            Figure(NAME, "boot.start -> registered median", k.median, "s"),
            Figure(NAME, f"floor {CHAIN}-process chain median", f.median, "s"),
            Figure(NAME, "user view / floor", ratio(u.median, f.median), "×"),
        ]
        if memory:
            print("\nmemory after boot, MiB (target: USS <= 20 MiB per process)")
            print(f"  {'image':20s} {'pid':>7s} {'sess':>4s} {'USS':>6s} {'PSS':>6s} {'RSS':>6s}")
            for r in memory:
                nt = r["image"] != "(launcher daemon)"
                mark = ("PASS" if r["uss"] <= 20 else "MISS") if nt else "(not an NT process)"
                sess = "-" if r["session"] is None else str(r["session"])
                print(
                    f"  {r['image']:20s} {r['pid']:7d} {sess:>4s} {r['uss']:6.1f} "
                    f"{r['pss']:6.1f} {r['rss']:6.1f}  {mark}"
                )
            nt_rows = [r for r in memory if r["image"] != "(launcher daemon)"]
            for r in nt_rows:
                sess = "" if r["session"] is None else f" s{r['session']}"
                figures.append(
                    Figure(
                        NAME, f"USS {r['image']}{sess}", r["uss"], "MiB", "≤ 20 MiB", r["uss"] <= 20
                    )
                )
            figures.append(
                Figure(NAME, "Σ USS of NT processes", sum(r["uss"] for r in nt_rows), "MiB")
            )
    finally:
        machine.shutdown()
        finish(reaper, root, args)
    return figures


if __name__ == "__main__":
    from tests.bench.common import run_alone

    run_alone(__doc__, add_arguments, run)
