"""svchost.exe -k GROUP [-p] [-s SERVICE]: the generic service host (nt-spec §4.9), and the
model's stand-in host for service images it does not implement.

As svchost: the group's service names come from ``SOFTWARE\\Microsoft\\Windows NT\\
CurrentVersion\\Svchost\\<GROUP>`` (REG_MULTI_SZ); the process connects to the SCM with its
``ServiceCurrent`` (StartServiceCtrlDispatcher), and when the SCM starts one of them it loads
that service's ``Parameters\\ServiceDll`` by name, as csrss loads its server DLLs:
``%SystemRoot%\\System32\\wevtsvc.dll`` is the module ``processes.svchost.dll.wevtsvc``,
whose ``ServiceMain(ctx, argv)`` runs on a thread of its own (``SvchostPushServiceGlobals``
first, when the DLL has it). A DLL the model lacks runs as a stand-in (a ``divergence``,
logged once per DLL) unless stand-ins are off, when the service stops with
ERROR_MOD_NOT_FOUND as svchost's LoadLibrary failure does.

As a stand-in (the kernel ran this package under a missing image's name): every service
the SCM starts here runs the stand-in ServiceMain, which answers START, SERVICE_CONTROL_STOP, SERVICE_CONTROL_SHUTDOWN,
PAUSE/CONTINUE and INTERROGATE faithfully and does nothing else.

Test faults (NTMODEL_FAULTS ``image:fault``): ``exit_at_once[=status]``, ``no_connect``,
``start_hang`` (START_PENDING, the checkpoint never moves), ``ignore_stop``.
"""

from __future__ import annotations

import importlib
import ntpath
import re
import threading
from collections.abc import Sequence

from nt.bootstrap import Process
from nt.scdispatch import service_current, start_service_ctrl_dispatcher
from nt.sctrl import ServiceContext, ServiceMain, run_until_stopped
from nt.status import NtStatus
from nt.syscalls import NtError
from nt.win32 import Win32Error as E
from nt.winsvc import (
    SERVICE_ACCEPT_PAUSE_CONTINUE,
    SERVICE_ACCEPT_SHUTDOWN,
    SERVICE_ACCEPT_STOP,
    SERVICE_STOPPED,
)

SVCHOST_KEY = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Svchost"
SERVICES_KEY = r"HKLM\SYSTEM\CurrentControlSet\Services"
MODEL_KEY = r"HKLM\SYSTEM\CurrentControlSet\Control\NtModel"
DLL_PACKAGE = "processes.svchost.dll"
ERROR_MOD_NOT_FOUND = 126
STANDIN_ACCEPTS = SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_PAUSE_CONTINUE | SERVICE_ACCEPT_SHUTDOWN


def parse_command_line(command_line: str) -> tuple[str | None, str | None]:
    """(-k GROUP, -s SERVICE) of ``svchost.exe -k netsvcs -p -s Schedule``."""
    words = command_line.split()
    group = single = None
    for flag, value in zip(words, words[1:], strict=False):
        if flag.lower() == "-k":
            group = value
        elif flag.lower() == "-s":
            single = value
    return group, single


def dll_module(service_dll: str) -> str | None:
    """``%SystemRoot%\\System32\\wevtsvc.dll`` → ``processes.svchost.dll.wevtsvc``."""
    base = ntpath.basename(service_dll.strip().strip('"')).lower()
    base = base[:-4] if base.endswith(".dll") else base
    return f"{DLL_PACKAGE}.{base}" if re.fullmatch(r"[a-z_][a-z0-9_]*", base) else None


class ServiceHost:
    def __init__(self, proc: Process, standins: bool) -> None:
        self.proc = proc
        self.standins = standins
        self.logged: set[str] = set()
        self.lock = threading.Lock()

    def service_main_for(self, name: str) -> ServiceMain:
        """The table entry: the DLL is loaded when the SCM starts the service, not before."""

        def main(ctx: ServiceContext, argv: Sequence[str]) -> None:
            fn = self.load(name)
            if fn is None:
                ctx.set_status(SERVICE_STOPPED, win32_exit_code=ERROR_MOD_NOT_FOUND)
                return
            fn(ctx, argv)

        return main

    def load(self, name: str) -> ServiceMain | None:
        dll = self.service_dll(name)
        module_name = dll_module(dll) if dll else None
        module = None
        if module_name is not None:
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name != module_name:  # a real DLL whose own import failed
                    raise
        if module is not None and hasattr(module, "ServiceMain"):
            push = getattr(module, "SvchostPushServiceGlobals", None)
            if push is not None:
                push({"process": self.proc})
            self.proc.log.info("svchost.dll_loaded", service=name, dll=dll, module=module_name)
            return module.ServiceMain
        if not self.standins:
            self.proc.log.error("svchost.dll_missing", service=name, dll=dll)
            return None
        with self.lock:
            first = (dll or name).lower() not in self.logged
            self.logged.add((dll or name).lower())
        if first:
            self.proc.log.info("divergence", what="stand-in service DLL", dll=dll, service=name)
        return standin_main(self.proc)

    def service_dll(self, name: str) -> str:
        for key in (f"{SERVICES_KEY}\\{name}\\Parameters", f"{SERVICES_KEY}\\{name}"):
            try:
                return str(self.proc.nt.query_value(key, "ServiceDll")[1])
            except NtError:
                continue
        return ""


