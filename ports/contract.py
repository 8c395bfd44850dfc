"""The port contract every server and client shares: one ``Reply``, one handler shape.

ReactOS has one ``CSR_API`` handler typedef and ``smmsg.h`` declaring each call beside its
message; this module is that for every port of the model (kernel system services,
``\\SmApiPort``, csrss's ApiPort and SbApiPort, and the servers to come):

- a handler is ``handler(message, client) -> dict | int | Reply | PENDING`` (``Handler``);
- ``invoke`` is the one validate -> call -> normalise path: the port server runs it for a
  table lookup, csrss runs it after its own server id / API id decoding;
- ``Reply`` is what a handler may return and what a client call gets back.

Client stubs validate against the same ``Api.request`` schema before they send
(``ports.client.call_api``), so both ends check one table.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from nt.status import NtStatus, status_name
from ports.schema import Api, Dict, Int, SchemaError, Str, Value, validate
from ports.schema import Protocol as ProtocolTable

# CONNECT{port, info, proto}: the one protocol version, for clients and servers alike.
CONNECT_VERSION: Final = 1
CONNECT_SCHEMA = {
    "port": Str(max_len=512),
    "info": Dict(value=Value(max_len=4096), max_len=32, optional=True, default={}),
    "proto": Int(lo=0, hi=0xFFFF),
}


@dataclass(slots=True)
class Reply:
    """An NTSTATUS and a body. ``reply_code`` is a server's own after-reply disposition
    (csrss's CSR_REPLY_CODE); the port sends the reply whatever it is."""

    status: int
    body: dict = field(default_factory=dict)
    reply_code: int = 0

    @property
    def ok(self) -> bool:
        """NT_SUCCESS: success, information and warning severities."""
        return self.status < 0x80000000


class _Pending:
    """The handler completes the reply later through ``client.defer()``."""

    def __repr__(self) -> str:
        return "PENDING"


PENDING: Final = _Pending()

HandlerResult = dict | int | Reply | _Pending


class _ReplySink(Protocol):
    def _send_reply(
        self, rid: bytes, conn_id: int, msg_id: int, status: int, body: dict
    ) -> None: ...


@dataclass
class ClientContext:
    """What a handler knows about its caller; built from the kernel, never the payload."""

    pid: int
    image: str
    session: int | None
    token: dict
    conn_id: int
    port: str
    info: dict
    state: dict = field(default_factory=dict)
    _server: Any = None
    _rid: bytes = b""
    _msg_id: int = 0

    def defer(self) -> Deferred:
        return Deferred(self._server, self._rid, self.conn_id, self._msg_id)


class Deferred:
    """A reply the handler sends later (CsrReplyPending); completes exactly once."""

    def __init__(self, server: _ReplySink, rid: bytes, conn_id: int, msg_id: int) -> None:
        self._server, self._rid, self._conn_id, self._msg_id = server, rid, conn_id, msg_id
        self._done = threading.Lock()
        self.completed = False

    def complete(self, status: int, body: dict | None = None) -> None:
        if not self._done.acquire(blocking=False):
            return
        self.completed = True
        self._server._send_reply(self._rid, self._conn_id, self._msg_id, status, body or {})


class Handler(Protocol):
    """Every port's handler: the body already checked against ``Api.request``."""

    def __call__(self, message: dict, client: ClientContext, /) -> HandlerResult: ...


def normalise(result: HandlerResult) -> Reply | _Pending:
    """dict -> STATUS_SUCCESS with that body; int -> that status, empty body."""
    if isinstance(result, Reply) or result is PENDING:
        return result
    if isinstance(result, dict):
        return Reply(NtStatus.STATUS_SUCCESS, result)
    if isinstance(result, int):
        return Reply(int(result))
    raise TypeError(f"handler returned {type(result).__name__}")


def invoke(
    api: Api,
    handler: Handler,
    message: Any,
    client: ClientContext,
    bad_message: Callable[[str], None] | None = None,
) -> Reply | _Pending:
    """The one validate -> call -> normalise path. A body that does not match
    ``api.request`` is STATUS_INVALID_PARAMETER (``bad_message`` hears why); a successful
    reply is checked against ``api.reply``. A handler's exception (``ReplySchemaError``
    included) propagates to the caller's safety net: the port answers
    STATUS_INTERNAL_ERROR and logs the traceback."""
    try:
        body = validate(api.request, message)
    except SchemaError as exc:
        if bad_message is not None:
            bad_message(str(exc))
        return Reply(NtStatus.STATUS_INVALID_PARAMETER)
    reply = normalise(handler(body, client))
    if reply is not PENDING and reply.status == NtStatus.STATUS_SUCCESS and api.reply:
        check_reply(api, reply.body)
    return reply


class ReplySchemaError(TypeError):
    """A handler answered with a body its API's reply schema does not describe: a bug in
    the server (STATUS_INTERNAL_ERROR), never sent, so PROTOCOL.md's reply tables hold."""


def check_reply(api: Api, body: dict) -> None:
    try:
        validate(api.reply, body)
    except SchemaError as exc:
        raise ReplySchemaError(f"{api.name} reply: {exc}") from exc


def dispatch(
    protocol: ProtocolTable,
    handlers: Mapping[int, Handler],
    api_number: int,
    message: Any,
    client: ClientContext,
    bad_message: Callable[[str], None] | None = None,
) -> Reply | _Pending:
    """A plain handler table: the API's row and handler; an API number with neither is
    STATUS_NOT_IMPLEMENTED (smloop.c's and the SB loop's answer past their tables)."""
    api = protocol.by_number().get(api_number)
    handler = handlers.get(api_number)
    if api is None or handler is None:
        return Reply(NtStatus.STATUS_NOT_IMPLEMENTED)
    return invoke(api, handler, message, client, bad_message)


def fixed_status(status: int, name: str = "") -> Handler:
    """A handler that always answers ``status`` (ReactOS's stubs and unused functions)."""

    def handler(message: dict, client: ClientContext) -> int:
        return status

    handler.__name__ = name or f"answer_{status_name(status)}"
    return handler


NOT_IMPLEMENTED: Final = fixed_status(NtStatus.STATUS_NOT_IMPLEMENTED)
