"""mprdim.dll: Routing and Remote Access (RemoteAccess, svchost -k netsvcs).

Disabled (Start=4) by default, as on Windows: ``sc start RemoteAccess`` fails with 1058
until ``sc config RemoteAccess start= demand``. It depends on RpcSs and on the group
NetBIOSGroup (at least one member running: the NetBIOS driver), the seed's example of
DependOnGroup. Running, it loads the router's configuration: ``Parameters\\RouterType``
(1 LAN routing, 2 remote access server, 4 demand-dial; bits may combine) and the
interfaces under ``RemoteAccess\\Interfaces\\<n>`` (``InterfaceName``, ``Type``), logs the
routing interfaces it brings up, and registers the rras interface.
"""

from __future__ import annotations

from typing import ClassVar

from nt import winsvc as ws
from nt.svcglobals import SYSTEM_CCS, GlobalsSlot, ModelService, service_main
from processes.svchost.dll import IF_RRAS, endpoints, publish

INTERFACES_KEY = f"{SYSTEM_CCS}\\Services\\RemoteAccess\\Interfaces"
ROUTER_TYPES = {1: "LAN routing", 2: "remote access server", 4: "demand-dial routing"}


class RemoteAccessService(ModelService):
    divergences: ClassVar[tuple[str, ...]] = (
        "no Bfe, Http or RasMan dependency (not modelled); no routing",
    )
    accepted: ClassVar[int] = (
        ws.SERVICE_ACCEPT_STOP | ws.SERVICE_ACCEPT_PAUSE_CONTINUE | ws.SERVICE_ACCEPT_SHUTDOWN
    )

    def on_start(self) -> None:
        router_type = int(self.g.value(self.params_key, "RouterType", 1) or 0)
        roles = [text for bit, text in ROUTER_TYPES.items() if router_type & bit]
        self.interfaces: list[str] = []
        try:
            numbers = self.g.registry.enum_keys(INTERFACES_KEY)
        except Exception:
            numbers = []
        for number in numbers:
            key = f"{INTERFACES_KEY}\\{number}"
            name = str(self.g.value(key, "InterfaceName", number))
            self.interfaces.append(name)
            self.log.info("rras.interface_up", interface=name, if_type=self.g.value(key, "Type", 0))
        self.log.info(
            "rras.started", router_type=router_type, roles=roles, interfaces=len(self.interfaces)
        )
        publish(self, endpoints((IF_RRAS, "ncacn_np:[\\pipe\\ROUTER]", "")))

    def on_stop(self, control: int) -> None:
        for name in self.interfaces:
            self.log.info("rras.interface_down", interface=name)


_SLOT = GlobalsSlot()
SvchostPushServiceGlobals = _SLOT.push
ServiceMain = service_main(RemoteAccessService, _SLOT)
