"""A live PortServer against hostile input (reliability-security.md §6.1 W1-W18, §6.2 C3).

Real ZeroMQ sockets in this process: the server runs under an ``LpcRuntime`` whose
namespace is a small in-memory object manager and process table (the ports layer's own
harness). Every bad input is followed by a valid request, and the test asserts the server
answered what it had accepted and keeps serving. Silent drops are shown by ordering: the
port has one request thread and one pipe per peer, so a reply to the bad frame would
arrive before the reply to the request sent after it.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import pytest
import structlog
import zmq
from structlog.testing import CapturingLogger
from zmq.utils.monitor import recv_monitor_message

from nt.log import Logger, ntstatus_processor
from nt.status import NtStatus
from ports import wire
from ports.client import Connection, call_api
from ports.runtime import LpcRuntime
from ports.schema import U32, Api, Bool, Dict, Int, List, Map, OneOf, Protocol, Str, Value
from ports.server import PortServer

REPO = Path(__file__).resolve().parents[2]
PORT_NAME = "\\PortUnderTest"
MAX_MESSAGE_LENGTH = 1 << 18  # room for a 100,000-level nesting bomb below the limit
MAX_INFLIGHT = 8

ECHO, RAISE, BLOCK, BAD_RETURN, RECORD, WRONG_REPLY = 1, 2, 3, 4, 5, 6
UNKNOWN_API = 0x7777

TEST_PROTOCOL = Protocol(
    title="Test port",
    max_message_length=MAX_MESSAGE_LENGTH,
    apis=(
        Api(ECHO, "Echo", {"n": U32(), "s": Str(max_len=64, optional=True, default="")}),
        Api(RAISE, "Raise"),
        Api(BLOCK, "Block"),
        Api(BAD_RETURN, "BadReturn"),
        Api(WRONG_REPLY, "WrongReply", {}, {"count": U32()}),
        Api(
            RECORD,
            "Record",
            {
                "items": List(item=U32(), max_len=16, optional=True),
                "tags": Dict(value=Value(max_len=64), max_len=8, optional=True),
                "flag": Bool(optional=True),
                "pos": Map(fields={"x": Int(lo=-10, hi=10)}, optional=True),
                "any": OneOf(choices=(Bool(), U32(), Str(max_len=8)), optional=True),
            },
        ),
    ),
)

S = NtStatus


# -- the harness: an in-memory namespace, a recording log, one test port -----------------
class CapturedLog:
    """The port's logger: a real structlog logger writing into structlog's CapturingLogger."""

    def __init__(self) -> None:
        self.capture = CapturingLogger()
        self.logger: Logger = structlog.wrap_logger(
            self.capture,
            processors=[ntstatus_processor],
            wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        )

    def named(self, event: str) -> list[dict]:
        calls = list(self.capture.calls)
        return [
            {k: v for k, v in c.kwargs.items() if k != "event"}
            for c in calls
            if c.kwargs.get("event") == event
        ]


class MemoryNamespace:
    """The object manager and process table the runtime needs, in memory."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.ports: dict[str, tuple[str, int, int]] = {}
        self.processes: dict[int, dict] = {}
        self._ids = itertools.count(1)
        self.register(os.getpid(), "test.exe")

    def register(self, pid: int, image: str) -> None:
        self.processes[pid] = {
            "pid": pid,
            "image": image,
            "session": 1,
            "state": "running",
            "token": {"user": "test", "sid": "S-1-5-18", "groups": [], "privileges": []},
        }

    def create_port(self, name: str, max_message_length: int, endpoint: str | None = None) -> str:
        endpoint = endpoint or f"ipc://{self.directory}/p{next(self._ids)}"
        self.ports[name] = (endpoint, max_message_length, os.getpid())
        return endpoint

    def open_port(self, name: str) -> tuple[str, int, int]:
        return self.ports[name]

    def query_process(self, pid: int) -> dict | None:
        return self.processes.get(pid)


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


