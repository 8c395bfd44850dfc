"""The SCM's end of the service control pipe (ScmCreateNewControlPipe, ScmSendControlPacket;
ports/svcctl.py CONTROL_PORT).

One ``PipeChannel`` per connected dispatcher: the SCM's packets wait in it until the
dispatcher's outstanding ``ScReadControlPacket`` takes them (the pipe's ReadFile), so a
packet sent while no read is pending is never lost and never sent twice. The handlers
are named after the packet routines; the port wiring installs ``ControlPipeServer.table()``
and calls ``connect`` from the port's accept callback and ``disconnect`` when the
connection closes.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Protocol

from nt.status import NtStatus
from ports import svcctl as sv
from ports.server import PENDING
from processes.services.image import ControlPacket
from processes.services.scm import ScmCore


class Completion(Protocol):
    def complete(self, status: int, body: dict | None = None) -> None: ...


class PipeClient(Protocol):
    pid: int
    conn_id: int

    def defer(self) -> Completion: ...


class PipeChannel:
    """The ControlChannel of one image: packets queue until the dispatcher reads."""

    def __init__(self) -> None:
        self.packets: deque[ControlPacket] = deque()
        self.reader: Completion | None = None
        self.lock = threading.Lock()

    def send(self, packet: ControlPacket) -> None:
        with self.lock:
            reader, self.reader = self.reader, None
            if reader is None:
                self.packets.append(packet)
                return
        reader.complete(NtStatus.STATUS_SUCCESS, packet.body())

    def read(self, client: PipeClient) -> dict | object:
        with self.lock:
            if self.packets:
                return self.packets.popleft().body()
            if self.reader is not None:  # one read at a time: a second is a dispatcher bug
                return NtStatus.STATUS_INVALID_PARAMETER
            self.reader = client.defer()
            return PENDING


class ControlPipeServer:
    def __init__(self, core: ScmCore) -> None:
        self.core = core
        self.lock = core.lock  # the core is single-threaded: its one lock
        self.channels: dict[int, PipeChannel] = {}  # conn_id → channel

    def table(self) -> dict[int, Callable[[dict, PipeClient], object]]:
        return {api.number: getattr(self, api.name) for api in sv.CONTROL_APIS}

    def connect(self, info: dict, client: PipeClient) -> int:
        """The accept callback: a dispatcher with its ServiceCurrent → a win32 error."""
        channel = PipeChannel()
        with self.lock:
            error = self.core.control_connect(info["service_current"], client.pid, channel)
            if not error:
                self.channels[client.conn_id] = channel
        return error

    def disconnect(self, conn_id: int) -> None:
        self.channels.pop(conn_id, None)

    def ScReadControlPacket(self, message: dict, client: PipeClient) -> dict | object:
        channel = self.channels.get(client.conn_id)
        if channel is None:
            return NtStatus.STATUS_PORT_DISCONNECTED
        return channel.read(client)

    def ScWriteReplyPacket(self, message: dict, client: PipeClient) -> dict:
        with self.lock:
            self.core.control_reply(client.pid, message["sequence"], message["error"])
        return {}
