"""access_check: a port call with the SCM's access check vs the same call without.

Both servers are the real ``ports.server.PortServer`` in a child process
(tests/bench/portserver.py, csrss's port settings, no per-call log line); the ``check`` one
runs ``ScSecurity.check`` (an interactive user's token asking SERVICE_QUERY_STATUS on a
service with Windows' default descriptor: SeAccessCheck over the cached descriptor, the
work ROpenServiceW adds) before the same body. The client is ``ports.client.Connection``
in this process. The two are interleaved in chunks of 100 calls (alternating order).
Target: check median ≤ 1.1× the plain call's median, both measured here.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import zmq

from tests.bench import portserver
from tests.bench.common import Figure, Reaper, Series, banner, ratio, run_alone, temp_file_api

NAME = "access_check"
WARMUP = 300
CHUNK = 100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(NAME)
    g.add_argument("--access-calls", type=int, default=2000, help="calls per repetition")
    g.add_argument("--access-reps", type=int, default=5, help="repetitions per configuration")


def _loop(conn, api: int, n: int) -> list[float]:
    out, clock = [], time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        reply = conn.call(api, {})
        out.append((clock() - t0) / 1000)
        if not reply.ok:
            raise RuntimeError(f"call failed: {reply.status:#x}")
    return out


def _check_cost(n: int = 20000) -> tuple[float, float]:
    """The check alone, in process, µs per call: (a repeated open of one connection, which
    the SCM answers from its granted-mask memo; the full SeAccessCheck walk of a first one)."""
    from nt import security as sec
    from processes.services.scsecure import DEFAULT_SERVICE_SDDL, SERVICE_MAPPING, ScSecurity

    class Client:
        token = portserver.USER_TOKEN
        pid = 1

    security, client = ScSecurity(), Client()
    security.check(client, 0x4, "EventLog")
    t0 = time.perf_counter_ns()
    for _ in range(n):
        security.check(client, 0x4, "EventLog")
    memo = (time.perf_counter_ns() - t0) / n / 1000
    sd, token = sec.cached_sddl(DEFAULT_SERVICE_SDDL), portserver.USER_TOKEN
    t0 = time.perf_counter_ns()
    for _ in range(n):
        sec.access_check(sd, token, 0x4, SERVICE_MAPPING)
    return memo, (time.perf_counter_ns() - t0) / n / 1000


def run(args: argparse.Namespace) -> list[Figure]:
    banner(NAME)
    root = Path(tempfile.mkdtemp(prefix="ntbench.acc."))
    reaper = Reaper()
    ctx = zmq.Context()
    conns = {}
    try:
        key = os.urandom(32)
        for mode in ("nolog", "check"):
            ep = f"ipc://{root}/port-{mode}"
            portserver.start(reaper, ep, mode, key, str(root / "log"))
            conns[mode] = portserver.connect(ctx, ep, key)
        api = temp_file_api()
        names = {"plain": "nolog", "checked": "check"}
        series = {name: Series(name) for name in names}
        for conn in conns.values():
            _loop(conn, api, WARMUP)
        for rep in range(args.access_reps):
            # Interleaved in chunks of CHUNK calls: a load change on this shared machine
            # lands on both configurations alike.
            samples: dict[str, list[float]] = {name: [] for name in names}
            for i in range(0, args.access_calls, CHUNK):
                order = list(names) if (i // CHUNK + rep) % 2 == 0 else list(reversed(names))
                for name in order:
                    n = min(CHUNK, args.access_calls - i)
                    samples[name] += _loop(conns[names[name]], api, n)
            for name in names:
                series[name].add(samples[name])
                print(f"  rep {rep} {name:8s} {Series(name, [samples[name]]).row()}")
        alone, walk = _check_cost()
        plain, checked = series["plain"], series["checked"]
        rm, rp = ratio(checked.median, plain.median), ratio(checked.p99, plain.p99)
        print("\nµs per call (median of repetition medians; p99 = median of repetition p99s)")
        for s in (plain, checked):
            print(f"  {s.name:8s} {s.row()}")
        print(f"the check alone, in process: {alone:.2f} µs repeated, {walk:.2f} µs first open")
        print(f"ratio checked/plain: median {rm:.3f}x  p99 {rp:.3f}x")
        return [
            Figure(NAME, "plain call median", plain.median, "µs"),
            Figure(NAME, "checked call median", checked.median, "µs"),
            Figure(NAME, "check alone, repeated (in process)", alone, "µs"),
            Figure(NAME, "check alone, first open (in process)", walk, "µs"),
            Figure(NAME, "checked/plain median", rm, "×", "≤ 1.1×", rm <= 1.1),
            Figure(NAME, "checked/plain p99", rp, "×"),
        ]
    finally:
        for conn in conns.values():
            conn.close()
        ctx.term()
        reaper.cleanup()


if __name__ == "__main__":
    run_alone(__doc__, add_arguments, run)
