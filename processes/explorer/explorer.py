"""explorer.exe: the user's shell. The model has no desktop to draw: the shell connects to
its session's csrss, says it is ready (``explorer.ready``: the taskbar is up) and stays
until it is ended (logoff, shutdown, or a kill; winlogon restarts it then when
``Winlogon\\AutoRestartShell`` is 1)."""

from __future__ import annotations

import threading

from nt import csrclient
from nt.bootstrap import Process
from ports.client import PortError


def main(proc: Process) -> int:
    try:
        csrclient.connect(proc.lpc, proc.session)
    except PortError as exc:
        proc.log.error("explorer.csr_connect_failed", status=exc.status)
        return exc.status
    proc.log.info(
        "explorer.ready",
        user=proc.environment.get("USERNAME", ""),
        profile=proc.environment.get("USERPROFILE", ""),
    )
    threading.Event().wait()
    return 0
