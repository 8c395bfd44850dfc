"""spoolsv.exe: the Spooler's own process (SERVICE_WIN32_OWN_PROCESS | INTERACTIVE, 0x110).

Like spoolsv.exe, the image's main calls StartServiceCtrlDispatcher with its one service
and returns when the SCM ends the dispatcher; the service itself is ``spooler.py``.
"""

from __future__ import annotations

from nt.bootstrap import Process
from nt.scdispatch import service_current, start_service_ctrl_dispatcher
from nt.svcglobals import from_process
from nt.win32 import Win32Error as E
from processes.spoolsv import spooler


def main(proc: Process) -> int:
    current = service_current(proc.environment)
    if current is None:  # run by hand, not by the SCM
        proc.log.error("spoolsv.not_a_service_process")
        return E.ERROR_FAILED_SERVICE_CONTROLLER_CONNECT
    spooler.push_globals(from_process(proc))
    return start_service_ctrl_dispatcher(
        proc.lpc, {"Spooler": spooler.ServiceMain}, current=current, log=proc.log
    )