class RawPeer:
    """A DEALER that sends whatever frames it is given (no stub checks) and reads replies."""

    def __init__(self, ctx: zmq.Context, endpoint: str, key: bytes) -> None:
        self.key = key
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        self.sock.connect(endpoint)
        self.conn = 0
        self._seq = itertools.count(1)
        self._ids = itertools.count(1)

    def frames(
        self, mtype: int, code: int, body: Any, conn: int | None = None, key: bytes | None = None
    ) -> tuple[int, list[bytes]]:
        msg_id = next(self._ids)
        conn = self.conn if conn is None else conn
        return msg_id, wire.encode(
            key or self.key, mtype, conn, next(self._seq), msg_id, code, body
        )

    def send(self, frames: list[bytes]) -> None:
        self.sock.send_multipart(frames)

    def request(self, api: int, body: Any, conn: int | None = None) -> int:
        msg_id, frames = self.frames(wire.LPC_REQUEST, api, body, conn)
        self.send(frames)
        return msg_id

    def recv(self, timeout: float = 5.0) -> tuple[wire.Header, Any] | None:
        if not self.sock.poll(timeout * 1000):
            return None
        header, body = wire.verify(self.key, self.sock.recv_multipart())
        return header, wire.unpack_body(body, 1 << 20)

    def connect_lpc(self, port: str = PORT_NAME, proto: int = 1) -> tuple[int, dict]:
        msg_id, frames = self.frames(
            wire.LPC_CONNECTION_REQUEST, 0, {"port": port, "info": {}, "proto": proto}, conn=0
        )
        self.send(frames)
        got = self.recv()
        assert got is not None, "no reply to CONNECT"
        header, body = got
        assert header.msg_id == msg_id
        if header.code == S.STATUS_SUCCESS:
            self.conn = body["conn"]
        return header.code, body


@dataclass
class PortUnderTest:
    runtime: LpcRuntime
    namespace: MemoryNamespace
    log: CapturedLog
    key: bytes
    server: PortServer
    gate: threading.Event
    entered: list[int]
    closed: list[int]
    thread_crashes: list
    handled: list[dict] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return self.namespace.ports[PORT_NAME][0]

    def connect(self) -> Connection:
        return self.runtime.connect_port(PORT_NAME)

    def stub(self, max_message_length: int = MAX_MESSAGE_LENGTH) -> Connection:
        """A client stub of its own (not the runtime's: its teardown never waits on it)."""
        conn = Connection(
            self.runtime.ctx,
            port=PORT_NAME,
            endpoint=self.endpoint,
            key=self.key,
            max_message_length=max_message_length,
        )
        conn.connect()
        return conn

    def raw(self) -> RawPeer:
        return RawPeer(self.runtime.ctx, self.endpoint, self.key)

    def assert_serving(self) -> None:
        """A fresh client gets an answer; no request thread died on the way."""
        conn = self.connect()
        try:
            reply = conn.call(ECHO, {"n": 42, "s": "still here"}, timeout=5.0)
        finally:
            conn.close()
        assert (reply.status, reply.body) == (S.STATUS_SUCCESS, {"n": 42, "s": "still here"})
        assert not self.thread_crashes, f"a port thread died: {self.thread_crashes}"


@pytest.fixture
def thread_crashes(monkeypatch: pytest.MonkeyPatch) -> list:
    crashes: list = []
    monkeypatch.setattr(
        threading, "excepthook", lambda args: crashes.append((args.thread.name, args.exc_value))
    )
    return crashes


@pytest.fixture
def port(thread_crashes: list) -> Iterator[PortUnderTest]:
    directory = tempfile.mkdtemp(prefix="ntp-", dir="/tmp")  # ipc paths stay short
    log = CapturedLog()
    namespace = MemoryNamespace(directory)
    key = os.urandom(32)
    runtime = LpcRuntime(
        key=key, kernel_endpoint="", events_endpoint=None, log=log.logger, namespace=namespace
    )
    gate = threading.Event()
    entered: list[int] = []
    closed: list[int] = []
    handled: list[dict] = []

    def echo(msg: dict, client: Any) -> dict:
        handled.append(msg)
        return {"n": msg["n"], "s": msg["s"]}

    def raise_(msg: dict, client: Any) -> dict:
        raise RuntimeError("injected handler fault")

    def block(msg: dict, client: Any) -> dict:
        entered.append(client.pid)
        gate.wait(15.0)
        return {}

    handlers = {
        ECHO: echo,
        RAISE: raise_,
        BLOCK: block,
        BAD_RETURN: lambda msg, client: None,  # a handler bug: not dict | int | Reply
        RECORD: lambda msg, client: {},
        WRONG_REPLY: lambda msg, client: {"count": "three"},  # not the reply schema
    }
    server = runtime.create_port(
        PORT_NAME,
        TEST_PROTOCOL,
        handlers,
        threads=1,
        max_threads=1,
        max_inflight=MAX_INFLIGHT,
        on_closed=lambda client: closed.append(client.pid),
    )
    tp = PortUnderTest(
        runtime, namespace, log, key, server, gate, entered, closed, thread_crashes, handled
    )
    try:
        yield tp
    finally:
        gate.set()
        runtime.close()
        for name in os.listdir(directory):
            os.unlink(os.path.join(directory, name))
        os.rmdir(directory)


