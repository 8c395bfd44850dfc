"""StartServiceCtrlDispatcher over the SCM's ports (advapi32 ``sctrl.c``
ScConnectControlPipe + ScServiceDispatcher): the pipe half of ``nt/sctrl.py``.

A service process connects to the control port with its ``ServiceCurrent`` (the SCM hands
it in the environment; see ``SERVICE_CURRENT_ENV``), binds ntsvcs for SetServiceStatus, then
reads control packets until the SCM tells the dispatcher to end (STOP with no service
name: the process's last service stopped) or the SCM goes away. Each packet's answer goes
back with ScWriteReplyPacket. The call returns like StartServiceCtrlDispatcher: 0, or the
win32 error of a failed connect (ERROR_FAILED_SERVICE_CONTROLLER_CONNECT 1063).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from nt import csrclient
from nt.csrclient import CsrClient
from nt.log import Logger
from nt.sctrl import ServiceDispatcher, ServiceMain
from nt.win32 import Win32Error as E
from ports import svcctl
from ports.client import Connection, PortError
from ports.csr import BASESRV_SERVERDLL_INDEX
from ports.runtime import LpcRuntime

# Windows: the SCM writes HKLM\SYSTEM\CurrentControlSet\Control\ServiceCurrent before each
# CreateProcess and waits for that process to connect before the next one. The model's SCM
# does not serialise process creation, so N travels with the process (a divergence).
SERVICE_CURRENT_ENV = "ServiceCurrent"


def service_current(environment: Mapping[str, str]) -> int | None:
    value = environment.get(SERVICE_CURRENT_ENV)
    return int(value) if value is not None and value.isdigit() else None


def start_service_ctrl_dispatcher(
    lpc: LpcRuntime,
    table: Mapping[str, ServiceMain],
    *,
    current: int,
    log: Logger,
    fallback: ServiceMain | None = None,
    on_main_exception: Callable[[str, BaseException], None] | None = None,
) -> int:
    csr = _connect_csr(lpc, log)
    try:
        pipe = svcctl.ScConnectControlPipe(lpc, current, os.getpid())
        rpc = svcctl.ScConnectToScm(lpc)
    except PortError as exc:
        log.error("sctrl.connect_failed", status=exc.status, service_current=current)
        return E.ERROR_FAILED_SERVICE_CONTROLLER_CONNECT
    dispatcher = ServiceDispatcher(
        table, _reporter(rpc), fallback=fallback, on_main_exception=on_main_exception
    )
    log.info("sctrl.connected", service_current=current)
    try:
        while not dispatcher.finished.is_set():
            packet = svcctl.ScReadControlPacket(pipe)
            if not packet.ok:  # the SCM is gone (STATUS_PORT_DISCONNECTED)
                log.warning("sctrl.pipe_closed", status=packet.status)
                break
            error = dispatcher.handle_packet(packet.body)
            svcctl.ScWriteReplyPacket(pipe, packet.body["sequence"], error)
    finally:
        pipe.close()
        if csr is not None:
            csr.close()
    return 0


def _connect_csr(lpc: LpcRuntime, log: Logger) -> CsrClient | None:
    """kernel32's CsrClientConnectToServer (basesrv), which has run in every Win32 process
    by the time it calls StartServiceCtrlDispatcher: a service is a client of session 0's
    csrss. Not fatal when refused (a process csrss was not told of)."""
    try:
        return csrclient.connect(lpc, 0, servers=(BASESRV_SERVERDLL_INDEX,))
    except PortError as exc:
        log.warning("sctrl.csr_connect_failed", status=exc.status)
        return None


def _reporter(rpc: Connection) -> Callable[[int, dict[str, int]], int]:
    def report(status_handle: int, status: dict[str, int]) -> int:
        reply = svcctl.RSetServiceStatus(rpc, status_handle, status)
        if not reply.ok:
            return E.ERROR_INVALID_HANDLE
        return int(reply.body.get("error", 0))

    return report
