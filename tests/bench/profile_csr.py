"""Where a CSR call's time goes: a diagnostic for csr_rtt / csr_throughput misses.

    python -m tests.bench.profile_csr [--calls 5000]

Not part of the default run (``python -m tests.bench``). Three parts:

1. costs: each per-call step of the port machinery timed alone, in-process, µs per op
   (sign, verify, unpack, a ``csr.api`` log event through nt.log, a zmq.Poller built per
   receive, a cross-thread hand-off through SimpleQueue and through inproc PUSH/PULL);
2. profiles: cProfile of the client (``Connection.call``) and of the server's port thread
   and request thread (tests/bench/portserver.py with ``profile``), sorted by own time;
3. launcher: what the ``ntctl boot --detach`` daemon spends per log line while it tails a
   log that grows by one ``csr.api`` event per call (its console viewer, under cProfile,
   in a child process), CPU µs per event.

cProfile inflates Python-heavy code; read the profiles for proportions, part 1 for
absolute costs.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import zmq

from tests.bench import portserver
from tests.bench.common import PY, REPO, Reaper, banner, temp_file_api


def _per_op(fn, n: int = 20000) -> float:
    for _ in range(min(n, 1000)):
        fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e6


def costs(tmp: Path) -> None:
    import dataclasses

    import structlog

    from nt import log as ntlog
    from ports import wire
    from ports.contract import ClientContext

    banner("1. per-step costs, µs per operation (in-process, one thread)")
    key = os.urandom(32)
    frames = wire.encode(key, wire.LPC_REQUEST, 1, 1, 1, 0x10002, {})
    reply = wire.encode(key, wire.LPC_REPLY, 1, 1, 1, 0, {"unique_id": 7})
    ntlog.configure("csrss.exe", os.getpid(), 1, "bench", tmp)
    log = structlog.get_logger()
    ctx = zmq.Context()
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    a.bind("inproc://x")
    b.connect("inproc://x")
    r, w = os.pipe()
    client = ClientContext(1, "x.exe", 1, {}, 1, "p", {})

    def poller() -> None:
        p = zmq.Poller()
        p.register(a, zmq.POLLIN)
        p.register(r, zmq.POLLIN)
        p.poll(0)

    rows = [
        (
            "wire.encode request (pack + HMAC-SHA256)",
            lambda: wire.encode(key, wire.LPC_REQUEST, 1, 1, 1, 0x10002, {}),
        ),
        ("wire.verify (HMAC check + header unpack)", lambda: wire.verify(key, frames)),
        ("wire.unpack_body (bounded msgpack)", lambda: wire.unpack_body(reply[1], 65536)),
        (
            "dataclasses.replace(ClientContext) per call",
            lambda: dataclasses.replace(client, _msg_id=3),
        ),
        ("zmq.Poller() + 2 register + poll(0) per receive", poller),
        (
            "csr.api event through nt.log (one JSON line)",
            lambda: log.info(
                "csr.api",
                api="BasepGetTempFile",
                api_number="0x00010002",
                caller_pid=1,
                status="0x00000000",
                status_name="STATUS_SUCCESS",
            ),
        ),
    ]
    for label, fn in rows:
        print(f"  {label:52s} {_per_op(fn):7.2f}")
    ctx.destroy(linger=0)
    os.close(r)
    os.close(w)

    # Hand-offs between two threads: a round trip = two wake-ups.
    for label, rtt in (
        ("SimpleQueue ping-pong (port -> request thread)", _queue_rtt),
        ("inproc PAIR ping-pong (request -> port thread)", _inproc_rtt),
    ):
        print(f"  {label:52s} {rtt() / 2:7.2f}  (per hand-off: half a round trip)")


def _queue_rtt(n: int = 5000) -> float:
    q1, q2 = queue.SimpleQueue(), queue.SimpleQueue()

    def echo() -> None:
        while (x := q1.get()) is not None:
            q2.put(x)

    t = threading.Thread(target=echo)
    t.start()
    t0 = time.perf_counter()
    for i in range(n):
        q1.put(i)
        q2.get()
    took = (time.perf_counter() - t0) / n * 1e6
    q1.put(None)
    t.join()
    return took


def _inproc_rtt(n: int = 5000) -> float:
    ctx = zmq.Context()
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    a.bind("inproc://rtt")
    b.connect("inproc://rtt")

    def echo() -> None:
        while (x := b.recv()) != b"stop":
            b.send(x)

    t = threading.Thread(target=echo)
    t.start()
    t0 = time.perf_counter()
    for _ in range(n):
        a.send(b"x")
        a.recv()
    took = (time.perf_counter() - t0) / n * 1e6
    a.send(b"stop")
    t.join()
    ctx.destroy(linger=0)
    return took


def profiles(tmp: Path, reaper: Reaper, calls: int) -> None:
    banner("2. cProfile: client and the port server's threads (portserver, with log line)")
    key = os.urandom(32)
    endpoint = f"ipc://{tmp}/prof"
    server = portserver.start(reaper, endpoint, "log", key, str(tmp / "plog"), profile=True)
    ctx = zmq.Context()
    conn = portserver.connect(ctx, endpoint, key)
    api = temp_file_api()
    for _ in range(200):
        conn.call(api, {})
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for _ in range(calls):
        conn.call(api, {})
    prof.disable()
    took = (time.perf_counter() - t0) / calls * 1e6
    ctx.destroy(linger=0)
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(20)
    print(f"\n##### client: {calls} calls, {took:.0f} µs per call under the profiler")
    print(_trim(out.getvalue()))
    server.stdin.close()
    text = server.stdout.read().decode()
    server.wait(timeout=10)
    print(_trim(text))


def _trim(text: str) -> str:
    """Drop pstats' preamble lines that only name files."""
    keep = []
    for line in text.splitlines():
        if line.strip().startswith(("Ordered by", "List reduced")) or not line.strip():
            continue
        keep.append(line[:150])
    return "\n".join(keep)


