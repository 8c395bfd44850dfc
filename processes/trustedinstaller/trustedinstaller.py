"""TrustedInstaller.exe (%SystemRoot%\\servicing): the Windows Modules Installer's own
process. Its main calls StartServiceCtrlDispatcher with its one service (``cbs.py``)."""

from __future__ import annotations

from nt.bootstrap import Process
from nt.scdispatch import service_current, start_service_ctrl_dispatcher
from nt.svcglobals import from_process
from nt.win32 import Win32Error as E
from processes.trustedinstaller import cbs


def main(proc: Process) -> int:
    current = service_current(proc.environment)
    if current is None:
        proc.log.error("trustedinstaller.not_a_service_process")
        return E.ERROR_FAILED_SERVICE_CONTROLLER_CONNECT
    cbs.push_globals(from_process(proc))
    return start_service_ctrl_dispatcher(
        proc.lpc, {"TrustedInstaller": cbs.ServiceMain}, current=current, log=proc.log
    )
