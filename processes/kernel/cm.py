"""Configuration manager: the registry as the kernel serves it.

Storage is ``nt.hive.Registry`` (SQLite hives, one writer connection, every
acknowledged write committed). This module adds what the kernel does around it:
CmInitSystem1 (first-boot import of ``configs/*.reg``, the volatile HARDWARE hive,
LastKnownGood selection) and NtInitializeRegistry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nt import regfile
from nt.hive import Registry
from nt.regpath import REG_DWORD, RegistryError
from nt.status import NtStatus
from processes.kernel.hardware import build_hardware

SELECT = r"HKLM\SYSTEM\Select"
CONTROL = r"HKLM\SYSTEM\CurrentControlSet\Control"


class ConfigurationManager:
    def __init__(self, config_dir: Path, log) -> None:
        self.config_dir = config_dir
        self.log = log
        self.accepted = False
        self.registry: Registry | None = None

    # -- CmInitSystem1 ----------------------------------------------------------
    def init_system(self, configs: Path, overlays: list[Path], last_known_good: bool) -> list:
        """Open the hives; import the machine's configuration on first boot."""
        first_boot = not (self.config_dir / "SYSTEM").exists()
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.registry = Registry(self.config_dir)
        events = list(getattr(self.registry, "recovery_events", []) or [])
        if first_boot:
            for path in sorted(configs.glob("*.reg")):
                counts = self.import_text(path.read_bytes())
                self.log.info("cm.import", file=path.name, first_boot=True, **counts)
        for path in overlays:
            counts = self.import_text(path.read_bytes())
            self.log.info("cm.import", file=str(path), overlay=True, **counts)
        build_hardware(self.registry)
        if last_known_good:
            self._use_last_known_good()
        return events

    def _use_last_known_good(self) -> None:
        _, current = self.query_value(SELECT, "Current")
        _, lkg = self.query_value(SELECT, "LastKnownGood")
        self.set_value(SELECT, "Failed", REG_DWORD, current)
        self.set_value(SELECT, "Current", REG_DWORD, lkg)
        self.log.info("cm.last_known_good", current=lkg, failed=current)

    # -- NtInitializeRegistry ---------------------------------------------------
    def initialize_registry(self, flags: int, client: Any) -> Any:
        if flags == 0:  # CM_BOOT_FLAG_SMSS: smss says the registry may now be written
            self.log.info("cm.initialize_registry", flags=flags, caller_image=client.image)
            return {}
        if flags & 0x2:  # CM_BOOT_FLAG_ACCEPTED: the boot was good, save it as LKG
            if self.accepted:
                return NtStatus.STATUS_ACCESS_DENIED
            self.accepted = True
            _, current = self.query_value(SELECT, "Current")
            target = self._free_control_set(current)
            self.registry.copy_control_set(current, target)
            self.set_value(SELECT, "LastKnownGood", REG_DWORD, target)
            self.log.info("cm.boot_accepted", control_set=current, last_known_good=target)
            return {}
        return NtStatus.STATUS_INVALID_PARAMETER

    def _free_control_set(self, current: int) -> int:
        used = {self.query_value(SELECT, n)[1] for n in ("Current", "Default", "Failed")}
        for n in range(1, 1000):
            if n not in used and n != current:
                return n
        raise RegistryError(NtStatus.STATUS_INSUFFICIENT_RESOURCES)

    # -- the registry services --------------------------------------------------
    def key_exists(self, path: str) -> bool:
        return self.registry.key_exists(path)

    def create_key(self, path: str, volatile: bool = False) -> bool:
        return self.registry.create_key(path, volatile=volatile)

    def delete_key(self, path: str, tree: bool = False) -> None:
        if tree:
            self.registry.delete_tree(path)
        else:
            self.registry.delete_key(path)

    def set_value(self, path: str, name: str, vtype: int, data: Any) -> None:
        self.registry.set_value(path, name, vtype, data)

    def query_value(self, path: str, name: str) -> tuple[int, Any]:
        return self.registry.query_value(path, name)

    def delete_value(self, path: str, name: str) -> None:
        self.registry.delete_value(path, name)

    def enum_keys(self, path: str) -> list[str]:
        return self.registry.enum_keys(path)

    def enum_values(self, path: str) -> list[tuple]:
        return [tuple(v) for v in self.registry.enum_values(path)]

    def query_key(self, path: str) -> dict:
        return dict(self.registry.query_key(path))

    def import_text(self, text: str | bytes) -> dict:
        try:
            ops = regfile.parse(text)
        except regfile.RegFileError as exc:
            self.log.warning("cm.import_failed", error=str(exc))
            raise RegistryError(NtStatus.STATUS_INVALID_PARAMETER, str(exc)) from exc
        self.registry.import_ops(ops)
        keys = sum(1 for op in ops if isinstance(op, regfile.SetKey))
        values = sum(1 for op in ops if isinstance(op, regfile.SetValue))
        return {"keys": keys, "values": values}

    def export(self, path: str) -> str:
        return self.registry.export(path)

    def value_or(self, path: str, name: str, default: Any) -> Any:
        try:
            return self.query_value(path, name)[1]
        except RegistryError:
            return default

    def close(self) -> None:
        if self.registry is not None:
            self.registry.close()
            self.registry = None
