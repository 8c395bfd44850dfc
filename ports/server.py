"""A server port: a ZeroMQ ROUTER with NT LPC semantics.

The port thread owns the ROUTER socket: it checks each frame's MAC and sequence number,
enforces the per-client in-flight bound and the message length, and queues work for the
request threads (``ports.pool``). Request threads unpack, validate against the API's
schema, call the handler, and hand the signed reply back to the port thread over an
inproc PUSH/PULL pair (a ZeroMQ socket belongs to one thread at a time).

Connection semantics: a client's first message is CONNECT; the server's accept callback
accepts or refuses it (STATUS_PORT_CONNECTION_REFUSED). When the kernel reports that a
client process died, each of its connections is closed and ``on_closed`` runs
(LPC_PORT_CLOSED), exactly once.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import zmq

from nt.log import Logger
from nt.status import NtStatus
from ports import wire
from ports.contract import (
    CONNECT_SCHEMA,
    CONNECT_VERSION,
    PENDING,
    ClientContext,
    Handler,
    HandlerResult,
    Reply,
    dispatch,
    normalise,
)
from ports.pool import WorkerPool
from ports.schema import Protocol, SchemaError, validate
from ports.zap import Policy, ZapHandler

# csrss's ApiPort decodes server id / API id itself, then runs ports.contract.invoke.
Dispatch = Callable[[int, Any, ClientContext], HandlerResult]

# LPC_ERROR_EVENT: a hard error (HARDERROR_MSG) sent to a port named as the hard-error port.
ErrorEvent = Callable[[Any, ClientContext], HandlerResult]

# identify(pid) -> {"image", "session", "token"} or None when the pid is not ours
Identify = Callable[[int], dict | None]


WAKE = b""  # a one-frame message on the reply pipe: stop() waking the port thread


@dataclass
class _Conn:
    conn_id: int
    rid: bytes
    client: ClientContext
    inflight: int = 0
    reply_seq: Any = field(default_factory=lambda: itertools.count(1))


class PortServer:
    def __init__(
        self,
        ctx: zmq.Context,
        zap: ZapHandler,
        *,
        name: str,
        endpoint: str,
        protocol: Protocol,
        handlers: dict[int, Handler],
        key: bytes,
        identify: Identify,
        policy: Policy,
        log: Logger,
        accept: Callable[[ClientContext], Any] | None = None,
        on_closed: Callable[[ClientContext], None] | None = None,
        dispatch: Dispatch | None = None,
        error_event: ErrorEvent | None = None,
        threads: int = 1,
        max_threads: int = 1,
        max_inflight: int = 32,
        max_queue: int = 1024,
        inline: frozenset[int] = frozenset(),
    ) -> None:
        self.name = name
        self.endpoint = endpoint
        self.protocol = protocol
        self.handlers = handlers
        self.key = key
        self.log = log
        self._ctx, self._zap = ctx, zap
        self._identify, self._policy = identify, policy
        self._accept, self._on_closed, self._dispatch = accept, on_closed, dispatch
        self._error_event = error_event
        self.max_inflight, self.max_queue = max_inflight, max_queue
        # APIs whose handlers only touch in-memory state under short locks run on the port
        # thread itself (LPC's quick path): no hand-off to a request thread and back.
        self.inline = inline
        self.pool = WorkerPool(name, self._work, threads, max_threads)
        self._conns: dict[bytes, _Conn] = {}
        self._last_seq: dict[bytes, int] = {}
        self._lock = threading.Lock()
        self._conn_ids = itertools.count(1)
        self._push_lock = threading.Lock()
        self._inproc = f"inproc://reply-{id(self)}"
        self._stop = threading.Event()
        self.stats = {
            "bad_mac": 0,
            "replay": 0,
            "bad_frame": 0,
            "refused": 0,
            "busy": 0,  # requests refused with STATUS_INSUFFICIENT_RESOURCES
            "reply_dropped": 0,  # replies to a peer that is gone or does not read them
        }

    # -- lifecycle --------------------------------------------------------------
    def start(self) -> None:
        self._zap.register(self.name, self._policy)
        self._router = self._ctx.socket(zmq.ROUTER)
        self._router.linger = 0
        self._router.router_mandatory = 1
        self._router.zap_domain = self.name.encode()
        self._router.maxmsgsize = self.protocol.max_message_length + 4096
        self._router.bind(self.endpoint)
        self._pull = self._ctx.socket(zmq.PULL)
        self._pull.linger = 0
        self._pull.bind(self._inproc)
        self._push = self._ctx.socket(zmq.PUSH)
        self._push.linger = 0
        self._push.connect(self._inproc)
        self._thread = threading.Thread(
            target=self._port_loop, name=f"port:{self.name}", daemon=True
        )
        self._thread.start()
        self.pool.start()

    def stop(self) -> None:
        self._stop.set()
        with self._push_lock:  # wake the port thread now, not at its next 100 ms poll
            try:
                self._push.send(WAKE, zmq.NOBLOCK)
            except zmq.ZMQError:
                pass
        self._thread.join(timeout=2.0)
        self.pool.stop()
        self._zap.unregister(self.name)
        with self._push_lock:
            self._push.close(linger=0)

    # -- port thread ------------------------------------------------------------
    def _port_loop(self) -> None:
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        poller.register(self._pull, zmq.POLLIN)
        while not self._stop.is_set():
            for sock, _ in poller.poll(100):
                # Drain what is queued: one poll per burst, not one per message (EVENTS,
                # not zmq.Again: an exception per burst costs more than the check).
                for _ in range(256):
                    if not sock.get(zmq.EVENTS) & zmq.POLLIN:
                        break
                    if sock is self._pull:
                        frames = self._pull.recv_multipart()
                        if len(frames) > 1:  # one frame: stop()'s wake-up
                            self._forward(frames)
                    else:
                        self._receive(self._router.recv_multipart(copy=False))
        self._router.close(linger=0)
        self._pull.close(linger=0)

    def _forward(self, frames: list[bytes]) -> None:
        rid = frames[0]
        self._send(frames)
        header = frames[1]  # type is byte 1, the connection id bytes 4..8 (ports/wire.py)
        if header[1] == wire.LPC_REPLY and header[4:8] != b"\0\0\0\0":
            with self._lock:
                conn = self._conns.get(rid)
                if conn is not None and conn.inflight > 0:
                    conn.inflight -= 1

    def _receive(self, frames: list) -> None:
        rid = frames[0].bytes
        raw = [f.bytes for f in frames[1:]]
        try:
            header, body = wire.verify(self.key, raw)
        except wire.WireError as exc:
            self._count(exc.reason, rid, raw)
            return
        with self._lock:
            if header.seq <= self._last_seq.get(rid, 0):
                self.stats["replay"] += 1
                self.log.warning("port.replay", port=self.name, seq=header.seq)
                return
            self._last_seq[rid] = header.seq
            conn = self._conns.get(rid)
        if header.type == wire.LPC_CONNECTION_REQUEST:
            pid = int(frames[1].get("User-Id"))
            self.pool.submit(("connect", rid, header, body, pid))
        elif header.type in (wire.LPC_REQUEST, wire.LPC_DATAGRAM, wire.LPC_ERROR_EVENT):
            self._admit(rid, conn, header, body)
        elif header.type == wire.LPC_PORT_CLOSED and conn is not None:
            self.close_connection(rid)

    def _admit(self, rid: bytes, conn: _Conn | None, header: wire.Header, body: bytes) -> None:
        datagram = header.type == wire.LPC_DATAGRAM
        if conn is None or conn.conn_id != header.conn:
            if not datagram:  # a request before CONNECT: not a client of this port
                self._reply_now(rid, header, NtStatus.STATUS_ILLEGAL_FUNCTION)
            return
        if len(body) > self.protocol.max_message_length:
            if not datagram:
                self._reply_now(rid, header, NtStatus.STATUS_PORT_MESSAGE_TOO_LONG)
            return
        with self._lock:
            busy = conn.inflight >= self.max_inflight or self.pool.backlog() >= self.max_queue
            if not busy and not datagram:
                conn.inflight += 1
        if busy:
            self.stats["busy"] += 1
            if not datagram:
                self._reply_now(rid, header, NtStatus.STATUS_INSUFFICIENT_RESOURCES)
            return
        if header.code in self.inline and header.type == wire.LPC_REQUEST:
            self._call(conn, header, body, direct=True)
            return
        self.pool.submit(("call", conn, header, body))

    def _reply_now(self, rid: bytes, header: wire.Header, status: int) -> None:
        frames = wire.encode(
            self.key, wire.LPC_REPLY, header.conn, 0, header.msg_id, status, b"\x80"
        )
        self._send([rid, *frames])

    def _send(self, frames: list[bytes]) -> None:
        """Send from the port thread without ever blocking it. With ROUTER_MANDATORY a
        blocking send waits while the peer's queue is full, so one client that does not
        read its replies would stall the port for every client: its reply is dropped
        instead, as is a reply to a client that went away (EHOSTUNREACH)."""
        try:
            self._router.send_multipart(frames, flags=zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            self.stats["reply_dropped"] += 1
            n = self.stats["reply_dropped"]
            if n <= 10 or n % 1000 == 0:  # rate-limited: a flooder makes many
                self.log.warning(
                    "port.reply_dropped", port=self.name, reason=zmq.strerror(exc.errno), count=n
                )

    def _count(self, reason: str, rid: bytes, raw: list[bytes]) -> None:
        key = "bad_mac" if reason == "bad_mac" else "bad_frame"
        self.stats[key] += 1
        n = self.stats[key]
        if n <= 10 or n % 1000 == 0:  # rate-limited: an unauthenticated peer can flood
            self.log.warning(
                f"port.{key}",
                port=self.name,
                reason=reason,
                count=n,
                length=sum(len(r) for r in raw),
            )

    # -- request threads --------------------------------------------------------
    def _work(self, item: tuple) -> None:
        try:
            if item[0] == "connect":
                self._connect(*item[1:])
            elif item[0] == "call":
                self._call(*item[1:])
            elif item[0] == "closed":
                self._closed(item[1])
        except Exception:  # a request thread must outlive any one request
            self.log.error("port.worker_failed", port=self.name, traceback=traceback.format_exc())

    def _connect(self, rid: bytes, header: wire.Header, body: bytes, pid: int) -> None:
        try:
            status, reply = self._try_connect(rid, body, pid)
        except Exception:  # identify() or the namespace failed: refuse, keep serving
            self.log.error("port.accept_failed", port=self.name, traceback=traceback.format_exc())
            status, reply = NtStatus.STATUS_PORT_CONNECTION_REFUSED, {}
        if status != NtStatus.STATUS_SUCCESS:
            self.stats["refused"] += 1
            self.log.warning("port.connect_refused", port=self.name, peer_pid=pid, status=status)
        self._send_reply(rid, 0, header.msg_id, status, reply)

    def _try_connect(self, rid: bytes, body: bytes, pid: int) -> tuple[int, dict]:
        try:
            msg = wire.unpack_body(body, self.protocol.max_message_length)
            msg = validate(CONNECT_SCHEMA, msg)
        except (wire.WireError, SchemaError):
            return NtStatus.STATUS_INVALID_PARAMETER, {}
        if msg["proto"] != CONNECT_VERSION:
            return NtStatus.STATUS_REVISION_MISMATCH, {}
        if msg["port"].casefold() != self.name.casefold():
            return NtStatus.STATUS_OBJECT_NAME_NOT_FOUND, {}
        try:
            info = (
                validate(self.protocol.connect_info, msg["info"])
                if self.protocol.connect_info
                else msg["info"]
            )
        except SchemaError:
            return NtStatus.STATUS_INVALID_PARAMETER, {}
        who = self._identify(pid)
        if who is None:
            return NtStatus.STATUS_PORT_CONNECTION_REFUSED, {}
        conn_id = next(self._conn_ids)
        client = ClientContext(
            pid=pid,
            image=who["image"],
            session=who.get("session"),
            token=who.get("token", {}),
            conn_id=conn_id,
            port=self.name,
            info=info,
            _server=self,
            _rid=rid,
        )
        accepted, accept_info = self._run_accept(client)
        if accepted != NtStatus.STATUS_SUCCESS:
            return accepted, {}
        with self._lock:
            old = self._conns.pop(rid, None)
            self._conns[rid] = _Conn(conn_id, rid, client)
        if old is not None:
            self._closed(old.client)
        self.log.info(
            "port.connect", port=self.name, peer_pid=pid, peer_image=client.image, conn=conn_id
        )
        return NtStatus.STATUS_SUCCESS, {"conn": conn_id, "info": accept_info}

    def _run_accept(self, client: ClientContext) -> tuple[int, dict]:
        if self._accept is None:
            return NtStatus.STATUS_SUCCESS, {}
        try:
            result = self._accept(client)
        except Exception:
            self.log.error("port.accept_failed", port=self.name, traceback=traceback.format_exc())
            return NtStatus.STATUS_PORT_CONNECTION_REFUSED, {}
        if result is True or result is None:
            return NtStatus.STATUS_SUCCESS, {}
        if result is False:
            return NtStatus.STATUS_PORT_CONNECTION_REFUSED, {}
        if isinstance(result, dict):
            return NtStatus.STATUS_SUCCESS, result
        return int(result), {}

    def _call(self, conn: _Conn, header: wire.Header, body: bytes, direct: bool = False) -> None:
        if direct:  # the port thread runs one call at a time: no copy needed
            client = conn.client
            client._msg_id = header.msg_id
        else:
            # A copy per call: concurrent calls on one connection each defer their own
            # reply; ``state`` stays shared (the copy is shallow).
            client = dataclasses.replace(conn.client, _msg_id=header.msg_id)
        try:
            if header.type == wire.LPC_ERROR_EVENT:
                result = self._invoke_error_event(body, client)
            else:
                result = self._invoke(header.code, body, client)
            if header.type == wire.LPC_DATAGRAM or result is PENDING:
                return
            result = normalise(result)  # TypeError for a handler's wrong return
            assert isinstance(result, Reply)
            status, reply = int(result.status), result.body
        except Exception:
            self.log.error(
                "port.handler_failed",
                port=self.name,
                api=header.code,
                peer_pid=client.pid,
                traceback=traceback.format_exc(),
            )
            if header.type == wire.LPC_DATAGRAM:
                return
            status, reply = NtStatus.STATUS_INTERNAL_ERROR, {}
        self._send_reply(conn.rid, conn.conn_id, header.msg_id, status, reply, conn, direct)

    def _invoke_error_event(self, body: bytes, client: ClientContext) -> HandlerResult:
        """A port that is nobody's hard-error port answers STATUS_ILLEGAL_FUNCTION."""
        if self._error_event is None:
            return NtStatus.STATUS_ILLEGAL_FUNCTION
        try:
            msg = wire.unpack_body(body, self.protocol.max_message_length)
        except wire.WireError as exc:
            self._bad_message(client, 0, exc.reason)
            return NtStatus.STATUS_INVALID_PARAMETER
        return self._error_event(msg, client)

    def _invoke(self, api_number: int, body: bytes, client: ClientContext) -> HandlerResult:
        try:
            msg = wire.unpack_body(body, self.protocol.max_message_length)
        except wire.WireError as exc:
            self._bad_message(client, api_number, exc.reason)
            return NtStatus.STATUS_INVALID_PARAMETER
        if self._dispatch is not None:  # csrss: server id / api id decoding is its own
            return self._dispatch(api_number, msg, client)
        return dispatch(
            self.protocol,
            self.handlers,
            api_number,
            msg,
            client,
            lambda reason: self._bad_message(client, api_number, reason),
        )

    def _bad_message(self, client: ClientContext, api: int, reason: str) -> None:
        self.log.warning(
            "port.bad_message", port=self.name, api=api, peer_pid=client.pid, reason=reason[:200]
        )

    def _send_reply(
        self,
        rid: bytes,
        conn_id: int,
        msg_id: int,
        status: int,
        body: dict,
        conn: _Conn | None = None,
        direct: bool = False,
    ) -> None:
        seq = next(conn.reply_seq) if conn is not None else 0  # no connection yet: 0
        try:
            frames = wire.encode(self.key, wire.LPC_REPLY, conn_id, seq, msg_id, status, body)
        except (TypeError, ValueError, OverflowError):
            self.log.error("port.unpackable_reply", port=self.name, status=status)
            frames = wire.encode(
                self.key, wire.LPC_REPLY, conn_id, seq, msg_id, NtStatus.STATUS_INTERNAL_ERROR, {}
            )
        if direct:  # on the port thread: the ROUTER is ours to use
            self._forward([rid, *frames])
            return
        with self._push_lock:
            if not self._stop.is_set():
                self._push.send_multipart([rid, *frames])

    # -- client death -----------------------------------------------------------
    def client_died(self, pid: int) -> None:
        """The kernel reported ``pid`` gone: close each of its connections once."""
        with self._lock:
            rids = [rid for rid, c in self._conns.items() if c.client.pid == pid]
        for rid in rids:
            self.close_connection(rid)

    def close_connection(self, rid: bytes) -> None:
        with self._lock:
            conn = self._conns.pop(rid, None)
            self._last_seq.pop(rid, None)
        if conn is not None:
            self.pool.submit(("closed", conn.client))

    def _closed(self, client: ClientContext) -> None:
        self.log.info("port.closed", port=self.name, peer_pid=client.pid, conn=client.conn_id)
        if self._on_closed is not None:
            try:
                self._on_closed(client)
            except Exception:
                self.log.error(
                    "port.close_failed", port=self.name, traceback=traceback.format_exc()
                )

    def clients(self) -> list[ClientContext]:
        with self._lock:
            return [c.client for c in self._conns.values()]
