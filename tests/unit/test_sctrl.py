"""The service side of the control protocol (nt/sctrl.py), driven by the SCM core's own
packets: the two halves of the protocol checked against each other."""

from __future__ import annotations

from nt.sctrl import ServiceContext, ServiceDispatcher
from ports.svcctl import SERVICE_ACCEPT_STOP, SERVICE_CONTROL_STOP, SERVICE_RUNNING, SERVICE_STOPPED
from tests.unit.scm_fakes import FakeChannel, Machine, service

SVCHOST = r"%SystemRoot%\System32\svchost.exe -k netsvcs -p"


def host(m: Machine, table) -> tuple[ServiceDispatcher, int, FakeChannel]:
    """A dispatcher whose ServiceMains run inline and whose reports go to the core."""
    dispatcher = ServiceDispatcher(table, m.core.set_service_status, spawn=lambda fn, _name: fn())
    proc = m.kernel.created[-1]
    channel = FakeChannel()
    assert m.core.control_connect(proc["current"], proc["pid"], channel) == 0
    return dispatcher, proc["pid"], channel


def pump(m: Machine, dispatcher: ServiceDispatcher, pid: int, channel: FakeChannel) -> None:
    while channel.packets:
        packet = channel.packets.pop(0)
        m.core.control_reply(pid, packet.sequence, dispatcher.handle_packet(packet.body()))


def simple_main(log: list[str]):
    def main(ctx: ServiceContext, argv):
        def handler(control: int) -> int:
            if control == SERVICE_CONTROL_STOP:
                ctx.set_status(SERVICE_STOPPED)
            return 0

        ctx.register_handler(handler)
        log.append(" ".join(argv))
        ctx.set_status(SERVICE_RUNNING, SERVICE_ACCEPT_STOP)

    return main


def test_svchost_with_two_services_start_stop_and_exit():
    m = Machine(*(service(n, service_type=0x20, image_path=SVCHOST) for n in ("A", "B")))
    log: list[str] = []
    results = [m.start("A", "-x"), m.start("B")]
    dispatcher, pid, channel = host(m, {"A": simple_main(log), "B": simple_main(log)})
    pump(m, dispatcher, pid, channel)
    assert results == [[0], [0]] and log == ["A -x", "B"]
    assert m.state("A") == m.state("B") == SERVICE_RUNNING
    assert m.db.get("A").status.service_type == 0x20
    out: list[int] = []
    m.core.control_service("A", SERVICE_CONTROL_STOP, lambda e, st: out.append(e))
    pump(m, dispatcher, pid, channel)
    assert out == [0] and m.state("A") == SERVICE_STOPPED and not dispatcher.finished.is_set()
    m.core.control_service("B", SERVICE_CONTROL_STOP, lambda e, st: out.append(e))
    pump(m, dispatcher, pid, channel)
    assert dispatcher.finished.is_set()  # the last service stopped: the SCM ended the dispatcher


def test_a_service_the_image_does_not_implement_and_a_raising_main():
    m = Machine(
        service("A", service_type=0x20, image_path=SVCHOST),
        service("C", service_type=0x20, image_path=SVCHOST),
    )
    ra = m.start("A")
    rc = m.start("C")

    def broken(ctx, argv):
        raise RuntimeError("boom")

    seen: list[str] = []
    dispatcher, pid, channel = host(m, {"C": broken})
    dispatcher.on_main_exception = lambda name, exc: seen.append(name)
    pump(m, dispatcher, pid, channel)
    assert ra == [1083]  # ERROR_SERVICE_NOT_IN_EXE
    assert rc == [0] and seen == ["C"]
    assert m.db.get("C").status.win32_exit_code == 1064
