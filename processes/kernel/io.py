r"""IoInitSystem's driver loading: boot-start, then system-start drivers of ``Services``.

What Windows does (nt-spec §1.1, §4.1, §4.3–4.4; seed 004's ErrorControl table;
reliability-security.md §1.4): the drivers with Start=0 are loaded first, then those with
Start=1, each pass in ``ServiceGroupOrder\List`` order and ``GroupOrderList`` tag order
(``nt/svcorder.py``, the same ordering the SCM uses; DependOnService only orders drivers
of the same pass). A driver is not a process: loading one makes a loaded-module record
(``NtQuerySystemInformation(SystemModuleInformation)``, ``ntctl drivers``) and a driver
object, ``\Driver\<name>`` (file systems and recognizers: ``\FileSystem\<name>``).
``/SOS`` prints each driver's path as it loads; ``/BOOTLOG`` appends a line per driver to
``ntbtlog.txt``. In safe mode only drivers named under ``Control\SafeBoot\Minimal`` (or
``Network``) load: by service name, group name or image file name, as IopSafebootDriverLoad
checks them.

A failed load does what the driver's ErrorControl says: 0 nothing; 1 log it (it goes into
event 7026 at the end); 2 Severe: log, and reboot into LastKnownGood unless this boot is
already using it; 3 Critical: the same, and on a LastKnownGood boot stop with 0x5A
CRITICAL_SERVICE_FAILED (P1 points at the driver's name).

Divergences (each logged as a ``divergence`` event when it happens):
- The model has no driver code: every image "loads". A driver fails to load when its key
  holds ``NtModelLoadStatus`` (REG_DWORD, an NTSTATUS such as 0xC0000034
  STATUS_OBJECT_NAME_NOT_FOUND for a missing image or 0xC000007B
  STATUS_INVALID_IMAGE_FORMAT): a fault injected by configuration, as DESIGN.md asks.
- Windows' loader treats the "Core" groups specially (they load first); the model orders
  them as any group missing from the list.
- Event 7026 is written by services.exe on Windows (ScGetBootAndSystemDriverState); here
  the kernel reports it when IoInitSystem ends, as an ``event.report`` log event.
- Drivers in a dependency cycle (ERROR_CIRCULAR_DEPENDENCY) are not loaded.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from nt import bugcodes
from nt.regpath import RegistryError
from nt.status import NtStatus, hexstatus, status_name
from nt.svcorder import ServiceEntry, compute_order, entry_from_values
from ports.kernel import SHUTDOWN_REBOOT
from processes.kernel.bootlog import append_bootlog
from processes.kernel.bootopts import BootOptions
from processes.kernel.ke import EXIT_REBOOT
from processes.kernel.ps import now_iso

SERVICES = r"HKLM\SYSTEM\CurrentControlSet\Services"
CONTROL = r"HKLM\SYSTEM\CurrentControlSet\Control"
FAULT_VALUE = "NtModelLoadStatus"
BOOT_FILE_SYSTEM = "NTFS"
CORE_GROUPS = {"CORE", "CORE PLATFORM EXTENSIONS"}  # winload loads these first
LKG_PENDING = "lastknowngood.pending.json"  # on the system drive, read by the next boot
# SERVICE_KERNEL_DRIVER | SERVICE_FILE_SYSTEM_DRIVER | SERVICE_RECOGNIZER_DRIVER
DRIVER_TYPES = {1: "Kernel", 2: "File System", 8: "File System"}
ERROR_CONTROL = {0: "IGNORE", 1: "NORMAL", 2: "SEVERE", 3: "CRITICAL"}
SAFEBOOT_KEYS = {1: "Minimal", 2: "Network", 3: "Minimal"}
EVENT_7026 = "The following boot-start or system-start driver(s) did not load: "


class KernelLike(Protocol):
    """What IoInitSystem needs from the kernel (processes/kernel/init.py's Kernel)."""

    cm: Any
    ob: Any
    ps: Any
    log: Any
    root: Path
    options: BootOptions
    stopping: bool
    exit_code: int
    halt: threading.Event

    def raise_bugcheck(
        self, params: bugcodes.BugcheckParams, culprit: Any, detected_by: dict | None = None
    ) -> None: ...

    def request_shutdown(self, action: int, by: int) -> None: ...


@dataclass(frozen=True)
class Driver:
    """One ``Services\\<name>`` key of a driver, as the loader reads it."""

    entry: ServiceEntry
    image_path: str  # \SystemRoot\... as ntbtlog.txt prints it
    error_control: int
    display_name: str
    fault: int | None  # NtModelLoadStatus

    @property
    def name(self) -> str:
        return self.entry.name


@dataclass(frozen=True)
class LoadedModule:
    """One row of ``ntctl drivers`` (driverquery)."""

    order: int
    name: str
    display_name: str
    driver_type: str  # Kernel | File System
    image: str
    start: int
    group: str
    tag: int | None
    object_name: str
    load_time: str
    reason: str


def image_path(name: str, value: Any) -> str:
    r"""``ImagePath`` in the form the loader uses: ``System32\drivers\x.sys`` and
    ``%SystemRoot%\...`` become ``\SystemRoot\...``; no value means
    ``\SystemRoot\System32\drivers\<name>.sys`` (IopBuildFullDriverPath)."""
    if not isinstance(value, str) or not value.strip():
        return rf"\SystemRoot\System32\drivers\{name}.sys"
    path = value.strip()
    if path.lower().startswith("%systemroot%"):
        return r"\SystemRoot" + path[len("%systemroot%") :]
    if path.startswith("\\"):
        return path
    return "\\SystemRoot\\" + path


def display_name(name: str, value: Any) -> str:
    """An indirect ``@file,-id;fallback`` DisplayName shows its fallback text."""
    if not isinstance(value, str) or not value:
        return name
    if value.startswith("@"):
        return value.rsplit(";", 1)[1] if ";" in value else name
    return value


def read_drivers(cm: Any) -> tuple[list[Driver], list[str], dict[str, bytes]]:
    """The drivers of ``Services`` with the group list and the GroupOrderList vectors."""
    drivers = []
    for name in cm.enum_keys(SERVICES):
        values = {n: d for n, _t, d in cm.enum_values(rf"{SERVICES}\{name}")}
        entry = entry_from_values(name, values)
        if entry is None or entry.type not in DRIVER_TYPES:
            continue
        fault = {k.upper(): v for k, v in values.items()}.get(FAULT_VALUE.upper())
        drivers.append(
            Driver(
                entry,
                image_path(name, values.get("ImagePath")),
                values.get("ErrorControl", 1),
                display_name(name, values.get("DisplayName")),
                fault if isinstance(fault, int) and fault else None,
            )
        )
    groups = cm.value_or(CONTROL + r"\ServiceGroupOrder", "List", [])
    try:
        vectors = {n: d for n, _t, d in cm.enum_values(CONTROL + r"\GroupOrderList")}
    except RegistryError:
        vectors = {}
    tags = {n: d for n, d in vectors.items() if isinstance(d, bytes)}
    return drivers, groups if isinstance(groups, list) else [], tags


def safeboot_allows(cm: Any, mode: int, driver: Driver) -> bool:
    """IopSafebootDriverLoad: a subkey named after the service, its group or its file."""
    if not mode:
        return True
    base = rf"{CONTROL}\SafeBoot\{SAFEBOOT_KEYS[mode]}"
    names = [driver.name, driver.entry.group, driver.image_path.rsplit("\\", 1)[-1]]
    return any(n and cm.key_exists(rf"{base}\{n}") for n in names)


def pending_last_known_good(root: Path, options: BootOptions) -> BootOptions:
    """The loader's choice after a Severe/Critical failure: this boot uses LastKnownGood."""
    marker = root / "C" / "Windows" / LKG_PENDING
    if not marker.exists():
        return options
    marker.unlink()
    return replace(options, lastknowngood=True)


class IoManager:
    def __init__(self, kernel: KernelLike) -> None:
        self.k = kernel
        self.modules: list[LoadedModule] = []
        self.failed: list[tuple[Driver, int]] = []
        self._reported = False
        self._lock = threading.Lock()

    def init_system(self) -> None:
        """Load the boot-start, then the system-start drivers; act on failures."""
        k = self.k
        drivers, groups, tags = read_drivers(k.cm)
        by_name = {d.name: d for d in drivers}
        # winload loads the boot volume's file system driver whatever its Start (Ntfs is
        # demand-start on Windows 10); the model's boot volume is NTFS.
        entries = [
            replace(d.entry, start=0) if d.name.upper() == BOOT_FILE_SYSTEM else d.entry
            for d in drivers
        ]
        mode = k.options.safeboot_option
        k.ob.create_directory(r"\FileSystem", permanent=True, open_if=True)
        if any(d.entry.group.upper() in CORE_GROUPS for d in drivers):
            k.log.info("divergence", what="the Core groups load as unlisted groups, not first")
        loaded: list[str] = []
        for phase, start in (("boot", 0), ("system", 1)):
            order = compute_order(
                entries,
                groups,
                tags,
                start_types={start},
                running=loaded,
                pull_dependencies=False,
            )
            for name, err in order.errors.items():
                k.log.info("divergence", what=f"{name} not loaded: {err.detail}")
                if not self._failed(by_name[name], NtStatus.STATUS_UNSUCCESSFUL, phase):
                    return
            for name in order.sequence:
                driver = by_name[name]
                if not safeboot_allows(k.cm, mode, driver):
                    k.log.info("io.driver_skipped", driver=name, safeboot=SAFEBOOT_KEYS[mode])
                    continue
                if driver.fault is None:
                    self._load(driver, phase, order.reasons[name].text)
                    loaded.append(name)
                elif not self._failed(driver, driver.fault, phase):
                    return
        self._report()

    def load_driver(self, name: str) -> int:
        """NtLoadDriver (IopLoadDriver): a driver the SCM starts after boot."""
        with self._lock:
            if any(m.name.lower() == name.lower() for m in self.modules):
                return NtStatus.STATUS_IMAGE_ALREADY_LOADED
        values = {n: d for n, _t, d in self.k.cm.enum_values(rf"{SERVICES}\{name}")}
        entry = entry_from_values(name, values)
        if entry is None or entry.type not in DRIVER_TYPES:
            return NtStatus.STATUS_OBJECT_NAME_NOT_FOUND
        fault = {k.upper(): v for k, v in values.items()}.get(FAULT_VALUE.upper())
        if isinstance(fault, int) and fault:
            self.k.log.info("io.driver_failed", driver=name, phase="demand", status=fault)
            return fault
        driver = Driver(
            entry,
            image_path(name, values.get("ImagePath")),
            values.get("ErrorControl", 1),
            display_name(name, values.get("DisplayName")),
            None,
        )
        self._load(driver, "demand", "NtLoadDriver (started by the service control manager)")
        return NtStatus.STATUS_SUCCESS

    def _load(self, driver: Driver, phase: str, reason: str) -> None:
        k = self.k
        fs = driver.entry.type in (2, 8)
        obj = ("\\FileSystem\\" if fs else "\\Driver\\") + driver.name
        k.ob.create_driver(obj, driver.image_path, rf"{SERVICES}\{driver.name}")
        module = LoadedModule(
            len(self.modules) + 1,
            driver.name,
            driver.display_name,
            DRIVER_TYPES[driver.entry.type],
            driver.image_path,
            driver.entry.start,
            driver.entry.group,
            driver.entry.tag,
            obj,
            now_iso(),
            reason,
        )
        with self._lock:
            self.modules.append(module)
        k.log.info(
            "io.driver_loaded",
            driver=driver.name,
            phase=phase,
            image=driver.image_path,
            reason=reason,
        )
        self._show(f"Loaded driver {driver.image_path}", driver)

    def _show(self, line: str, driver: Driver) -> None:
        k = self.k
        if k.options.sos:  # NTLDR's /SOS lines: the ARC path of each image
            arc = k.options.arc_path + driver.image_path.removeprefix("\\SystemRoot")
            k.log.info("boot.display", text=arc)
        if k.options.bootlog:
            append_bootlog(k.root, [line])

    def _failed(self, driver: Driver, status: int, phase: str) -> bool:
        """ErrorControl decides; False when the boot must stop here."""
        k = self.k
        ec = driver.error_control
        if driver.fault is not None:
            k.log.info("divergence", what=f"{driver.name}: load failure injected by {FAULT_VALUE}")
        k.log.warning(
            "io.driver_failed",
            driver=driver.name,
            phase=phase,
            image=driver.image_path,
            status=status,
            status_name=status_name(status),
            error_control=ERROR_CONTROL.get(ec, str(ec)),
        )
        self._show(f"Did not load driver {driver.image_path}", driver)
        if ec >= 1:
            self.failed.append((driver, status))
        if ec < 2:
            return True
        if not k.options.lastknowngood:
            self._report()
            self._reboot_into_last_known_good(driver, status)
            return False
        if ec == 2:  # Severe on LastKnownGood: go on
            return True
        self._report()
        k.raise_bugcheck(
            bugcodes.BugcheckParams(
                bugcodes.BugCode.CRITICAL_SERVICE_FAILED,
                (bugcodes.string_pointer(driver.name), 0, 0, 0),
                {"p1_text": driver.name, "status": hexstatus(status)},
            ),
            None,
        )
        return False

    def revert_to_last_known_good(self, service: str, critical: bool, by: int) -> bool:
        """ScRevertToLastKnownGood's kernel half, for the SCM: a SEVERE/CRITICAL service
        that failed at boot, or RNotifyBootConfigStatus(FALSE). The same rules as a
        driver's: not on LastKnownGood → an orderly restart into it; on it, CRITICAL →
        0x5A, SEVERE → nothing."""
        k = self.k
        if k.options.lastknowngood:
            if critical:
                k.log.error("io.critical_service_failed", service=service, by_pid=by)
                k.raise_bugcheck(
                    bugcodes.BugcheckParams(
                        bugcodes.BugCode.CRITICAL_SERVICE_FAILED,
                        (bugcodes.string_pointer(service), 0, 0, 0),
                        {"p1_text": service},
                    ),
                    None,
                    {"pid": by, "image": "services.exe"},
                )
            return False
        self._write_lkg_marker({"service": service, "critical": critical})
        k.log.error("io.last_known_good_reboot", service=service, critical=critical, by_pid=by)
        k.request_shutdown(SHUTDOWN_REBOOT, by=by)
        return True

    def _write_lkg_marker(self, what: dict) -> None:
        marker = self.k.root / "C" / "Windows" / LKG_PENDING
        marker.parent.mkdir(parents=True, exist_ok=True)
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(json.dumps(what))
        os.replace(tmp, marker)

    def _reboot_into_last_known_good(self, driver: Driver, status: int) -> None:
        """Stop this boot; the next one loads the LastKnownGood control set."""
        k = self.k
        self._write_lkg_marker({"driver": driver.name, "status": status})
        k.log.error(
            "io.last_known_good_reboot",
            driver=driver.name,
            status=status,
            error_control=ERROR_CONTROL[driver.error_control],
        )
        k.stopping = True
        k.ps.stop_zygote()
        k.exit_code = EXIT_REBOOT
        k.halt.set()

    def _report(self) -> None:
        """System event 7026 for the drivers that failed with ErrorControl ≥ 1."""
        if self.failed and not self._reported:
            self._reported = True
            names = [d.name for d, _ in self.failed]
            self.k.log.info("divergence", what="7026 reported by the kernel, not services.exe")
            self.k.log.error(
                "event.report",
                id=7026,
                source="Service Control Manager",
                strings=["\n".join(names)],
                message=EVENT_7026 + "\n\n" + "\n".join(names),
            )

    def module_table(self) -> list[dict]:
        with self._lock:
            return [asdict(m) for m in self.modules]
