"""The Session Manager configuration, read in the order of SmpRegistryConfigurationTable
(ReactOS ``base/system/smss/sminit.c``; nt-spec §2.1).

Pure: values come from a registry accessor and nothing is written. Values smss deletes
after reading (AllowProtectedRenames, the pending renames, the stale SAFEBOOT_OPTION
environment value) are listed in ``SessionManagerConfig.deletions`` for the caller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from nt.cpuinfo import parse_cpuinfo
from nt.regpath import REG_DWORD, REG_EXPAND_SZ, REG_SZ
from nt.status import NtStatus
from processes.smss.images import expand_environment

SESSION_MANAGER_KEY = r"HKLM\SYSTEM\CurrentControlSet\Control\Session Manager"
MAX_PAGING_FILES = 16  # SmpCreatePagingFileDescriptor refuses the 17th
SAFEBOOT_NAMES = {1: "MINIMAL", 2: "NETWORK", 3: "DSREPAIR"}


class RegistryAccessor(Protocol):
    def query_value(self, path: str, name: str) -> tuple[int, Any]: ...

    def enum_values(self, path: str) -> list[tuple[str, int, Any]]: ...

    def enum_keys(self, path: str) -> list[str]: ...


@dataclass(frozen=True)
class PagingFile:
    path: str
    min_mb: int = 0
    max_mb: int = 0
    system_managed: bool = True
    any_drive: bool = False


@dataclass
class SessionManagerConfig:
    protection_mode: int = 1
    allow_protected_renames: int = 0
    object_directories: list[str] = field(default_factory=lambda: [r"\Windows", r"\RPC Control"])
    boot_execute: list[str] = field(default_factory=lambda: ["autocheck AutoChk.exe *"])
    setup_execute: list[str] = field(default_factory=list)
    pending_renames: list[tuple[str, str]] = field(default_factory=list)
    exclude_known_dlls: list[str] = field(default_factory=list)
    paging_files: list[PagingFile] = field(default_factory=list)
    dos_devices: dict[str, str] = field(default_factory=dict)
    known_dll_directory: str | None = None
    known_dlls: list[str] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    default_lib_path: str = ""
    subsystems: dict[str, str] = field(default_factory=dict)
    required: list[str] = field(default_factory=lambda: ["Debug", "Windows"])
    optional: list[str] = field(default_factory=list)
    kmode: str | None = None
    execute: list[str] = field(default_factory=list)
    global_flag: int = 0
    deletions: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def subsystem(self, name: str) -> str | None:
        """A SubSystems entry by name, case-insensitively (RtlEqualUnicodeString)."""
        for key, value in self.subsystems.items():
            if key.lower() == name.lower():
                return value
        return None


def parse_paging_file(descriptor: str) -> PagingFile:
    """``"C:\\pagefile.sys 1024 2048"`` → (path, min MB, max MB), as
    SmpCreatePagingFileDescriptor reads it: no sizes, or sizes that are all zeros, make a
    system-managed file; ``?:`` means any drive. Raises ValueError on a bad size."""
    text = descriptor.strip()
    if not text:
        raise ValueError("empty paging file descriptor")
    name, *rest = text.split(None, 1)
    arguments = rest[0] if rest else ""
    if len(name) >= 2 and name[1] == ":":
        name = name[0].upper() + name[1:]
    if not arguments or set(arguments) <= {" ", "\t", "0"}:
        return PagingFile(name, any_drive=name.startswith("?"))
    sizes = arguments.split()
    min_mb = _size(sizes[0], descriptor)
    max_mb = _size(sizes[1], descriptor) if len(sizes) > 1 else 0
    return PagingFile(name, min_mb, max_mb, system_managed=False, any_drive=name.startswith("?"))


def load_session_manager_config(
    registry: RegistryAccessor,
    kernel_environment: Mapping[str, str],
    key: str = SESSION_MANAGER_KEY,
) -> SessionManagerConfig:
    """Read ``key`` the way SmpLoadDataFromRegistry does, starting from the environment
    the kernel gave smss (Path, SystemDrive, SystemRoot)."""
    config = SessionManagerConfig()
    env = _Environment(kernel_environment)

    def value(name: str, subkey: str = "") -> tuple[int, Any] | None:
        return _query(registry, _join(key, subkey), name)

    config.protection_mode = _dword(value("ProtectionMode"), 1)
    found = value("AllowProtectedRenames")
    if found is not None:
        config.allow_protected_renames = _dword(found, 0)
        config.deletions.append((key, "AllowProtectedRenames"))
    for name, attr in (
        ("ObjectDirectories", "object_directories"),
        ("BootExecute", "boot_execute"),
        ("SetupExecute", "setup_execute"),
    ):
        found = value(name)
        if found is not None:
            setattr(config, attr, _strings(found, env))
    for name in ("PendingFileRenameOperations", "PendingFileRenameOperations2"):
        found = value(name)
        if found is not None:
            config.pending_renames.extend(_pairs(found))
            config.deletions.append((key, name))
    found = value("ExcludeFromKnownDlls")
    if found is not None:
        config.exclude_known_dlls = _strings(found, env)
    found = value("PagingFiles", "Memory Management")
    _load_paging_files(config, _strings(found, env) if found else [r"?:\pagefile.sys"])
    for name, vtype, data in _enum(registry, _join(key, "DOS Devices")):
        config.dos_devices[name] = _text(vtype, data, env)
    for name, vtype, data in _enum(registry, _join(key, "KnownDlls")):
        if name.lower() == "dlldirectory":
            config.known_dll_directory = _text(vtype, data, env)
        elif name.lower() != "dlldirectory32":
            config.known_dlls.append(_text(vtype, data, env))
    _load_environment(config, env, registry, _join(key, "Environment"))
    _load_subsystems(config, env, registry, _join(key, "SubSystems"))
    found = value("Execute")
    if found is not None:
        config.execute = _strings(found, env)
    config.global_flag = _dword(value("GlobalFlag"), 0)
    return config


def dynamic_environment(
    cpu_info: str | Sequence[Mapping[str, str]],
    safeboot_option: int | str | None = None,
    machine: str = "x86_64",
) -> dict[str, str]:
    """The values SmpCreateDynamicEnvironmentVariables writes to
    ``Session Manager\\Environment``, in its order, from /proc/cpuinfo text or blocks."""
    cpus = _cpu_blocks(cpu_info)
    if not cpus:
        raise ValueError("cpu_info describes no processor")
    first = cpus[0]
    values = {"OS": "Windows_NT"}
    if machine in ("x86_64", "amd64", "i386", "i486", "i586", "i686", "x86"):
        amd64 = machine in ("x86_64", "amd64")
        family, model, stepping = (
            _number(first.get(k)) for k in ("cpu family", "model", "stepping")
        )
        vendor = first.get("vendor_id", "")
        prefix = ("Intel64" if vendor == "GenuineIntel" else "AMD64") if amd64 else "x86"
        values["PROCESSOR_ARCHITECTURE"] = "AMD64" if amd64 else "x86"
        values["PROCESSOR_LEVEL"] = str(family)
        identifier = f"{prefix} Family {family} Model {model} Stepping {stepping}"
        values["PROCESSOR_IDENTIFIER"] = f"{identifier}, {vendor}" if vendor else identifier
        # ProcessorRevision is (model << 8) | stepping; "%04x" for modern x86 and AMD64.
        values["PROCESSOR_REVISION"] = f"{(model << 8) | stepping:04x}"
    else:
        # ReactOS knows no ARM; the model follows the x86 layout with the ARM cpuinfo fields.
        arch, variant, revision, part = (
            _number(first.get(k))
            for k in ("CPU architecture", "CPU variant", "CPU revision", "CPU part")
        )
        values["PROCESSOR_ARCHITECTURE"] = "ARM64" if machine in ("aarch64", "arm64") else "Unknown"
        values["PROCESSOR_LEVEL"] = str(arch)
        values["PROCESSOR_IDENTIFIER"] = (
            f"ARMv{arch} Family {arch} Model {part:X} Revision {(variant << 8) | revision:X}, "
            f"{first.get('CPU implementer', 'unknown')}"
        )
        values["PROCESSOR_REVISION"] = f"{(variant << 8) | revision:04x}"
    values["NUMBER_OF_PROCESSORS"] = str(len(cpus))
    option = _safeboot_name(safeboot_option)
    if option:
        values["SAFEBOOT_OPTION"] = option
    return values


# -- helpers ------------------------------------------------------------------------------


class _Environment:
    """A Windows environment block: names compare case-insensitively."""

    def __init__(self, initial: Mapping[str, str]) -> None:
        self._items: dict[str, tuple[str, str]] = {}
        for name, text in initial.items():
            self.set(name, text)

    def set(self, name: str, text: str) -> None:
        self._items[name.upper()] = (name, text)

    def as_mapping(self) -> dict[str, str]:
        return dict(self._items.values())


def _load_environment(
    config: SessionManagerConfig, env: _Environment, registry: RegistryAccessor, path: str
) -> None:
    entries = []
    for name, vtype, data in _enum(registry, path):
        if name.upper() == "SAFEBOOT_OPTION":
            # Deleted before the query so a normal boot does not inherit a safe-boot value.
            config.deletions.append((path, name))
        elif vtype in (REG_SZ, REG_EXPAND_SZ) and isinstance(data, str):
            entries.append((name, vtype, data))
    # Queried twice: the second pass resolves references to values defined later.
    for second_pass in (False, True):
        for name, vtype, data in entries:
            text = _text(vtype, data, env)
            env.set(name, text)
            if second_pass and name.upper() == "PATH":
                config.default_lib_path = text
    config.environment = env.as_mapping()


def _load_subsystems(
    config: SessionManagerConfig, env: _Environment, registry: RegistryAccessor, path: str
) -> None:
    for name, vtype, data in _enum(registry, path):
        lowered = name.lower()
        if lowered == "required":
            config.required = _strings((vtype, data), None)
        elif lowered == "optional":
            config.optional = _strings((vtype, data), None)
        elif lowered == "posixsingleinstance" and vtype == REG_DWORD:
            continue
        else:
            config.subsystems[name] = _text(vtype, data, env)
    config.kmode = config.subsystem("Kmode")


def _load_paging_files(config: SessionManagerConfig, descriptors: list[str]) -> None:
    for descriptor in descriptors:
        if len(config.paging_files) >= MAX_PAGING_FILES:
            config.problems.append(f"too many paging files, skipping {descriptor!r}")
            continue
        try:
            paging_file = parse_paging_file(descriptor)
        except ValueError as exc:
            config.problems.append(str(exc))
            continue
        if paging_file.any_drive and any(p.any_drive for p in config.paging_files):
            config.problems.append(f"duplicate paging file specifier {descriptor!r}")
            continue
        config.paging_files.append(paging_file)


def _join(key: str, subkey: str) -> str:
    return f"{key}\\{subkey}" if subkey else key


def _is_missing(exc: Exception) -> bool:
    return getattr(exc, "status", None) == NtStatus.STATUS_OBJECT_NAME_NOT_FOUND


def _query(registry: RegistryAccessor, path: str, name: str) -> tuple[int, Any] | None:
    try:
        return registry.query_value(path, name)
    except Exception as exc:
        if _is_missing(exc):
            return None
        raise


def _enum(registry: RegistryAccessor, path: str) -> list[tuple[str, int, Any]]:
    try:
        return list(registry.enum_values(path))
    except Exception as exc:
        if _is_missing(exc):
            return []
        raise


def _text(vtype: int, data: Any, env: _Environment | None) -> str:
    if isinstance(data, list):
        data = data[0] if data else ""
    text = data if isinstance(data, str) else str(data)
    # RtlQueryRegistryValues expands REG_EXPAND_SZ with the environment current then.
    return expand_environment(text, env.as_mapping()) if vtype == REG_EXPAND_SZ and env else text


def _strings(found: tuple[int, Any], env: _Environment | None) -> list[str]:
    vtype, data = found
    if isinstance(data, list):
        return [item for item in data if isinstance(item, str) and item]
    text = _text(vtype, data, env)
    return [text] if text else []


def _pairs(found: tuple[int, Any]) -> list[tuple[str, str]]:
    # Empty strings are meaningful here: an empty target means "delete the source".
    _, data = found
    items = list(data) if isinstance(data, list) else [str(data)]
    if len(items) % 2:
        items.append("")
    return [(items[i], items[i + 1]) for i in range(0, len(items), 2) if items[i]]


def _dword(found: tuple[int, Any] | None, default: int) -> int:
    if found is None:
        return default
    _, data = found
    return data if isinstance(data, int) else default


def _size(text: str, descriptor: str) -> int:
    # RtlUnicodeStringToInteger with base 0: 0x, 0o and 0b prefixes, otherwise decimal.
    bases = {"0x": 16, "0o": 8, "0b": 2}
    base = bases.get(text[:2].lower(), 10)
    try:
        return int(text[2:] if base != 10 else text, base)
    except ValueError:
        raise ValueError(
            f"paging file descriptor {descriptor!r}: size {text!r} is not a number of megabytes"
        ) from None


def _number(text: str | None) -> int:
    try:
        return int(text or "0", 0)
    except ValueError:
        return 0


def _cpu_blocks(cpu_info: str | Sequence[Mapping[str, str]]) -> list[Mapping[str, str]]:
    if not isinstance(cpu_info, str):
        return [block for block in cpu_info if "processor" in block]
    return parse_cpuinfo(cpu_info)


def _safeboot_name(option: int | str | None) -> str | None:
    if option is None or option == 0 or option == "":
        return None
    if isinstance(option, int):
        if option not in SAFEBOOT_NAMES:
            raise ValueError(f"safe boot OptionValue {option} is not 1, 2 or 3")
        return SAFEBOOT_NAMES[option]
    name = option.upper()
    if name not in SAFEBOOT_NAMES.values():
        raise ValueError(f"safe boot option {option!r} is not MINIMAL, NETWORK or DSREPAIR")
    return name