def first_replies(raw: RawPeer, count: int) -> list[tuple[int, int]]:
    """(msg_id, status) of the next ``count`` replies, in arrival order."""
    got = []
    for _ in range(count):
        reply = raw.recv()
        assert reply is not None, f"only {len(got)} of {count} replies arrived: {got}"
        got.append((reply[0].msg_id, reply[0].code))
    return got


# -- unauthenticated or malformed frames: dropped without a reply, counted --------------
def _signed(raw: RawPeer) -> list[bytes]:
    return raw.frames(wire.LPC_REQUEST, ECHO, {"n": 7})[1]


def _cut(index: int, length: int) -> Callable[[RawPeer], list[bytes]]:
    def make(raw: RawPeer) -> list[bytes]:
        frames = _signed(raw)
        frames[index] = frames[index][:length]
        return frames

    return make


def _old_version(raw: RawPeer) -> list[bytes]:
    header = wire.HEADER.pack(99, wire.LPC_REQUEST, 0, raw.conn, 10**6, 1, ECHO)
    return [header, b"\x80", wire.mac(raw.key, header, b"\x80")]


def _flip(frames: list[bytes], index: int, pos: int) -> list[bytes]:
    out = list(frames)
    frame = bytearray(out[index])
    frame[pos] ^= 0x40
    out[index] = bytes(frame)
    return out


SILENT_DROPS: dict[str, tuple[Callable[[RawPeer], list[bytes]], str]] = {
    "garbage bytes, one frame": (lambda raw: [os.urandom(300)], "bad_frame"),
    "garbage bytes, three frames of the right sizes": (
        lambda raw: [os.urandom(wire.HEADER.size), os.urandom(64), os.urandom(wire.MAC_SIZE)],
        "bad_mac",
    ),
    "empty frame": (lambda raw: [b""], "bad_frame"),
    "truncated header": (_cut(0, 20), "bad_frame"),
    "truncated body": (_cut(1, 2), "bad_mac"),
    "truncated mac": (_cut(2, 16), "bad_frame"),
    "bad mac": (lambda raw: _flip(_signed(raw), 2, 5), "bad_mac"),
    "header altered after signing": (lambda raw: _flip(_signed(raw), 0, 20), "bad_mac"),
    "body altered after signing": (lambda raw: _flip(_signed(raw), 1, 1), "bad_mac"),
    "missing mac (two frames)": (lambda raw: _signed(raw)[:2], "bad_frame"),
    "extra fourth frame": (lambda raw: [*_signed(raw), b"x"], "bad_frame"),
    "signed with another key": (
        lambda raw: raw.frames(wire.LPC_REQUEST, ECHO, {"n": 7}, key=os.urandom(32))[1],
        "bad_mac",
    ),
    "signed, unknown protocol version": (_old_version, "bad_frame"),
}


@pytest.mark.parametrize("case", list(SILENT_DROPS), ids=list(SILENT_DROPS))
def test_unauthenticated_or_malformed_frame_is_dropped_silently(
    port: PortUnderTest, case: str
) -> None:
    make, counter = SILENT_DROPS[case]
    raw = port.raw()
    assert raw.connect_lpc()[0] == S.STATUS_SUCCESS
    stats = dict(port.server.stats)
    before = raw.request(ECHO, {"n": 1})
    raw.send(make(raw))
    after = raw.request(ECHO, {"n": 2})
    assert first_replies(raw, 2) == [(before, S.STATUS_SUCCESS), (after, S.STATUS_SUCCESS)]
    assert port.server.stats[counter] == stats[counter] + 1
    assert port.log.named(f"port.{counter}"), "the drop is logged"
    port.assert_serving()


