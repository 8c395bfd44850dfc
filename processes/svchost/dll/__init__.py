"""The service DLLs svchost.exe loads: ``Parameters\\ServiceDll`` =
``%SystemRoot%\\System32\\<base>.dll`` is the module ``processes.svchost.dll.<base>``.

Each module exports ``ServiceMain(ctx, argv)`` and ``SvchostPushServiceGlobals(data)``
(svchost calls it with its ``nt.svcglobals.SvchostGlobalData`` before the first
ServiceMain, as svchost.exe does with SVCHOST_GLOBAL_DATA). The helpers here are what
several DLLs share: serving a port for the life of a service and registering its RPC
endpoints with the endpoint mapper.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from nt.svcglobals import ModelService, SvchostGlobalData
from ports import epmap
from ports.client import PortError
from ports.contract import Handler
from ports.schema import Protocol

# The interfaces the modelled services serve (their MS-* UUIDs and versions).
IF_EVENTLOG = ("82273fdc-e32a-18c3-3f78-827929dc23ea", "0.0")  # MS-EVEN
IF_SRVSVC = ("4b324fc8-1670-01d3-1278-5a47bf6ee188", "3.0")  # MS-SRVS
IF_WKSSVC = ("6bffd098-a112-3610-9833-46c3f87e345a", "1.0")  # MS-WKST
IF_NETLOGON = ("12345678-1234-abcd-ef00-01234567cffb", "1.0")  # MS-NRPC
IF_ATSVC = ("1ff70682-0a51-30e8-076d-740be8cee98b", "1.0")  # MS-TSCH ATSvc
IF_ITASKSCHEDULER = ("86d35949-83c9-4044-b424-db363231fd0c", "1.0")  # MS-TSCH
IF_W32TIME = ("8fb6d884-2388-11d0-8c35-00c04fc295ee", "4.1")  # MS-W32T
IF_RRAS = ("8f09f000-b7ed-11ce-bbd2-00001a181cad", "0.0")  # MS-RRASM
IF_SPOOLSS = ("12345678-1234-abcd-ef00-0123456789ab", "1.0")  # MS-RPRN
IF_PNP = ("8d9f4e40-a03d-11ce-8f69-08003e30051b", "1.0")  # MS-PNPR
IF_ISYSTEMACTIVATOR = ("000001a0-0000-0000-c000-000000000046", "0.0")  # MS-DCOM
IF_IOBJECTEXPORTER = ("99fcfec4-5260-101b-bbcb-00aa0021347a", "0.0")  # MS-DCOM
IF_GPSVC = ("2eb08e3e-639f-4fba-97b1-14f878961076", "1.0")  # Group Policy client


def serve_port(
    g: SvchostGlobalData, name: str, protocol: Protocol, handlers: Mapping[int, Handler]
) -> object | None:
    """Create and serve ``name`` for a service's life; None without an LPC runtime (tests)."""
    if g.lpc is None:
        return None
    return g.lpc.create_port(name, protocol, dict(handlers))


def close_port(g: SvchostGlobalData, server: object | None, name: str) -> None:
    """Stop serving and remove the name, so a restart in this process can create it again."""
    if server is None:
        return
    server.stop()  # type: ignore[attr-defined]
    if g.kernel is not None:
        try:
            g.kernel.delete_object(name)
        except Exception as exc:  # NtError: the name went with the port already
            g.log.debug("svc.port_name_gone", port=name, why=str(exc))


def register_endpoints(
    g: SvchostGlobalData, service: str, entries: list[dict], *, unregister: bool = False
) -> int:
    """RpcEpRegister (or RpcEpUnregister) with RpcEptMapper → the epm status.

    A server whose endpoint mapper is not running still serves its endpoint (callers who
    know it reach it); RpcEpRegister fails with EPT_S_CANT_PERFORM_OP and the service
    goes on, as Windows services do when they only log that failure.
    """
    if g.lpc is None:
        return epmap.EPT_S_CANT_PERFORM_OP
    try:
        conn = epmap.connect(g.lpc)
    except PortError as exc:
        g.log.warning("rpc.ep_register_failed", service=service, status=exc.status)
        return epmap.EPT_S_CANT_PERFORM_OP
    try:
        if unregister:
            reply = epmap.RpcEpUnregister(conn, entries)
        else:
            reply = epmap.RpcEpRegister(conn, entries, service)
    finally:
        conn.close()
    status = (
        int(reply.body.get("status", epmap.EPT_S_CANT_PERFORM_OP)) if reply.ok else reply.status
    )
    g.log.info(
        "rpc.ep_unregister" if unregister else "rpc.ep_register",
        service=service,
        bindings=[e["binding"] for e in entries],
        epm_status=status,
    )
    return status


def publish(svc: ModelService, entries: list[dict], retry_s: float = 1.0) -> int:
    """RpcEpRegister for a running service: when the endpoint mapper is not up yet (the
    SCM starts several services at once), try again every ``retry_s`` until it is or the
    service stops — the service serves its endpoint meanwhile, as on Windows."""
    status = register_endpoints(svc.g, svc.ctx.name, entries)
    if status != epmap.EPT_S_CANT_PERFORM_OP or svc.g.lpc is None:
        return status

    def retry() -> None:
        while not svc.stop_event.wait(retry_s):
            if register_endpoints(svc.g, svc.ctx.name, entries) != epmap.EPT_S_CANT_PERFORM_OP:
                return

    threading.Thread(target=retry, name=f"ep-register:{svc.ctx.name}", daemon=True).start()
    return status


def endpoints(*items: tuple[tuple[str, str], str, str]) -> list[dict]:
    """``((uuid, version), binding, annotation)`` rows → ept entries."""
    return [epmap.entry(i[0], i[1], binding, note) for (i, binding, note) in items]
