"""svctest.dll: the smallest real service, for tests and benchmarks. It reports RUNNING at
once, accepts SERVICE_CONTROL_STOP, PAUSE/CONTINUE and SERVICE_CONTROL_SHUTDOWN, and answers INTERROGATE with its state."""

from __future__ import annotations

from collections.abc import Sequence

from nt.sctrl import ServiceContext, run_until_stopped
from nt.winsvc import (
    SERVICE_ACCEPT_PAUSE_CONTINUE,
    SERVICE_ACCEPT_SHUTDOWN,
    SERVICE_ACCEPT_STOP,
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
    # RUNNING first, then the probe: it must not look like a hung start.
    probe = probe_scm if "probe-scm" in argv[1:] else None
    run_until_stopped(ctx, ACCEPTS, when_running=probe)
