"""Server DLLs: loading, CSRSRV's own table, per-server connect (csrsrv/server.c, api.c).

``CsrLoadServerDll``: ``ServerId`` past the slots (4 in ReactOS, 5 in ``win7``, 6 in
``win10``: ``CsrServer.server_dll_max``) -> STATUS_TOO_MANY_NAMES; a used slot ->
STATUS_INVALID_PARAMETER; a DLL that does not load -> its status plus a hard error
{dll name, "Default Load Path"} for the caller to raise; a missing entry point ->
STATUS_PROCEDURE_NOT_FOUND. A "DLL" is the module ``processes.csrss.<name>``; server 0 is
CSRSRV itself and is never imported. The record goes into the slot named by its
``server_id``, which starts as the command-line index.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nt.log import get_logger
from nt.status import NtStatus, nt_success
from ports.contract import ClientContext, Reply, fixed_status, normalise
from ports.csr import (
    CSRSRV_APIS,
    CSRSRV_FIRST_API_NUMBER,
    CSRSRV_SERVERDLL_INDEX,
    HARD_ERROR_MESSAGE,
    CsrpMaxApiNumber,
)
from ports.kernel import OPTION_OK
from ports.schema import SchemaError, validate
from processes.csrss.api import ServerDll, install_tables
from processes.csrss.cmdline import DEFAULT_INIT_ROUTINE

if TYPE_CHECKING:
    from processes.csrss.csrsrv import CsrServer

log = get_logger()

DEFAULT_LOAD_PATH = "Default Load Path"
RESPONSE_NOT_HANDLED = 1  # HARDERROR_RESPONSE ResponseNotHandled
DLL_PACKAGE = "processes.csrss"
_DLL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class HardError:
    """The NtRaiseHardError call CsrLoadServerDll makes when a DLL does not load."""

    status: int
    parameters: tuple[str, ...]
    unicode_string_parameter_mask: int = 3
    valid_response_options: int = OPTION_OK


@dataclass(frozen=True)
class LoadResult:
    status: int
    server_dll: ServerDll | None = None
    hard_error: HardError | None = None


def load_server_dll(csr: CsrServer, dll_name: str, init_name: str | None, index: int) -> LoadResult:
    """CsrLoadServerDll(DllString, EntryPoint, ServerId)."""
    if index >= csr.server_dll_max:
        log.warning(
            "csr.too_many_server_dlls",
            dll=dll_name,
            server_id=index,
            slots=csr.server_dll_max,
            status=NtStatus.STATUS_TOO_MANY_NAMES,
        )
        return LoadResult(NtStatus.STATUS_TOO_MANY_NAMES)
    if csr.loaded[index] is not None:
        return LoadResult(NtStatus.STATUS_INVALID_PARAMETER)
    server_dll = ServerDll(name=dll_name, server_id=index, csr=csr)
    init = _entry_point(dll_name, init_name, index)
    if isinstance(init, LoadResult):
        return init
    try:
        status = int(init(server_dll))
    except Exception:
        log.exception("csr.dll_init_exception", dll=dll_name)
        status = NtStatus.STATUS_INTERNAL_ERROR
    if not nt_success(status):
        log.error(
            "csr.dll_init_failed",
            dll=dll_name,
            status=status,
        )
        return LoadResult(status)
    slot = server_dll.server_id
    if not 0 <= slot < csr.server_dll_max or csr.loaded[slot] is not None:
        return LoadResult(NtStatus.STATUS_INVALID_PARAMETER)
    csr.total_per_process_data += server_dll.size_of_process_data
    csr.loaded[slot] = server_dll
    log.info(
        "csr.server_dll_loaded",
        dll=dll_name,
        entry=init_name or DEFAULT_INIT_ROUTINE,
        server_id=slot,
        api_base=server_dll.api_base,
        highest_api=server_dll.highest_api_supported,
    )
    return LoadResult(NtStatus.STATUS_SUCCESS, server_dll)


def _entry_point(dll_name: str, init_name: str | None, index: int) -> Any:
    """LdrLoadDll + LdrGetProcedureAddress: the init routine, or the failure."""
    if index == CSRSRV_SERVERDLL_INDEX:
        return csrsrv_server_dll_initialization  # CSRSRV is never loaded, it is us
    module = _import_dll(dll_name)
    if module is None:
        status = NtStatus.STATUS_DLL_NOT_FOUND
        log.error(
            "csr.dll_not_found",
            dll=dll_name,
            status=status,
        )
        return LoadResult(status, hard_error=HardError(status, (dll_name, DEFAULT_LOAD_PATH)))
    init = getattr(module, init_name if init_name is not None else DEFAULT_INIT_ROUTINE, None)
    if not callable(init):
        log.error("csr.entry_point_not_found", dll=dll_name, entry=init_name)
        return LoadResult(NtStatus.STATUS_PROCEDURE_NOT_FOUND)
    return init


def _import_dll(dll_name: str) -> Any:
    """LdrLoadDll: the module named like the DLL, or None ("not found")."""
    name = dll_name[:-4] if dll_name.lower().endswith(".dll") else dll_name
    if not _DLL_NAME.match(name):
        return None
    module_name = f"{DLL_PACKAGE}.{name.lower()}"
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            log.exception("csr.dll_import_failed", dll=dll_name)
        return None
    except Exception:
        log.exception("csr.dll_import_failed", dll=dll_name)
        return None


def csrsrv_server_dll_initialization(server_dll: ServerDll) -> int:
    """CsrServerDllInitialization: CSRSRV's own table (server 0)."""
    csr = server_dll.csr
    assert csr is not None

    def client_connect(message: dict, client: ClientContext) -> Reply:
        return srv_client_connect(csr, message, client)

    unused = fixed_status(NtStatus.STATUS_INVALID_PARAMETER)  # CsrSrvUnusedFunction
    handlers = {api.name: unused for api in CSRSRV_APIS}
    handlers["CsrpClientConnect"] = client_connect
    install_tables(server_dll, CSRSRV_APIS, handlers, CSRSRV_FIRST_API_NUMBER, CsrpMaxApiNumber)
    return NtStatus.STATUS_SUCCESS


