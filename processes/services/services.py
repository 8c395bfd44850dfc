r"""services.exe: the service control manager's process (services.c wWinMain; nt-spec §1.5,
§4.11), Windows Vista+ order:

1. connect to csrss (kernel32 does it before wWinMain) and mark itself critical — on
   Windows 8+ services.exe does so itself, so its death is 0xEF CRITICAL_PROCESS_DIED;
2. ScmCreateServiceDatabase from ``Services\*`` (skipped and invalid keys reported);
3. wait for ``LSA_RPC_SERVER_ACTIVE`` (lsass's RPC server is up, nt-spec §4.11);
4. register with csrss (UserpRegisterServicesProcess);
5. ``\RPC Control\ntsvcs`` (svcctl) and the control pipe port; the kernel's exit events
   reach the core at once (a killed service process is never left RUNNING);
6. ``SvcctrlStartEvent_A3752DX``, then ScmAutoStartServices; ``SC_AutoStartComplete``
   when every auto-start service has settled; delayed auto-start after ``AutoStartDelay``.

Model settings, ``HKLM\SYSTEM\CurrentControlSet\Control\NtModel``: ``ScmTimeScalePercent``
(every SCM timeout and delay, 100 = Windows' figures) and ``ServiceStandins`` (0: an
image the model lacks fails with 7000 / ERROR_FILE_NOT_FOUND instead of a stand-in) and
``AutoStartWindow`` (auto-start starts in flight at once; 1 is Windows' behaviour).
"""

from __future__ import annotations

import signal
import threading

from nt import csrclient
from nt.bootstrap import Process
from nt.images import package_for
from nt.syscalls import NtError
from ports import svcctl
from ports.client import PortError
from ports.contract import ClientContext
from processes.services.controlpipe import ControlPipeServer
from processes.services.database import create_service_db
from processes.services.logon import ServiceLogon
from processes.services.rpcserver import SvcctlServer
from processes.services.scm import ScmCore, ScmSettings
from processes.services.scmkernel import (
    SERVICES_KEY,
    KernelScm,
    PrefetchedRegistry,
    RegistryStore,
    object_name,
)
from processes.services.scsecure import RegistrySecurityStore, ScSecurity
from processes.services.timers import TimerThread

CONTROL_SET = r"HKLM\SYSTEM\CurrentControlSet"
MODEL_KEY = CONTROL_SET + r"\Control\NtModel"
LSA_RPC_SERVER_ACTIVE = "\\BaseNamedObjects\\LSA_RPC_SERVER_ACTIVE"
SCM_START_EVENT = "SvcctrlStartEvent_A3752DX"
AUTO_START_COMPLETE = "SC_AutoStartComplete"
SHUTDOWN_GRACE_S = 2.0
AUTO_START_WINDOW = 4  # starts in flight during auto-start (Windows: 1; a divergence)  # the kernel SIGKILLs 3 s after SIGTERM


def read_settings(proc: Process) -> ScmSettings:
    def dword(name: str, default: int) -> int:
        try:
            value = proc.nt.query_value(MODEL_KEY, name)[1]
        except NtError:
            return default
        return int(value) if isinstance(value, int) else default

    return ScmSettings(
        time_scale=dword("ScmTimeScalePercent", 100) / 100.0,
        standins=bool(dword("ServiceStandins", 1)),
        auto_start_window=dword("AutoStartWindow", AUTO_START_WINDOW),
    )


def wait_for_lsa(proc: Process) -> None:
    """ScmWaitForLsa. Without an lsass image the wait could never end: say so."""
    if package_for("lsass.exe") is None:
        proc.log.info(
            "divergence",
            what="no lsass.exe in the model yet: not waiting for LSA_RPC_SERVER_ACTIVE",
        )
        return
    proc.nt.create_event(LSA_RPC_SERVER_ACTIVE)  # open-if: whoever comes first creates it
    proc.log.info("scm.wait_lsa", event_name=LSA_RPC_SERVER_ACTIVE)
    proc.nt.wait_event(LSA_RPC_SERVER_ACTIVE)


