"""csr_throughput: csrss ApiPort capacity with 16 concurrent clients, 8 calls in flight each.

Clients: 4 processes x 4 connections (one thread per connection), each a process of the
machine (attached through ``ntctl.machine.Machine``, registered with csrss by SmExecPgm,
connected with ``nt.csrclient.connect``). Each connection runs a closed loop of
``Connection.call_batch`` with 8 BaseSrvGetTempFile requests: send 8, collect 8, repeat.

Diagnostic: the same clients against tests/bench/portserver.py (the real PortServer with a
GetTempFile-like dispatch, no csrss, no log line, no launcher tailing logs): how much of
the gap is ports/ itself.

Floor: perf-floor.md §2 "proxy-threads ×1": a child process running
``zmq.proxy(ROUTER ipc://, DEALER inproc://)`` with one worker thread (unpack, build the
reply, pack), driven by the *same* client processes and threads with bare DEALER sockets
and the same 8-deep batches, msgpack on both sides. Floor and project runs alternate;
each run is 0.5 s warm-up then 2 s measured (messages whose batch completed inside the
window). Target: ours >= 50 % of the floor's msg/s.

    python -m tests.bench.bench_csr_throughput [--tp-reps 3] [--tp-duration 2.0]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from tests.bench import echo, portserver
from tests.bench.common import (
    PY,
    REPO,
    BenchMachine,
    CpuMeter,
    Figure,
    Reaper,
    Series,
    banner,
    finish,
    quantile,
    ratio,
)

NAME = "csr_throughput"
PROCESSES, CONNECTIONS, WINDOW = 4, 4, 8
WARMUP = 0.5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(NAME)
    g.add_argument("--tp-reps", type=int, default=3, help="runs per configuration")
    g.add_argument("--tp-duration", type=float, default=2.0, help="measured seconds per run")


# -- the client process --------------------------------------------------------------------
class ClientProcess:
    """Runs inside each client process: ``NCONN`` csrss connections and bare sockets."""

    def __init__(
        self, root: Path, bare_endpoint: str, diag_endpoint: str, key: bytes, nconn: int
    ) -> None:
        import zmq

        from tests.bench import portserver
        from tests.bench.common import attach_csr_clients, temp_file_api

        self.machine, clients, _ = attach_csr_clients(root, nconn)
        self.conns = {"ours": [c.conn for c in clients]}
        self.api = temp_file_api()
        self.ctx = zmq.Context()
        self.socks = []
        for _ in range(nconn):
            s = self.ctx.socket(zmq.DEALER)
            s.linger = 0
            s.connect(bare_endpoint)
            self.socks.append(s)
        self.conns["ports"] = [
            portserver.connect(self.ctx, diag_endpoint, key) for _ in range(nconn)
        ]

    def close(self) -> None:
        self.ctx.destroy(linger=0)
        self.machine.close()

    def _lpc(self, mode: str, i: int, stop: float, window: tuple[float, float], out: dict) -> None:
        conn, batch = self.conns[mode][i], [(self.api, {})] * WINDOW
        count, errors, lat = 0, 0, []
        clock = time.monotonic
        while (t0 := clock()) < stop:
            replies = conn.call_batch(batch, 10.0)
            t1 = clock()
            bad = sum(1 for r in replies if not r.ok)
            if window[0] <= t1 <= window[1]:
                count += WINDOW - bad
                errors += bad
                lat.append((t1 - t0) * 1e6)
        out[i] = (count, errors, lat)

    def _bare(self, i: int, stop: float, window: tuple[float, float], out: dict) -> None:
        import msgpack

        sock, req = self.socks[i], echo.request(61)
        packb, unpackb = msgpack.packb, msgpack.unpackb
        count, lat = 0, []
        clock = time.monotonic
        while (t0 := clock()) < stop:
            for k in range(WINDOW):
                req["id"] = k
                sock.send(packb(req, use_bin_type=True))
            for _ in range(WINDOW):
                unpackb(sock.recv(), raw=False)
            t1 = clock()
            if window[0] <= t1 <= window[1]:
                count += WINDOW
                lat.append((t1 - t0) * 1e6)
        out[i] = (count, 0, lat)

    def run(self, mode: str, start: float, warm: float, duration: float) -> dict:
        time.sleep(max(0.0, start - time.monotonic()))
        window = (start + warm, start + warm + duration)
        out: dict = {}
        threads = [
            threading.Thread(
                target=self._bare if mode == "bare" else self._lpc,
                args=(i, window[1], window, out)
                if mode == "bare"
                else (mode, i, window[1], window, out),
            )
            for i in range(len(self.socks))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        lat = [x for v in out.values() for x in v[2]]
        return {
            "count": sum(v[0] for v in out.values()),
            "errors": sum(v[1] for v in out.values()),
            "lat": lat[:: max(1, len(lat) // 2000)],
        }


def client_main(root: str, bare_endpoint: str, diag_endpoint: str, nconn: int) -> None:
    key = bytes.fromhex(sys.stdin.readline().strip())
    cp = ClientProcess(Path(root), bare_endpoint, diag_endpoint, key, nconn)
    try:
        print(json.dumps({"ready": os.getpid()}), flush=True)
        for line in sys.stdin:
            cmd = json.loads(line)
            if cmd["cmd"] == "quit":
                break
            result = cp.run(cmd["mode"], cmd["start"], cmd["warm"], cmd["duration"])
            print(json.dumps(result), flush=True)
    finally:
        cp.close()


# -- the harness ---------------------------------------------------------------------------
def _start_clients(
    reaper: Reaper, root: Path, endpoint: str, diag: str, key: bytes
) -> list[subprocess.Popen]:
    procs = [
        reaper.popen(
            [PY, "-m", "tests.bench.bench_csr_throughput", "--client", str(root), endpoint, diag],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    for p in procs:
        p.stdin.write(key.hex() + "\n")
        p.stdin.flush()
    for p in procs:
        line = p.stdout.readline()
        if not line or "ready" not in json.loads(line):
            raise RuntimeError(f"client {p.pid} did not start: {line!r}")
    return procs


def _run(procs, mode: str, duration: float) -> list[dict]:
    start = time.monotonic() + 0.05
    cmd = json.dumps(
        {"cmd": "run", "mode": mode, "start": start, "warm": WARMUP, "duration": duration}
    )
    for p in procs:
        p.stdin.write(cmd + "\n")
        p.stdin.flush()
    return [json.loads(p.stdout.readline()) for p in procs]


def run(args: argparse.Namespace) -> list[Figure]:
    banner(NAME)
    reaper = Reaper()
    root = Path(tempfile.mkdtemp(prefix="ntbench.tp."))
    machine = BenchMachine(root, reaper)
    figures: list[Figure] = []
    procs: list[subprocess.Popen] = []
    try:
        machine.boot()
        csrss = next(
            p["pid"] for p in machine.ps() if p["image"] == "csrss.exe" and p["session"] == 1
        )
        endpoint = f"ipc://{root}/proxy"
        server = echo.start(reaper, "proxy", endpoint)
        key = os.urandom(32)
        diag_ep = f"ipc://{root}/ports"
        diag = portserver.start(reaper, diag_ep, "nolog", key, str(root / "portlog"))
        procs = _start_clients(reaper, root, endpoint, diag_ep, key)
        clients = [p.pid for p in procs]
        print(
            f"{PROCESSES} client processes x {CONNECTIONS} connections, window {WINDOW}; "
            f"csrss pid {csrss}, proxy pid {server.pid}; {args.tp_reps} x "
            f"({WARMUP} s warm-up + {args.tp_duration} s) per configuration"
        )
        modes = ["bare", "ours", "ports"]
        rates = {m: Series(m) for m in modes}
        lats = {m: Series(m) for m in modes}
        servers = {"bare": server.pid, "ours": csrss, "ports": diag.pid}
        for rep in range(args.tp_reps):
            order = modes[rep % 3 :] + modes[: rep % 3]
            for mode in order:
                groups = {"clients": clients, "server": [servers[mode]]}
                if mode == "ours":
                    groups["launcher"] = [machine.launcher_pid()]
                with CpuMeter(groups) as cpu:
                    results = _run(procs, mode, args.tp_duration)
                count = sum(r["count"] for r in results)
                errors = sum(r["errors"] for r in results)
                if errors or not count:
                    print(f"  {mode}: {errors} failed calls, {count} good\n{machine.diagnose()}")
                rate = count / args.tp_duration
                rates[mode].add([rate])
                lat = [x for r in results for x in r["lat"]]
                lats[mode].add(lat)
                print(
                    f"  rep {rep} {mode:5s} {rate:9,.0f} msg/s  batch latency µs median "
                    f"{quantile(lat, 0.5):7.0f} p99 {quantile(lat, 0.99):7.0f}  errors {errors}"
                    f"  {cpu.text(count, 'msg')}",
                    flush=True,
                )
        threads = {}
        for mode in ("ours", "ports"):
            try:
                threads[mode] = psutil.Process(servers[mode]).num_threads()
            except psutil.Error:
                threads[mode] = -1
        print(
            f"threads in the server after the runs: csrss {threads['ours']}, "
            f"portserver {threads['ports']} (request pool grows to MaxRequestThreads=16)"
        )
        bare, ours = rates["bare"].median, rates["ours"].median
        share = ratio(ours, bare)
        pshare = ratio(rates["ports"].median, bare)
        print(
            f"\nmsg/s: bare {bare:,.0f} (runs {', '.join(f'{r[0]:,.0f}' for r in rates['bare'].reps)})"
            f"; ours {ours:,.0f} (runs {', '.join(f'{r[0]:,.0f}' for r in rates['ours'].reps)})"
        )
        print(
            f"diagnostic: ports only (PortServer, no csrss, no log line, nobody tailing) "
            f"{rates['ports'].median:,.0f} msg/s = {pshare:.2f} of bare"
        )
        print(
            f"ours / bare = {share:.2f}  (latency of an 8-call batch, µs: bare "
            f"{lats['bare'].row()}; ours {lats['ours'].row()})"
        )
        figures += [
            Figure(NAME, "bare proxy-threads×1 msg/s", bare, "msg/s"),
            Figure(NAME, "ours msg/s", ours, "msg/s"),
            Figure(NAME, "ours / bare", share * 100, "%", "≥ 50 %", share >= 0.5),
            Figure(NAME, "ours batch-of-8 latency p99", lats["ours"].p99, "µs"),
            Figure(NAME, "ports only / bare (diag.)", pshare * 100, "%"),
        ]
    finally:
        for p in procs:
            try:
                p.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                p.stdin.flush()
                p.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                p.kill()
        machine.shutdown()
        finish(reaper, root, args)
    return figures


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        client_main(sys.argv[2], sys.argv[3], sys.argv[4], CONNECTIONS)
        sys.exit(0)
    from tests.bench.common import run_alone

    run_alone(__doc__, add_arguments, run)
