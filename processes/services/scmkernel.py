"""services.exe's outside world through the kernel's system services: the live
``ScmKernel``, ``ServiceStore`` and registry accessor the SCM core takes (scm.py).

Every call here is made under the core's lock, so each is one quick system-service call
(process creation is a fork from the zygote); nothing waits for another process.
"""

from __future__ import annotations

import ntpath
import os
import threading
from typing import Any

from nt import regfile
from nt.csrclient import CsrClient
from nt.evtmsg import report_event
from nt.images import SYSTEM_ROOT, package_for
from nt.log import Logger
from nt.scdispatch import SERVICE_CURRENT_ENV
from nt.status import NtStatus
from nt.syscalls import NtError, SystemServices
from nt.win32 import Win32Error as E
from ports.client import PortError
from ports.kernel import CM_BOOT_FLAG_ACCEPTED, SHUTDOWN_REBOOT
from processes.services.database import ServiceRecord, record_values

SERVICES_KEY = r"HKLM\SYSTEM\CurrentControlSet\Services"
BASE_NAMED_OBJECTS = "\\BaseNamedObjects\\"
DELAYED_NICE = 10  # THREAD_PRIORITY_LOWEST (-2 of 31 levels) as Linux niceness


def expand(path: str) -> str:
    """ExpandEnvironmentStrings for the names an ImagePath uses, and ``\\SystemRoot``."""
    out = path.replace("%SystemRoot%", SYSTEM_ROOT).replace("%systemroot%", SYSTEM_ROOT)
    out = out.replace("%windir%", SYSTEM_ROOT)
    if out.lower().startswith("\\systemroot\\"):
        out = SYSTEM_ROOT + out[len("\\SystemRoot") :]
    elif out.lower().startswith("system32\\"):
        out = SYSTEM_ROOT + "\\" + out
    return out


def executable(image_path: str) -> str:
    """The file part of an ImagePath (quoted, or up to the first argument)."""
    path = expand(image_path.strip())
    if path.startswith('"'):
        return path[1:].split('"', 1)[0]
    return path.split(" -", 1)[0].split(" /", 1)[0].strip()


def object_name(name: str) -> str:
    return name if name.startswith("\\") else BASE_NAMED_OBJECTS + name


