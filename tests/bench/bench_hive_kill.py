"""kill -9 harness for the hive: acknowledged writes survive, nothing is corrupted.

reliability-security.md §5.2 (the pilot), §6.7 R1 and §6.9 "Registry durability". A writer
process (this module with ``--writer``) loops over registry writes through ``nt.hive`` and
prints ``seq`` only after the call returned (= committed). The harness SIGKILLs it either
at a random 10–200 ms after spawning (many kills land in interpreter start-up or hive open)
or a random 0–50 ms after its first acknowledged write (mid-loop), then reopens the hive and
checks: the hive opens (quick_check) and passes ``integrity_check``; the stored ``Seq`` is
at least the last acknowledged one; the two ``Seq`` copies written by one ``import_ops``
agree (an unacknowledged transaction is all-or-nothing); the data written just before the
stored ``Seq`` is there.

    python -m tests.bench.bench_hive_kill --kills 1000
"""

from __future__ import annotations

import argparse
import os
import random
import selectors
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from nt.hive import SQLITE_VERSION, Registry, RegistryError
from nt.regfile import SetValue
from nt.regpath import REG_BINARY, REG_QWORD
from nt.status import NtStatus

REPO = Path(__file__).resolve().parents[2]
BENCH = r"HKLM\SYSTEM\Bench"
MIRROR = BENCH + r"\Mirror"
DATA_KEYS = 50
PAYLOAD = 2048


def writer(config_dir: Path) -> None:
    """The child: write forever, acknowledging each iteration on stdout after it returns."""
    reg = Registry(config_dir)
    reg.create_key(MIRROR)
    for n in range(DATA_KEYS):
        reg.create_key(rf"{BENCH}\K{n:02d}")
    try:
        seq = reg.query_value(BENCH, "Seq")[1]
    except RegistryError:
        seq = 0
    filler = os.urandom(PAYLOAD - 8)
    out = sys.stdout.buffer
    while True:
        seq += 1
        t0 = time.perf_counter_ns()
        reg.set_value(
            rf"{BENCH}\K{seq % DATA_KEYS:02d}",
            "Data",
            REG_BINARY,
            seq.to_bytes(8, "little") + filler,
        )
        t1 = time.perf_counter_ns()
        reg.import_ops(
            [SetValue(BENCH, "Seq", REG_QWORD, seq), SetValue(MIRROR, "Seq", REG_QWORD, seq)]
        )
        t2 = time.perf_counter_ns()
        out.write(f"{seq} {t1 - t0} {t2 - t1}\n".encode())
        out.flush()


@dataclass
class Check:
    """What a reopen after a kill found."""

    corrupt: bool = False
    lost: bool = False
    torn: bool = False
    stored: int = 0
    detail: str = ""


def check_hive(config_dir: Path, last_acked: int) -> Check:
    """Reopen the hive as the next boot would and compare it with what was acknowledged."""
    try:
        reg = Registry(config_dir)
    except RegistryError as exc:
        if exc.status == NtStatus.STATUS_REGISTRY_CORRUPT:
            return Check(corrupt=True, detail=str(exc))
        raise
    try:
        if any(e.event == "hive.corrupt" for e in reg.recovery_events):
            return Check(corrupt=True, detail=str(reg.recovery_events))
        try:
            stored = reg.query_value(BENCH, "Seq")[1]
            mirror = reg.query_value(MIRROR, "Seq")[1]
        except RegistryError:
            stored = mirror = 0  # killed before the first commit of Seq
        result = Check(stored=stored, lost=stored < last_acked, torn=stored != mirror)
        if stored:
            data = reg.query_value(rf"{BENCH}\K{stored % DATA_KEYS:02d}", "Data")[1]
            if int.from_bytes(data[:8], "little") != stored:
                result.torn = True
                result.detail = f"data key holds {int.from_bytes(data[:8], 'little')}"
    finally:
        reg.close()
    conn = sqlite3.connect(config_dir / "SYSTEM")
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()
    if rows != [("ok",)]:
        result.corrupt, result.detail = True, f"integrity_check: {rows[:3]}"
    return result


