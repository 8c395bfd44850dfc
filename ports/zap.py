"""ZAP handler (RFC 27): who is connecting, from the OS, never from the payload.

Every server socket sets ``zap_domain`` to its port name. libzmq asks this handler about
each new connection, passing the peer's ``localhost:uid:gid:pid`` taken from
SO_PEERCRED. The handler asks the port's policy whether that pid may connect (for NT
ports: a live process of this boot in the kernel's process table, on the port's
allow-list) and stamps the connection with ``User-Id`` = the pid. A client that chose its
own routing id is refused, so routing ids cannot be used to impersonate another peer.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import zmq

from nt.log import Logger

ZAP_ENDPOINT = "inproc://zeromq.zap.01"

# policy(pid, uid) -> (allowed, reason)
Policy = Callable[[int, int], tuple[bool, str]]


class ZapHandler:
    """One per process (per zmq context); dispatches on the ZAP domain = port name."""

    def __init__(self, ctx: zmq.Context, log: Logger) -> None:
        self._ctx = ctx
        self._log = log
        self._policies: dict[bytes, Policy] = {}
        self._lock = threading.Lock()
        self._sock = ctx.socket(zmq.REP)
        self._sock.linger = 0
        self._sock.bind(ZAP_ENDPOINT)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="zap", daemon=True)
        self._thread.start()

    def register(self, domain: str, policy: Policy) -> None:
        with self._lock:
            self._policies[domain.encode()] = policy

    def unregister(self, domain: str) -> None:
        with self._lock:
            self._policies.pop(domain.encode(), None)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)

    def _loop(self) -> None:
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        while not self._stop.is_set():
            if not poller.poll(100):
                continue
            try:
                request = self._sock.recv_multipart()
            except zmq.ZMQError:
                return
            self._sock.send_multipart(self._answer(request))
        self._sock.close(linger=0)

    def _answer(self, request: list[bytes]) -> list[bytes]:
        version, request_id = request[0], request[1]

        def reply(code: bytes, text: str, user: bytes = b"") -> list[bytes]:
            return [version, request_id, code, text.encode(), user, b""]

        if len(request) < 6:
            return reply(b"500", "malformed ZAP request")
        domain, address, identity, mechanism = request[2], request[3], request[4], request[5]
        if mechanism != b"NULL":
            return reply(b"400", "unsupported mechanism")
        try:
            _host, uid, _gid, pid = address.decode().rsplit(":", 3)
            pid_i, uid_i = int(pid), int(uid)
        except ValueError:
            return reply(b"400", "no peer credentials")
        if identity:
            self._refused(domain, pid_i, uid_i, "client-chosen routing id")
            return reply(b"400", "client-chosen routing id")
        with self._lock:
            policy = self._policies.get(domain)
        if policy is None:
            return reply(b"400", "no such port")
        try:
            allowed, why = policy(pid_i, uid_i)
        except Exception as exc:  # a policy failure must refuse, never crash the handler
            allowed, why = False, f"policy error: {exc!r}"
        if not allowed:
            self._refused(domain, pid_i, uid_i, why)
            return reply(b"400", why)
        return reply(b"200", "OK", str(pid_i).encode())

    def _refused(self, domain: bytes, pid: int, uid: int, why: str) -> None:
        self._log.warning(
            "port.connect_refused", port=domain.decode(), peer_pid=pid, peer_uid=uid, reason=why
        )


def same_uid(uid: int) -> bool:
    return uid == os.geteuid()
