"""NtShutdownSystem's work in the kernel: what the Windows shutdown (winlogon's
coordinator) left running, then the hives (nt-spec §1.4; issue 9).

By the time winlogon calls NtShutdownSystem the sessions' applications and the services
are gone; what remains is the system processes (csrss, wininit, winlogon, lsm, ...) and
smss. They are ended newest first and smss last, as the session manager outlives the
sessions it made; the ``smss`` phase is logged with its duration, and the ``kernel``
phase (hives flushed and closed) when the kernel's teardown has run (init.py main).
A Ctrl+C on a machine whose winlogon cannot run the shutdown comes straight here.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from ports.kernel import SHUTDOWN_REBOOT
from processes.kernel.ke import EXIT_REBOOT, EXIT_SHUTDOWN

TERM_WAIT = 3.0  # s: SIGTERM, then SIGKILL
KILL_WAIT = 2.0


def nt_shutdown_system(kernel: Any, action: int) -> None:
    t0 = time.monotonic()
    kernel.ps.close_creation()
    kernel.ps.stop_zygote()
    smss = kernel.smss.pid if kernel.smss is not None else None
    victims = [r.pid for r in sorted(kernel.ps.live(), key=lambda r: r.created, reverse=True)]
    for pid in [p for p in victims if p != smss] + ([smss] if smss in victims else []):
        record = kernel.ps.get(pid)
        if record is None or not record.child:
            continue
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    if not kernel.ps.wait_all(TERM_WAIT):
        kernel.ps.kill_all()
        kernel.ps.wait_all(KILL_WAIT)
    kernel.log.info("shutdown.phase", phase="smss", ms=round((time.monotonic() - t0) * 1000, 3))
    kernel.exit_code = EXIT_REBOOT if action == SHUTDOWN_REBOOT else EXIT_SHUTDOWN
    kernel.log.info(
        "shutdown.complete",
        action=action,
        uptime_ms=int((time.monotonic() - kernel.started) * 1000),
    )
    kernel.halt.set()
