"""The print spooler's port: MS-RPRN's winspool routines a client needs to print a job.

``\\RPC Control\\spoolss`` stands for spoolsv.exe's ``ncacn_np:[\\pipe\\spoolss]`` endpoint
(interface 12345678-1234-abcd-ef00-0123456789ab v1.0). API numbers are the MS-RPRN
opnums and names its routines; printers are named in each call instead of through an
RpcOpenPrinter handle (the model keeps no per-handle state: a divergence of encoding).
A job is printed the way an application prints without a GDI driver: StartDocPrinter
(``datatype`` RAW), WritePrinter as many times as needed, EndDocPrinter; the spooler then
despools it to the printer's port. ``SubmitJob`` does the three in order.
"""

from __future__ import annotations

from nt.win32 import Win32Error as E
from ports.client import Connection, call_api
from ports.contract import Reply
from ports.schema import U32, Api, Bin, List, Map, Protocol, Str

SPOOLSS_PORT_NAME = "\\RPC Control\\spoolss"
SPOOLSS_INTERFACE = "12345678-1234-abcd-ef00-0123456789ab"
MAX_MESSAGE_LENGTH = 128 * 1024
WRITE_MAX = 64 * 1024  # bytes per RpcWritePrinter
ENUM_MAX = 1000

RpcEnumJobs = 4
RpcStartDocPrinter = 17
RpcWritePrinter = 19
RpcEndDocPrinter = 23

# win32 errors the routines return (the reply's ``error``; 0 = success): nt/win32.py's
ERROR_INVALID_PRINTER_NAME = E.ERROR_INVALID_PRINTER_NAME
ERROR_INVALID_PARAMETER = E.ERROR_INVALID_PARAMETER
ERROR_INVALID_DATATYPE = E.ERROR_INVALID_DATATYPE
ERROR_SPL_NO_STARTDOC = E.ERROR_SPL_NO_STARTDOC
ERROR_NOT_ENOUGH_SERVER_MEMORY = E.ERROR_NOT_ENOUGH_SERVER_MEMORY  # the spool folder is full

PRINTER = Str(max_len=220)
JOB_INFO_1 = {
    "job_id": U32(),
    "printer": PRINTER,
    "document": Str(max_len=260),
    "datatype": Str(max_len=32),
    "user": Str(max_len=256),
    "status": Str(max_len=32),
    "size": U32(),
    "submitted": Str(max_len=40),
}


def _api(number: int, name: str, request: dict, reply: dict | None = None, doc: str = "") -> Api:
    return Api(number, name, request, {"error": U32(), **(reply or {})}, doc)


SPOOLSS_APIS = (
    _api(
        RpcEnumJobs,
        "RpcEnumJobs",
        {"printer": PRINTER},
        {"jobs": List(item=Map(fields=JOB_INFO_1), max_len=ENUM_MAX)},
        "The printer's queue, oldest first (JOB_INFO_1).",
    ),
    _api(
        RpcStartDocPrinter,
        "RpcStartDocPrinter",
        {
            "printer": PRINTER,
            "document": Str(max_len=260),
            "datatype": Str(max_len=32, optional=True, default="RAW"),
        },
        {"job_id": U32()},
        "Create the job: FPnnnnn.SHD and .SPL in spool\\PRINTERS, status SPOOLING.",
    ),
    _api(
        RpcWritePrinter,
        "RpcWritePrinter",
        {"job_id": U32(), "data": Bin(max_len=WRITE_MAX)},
        {"written": U32()},
        "Append to the job's .SPL (durable when the reply comes).",
    ),
    _api(
        RpcEndDocPrinter,
        "RpcEndDocPrinter",
        {"job_id": U32()},
        {},
        "The job is complete: status SPOOLED; the spooler despools it to the port.",
    ),
)
SPOOLSS_PORT = Protocol(
    title="\\RPC Control\\spoolss (spoolsv.exe, MS-RPRN)",
    max_message_length=MAX_MESSAGE_LENGTH,
    apis=SPOOLSS_APIS,
    connect_info={},
    doc="Every reply carries the routine's win32 error as ``error``.",
)
_API = SPOOLSS_PORT.by_name()


def connect(lpc: object) -> Connection:
    return lpc.connect_port(SPOOLSS_PORT_NAME, {})  # type: ignore[attr-defined]


def StartDocPrinter(conn: Connection, printer: str, document: str, datatype: str = "RAW") -> Reply:
    body = {"printer": printer, "document": document, "datatype": datatype}
    return call_api(conn, _API["RpcStartDocPrinter"], body)


def WritePrinter(conn: Connection, job_id: int, data: bytes) -> Reply:
    return call_api(conn, _API["RpcWritePrinter"], {"job_id": job_id, "data": data})


def EndDocPrinter(conn: Connection, job_id: int) -> Reply:
    return call_api(conn, _API["RpcEndDocPrinter"], {"job_id": job_id})


def EnumJobs(conn: Connection, printer: str) -> Reply:
    return call_api(conn, _API["RpcEnumJobs"], {"printer": printer})


def SubmitJob(conn: Connection, printer: str, document: str, data: bytes) -> tuple[int, int]:
    """(win32 error, job id): StartDocPrinter, WritePrinter per 64 KiB, EndDocPrinter."""
    reply = StartDocPrinter(conn, printer, document)
    if not reply.ok or reply.body["error"]:
        return (reply.body.get("error", ERROR_INVALID_PARAMETER) if reply.ok else reply.status), 0
    job = int(reply.body["job_id"])
    for i in range(0, len(data), WRITE_MAX):
        written = WritePrinter(conn, job, data[i : i + WRITE_MAX])
        if not written.ok or written.body["error"]:
            return (written.body.get("error", 0) if written.ok else written.status), job
    ended = EndDocPrinter(conn, job)
    return (ended.body["error"] if ended.ok else ended.status), job
