r"""The services lsass.exe hosts (``lsass.c`` wWinMain → ``LsapInitLsa`` → the service
dispatcher of ``lsasrv``; nt-spec §4.9): ``SamSs`` (Security Accounts Manager) and
``KeyIso`` (CNG Key Isolation), whose ``ImagePath`` is ``%SystemRoot%\System32\lsass.exe``
and ``Type`` SERVICE_WIN32_SHARE_PROCESS.

The SCM never creates a process for them: when it starts the first one it sets
``SECURITY_SERVICES_STARTED``, and lsass's dispatcher thread, which waits on that event,
calls StartServiceCtrlDispatcher with ServiceCurrent 0 (``nt.scdispatch``). From then on
the SCM sees them in lsass's pid, SERVICE_RUNS_IN_SYSTEM_PROCESS. SamSs's ServiceMain
only reports RUNNING: the SAM server it stands for is up before (lsass.py starts it with
the LSA), and like Windows' it accepts no control (NOT_STOPPABLE, IGNORES_SHUTDOWN).
KeyIso accepts STOP; the model keeps no keys in it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from nt.bootstrap import Process
from nt.scdispatch import start_service_ctrl_dispatcher
from nt.sctrl import ServiceContext, ServiceMain, run_until_stopped
from nt.syscalls import NtError
from nt.winsvc import SERVICE_ACCEPT_STOP
from ports.client import PortError

SECURITY_SERVICES_STARTED = "\\BaseNamedObjects\\SECURITY_SERVICES_STARTED"
SECURITY_SERVICE_CURRENT = 0  # the security process's control pipe is NtControlPipe0


def _service(proc: Process, accepts: int) -> ServiceMain:
    def main(ctx: ServiceContext, argv: Sequence[str]) -> None:
        proc.log.info("lsasvc.service_main", service=ctx.name)
        run_until_stopped(ctx, accepts)

    return main


def service_table(proc: Process) -> dict[str, ServiceMain]:
    """lsass's SERVICE_TABLE_ENTRY list."""
    return {"SamSs": _service(proc, 0), "KeyIso": _service(proc, SERVICE_ACCEPT_STOP)}


def dispatcher_thread(proc: Process) -> None:
    """Wait for the SCM's go, then run the dispatcher until the SCM ends it or goes away."""
    try:
        proc.nt.create_event(SECURITY_SERVICES_STARTED)  # open-if: whoever comes first
        status = proc.nt.wait_event(SECURITY_SERVICES_STARTED)
    except (NtError, PortError) as exc:
        status = exc.status
    if status:
        proc.log.warning("lsasvc.wait_failed", status=status)
        return
    error = start_service_ctrl_dispatcher(
        proc.lpc,
        service_table(proc),
        current=SECURITY_SERVICE_CURRENT,
        log=proc.log,
        on_main_exception=lambda name, exc: proc.log.error(
            "lsasvc.service_main_failed", service=name, error=repr(exc)
        ),
    )
    proc.log.info("lsasvc.dispatcher_returned", error=error)


def start(proc: Process) -> threading.Thread:
    thread = threading.Thread(
        target=dispatcher_thread, args=(proc,), name="ServiceDispatcher", daemon=True
    )
    thread.start()
    return thread
