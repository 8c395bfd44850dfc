"""wininit.exe, first duties (Vista+, nt-spec §1.10): connect to csrss, become critical,
create WinSta0 with its Winlogon and Default desktops, then wait for shutdown. Starting
services.exe and lsass.exe is the services issue's work; lsm.exe starts here, after
``create_window_station``.
"""

from __future__ import annotations

import threading

from nt import csrclient
from nt.bootstrap import Process
from nt.syscalls import NtError
from ports.client import PortError

LSM_EXE = "C:\\Windows\\System32\\lsm.exe"


def main(proc: Process) -> int:
    try:
        csr = csrclient.connect(proc.lpc, proc.session)
    except PortError as exc:
        proc.log.error("wininit.csr_connect_failed", status=exc.status)
        return exc.status
    if proc.fault("exit_before_critical"):
        return int(proc.fault("exit_before_critical"), 0)
    proc.set_critical()
    create_window_station(proc)
    start_child(proc, csr, LSM_EXE)
    proc.log.info("wininit.ready", state="waiting for shutdown")
    threading.Event().wait()
    return 0


def create_window_station(proc: Process) -> None:
    proc.log.info("wininit.winsta", window_station="WinSta0", desktops=["Winlogon", "Default"])


def start_child(proc: Process, csr: csrclient.CsrClient, image: str) -> int:
    """CreateProcess in session 0: created suspended, made known to csrss
    (BasepCreateProcess), then resumed. A child that cannot start is logged, not fatal."""
    try:
        pid = proc.nt.create_process(image, image, proc.environment, 0)
        reply = csr.call("BasepCreateProcess", {"process_id": pid})
        if not reply.ok:
            proc.nt.terminate(pid, reply.status)
            proc.log.error("wininit.child_failed", child_image=image, status=reply.status)
            return 0
        proc.nt.resume(pid)
    except NtError as exc:
        proc.log.error("wininit.child_failed", child_image=image, status=exc.status)
        return 0
    proc.log.info("wininit.child", child_image=image, child_pid=pid)
    return pid
