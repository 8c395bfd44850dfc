r"""Service accounts (ScmLogonAndStartImage, ScmSetServicePassword): a service whose
``ObjectName`` names a local user (``.\alice``) runs with that user's token.

LocalSystem, ``NT AUTHORITY\LocalService`` and ``NT AUTHORITY\NetworkService`` need no
logon: the kernel gives their well-known tokens at creation. For a user account the SCM,
a trusted logon process, reads the password from the LSA secret ``_SC_<service>`` (stored
by ``ChangeServiceConfig``/``CreateService`` with a password) and calls LsaLogonUser with
logon type Service for the process it created suspended; lsass checks the password and
SeServiceLogonRight and hands the kernel the token before the process first runs. A
failure kills the process: the start fails with ERROR_SERVICE_LOGON_FAILED (1069) and
event 7038 says why (1326 wrong password, 1385 the right not granted), then 7000.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Final

from nt import security as sec
from nt.log import Logger
from nt.status import NtStatus
from nt.win32 import Win32Error as E
from nt.win32 import error_message
from ports import lsa, lsarpc
from ports.client import Connection, PortError

if TYPE_CHECKING:
    from ports.runtime import LpcRuntime
    from processes.services.database import ServiceRecord
    from processes.services.scm import ScmCore

BUILTIN_ACCOUNTS: Final = frozenset(
    {
        "",
        "localsystem",
        ".\\localsystem",
        "nt authority\\system",
        "nt authority\\localservice",
        "nt authority\\local service",
        "nt authority\\networkservice",
        "nt authority\\network service",
    }
)
SECRET_PREFIX: Final = "_SC_"
LOGON_PROCESS_NAME: Final = "services.exe"
# LsaLogonUser's status → the error 7038 quotes (LogonUser's win32 error).
LOGON_ERRORS: Final = {
    NtStatus.STATUS_LOGON_FAILURE: E.ERROR_LOGON_FAILURE,
    NtStatus.STATUS_LOGON_TYPE_NOT_GRANTED: E.ERROR_LOGON_TYPE_NOT_GRANTED,
}


def is_user_account(object_name: str) -> bool:
    return object_name.strip().lower() not in BUILTIN_ACCOUNTS


def account_parts(object_name: str) -> tuple[str, str]:
    """``.\\alice`` or ``NTMODEL\\alice`` → (domain, user); a bare ``alice`` is local."""
    domain, _, user = object_name.strip().rpartition("\\")
    return ("" if domain in ("", ".") else domain), user


class ServiceLogon:
    """The SCM's two LSA bindings, made on first use: a trusted logon-process connection
    (LsaRegisterLogonProcess) and the policy port for the ``_SC_`` secrets."""

    def __init__(self, lpc: LpcRuntime, log: Logger) -> None:
        self.lpc, self.log = lpc, log
        self._lock = threading.Lock()
        self._auth: Connection | None = None
        self._policy: Connection | None = None

    def _connections(self) -> tuple[Connection, Connection]:
        with self._lock:
            if self._auth is None:
                self._auth = lsa.LsaRegisterLogonProcess(self.lpc, LOGON_PROCESS_NAME)
            if self._policy is None:
                self._policy = lsarpc.LsaOpenPolicy(self.lpc)
            return self._auth, self._policy

    def _drop(self) -> None:
        with self._lock:
            for conn in (self._auth, self._policy):
                if conn is not None:
                    conn.close()
            self._auth = self._policy = None

    def store_password(self, service: str, password: bytes) -> int:
        """ScmSetServicePassword: a win32 error (0 on success)."""
        try:
            _, policy = self._connections()
            reply = lsarpc.LsaStorePrivateData(policy, SECRET_PREFIX + service, password or None)
        except PortError as exc:
            self._drop()
            self.log.warning("scm.password_store_failed", service=service, status=exc.status)
            return E.ERROR_GEN_FAILURE
        if reply.status == NtStatus.STATUS_OBJECT_NAME_NOT_FOUND and not password:
            return 0  # clearing a password never stored
        if not reply.ok:
            self.log.warning("scm.password_store_failed", service=service, status=reply.status)
            return E.ERROR_ACCESS_DENIED if reply.status == 0xC0000022 else E.ERROR_GEN_FAILURE
        return 0

    def logon(self, service: str, object_name: str, pid: int) -> int:
        """LsaLogonUser(Service) for ``pid``: the NTSTATUS."""
        domain, user = account_parts(object_name)
        try:
            auth, policy = self._connections()
            secret = lsarpc.LsaRetrievePrivateData(policy, SECRET_PREFIX + service)
            password = secret.body.get("data", b"") if secret.ok else b""
            reply = lsa.LsaLogonUser(
                auth,
                user,
                password,
                sec.Service,
                domain=domain,
                origin=f"Service {service}",
                assign_pid=pid,
                timeout=60.0,
            )
        except PortError as exc:
            self._drop()
            return exc.status
        return reply.status


def logon_service_process(core: ScmCore, svc: ServiceRecord, pid: int) -> int:
    """The hook start.py calls between creating the process suspended and resuming it: 0,
    or ERROR_SERVICE_LOGON_FAILED after 7038 (the caller kills the process and logs 7000)."""
    logon: ServiceLogon | None = getattr(core, "logon", None)
    if logon is None or not is_user_account(svc.object_name):
        return 0
    status = logon.logon(svc.name, svc.object_name, pid)
    if status == NtStatus.STATUS_SUCCESS:
        return 0
    error = LOGON_ERRORS.get(status, E.ERROR_LOGON_FAILURE)
    core.event(7038, svc.event_name, svc.object_name, error_message(error))
    return E.ERROR_SERVICE_LOGON_FAILED


def store_password(core: ScmCore, service: str, password: bytes) -> int:
    """The rpcserver hook for a ChangeServiceConfig/CreateService password: 0 or a win32
    error (no LSA wired: the model without lsass keeps no passwords)."""
    logon: ServiceLogon | None = getattr(core, "logon", None)
    return logon.store_password(service, password) if logon is not None else 0
