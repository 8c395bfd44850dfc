"""The kernel's fault hooks, injected by configuration (``NTMODEL_FAULTS``, image
``System``) so that cluster tests hit a fault window deterministically, never by sleeping:

    System:stall_at=STEP                 Phase 1 stops before STEP (a test kills the kernel)
    System:bugcheck_while_creating=IMAGE smss is killed while IMAGE is being created
"""

from __future__ import annotations

import os
import signal
from typing import Any

from nt.bootstrap import FAULTS_ENV, parse_faults
from processes.kernel.ps import ProcessRecord


class KernelFaults:
    def __init__(self, kernel: Any) -> None:
        self.k = kernel
        self.faults = parse_faults(os.environ.get(FAULTS_ENV, ""), "System", None)

    def stall(self, step: str) -> bool:
        """Block for good before ``step`` if asked to (True when it was asked)."""
        if self.faults.get("stall_at") != step:
            return False
        self.k.log.warning("fault.stall", step=step)
        self.k.halt.wait()
        return True

    def creation_hook(self) -> Any:
        return self._bugcheck_while_creating if "bugcheck_while_creating" in self.faults else None

    def _bugcheck_while_creating(self, step: str, record: ProcessRecord) -> None:
        """While IMAGE is being created (watched, not yet published), kill smss, which
        bugchecks, and go on only once the bugcheck latch is taken: the window of a
        creation in flight during KeBugCheckEx."""
        k = self.k
        if step != "watched" or record.image != self.faults["bugcheck_while_creating"]:
            return
        if k.smss is None:
            return
        k.log.warning("fault.bugcheck_while_creating", child_pid=record.pid, smss_pid=k.smss.pid)
        os.kill(k.smss.pid, signal.SIGKILL)
        k.bugcheck.latched.wait(5.0)
