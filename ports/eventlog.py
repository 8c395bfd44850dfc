"""The EventLog service's port: MS-EVEN's eventlog interface, reduced to what the model uses.

``\\RPC Control\\eventlog`` stands for the ``ncalrpc:[eventlog]`` endpoint of interface
82273fdc-e32a-18c3-3f78-827929dc23ea (MS-EVEN), which wevtsvc.dll registers with the
endpoint mapper. API numbers are MS-EVEN opnums and names its server routines. The
divergence: no context handles (ElfrOpenELW / ElfrRegisterEventSourceW); each call names
its log, since the model has no per-handle read position to keep — ``ElfrReadELW`` takes a
record number to continue after, as EVENTLOG_SEEK_READ does.
"""

from __future__ import annotations

from collections.abc import Mapping

from nt.evtlog import now_text
from nt.evtmsg import EventRecord, EventSink
from nt.status import NtStatus
from ports.client import Connection, call_api
from ports.contract import Reply
from ports.schema import U64, Api, Bin, Bool, Int, List, Map, Protocol, Str

EVENTLOG_PORT_NAME = "\\RPC Control\\eventlog"
EVENTLOG_INTERFACE = "82273fdc-e32a-18c3-3f78-827929dc23ea"
EVENTLOG_VERSION = "0.0"
MAX_MESSAGE_LENGTH = 512 * 1024
READ_MAX = 256  # records per ElfrReadELW reply (MS-EVEN: 0x7FFFF-byte buffers)
READ_BYTES = 384 * 1024  # and about this many bytes of them, under the message length
# A log name that is not System, Application or Security.
NO_SUCH_LOG = NtStatus.STATUS_OBJECT_NAME_NOT_FOUND

ElfrNumberOfRecords = 4
ElfrReadELW = 10
ElfrReportEventW = 11

LOG = Str(max_len=256)
EVENT = {  # one record as reported: nt.evtmsg.EventRecord, with when and who
    "event_id": Int(lo=0, hi=0xFFFF),
    "log": LOG,
    "source": Str(max_len=256),
    "level": Int(lo=0, hi=5),
    "strings": List(item=Str(max_len=32766), max_len=256),
    "message": Str(max_len=65536),
    "record": Str(max_len=64),
    "data": Bin(max_len=61440),
    "time_created": Str(max_len=40),
}
STORED = {  # one record as the log holds it (nt.evtlog.StoredEvent)
    "record_number": U64(),
    "log": LOG,
    "boot_id": Str(max_len=64),
    "record": Str(max_len=64),
    "time_created": Str(max_len=40),
    "event_id": Int(lo=0, hi=0xFFFF),
    "source": Str(max_len=256),
    "level": Int(lo=0, hi=5),
    "keywords": Str(max_len=64),
    "strings": List(item=Str(max_len=32766), max_len=256),
    "message": Str(max_len=65536),
    "computer": Str(max_len=256),
    "pid": U64(),
    "image": Str(max_len=256),
    "data": Bin(max_len=61440),
}

EVENTLOG_APIS = (
    Api(ElfrNumberOfRecords, "ElfrNumberOfRecords", {"log": LOG}, {"count": U64()}),
    Api(
        ElfrReadELW,
        "ElfrReadELW",
        {
            "log": LOG,
            "after_record": U64(optional=True, default=0),
            "event_id": Int(lo=0, hi=0xFFFF, optional=True),
            "source": Str(max_len=256, optional=True),
            "since": Str(max_len=40, optional=True),
            "newest": Int(lo=1, hi=READ_MAX, optional=True),
        },
        {"records": List(item=Map(fields=STORED), max_len=READ_MAX), "more": Bool()},
        "Records after ``after_record`` in order (or the ``newest`` N, newest first); "
        "``more`` says another call continues.",
    ),
    Api(
        ElfrReportEventW,
        "ElfrReportEventW",
        {"event": Map(fields=EVENT)},
        {"record_number": U64(), "duplicate": Bool()},
        "Write one event (ReportEvent). A record already written (same boot, same "
        "``record``) is acknowledged as a duplicate and not written again.",
    ),
)

EVENTLOG_PORT = Protocol(
    title="\\RPC Control\\eventlog (EventLog service, MS-EVEN)",
    max_message_length=MAX_MESSAGE_LENGTH,
    apis=EVENTLOG_APIS,
    connect_info={},
    doc="Served by wevtsvc.dll in svchost.exe -k LocalServiceNetworkRestricted.",
    statuses=(
        (NO_SUCH_LOG, "the log is not System, Application or Security"),
        (
            NtStatus.STATUS_ACCESS_DENIED,
            "reading Security without SYSTEM, Administrators or Event Log Readers",
        ),
    ),
)
_API = EVENTLOG_PORT.by_name()


def event_body(record: EventRecord, time_created: str) -> dict[str, object]:
    return {
        "event_id": record.event_id,
        "log": record.log,
        "source": record.source,
        "level": record.level,
        "strings": list(record.strings),
        "message": record.message,
        "record": record.record,
        "data": record.data,
        "time_created": time_created,
    }


def connect(lpc: object) -> Connection:
    """Connect to EventLog (``lpc`` is the caller's ``LpcRuntime``)."""
    return lpc.connect_port(EVENTLOG_PORT_NAME, {})  # type: ignore[attr-defined]


def ReportEvent(conn: Connection, record: EventRecord, time_created: str) -> Reply:
    return call_api(conn, _API["ElfrReportEventW"], {"event": event_body(record, time_created)})


def ReadEventLog(conn: Connection, log: str, query: Mapping[str, object] | None = None) -> Reply:
    body = {"log": log, **{k: v for k, v in (query or {}).items() if v is not None}}
    return call_api(conn, _API["ElfrReadELW"], body)


def GetNumberOfEventLogRecords(conn: Connection, log: str) -> Reply:
    return call_api(conn, _API["ElfrNumberOfRecords"], {"log": log})


def make_sink(conn: Connection) -> EventSink:
    """An ``nt.evtmsg.EventSink`` over this connection (``EVENT_QUEUE.attach(sink)``)."""

    def sink(record: EventRecord) -> bool:
        return ReportEvent(conn, record, now_text()).ok

    return sink
