"""svctest.dll: the smallest real service, for tests and benchmarks. It reports RUNNING at
once, accepts SERVICE_CONTROL_STOP, PAUSE/CONTINUE and SERVICE_CONTROL_SHUTDOWN, and answers INTERROGATE with its state."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from nt.sctrl import ServiceContext
from nt.winsvc import (
    SERVICE_ACCEPT_PAUSE_CONTINUE,
    SERVICE_ACCEPT_SHUTDOWN,
    SERVICE_ACCEPT_STOP,
    SERVICE_CONTROL_CONTINUE,
    SERVICE_CONTROL_INTERROGATE,
    SERVICE_CONTROL_PAUSE,
    SERVICE_CONTROL_SHUTDOWN,
    SERVICE_CONTROL_STOP,
    SERVICE_PAUSED,
    SERVICE_RUNNING,
    SERVICE_STOP_PENDING,
    SERVICE_STOPPED,
)
from ports import svcctl

ACCEPTS = SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_PAUSE_CONTINUE | SERVICE_ACCEPT_SHUTDOWN


GLOBALS: dict = {}


def SvchostPushServiceGlobals(globals_: dict) -> None:
    GLOBALS.update(globals_)


def probe_scm() -> None:
    proc = GLOBALS.get("process")
    if proc is None:
        return
    conn = svcctl.ScConnectToScm(proc.lpc)
    try:
        reply = svcctl.ROpenSCManagerW(conn, svcctl.SC_MANAGER_ALL_ACCESS)
        proc.log.info("svctest.scm_probe", error=reply.body.get("error"), status=reply.status)
    finally:
        conn.close()


def ServiceMain(ctx: ServiceContext, argv: Sequence[str]) -> None:
    stopped = threading.Event()

    def handler(control: int) -> int:
        if control in (SERVICE_CONTROL_STOP, SERVICE_CONTROL_SHUTDOWN):
            ctx.set_status(SERVICE_STOP_PENDING, 0, wait_hint=1000)
            stopped.set()
        elif control == SERVICE_CONTROL_PAUSE:
            ctx.set_status(SERVICE_PAUSED, ACCEPTS)
        elif control == SERVICE_CONTROL_CONTINUE:
            ctx.set_status(SERVICE_RUNNING, ACCEPTS)
        elif control == SERVICE_CONTROL_INTERROGATE:
            ctx.set_status(**_again(ctx.last_status))
        return 0

    ctx.register_handler(handler)
    ctx.set_status(SERVICE_RUNNING, ACCEPTS)
    if "probe-scm" in argv[1:]:  # RUNNING first: the probe must not look like a hung start
        probe_scm()
    stopped.wait()
    ctx.set_status(SERVICE_STOPPED)


def _again(status: dict[str, int]) -> dict[str, int]:
    return {
        "state": status.get("current_state", SERVICE_RUNNING),
        "controls_accepted": status.get("controls_accepted", ACCEPTS),
    }
