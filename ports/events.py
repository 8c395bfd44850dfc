"""The kernel's process-exit notifications (PUB), signed like every other frame.

The kernel learns of every exit at once (pidfd) and publishes ``{pid, status, image}``.
Each process subscribes: a client whose server died fails its pending calls with
STATUS_PORT_DISCONNECTED, a server closes that client's connections (LPC_PORT_CLOSED),
smss learns that csrss or its initial command died.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

import zmq

from nt.log import Logger
from ports import wire

TOPIC = b"exit"


class ExitPublisher:
    """Kernel side. Thread-safe: exits are published from the process monitor."""

    def __init__(self, ctx: zmq.Context, endpoint: str, key: bytes) -> None:
        self._sock = ctx.socket(zmq.PUB)
        self._sock.linger = 0
        self._sock.bind(endpoint)
        self._key = key
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def publish(self, pid: int, status: int, image: str) -> None:
        with self._lock:
            frames = wire.encode(
                self._key,
                wire.LPC_DATAGRAM,
                0,
                next(self._seq),
                0,
                0,
                {"pid": pid, "status": status & 0xFFFFFFFF, "image": image},
            )
            self._sock.send_multipart([TOPIC, *frames])

    def close(self) -> None:
        with self._lock:
            self._sock.close(linger=0)


class ExitSubscriber:
    """Process side: one thread, callbacks run in it (keep them short)."""

    def __init__(self, ctx: zmq.Context, endpoint: str, key: bytes, log: Logger) -> None:
        self._ctx, self._endpoint, self._key, self._log = ctx, endpoint, key, log
        self._callbacks: list[Callable[[int, int, str], None]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._last_seq = 0
        self._thread = threading.Thread(target=self._loop, name="exit-events", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(2.0)

    def subscribe(self, callback: Callable[[int, int, str], None]) -> None:
        with self._lock:
            self._callbacks.append(callback)

    def unsubscribe(self, callback: Callable[[int, int, str], None]) -> None:
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)

    def _loop(self) -> None:
        sock = self._ctx.socket(zmq.SUB)
        sock.linger = 0
        sock.setsockopt(zmq.SUBSCRIBE, TOPIC)
        sock.connect(self._endpoint)
        self._ready.set()
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        while not self._stop.is_set():
            if not poller.poll(100):
                continue
            frames = sock.recv_multipart()
            try:
                header, body = wire.verify(self._key, frames[1:])
                event = wire.unpack_body(body, 4096)
                pid, status, image = int(event["pid"]), int(event["status"]), str(event["image"])
            except (wire.WireError, KeyError, TypeError, ValueError):
                self._log.warning("port.bad_event")
                continue
            if header.seq <= self._last_seq:
                continue
            self._last_seq = header.seq
            with self._lock:
                callbacks = list(self._callbacks)
            for cb in callbacks:
                try:
                    cb(pid, status, image)
                except Exception:
                    self._log.exception("port.exit_callback_failed")
        sock.close(linger=0)
