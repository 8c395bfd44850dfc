"""wininit.exe, first duties (Vista+, nt-spec §1.10): connect to csrss, become critical,
create WinSta0 with its Winlogon and Default desktops, start lsass.exe and services.exe
(which marks itself critical), watch lsass (its death restarts the machine: critproc.py),
then wait for shutdown. lsm.exe starts beside them.
"""

from __future__ import annotations

import threading

from nt import csrclient
from nt.bootstrap import Process
from nt.images import SYSTEM32
from nt.syscalls import NtError
from ports.client import PortError
from processes.wininit.critproc import watch_lsass

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
    start_lsass(proc, csr)
    watch_lsass(proc)
    start_services(proc, csr)
    start_child(proc, csr, LSM_EXE)
    proc.log.info("wininit.ready", state="waiting for shutdown")
    threading.Event().wait()
    return 0


def start_lsass(proc: Process, csr: csrclient.CsrClient) -> None:
    """CreateProcess of lsass.exe (not critical: its death restarts the machine); csrss
    learns it first (BasepCreateProcess), so lsass may connect as a Win32 process does."""
    image = SYSTEM32 + "\\lsass.exe"
    try:
        pid = proc.nt.create_process(image, image, proc.environment, proc.session)
        reply = csr.call("BasepCreateProcess", {"process_id": pid})
        if not reply.ok:  # lsass still runs: it is the security process, not a CSR client
            proc.log.warning("wininit.lsass_csr_failed", status=reply.status)
        proc.nt.resume(pid)
    except NtError as exc:
        proc.log.error("wininit.lsass_failed", status=exc.status)
        return
    proc.log.info("wininit.lsass", child_pid=pid)


def create_window_station(proc: Process) -> None:
    """WinSta0 of session 0 with its Winlogon and Default desktops (win32k's objects)."""
    desktops = ["Winlogon", "Default"]
    try:
        path = proc.nt.create_window_station("WinSta0", desktops)
    except NtError as exc:
        proc.log.error("wininit.winsta_failed", status=exc.status)
        return
    proc.log.info("wininit.winsta", window_station=path, desktops=desktops)


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


SERVICES_EXE = "C:\\Windows\\System32\\services.exe"


def start_services(proc: Process, csr: csrclient.CsrClient) -> int:
    """StartServicesManager: CreateProcess of services.exe in session 0 — created
    suspended, made known to csrss (BasepCreateProcess), then resumed."""
    try:
        pid = proc.nt.create_process(SERVICES_EXE, SERVICES_EXE, proc.environment, 0)
        reply = csr.call("BasepCreateProcess", {"process_id": pid})
        if not reply.ok:
            proc.nt.terminate(pid, reply.status)
            proc.log.error("wininit.services_failed", status=reply.status)
            return 0
        proc.nt.resume(pid)
    except NtError as exc:
        proc.log.error("wininit.services_failed", status=exc.status)
        return 0
    proc.log.info("wininit.services", child_pid=pid)
    return pid
