"""svctest.dll: the smallest real service, for tests and benchmarks. It reports RUNNING at
once, accepts STOP, PAUSE/CONTINUE and SHUTDOWN, and answers INTERROGATE with its state."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from nt.sctrl import ServiceContext

SERVICE_STOPPED, SERVICE_STOP_PENDING, SERVICE_RUNNING, SERVICE_PAUSED = 1, 3, 4, 7
ACCEPTS = 0x1 | 0x2 | 0x4  # STOP | PAUSE_CONTINUE | SHUTDOWN
STOP, PAUSE, CONTINUE, INTERROGATE, SHUTDOWN = 1, 2, 3, 4, 5


def ServiceMain(ctx: ServiceContext, argv: Sequence[str]) -> None:
    stopped = threading.Event()

    def handler(control: int) -> int:
        if control in (STOP, SHUTDOWN):
            ctx.set_status(SERVICE_STOP_PENDING, 0, wait_hint=1000)
            stopped.set()
        elif control == PAUSE:
            ctx.set_status(SERVICE_PAUSED, ACCEPTS)
        elif control == CONTINUE:
            ctx.set_status(SERVICE_RUNNING, ACCEPTS)
        elif control == INTERROGATE:
            ctx.set_status(**_again(ctx.last_status))
        return 0

    ctx.register_handler(handler)
    ctx.set_status(SERVICE_RUNNING, ACCEPTS)
    stopped.wait()
    ctx.set_status(SERVICE_STOPPED)


def _again(status: dict[str, int]) -> dict[str, int]:
    return {
        "state": status.get("current_state", SERVICE_RUNNING),
        "controls_accepted": status.get("controls_accepted", ACCEPTS),
    }