def test_replayed_frame_is_dropped_without_reply_and_counted(port: PortUnderTest) -> None:
    raw = port.raw()
    raw.connect_lpc()
    msg_id, frames = raw.frames(wire.LPC_REQUEST, ECHO, {"n": 1})
    raw.send(frames)
    assert first_replies(raw, 1) == [(msg_id, S.STATUS_SUCCESS)]
    replays = port.server.stats["replay"]
    raw.send(frames)  # the identical signed frame, same (connection, sequence)
    fresh = raw.request(ECHO, {"n": 2})
    assert first_replies(raw, 1) == [(fresh, S.STATUS_SUCCESS)]
    assert port.server.stats["replay"] == replays + 1
    assert [m["n"] for m in port.handled] == [1, 2], "the replay never reached the handler"
    assert port.log.named("port.replay")
    port.assert_serving()


# -- signed requests with bad bodies: answered with a status ----------------------------
def _nest(depth: int) -> bytes:
    """{"n": 1, "s": [[[...""]]]} with ``depth`` nested arrays."""
    return b"\x82\xa1n\x01\xa1s" + b"\x91" * depth + b"\xa0"


BAD_BODIES: dict[str, tuple[int, Callable[[], bytes], int]] = {
    "nesting 1000": (ECHO, lambda: _nest(1000), S.STATUS_INVALID_PARAMETER),
    "nesting 100000": (ECHO, lambda: _nest(100_000), S.STATUS_INVALID_PARAMETER),
    "nesting 1000 at top level": (
        ECHO,
        lambda: b"\x91" * 1000 + b"\x80",
        S.STATUS_INVALID_PARAMETER,
    ),
    "ExtType(42)": (
        ECHO,
        lambda: msgpack.packb({"n": 1, "s": msgpack.ExtType(42, b"xyz")}),
        S.STATUS_INVALID_PARAMETER,
    ),
    "Timestamp (ext -1)": (
        ECHO,
        lambda: msgpack.packb({"n": 1, "s": msgpack.Timestamp(1, 2)}),
        S.STATUS_INVALID_PARAMETER,
    ),
    "bool where int": (ECHO, lambda: msgpack.packb({"n": True}), S.STATUS_INVALID_PARAMETER),
    "bytes where str": (
        ECHO,
        lambda: msgpack.packb({"n": 1, "s": b"x"}, use_bin_type=True),
        S.STATUS_INVALID_PARAMETER,
    ),
    "extra key": (
        ECHO,
        lambda: msgpack.packb({"n": 1, "client_id": 4}),
        S.STATUS_INVALID_PARAMETER,
    ),
    "missing key": (ECHO, lambda: msgpack.packb({"s": "x"}), S.STATUS_INVALID_PARAMETER),
    "array instead of map": (ECHO, lambda: msgpack.packb([1]), S.STATUS_INVALID_PARAMETER),
    "u32 field holding 2**64-1": (
        ECHO,
        lambda: msgpack.packb({"n": 2**64 - 1}),
        S.STATUS_INVALID_PARAMETER,
    ),
    "truncated msgpack": (
        ECHO,
        lambda: msgpack.packb({"n": 1, "s": "abc"})[:-2],
        S.STATUS_INVALID_PARAMETER,
    ),
    "trailing bytes": (
        ECHO,
        lambda: msgpack.packb({"n": 1}) + b"\x00",
        S.STATUS_INVALID_PARAMETER,
    ),
    "0xC1 (never used)": (ECHO, lambda: b"\xc1", S.STATUS_INVALID_PARAMETER),
    "invalid UTF-8": (ECHO, lambda: b"\x82\xa1n\x01\xa1s\xa2\xff\xfe", S.STATUS_INVALID_PARAMETER),
    "array header claiming 2**32 entries": (
        ECHO,
        lambda: b"\x81\xa1n\xdd\xff\xff\xff\xff",
        S.STATUS_INVALID_PARAMETER,
    ),
    "str header claiming 4 GiB": (
        ECHO,
        lambda: b"\x81\xa1s\xdb\xff\xff\xff\xff",
        S.STATUS_INVALID_PARAMETER,
    ),
    "int map key": (ECHO, lambda: msgpack.packb({1: 1}), S.STATUS_INVALID_PARAMETER),
    "body over the port's message length": (
        ECHO,
        lambda: msgpack.packb({"n": 1, "s": "x" * (MAX_MESSAGE_LENGTH + 10)}),
        S.STATUS_PORT_MESSAGE_TOO_LONG,
    ),
    "unknown API number": (UNKNOWN_API, lambda: msgpack.packb({}), S.STATUS_NOT_IMPLEMENTED),
}


