"""The SCM's end of the control pipe (processes/services/controlpipe.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from nt.status import NtStatus
from ports import svcctl as sv
from ports.server import PENDING
from processes.services.controlpipe import ControlPipeServer
from tests.unit.scm_fakes import Machine, service


@dataclass
class Deferred:
    results: list = field(default_factory=list)

    def complete(self, status, body=None):
        self.results.append((status, body))


@dataclass
class Client:
    pid: int
    conn_id: int = 9
    deferred: list = field(default_factory=list)

    def defer(self):
        d = Deferred()
        self.deferred.append(d)
        return d


def test_start_over_the_pipe_with_a_pending_read():
    m = Machine(service("A"))
    pipe = ControlPipeServer(m.core)
    assert sorted(pipe.table()) == [sv.OP_ScReadControlPacket, sv.OP_ScWriteReplyPacket]
    result = m.start("A")
    proc = m.kernel.created[0]
    client = Client(proc["pid"])
    assert pipe.connect({"service_current": proc["current"], "pid": proc["pid"]}, client) == 0
    first = pipe.ScReadControlPacket({}, client)  # START_OWN was queued before the connect
    assert first["control"] == sv.SERVICE_CONTROL_START_OWN and first["service_name"] == "A"
    assert pipe.ScReadControlPacket({}, client) is PENDING
    assert pipe.ScReadControlPacket({}, client) == NtStatus.STATUS_INVALID_PARAMETER
    pipe.ScWriteReplyPacket({"sequence": first["sequence"], "error": 0}, client)
    assert result == [0]
    m.core.set_service_status(
        first["status_handle"],
        {
            **m.db.get("A").status.as_dict(),
            "current_state": sv.SERVICE_RUNNING,
            "controls_accepted": 1,
        },
    )
    out = []
    m.core.control_service("A", sv.SERVICE_CONTROL_STOP, lambda e, st: out.append(e))
    ((status, body),) = client.deferred[0].results  # the pending read completed with STOP
    assert status == 0 and body["control"] == sv.SERVICE_CONTROL_STOP
    pipe.ScWriteReplyPacket({"sequence": body["sequence"], "error": 0}, client)
    assert out == [0]


def test_unknown_service_current_is_refused():
    m = Machine(service("A"))
    pipe = ControlPipeServer(m.core)
    assert pipe.connect({"service_current": 5, "pid": 1}, Client(1)) == 1063
    assert pipe.ScReadControlPacket({}, Client(1)) == NtStatus.STATUS_PORT_DISCONNECTED
