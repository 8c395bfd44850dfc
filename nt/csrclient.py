"""CsrClientConnectToServer / CsrClientCallServer: the client side of csrss's ApiPort.

kernel32 connects every Win32 process to the csrss of its session: ``\\Windows\\ApiPort``
in session 0, ``\\Sessions\\<id>\\Windows\\ApiPort`` otherwise (kernel32 dllmain.c), then
calls CsrpClientConnect for each server DLL it needs (basesrv, then usersrv). csrss
accepts only processes it already knows (registered by smss or by the parent).
"""

from __future__ import annotations

from typing import Any

from ports import csr
from ports.client import Connection, PortError, call_api
from ports.contract import Reply
from ports.csr import BASESRV_SERVERDLL_INDEX, CONSRV_SERVERDLL_INDEX, USERSRV_SERVERDLL_INDEX
from ports.runtime import LpcRuntime

USER_VERSION = 0x0005_0000  # USERCONNECT.ulVersion: USERCURRENTVERSION


class CsrClient:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def call(self, api: str | int, body: dict | None = None, timeout: float | None = 30.0) -> Reply:
        """CsrClientCallServer by API number or by any of its names; the body is checked
        against the API's schema before it is sent (``call_api``)."""
        found = csr.api_by_number(api) if isinstance(api, int) else csr.lookup_api(api)
        if found is None:
            if isinstance(api, int):  # the server's answer for a number outside its tables
                return self.conn.call(api, body or {}, timeout)
            raise KeyError(f"no CSR API named {api!r}")
        return call_api(self.conn, found, body or {}, timeout)

    def close(self) -> None:
        self.conn.close()


def connect(
    lpc: LpcRuntime,
    session: int | None,
    servers: tuple[int, ...] = (BASESRV_SERVERDLL_INDEX, USERSRV_SERVERDLL_INDEX),
) -> CsrClient:
    """CsrClientConnectToServer for each server; raises PortError on refusal."""
    conn = lpc.connect_port(csr.object_directory(session) + "\\" + csr.API_PORT_NAME)
    client = CsrClient(conn)
    infos: dict[int, dict[str, Any]] = {
        BASESRV_SERVERDLL_INDEX: {"debug_flags": 0},
        USERSRV_SERVERDLL_INDEX: {"version": USER_VERSION},
        CONSRV_SERVERDLL_INDEX: {"is_console_app": True},
    }
    for server in servers:
        reply = client.call(
            "CsrpClientConnect", {"server_id": server, "connection_info": infos[server]}
        )
        if not reply.ok:
            conn.close()
            raise PortError(reply.status, f"CsrClientConnectToServer(server {server})")
    return client