class KernelScm:
    """``ScmKernel`` over NtCreateUserProcess and friends."""

    def __init__(
        self,
        nt: SystemServices,
        log: Logger,
        options: dict | None = None,
        csr: CsrClient | None = None,
    ) -> None:
        self.nt = nt
        self.log = log
        self.csr = csr  # services.exe's csrss connection: CreateProcess's BasepCreateProcess
        self.options = options or {}  # the boot options (lastknowngood: this boot uses LKG)
        self._priority_logged = False
        self._reverting = False

    def create_process(
        self,
        image_path: str,
        *,
        service_current: int,
        account: str,
        standin: bool,
        low_priority: bool,
    ) -> tuple[int, int]:
        try:
            body = self.nt.call(
                "NtCreateUserProcess",
                image=executable(image_path),
                command_line=expand(image_path),
                environment={SERVICE_CURRENT_ENV: str(service_current), "SystemRoot": SYSTEM_ROOT},
                session=0,  # session 0 isolation: every service runs there
                suspended=True,
                account=account or "LocalSystem",
                standin=standin,
            )
        except NtError as exc:
            return exc.status, 0
        if low_priority:
            self.set_process_priority(body["pid"], True)
        return NtStatus.STATUS_SUCCESS, body["pid"]

    def resume_process(self, pid: int) -> int:
        """CreateProcess's last steps: csrss learns the new process (BasepCreateProcess,
        so it may connect as every Win32 process does), then its thread runs."""
        if self.csr is not None:
            reply = self.csr.call("BasepCreateProcess", {"process_id": pid})
            if not reply.ok:  # the service runs without csrss; its connect will be refused
                self.log.warning("scm.csr_create_failed", child_pid=pid, status=reply.status)
        return self._status(lambda: self.nt.resume(pid))

    def terminate_process(self, pid: int, exit_status: int) -> int:
        return self._status(lambda: self.nt.terminate(pid, exit_status))

    def set_process_priority(self, pid: int, low: bool) -> None:
        """A delayed auto-start service's process runs ``DELAYED_NICE`` lower than the SCM
        until the service reports RUNNING (Windows lowers the ServiceMain thread alone, to
        THREAD_PRIORITY_LOWEST: a divergence, logged once)."""
        if not self._priority_logged:
            self._priority_logged = True
            self.log.info(
                "divergence",
                what="delayed auto-start: the whole service process runs at nice +10 until "
                "RUNNING (Windows: its ServiceMain thread at THREAD_PRIORITY_LOWEST)",
            )
        base = os.getpriority(os.PRIO_PROCESS, 0)
        nice = min(base + DELAYED_NICE, 19) if low else base
        try:
            os.setpriority(os.PRIO_PROCESS, pid, nice)
        except OSError as exc:  # gone already, or raising it back needs CAP_SYS_NICE
            self.log.warning("scm.priority_failed", child_pid=pid, low=low, errno=exc.errno)
            return
        self.log.info("scm.priority", child_pid=pid, low=low, nice=nice)

    def image_available(self, image_path: str) -> bool:
        return package_for(executable(image_path)) is not None

    def load_driver(self, name: str, image_path: str) -> int:
        key = "\\Registry\\Machine\\SYSTEM\\CurrentControlSet\\Services\\" + name
        status = self._status(lambda: self.nt.load_driver(key))
        return NtStatus.STATUS_SUCCESS if status == NtStatus.STATUS_IMAGE_ALREADY_LOADED else status

    def set_event(self, name: str) -> None:
        self.nt.create_event(object_name(name))
        self.nt.set_event(object_name(name))

    def run_command(self, command_line: str, account: str) -> int:
        exe = executable(command_line)
        if package_for(exe) is None:
            return E.ERROR_FILE_NOT_FOUND
        try:
            pid = self.nt.create_process(exe, expand(command_line), {}, 0, suspended=False)
        except NtError:
            return E.ERROR_FILE_NOT_FOUND
        self.log.info("scm.run_command", command_line=command_line, child_pid=pid)
        return 0

    def reboot(self, message: str | None, reason: str) -> None:
        """Off the core's lock: NtShutdownSystem ends this process too."""
        self.log.warning("scm.reboot", message=message, reason=reason)
        threading.Thread(target=self.nt.shutdown, args=(SHUTDOWN_REBOOT,), daemon=True).start()

    def memory_kb(self) -> int:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 1024

    def accept_boot(self, acceptable: bool) -> int:
        r"""RNotifyBootConfigStatus. TRUE: ScmAcceptBoot, whose copy of the current control
        set is the kernel's (NtInitializeRegistry(CM_BOOT_FLAG_ACCEPTED): a free
        ControlSet00N, ``Select\LastKnownGood``; a second acceptance is refused there too).
        FALSE: ScmRunLastKnownGood, restart into LastKnownGood."""
        if not acceptable:
            self.revert("", critical=False)
            return 0
        try:
            self.nt.initialize_registry(CM_BOOT_FLAG_ACCEPTED)
        except NtError as exc:
            self.log.warning("scm.boot_accept_failed", status=exc.status)
            if exc.status == NtStatus.STATUS_ACCESS_DENIED:  # the kernel accepted it already
                return E.ERROR_BOOT_ALREADY_ACCEPTED
            return E.ERROR_INVALID_PARAMETER
        self.log.info("scm.boot_accepted")
        return 0

    def start_failed(self, name: str, error_control: int, error: int) -> None:
        """SEVERE/CRITICAL at boot (the 7000 is the core's): the kernel restarts into
        LastKnownGood (7007 first) unless this boot uses it; on it CRITICAL is 0x5A."""
        self.log.error(
            "scm.boot_start_failed", service=name, error_control=error_control, error=error
        )
        self.revert(name, critical=error_control >= 3)

    def revert(self, service: str, *, critical: bool) -> None:
        """ScRevertToLastKnownGood, off the core's lock (the restart ends this process)."""

        def run() -> None:
            try:
                body = self.nt.call(
                    "CmRevertToLastKnownGood", service_name=service, critical=critical
                )
            except (NtError, PortError) as exc:
                self.log.error("scm.revert_failed", service=service, status=exc.status)
                return
            self.log.info("scm.revert", service=service, reverted=body["reverted"])

        lkg = bool(self.options.get("lastknowngood"))
        if self._reverting and not (lkg and critical):
            return  # one restart into LastKnownGood is under way already
        self._reverting = not lkg
        if not lkg:
            report_event(self.log, 7007)
        threading.Thread(target=run, name="ScRevertToLastKnownGood", daemon=True).start()

    @staticmethod
    def _status(fn: Any) -> int:
        try:
            fn()
        except NtError as exc:
            return exc.status
        return NtStatus.STATUS_SUCCESS


