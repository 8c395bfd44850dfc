"""``ntctl events System|Application|Security``: the event logs, as ``wevtutil qe <Log>
/f:text`` prints them (``--json``: the same records as JSON).

While the machine runs, the events come from the EventLog service through its port
(``\\RPC Control\\eventlog``, ElfrReadELW): the service owns the logs, as wevtutil asks the
Windows Event Log service over RPC, and what it answers includes everything it has
collected so far. When the machine is down, or EventLog is not running, the log files are
read directly (read-only), as ``wevtutil qe /lf:true`` reads a log file; the tool says so
on stderr. Order: oldest first, as wevtutil's default; ``--newest N`` gives the N newest,
newest first (``/c:N /rd:true``, Get-EventLog -Newest).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nt.evtlog import EventLogStore, Query, StoredEvent, canonical_log
from nt.logquery import parse_time, ts_text
from nt.status import NtStatus, status_name
from ports import eventlog as ev
from ports.client import PortError

ERROR_EVT_CHANNEL_NOT_FOUND = 15007


class EventsError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class Request:
    log: str
    event_id: int | None = None
    source: str | None = None
    since: str | None = None  # ISO or relative (5m), as ``ntctl logs``
    newest: int | None = None

    def query(self) -> Query:
        since = parse_time(self.since)
        return Query(
            event_id=self.event_id,
            source=self.source,
            since=ts_text(since) if since is not None else None,
            newest=self.newest,
        )


def from_files(root: Path, req: Request) -> list[StoredEvent]:
    store = EventLogStore(root, readonly=True)
    try:
        return store.query(req.log, req.query())
    finally:
        store.close()


def _stored(body: dict) -> StoredEvent:
    return StoredEvent(**{**body, "strings": tuple(body["strings"]), "data": bytes(body["data"])})


def _pages(conn: object, req: Request, q: Query) -> Iterator[StoredEvent]:
    filters = {"event_id": q.event_id, "source": q.source, "since": q.since}
    after = 0
    while True:
        reply = ev.ReadEventLog(conn, req.log, {**filters, "after_record": after})  # type: ignore[arg-type]
        if not reply.ok:
            raise PortError(reply.status, "ElfrReadELW")
        records = [_stored(r) for r in reply.body["records"]]
        yield from records
        if not reply.body["more"] or not records:
            return
        after = records[-1].record_number


def from_service(lpc: object, req: Request) -> list[StoredEvent]:
    """Through EventLog's port; PortError when the service is not there."""
    conn = ev.connect(lpc)
    try:
        q = req.query()
        if q.newest is not None and q.newest <= ev.READ_MAX:
            body = {
                "event_id": q.event_id,
                "source": q.source,
                "since": q.since,
                "newest": q.newest,
            }
            reply = ev.ReadEventLog(conn, req.log, body)
            if not reply.ok:
                raise PortError(reply.status, "ElfrReadELW")
            return [_stored(r) for r in reply.body["records"]]
        found = list(_pages(conn, req, q))
        return found[::-1][: q.newest] if q.newest is not None else found
    finally:
        conn.close()


def query(root: Path, req: Request, machine_factory: object) -> tuple[list[StoredEvent], str]:
    """(events, where they came from: "service" or "files")."""
    try:
        req = Request(canonical_log(req.log), req.event_id, req.source, req.since, req.newest)
    except ValueError as exc:
        raise EventsError(f"{exc} ({ERROR_EVT_CHANNEL_NOT_FOUND})", 2) from exc
    try:
        req.query()
    except ValueError as exc:
        raise EventsError(str(exc), 2) from exc
    try:
        m = machine_factory(root)  # type: ignore[operator]
    except Exception:  # MachineError: the machine is down → its files
        return from_files(root, req), "files"
    try:
        return from_service(m.lpc, req), "service"
    except PortError as exc:
        if exc.status not in (
            NtStatus.STATUS_OBJECT_NAME_NOT_FOUND,
            NtStatus.STATUS_PORT_DISCONNECTED,
        ):
            raise EventsError(f"EventLog: {status_name(exc.status)}") from exc
        return from_files(root, req), "files"
    finally:
        m.close()
