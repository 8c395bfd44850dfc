"""CsrClientConnectToServer / CsrClientCallServer: the client side of csrss's ApiPort.

kernel32 connects every Win32 process to the csrss of its session: ``\\Windows\\ApiPort``
in session 0, ``\\Sessions\\<id>\\Windows\\ApiPort`` otherwise (kernel32 dllmain.c), then
calls CsrpClientConnect for each server DLL it needs (basesrv, then usersrv). csrss
accepts only processes it already knows (registered by smss or by the parent).
"""

from __future__ import annotations

from typing import Any

from ports import csr
from ports.client import Connection, PortError, Reply
from ports.runtime import LpcRuntime

BASESRV, CONSRV, USERSRV = 1, 2, 3
USER_VERSION = 0x0005_0000  # USERCONNECT.ulVersion: USERCURRENTVERSION


def object_directory(session: int | None) -> str:
    return "\\Windows" if not session else f"\\Sessions\\{session}\\Windows"


class CsrClient:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def call(self, api: str | int, body: dict | None = None, timeout: float | None = 30.0) -> Reply:
        """CsrClientCallServer by API number or by any of its names."""
        number = api if isinstance(api, int) else _number(api)
        return self.conn.call(number, body or {}, timeout)

    def close(self) -> None:
        self.conn.close()


def _number(name: str) -> int:
    found = csr.lookup_api(name)
    if found is None:
        raise KeyError(f"no CSR API named {name!r}")
    return found.number


def connect(
    lpc: LpcRuntime, session: int | None, servers: tuple[int, ...] = (BASESRV, USERSRV)
) -> CsrClient:
    """CsrClientConnectToServer for each server; raises PortError on refusal."""
    conn = lpc.connect_port(object_directory(session) + "\\" + csr.API_PORT_NAME)
    client = CsrClient(conn)
    infos: dict[int, dict[str, Any]] = {
        BASESRV: {"debug_flags": 0},
        USERSRV: {"version": USER_VERSION},
        CONSRV: {"is_console_app": True},
    }
    for server in servers:
        reply = client.call(
            "CsrpClientConnect", {"server_id": server, "connection_info": infos[server]}
        )
        if not reply.ok:
            conn.close()
            raise PortError(reply.status, f"CsrClientConnectToServer(server {server})")
    return client
