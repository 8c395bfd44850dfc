"""rpcepmap.dll: the RPC Endpoint Mapper (RpcEptMapper, svchost -k RPCSS).

Keeps the endpoint map: which server process serves which RPC interface at which binding.
Servers register with ept_insert (RpcEpRegister) when they start and remove their entries
with ept_delete when they stop; clients resolve an interface with ept_map; ``rpcdump``-style
listings use ept_lookup. Entries of a process that died without unregistering are dropped
the next time the map is read (the RPC runtime's rundown does this on Windows).
Like Windows, the service cannot be stopped (NOT_STOPPABLE, IGNORES_SHUTDOWN): every RPC
server depends on it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from nt.svcglobals import GlobalsSlot, ModelService, service_main
from ports import epmap
from ports.contract import ClientContext, HandlerResult
from processes.svchost.dll import close_port, serve_port


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class EndpointMap:
    """The map, without sockets: entries with the pid and service that registered them."""

    alive: Callable[[int], bool] = pid_alive
    entries: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def _same(a: dict, b: dict) -> bool:
        return all(
            str(a[k]).lower() == str(b[k]).lower()
            for k in ("object", "interface", "version", "binding")
        )

    def _prune(self) -> None:
        self.entries = [e for e in self.entries if self.alive(e["pid"])]

    def insert(self, items: list[dict], pid: int, service: str, replace: bool = True) -> int:
        with self.lock:
            for item in items:
                if replace:  # RpcEpRegister: this server's older entry for the interface goes
                    self.entries = [
                        e
                        for e in self.entries
                        if not (
                            e["pid"] == pid
                            and e["interface"].lower() == item["interface"].lower()
                            and e["object"].lower() == item["object"].lower()
                        )
                    ]
                self.entries = [e for e in self.entries if not self._same(e, item)]
                self.entries.append({**item, "pid": pid, "service": service})
        return epmap.RPC_S_OK

    def delete(self, items: list[dict]) -> int:
        status = epmap.RPC_S_OK
        with self.lock:
            for item in items:
                kept = [e for e in self.entries if not self._same(e, item)]
                if len(kept) == len(self.entries):
                    status = epmap.EPT_S_NOT_REGISTERED
                self.entries = kept
        return status

    def lookup(self, interface: str | None = None, max_ents: int = epmap.LOOKUP_MAX) -> list[dict]:
        with self.lock:
            self._prune()
            found = [
                dict(e)
                for e in self.entries
                if interface is None or e["interface"].lower() == interface.lower()
            ]
        return found[:max_ents]

    def map(self, interface: str, version: str, protseq: str) -> str | None:
        major = version.split(".", 1)[0]
        for e in self.lookup(interface):
            if e["version"].split(".", 1)[0] == major and e["binding"].lower().startswith(
                protseq.lower() + ":"
            ):
                return e["binding"]
        return None


class EndpointMapperService(ModelService):
    accepted: ClassVar[int] = 0  # NOT_STOPPABLE, IGNORES_SHUTDOWN, as on Windows

    def on_start(self) -> None:
        self.map = EndpointMap()
        self.map.insert(
            [
                epmap.entry(epmap.EPM_INTERFACE, "3.0", "ncacn_ip_tcp:[135]"),
                epmap.entry(epmap.EPM_INTERFACE, "3.0", "ncalrpc:[epmapper]"),
            ],
            os.getpid(),
            self.ctx.name,
        )
        self.port = serve_port(self.g, epmap.EPMAP_PORT_NAME, epmap.EPMAP_PORT, self.handlers())

    def on_stop(self, control: int) -> None:
        close_port(self.g, self.port, epmap.EPMAP_PORT_NAME)

    def handlers(self) -> dict[int, object]:
        return {
            epmap.ept_insert: self.ept_insert,
            epmap.ept_delete: self.ept_delete,
            epmap.ept_lookup: self.ept_lookup,
            epmap.ept_map: self.ept_map,
        }

    def ept_insert(self, msg: dict, client: ClientContext) -> HandlerResult:
        status = self.map.insert(msg["entries"], client.pid, msg["service"], msg["replace"])
        self.log.info(
            "rpc.ept_insert",
            server_pid=client.pid,
            service=msg["service"],
            bindings=[e["binding"] for e in msg["entries"]],
        )
        return {"status": status}

    def ept_delete(self, msg: dict, client: ClientContext) -> HandlerResult:
        status = self.map.delete(msg["entries"])
        self.log.info("rpc.ept_delete", server_pid=client.pid, epm_status=status)
        return {"status": status}

    def ept_lookup(self, msg: dict, client: ClientContext) -> HandlerResult:
        found = self.map.lookup(msg.get("interface"), min(msg["max_ents"], epmap.LOOKUP_MAX))
        return {"entries": found, "status": epmap.RPC_S_OK if found else epmap.EPT_S_NOT_REGISTERED}

    def ept_map(self, msg: dict, client: ClientContext) -> HandlerResult:
        binding = self.map.map(msg["interface"], msg["version"], msg["protseq"])
        if binding is None:
            return {"binding": "", "status": epmap.EPT_S_NOT_REGISTERED}
        return {"binding": binding, "status": epmap.RPC_S_OK}


_SLOT = GlobalsSlot()
SvchostPushServiceGlobals = _SLOT.push
ServiceMain = service_main(EndpointMapperService, _SLOT)
