"""Configuration manager: the registry as the kernel serves it.

Storage is ``nt.hive.Registry`` (SQLite hives, one writer connection, every
acknowledged write committed). This module adds what the kernel does around it:
CmInitSystem1 (first-boot import of ``configs/*.reg``, the volatile HARDWARE hive,
LastKnownGood selection) and NtInitializeRegistry.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nt import regfile, regsnap, regwire
from nt.hive import Registry
from nt.regpath import HKLM, MAX_DATA, PERSISTENT_HIVES, REG_DWORD, RegistryError
from nt.status import NtStatus
from processes.kernel.hardware import build_hardware

SELECT = r"HKLM\SYSTEM\Select"
CONTROL = r"HKLM\SYSTEM\CurrentControlSet\Control"
MAX_STAGED = 4  # staged imports or open exports per connection
MAX_STAGED_BYTES = 512 << 20  # a real SYSTEM hive's export is 9-23 MB


@dataclass
class _Staged:
    ops: list[regfile.Op] = field(default_factory=list)
    size: int = 0


def _system_path(rel: str) -> str:
    return f"{HKLM}\\SYSTEM\\{rel}" if rel else f"{HKLM}\\SYSTEM"


def _counts(ops: list[regfile.Op]) -> dict:
    keys = sum(1 for op in ops if isinstance(op, regfile.SetKey))
    values = sum(1 for op in ops if isinstance(op, regfile.SetValue))
    return {"keys": keys, "values": values}


class ConfigurationManager:
    def __init__(self, config_dir: Path, log) -> None:
        self.config_dir = config_dir
        self.log = log
        self.accepted = False
        self.registry: Registry | None = None
        self._handles = itertools.count(1)

    # -- CmInitSystem1 ----------------------------------------------------------
    def init_system(
        self,
        configs: Path,
        overlays: list[Path],
        last_known_good: bool,
        system_hive: Path | None = None,
    ) -> list:
        """Open the hives; import the machine's configuration on first boot.

        ``system_hive`` (a Windows SYSTEM file, first boot only) replaces
        ``configs/SYSTEM.reg``. A first-boot import that fails leaves no hive behind:
        the data root stays fresh and the error (naming the problem) stops the boot.
        """
        first_boot = not (self.config_dir / "SYSTEM").exists()
        image = self._read_system_hive(system_hive) if first_boot and system_hive else None
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.registry = Registry(self.config_dir)
        events = list(getattr(self.registry, "recovery_events", []) or [])
        if first_boot:
            try:
                self._first_boot_import(configs, image)
            except BaseException:
                self._discard_fresh_hives()
                raise
        for path in overlays:
            counts = self.import_text(path.read_bytes())
            self.log.info("cm.import", file=str(path), overlay=True, **counts)
        build_hardware(self.registry)
        if last_known_good:
            self._use_last_known_good()
        return events

    def _read_system_hive(self, path: Path) -> Any:
        from nt.regf import HiveFileError, read_hive

        try:
            image = read_hive(path)
        except HiveFileError as exc:
            if exc.divergence:
                self.log.warning("divergence", what=exc.divergence)
            self.log.error(
                "cm.system_hive_refused", file=str(path), error=exc.message, win32=exc.win32
            )
            raise RegistryError(exc.status, f"{path}: {exc.message}") from None
        self.log.info(
            "cm.system_hive_read",
            file=str(path),
            keys=image.keys,
            values=image.values,
            log_entries_applied=[f"{e.log}#{e.seq}" for e in image.applied],
        )
        return image

    def _first_boot_import(self, configs: Path, image: Any) -> None:
        if image is not None:
            ops = list(regsnap.ops((_system_path(p), self._fit(p, v)) for p, v in image.records))
            self.registry.import_ops(ops)
            self.log.info("cm.import", file="--system-hive", first_boot=True, **_counts(ops))
        for path in sorted(configs.glob("*.reg")):
            if image is not None and path.stem.upper() == "SYSTEM":
                continue  # the real hive is the SYSTEM configuration
            counts = self.import_text(path.read_bytes())
            self.log.info("cm.import", file=path.name, first_boot=True, **counts)

    def _fit(self, path: str, values: list) -> list:
        """Values within the model's 1 MiB data limit; larger ones are left out and said.

        Windows allows values up to ~1 GiB; a real SYSTEM hive rarely holds one past
        1 MiB (MAX_DATA, reliability-security.md §5.1), and refusing the whole hive for it
        would stop the user's machine from booting at all.
        """
        kept = [v for v in values if len(v[2]) <= MAX_DATA]
        for name, type_, raw in values:
            if len(raw) > MAX_DATA:
                self.log.warning(
                    "divergence",
                    what=f"value larger than the model's {MAX_DATA}-byte limit not imported",
                    key=_system_path(path),
                    value=name,
                    value_type=type_,
                    size=len(raw),
                )
        return kept

    def _discard_fresh_hives(self) -> None:
        """Close and delete the hives this first boot created (never a used machine's)."""
        self.registry.close()
        self.registry = None
        for name in PERSISTENT_HIVES:
            for suffix in ("", "-wal", "-shm"):
                (self.config_dir / f"{name}{suffix}").unlink(missing_ok=True)
        self.log.warning("cm.first_boot_discarded", config_dir=str(self.config_dir))

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
        return _counts(ops)

    def export(self, path: str) -> str:
        return self.registry.export(path)

    # -- staged import / chunked export (reg import/export of a whole hive) -------
    def import_begin(self, state: dict) -> int:
        """A new staged import on this connection (its ``state``); dropped with it."""
        imports = state.setdefault("cm_imports", {})
        if len(imports) >= MAX_STAGED:
            raise RegistryError(
                NtStatus.STATUS_INSUFFICIENT_RESOURCES, f"{MAX_STAGED} imports already staged"
            )
        handle = next(self._handles)
        imports[handle] = _Staged()
        return handle

    def import_stage(self, state: dict, handle: int, blob: bytes) -> int:
        staged = self._staged(state, handle)
        ops = regwire.unpack_ops(blob)
        staged.size += len(blob)
        if staged.size > MAX_STAGED_BYTES:
            state["cm_imports"].pop(handle, None)
            raise RegistryError(
                NtStatus.STATUS_INSUFFICIENT_RESOURCES,
                f"staged import passed {MAX_STAGED_BYTES >> 20} MiB; it was dropped",
            )
        staged.ops += ops
        return len(staged.ops)

    def import_commit(self, state: dict, handle: int) -> dict:
        staged = self._staged(state, handle)
        del state["cm_imports"][handle]
        self.registry.import_ops(staged.ops)
        counts = _counts(staged.ops)
        self.log.info("cm.import", staged=True, **counts)
        return counts

    def import_abort(self, state: dict, handle: int) -> None:
        self._staged(state, handle)
        del state["cm_imports"][handle]

    def _staged(self, state: dict, handle: int) -> _Staged:
        staged = state.get("cm_imports", {}).get(handle)
        if staged is None:
            raise RegistryError(NtStatus.STATUS_INVALID_HANDLE, f"no staged import {handle}")
        return staged

    def export_begin(self, state: dict, path: str) -> tuple[int, int]:
        """Snapshot a subtree now (consistent), to be read in chunks; (handle, keys)."""
        exports = state.setdefault("cm_exports", {})
        if len(exports) >= MAX_STAGED:
            raise RegistryError(
                NtStatus.STATUS_INSUFFICIENT_RESOURCES, f"{MAX_STAGED} exports already open"
            )
        records = self.registry.snapshot(path)
        handle = next(self._handles)
        exports[handle] = regwire.pack_records(records)
        return handle, len(records)

    def export_read(self, state: dict, handle: int) -> tuple[bytes, bool]:
        exports = state.get("cm_exports", {})
        chunks = exports.get(handle)
        if chunks is None:
            raise RegistryError(NtStatus.STATUS_INVALID_HANDLE, f"no export {handle}")
        chunk = next(chunks, None)
        if chunk is None:
            del exports[handle]
            return regwire.EMPTY, True
        return chunk, False

    def value_or(self, path: str, name: str, default: Any) -> Any:
        try:
            return self.query_value(path, name)[1]
        except RegistryError:
            return default

    def close(self) -> None:
        if self.registry is not None:
            self.registry.close()
            self.registry = None
