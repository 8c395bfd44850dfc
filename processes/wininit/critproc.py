"""wininit watching lsass (Vista+): lsass is not a critical process to the kernel, but its
death restarts the machine. wininit logs System event 1015 (Wininit), shows the shutdown
notice with its countdown — 60 seconds, scaled by ``Control\\NtModel\\CountdownScalePercent``
(a divergence when not 100) — and then shuts down and restarts in order
(NtShutdownSystem(ShutdownReboot)). Callers waiting on lsass's ports have already seen
STATUS_PORT_DISCONNECTED: the runtime closes a dead server's connections.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from nt.bootstrap import Process
from nt.evtmsg import report_event
from nt.status import NtStatus
from nt.syscalls import NtError
from ports.client import PortError
from ports.kernel import OPTION_OK, SHUTDOWN_REBOOT

WATCHED = "lsass.exe"
LSASS_PATH = "C:\\Windows\\system32\\lsass.exe"
LSASS_DESCRIPTION = "Local Security Authority Process"  # lsass.exe's FileDescription
MODEL_KEY = r"HKLM\SYSTEM\CurrentControlSet\Control\NtModel"
COUNTDOWN_S = 60


def shutdown_notice(status: int, seconds: int) -> str:
    """The "System Shutdown" dialog's text, as Windows words it for lsass."""
    signed = status - (1 << 32) if status & 0x80000000 else status
    return (
        "The system is shutting down. Please save all work in progress and log off. Any "
        "unsaved changes will be lost. This shutdown was initiated by NT AUTHORITY\\SYSTEM\n"
        f"Shutdown will begin in: {seconds // 3600:02}:{seconds // 60 % 60:02}:{seconds % 60:02}\n"
        f"Message: The system process '{LSASS_PATH}' terminated unexpectedly with status "
        f"code {signed}. The system will now shut down and restart."
    )


def countdown_seconds(proc: Process) -> float:
    try:
        percent = proc.nt.query_value(MODEL_KEY, "CountdownScalePercent")[1]
    except NtError:
        percent = 100
    percent = percent if isinstance(percent, int) else 100
    if percent != 100:
        proc.log.info("divergence", what="lsass restart countdown scaled", percent=percent)
    return COUNTDOWN_S * percent / 100


def raise_lsass_hard_error(proc: Process, status: int) -> None:
    """The box the user sees: STATUS_SYSTEM_PROCESS_TERMINATED naming the process the way
    SmpTerminate names its own ("Windows Logon Process"), with OptionOk: the kernel hands it
    to csrss of the active session instead of bugchecking (lsass's death is a restart)."""
    try:
        proc.nt.raise_hard_error(
            NtStatus.STATUS_SYSTEM_PROCESS_TERMINATED,
            [LSASS_DESCRIPTION, status & 0xFFFFFFFF, 0, 0],
            OPTION_OK,
            1,
        )
    except (NtError, PortError) as exc:
        proc.log.warning("wininit.hard_error_failed", status=exc.status)


def lsass_died(proc: Process, pid: int, status: int, wait: Callable[[float], object]) -> None:
    report_event(proc.log, 1015, (LSASS_PATH, f"{status & 0xFFFFFFFF:x}"))
    # Its own thread: the raiser waits for the user's answer; the countdown does not.
    threading.Thread(
        target=raise_lsass_hard_error, args=(proc, status), name="lsass-harderror", daemon=True
    ).start()
    seconds = countdown_seconds(proc)
    notice = shutdown_notice(status & 0xFFFFFFFF, round(seconds))
    proc.log.warning(
        "wininit.critical_process_died",
        child_pid=pid,
        child_image=WATCHED,
        status=status & 0xFFFFFFFF,
        countdown_s=seconds,
        notice=notice,
    )
    try:
        proc.nt.display_string(notice)
    except NtError:
        pass
    wait(seconds)
    proc.log.info("wininit.restart", reason=f"{WATCHED} terminated unexpectedly")
    proc.nt.shutdown(SHUTDOWN_REBOOT)


def watch_lsass(proc: Process, wait: Callable[[float], object] | None = None) -> None:
    """Subscribe to the kernel's exit events; the first lsass exit starts the countdown."""
    fired = threading.Event()
    pause = wait or threading.Event().wait

    def on_exit(pid: int, status: int, image: str) -> None:
        if image.lower() != WATCHED or fired.is_set():
            return
        fired.set()
        threading.Thread(
            target=lsass_died, args=(proc, pid, status, pause), name="lsass-died", daemon=True
        ).start()

    if proc.lpc.events is not None:
        proc.lpc.events.subscribe(on_exit)