@pytest.mark.parametrize("case", list(BAD_BODIES), ids=list(BAD_BODIES))
def test_signed_bad_request_is_answered_with_a_status(port: PortUnderTest, case: str) -> None:
    api, body, expected = BAD_BODIES[case]
    raw = port.raw()
    raw.connect_lpc()
    before = raw.request(ECHO, {"n": 1})
    bad = raw.request(api, body())
    after = raw.request(ECHO, {"n": 2})
    replies = sorted(first_replies(raw, 3))
    assert replies == [
        (before, S.STATUS_SUCCESS),
        (bad, expected),
        (after, S.STATUS_SUCCESS),
    ]
    assert [m["n"] for m in port.handled] == [1, 2], "the bad request never reached the handler"
    assert not port.log.named("port.handler_failed"), "a decode error escaped as an exception"
    port.assert_serving()


def test_unknown_api_is_not_implemented(port: PortUnderTest) -> None:
    conn = port.connect()
    assert conn.call(UNKNOWN_API, {}).status == S.STATUS_NOT_IMPLEMENTED
    assert conn.call(ECHO, {"n": 3}).body == {"n": 3, "s": ""}
    conn.close()


def test_an_error_event_to_a_port_that_is_no_hard_error_port_is_an_illegal_function(
    port: PortUnderTest,
) -> None:
    """LPC_ERROR_EVENT goes to the port named by NtSetDefaultHardErrorPort; elsewhere it
    is refused (and the port goes on serving)."""
    conn = port.connect()
    reply = conn.error_event({"status": 0xC0000135, "parameters": ["x.dll"]}, timeout=5.0)
    assert reply.status == S.STATUS_ILLEGAL_FUNCTION
    assert conn.call(ECHO, {"n": 4}).body == {"n": 4, "s": ""}
    conn.close()
    port.assert_serving()


def test_an_error_event_reaches_the_ports_error_event_handler(port: PortUnderTest) -> None:
    got: list = []
    port.runtime.create_port(
        "\\HardErrorPortUnderTest",
        TEST_PROTOCOL,
        {},
        error_event=lambda msg, client: got.append(msg) or {"response": 6},
    )
    conn = port.runtime.connect_port("\\HardErrorPortUnderTest")
    reply = conn.error_event({"status": 0xC0000135, "parameters": ["x.dll"]}, timeout=5.0)
    assert (reply.status, reply.body) == (S.STATUS_SUCCESS, {"response": 6})
    assert got == [{"status": 0xC0000135, "parameters": ["x.dll"]}]
    conn.close()


CONNECT_CASES = {
    "unknown protocol version": ({"port": PORT_NAME, "proto": 2}, S.STATUS_REVISION_MISMATCH),
    "another port's name": ({"port": "\\Elsewhere", "proto": 1}, S.STATUS_OBJECT_NAME_NOT_FOUND),
    "no port name": ({"proto": 1}, S.STATUS_INVALID_PARAMETER),
    "garbage body": (b"\xc1\xc1", S.STATUS_INVALID_PARAMETER),
}


@pytest.mark.parametrize("case", list(CONNECT_CASES), ids=list(CONNECT_CASES))
def test_bad_connect_is_refused_with_its_status(port: PortUnderTest, case: str) -> None:
    body, expected = CONNECT_CASES[case]
    raw = port.raw()
    msg_id, frames = raw.frames(wire.LPC_CONNECTION_REQUEST, 0, body, conn=0)
    raw.send(frames)
    assert first_replies(raw, 1) == [(msg_id, expected)]
    assert not port.server.clients()
    port.assert_serving()


def test_request_before_connect_is_an_illegal_function(port: PortUnderTest) -> None:
    raw = port.raw()
    stray = raw.request(ECHO, {"n": 1}, conn=0)
    forged = raw.request(ECHO, {"n": 1}, conn=12345)  # a connection id it never got
    assert first_replies(raw, 2) == [
        (stray, S.STATUS_ILLEGAL_FUNCTION),
        (forged, S.STATUS_ILLEGAL_FUNCTION),
    ]
    assert port.handled == []
    raw.connect_lpc()
    ok = raw.request(ECHO, {"n": 5})
    assert first_replies(raw, 1) == [(ok, S.STATUS_SUCCESS)]