class RegistryStore:
    """``ServiceStore``: ``Services\\<name>`` in the SYSTEM hive."""

    def __init__(self, nt: SystemServices) -> None:
        self.nt = nt

    def write_service(self, record: ServiceRecord) -> None:
        key = f"{SERVICES_KEY}\\{record.name}"
        self.nt.create_key(key)
        for name, vtype, data in record_values(record):
            self.nt.set_value(key, name, vtype, data)

    def delete_service(self, name: str) -> None:
        try:
            self.nt.delete_key(f"{SERVICES_KEY}\\{name}", tree=True)
        except NtError:
            pass


class PrefetchedRegistry:
    """The ``RegistryAccessor`` ScmCreateServiceDatabase reads, with the whole ``Services``
    subtree taken as one snapshot, read back in chunks (CmExportBegin / CmExportRead): a
    750-service hive is ~1,500 keys, and one NtEnumerateValueKey each, even pipelined,
    was most of the SCM's start-up (~500 ms against ~50 ms). Keys outside the subtree are
    read live."""

    def __init__(self, nt: SystemServices, services_key: str) -> None:
        self.nt = nt
        self.root = services_key.lower()
        self.values: dict[str, list[tuple[str, int, object]]] = {}
        self.children: dict[str, list[str]] = {}
        first: str | None = None
        for path, values in nt.export_records(services_key):
            first = path if first is None else first
            full = services_key + path[len(first) :]
            key = full.lower()
            self.values[key] = [(n, t, regfile.decode_lenient(t, raw)) for n, t, raw in values]
            self.children.setdefault(key, [])
            if key != self.root:
                parent, _, name = full.rpartition("\\")
                self.children.setdefault(parent.lower(), []).append(name)

    def _inside(self, path: str) -> bool:
        return path == self.root or path.startswith(self.root + "\\")

    def enum_values(self, path: str) -> list[tuple[str, int, object]]:
        key = path.lower()
        if key in self.values:
            return self.values[key]
        if self._inside(key):
            raise NtError(NtStatus.STATUS_OBJECT_NAME_NOT_FOUND, "NtEnumerateValueKey")
        return [tuple(v) for v in self.nt.enum_values(path)]  # type: ignore[misc]

    def enum_keys(self, path: str) -> list[str]:
        key = path.lower()
        if key in self.children:
            return list(self.children[key])
        if self._inside(key):
            raise NtError(NtStatus.STATUS_OBJECT_NAME_NOT_FOUND, "NtEnumerateKey")
        return self.nt.enum_keys(path)


def image_name(image_path: str) -> str:
    return ntpath.basename(executable(image_path)).lower()
