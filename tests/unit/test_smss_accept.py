"""SmpHandleConnectionRequest publishes a subsystem only once smss can talk back to it
(issue 5): a failed connect to its SbApiPort leaves no entry for SmExecPgm to trip over
and nothing watched."""

from __future__ import annotations

from types import SimpleNamespace

import structlog

from nt.status import NtStatus
from ports import sm
from ports.client import PortError
from ports.contract import ClientContext
from processes.smss.smloop import SmApi
from processes.smss.smwatch import Watch


class NoSbPort:
    """The LPC runtime of an smss whose connect-back finds no SbApiPort."""

    def connect_port(self, name: str, info: dict | None = None) -> None:
        raise PortError(NtStatus.STATUS_OBJECT_NAME_NOT_FOUND, name)


class Events:
    def subscribe(self, callback) -> None:
        self.callback = callback


def test_a_failed_connect_back_stores_and_watches_nothing() -> None:
    lpc = NoSbPort()
    lpc.events = Events()
    proc = SimpleNamespace(pid=1, log=structlog.get_logger(), lpc=lpc, fault=lambda name: None)
    watch = Watch(SimpleNamespace(listen=lambda cb: None, cond=None))
    api = SmApi(proc, watch)
    client = ClientContext(
        pid=42,
        image="csrss.exe",
        session=1,
        token={},
        conn_id=1,
        port=sm.SM_PORT_NAME,
        info={
            "subsystem_type": sm.IMAGE_SUBSYSTEM_WINDOWS_GUI,
            "sb_port": "\\Sessions\\1\\Windows\\SbApiPort",
        },
    )
    assert api.accept(client) == NtStatus.STATUS_OBJECT_NAME_NOT_FOUND
    assert api.subsystems == {}
    assert watch.watched == {}
    assert "subsystem" not in client.state