# -- sizes -------------------------------------------------------------------------------
def test_oversized_request_is_refused_by_the_stub_and_never_sent(port: PortUnderTest) -> None:
    stub_limit = 1024  # below the server's limit: had it been sent, the server would take it
    conn = port.stub(stub_limit)
    try:
        big = {"n": 1, "s": "x" * stub_limit}
        assert conn.call(ECHO, big).status == S.STATUS_PORT_MESSAGE_TOO_LONG
        assert conn.datagram(ECHO, big) == S.STATUS_PORT_MESSAGE_TOO_LONG
        reply = conn.call(ECHO, {"n": 9})
        assert (reply.status, reply.body) == (S.STATUS_SUCCESS, {"n": 9, "s": ""})
        assert [m["n"] for m in port.handled] == [9], "only the valid request reached the server"
    finally:
        conn.close()


def test_raw_frame_beyond_maxmsgsize_drops_only_that_peer(port: PortUnderTest) -> None:
    bystander = port.connect()
    raw = port.raw()
    raw.connect_lpc()
    monitor = raw.sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    try:
        # ZMQ_MAXMSGSIZE is the message length plus header room: twice the length is beyond
        raw.request(ECHO, b"\x00" * (2 * MAX_MESSAGE_LENGTH))
        assert monitor.poll(5000), "the server did not drop the peer"
        assert recv_monitor_message(monitor)["event"] == zmq.EVENT_DISCONNECTED
    finally:
        raw.sock.disable_monitor()
        monitor.close(linger=0)
    reply = bystander.call(ECHO, {"n": 4}, timeout=5.0)
    assert (reply.status, reply.body) == (S.STATUS_SUCCESS, {"n": 4, "s": ""})
    bystander.close()
    port.assert_serving()


# -- load --------------------------------------------------------------------------------
def test_flood_beyond_inflight_bound_gets_insufficient_resources_for_the_excess(
    port: PortUnderTest,
) -> None:
    excess = 5
    conn = port.connect()

    def release_when_excess_refused() -> None:
        wait_until(lambda: port.server.stats.get("busy", 0) >= excess, timeout=10.0)
        port.gate.set()

    releaser = threading.Thread(target=release_when_excess_refused, daemon=True)
    releaser.start()
    replies = conn.call_batch([(BLOCK, {})] * (MAX_INFLIGHT + excess), timeout=20.0)
    releaser.join(5.0)
    statuses = [r.status for r in replies]
    assert (
        statuses == [S.STATUS_SUCCESS] * MAX_INFLIGHT + [S.STATUS_INSUFFICIENT_RESOURCES] * excess
    )
    assert len(port.entered) == MAX_INFLIGHT, "every admitted request ran, no refused one did"
    after = conn.call(ECHO, {"n": 8}, timeout=5.0)
    assert after.status == S.STATUS_SUCCESS
    conn.close()
    port.assert_serving()


def test_client_that_never_reads_replies_does_not_stall_the_port(port: PortUnderTest) -> None:
    """W16: replies the flooder does not read are dropped, not waited for."""
    flooder = port.raw()
    flooder.sock.rcvhwm = 1
    flooder.sock.sndtimeo = 2000
    flooder.connect_lpc()
    deadline = time.monotonic() + 15
    sent = 0
    try:
        while sent < 12_000 and time.monotonic() < deadline:
            try:
                flooder.request(ECHO, {"n": 1})  # mostly refused: far beyond the in-flight bound
                sent += 1
            except zmq.Again:  # the port stopped reading: it is stalled
                break
        assert sent == 12_000, f"the port stopped reading after {sent} requests"
        other = port.connect()
        reply = other.call(ECHO, {"n": 6}, timeout=5.0)
        assert (reply.status, reply.body) == (S.STATUS_SUCCESS, {"n": 6, "s": ""})
        other.close()
    finally:  # read what is queued, so that a stalled port thread can finish before teardown
        drain_until = time.monotonic() + 5
        while time.monotonic() < drain_until and flooder.sock.poll(200):
            flooder.sock.recv_multipart()
    assert port.server.stats["reply_dropped"] > 0
    port.assert_serving()


# -- faults in the handler and in the client ---------------------------------------------
def test_handler_that_raises_gets_internal_error_and_the_port_survives(port: PortUnderTest) -> None:
    conn = port.connect()
    assert conn.call(RAISE, {}).status == S.STATUS_INTERNAL_ERROR
    failed = port.log.named("port.handler_failed")
    assert failed and "injected handler fault" in failed[0]["traceback"]
    assert conn.call(ECHO, {"n": 1}).status == S.STATUS_SUCCESS
    conn.close()
    port.assert_serving()


