"""rpcss.dll: Remote Procedure Call (RpcSs, svchost -k rpcss), the DCOM server side.

RpcSs is the COM Service Control Manager and the OXID resolver: it serves the DCOM
activation and object-exporter interfaces (ISystemActivator, IObjectExporter) on the
endpoint mapper's well-known endpoints and registers them in the map, so every later RPC
server (and ``ntctl``'s lookups) finds them there. It depends on RpcEptMapper (Windows
also lists DcomLaunch, which the model does not run: a divergence the README lists).
Like Windows, it cannot be stopped (NOT_STOPPABLE, IGNORES_SHUTDOWN).
"""

from __future__ import annotations

from typing import ClassVar

from nt.svcglobals import GlobalsSlot, ModelService, service_main
from processes.svchost.dll import IF_IOBJECTEXPORTER, IF_ISYSTEMACTIVATOR, endpoints, publish

RPCSS_ENDPOINTS = endpoints(
    (IF_ISYSTEMACTIVATOR, "ncacn_ip_tcp:[135]", "ISystemActivator"),
    (IF_ISYSTEMACTIVATOR, "ncalrpc:[epmapper]", "ISystemActivator"),
    (IF_IOBJECTEXPORTER, "ncacn_ip_tcp:[135]", "IObjectExporter"),
)


class RpcSsService(ModelService):
    divergences: ClassVar[tuple[str, ...]] = (
        "no DcomLaunch dependency (DcomLaunch is not modelled)",
    )
    accepted: ClassVar[int] = 0  # NOT_STOPPABLE, IGNORES_SHUTDOWN, as on Windows

    def on_start(self) -> None:
        self.epm_status = publish(self, RPCSS_ENDPOINTS)


_SLOT = GlobalsSlot()
SvchostPushServiceGlobals = _SLOT.push
ServiceMain = service_main(RpcSsService, _SLOT)