class ServicesProcess:
    """The core and its ports, wired."""

    def __init__(self, proc: Process, core: ScmCore) -> None:
        self.proc = proc
        self.core = core
        store = RegistrySecurityStore(proc.nt, CONTROL_SET)
        self.rpc = SvcctlServer(core, ScSecurity(store, proc.log))
        self.pipe = ControlPipeServer(core)

    def serve(self) -> None:
        lpc = self.proc.lpc
        if lpc.events is not None:
            lpc.events.subscribe(self.on_exit)
        lpc.create_port(
            svcctl.SVCCTL_PORT_NAME,
            svcctl.SVCCTL_PORT,
            self.rpc.table(),
            on_closed=self.rpc_closed,
            threads=2,
            max_threads=8,
        )
        lpc.create_port(
            svcctl.CONTROL_PORT_NAME,
            svcctl.CONTROL_PORT,
            self.pipe.table(),
            accept=self.pipe_accept,
            on_closed=lambda client: self.pipe.disconnect(client.conn_id),
            threads=2,
            max_threads=8,
        )

    def on_exit(self, pid: int, status: int, image: str) -> None:
        with self.core.lock:
            self.core.process_exited(pid, status)

    def rpc_closed(self, client: ClientContext) -> None:
        with self.core.lock:
            self.rpc.client_gone(client.conn_id)

    def pipe_accept(self, client: ClientContext) -> bool:
        error = self.pipe.connect(client.info, client)
        if error:
            self.proc.log.warning("scm.pipe_refused", error=error, peer_pid=client.pid)
        return not error


def _stopping(core: ScmCore, stopping: threading.Event) -> None:
    """SIGTERM: the kernel is stopping every process (service hosts first): from now on a
    host's exit is the shutdown, not a crash."""
    core.shutdown = True
    stopping.set()


def main(proc: Process) -> int:
    try:
        csr = csrclient.connect(proc.lpc, proc.session)
    except PortError as exc:
        proc.log.error("scm.csr_connect_failed", status=exc.status)
        return exc.status
    proc.set_critical()
    db = create_service_db(PrefetchedRegistry(proc.nt, SERVICES_KEY), CONTROL_SET)
    proc.log.info("scm.database", services=len(db), skipped=len(db.skipped))
    wait_for_lsa(proc)
    reply = csr.call("UserpRegisterServicesProcess", {"process_id": proc.pid})
    if not reply.ok:
        proc.log.error("scm.register_failed", status=reply.status)
        return reply.status
    kernel = KernelScm(proc.nt, proc.log)
    core = ScmCore(
        db,
        kernel,
        clock=None,  # type: ignore[arg-type]  # set below: the timer thread takes the core's lock
        settings=read_settings(proc),
        store=RegistryStore(proc.nt),
        on_auto_start_complete=lambda: kernel.set_event(AUTO_START_COMPLETE),
    )
    timers = TimerThread(core.lock)
    core.clock = timers
    core.logon = ServiceLogon(proc.lpc, proc.log)
    core.mark_drivers_loaded([m["name"] for m in proc.nt.modules()])
    wired = ServicesProcess(proc, core)
    wired.serve()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: _stopping(core, stopping))
    kernel.set_event(SCM_START_EVENT)
    proc.log.info(
        "scm.ready", port=svcctl.SVCCTL_PORT_NAME, start_event=object_name(SCM_START_EVENT)
    )
    with core.lock:
        core.auto_start()
    stopping.wait()
    done = threading.Event()
    with core.lock:  # ScShutdown: preshutdown, then SHUTDOWN to every service that takes it
        core.shutdown_services(done.set)
    done.wait(SHUTDOWN_GRACE_S)
    timers.close()
    return 0