def test_handler_returning_a_wrong_type_gets_internal_error_and_the_port_survives(
    port: PortUnderTest,
) -> None:
    conn = port.connect()
    assert conn.call(BAD_RETURN, {}, timeout=5.0).status == S.STATUS_INTERNAL_ERROR
    assert conn.call(ECHO, {"n": 1}, timeout=5.0).status == S.STATUS_SUCCESS
    conn.close()
    port.assert_serving()


def test_issue5_a_reply_its_schema_does_not_describe_is_internal_error_not_sent(
    port: PortUnderTest,
) -> None:
    conn = port.connect()
    reply = conn.call(WRONG_REPLY, {}, timeout=5.0)
    assert (reply.status, reply.body) == (S.STATUS_INTERNAL_ERROR, {})
    (failed,) = port.log.named("port.handler_failed")
    assert "ReplySchemaError" in failed["traceback"] and "WrongReply" in failed["traceback"]
    conn.close()
    port.assert_serving()


def test_issue5_a_stub_answers_a_body_the_schema_refuses_without_sending_it(
    port: PortUnderTest,
) -> None:
    conn = port.connect()
    echo = TEST_PROTOCOL.by_number()[ECHO]
    assert call_api(conn, echo, {"n": -1}).status == S.STATUS_INVALID_PARAMETER
    assert call_api(conn, echo, {"n": 1, "extra": 0}).status == S.STATUS_INVALID_PARAMETER
    assert port.handled == [] and not port.log.named("port.bad_message")  # never sent
    assert call_api(conn, echo, {"n": 5}).body == {"n": 5, "s": ""}
    conn.close()


CHILD_CLIENT = """
import sys, zmq
from ports.client import Connection
endpoint, port, limit, key, api = sys.stdin.readline().split()
conn = Connection(zmq.Context(), port=port, endpoint=endpoint, key=bytes.fromhex(key),
                  max_message_length=int(limit))
conn.connect(timeout=5)
print("connected", flush=True)
conn.call(int(api), {}, timeout=60)
"""


def test_client_killed_mid_call_is_closed_exactly_once(port: PortUnderTest) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_CLIENT],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port.namespace.register(child.pid, "child.exe")  # the kernel knows it before it connects
        child.stdin.write(
            f"{port.endpoint} {PORT_NAME} {MAX_MESSAGE_LENGTH} {port.key.hex()} {BLOCK}\n"
        )
        child.stdin.flush()
        assert child.stdout.readline().strip() == "connected"
        assert wait_until(lambda: child.pid in port.entered), "the call never reached its handler"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=5)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=5)
    assert port.closed == [], "nothing closes the connection before the kernel reports the exit"
    port.namespace.processes[child.pid]["state"] = "exited"
    port.server.client_died(child.pid)  # what the runtime does on the kernel's exit event
    port.gate.set()  # the handler finishes; its reply has nobody to go to
    assert wait_until(lambda: port.closed == [child.pid]), "on_closed never ran"
    port.server.client_died(child.pid)  # a second report changes nothing
    port.assert_serving()  # its own connection's close may land in port.closed too
    assert port.closed.count(child.pid) == 1, "on_closed ran exactly once for the child"
    assert child.pid not in [c.pid for c in port.server.clients()]


def test_disconnect_after_close_writes_to_no_descriptor(port: PortUnderTest) -> None:
    """The runtime calls disconnect() on every connection to a server that exits, closed
    ones included: a closed connection must not write into a reused descriptor."""
    conn = port.connect()
    conn.close()
    r, w = os.pipe()  # takes the lowest free descriptors: the ones close() released
    try:
        os.set_blocking(r, False)
        conn.disconnect()
        with pytest.raises(BlockingIOError):
            os.read(r, 1)
    finally:
        os.close(r)
        os.close(w)


def test_datagram_to_a_vanished_server_does_not_block(port: PortUnderTest) -> None:
    conn = port.stub()
    assert conn.datagram(ECHO, {"n": 1}) == S.STATUS_SUCCESS
    port.server.stop()
    results: list[int] = []

    def send_until_refused() -> None:  # the pipe goes away shortly after the server
        for _ in range(500):
            results.append(conn.datagram(ECHO, {"n": 2}))
            if results[-1] != S.STATUS_SUCCESS:
                return
            time.sleep(0.01)

    sender = threading.Thread(target=send_until_refused, daemon=True)
    sender.start()
    sender.join(10.0)
    assert not sender.is_alive(), "datagram() blocked on a server that is gone"
    conn.close()
    assert results[-1] == S.STATUS_PORT_DISCONNECTED


