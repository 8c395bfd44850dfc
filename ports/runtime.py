"""One process's LPC runtime: its ZeroMQ context, ZAP handler, exit events and ports.

``create_port`` registers the name with the kernel's object manager (which arbitrates
names: a second creator gets STATUS_OBJECT_NAME_COLLISION), binds the endpoint the kernel
allocated and starts serving. ``connect_port`` looks the name up, connects, and arranges
for the connection to fail with STATUS_PORT_DISCONNECTED the moment the kernel reports
the server process gone. The kernel itself uses the same runtime with a local namespace.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from typing import Protocol as TypingProtocol

import zmq

from nt.log import Logger
from ports.client import Connection, PortError, call_api
from ports.events import ExitSubscriber
from ports.kernel import ATTACH, ATTACH_PORT, SYSTEM_SERVICE_PORT, SYSTEM_SERVICES
from ports.schema import Protocol
from ports.server import PortServer
from ports.zap import ZapHandler, same_uid

SERVICES = SYSTEM_SERVICES.by_name()


class Namespace(TypingProtocol):
    """What the runtime needs from the object manager and the process table."""

    def create_port(
        self, name: str, max_message_length: int, endpoint: str | None = None
    ) -> str: ...

    def open_port(self, name: str) -> tuple[str, int, int]: ...

    def query_process(self, pid: int) -> dict | None: ...


class RemoteNamespace:
    """The namespace through system-service calls on the kernel connection."""

    def __init__(self, kernel: Connection) -> None:
        self.kernel = kernel

    def create_port(self, name: str, max_message_length: int, endpoint: str | None = None) -> str:
        body = {"name": name, "max_message_length": max_message_length}
        r = call_api(self.kernel, SERVICES["NtCreatePort"], body)
        if not r.ok:
            raise PortError(r.status, f"create port {name}")
        return r.body["endpoint"]

    def open_port(self, name: str) -> tuple[str, int, int]:
        r = call_api(self.kernel, SERVICES["NtOpenPort"], {"name": name})
        if not r.ok:
            raise PortError(r.status, f"open port {name}")
        return r.body["endpoint"], r.body["max_message_length"], r.body["server_pid"]

    def query_process(self, pid: int) -> dict | None:
        r = call_api(self.kernel, SERVICES["NtQueryInformationProcess"], {"pid": pid})
        return r.body.get("process") if r.ok else None


def live(record: dict | None) -> bool:
    return record is not None and record.get("state") not in ("exited", None)


class LpcRuntime:
    def __init__(
        self,
        *,
        key: bytes,
        kernel_endpoint: str,
        events_endpoint: str | None,
        log: Logger,
        namespace: Namespace | None = None,
        attach: dict | None = None,
    ) -> None:
        self.key = key
        self.log = log
        self.ctx = zmq.Context()
        self.zap = ZapHandler(self.ctx, log)
        self.servers: list[PortServer] = []
        self.connections: list[Connection] = []
        self._lock = threading.Lock()
        self._identities: dict[int, dict] = {}
        self.events: ExitSubscriber | None = None
        if events_endpoint is not None:
            self.events = ExitSubscriber(self.ctx, events_endpoint, key, log)
            self.events.subscribe(self._on_exit)
            self.events.start()
        self.kernel: Connection | None = None
        if attach is not None:
            self._attach(**attach)
        if namespace is None:
            self.kernel = Connection(
                self.ctx,
                port=SYSTEM_SERVICE_PORT,
                endpoint=kernel_endpoint,
                key=key,
                max_message_length=SYSTEM_SERVICES.max_message_length,
            )
            self.kernel.connect()
            namespace = RemoteNamespace(self.kernel)
        self.namespace = namespace

    def _attach(self, endpoint: str, image: str, session: int | None) -> None:
        """KdAttachProcess: an outside tool (ntctl) becomes a process of the machine."""
        conn = Connection(
            self.ctx,
            port=ATTACH_PORT,
            endpoint=endpoint,
            key=self.key,
            max_message_length=ATTACH.max_message_length,
        )
        conn.connect(timeout=2.0)
        try:
            body = {"image": image, "session": session}
            r = call_api(conn, ATTACH.by_name()["KdAttachProcess"], body, 5.0)
        finally:
            conn.close()
        if not r.ok:
            raise PortError(r.status, "attach")

    # -- serving ----------------------------------------------------------------
    def create_port(
        self,
        name: str,
        protocol: Protocol,
        handlers: dict | None = None,
        *,
        allow: Callable[[dict], bool] | None = None,
        endpoint: str | None = None,
        identify: Callable[[int], dict | None] | None = None,
        policy: Callable[[int, int], tuple[bool, str]] | None = None,
        **kw: Any,
    ) -> PortServer:
        endpoint = self.namespace.create_port(name, protocol.max_message_length, endpoint)

        def default_policy(pid: int, uid: int) -> tuple[bool, str]:
            if not same_uid(uid):
                return False, "another user"
            who = self.identify(pid)
            if who is None:
                return False, "not a process of this machine"
            if allow is not None and not allow(who):
                return False, "not on the port's allow-list"
            return True, ""

        server = PortServer(
            self.ctx,
            self.zap,
            name=name,
            endpoint=endpoint,
            protocol=protocol,
            handlers=handlers or {},
            key=self.key,
            identify=identify or self.identify,
            policy=policy or default_policy,
            log=self.log,
            **kw,
        )
        server.start()
        with self._lock:
            self.servers.append(server)
        return server

    def identify(self, pid: int) -> dict | None:
        with self._lock:
            cached = self._identities.get(pid)
        if cached is not None:
            return cached
        record = self.namespace.query_process(pid)
        if not live(record):
            return None
        with self._lock:
            self._identities[pid] = record
        return record

    # -- connecting -------------------------------------------------------------
    def connect_port(self, name: str, info: dict | None = None, timeout: float = 5.0) -> Connection:
        endpoint, mml, server_pid = self.namespace.open_port(name)
        conn = Connection(
            self.ctx,
            port=name,
            endpoint=endpoint,
            key=self.key,
            max_message_length=mml,
            server_pid=server_pid,
        )
        with self._lock:
            self.connections.append(conn)
        try:
            conn.connect(info, timeout)
        except PortError:
            self._forget(conn)
            raise
        if not live(self.namespace.query_process(server_pid)):  # died while we connected
            conn.disconnect()
        return conn

    def _forget(self, conn: Connection) -> None:
        with self._lock:
            if conn in self.connections:
                self.connections.remove(conn)

    def _on_exit(self, pid: int, status: int, image: str) -> None:
        with self._lock:
            self._identities.pop(pid, None)
            conns = [c for c in self.connections if c.server_pid == pid]
            servers = list(self.servers)
        for conn in conns:
            conn.disconnect()
        if self.kernel is not None and self.kernel.server_pid == pid:
            self.kernel.disconnect()
        for server in servers:
            server.client_died(pid)

    def close(self) -> None:
        if self.events is not None:
            self.events.stop()
        for server in self.servers:
            server.stop()
        for conn in self.connections:
            conn.close()
        if self.kernel is not None:
            self.kernel.close()
        self.zap.close()
        # destroy, not term, and never wait long: a socket some thread still holds (a
        # failed start, a call in flight) must not hang the process's exit.
        closer = threading.Thread(target=self.ctx.destroy, kwargs={"linger": 0}, daemon=True)
        closer.start()
        closer.join(2.0)
        if closer.is_alive():
            self.log.warning("port.context_close_timeout")
