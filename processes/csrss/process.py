"""CSR_PROCESS and CSR_NT_SESSION, and their lifetimes (csrsrv/procsup.c, session.c).

A process is a CSR process once smss registered it (``CsrSbCreateSession``) or its parent
did (``BaseSrvCreateProcess`` -> ``CsrCreateProcess``); only those may connect to the
ApiPort (nt-spec.md §3.7 step 4). Each holds a reference on its CSR_NT_SESSION, inherited
from the parent. When the kernel reports the death (``CsrDestroyProcess``) the process is
marked terminating and its own reference dropped; the structure goes away after the last
reference (an API still running for it holds one; reliability-security.md C10): then the
servers' DisconnectCallbacks run and the session is dereferenced. A session whose count
reaches 0 is reported to smss with ``SmSessionComplete``.

Identity in the model: a process's ``logon_id`` is its token's SID (the LUID's stand-in).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import IntFlag
from typing import TYPE_CHECKING, Any

from nt.log import get_logger
from nt.status import NtStatus
from ports.csr import CSR_SERVER_DLL_MAX

if TYPE_CHECKING:
    from processes.csrss.csrsrv import CsrServer

log = get_logger()

CSR_PROCESS_SEQUENCE_START = 5  # CsrProcessSequenceCount
SHUTDOWN_LEVEL_DEFAULT = 0x280
SYSTEM_LOGON_ID = "S-1-5-18"  # SYSTEM_LUID: LocalSystem


class CsrProcessFlags(IntFlag):
    CsrProcessTerminating = 0x1
    CsrProcessSkipShutdown = 0x2
    CsrProcessNormalPriority = 0x10
    CsrProcessIdlePriority = 0x20
    CsrProcessHighPriority = 0x40
    CsrProcessRealtimePriority = 0x80
    CsrProcessCreateNewGroup = 0x100
    CsrProcessTerminated = 0x200
    CsrProcessLastThreadTerminated = 0x400
    CsrProcessIsConsoleApp = 0x800


class CsrShutdownFlags(IntFlag):
    SHUTDOWN_NORETRY = 0x1  # the only flag SetProcessShutdownParameters may set
    CsrShutdownSystem = 0x4
    CsrShutdownOther = 0x8


@dataclass(eq=False)
class CsrNtSession:
    """CSR_NT_SESSION: one per SMSS session id, counted by the processes in it."""

    session_id: int
    reference_count: int = 1


@dataclass(eq=False)
class CsrProcess:
    pid: int
    sequence_number: int = 0
    image: str = ""
    session: int | None = None  # MuSessionId (the kernel's terminal session)
    parent_pid: int = 0
    nt_session: CsrNtSession | None = None
    logon_id: str | None = None
    flags: int = 0
    shutdown_level: int = SHUTDOWN_LEVEL_DEFAULT
    shutdown_flags: int = 0
    # One entry per CsrLoadedServerDll slot: whoever makes the process passes the
    # profile's count (CsrServer.server_dll_max); the default is ReactOS's 4.
    server_data: list[Any] = field(default_factory=lambda: [None] * CSR_SERVER_DLL_MAX)
    threads: set[int] = field(default_factory=set)
    reference_count: int = 1
    connected: bool = False
    exit_status: int | None = None
    freed: bool = False

    @property
    def terminating(self) -> bool:
        return bool(self.flags & CsrProcessFlags.CsrProcessTerminating)


def kernel_info(record: dict | None) -> dict | None:
    """What csrss keeps of the kernel's record of a live process (None: not alive)."""
    if record is None or record.get("state") == "exited":
        return None
    return {
        "image": record.get("image", ""),
        "session": record.get("session"),
        "parent_pid": record.get("parent_pid", 0),
        "logon_id": (record.get("token") or {}).get("sid"),
    }