@dataclass
class Results:
    kills: int = 0
    startup_kills: int = 0
    midloop_kills: int = 0
    corrupt: int = 0
    lost: int = 0
    torn: int = 0
    acked: int = 0
    set_ns: list[int] = field(default_factory=list)
    import_ns: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    elapsed: float = 0.0


def _read_until(fd: int, buf: bytearray, deadline: float) -> None:
    """Append the child's output to ``buf`` until a full line arrives, EOF, or the deadline."""
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while b"\n" not in buf and time.monotonic() < deadline:
            if sel.select(timeout=max(0.0, deadline - time.monotonic())):
                chunk = os.read(fd, 65536)
                if not chunk:
                    return
                buf += chunk


def _one_kill(config_dir: Path, rng: random.Random, res: Results) -> int:
    """Spawn a writer, kill it, return the last acknowledged seq (0 if none)."""
    midloop = rng.random() < 0.5
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.bench_hive_kill", "--writer", str(config_dir)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
    )
    buf = bytearray()
    try:
        fd = proc.stdout.fileno()
        if midloop:
            _read_until(fd, buf, time.monotonic() + 10.0)
            time.sleep(rng.uniform(0.0, 0.050))
        else:
            time.sleep(rng.uniform(0.010, 0.200))
        proc.kill()
        proc.wait(timeout=10)
        while chunk := os.read(fd, 65536):
            buf += chunk
        if proc.returncode != -9:
            res.errors.append(f"writer exited {proc.returncode}: {proc.stderr.read()[-2000:]!r}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    res.kills += 1
    res.midloop_kills += midloop
    res.startup_kills += not midloop
    last = 0
    for line in bytes(buf).split(b"\n")[:-1]:  # the piece after the last newline is partial
        seq, set_ns, import_ns = (int(x) for x in line.split())
        last = seq
        res.acked += 1
        res.set_ns.append(set_ns)
        res.import_ns.append(import_ns)
    return last


def run_kills(kills: int, root: Path, seed: int | None = None, budget: float = 3600.0) -> Results:
    """Kill the writer ``kills`` times (or until ``budget`` seconds pass) and check each time."""
    rng = random.Random(seed)
    res = Results()
    config_dir = root / "config"
    start = time.monotonic()
    last_acked = 0
    while res.kills < kills and time.monotonic() - start < budget:
        acked = _one_kill(config_dir, rng, res)
        last_acked = max(last_acked, acked)
        check = check_hive(config_dir, last_acked)
        res.corrupt += check.corrupt
        res.lost += check.lost
        res.torn += check.torn
        if check.corrupt or check.lost or check.torn:
            res.errors.append(f"kill {res.kills}: acked {last_acked}, {check}")
        if check.corrupt:  # keep going on a fresh machine; the evidence stays aside
            config_dir.rename(root / f"config.corrupt.{res.kills}")
            last_acked = 0
    res.elapsed = time.monotonic() - start
    return res


def _ms(samples: list[int], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--root", type=Path, default=None, help="work dir (default: a temp dir)")
    parser.add_argument("--writer", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.writer:
        writer(args.writer)
        return 0
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    root = args.root or Path(tempfile.mkdtemp(prefix="hivekill."))
    try:
        res = run_kills(args.kills, root, seed)
    finally:
        if args.root is None:
            shutil.rmtree(root, ignore_errors=True)
    print(f"sqlite {SQLITE_VERSION}, python {sys.version.split()[0]}, seed {seed}")
    print(f"kills {res.kills} (start-up {res.startup_kills}, mid-loop {res.midloop_kills})")
    print(f"corrupt {res.corrupt}  lost {res.lost}  torn {res.torn}  errors {len(res.errors)}")
    print(f"acknowledged writes {res.acked} in {res.elapsed:.1f} s")
    print(
        f"set_value latency ms: median {_ms(res.set_ns, 0.5):.3f}  p99 {_ms(res.set_ns, 0.99):.3f}"
    )
    print(
        f"import_ops (2 values) latency ms: median {_ms(res.import_ns, 0.5):.3f}"
        f"  p99 {_ms(res.import_ns, 0.99):.3f}"
    )
    for err in res.errors[:10]:
        print("  ", err)
    return 1 if res.corrupt or res.lost or res.torn or res.errors else 0


if __name__ == "__main__":
    sys.exit(main())
