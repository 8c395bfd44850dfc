"""BASESRV, the Base API server DLL (subsystems/win/basesrv; nt-spec.md §3.8, §3.9).

Server 1, API base 0, ``BasepMaxApiNumber`` 31. Real behaviour: process and thread
registration, ExitProcess, temp-file numbering, DOS device definitions in the object
namespace (with ReactOS's definition history), shutdown parameters, NLS user info.
Divergences from ReactOS, each deliberate:

- ``BaseSrvRegisterThread`` and ``BaseSrvNlsSetUserInfo`` are stubs in ReactOS; the model
  implements them (a thread joins the caller's CSR_PROCESS; a per-session NLS record);
- the NTVDM family (CheckVDM ... GetVDMCurDirs, NlsCreateSection) has no machine to talk
  to and answers STATUS_NOT_IMPLEMENTED, like ReactOS's own WOW paths;
- ``BaseSrvCreateProcess`` only registers children of the caller (the kernel's record
  says who the parent is) and a shutdown level must lie in 0..0x4FF;
- ``BaseSrvSxsCreateActivationContext`` is a stub in ReactOS. From Windows 7 on the
  routine lives in sxssrv, which hands it to basesrv with the export
  ``BaseSrvRegisterSxS`` (Geoff Chappell's BASESRV export list: 6.1 and higher; sxssrv's
  ServerDllInitialization ends with that call). The model does the same: with sxssrv
  loaded the API works (processes/csrss/sxssrv.py), without it it stays
  STATUS_NOT_IMPLEMENTED as in ReactOS.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nt.log import get_logger
from nt.status import NtStatus, nt_success
from ports.contract import NOT_IMPLEMENTED, ClientContext, HandlerResult, Reply, fixed_status
from ports.csr import (
    BASESRV_APIS,
    BASESRV_CONNECT_INFO,
    BASESRV_FIRST_API_NUMBER,
    BasepMaxApiNumber,
)
from ports.schema import SchemaError, validate
from processes.csrss.api import ReplyCode, ServerDll, install_tables
from processes.csrss.process import CsrProcess, CsrProcessFlags, CsrShutdownFlags, kernel_info

log = get_logger()

DDD_RAW_TARGET_PATH = 0x1
DDD_REMOVE_DEFINITION = 0x2
DDD_EXACT_MATCH_ON_REMOVE = 0x4
DDD_NO_BROADCAST_SYSTEM = 0x8
CREATE_NEW_PROCESS_GROUP = 0x200
SHUTDOWN_LEVEL_MAX = 0x4FF
DOS_DEVICE_HISTORY_MAX = 32
THREADS_PER_PROCESS_MAX = 4096

# LCTYPEs kept in NLS_USER_INFO, with the en-US defaults (winnls.h).
NLS_USER_INFO_DEFAULTS = {
    0x0002: ("LOCALE_SLANGUAGE", "English (United States)"),
    0x0005: ("LOCALE_ICOUNTRY", "1"),
    0x000C: ("LOCALE_SLIST", ","),
    0x000D: ("LOCALE_IMEASURE", "1"),
    0x000E: ("LOCALE_SDECIMAL", "."),
    0x000F: ("LOCALE_STHOUSAND", ","),
    0x0014: ("LOCALE_SCURRENCY", "$"),
    0x001D: ("LOCALE_SDATE", "/"),
    0x001E: ("LOCALE_STIME", ":"),
    0x001F: ("LOCALE_SSHORTDATE", "M/d/yyyy"),
    0x0020: ("LOCALE_SLONGDATE", "dddd, MMMM d, yyyy"),
    0x0028: ("LOCALE_S1159", "AM"),
    0x0029: ("LOCALE_S2359", "PM"),
    0x1003: ("LOCALE_STIMEFORMAT", "h:mm:ss tt"),
    0x100C: ("LOCALE_IFIRSTDAYOFWEEK", "6"),
}
LOCALE_EN_US = 0x0409


@dataclass(frozen=True)
class SxsFunctions:
    """What sxssrv passes to ``BaseSrvRegisterSxS``: its routines basesrv's API table
    calls into."""

    create_activation_context: Callable[[CsrProcess, dict], HandlerResult]


def BaseSrvRegisterSxS(server_dll: ServerDll, functions: SxsFunctions) -> int:  # noqa: N802
    """basesrv!BaseSrvRegisterSxS: remember sxssrv's routines in basesrv's globals (one
    csrss's; the model keeps DLL globals per ``CsrServer``)."""
    assert server_dll.csr is not None
    server_dll.csr.dll_globals("basesrv")["sxs"] = functions
    return NtStatus.STATUS_SUCCESS


class BaseServer:
    """basesrv's globals for one csrss, and its API routines."""

    def __init__(self, server_dll: ServerDll) -> None:
        assert server_dll.csr is not None
        self.dll = server_dll
        self.csr = server_dll.csr
        self.temp_file_unique = 0  # BaseGetTempFileUnique
        self.first_vdm = True
        self.dos_device_history: dict[str, list[str]] = {}
        # BaseDefineDosDeviceCritSec: held across the object-manager calls, but it is not
        # the process lock, so other APIs keep running while the kernel answers.
        self.dos_device_lock = threading.Lock()
        self.nls: dict[int, dict[str, Any]] = {}  # per MuSessionId

    def _caller(self, client: ClientContext) -> CsrProcess:
        process = self.csr.client_process(client)
        assert process is not None  # dispatch only calls us for CSR processes
        return process

    # --- processes and threads ---------------------------------------------------------

    def create_process(self, message: dict, client: ClientContext) -> Reply:
        """BaseSrvCreateProcess: the parent registers its suspended child."""
        parent = self._caller(client)
        pid = message["process_id"]
        info = kernel_info(self.csr.services.query_process(pid))
        if info is None:
            return Reply(NtStatus.STATUS_INVALID_CID)
        if info["parent_pid"] != parent.pid:
            log.warning("csr.create_process_denied", caller_pid=client.pid, process_pid=pid)
            return Reply(NtStatus.STATUS_ACCESS_DENIED)
        flags = 0
        if message["creation_flags"] & CREATE_NEW_PROCESS_GROUP:
            flags |= CsrProcessFlags.CsrProcessCreateNewGroup
        if not message["gui"]:
            flags |= CsrProcessFlags.CsrProcessIsConsoleApp
        status, _ = self.csr.create_process(parent, pid, message["thread_id"], flags, info)
        if status == NtStatus.STATUS_THREAD_IS_TERMINATING:
            return Reply(status, reply_code=ReplyCode.CsrReplyDeadClient)
        return Reply(status)

    def create_thread(self, message: dict, client: ClientContext) -> int:
        """BaseSrvCreateThread: a new thread of the caller (or of another CSR process)."""
        caller = self._caller(client)
        target = caller
        if message["process_id"] != caller.pid:
            if message["process_id"] == self.csr.pid:
                return NtStatus.STATUS_SUCCESS
            target = self.csr.processes.locate(message["process_id"])
            if target is None:
                return NtStatus.STATUS_UNSUCCESSFUL  # CsrLockProcessByClientId
        return self._add_thread(target, message["thread_id"])

    def register_thread(self, message: dict, client: ClientContext) -> int:
        """BaseSrvRegisterThread: a thread the caller made without CreateThread."""
        return self._add_thread(self._caller(client), message["thread_id"])

    def _add_thread(self, process: CsrProcess, tid: int) -> int:
        with self.csr.processes.lock:
            if len(process.threads) >= THREADS_PER_PROCESS_MAX:
                return NtStatus.STATUS_INSUFFICIENT_RESOURCES
            process.threads.add(tid)
        return NtStatus.STATUS_SUCCESS

    def exit_process(self, message: dict, client: ClientContext) -> Reply:
        """BaseSrvExitProcess: forget the caller now; it is about to die."""
        status = self.csr.destroy_process(client.pid, message["exit_code"])
        return Reply(status, reply_code=ReplyCode.CsrReplyDeadClient)

    def set_process_shutdown_param(self, message: dict, client: ClientContext) -> int:
        if message["flags"] & ~CsrShutdownFlags.SHUTDOWN_NORETRY:
            return NtStatus.STATUS_INVALID_PARAMETER
        if message["level"] > SHUTDOWN_LEVEL_MAX:
            return NtStatus.STATUS_INVALID_PARAMETER
        process = self._caller(client)
        with self.csr.processes.lock:
            process.shutdown_level = message["level"]
            process.shutdown_flags = message["flags"]
        return NtStatus.STATUS_SUCCESS

    def get_process_shutdown_param(self, message: dict, client: ClientContext) -> dict:
        process = self._caller(client)
        return {
            "level": process.shutdown_level,
            "flags": int(process.shutdown_flags & CsrShutdownFlags.SHUTDOWN_NORETRY),
        }

    # --- small services ----------------------------------------------------------------

    def get_temp_file(self, message: dict, client: ClientContext) -> dict:
        """BaseSrvGetTempFile: a 16-bit id, unique while it does not wrap. (ReactOS also
        returns the id as the NTSTATUS; the model answers STATUS_SUCCESS.)"""
        with self.csr.processes.lock:
            self.temp_file_unique = (self.temp_file_unique + 1) & 0xFFFF
            return {"unique_id": self.temp_file_unique}

    def is_first_vdm(self, message: dict, client: ClientContext) -> dict:
        with self.csr.processes.lock:
            first, self.first_vdm = self.first_vdm, False
        return {"first_vdm": first}

    def sound_sentry_notification(self, message: dict, client: ClientContext) -> int:
        """_UserSoundSentry lives in winsrv; without winsrv FailSoundSentry says no."""
        winsrv = any(d is not None and d.name.lower() == "winsrv" for d in self.csr.loaded)
        return NtStatus.STATUS_SUCCESS if winsrv else NtStatus.STATUS_ACCESS_DENIED

    def sxs_create_activation_context(self, message: dict, client: ClientContext) -> HandlerResult:
        """BaseSrvSxsCreateActivationContext: sxssrv's routine when it registered one."""
        sxs = self.csr.dll_globals("basesrv").get("sxs")
        if sxs is None:
            return NtStatus.STATUS_NOT_IMPLEMENTED  # ReactOS's stub; no sxssrv loaded
        return sxs.create_activation_context(self._caller(client), message)

    # --- NLS -----------------------------------------------------------------------------

    def _nls_record(self, client: ClientContext) -> dict[str, Any]:
        session = client.session if client.session is not None else self.csr.session_id
        return self.nls.setdefault(
            session or 0,
            {
                "locale_id": LOCALE_EN_US,
                "cache_update_count": 0,
                "values": {name: value for name, value in NLS_USER_INFO_DEFAULTS.values()},
            },
        )

    def nls_set_user_info(self, message: dict, client: ClientContext) -> int:
        entry = NLS_USER_INFO_DEFAULTS.get(message["lc_type"])
        if entry is None:
            return NtStatus.STATUS_INVALID_PARAMETER
        with self.csr.processes.lock:
            record = self._nls_record(client)
            record["values"][entry[0]] = message["data"]
            record["cache_update_count"] = (record["cache_update_count"] + 1) & 0xFFFFFFFF
        return NtStatus.STATUS_SUCCESS

    def nls_get_user_info(self, message: dict, client: ClientContext) -> dict:
        with self.csr.processes.lock:
            record = self._nls_record(client)
            return {**record, "values": dict(record["values"])}

    # --- DOS devices -------------------------------------------------------------------

    def define_dos_device(self, message: dict, client: ClientContext) -> int:
        """BaseSrvDefineDosDevice: a DOS device is a symbolic link in the caller's
        DosDevices; defining over one stacks the old target, removing restores it."""
        flags = message["flags"]
        if flags & ~0xF or (
            flags & DDD_EXACT_MATCH_ON_REMOVE and not flags & DDD_REMOVE_DEFINITION
        ):
            return NtStatus.STATUS_INVALID_PARAMETER
        device = message["device_name"].upper()
        if not device or "\\" in device or "/" in device:
            return NtStatus.STATUS_INVALID_PARAMETER
        link = self._dos_device_link(device, client)
        target = message["target_path"]
        if target and not flags & DDD_RAW_TARGET_PATH:
            target = dos_path_to_nt_path(target)
        with self.dos_device_lock:
            if flags & DDD_REMOVE_DEFINITION:
                status = self._remove_dos_device(
                    link, target, bool(flags & DDD_EXACT_MATCH_ON_REMOVE)
                )
            else:
                status = self._define_dos_device(link, target)
        log.info(
            "csr.dos_device",
            link=link,
            target=target,
            flags=hex(flags),
            status=status,
        )
        return status

    def _dos_device_link(self, device: str, client: ClientContext) -> str:
        session = client.session if client.session is not None else self.csr.session_id
        return f"\\Sessions\\{session}\\DosDevices\\{device}" if session else f"\\??\\{device}"

    def _define_dos_device(self, link: str, target: str) -> int:
        if not target:
            return NtStatus.STATUS_INVALID_PARAMETER
        kernel = self.csr.services
        status, current = kernel.query_symbolic_link(link)
        if nt_success(status) and current is not None:
            history = self.dos_device_history.setdefault(link, [])
            if len(history) >= DOS_DEVICE_HISTORY_MAX:
                return NtStatus.STATUS_INSUFFICIENT_RESOURCES
            status = kernel.delete_symbolic_link(link)
            if not nt_success(status):
                return status
            history.append(current)
        return kernel.create_symbolic_link(link, target)

    def _remove_dos_device(self, link: str, target: str, exact: bool) -> int:
        kernel = self.csr.services
        status, current = kernel.query_symbolic_link(link)
        if not nt_success(status) or current is None:
            return NtStatus.STATUS_OBJECT_NAME_NOT_FOUND
        history = self.dos_device_history.get(link, [])
        if _target_matches(target, current, exact):
            status = kernel.delete_symbolic_link(link)
            if nt_success(status) and history:
                status = kernel.create_symbolic_link(link, history.pop())
            return status
        for i in range(len(history) - 1, -1, -1):
            if _target_matches(target, history[i], exact):
                del history[i]
                return NtStatus.STATUS_SUCCESS
        return NtStatus.STATUS_OBJECT_NAME_NOT_FOUND

    # --- callbacks -----------------------------------------------------------------------

    def connect(self, process: CsrProcess, info: dict) -> Reply:
        """BaseClientConnectRoutine: the client must send BASESRV_API_CONNECTINFO."""
        try:
            validate(BASESRV_CONNECT_INFO, info)
        except SchemaError:
            return Reply(NtStatus.STATUS_INVALID_PARAMETER)
        process.server_data[self.dll.server_id] = {"connected": True}
        return Reply(NtStatus.STATUS_SUCCESS, {"connection_info": {"debug_flags": 0}})

    def disconnect(self, process: CsrProcess) -> None:
        process.server_data[self.dll.server_id] = None


def _target_matches(requested: str, current: str, exact: bool) -> bool:
    """No target removes the current one; else an exact or a prefix match, case-blind."""
    if not requested:
        return True
    if exact:
        return requested.lower() == current.lower()
    return current.lower().startswith(requested.lower())


def dos_path_to_nt_path(path: str) -> str:
    """RtlDosPathNameToNtPathName_U for the forms DefineDosDevice sees."""
    if path.startswith("\\\\?\\"):
        return "\\??\\" + path[4:]
    if path.startswith("\\\\"):
        return "\\??\\UNC\\" + path[2:]
    if path.startswith("\\??\\"):
        return path
    return "\\??\\" + path


def ServerDllInitialization(server_dll: ServerDll) -> int:  # noqa: N802 - the export's name
    """basesrv!ServerDllInitialization."""
    base = BaseServer(server_dll)
    unsuccessful = fixed_status(NtStatus.STATUS_UNSUCCESSFUL)  # deprecated DebugProcess
    handlers = {api.name: NOT_IMPLEMENTED for api in BASESRV_APIS}
    handlers.update(
        BasepCreateProcess=base.create_process,
        BasepCreateThread=base.create_thread,
        BasepGetTempFile=base.get_temp_file,
        BasepExitProcess=base.exit_process,
        BasepDebugProcess=unsuccessful,
        BasepIsFirstVDM=base.is_first_vdm,
        BasepSetProcessShutdownParam=base.set_process_shutdown_param,
        BasepGetProcessShutdownParam=base.get_process_shutdown_param,
        BasepNlsSetUserInfo=base.nls_set_user_info,
        BasepSoundSentryNotification=base.sound_sentry_notification,
        BasepDefineDosDevice=base.define_dos_device,
        BasepSxsCreateActivationContext=base.sxs_create_activation_context,
        BasepDebugProcessStop=unsuccessful,
        BasepRegisterThread=base.register_thread,
        BasepNlsGetUserInfo=base.nls_get_user_info,
    )
    install_tables(server_dll, BASESRV_APIS, handlers, BASESRV_FIRST_API_NUMBER, BasepMaxApiNumber)
    server_dll.state = base
    server_dll.connect_callback = base.connect
    server_dll.disconnect_callback = base.disconnect
    return NtStatus.STATUS_SUCCESS