def srv_client_connect(csr: CsrServer, message: dict, client: ClientContext) -> Reply:
    """CsrSrvClientConnect: hand the connection info to one server's ConnectCallback."""
    server_id = message["server_id"]
    if server_id >= csr.server_dll_max:
        return Reply(NtStatus.STATUS_TOO_MANY_NAMES)
    server_dll = csr.loaded[server_id]
    if server_dll is None:
        return Reply(NtStatus.STATUS_INVALID_PARAMETER)
    if server_dll.connect_callback is None:
        return Reply(NtStatus.STATUS_SUCCESS)
    process = csr.client_process(client)
    if process is None:
        return Reply(NtStatus.STATUS_INVALID_CID)
    return normalise(server_dll.connect_callback(process, message["connection_info"]))


def accept_connection(csr: CsrServer, pid: int, token: dict | None = None) -> bool:
    """CsrApiHandleConnectionRequest: only processes already registered may connect."""
    process = csr.processes.locate(pid)
    if process is None:
        log.warning("csr.connect_refused", caller_pid=pid, reason="not a CSR process")
        return False
    process.connected = True
    sid = (token or {}).get("sid")
    if isinstance(sid, str) and sid:
        process.logon_id = sid
    log.info("csr.connect", caller_pid=pid, sequence=process.sequence_number)
    return True


def handle_hard_error(csr: CsrServer, message: Any, client: ClientContext | None = None) -> Reply:
    """LPC_ERROR_EVENT: each server's HardErrorCallback in slot order until one answers."""
    try:
        body = validate(HARD_ERROR_MESSAGE, message)
    except SchemaError as exc:
        log.warning("csr.hard_error_refused", reason=str(exc))
        return Reply(NtStatus.STATUS_INVALID_PARAMETER, {"response": RESPONSE_NOT_HANDLED})
    process = csr.client_process(client) if client is not None else None
    response = RESPONSE_NOT_HANDLED
    for server_dll in csr.loaded:
        if server_dll and server_dll.hard_error_callback:
            response = server_dll.hard_error_callback(process, body)
            if response != RESPONSE_NOT_HANDLED:
                break
    log.info(
        "csr.hard_error",
        error_status=body["status"],
        response=response,
    )
    return Reply(NtStatus.STATUS_SUCCESS, {"response": response})
