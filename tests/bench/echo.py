"""Floor servers (perf-floor.md §1 (d) and §2 "proxy-threads ×1"), run as child processes.

    python -m tests.bench.echo router ipc://...   ROUTER echo in the main thread
    python -m tests.bench.echo proxy ipc://...    zmq.proxy(ROUTER, DEALER inproc) + one
                                                  DEALER worker thread
    python -m tests.bench.echo component ipc://... perf-floor §3's minimal component: imports
                                                  zmq, msgpack and structlog, connects a
                                                  DEALER, says ready, idles

Both unpack the msgpack request, build a reply that echoes its data, pack it and send it
back: the trivial handler of perf-floor. Each prints ``ready`` once bound and exits when
its stdin closes (the parent went away), so a floor server never outlives the benchmark.
"""

from __future__ import annotations

import os
import sys
import threading

import msgpack
import zmq


def _reply(payload: bytes) -> bytes:
    msg = msgpack.unpackb(payload, raw=False)
    return msgpack.packb(
        {"type": 2, "id": msg["id"], "status": 0, "data": msg["data"]}, use_bin_type=True
    )


def router_echo(ctx: zmq.Context, endpoint: str) -> None:
    sock = ctx.socket(zmq.ROUTER)
    sock.linger = 0
    sock.bind(endpoint)
    _ready()
    while True:
        rid, payload = sock.recv_multipart()
        sock.send_multipart([rid, _reply(payload)])


def proxy_echo(ctx: zmq.Context, endpoint: str) -> None:
    front = ctx.socket(zmq.ROUTER)
    front.linger = 0
    front.bind(endpoint)
    back = ctx.socket(zmq.DEALER)
    back.linger = 0
    back.bind("inproc://workers")

    def worker() -> None:
        sock = ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.connect("inproc://workers")
        while True:
            rid, payload = sock.recv_multipart()
            sock.send_multipart([rid, _reply(payload)])

    threading.Thread(target=worker, daemon=True).start()
    _ready()
    zmq.proxy(front, back)


def component(ctx: zmq.Context, endpoint: str) -> None:
    import structlog  # noqa: F401 - the import is the point: a component's start-up cost

    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(endpoint)
    _ready()
    threading.Event().wait()


def _ready() -> None:
    sys.stdout.write("ready\n")
    sys.stdout.flush()


def _watch_stdin() -> None:
    while sys.stdin.buffer.read(4096):
        pass
    os._exit(0)


def main() -> None:
    mode, endpoint = sys.argv[1], sys.argv[2]
    threading.Thread(target=_watch_stdin, daemon=True).start()
    ctx = zmq.Context()
    {"router": router_echo, "proxy": proxy_echo, "component": component}[mode](ctx, endpoint)


def start(reaper, mode: str, endpoint: str):
    """Start a floor server as a child of ``reaper``; return it once it is bound."""
    import subprocess

    from tests.bench.common import PY, REPO

    p = reaper.popen(
        [PY, "-m", "tests.bench.echo", mode, endpoint],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    line = p.stdout.readline()
    if line.strip() != b"ready":
        p.kill()
        raise RuntimeError(f"echo server {mode} did not start: {line!r}")
    return p


def request(size: int, msg_id: int = 0) -> dict:
    """An LPC-like request map whose packed size is exactly ``size`` bytes (>= 40)."""
    base = {"type": 1, "id": msg_id, "api": 0x10002, "data": b""}
    overhead = len(msgpack.packb(base, use_bin_type=True))
    pad = size - overhead
    if pad < 0:
        raise ValueError(f"size {size} below the {overhead}-byte minimum")
    data = b"x" * pad
    # a bin header grows by one byte at 256 and by two more at 65536
    while len(msgpack.packb(dict(base, data=data), use_bin_type=True)) > size and data:
        data = data[:-1]
    return dict(base, data=data)


if __name__ == "__main__":
    main()
