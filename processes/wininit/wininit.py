"""wininit.exe, first duties (Vista+, nt-spec §1.10): connect to csrss, become critical,
create WinSta0 with its Winlogon and Default desktops, start lsass.exe, then wait for
shutdown. Starting services.exe and lsm.exe slots in beside ``start_lsass``.
"""

from __future__ import annotations

import threading

from nt import csrclient
from nt.bootstrap import Process
from nt.images import SYSTEM32
from nt.syscalls import NtError
from ports.client import PortError


def main(proc: Process) -> int:
    try:
        csrclient.connect(proc.lpc, proc.session)
    except PortError as exc:
        proc.log.error("wininit.csr_connect_failed", status=exc.status)
        return exc.status
    if proc.fault("exit_before_critical"):
        return int(proc.fault("exit_before_critical"), 0)
    proc.set_critical()
    create_window_station(proc)
    start_lsass(proc)
    proc.log.info("wininit.ready", state="waiting for shutdown")
    threading.Event().wait()
    return 0


def start_lsass(proc: Process) -> None:
    """CreateProcess of lsass.exe (not critical: its death restarts the machine)."""
    image = SYSTEM32 + "\\lsass.exe"
    try:
        pid = proc.nt.create_process(image, image, proc.environment, proc.session)
        proc.nt.resume(pid)
    except NtError as exc:
        proc.log.error("wininit.lsass_failed", status=exc.status)
        return
    proc.log.info("wininit.lsass", child_pid=pid)


def create_window_station(proc: Process) -> None:
    proc.log.info("wininit.winsta", window_station="WinSta0", desktops=["Winlogon", "Default"])
