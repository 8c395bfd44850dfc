"""lsa_logon: LsaLogonUser through a booted machine's ``\\LsaAuthenticationPort``, with the
production argon2id parameters (OWASP: m = 19 MiB, t = 2, p = 1).

Floor: one ``argon2.PasswordHasher.verify`` at the same parameters in this process (what a
logon cannot avoid). Our path: an attached process (like ``ntctl logon-test``) calls
LsaLogonUser (Network) over an untrusted connection: port, schema, MSV1_0, the verify,
the SAM counters written through the kernel, the token, the 4624 audit line.

Also measured, interleaved: an unknown user (a dummy hash is verified: about one verify)
and a locked account (no hash at all). Targets (issue 8): correct-password median ≤ verify
+ 5 ms; locked ≤ 2 ms; unknown user of the same order as a wrong password.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import argon2

from nt import security as sec
from nt.status import NtStatus
from ntctl.machine import Machine
from ports import lsa, samr
from tests.bench.common import BenchMachine, Figure, Reaper, Series, banner, finish

NAME = "lsa_logon"
PASSWORD = b"Bench-pa55word"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(NAME)
    g.add_argument("--logon-calls", type=int, default=10, help="calls per repetition")
    g.add_argument("--logon-reps", type=int, default=5, help="repetitions per configuration")


def _timed(fn, n: int) -> list[float]:  # noqa: ANN001
    out = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t0) / 1e6)
    return out


def run(args: argparse.Namespace) -> list[Figure]:
    banner(NAME)
    reaper = Reaper()
    root = Path(tempfile.mkdtemp(prefix="ntbench.lsa."))
    bm = BenchMachine(root / "m", reaper)
    try:
        bm.boot()
        return _measure(bm, args)
    finally:
        bm.shutdown()
        finish(reaper, root, args)


def _measure(bm: BenchMachine, args: argparse.Namespace) -> list[Figure]:
    hasher = argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
    phc = hasher.hash(PASSWORD)
    with Machine(bm.root) as m:
        deadline = time.monotonic() + 30
        while True:  # lsass comes up after the boot command returns
            try:
                sam = samr.SamConnect(m.lpc)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        for name in ("bench", "locked"):
            assert samr.NetUserAdd(sam, name, PASSWORD).ok
        samr.NetUserModalsSet(sam, lockout_threshold=3, lockout_duration=0, lockout_window=30)
        conn = lsa.LsaConnectUntrusted(m.lpc)
        for _ in range(3):
            lsa.LsaLogonUser(conn, "locked", b"wrong", sec.Network)
        assert lsa.LsaLogonUser(conn, "locked", PASSWORD, sec.Network).status == (
            NtStatus.STATUS_ACCOUNT_LOCKED_OUT
        )
        assert lsa.LsaLogonUser(conn, "bench", PASSWORD, sec.Network).ok

        configs = {
            "floor: argon2id verify": lambda: hasher.verify(phc, PASSWORD),
            "LsaLogonUser, right password": lambda: lsa.LsaLogonUser(
                conn, "bench", PASSWORD, sec.Network
            ),
            "LsaLogonUser, unknown user": lambda: lsa.LsaLogonUser(
                conn, "nobody", PASSWORD, sec.Network
            ),
            "LsaLogonUser, locked account": lambda: lsa.LsaLogonUser(
                conn, "locked", PASSWORD, sec.Network
            ),
        }
        series = {k: Series(k) for k in configs}
        names = list(configs)
        for rep in range(args.logon_reps):
            for k in names[rep % len(names) :] + names[: rep % len(names)]:
                series[k].add(_timed(configs[k], args.logon_calls))
        conn.close()
        sam.close()
    for k, s in series.items():
        print(f"  {k:32s} ms: {s.row()}")
    verify = series["floor: argon2id verify"].median
    right = series["LsaLogonUser, right password"].median
    unknown = series["LsaLogonUser, unknown user"].median
    locked = series["LsaLogonUser, locked account"].median
    print(
        f"right password - verify: {right - verify:.2f} ms; unknown / verify {unknown / verify:.2f}x"
    )
    return [
        Figure(NAME, "argon2id verify (OWASP) median", verify, "ms"),
        Figure(NAME, "LsaLogonUser right password median", right, "ms"),
        Figure(NAME, "logon - verify median", right - verify, "ms", "≤ 5 ms", right - verify <= 5),
        Figure(NAME, "unknown user median", unknown, "ms", "≈ verify", unknown <= verify * 1.5 + 5),
        Figure(NAME, "locked account median", locked, "ms", "≤ 2 ms", locked <= 2),
    ]