def launcher(tmp: Path, reaper: Reaper, calls: int) -> None:
    banner("3. the launcher daemon's console viewer, per log line")
    key = os.urandom(32)
    endpoint = f"ipc://{tmp}/launch"
    log_dir = tmp / "llog"
    server = portserver.start(reaper, endpoint, "log", key, str(log_dir))
    follower = reaper.popen(
        [PY, "-m", "tests.bench.profile_csr", "--follow", str(log_dir)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    if follower.stdout.readline().strip() != "ready":
        raise RuntimeError("follower did not start")
    ctx = zmq.Context()
    conn = portserver.connect(ctx, endpoint, key)
    api = temp_file_api()
    t0 = time.perf_counter()
    for _ in range(calls):
        conn.call(api, {})
    took = time.perf_counter() - t0
    time.sleep(0.3)  # let the viewer drain
    ctx.destroy(linger=0)
    follower.stdin.close()
    print(
        f"{calls} calls in {took:.2f} s ({took / calls * 1e6:.0f} µs per call) while the "
        "viewer tailed the log"
    )
    print(_trim(follower.stdout.read()))
    follower.wait(timeout=10)
    server.kill()


def follow_main(log_dir: str) -> None:
    """Child: ntctl.boot.Launcher's console viewer (plain, as --daemon runs it) on log_dir."""
    from rich.console import Console

    from ntctl.boot import Launcher

    sink = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    launcher = Launcher(Path(log_dir), "", "win10", [], Console(file=sink), plain=True)
    stop = threading.Event()
    counted = {"events": 0}
    import ntctl.boot as boot_mod

    real_follow = boot_mod.follow

    def counting_follow(*args, **kw):
        for ev in real_follow(*args, **kw):
            counted["events"] += 1
            yield ev

    boot_mod.follow = counting_follow
    prof = cProfile.Profile()
    result = {}

    def viewer() -> None:
        c0 = time.thread_time()
        prof.enable()
        launcher._console(Path(log_dir), stop)
        prof.disable()
        result["cpu"] = time.thread_time() - c0

    t = threading.Thread(target=viewer)
    t.start()
    print("ready", flush=True)
    sys.stdin.read()
    stop.set()
    t.join(timeout=10)
    n = max(1, counted["events"])
    print(
        f"viewer: {counted['events']} events, {result.get('cpu', 0):.2f} s CPU of its thread"
        f" = {result.get('cpu', 0) / n * 1e6:.0f} µs CPU per event"
    )
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(20)
    print(out.getvalue())


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--follow":
        follow_main(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args()
    reaper = Reaper()
    tmp = Path(tempfile.mkdtemp(prefix="ntbench.prof."))
    try:
        costs(tmp)
        profiles(tmp, reaper, args.calls)
        launcher(tmp, reaper, args.calls)
    finally:
        reaper.cleanup()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
