"""The volatile HARDWARE hive, built from the real machine at each boot.

On Windows, ntdetect / the boot loader collects the hardware tree and CmInitSystem1 writes
it under ``HKLM\\HARDWARE`` (``CmpInitializeHardwareConfiguration``); nothing is kept on
disk. Here the "firmware" is Linux: ``/proc/cpuinfo``, ``/proc/meminfo`` and
``/sys/class/dmi/id``. Missing files or fields never stop the boot; the value is left out
(or given a neutral default), as a machine with a sparse BIOS table would have.

Names are Windows' own (``DESCRIPTION\\System``, ``CentralProcessor\\N``, ``~MHz``,
``SystemBiosVersion``, ``BIOS\\*``, ``RESOURCEMAP``, ``DEVICEMAP``). Model addition:
``RESOURCEMAP\\System Resources\\Physical Memory\\TotalPhysicalBytes`` (REG_QWORD, from
MemTotal), standing in for the ``.Translated`` CM_RESOURCE_LIST whose address ranges
Linux does not show to an unprivileged process.
"""

from __future__ import annotations

import platform
from pathlib import Path

from nt.cpuinfo import parse_cpuinfo  # noqa: F401  (re-exported for callers and tests)
from nt.hive import Registry
from nt.regpath import REG_DWORD, REG_MULTI_SZ, REG_QWORD, REG_SZ

HARDWARE = r"HKLM\HARDWARE"
SYSTEM = HARDWARE + r"\DESCRIPTION\System"
PHYSICAL_MEMORY = HARDWARE + r"\RESOURCEMAP\System Resources\Physical Memory"

# /sys/class/dmi/id file -> value under DESCRIPTION\System\BIOS (Windows 10 names, SMBIOS)
_DMI_BIOS = {
    "bios_vendor": "BIOSVendor",
    "bios_version": "BIOSVersion",
    "bios_date": "BIOSReleaseDate",
    "board_vendor": "BaseBoardManufacturer",
    "board_name": "BaseBoardProduct",
    "board_version": "BaseBoardVersion",
    "sys_vendor": "SystemManufacturer",
    "product_name": "SystemProductName",
    "product_family": "SystemFamily",
    "product_version": "SystemVersion",
    "product_sku": "SystemSKU",
}
_VENDOR_ARCH = {"GenuineIntel": "Intel64", "AuthenticAMD": "AMD64"}


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return None


def _int(text: str | None, default: int = 0) -> int:
    try:
        return int(float(text)) if text is not None else default
    except ValueError:
        return default


def processor_identifier(cpu: dict[str, str]) -> str:
    """The CentralProcessor ``Identifier``, e.g. "Intel64 Family 6 Model 85 Stepping 7"."""
    arch = _VENDOR_ARCH.get(cpu.get("vendor_id", ""))
    if arch is None:
        arch = {"x86_64": "AMD64", "aarch64": "ARMv8 (64-bit)"}.get(
            platform.machine(), platform.machine() or "Unknown"
        )
    family = _int(cpu.get("cpu family") or cpu.get("CPU architecture"))
    model = _int(cpu.get("model"))
    stepping = _int(cpu.get("stepping") or cpu.get("CPU revision"))
    return f"{arch} Family {family} Model {model} Stepping {stepping}"


def _memory_bytes(meminfo: str | None) -> int | None:
    for line in (meminfo or "").splitlines():
        key, _, rest = line.partition(":")
        if key == "MemTotal":
            fields = rest.split()
            if fields and fields[0].isdigit():
                scale = 1024 if len(fields) < 2 or fields[1].lower() == "kb" else 1
                return int(fields[0]) * scale
    return None


def build_hardware(
    registry: Registry, proc: Path = Path("/proc"), dmi: Path = Path("/sys/class/dmi/id")
) -> int:
    """Fill HKLM\\HARDWARE like CmInitSystem1; returns the number of processors found."""
    for key in (
        SYSTEM + r"\CentralProcessor",
        SYSTEM + r"\FloatingPointProcessor",
        SYSTEM + r"\BIOS",
        PHYSICAL_MEMORY,
        HARDWARE + r"\DEVICEMAP",
    ):
        registry.create_key(key, volatile=True)
    registry.set_value(SYSTEM, "Identifier", REG_SZ, "AT/AT COMPATIBLE")
    bios = {name: _read(dmi / f) for f, name in _DMI_BIOS.items()}
    bios = {name: text for name, text in bios.items() if text}
    if "BIOSVersion" in bios:
        registry.set_value(SYSTEM, "SystemBiosVersion", REG_MULTI_SZ, [bios["BIOSVersion"]])
    if "BIOSReleaseDate" in bios:
        registry.set_value(SYSTEM, "SystemBiosDate", REG_SZ, bios["BIOSReleaseDate"])
    for name, text in bios.items():
        registry.set_value(SYSTEM + r"\BIOS", name, REG_SZ, text)

    cpus = parse_cpuinfo(_read(proc / "cpuinfo") or "")
    for n, cpu in enumerate(cpus):
        ident = processor_identifier(cpu)
        for kind in ("CentralProcessor", "FloatingPointProcessor"):
            registry.create_key(rf"{SYSTEM}\{kind}\{n}", volatile=True)
            registry.set_value(rf"{SYSTEM}\{kind}\{n}", "Identifier", REG_SZ, ident)
        key = rf"{SYSTEM}\CentralProcessor\{n}"
        registry.set_value(key, "~MHz", REG_DWORD, min(_int(cpu.get("cpu MHz")), 0xFFFFFFFF))
        name = cpu.get("model name") or cpu.get("Processor") or ident
        registry.set_value(key, "ProcessorNameString", REG_SZ, name)
        if cpu.get("vendor_id"):
            registry.set_value(key, "VendorIdentifier", REG_SZ, cpu["vendor_id"])

    total = _memory_bytes(_read(proc / "meminfo"))
    if total is not None:
        registry.set_value(PHYSICAL_MEMORY, "TotalPhysicalBytes", REG_QWORD, total)
    return len(cpus)
