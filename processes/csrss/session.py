"""The SbApiPort side of csrss (csrsrv/session.c, ``CsrSbApiRequestThread``).

smss calls ``SbpCreateSession`` for each process it starts in csrss's session (winlogon,
the initial command): csrss registers it as a CSR process in a new CSR_NT_SESSION and
resumes it. ReactOS sometimes reports success without resuming (quirk #21); the model
returns the real status. The other SB APIs are STATUS_NOT_IMPLEMENTED, as in ReactOS; an
``ApiNumber`` past the table is too (the port's plain-table dispatch).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from nt.log import get_logger
from nt.status import NtStatus, nt_success
from ports import sb
from ports.contract import NOT_IMPLEMENTED, ClientContext, Handler, Reply
from processes.csrss.process import kernel_info, new_process

if TYPE_CHECKING:
    from processes.csrss.csrsrv import CsrServer

log = get_logger()

SB_CLIENT_IMAGE = "smss.exe"


def accept_sb_connection(client: ClientContext) -> bool:
    """Only smss talks to the SbApiPort (its SD grants LocalSystem; reliability C9)."""
    image = os.path.basename(str(getattr(client, "image", "") or "").replace("\\", "/"))
    accepted = image.lower() == SB_CLIENT_IMAGE
    if not accepted:
        log.warning("csr.sb_connect_refused", caller_pid=client.pid, caller_image=image)
    return accepted


def sb_handlers(csr: CsrServer) -> dict[int, Handler]:
    """The SbApiPort's handler table (CsrServerSbApiDispatch)."""

    def create_session(message: dict, client: ClientContext) -> Reply:
        reply = sb_create_session(csr, message["session_id"], message["process"])
        log.info("csr.sb_api", api="SbpCreateSession", caller_pid=client.pid, status=reply.status)
        return reply

    return {
        sb.SbpCreateSession: create_session,
        sb.SbpTerminateSession: NOT_IMPLEMENTED,
        sb.SbpForeignSessionComplete: NOT_IMPLEMENTED,
        sb.SbpCreateProcess: NOT_IMPLEMENTED,
    }


def sb_create_session(csr: CsrServer, session_id: int, process_info: dict) -> Reply:
    """CsrSbCreateSession: register the process, then resume its initial thread."""
    pid = process_info["pid"]
    info = kernel_info(csr.services.query_process(pid))
    if info is None:
        log.warning("csr.sb_unknown_process", process_pid=pid, nt_session=session_id)
        return Reply(NtStatus.STATUS_INVALID_PARAMETER)
    with csr.processes.lock:
        if csr.processes.locate(pid, include_terminating=True) is not None:
            return Reply(NtStatus.STATUS_OBJECT_NAME_COLLISION)
        nt_session = csr.processes.allocate_session(session_id)
        if nt_session is None:
            log.warning("csr.sb_duplicate_session", nt_session=session_id)
            return Reply(NtStatus.STATUS_OBJECT_NAME_COLLISION)
        # The kernel's record, not smss's message, says what the process is.
        process = new_process(csr, pid, None, nt_session, info)
        if process_info.get("tid"):
            process.threads.add(process_info["tid"])
    status = csr.resume(pid)
    if not nt_success(status):
        log.error("csr.sb_resume_failed", process_pid=pid, status=status)
    return Reply(status)
