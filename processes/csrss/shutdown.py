"""CsrShutdownProcesses (csrsrv/procsup.c; nt-spec.md §3.10).

Every CSR process is visited once, highest ``ShutdownLevel`` first (ties: creation order).
``FindProcessForShutdown`` marks each candidate with ``CsrShutdownSystem`` (SYSTEM's logon)
or ``CsrShutdownOther`` (not the caller's); a process whose logon id cannot be read is
skipped. Each server's ``ShutdownProcessCallback`` runs in slot order 0..3 with the process
lock released: ``CsrShutdownCsrProcess`` ends the process's turn, ``CsrShutdownCancelled``
aborts the walk with STATUS_CANCELLED, and when every callback said
``CsrShutdownNonCsrProcess`` in the first phase a second phase runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nt.log import get_logger
from nt.status import NtStatus
from processes.csrss.api import ShutdownResult
from processes.csrss.process import (
    SYSTEM_LOGON_ID,
    CsrProcess,
    CsrProcessFlags,
    CsrShutdownFlags,
)

if TYPE_CHECKING:
    from processes.csrss.csrsrv import CsrServer

log = get_logger()

SKIP = CsrProcessFlags.CsrProcessSkipShutdown


def shutdown_processes(csr: CsrServer, caller_logon_id: str | None, flags: int) -> int:
    with csr.processes.lock:
        csr.processes.root.shutdown_flags |= CsrShutdownFlags.CsrShutdownSystem
        for process in csr.processes.snapshot():
            process.flags &= ~SKIP
            process.shutdown_flags = 0
    log.info("csr.shutdown_start", flags=hex(flags), caller_logon=caller_logon_id)
    while True:
        with csr.processes.lock:
            process = _find_process_for_shutdown(csr, caller_logon_id)
            if process is None:
                break
            process.reference_count += 1
        try:
            result = _shutdown_one(csr, process, flags)
        finally:
            csr.dereference_process(process)
        if result == ShutdownResult.CsrShutdownCancelled:
            log.warning("csr.shutdown_cancelled", process_pid=process.pid, flags=hex(flags))
            return NtStatus.STATUS_CANCELLED
    log.info("csr.shutdown_done", status=NtStatus.STATUS_SUCCESS)
    return NtStatus.STATUS_SUCCESS


def _find_process_for_shutdown(csr: CsrServer, caller_logon_id: str | None) -> CsrProcess | None:
    chosen: CsrProcess | None = None
    for process in csr.processes.snapshot():
        if process.flags & SKIP or process.terminating:
            continue
        if process.logon_id is None:
            process.flags |= SKIP  # CsrGetProcessLuid failed
            continue
        if process.logon_id == SYSTEM_LOGON_ID:
            process.shutdown_flags |= CsrShutdownFlags.CsrShutdownSystem
        elif process.logon_id != caller_logon_id:
            process.shutdown_flags |= CsrShutdownFlags.CsrShutdownOther
        if chosen is None or process.shutdown_level > chosen.shutdown_level:
            chosen = process
    if chosen is not None:
        chosen.flags |= SKIP
    return chosen


def _shutdown_one(csr: CsrServer, process: CsrProcess, flags: int) -> int:
    first_phase = True
    while True:
        result = 0
        for server_dll in csr.loaded:
            if not (server_dll and server_dll.shutdown_process_callback):
                continue
            try:
                result = server_dll.shutdown_process_callback(process, flags, first_phase)
            except Exception:
                log.exception("csr.shutdown_callback_failed", server=server_dll.name)
                result = ShutdownResult.CsrShutdownNonCsrProcess
            if result in (
                ShutdownResult.CsrShutdownCsrProcess,
                ShutdownResult.CsrShutdownCancelled,
            ):
                log.info(
                    "csr.shutdown_process",
                    process_pid=process.pid,
                    level=hex(process.shutdown_level),
                    server=server_dll.name,
                    result=ShutdownResult(result).name,
                )
                return result
        if first_phase and result == ShutdownResult.CsrShutdownNonCsrProcess:
            first_phase = False
            continue
        return result
