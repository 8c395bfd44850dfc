"""Run the benchmarks: ``python -m tests.bench [name ...]`` (all of them by default).

    csr_rtt         CSR API round trip through csrss's ApiPort vs a bare DEALER->ROUTER echo
    csr_throughput  ApiPort msg/s, 16 clients x 8 in flight, vs zmq.proxy + one worker thread
    detection       SIGKILL of csrss -> bugcheck event; bugcheck -> every process gone
    fault_windows   the windows of issue 6: kill -> bugcheck and kill -> last gone in each
    boot            ./run.sh --detach -> winlogon registered (with the split); USS
    cli             read-only ntctl verbs (ps, logs -n 20, reg query, --help) vs python -c pass
    top             CPU of ntctl top (2 refreshes/s) on an idle machine, and the kernel's share
    hive_kill       registry kill -9 durability (tests/bench/bench_hive_kill.py), --kills N
    lsa_logon       LsaLogonUser (right password, unknown user, locked) vs one argon2id verify
    access_check    a port call with the SCM's access check vs the same call without
    reg_scale       reg import/export/query /s of a 20 MB control-set export vs raw SQLite
    svcorder        auto-start order of 750 Windows-10-shaped services vs sorted()
    services        sc start vs process creation; kill -9 → restart; boots → auto-start RUNNING
    chaos           ntctl chaos trials per minute with --jobs 1 and --jobs 2
    sessions        shutdown with two sessions (phases); new sessions: 1, 10 at once, 10
                    one after the other -> "Press Ctrl+Alt+Del"; Σ USS per session
    logon           ntctl logon -> explorer running vs argon2id verify + 2 process starts + 50 ms
    shutdown        ntctl shutdown with every shipped service -> all gone, hives closed;
                    the phase timeline (apps, preshutdown, services, smss, kernel)
    console         ntctl console PID vs ntctl ps and python -c pass; keystroke -> echo on
                    condemo's screen vs a bare CSR round trip

Each benchmark measures its floor in the same run, interleaved with our path, and prints
medians, p99 and ratios. The summary at the end lists every figure with its target and
PASS/MISS. These are measurements, not tests: the exit code is 0 whatever they show
(2 only for a bad command line).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
import traceback
from pathlib import Path

from tests.bench import (
    bench_access,
    bench_boot,
    bench_chaos,
    bench_cli,
    bench_console,
    bench_csr_rtt,
    bench_csr_throughput,
    bench_detection,
    bench_fault_windows,
    bench_hive_kill,
    bench_logon,
    bench_lsa,
    bench_reg,
    bench_services,
    bench_sessions,
    bench_shutdown,
    bench_svcorder,
    bench_top,
)
from tests.bench.common import (
    Figure,
    Series,
    banner,
    fmt,
    loadavg,
    print_summary,
    quantile,
    ratio,
    tree_state,
    versions,
)

HIVE = "hive_kill"
HIVE_CHUNK = 100  # kills between two floor samples
FLOOR_COMMITS = 50  # floor transactions per chunk


def add_hive_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(HIVE)
    g.add_argument("--kills", type=int, default=1000, help="writer kills (default 1000)")
    g.add_argument("--seed", type=int, default=None, help="random seed of the kill schedule")


def _floor_commits(db: Path, n: int) -> list[float]:
    """Raw SQLite: one 2 KiB UPDATE per transaction, WAL + synchronous=FULL (the hive's
    settings), on the same file system; ms per commit."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v BLOB)")
        blob = b"x" * bench_hive_kill.PAYLOAD
        out = []
        for i in range(n):
            t0 = time.perf_counter_ns()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT OR REPLACE INTO t VALUES (?, ?)", (i % 50, blob))
            conn.execute("COMMIT")
            out.append((time.perf_counter_ns() - t0) / 1e6)
        return out
    finally:
        conn.close()


