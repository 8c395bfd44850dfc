"""The RPC endpoint mapper's port: the ept_* operations of MS-RPCE's epm interface.

``\\RPC Control\\epmapper`` stands for the endpoint mapper's well-known endpoints
(``ncacn_ip_tcp:[135]``, ``ncalrpc:[epmapper]``) of interface
e1af8308-5d1f-11c9-91a4-08002b14a0fa v3.0, served by rpcepmap.dll in the RpcEptMapper
service. A server registers (RpcEpRegister → ept_insert) the interface it serves, the
binding that reaches it (``ncalrpc:[eventlog]``, ``ncacn_np:[\\pipe\\spoolss]``) and an
annotation; a client looks an interface up (ept_map / ept_lookup) to find its endpoint.
API numbers are the epm opnums; the request bodies are the tower's fields spelled out
(the model has no NDR towers: a divergence of encoding, not of behaviour). Entries of a
process are removed when it exits, as the endpoint mapper drops a dead server's
endpoints when RPC runtime rundown tells it (RpcEpUnregister).
"""

from __future__ import annotations

from ports.client import Connection, call_api
from ports.contract import Reply
from ports.schema import U32, Api, Bool, List, Map, Protocol, Str

EPMAP_PORT_NAME = "\\RPC Control\\epmapper"
EPM_INTERFACE = "e1af8308-5d1f-11c9-91a4-08002b14a0fa"
MAX_MESSAGE_LENGTH = 256 * 1024
LOOKUP_MAX = 500  # ept_lookup's max_ents bound

ept_insert = 0
ept_delete = 1
ept_lookup = 2
ept_map = 3

# Status codes of the epm interface (MS-RPCE 2.2.1.2.x, rpcdce.h / nterr).
EPT_S_NOT_REGISTERED = 0x16C9A0D6
EPT_S_CANT_PERFORM_OP = 0x16C9A0D8
EPT_S_INVALID_ENTRY = 0x16C9A0D7
RPC_S_OK = 0

UUID = Str(max_len=36)
ENTRY = {
    "object": UUID,  # the object UUID, nil for most servers
    "interface": UUID,
    "version": Str(max_len=16),  # "major.minor"
    "binding": Str(max_len=512),  # protseq:[endpoint]
    "annotation": Str(max_len=64),
}
ENTRY_OUT = {**ENTRY, "pid": U32(), "service": Str(max_len=256)}
NIL_UUID = "00000000-0000-0000-0000-000000000000"

EPMAP_APIS = (
    Api(
        ept_insert,
        "ept_insert",
        {
            "entries": List(item=Map(fields=ENTRY), max_len=64),
            "replace": Bool(optional=True, default=True),
            "service": Str(max_len=256, optional=True, default=""),
        },
        {"status": U32()},
        "Register endpoints; ``replace`` drops the caller's older entries for the same "
        "interface and object first (RpcEpRegister, not RpcEpRegisterNoReplace).",
    ),
    Api(
        ept_delete,
        "ept_delete",
        {"entries": List(item=Map(fields=ENTRY), max_len=64)},
        {"status": U32()},
        "Unregister; EPT_S_NOT_REGISTERED when an entry is not in the map.",
    ),
    Api(
        ept_lookup,
        "ept_lookup",
        {
            "interface": Str(max_len=36, optional=True),  # None: every interface
            "max_ents": U32(optional=True, default=LOOKUP_MAX),
        },
        {"entries": List(item=Map(fields=ENTRY_OUT), max_len=LOOKUP_MAX), "status": U32()},
        "Entries of the map (``rpcdump``), optionally of one interface.",
    ),
    Api(
        ept_map,
        "ept_map",
        {"interface": UUID, "version": Str(max_len=16), "protseq": Str(max_len=32)},
        {"binding": Str(max_len=512), "status": U32()},
        "The binding of a registered server of this interface, major version and protocol "
        "sequence; EPT_S_NOT_REGISTERED if none.",
    ),
)
EPMAP_PORT = Protocol(
    title="\\RPC Control\\epmapper (RpcEptMapper, MS-RPCE epm)",
    max_message_length=MAX_MESSAGE_LENGTH,
    apis=EPMAP_APIS,
    connect_info={},
    doc="Every reply carries the epm status (``status``, 0 = RPC_S_OK).",
)
_API = EPMAP_PORT.by_name()


def entry(interface: str, version: str, binding: str, annotation: str = "") -> dict:
    return {
        "object": NIL_UUID,
        "interface": interface,
        "version": version,
        "binding": binding,
        "annotation": annotation,
    }


def connect(lpc: object) -> Connection:
    return lpc.connect_port(EPMAP_PORT_NAME, {})  # type: ignore[attr-defined]


def RpcEpRegister(conn: Connection, entries: list[dict], service: str = "") -> Reply:
    return call_api(conn, _API["ept_insert"], {"entries": entries, "service": service})


def RpcEpUnregister(conn: Connection, entries: list[dict]) -> Reply:
    return call_api(conn, _API["ept_delete"], {"entries": entries})


def RpcMgmtEpEltInqNext(conn: Connection, interface: str | None = None) -> Reply:
    """The map's entries (RpcMgmtEpEltInqBegin/Next over ept_lookup)."""
    body = {} if interface is None else {"interface": interface}
    return call_api(conn, _API["ept_lookup"], body)


def RpcEpResolveBinding(conn: Connection, interface: str, version: str, protseq: str) -> Reply:
    return call_api(
        conn, _API["ept_map"], {"interface": interface, "version": version, "protseq": protseq}
    )