def standin_main(proc: Process) -> ServiceMain:
    """The stand-in ServiceMain: the start, stop and shutdown protocol, nothing else."""

    def main(ctx: ServiceContext, argv: Sequence[str]) -> None:
        run_until_stopped(
            ctx,
            STANDIN_ACCEPTS,
            ignore_stop=proc.fault("ignore_stop") is not None,
            hang_starting=proc.fault("start_hang") is not None,
        )

    return main


def unlisted_host(proc: Process, host: ServiceHost, group: str) -> ServiceMain:
    """A service the SCM starts here that the group's Svchost value does not list: Windows
    answers ERROR_SERVICE_NOT_IN_EXE (1083). The model's SOFTWARE hive is its own, not the
    installation's whose SYSTEM hive it boots (``--system-hive``), so with stand-ins on such
    a service is hosted anyway (a divergence, logged per service); ServiceStandins=0 keeps
    Windows' 1083."""

    def main(ctx: ServiceContext, argv: Sequence[str]) -> None:
        proc.log.info(
            "divergence", what="service not in its Svchost group: hosted", service=ctx.name,
            group=group,
        )  # fmt: skip
        host.service_main_for(ctx.name)(ctx, argv)

    return main


def group_services(proc: Process, group: str) -> list[str] | None:
    try:
        vtype, data = proc.nt.query_value(SVCHOST_KEY, group)
    except NtError:
        return None
    return [str(n) for n in data] if isinstance(data, list) else [str(data)]


def standins_enabled(proc: Process) -> bool:
    try:
        return bool(proc.nt.query_value(MODEL_KEY, "ServiceStandins")[1])
    except NtError:
        return True


def main(proc: Process) -> int:
    current = service_current(proc.environment)
    if current is None:  # not started by the SCM: StartServiceCtrlDispatcher would fail
        proc.log.error("svchost.not_a_service_process")
        return E.ERROR_FAILED_SERVICE_CONTROLLER_CONNECT
    if proc.fault("exit_at_once") is not None:
        return int(proc.fault("exit_at_once") or "1", 0)
    if proc.fault("no_connect") is not None:
        proc.log.info("svchost.fault", fault="no_connect")
        threading.Event().wait()
    standin = proc.image.lower() != "svchost.exe"
    table: dict[str, ServiceMain] = {}
    fallback: ServiceMain | None = None
    if standin:
        proc.log.info("divergence", what="stand-in image", image=proc.image)
        fallback = standin_main(proc)
    else:
        group, single = parse_command_line(proc.command_line)
        names = group_services(proc, group or "")
        host = ServiceHost(proc, standins_enabled(proc))
        if names is None:  # a configuration without SOFTWARE's Svchost groups (a SYSTEM hive alone)
            proc.log.info(
                "divergence", what="no Svchost group: hosting what the SCM starts", group=group
            )
            fallback_host = host

            def fallback(ctx: ServiceContext, argv: Sequence[str]) -> None:
                fallback_host.service_main_for(ctx.name)(ctx, argv)
        else:
            table = {
                n: host.service_main_for(n)
                for n in names
                if single is None or n.lower() == single.lower()
            }
            if host.standins:
                fallback = unlisted_host(proc, host, group or "")
        proc.log.info("svchost.group", group=group, services=sorted(table))
    error = start_service_ctrl_dispatcher(
        proc.lpc,
        table,
        current=current,
        log=proc.log,
        fallback=fallback,
        on_main_exception=lambda name, exc: proc.log.error(
            "svchost.service_main_failed", service=name, error=repr(exc)
        ),
    )
    return error or NtStatus.STATUS_SUCCESS