class CsrProcessList:
    """The list under ``CsrRootProcess``, in creation order, with ``CsrProcessLock``."""

    def __init__(self, root_pid: int, server_dll_max: int = CSR_SERVER_DLL_MAX) -> None:
        self.lock = threading.RLock()
        self.root = CsrProcess(
            pid=root_pid,
            logon_id=SYSTEM_LOGON_ID,
            image="csrss.exe",
            server_data=[None] * server_dll_max,
        )
        self._by_pid: dict[int, CsrProcess] = {}
        self._sessions: dict[int, CsrNtSession] = {}
        self._sequence = CSR_PROCESS_SEQUENCE_START

    def locate(self, pid: int, include_terminating: bool = False) -> CsrProcess | None:
        with self.lock:
            process = self._by_pid.get(pid)
            if process is None or (process.terminating and not include_terminating):
                return None
            return process

    def reference(self, pid: int) -> tuple[CsrProcess | None, int]:
        """CsrLockProcessByClientId for an incoming request: (process, status)."""
        with self.lock:
            process = self._by_pid.get(pid)
            if process is None:
                return None, NtStatus.STATUS_INVALID_CID
            if process.terminating:
                return None, NtStatus.STATUS_PROCESS_IS_TERMINATING
            process.reference_count += 1
            return process, NtStatus.STATUS_SUCCESS

    def snapshot(self) -> list[CsrProcess]:
        with self.lock:
            return list(self._by_pid.values())

    def insert(self, process: CsrProcess) -> None:
        with self.lock:
            process.sequence_number = self._sequence
            self._sequence += 1
            self._by_pid[process.pid] = process

    def remove(self, process: CsrProcess) -> None:
        with self.lock:
            if self._by_pid.get(process.pid) is process:
                del self._by_pid[process.pid]

    def allocate_session(self, session_id: int) -> CsrNtSession | None:
        """CsrAllocateNtSession; None when the id is already live (a confused smss)."""
        with self.lock:
            if session_id in self._sessions:
                return None
            session = self._sessions[session_id] = CsrNtSession(session_id)
            return session

    def reference_session(self, session: CsrNtSession) -> None:
        with self.lock:
            session.reference_count += 1

    def dereference_session(self, session: CsrNtSession) -> bool:
        """True when this was the last reference (the session is gone)."""
        with self.lock:
            session.reference_count -= 1
            if session.reference_count > 0:
                return False
            self._sessions.pop(session.session_id, None)
            return True

    def session(self, session_id: int) -> CsrNtSession | None:
        with self.lock:
            return self._sessions.get(session_id)


def new_process(
    csr: CsrServer,
    pid: int,
    parent: CsrProcess | None,
    nt_session: CsrNtSession,
    info: dict | None,
    flags: int = 0,
) -> CsrProcess:
    """Build a CSR_PROCESS, run every server's NewProcessCallback, insert it."""
    info = info or {}
    process = CsrProcess(
        pid=pid,
        image=str(info.get("image") or ""),
        session=info.get("session"),
        parent_pid=parent.pid if parent else int(info.get("parent_pid") or 0),
        nt_session=nt_session,
        logon_id=info.get("logon_id") or (parent.logon_id if parent else SYSTEM_LOGON_ID),
        flags=flags,
        server_data=[None] * csr.server_dll_max,
    )
    for server_dll in csr.loaded:
        if server_dll and server_dll.new_process_callback:
            server_dll.new_process_callback(parent, process)
    csr.processes.insert(process)
    log.info(
        "csr.process_create",
        process_pid=pid,
        process_image=process.image,
        nt_session=nt_session.session_id,
        sequence=process.sequence_number,
    )
    return process


def create_process(
    csr: CsrServer, parent: CsrProcess, pid: int, tid: int, flags: int, info: dict | None
) -> tuple[int, CsrProcess | None]:
    """CsrCreateProcess: a child registered by its parent before it is resumed."""
    with csr.processes.lock:
        if parent.terminating:
            return NtStatus.STATUS_THREAD_IS_TERMINATING, None
        if csr.processes.locate(pid, include_terminating=True) is not None:
            return NtStatus.STATUS_OBJECT_NAME_COLLISION, None
        if parent.nt_session is None:  # the root process belongs to no SMSS session
            return NtStatus.STATUS_INVALID_PARAMETER, None
        csr.processes.reference_session(parent.nt_session)
        process = new_process(csr, pid, parent, parent.nt_session, info, flags)
        if tid:
            process.threads.add(tid)
    return NtStatus.STATUS_SUCCESS, process


def destroy_process(csr: CsrServer, pid: int, exit_status: int) -> int:
    """CsrDestroyProcess: the process died (or said it is exiting)."""
    with csr.processes.lock:
        process = csr.processes.locate(pid, include_terminating=True)
        if process is None or process.terminating:
            return NtStatus.STATUS_THREAD_IS_TERMINATING
        process.flags |= CsrProcessFlags.CsrProcessTerminating
        process.exit_status = exit_status
    dereference_process(csr, process)
    return NtStatus.STATUS_SUCCESS


def dereference_process(csr: CsrServer, process: CsrProcess) -> None:
    """CsrDereferenceProcess; the last reference frees the process, exactly once."""
    with csr.processes.lock:
        process.reference_count -= 1
        if process.reference_count > 0 or process.freed:
            return
        process.freed = True
        csr.processes.remove(process)
    _free_process(csr, process)


def _free_process(csr: CsrServer, process: CsrProcess) -> None:
    """CsrProcessRefcountZero: the servers forget the process, then its session."""
    for server_dll in csr.loaded:
        if server_dll and server_dll.disconnect_callback:
            try:
                server_dll.disconnect_callback(process)
            except Exception:
                log.exception(
                    "csr.disconnect_failed", server=server_dll.name, process_pid=process.pid
                )
    status = process.exit_status if process.exit_status is not None else 0
    log.info("csr.process_destroy", process_pid=process.pid, status=status)
    session = process.nt_session
    if session is not None and csr.processes.dereference_session(session):
        csr.session_complete(session.session_id, status)
