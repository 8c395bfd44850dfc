"""umpnpmgr.dll: Plug and Play (PlugPlay, svchost -k DcomLaunch), the user-mode PnP manager.

It enumerates the device tree the registry holds (``CurrentControlSet\\Enum\\<enumerator>
\\<device id>\\<instance>``), logs each device instance with its description, class and
function driver, and keeps watching: an instance key that appears later is a device
arrival, one that goes is a removal (what ``CM_Register_Notification`` subscribers hear).
Start=3 (demand) as on Windows 10, where DcomLaunch starts it; like Windows it cannot be
stopped (NOT_STOPPABLE, IGNORES_SHUTDOWN).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from nt.svcglobals import SYSTEM_CCS, GlobalsSlot, ModelService, Registry, service_main
from processes.svchost.dll import IF_PNP, endpoints, publish

ENUM = f"{SYSTEM_CCS}\\Enum"


@dataclass(frozen=True)
class Device:
    instance_id: str  # PCI\VEN_8086&DEV_2922\3&11583659&0&FA
    description: str
    device_class: str
    service: str
    hardware_ids: tuple[str, ...]


def display_text(value: object) -> str:
    """``@machine.inf,%desc%;Standard SATA AHCI Controller`` → the text after ``;``."""
    text = str(value or "")
    return text.split(";", 1)[1] if text.startswith("@") and ";" in text else text


def _subkeys(reg: Registry, path: str) -> list[str]:
    try:
        return reg.enum_keys(path)
    except Exception:  # the key went while we walked: the next poll sees the new tree
        return []


def enumerate_devices(reg: Registry) -> dict[str, Device]:
    """Every device instance under Enum, by instance id (upper case, as PnP compares)."""
    devices: dict[str, Device] = {}
    for enumerator in _subkeys(reg, ENUM):
        for device_id in _subkeys(reg, f"{ENUM}\\{enumerator}"):
            for instance in _subkeys(reg, f"{ENUM}\\{enumerator}\\{device_id}"):
                key = f"{ENUM}\\{enumerator}\\{device_id}\\{instance}"
                try:
                    values = {str(v[0]).lower(): v[2] for v in reg.enum_values(key)}
                except Exception:
                    continue
                instance_id = f"{enumerator}\\{device_id}\\{instance}"
                hwids = values.get("hardwareid") or []
                devices[instance_id.upper()] = Device(
                    instance_id,
                    display_text(values.get("friendlyname") or values.get("devicedesc")),
                    str(values.get("class") or ""),
                    str(values.get("service") or ""),
                    tuple(hwids) if isinstance(hwids, list) else (str(hwids),),
                )
    return devices


class PlugPlayService(ModelService):
    accepted: ClassVar[int] = 0  # NOT_STOPPABLE, IGNORES_SHUTDOWN, as on Windows
    interval: ClassVar[float | None] = 5.0  # how often the tree is re-read for arrivals

    def on_start(self) -> None:
        self.devices = enumerate_devices(self.g.registry)
        for device in sorted(self.devices.values(), key=lambda d: d.instance_id):
            self._log_device("pnp.device", device)
        self.log.info("pnp.enumerated", devices=len(self.devices))
        publish(self, endpoints((IF_PNP, "ncacn_np:[\\pipe\\ntsvcs]", "PlugPlay")))

    def poll(self) -> None:
        now = enumerate_devices(self.g.registry)
        for key in sorted(now.keys() - self.devices.keys()):
            self._log_device("pnp.arrival", now[key])
        for key in sorted(self.devices.keys() - now.keys()):
            self.log.info("pnp.removal", instance_id=self.devices[key].instance_id)
        self.devices = now

    def _log_device(self, event: str, device: Device) -> None:
        self.log.info(
            event,
            instance_id=device.instance_id,
            description=device.description,
            device_class=device.device_class,
            driver_service=device.service,
            hardware_ids=list(device.hardware_ids),
        )


_SLOT = GlobalsSlot()
SvchostPushServiceGlobals = _SLOT.push
ServiceMain = service_main(PlugPlayService, _SLOT)
