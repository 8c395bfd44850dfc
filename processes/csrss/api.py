"""CSR_SERVER_DLL records and the ApiPort dispatcher (csrsrv/api.c, ``CsrApiRequestThread``).

Dispatch follows nt-spec.md §3.4 for an ``LPC_REQUEST`` from a CSR process:

1. ``ServerId`` past CsrLoadedServerDll (``CsrServer.server_dll_max``: the profile's count)
   or an empty slot -> STATUS_ILLEGAL_FUNCTION;
2. ``ApiId - ApiBase`` (unsigned) outside the table -> STATUS_ILLEGAL_FUNCTION. ReactOS compares
   the index with the *absolute* ``HighestApiSupported`` (quirk #4), which lets consrv and
   usersrv indices past their tables through; the model bounds by the table size and logs
   the divergence when ReactOS would have dispatched;
3. the body is checked against the API's schema (``CsrValidateMessageBuffer``'s job) ->
   STATUS_INVALID_PARAMETER;
4. the handler runs; an exception is STATUS_INTERNAL_ERROR and csrss carries on
   (reliability-security.md C3) instead of ReactOS's unhandled-exception path.

Steps 3 and 4 are ``ports.contract.invoke``, the path every port takes; what is left here
is CSR's own: the server id / API id decoding, the server-DLL tables and the reply codes.

A sender that is not a CSR process gets STATUS_ILLEGAL_FUNCTION. A call from csrss itself
is ``CsrCallServerFromServer``: the same checks plus the server's ``ValidTable``, and a
fault there is STATUS_ACCESS_VIOLATION.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from nt.log import get_logger
from nt.status import NtStatus, hexstatus
from ports.contract import PENDING, ClientContext, Handler, HandlerResult, Reply, _Pending, invoke
from ports.csr import CsrApi, api_number_to_api_id, api_number_to_server_id

if TYPE_CHECKING:
    from processes.csrss.csrsrv import CsrServer
    from processes.csrss.process import CsrProcess

log = get_logger()


class ReplyCode(IntEnum):
    """CSR_REPLY_CODE (csrsrv.h): what the request thread does after the API returns."""

    CsrReplyImmediately = 0
    CsrReplyPending = 1
    CsrReplyDeadClient = 2
    CsrReplyAlreadySent = 3


class ShutdownResult(IntEnum):
    """What a ShutdownProcessCallback returns (csrsrv.h)."""

    CsrShutdownCsrProcess = 1
    CsrShutdownNonCsrProcess = 2
    CsrShutdownCancelled = 3


@dataclass(eq=False)
class ServerDll:
    """CSR_SERVER_DLL. ``highest_api_supported`` is absolute, as in ReactOS (1034 for
    usersrv); ``api_table`` holds the schemas from ``ports.csr``, parallel to the dispatch
    table. ``csr`` is the loading server (the DLL's view of csrsrv's exports)."""

    name: str
    server_id: int
    csr: CsrServer | None = None
    api_base: int = 0
    highest_api_supported: int = 0
    dispatch_table: list[Handler] = field(default_factory=list)
    valid_table: list[bool] = field(default_factory=list)
    name_table: list[str] = field(default_factory=list)
    api_table: list[CsrApi | None] = field(default_factory=list)
    size_of_process_data: int = 0
    connect_callback: Callable[[CsrProcess, dict], HandlerResult] | None = None
    disconnect_callback: Callable[[CsrProcess], None] | None = None
    new_process_callback: Callable[[CsrProcess | None, CsrProcess], int] | None = None
    hard_error_callback: Callable[[CsrProcess | None, dict], int] | None = None
    shutdown_process_callback: Callable[[CsrProcess, int, bool], int] | None = None
    state: Any = None  # the DLL's own object (its "globals" for this csrss)

    @property
    def table_size(self) -> int:
        return self.highest_api_supported - self.api_base


def install_tables(
    server_dll: ServerDll,
    apis: Sequence[CsrApi],
    handlers: Mapping[str, Handler],
    api_base: int,
    highest_api_supported: int,
) -> None:
    """Fill the dispatch, valid, name and schema tables from the protocol table. Every API
    needs a handler: the ones ReactOS leaves unimplemented are listed as such."""
    missing = [a.name for a in apis if a.name not in handlers]
    if missing or len(apis) != highest_api_supported - api_base:
        raise ValueError(f"{server_dll.name}: incomplete dispatch table {missing}")
    server_dll.api_base = api_base
    server_dll.highest_api_supported = highest_api_supported
    server_dll.dispatch_table = [handlers[a.name] for a in apis]
    server_dll.valid_table = [a.valid_from_server for a in apis]
    server_dll.name_table = [a.short_name for a in apis]
    server_dll.api_table = list(apis)


def dispatch(
    csr: CsrServer, api_number: int, message: Any, client: ClientContext
) -> Reply | _Pending:
    """One ApiPort request from ``client`` (the port's stamped identity)."""
    if client.pid == csr.pid:
        return call_server_from_server(csr, api_number, message, client)
    process, status = csr.processes.reference(client.pid)
    if process is None:
        if status == NtStatus.STATUS_PROCESS_IS_TERMINATING:
            _log_call("?", api_number, client.pid, Reply(status), reason="process is terminating")
            return Reply(status)
        _bad_api(api_number, client.pid, "sender is not a CSR process")
        return Reply(NtStatus.STATUS_ILLEGAL_FUNCTION)
    try:
        return _call(csr, api_number, message, client, server_to_server=False)
    finally:
        csr.dereference_process(process)


def call_server_from_server(
    csr: CsrServer, api_number: int, message: Any, client: ClientContext
) -> Reply:
    """CsrCallServerFromServer: csrss calling one of its own server DLLs."""
    return _call(csr, api_number, message, client, server_to_server=True)


def _call(
    csr: CsrServer, api_number: int, message: Any, client: ClientContext, server_to_server: bool
) -> Reply | _Pending:
    located = _locate(csr, api_number, client.pid)
    if located is None:
        return Reply(NtStatus.STATUS_ILLEGAL_FUNCTION)
    server_dll, index = located
    api = server_dll.api_table[index]
    if server_to_server and not server_dll.valid_table[index]:
        _bad_api(api_number, client.pid, "not valid server-to-server", api=api.name)
        return Reply(NtStatus.STATUS_ILLEGAL_FUNCTION)
    why: list[str] = []
    try:
        reply = invoke(api, server_dll.dispatch_table[index], message, client, why.append)
    except Exception:
        log.exception("csr.api_exception", api=api.name, api_number=hexstatus(api_number))
        fault = NtStatus.STATUS_ACCESS_VIOLATION if server_to_server else None
        reply = Reply(fault or NtStatus.STATUS_INTERNAL_ERROR)
    if reply is PENDING:  # CsrReplyPending: a wait block replies later (ReadConsole)
        log.debug("csr.api_pending", api=api.name, caller_pid=client.pid)
        return reply
    _log_call(api.name, api_number, client.pid, reply, **({"reason": why[0]} if why else {}))
    return reply


def _locate(csr: CsrServer, api_number: int, pid: int) -> tuple[ServerDll, int] | None:
    server_id = api_number_to_server_id(api_number)
    server_dll = csr.loaded[server_id] if server_id < csr.server_dll_max else None
    if server_dll is None:
        _bad_api(api_number, pid, "no such server")
        return None
    index = (api_number_to_api_id(api_number) - server_dll.api_base) & 0xFFFFFFFF
    if index >= server_dll.table_size or index >= len(server_dll.dispatch_table):
        reactos_would_call = index < server_dll.highest_api_supported
        _bad_api(
            api_number,
            pid,
            "api index outside the dispatch table",
            divergence="nt-spec §7 #4: ReactOS would dispatch past its table"
            if reactos_would_call
            else None,
        )
        return None
    return server_dll, index


def _bad_api(api_number: int, pid: int, reason: str, **extra: Any) -> None:
    fields = {k: v for k, v in extra.items() if v is not None}
    log.warning(
        "csr.bad_api",
        api_number=hexstatus(api_number),
        caller_pid=pid,
        reason=reason,
        status=NtStatus.STATUS_ILLEGAL_FUNCTION,
        **fields,
    )


def _log_call(name: str, api_number: int, pid: int, reply: Reply, **extra: Any) -> None:
    # Every call at debug level (NTMODEL_LOG_LEVEL=debug shows them): an info line per
    # call costs about as much as the call itself. Failures stay visible at info.
    if reply.status < 0x80000000 and not extra:
        log.debug("csr.api", api=name, api_number=api_number, caller_pid=pid)
        return
    log.info(
        "csr.api",
        api=name,
        api_number=hexstatus(api_number),
        caller_pid=pid,
        status=reply.status,
        **extra,
    )