# -- a seeded byte-mutation fuzz run against the live port --------------------------------
ALLOWED = {
    S.STATUS_INVALID_PARAMETER,
    S.STATUS_ILLEGAL_FUNCTION,
    S.STATUS_NOT_IMPLEMENTED,
    S.STATUS_PORT_MESSAGE_TOO_LONG,
    S.STATUS_SUCCESS,
    S.STATUS_INSUFFICIENT_RESOURCES,
}
SEEDS = [
    {"n": 5, "s": "hello"},
    {"items": [1, 2, 3], "tags": {"a": "b", "c": 7}, "flag": True, "pos": {"x": -3}, "any": "z"},
    {"tags": {"k": [b"\x00\x01", "x"]}, "any": 2**31},
    {},
]


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:  # flip bits
            buf[pos % len(buf)] ^= 1 << rng.randrange(8)
        elif op == 1:  # insert a byte, often a msgpack type byte
            buf.insert(
                pos, rng.choice([0xC1, 0xDC, 0xDD, 0xDE, 0xDF, 0xD4, 0xC7, rng.randrange(256)])
            )
        elif op == 2 and buf:  # delete
            del buf[pos % len(buf)]
        elif op == 3:  # truncate
            del buf[pos:]
        elif op == 4:  # append noise
            buf += rng.randbytes(rng.randrange(1, 16))
        elif op == 5 and buf:  # overwrite with an extreme length header
            buf[pos % len(buf)] = rng.choice([0xDB, 0xDD, 0xDF, 0xC6])
            buf[pos % len(buf) + 1 : pos % len(buf) + 5] = b"\xff\xff\xff\xff"
        else:  # duplicate a slice (nesting, repeated keys)
            buf[pos:pos] = buf[: rng.randrange(1, 12)]
    return bytes(buf)


def test_seeded_mutation_fuzz_answers_every_signed_request_within_the_allowed_set(
    port: PortUnderTest,
) -> None:
    rng = random.Random(0x5EED)
    raw = port.raw()
    raw.connect_lpc()
    seeds = [msgpack.packb(s, use_bin_type=True) for s in SEEDS]
    signed_total, unsigned_total, window = 3000, 1500, 20
    stats = dict(port.server.stats)
    answers: dict[int, int] = {}
    sent: set[int] = set()
    deadline = time.monotonic() + 30
    unsigned = 0
    while len(sent) < signed_total and time.monotonic() < deadline:
        batch = []
        for _ in range(window):
            api = rng.choice([ECHO, RECORD, RECORD, UNKNOWN_API])
            msg_id = raw.request(api, _mutate(rng, rng.choice(seeds)))
            batch.append(msg_id)
            if unsigned < unsigned_total and rng.random() < 0.5:
                frames = raw.frames(wire.LPC_REQUEST, api, rng.choice(seeds))[1]
                index = rng.randrange(3)
                original = frames[index]
                for _ in range(100):  # an unchanged frame would still verify
                    frames[index] = _mutate(rng, original)
                    if frames[index] != original:
                        break
                if rng.random() < 0.2:
                    frames = [rng.randbytes(rng.randrange(64)) for _ in range(rng.randint(1, 5))]
                raw.send(frames)
                unsigned += 1
        sent.update(batch)
        for _ in batch:
            reply = raw.recv(timeout=5.0)
            assert reply is not None, f"no reply after {len(answers)} answers"
            answers[reply[0].msg_id] = reply[0].code
    assert len(sent) == signed_total and unsigned >= 1000
    assert set(answers) == sent, "every signed request was answered exactly once"
    unexpected = {hex(s) for s in answers.values()} - {hex(s) for s in ALLOWED}
    assert not unexpected, f"statuses outside the allowed set: {unexpected}"
    dropped = sum(port.server.stats[k] - stats[k] for k in ("bad_mac", "bad_frame"))
    assert dropped == unsigned, "every unsigned frame was dropped and counted"
    assert not port.log.named("port.handler_failed")
    port.assert_serving()
