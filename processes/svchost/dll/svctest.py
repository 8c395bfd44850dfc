"""svctest.dll: the smallest real service, for tests and benchmarks. It reports RUNNING at
once, accepts SERVICE_CONTROL_STOP, PAUSE/CONTINUE and SERVICE_CONTROL_SHUTDOWN, and answers
INTERROGATE with its state.

Behaviour knobs, as start arguments (``sc start TestSolo KNOB``): ``probe-scm`` (open the
SC manager once RUNNING and log the answer), ``preshutdown`` (accept
SERVICE_CONTROL_PRESHUTDOWN too, and stop on it), ``ignore-preshutdown`` (accept it, and
never answer it nor SHUTDOWN: the SCM must time it out, then end the process)."""

from __future__ import annotations

from collections.abc import Sequence

from nt.sctrl import ServiceContext, run_until_stopped
from nt.winsvc import (
    SERVICE_ACCEPT_PAUSE_CONTINUE,
    SERVICE_ACCEPT_PRESHUTDOWN,
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
    knobs = set(argv[1:])
    probe = probe_scm if "probe-scm" in knobs else None
    deaf = "ignore-preshutdown" in knobs
    accepts = ACCEPTS | (SERVICE_ACCEPT_PRESHUTDOWN if deaf or "preshutdown" in knobs else 0)
    run_until_stopped(ctx, accepts, ignore_shutdown=deaf, when_running=probe)
