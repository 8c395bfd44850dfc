"""csr_rtt: one synchronous CSR API call through a booted machine's csrss ApiPort.

Our path: this process attaches to the machine, registers with csrss (SmExecPgm) and
calls BaseSrvGetTempFile (a counter under csrss's process lock: no kernel call) through
``nt.csrclient`` -> ``ports.client.Connection`` -> session 1's ApiPort (ZAP identity,
MAC and sequence checks, worker pool, CSR dispatch, ``csr.api`` log line, signed reply).

Floor: perf-floor.md §1 (d), a bare pyzmq DEALER -> ROUTER ipc:// echo in a child process,
msgpack pack and unpack on both sides inside the timed loop, request padded to the byte
count of our request's three frames. Both unpinned (the default placement: the scheduler
decides, as it does for the machine). For context the same pair is also run with every
thread of both ends pinned to cpu0 (perf-floor's "both on cpu0" column).

Diagnostics, to say where our time goes (tests/bench/portserver.py): ``ports`` is the real
``ports.server.PortServer`` + ``ports.client.Connection`` with a GetTempFile-like dispatch
and no per-call log line, in a child process with no machine around it; ``ports+log``
adds csrss's per-call ``csr.api`` log event (nt.log) to a file nobody tails. ``ours``
adds csrss's CSR dispatch and the launcher daemon, which tails every log line.

Repetitions of all configurations are interleaved (rotated order per repetition).
Targets: our median <= 2.5x and p99 <= 3x the unpinned floor's.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import msgpack
import zmq

from tests.bench import echo, portserver
from tests.bench.common import (
    BenchMachine,
    CpuMeter,
    Figure,
    Reaper,
    Series,
    attach_csr_clients,
    banner,
    finish,
    pin_all,
    ratio,
    temp_file_api,
)

NAME = "csr_rtt"
WARMUP = 200


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(NAME)
    g.add_argument("--rtt-calls", type=int, default=2000, help="calls per repetition")
    g.add_argument("--rtt-reps", type=int, default=5, help="repetitions per configuration")


def _bare_loop(sock: zmq.Socket, req: dict, n: int) -> list[float]:
    out = []
    packb, unpackb, clock = msgpack.packb, msgpack.unpackb, time.perf_counter_ns
    for i in range(n):
        req["id"] = i & 0x7F
        t0 = clock()
        sock.send(packb(req, use_bin_type=True))
        reply = unpackb(sock.recv(), raw=False)
        out.append(clock() - t0)
        if reply["id"] != req["id"]:
            raise RuntimeError("bare echo: reply out of order")
    return out


def _our_loop(client, api: int, n: int) -> list[float]:
    out = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        reply = client.call(api, {})
        out.append(clock() - t0)
        if not reply.ok:
            raise RuntimeError(f"BaseSrvGetTempFile failed: 0x{reply.status:08X} (see below)")
    return out


def run(args: argparse.Namespace) -> list[Figure]:
    banner(NAME)
    reaper = Reaper()
    root = Path(tempfile.mkdtemp(prefix="ntbench.rtt."))
    machine = BenchMachine(root, reaper)
    attached = None
    ctx = zmq.Context()
    figures: list[Figure] = []
    try:
        machine.boot()
        attached, clients, csrss = attach_csr_clients(root, 1)
        client = clients[0]
        api = temp_file_api()
        from ports import wire

        frames = wire.encode(b"k" * 32, wire.LPC_REQUEST, 1, 1, 1, api, {})
        size = sum(len(f) for f in frames)
        endpoint = f"ipc://{root}/echo"
        server = echo.start(reaper, "router", endpoint)
        sock = ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.connect(endpoint)
        req = echo.request(size)
        print(
            f"our request: {size} bytes in 3 frames (header, body, MAC); floor request: "
            f"{len(msgpack.packb(req))} bytes; csrss pid {csrss}, echo pid {server.pid}; "
            f"{args.rtt_reps} x {args.rtt_calls} calls per configuration"
        )
        everyone = set(range(os.cpu_count() or 1))
        key = os.urandom(32)
        diag = {}
        for mode in ("nolog", "log"):
            ep = f"ipc://{root}/port-{mode}"
            proc = portserver.start(reaper, ep, mode, key, str(root / "portlog"))
            diag[mode] = (proc.pid, portserver.connect(ctx, ep, key))
        configs = {
            "bare": (lambda n: _bare_loop(sock, req, n), server.pid, None),
            "ours": (lambda n: _our_loop(client, api, n), csrss, None),
            "ports": (lambda n: _our_loop(diag["nolog"][1], api, n), diag["nolog"][0], None),
            "ports+log": (lambda n: _our_loop(diag["log"][1], api, n), diag["log"][0], None),
            "bare@cpu0": (lambda n: _bare_loop(sock, req, n), server.pid, {0}),
            "ours@cpu0": (lambda n: _our_loop(client, api, n), csrss, {0}),
        }
        series = {name: Series(name) for name in configs}
        names = list(configs)
        for rep in range(args.rtt_reps):
            order = names[rep % len(names) :] + names[: rep % len(names)]
            for name in order:
                loop, peer, cpus = configs[name]
                if cpus:
                    pin_all(os.getpid(), cpus)
                    pin_all(peer, cpus)
                try:
                    if name.startswith("ours") and not machine.running():
                        raise RuntimeError("the machine stopped")
                    loop(WARMUP)
                    groups = {"client": [os.getpid()], "server": [peer]}
                    if name.startswith("ours"):
                        groups["launcher"] = [machine.launcher_pid()]
                    with CpuMeter(groups) as cpu:
                        samples = loop(args.rtt_calls)
                except RuntimeError as exc:
                    raise RuntimeError(f"{name}: {exc}\n{machine.diagnose()}") from exc
                finally:
                    if cpus:
                        pin_all(os.getpid(), everyone)
                        pin_all(peer, everyone)
                series[name].add(x / 1000 for x in samples)
                s = Series(name, [series[name].reps[-1]])
                print(f"  rep {rep} {name:9s} {s.row()}", flush=True)
                print(f"{'':17s}{cpu.text(args.rtt_calls)}")
        print("\nµs per call (median of repetition medians; p99 = median of repetition p99s)")
        for name in names:
            print(f"  {name:10s} {series[name].row()}")
        bare, ours = series["bare"], series["ours"]
        bare0, ours0 = series["bare@cpu0"], series["ours@cpu0"]
        rm, rp = ratio(ours.median, bare.median), ratio(ours.p99, bare.p99)
        rm0, rp0 = ratio(ours0.median, bare0.median), ratio(ours0.p99, bare0.p99)
        print(f"ratio ours/bare, both unpinned: median {rm:.2f}x  p99 {rp:.2f}x")
        for name in ("ports", "ports+log"):
            d = series[name]
            print(
                f"ratio {name}/bare (diagnostic): median {ratio(d.median, bare.median):.2f}x"
                f"  p99 {ratio(d.p99, bare.p99):.2f}x"
            )
        print(f"ratio ours/bare, both on cpu0:  median {rm0:.2f}x  p99 {rp0:.2f}x")
        figures += [
            Figure(NAME, "ours median (unpinned)", ours.median, "µs"),
            Figure(NAME, "ours p99 (unpinned)", ours.p99, "µs"),
            Figure(NAME, "bare echo median (unpinned)", bare.median, "µs"),
            Figure(NAME, "bare echo p99 (unpinned)", bare.p99, "µs"),
            Figure(NAME, "median ours/bare (unpinned)", rm, "×", "≤ 2.50×", rm <= 2.5),
            Figure(NAME, "p99 ours/bare (unpinned)", rp, "×", "≤ 3.00×", rp <= 3.0),
            Figure(
                NAME,
                "ports only / bare median (diag.)",
                ratio(series["ports"].median, bare.median),
                "×",
            ),
            Figure(
                NAME,
                "ports+log line / bare median (diag.)",
                ratio(series["ports+log"].median, bare.median),
                "×",
            ),
            Figure(NAME, "ours median (all on cpu0)", ours0.median, "µs"),
            Figure(NAME, "bare echo median (all on cpu0)", bare0.median, "µs"),
            Figure(NAME, "median ours/bare (cpu0)", rm0, "×", "(≤ 2.50×)"),
            Figure(NAME, "p99 ours/bare (cpu0)", rp0, "×", "(≤ 3.00×)"),
        ]
    finally:
        ctx.destroy(linger=0)
        if attached is not None:
            attached.close()
        machine.shutdown()
        finish(reaper, root, args)
    return figures


if __name__ == "__main__":
    from tests.bench.common import run_alone

    run_alone(__doc__, add_arguments, run)
