"""System shutdown as the SCM runs it (ScmAutoShutdownServices; nt-spec §4.10,
reliability-security §1.4, §6.5 V7-V8).

Windows (not ReactOS, which has no preshutdown), in two rounds the shutdown's coordinator
asks for one after the other (``preshutdown_services``, then ``shutdown_round``):

1. SERVICE_CONTROL_PRESHUTDOWN, one service at a time, those named in
   ``Control\\PreshutdownOrder`` first and in that order, each waited for until STOPPED or
   its ``PreshutdownTimeout`` (SERVICE_CONFIG_PRESHUTDOWN_INFO); one that has not stopped
   by then gets event 7043 and the SCM moves on;
2. SERVICE_CONTROL_SHUTDOWN to every running service that accepts it, all at once, "in
   the order that they appear in the database", without regard to dependencies, waited
   for up to ``WaitToKillServiceTimeout`` in all; the processes of those still running
   then are terminated, and named in the log (Windows logs no event for them).

From the first round on, the RPC calls answer ERROR_SHUTDOWN_IN_PROGRESS. A round asked
for again (the kernel's SIGTERM after winlogon's shutdown) joins the one that ran.
Durations are the core's (``core.ms``: scaled by ScmTimeScalePercent, as every SCM
timeout is); each service's outcome is logged (``scm.preshutdown``, ``scm.shutdown_stop``)
and each round's length (``scm.shutdown_round``) for the shutdown timeline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
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
PRESHUTDOWN = "preshutdown"
SHUTDOWN = "shutdown"

Outcome = dict[str, object]  # {"service", "outcome": stopped|timeout|killed, "ms"}
RoundDone = Callable[[list[Outcome]], None]


@dataclass
class Round:
    """One shutdown round: who waits for it, and what it found."""

    name: str
    started: float
    finished: bool = False
    outcomes: list[Outcome] = field(default_factory=list)
    waiters: list[RoundDone] = field(default_factory=list)


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


def _run_round(
    core: ScmCore, name: str, body: Callable[[Round, Callable[[], None]], None], done: RoundDone
) -> None:
    """Start round ``name`` once; later callers get its outcomes when it ends."""
    core.shutdown = True
    rounds: dict[str, Round] = core.shutdown_rounds
    current = rounds.get(name)
    if current is not None:
        if current.finished:
            done(current.outcomes)
        else:
            current.waiters.append(done)
        return
    current = rounds[name] = Round(name, core.clock.now(), waiters=[done])
    log.info("scm.shutdown_round_begin", round=name)

    def finish() -> None:
        if current.finished:
            return
        current.finished = True
        log.info(
            "scm.shutdown_round",
            round=name,
            ms=round((core.clock.now() - current.started) * 1000, 3),
            services=len(current.outcomes),
            timeouts=[o["service"] for o in current.outcomes if o["outcome"] != "stopped"],
        )
        waiters, current.waiters = current.waiters, []
        for waiter in waiters:
            waiter(current.outcomes)

    body(current, finish)


def preshutdown_services(core: ScmCore, done: RoundDone) -> None:
    """Round 1: PRESHUTDOWN in PreshutdownOrder, one service at a time."""

    def body(rnd: Round, finish: Callable[[], None]) -> None:
        _preshutdown(core, rnd, preshutdown_list(core), 0, finish)

    _run_round(core, PRESHUTDOWN, body, done)


def shutdown_round(core: ScmCore, done: RoundDone) -> None:
    """Round 2: SHUTDOWN to the rest, within WaitToKillServiceTimeout."""
    _run_round(core, SHUTDOWN, lambda rnd, finish: _shutdown(core, rnd, finish), done)


def shutdown_services(core: ScmCore, done: Callable[[], None]) -> None:
    """Both rounds (ScShutdown when nobody asked for them one by one: the kernel's SIGTERM)."""
    preshutdown_services(core, lambda _o: shutdown_round(core, lambda _o2: done()))


def _preshutdown(
    core: ScmCore, rnd: Round, queue: list[ServiceRecord], i: int, then: Callable[[], None]
) -> None:
    if i >= len(queue):
        return then()
    svc = queue[i]
    image = core.images.get(svc.image_key or "")
    if image is None or not _active(svc):
        return _preshutdown(core, rnd, queue, i + 1, then)
    finished = [False]
    started = core.clock.now()

    def next_one(outcome: str) -> None:
        if finished[0]:
            return
        finished[0] = True
        ms = round((core.clock.now() - started) * 1000, 3)
        rnd.outcomes.append({"service": svc.name, "outcome": outcome, "ms": ms})
        if outcome == "stopped":
            log.info("scm.preshutdown", service=svc.name, outcome=outcome, ms=ms)
        else:
            log.warning(
                "scm.preshutdown",
                service=svc.name,
                outcome=outcome,
                ms=ms,
                timeout_ms=svc.preshutdown_timeout_ms,
            )
            core.event(7043, svc.event_name)
        _preshutdown(core, rnd, queue, i + 1, then)

    timer = core.clock.call_later(core.ms(svc.preshutdown_timeout_ms), lambda: next_one("timeout"))

    def stopped() -> bool:
        return svc.status.current_state == SERVICE_STOPPED

    core.wait_until(lambda: stopped() or finished[0], lambda: (timer.cancel(), next_one("stopped")))
    control.send_control(
        core, image, SERVICE_CONTROL_PRESHUTDOWN, svc.name, lambda _e: None, svc.service_tag
    )
    return None


def _shutdown(core: ScmCore, rnd: Round, then: Callable[[], None]) -> None:
    targets = [
        s
        for s in core.db.services.values()
        if _active(s)
        and s.status.controls_accepted & SERVICE_ACCEPT_SHUTDOWN
        and s.status.current_state != SERVICE_START_PENDING
    ]
    started = core.clock.now()
    finished = [False]

    def stopped(svc: ServiceRecord) -> None:
        if finished[0]:
            return
        ms = round((core.clock.now() - started) * 1000, 3)
        rnd.outcomes.append({"service": svc.name, "outcome": "stopped", "ms": ms})
        log.info("scm.shutdown_stop", service=svc.name, ms=ms)

    for svc in targets:
        image = core.images.get(svc.image_key or "")
        if image is not None:
            control.send_control(
                core, image, SERVICE_CONTROL_SHUTDOWN, svc.name, lambda _e: None, svc.service_tag
            )
        core.wait_until(lambda svc=svc: not _active(svc), lambda svc=svc: stopped(svc))

    def finish() -> None:
        if finished[0]:
            return
        finished[0] = True
        timer.cancel()
        left = [s for s in targets if _active(s)]
        for pid, names in _images_of(core, left).items():
            log.warning(
                "scm.shutdown_kill",
                child_pid=pid,
                services=names,
                wait_to_kill_ms=core.db.wait_to_kill_ms,
            )
            for name in names:
                rnd.outcomes.append({"service": name, "outcome": "killed", "ms": 0})
            core.kernel.terminate_process(pid, STATUS_TIMEOUT)
        then()

    timer = core.clock.call_later(core.ms(core.db.wait_to_kill_ms), finish)
    core.wait_until(lambda: not any(_active(s) for s in targets), finish)


def _images_of(core: ScmCore, services: list[ServiceRecord]) -> dict[int, list[str]]:
    """The live processes of ``services`` → the names of those services in each."""
    out: dict[int, list[str]] = {}
    for svc in services:
        image = core.images.get(svc.image_key or "")
        if image is not None and image.pid and not image.exited:
            out.setdefault(image.pid, []).append(svc.name)
    return out
