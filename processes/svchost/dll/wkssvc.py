"""wkssvc.dll: Workstation (LanmanWorkstation, svchost -k NetworkService), the SMB client.

At start it establishes the workstation's identity (NetWkstaGetInfo level 100: computer
name, LAN group, platform 500, version 10.0), registers the wkssvc interface, and restores
the persistent network connections (``HKU\\.DEFAULT\\Network\\<drive>`` with
``RemotePath``, as ``net use /persistent:yes`` leaves them): a connection to this
machine's own server is restored when LanmanServer shares that name, any other is logged
unavailable (the model has no network). Windows also depends on Bowser, MRxSmb20 and NSI,
which the model does not run (README, divergences).
"""

from __future__ import annotations

from typing import ClassVar

from nt import winsvc as ws
from nt.svcglobals import SYSTEM_CCS, GlobalsSlot, ModelService, service_main
from processes.svchost.dll import IF_WKSSVC, endpoints, publish

NETWORK_KEY = "\\Registry\\User\\.DEFAULT\\Network"
SHARES_KEY = f"{SYSTEM_CCS}\\Services\\LanmanServer\\Shares"
PLATFORM_ID_NT = 500


def computer_and_group(g) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    name = g.value(f"{SYSTEM_CCS}\\Control\\ComputerName\\ComputerName", "ComputerName", "")
    tcpip = f"{SYSTEM_CCS}\\Services\\Tcpip\\Parameters"
    domain = g.value(tcpip, "Domain", "") or g.value(
        f"{SYSTEM_CCS}\\Services\\LanmanWorkstation\\Parameters", "Workgroup", "WORKGROUP"
    )
    return str(name), str(domain)


class WorkstationService(ModelService):
    divergences: ClassVar[tuple[str, ...]] = (
        "no Bowser, MRxSmb20 or NSI dependency (not modelled); no SMB traffic",
    )
    accepted: ClassVar[int] = (
        ws.SERVICE_ACCEPT_STOP | ws.SERVICE_ACCEPT_PAUSE_CONTINUE | ws.SERVICE_ACCEPT_SHUTDOWN
    )

    def on_start(self) -> None:
        computer, group = computer_and_group(self.g)
        self.info = {
            "platform_id": PLATFORM_ID_NT,
            "computer_name": computer,
            "lan_group": group,
            "ver_major": 10,
            "ver_minor": 0,
        }
        self.log.info("wks.started", **self.info)
        self.uses = self.restore_connections(computer)
        publish(self, endpoints((IF_WKSSVC, "ncacn_np:[\\pipe\\wkssvc]", "")))

    def restore_connections(self, computer: str) -> dict[str, str]:
        """Persistent drive mappings → {drive: "OK" | "Unavailable"} (``net use``'s words)."""
        out: dict[str, str] = {}
        try:
            drives = self.g.registry.enum_keys(NETWORK_KEY)
        except Exception:
            return out
        shares = {s.lower() for s in self._local_shares()}
        for drive in drives:
            remote = str(self.g.value(f"{NETWORK_KEY}\\{drive}", "RemotePath", ""))
            parts = remote.lstrip("\\").split("\\")
            local = len(parts) >= 2 and parts[0].lower() in (computer.lower(), "localhost")
            status = "OK" if local and parts[1].lower() in shares else "Unavailable"
            out[f"{drive.upper()}:"] = status
            self.log.info("wks.use", local=f"{drive.upper()}:", remote=remote, use_status=status)
        return out

    def _local_shares(self) -> list[str]:
        try:
            names = [str(v[0]) for v in self.g.registry.enum_values(SHARES_KEY)]
        except Exception:
            names = []
        return [*names, "IPC$", "ADMIN$", "C$"]


_SLOT = GlobalsSlot()
SvchostPushServiceGlobals = _SLOT.push
ServiceMain = service_main(WorkstationService, _SLOT)
