"""The client end of a port: a DEALER socket with synchronous LPC calls.

``Connection.call`` sends one signed request and waits for the reply with the same
message id, its deadline (STATUS_IO_TIMEOUT) or the server's death, whichever comes
first: when the kernel reports the server process gone, ``disconnect()`` wakes every
waiter at once with STATUS_PORT_DISCONNECTED. Calls on one connection are serialised,
as an LPC caller's thread is; ``call_batch`` keeps several requests in flight.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from typing import Any

import zmq

from nt.status import NtStatus, status_name
from ports import wire
from ports.contract import CONNECT_VERSION, Reply
from ports.schema import Api, SchemaError, validate

CONNECT_TIMEOUT = 5.0


class PortError(Exception):
    """A port operation failed with an NTSTATUS."""

    def __init__(self, status: int, what: str = "") -> None:
        self.status = int(status)
        super().__init__(f"{what}: {status_name(status)}" if what else status_name(status))


class Connection:
    def __init__(
        self,
        ctx: zmq.Context,
        *,
        port: str,
        endpoint: str,
        key: bytes,
        max_message_length: int,
        server_pid: int | None = None,
    ) -> None:
        self.port = port
        self.endpoint = endpoint
        self.key = key
        self.max_message_length = max_message_length
        self.server_pid = server_pid
        self.conn_id = 0
        self.accept_info: dict = {}
        self._ctx = ctx
        self._seq = itertools.count(1)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        self._wake_lock = threading.Lock()  # disconnect() must not wait for a call
        self._dead = False
        self._sock: zmq.Socket | None = None
        self._poller: zmq.Poller | None = None

    # -- connect / close --------------------------------------------------------
    def connect(self, info: dict | None = None, timeout: float = CONNECT_TIMEOUT) -> None:
        """CONNECT{port, info, proto}; raises PortError when refused or unreachable."""
        sock = self._ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.immediate = 1
        sock.reconnect_ivl = 10
        monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_AUTH)
        sock.connect(self.endpoint)
        self._sock = sock
        try:
            msg_id = next(self._ids)
            body = {"port": self.port, "info": info or {}, "proto": CONNECT_VERSION}
            frames = wire.encode(
                self.key, wire.LPC_CONNECTION_REQUEST, 0, next(self._seq), msg_id, 0, body
            )
            reply = self._handshake(frames, msg_id, timeout, monitor)
        finally:
            sock.disable_monitor()
            monitor.close(linger=0)
        if reply.status != NtStatus.STATUS_SUCCESS:
            self.close(notify=False)
            raise PortError(reply.status, f"connect {self.port}")
        self.conn_id = int(reply.body.get("conn", 0))
        self.accept_info = reply.body.get("info") or {}

    def close(self, notify: bool = True) -> None:
        with self._lock:
            self._close_wake_pipe()
            if self._sock is None:
                return
            if notify and not self._dead and self.conn_id:
                try:
                    self._sock.send_multipart(
                        wire.encode(
                            self.key, wire.LPC_PORT_CLOSED, self.conn_id, next(self._seq), 0, 0, {}
                        ),
                        flags=zmq.NOBLOCK,
                    )
                except zmq.ZMQError:
                    pass
            self._sock.close(linger=0)
            self._sock = None

    def _close_wake_pipe(self) -> None:
        """Close the wake pipe once. The numbers are forgotten with it: the runtime still
        calls disconnect() on closed connections, and a descriptor number is reused by
        the next open() or pipe(), which must not receive a stray byte."""
        with self._wake_lock:
            for fd in (self._wake_r, self._wake_w):
                if fd >= 0:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self._wake_r = self._wake_w = -1

    def disconnect(self) -> None:
        """The server died: fail every pending and future call with PORT_DISCONNECTED."""
        self._dead = True
        with self._wake_lock:
            if self._wake_w < 0:
                return
            try:
                os.write(self._wake_w, b"x")
            except OSError:
                pass

    @property
    def connected(self) -> bool:
        return self._sock is not None and not self._dead

    # -- calls ------------------------------------------------------------------
    def call(self, api: int, body: dict | None = None, timeout: float | None = 30.0) -> Reply:
        return self.call_batch([(api, body or {})], timeout)[0]

    def error_event(self, body: dict, timeout: float | None = 30.0) -> Reply:
        """LPC_ERROR_EVENT: the kernel hands a hard error to the hard-error port."""
        return self.call_batch([(0, body)], timeout, wire.LPC_ERROR_EVENT)[0]

    def call_batch(
        self,
        calls: list[tuple[int, dict]],
        timeout: float | None = 30.0,
        mtype: int = wire.LPC_REQUEST,
    ) -> list[Reply]:
        """Send every request, then collect every reply (several in flight)."""
        with self._lock:
            if self._sock is None or self._dead:
                return [Reply(NtStatus.STATUS_PORT_DISCONNECTED) for _ in calls]
            replies: dict[int, Reply] = {}
            ids = []
            for api, body in calls:
                payload = wire.pack_body(body)
                msg_id = next(self._ids)
                ids.append(msg_id)
                if len(payload) > self.max_message_length:
                    replies[msg_id] = Reply(NtStatus.STATUS_PORT_MESSAGE_TOO_LONG)
                    continue
                frames = wire.encode(
                    self.key, mtype, self.conn_id, next(self._seq), msg_id, api, payload
                )
                try:
                    self._sock.send_multipart(frames, flags=zmq.NOBLOCK)
                except zmq.Again:  # no pipe to the server (IMMEDIATE): it is gone
                    replies[msg_id] = Reply(NtStatus.STATUS_PORT_DISCONNECTED)
            pending = {i for i in ids if i not in replies}
            deadline = None if timeout is None else time.monotonic() + timeout
            while pending:
                got = self._recv_one(pending, deadline)
                if got is None:  # timeout or disconnect: every remaining call fails alike
                    status = (
                        NtStatus.STATUS_PORT_DISCONNECTED
                        if self._dead
                        else NtStatus.STATUS_IO_TIMEOUT
                    )
                    for i in pending:
                        replies[i] = Reply(status)
                    break
                msg_id, reply = got
                replies[msg_id] = reply
                pending.discard(msg_id)
            return [replies[i] for i in ids]

    def datagram(self, api: int, body: dict | None = None) -> int:
        payload = wire.pack_body(body or {})
        if len(payload) > self.max_message_length:
            return NtStatus.STATUS_PORT_MESSAGE_TOO_LONG
        with self._lock:
            if self._sock is None or self._dead:
                return NtStatus.STATUS_PORT_DISCONNECTED
            frames = wire.encode(
                self.key, wire.LPC_DATAGRAM, self.conn_id, next(self._seq), 0, api, payload
            )
            try:
                # Never block: with IMMEDIATE a DEALER whose server is gone has no pipe,
                # and a blocking send would wait for one forever.
                self._sock.send_multipart(frames, flags=zmq.NOBLOCK)
            except zmq.Again:
                return NtStatus.STATUS_PORT_DISCONNECTED
        return NtStatus.STATUS_SUCCESS

    # -- receiving --------------------------------------------------------------
    def _handshake(
        self, frames: list[bytes], msg_id: int, timeout: float, monitor: zmq.Socket
    ) -> Reply:
        """Send CONNECT once the pipe is up (IMMEDIATE), then wait for the reply. A ZAP
        refusal only shows on the monitor: it becomes STATUS_PORT_CONNECTION_REFUSED."""
        deadline = time.monotonic() + timeout
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLOUT)
        poller.register(monitor, zmq.POLLIN)
        sent = False
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return Reply(NtStatus.STATUS_IO_TIMEOUT)
            events = dict(poller.poll(left * 1000))
            if monitor in events:
                # A monitor event is [u16 event, u32 value][endpoint] (zmq_socket_monitor);
                # parsed here because zmq.utils.monitor drags in asyncio.
                frame = monitor.recv_multipart()[0]
                if int.from_bytes(frame[:2], "little") == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                    return Reply(NtStatus.STATUS_PORT_CONNECTION_REFUSED)
            if not sent and events.get(self._sock, 0) & zmq.POLLOUT:
                self._sock.send_multipart(frames, flags=zmq.NOBLOCK)
                sent = True
                poller.modify(self._sock, zmq.POLLIN)
                continue
            if sent and events.get(self._sock, 0) & zmq.POLLIN:
                got = self._parse(self._sock.recv_multipart(), {msg_id})
                if got is not None:
                    return got[1]

    def _recv_one(self, pending: set[int], deadline: float | None) -> tuple[int, Reply] | None:
        if self._poller is None:  # one poller for the connection's life, not one per reply
            self._poller = zmq.Poller()
            self._poller.register(self._sock, zmq.POLLIN)
            self._poller.register(self._wake_r, zmq.POLLIN)
        poller = self._poller
        while True:
            if self._dead:
                return None
            if self._sock.get(zmq.EVENTS) & zmq.POLLIN:  # already queued: no poll needed
                got = self._parse(self._sock.recv_multipart(), pending)
                if got is not None:
                    return got
                continue
            left = None if deadline is None else (deadline - time.monotonic()) * 1000
            if left is not None and left <= 0:
                return None
            poller.poll(left)

    def _parse(self, frames: list[bytes], pending: set[int]) -> tuple[int, Reply] | None:
        try:
            header, body = wire.verify(self.key, frames)
            if header.type != wire.LPC_REPLY or header.msg_id not in pending:
                return None  # STATUS_REPLY_MESSAGE_MISMATCH: a stray or replayed reply
            data: Any = wire.unpack_body(body, max(self.max_message_length, 1 << 22))
        except wire.WireError:
            return None
        return header.msg_id, Reply(header.code, data if isinstance(data, dict) else {})


def call_api(conn: Connection, api: Api, body: dict, timeout: float | None = 30.0) -> Reply:
    """The one client path every stub takes: check ``body`` against the schema the server
    checks (``api.request``), then call. A body the server would refuse is answered here,
    without a round trip, with the status the server would give: STATUS_INVALID_PARAMETER."""
    try:
        validate(api.request, body)
    except SchemaError:
        return Reply(NtStatus.STATUS_INVALID_PARAMETER)
    return conn.call(api.number, body, timeout)
