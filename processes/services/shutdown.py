"""System shutdown as the SCM runs it (ScmAutoShutdownServices; nt-spec §4.10,
reliability-security §1.4, §6.5 V7-V8).

Windows (not ReactOS, which has no preshutdown): first SERVICE_CONTROL_PRESHUTDOWN, one
service at a time, those named in ``Control\\PreshutdownOrder`` first and in that order,
each waited for until STOPPED or its ``PreshutdownTimeout``; then SERVICE_CONTROL_SHUTDOWN
to every running service that accepts it, all at once, "in the order that they appear in
the database", without regard to dependencies, waited for up to
``WaitToKillServiceTimeout`` in all; what still runs then is terminated, and named in the
log. From the start, the RPC calls answer ERROR_SHUTDOWN_IN_PROGRESS.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from nt.log import get_logger
from ports.svcctl import (
    SERVICE_ACCEPT_PRESHUTDOWN,
    SERVICE_ACCEPT_SHUTDOWN,
    SERVICE_CONTROL_PRESHUTDOWN,
    SERVICE_CONTROL_SHUTDOWN,
    SERVICE_START_PENDING,
    SERVICE_STOPPED,
)
from processes.services import control
from processes.services.database import ServiceRecord

if TYPE_CHECKING:
    from processes.services.scm import ScmCore

log = get_logger()
STATUS_TIMEOUT = 0xC0000102


def _active(svc: ServiceRecord) -> bool:
    return svc.status.current_state != SERVICE_STOPPED and svc.image_key is not None


def preshutdown_list(core: ScmCore) -> list[ServiceRecord]:
    accepting = [
        s
        for s in core.db.services.values()
        if _active(s) and s.status.controls_accepted & SERVICE_ACCEPT_PRESHUTDOWN
    ]
    rank = {n.lower(): i for i, n in enumerate(core.db.preshutdown_order)}
    listed = sorted(
        (s for s in accepting if s.name.lower() in rank), key=lambda s: rank[s.name.lower()]
    )
    return listed + [s for s in accepting if s.name.lower() not in rank]


def shutdown_services(core: ScmCore, done: Callable[[], None]) -> None:
    core.shutdown = True
    log.info("scm.shutdown", services=sum(_active(s) for s in core.db.services.values()))
    _preshutdown(core, preshutdown_list(core), 0, lambda: _shutdown(core, done))


def _preshutdown(
    core: ScmCore, queue: list[ServiceRecord], i: int, then: Callable[[], None]
) -> None:
    if i >= len(queue):
        return then()
    svc = queue[i]
    image = core.images.get(svc.image_key or "")
    if image is None or not _active(svc):
        return _preshutdown(core, queue, i + 1, then)
    finished = [False]

    def next_one() -> None:
        if not finished[0]:
            finished[0] = True
            _preshutdown(core, queue, i + 1, then)

    timer = core.clock.call_later(core.ms(svc.preshutdown_timeout_ms), next_one)

    def stopped() -> bool:
        return svc.status.current_state == SERVICE_STOPPED

    core.wait_until(lambda: stopped() or finished[0], lambda: (timer.cancel(), next_one()))
    control.send_control(
        core, image, SERVICE_CONTROL_PRESHUTDOWN, svc.name, lambda _e: None, svc.service_tag
    )
    return None


def _shutdown(core: ScmCore, done: Callable[[], None]) -> None:
    targets = [
        s
        for s in core.db.services.values()
        if _active(s)
        and s.status.controls_accepted & SERVICE_ACCEPT_SHUTDOWN
        and s.status.current_state != SERVICE_START_PENDING
    ]
    for svc in targets:
        image = core.images.get(svc.image_key or "")
        if image is not None:
            control.send_control(
                core, image, SERVICE_CONTROL_SHUTDOWN, svc.name, lambda _e: None, svc.service_tag
            )
    finished = [False]

    def finish() -> None:
        if finished[0]:
            return
        finished[0] = True
        timer.cancel()
        for image in list(core.images.values()):
            if image.pid and not image.exited:
                names = sorted(image.services)
                log.warning("scm.shutdown_kill", child_pid=image.pid, services=names)
                core.kernel.terminate_process(image.pid, STATUS_TIMEOUT)
        done()

    timer = core.clock.call_later(core.ms(core.db.wait_to_kill_ms), finish)
    core.wait_until(lambda: not any(_active(s) for s in targets), finish)