def run_hive_kill(args: argparse.Namespace) -> list[Figure]:
    """bench_hive_kill.run_kills in chunks of 100 kills, a raw-SQLite commit floor between."""
    banner(HIVE)
    import random
    import shutil

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    root = Path(tempfile.mkdtemp(prefix="ntbench.hive."))
    total = bench_hive_kill.Results()
    floor = Series("floor")
    chunk = 0
    try:
        while total.kills < args.kills:
            n = min(HIVE_CHUNK, args.kills - total.kills)
            res = bench_hive_kill.run_kills(n, root, seed + chunk)
            chunk += 1
            for name in (
                "kills",
                "startup_kills",
                "midloop_kills",
                "corrupt",
                "lost",
                "torn",
                "acked",
                "elapsed",
            ):
                setattr(total, name, getattr(total, name) + getattr(res, name))
            total.set_ns += res.set_ns
            total.import_ns += res.import_ns
            total.errors += res.errors
            floor.add(_floor_commits(root / "floor.db", FLOOR_COMMITS))
            print(
                f"  {total.kills} kills, {total.elapsed:.0f} s: corrupt {total.corrupt} "
                f"lost {total.lost} torn {total.torn} errors {len(total.errors)}",
                flush=True,
            )
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    set_ms = [x / 1e6 for x in total.set_ns]
    imp_ms = [x / 1e6 for x in total.import_ns]
    fl = floor.pooled
    print(f"sqlite {bench_hive_kill.SQLITE_VERSION}, seed {seed} (chunk i uses seed + i)")
    print(
        f"kills {total.kills} (start-up {total.startup_kills}, mid-loop {total.midloop_kills})"
        f" in {total.elapsed:.1f} s; acknowledged writes {total.acked}"
    )
    print(
        f"corrupt {total.corrupt}  lost {total.lost}  torn {total.torn}  errors {len(total.errors)}"
    )
    for err in total.errors[:10]:
        print("  ", err)
    rows = [
        ("set_value (1 value)", set_ms),
        ("import_ops (2 values, 1 txn)", imp_ms),
        ("floor: raw sqlite3 commit", fl),
    ]
    for label, xs in rows:
        print(
            f"  {label:30s} ms: median {quantile(xs, 0.5):7.3f}  p99 {quantile(xs, 0.99):7.3f}"
            f"  n={len(xs)}"
        )
    med_ratio = ratio(quantile(set_ms, 0.5), quantile(fl, 0.5))
    p99_ratio = ratio(quantile(set_ms, 0.99), quantile(fl, 0.99))
    print(f"set_value / floor: median {med_ratio:.2f}x  p99 {p99_ratio:.2f}x")
    return [
        Figure(HIVE, "kills", total.kills, "", f"= {args.kills}", total.kills == args.kills),
        Figure(HIVE, "corrupt hives", total.corrupt, "", "= 0", total.corrupt == 0),
        Figure(HIVE, "lost acknowledged writes", total.lost, "", "= 0", total.lost == 0),
        Figure(HIVE, "torn transactions", total.torn, "", "= 0", total.torn == 0),
        Figure(HIVE, "harness errors", len(total.errors), "", "= 0", not total.errors),
        Figure(HIVE, "set_value median", quantile(set_ms, 0.5), "ms"),
        Figure(HIVE, "set_value p99", quantile(set_ms, 0.99), "ms"),
        Figure(HIVE, "floor sqlite commit median", quantile(fl, 0.5), "ms"),
        Figure(HIVE, "set_value / floor median", med_ratio, "×"),
    ]


BENCHMARKS = {
    "csr_rtt": (bench_csr_rtt.add_arguments, bench_csr_rtt.run),
    "csr_throughput": (bench_csr_throughput.add_arguments, bench_csr_throughput.run),
    "detection": (bench_detection.add_arguments, bench_detection.run),
    "fault_windows": (bench_fault_windows.add_arguments, bench_fault_windows.run),
    "boot": (bench_boot.add_arguments, bench_boot.run),
    "cli": (bench_cli.add_arguments, bench_cli.run),
    "top": (bench_top.add_arguments, bench_top.run),
    HIVE: (add_hive_arguments, run_hive_kill),
    bench_lsa.NAME: (bench_lsa.add_arguments, bench_lsa.run),
    bench_access.NAME: (bench_access.add_arguments, bench_access.run),
    bench_reg.NAME: (bench_reg.add_arguments, bench_reg.run),
    "svcorder": (bench_svcorder.add_arguments, bench_svcorder.run),
    "services": (bench_services.add_arguments, bench_services.run),
    "chaos": (bench_chaos.add_arguments, bench_chaos.run),
    "sessions": (bench_sessions.add_arguments, bench_sessions.run),
    bench_logon.NAME: (bench_logon.add_arguments, bench_logon.run),
    bench_shutdown.NAME: (bench_shutdown.add_arguments, bench_shutdown.run),
    bench_console.NAME: (bench_console.add_arguments, bench_console.run),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench",
        description=__doc__.splitlines()[0],
        epilog="benchmarks: " + ", ".join(BENCHMARKS),
    )
    parser.add_argument("names", nargs="*", metavar="name", help="benchmarks to run (default: all)")
    parser.add_argument("--keep", action="store_true", help="keep the data roots in /tmp")
    for add, _ in BENCHMARKS.values():
        add(parser)
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    names = args.names or list(BENCHMARKS)
    started = time.monotonic()
    print(f"ntmodel benchmarks {time.strftime('%Y-%m-%d %H:%M:%S %Z')}: {', '.join(names)}")
    print(versions())
    print(tree_state())
    print(f"at start: {loadavg()}", flush=True)
    figures: list[Figure] = []
    took: dict[str, float] = {}
    for name in names:
        t0 = time.monotonic()
        try:
            figures += BENCHMARKS[name][1](args)
        except Exception:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            figures.append(
                Figure(
                    name, "benchmark failed (traceback above)", float("nan"), "", "completes", False
                )
            )
        took[name] = time.monotonic() - t0
        sys.stdout.flush()
    elapsed = time.monotonic() - started
    print(f"\n=== summary === {time.strftime('%H:%M:%S')}  at end: {loadavg()}")
    print(versions())
    print_summary(figures)
    missed = sum(1 for f in figures if f.ok is False)
    passed = sum(1 for f in figures if f.ok)
    print(
        f"\n{passed} PASS, {missed} MISS; time per benchmark: "
        + ", ".join(f"{n} {fmt(t, 's')}" for n, t in took.items())
        + f"; total {elapsed:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
