"""wevtsvc.dll: the Windows Event Log service (EventLog, svchost -k LocalServiceNetworkRestricted).

What it does, in the order Windows does it at start:
1. opens the System, Application and Security logs (``nt/evtlog.py``, durable SQLite);
2. takes this process's own reporters directly (``EVENT_QUEUE.attach``: the queued events
   of this svchost go in first, in order) and serves ``\\RPC Control\\eventlog``
   (ElfrReportEventW for processes that attach a sink, ElfrReadELW for ``ntctl events``);
3. writes 6008 when the previous boot's System log does not end with 6006 (the previous
   shutdown was unexpected), then 6009 (the product and version, from the SOFTWARE hive)
   and 6005 ("The Event log service was started.");
4. collects every component's events: the ``event.report`` lines of this boot's logs are
   replayed from the start (events raised before EventLog ran — the kernel's, smss's, the
   SCM's 7026 — and those of processes already dead) and then followed as they are
   written, each event stored once (de-duplicated by its ``record`` id).
At stop it writes 6006 and closes the logs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from nt.evtlog import LOG_NAMES, EventLogStore, Incoming, Query, StoredEvent, now_text
from nt.evtmsg import (
    EVENT_QUEUE,
    EVENTS,
    SECURITY,
    SYSTEM,
    EventRecord,
    record_from_log,
    report_event,
)
from nt.sctrl import ServiceContext
from nt.status import NtStatus
from nt.svcglobals import (
    SOFTWARE,
    SYSTEM_CCS,
    GlobalsSlot,
    ModelService,
    ServiceError,
    SvchostGlobalData,
    service_main,
)
from nt.win32 import Win32Error as E
from ports import eventlog as ev
from ports.contract import ClientContext, HandlerResult
from processes.svchost.dll import (
    IF_EVENTLOG,
    close_port,
    endpoints,
    publish,
    register_endpoints,
    serve_port,
)

_MARK = b'"event.report"'


def keywords_of(event_id: int) -> str:
    definition = EVENTS.get(event_id)
    return definition.keywords if definition is not None else "Classic"


@dataclass
class _Tail:
    offset: int = 0
    partial: bytes = b""


@dataclass
class LogFollower:
    """``event.report`` lines of one boot's log directory: everything already written on
    the first ``read``, then what was appended since. Files are opened per read and only
    when they grew (hundreds of processes must not hold hundreds of descriptors here)."""

    log_dir: Path
    boot_id: str
    tails: dict[str, _Tail] = field(default_factory=dict)

    def read(self) -> list[Incoming]:
        out: list[Incoming] = []
        try:
            entries = [e for e in os.scandir(self.log_dir) if e.name.endswith(".jsonl")]
        except FileNotFoundError:
            return out
        for entry in entries:
            tail = self.tails.setdefault(entry.name, _Tail())
            try:
                size = entry.stat().st_size
                if size <= tail.offset:
                    continue
                with open(entry.path, "rb") as fh:
                    fh.seek(tail.offset)
                    chunk = fh.read(size - tail.offset)
            except OSError:
                continue
            tail.offset += len(chunk)
            *lines, tail.partial = (tail.partial + chunk).split(b"\n")
            out.extend(filter(None, (self._incoming(line) for line in lines if _MARK in line)))
        out.sort(key=lambda i: i.time_created)
        return out

    def _incoming(self, line: bytes) -> Incoming | None:
        try:
            data = json.loads(line)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        record = record_from_log(data)
        if record is None:
            return None
        return Incoming(
            record,
            str(data.get("ts") or now_text()),
            int(data.get("pid") or 0),
            str(data.get("image") or ""),
            str(data.get("boot_id") or self.boot_id),
            keywords_of(record.event_id),
        )


def _size(event: StoredEvent) -> int:
    """Roughly what a record costs in a reply (its texts dominate)."""
    return 512 + len(event.message) + sum(len(x) for x in event.strings) + len(event.data)


def _stored_body(event: StoredEvent) -> dict[str, object]:
    return {
        "record_number": event.record_number,
        "log": event.log,
        "boot_id": event.boot_id,
        "record": event.record,
        "time_created": event.time_created,
        "event_id": event.event_id,
        "source": event.source,
        "level": event.level,
        "keywords": event.keywords,
        "strings": list(event.strings),
        "message": event.message,
        "computer": event.computer,
        "pid": event.pid,
        "image": event.image,
        "data": event.data,
    }


class EventLogService(ModelService):
    divergences: ClassVar[tuple[str, ...]] = (
        "logs kept as SQLite (winevt\\Logs\\<Log>.sqlite), not EVTX",
        "events collected by following the boot's event.report log lines",
    )
    interval: ClassVar[float | None] = 0.2  # how often the boot's logs are followed
    start_wait_hint_ms: ClassVar[int] = 10000  # the replay of a long boot's logs

    def __init__(self, ctx: ServiceContext, argv: Sequence[str], g: SvchostGlobalData) -> None:
        super().__init__(ctx, argv, g)
        self.store: EventLogStore | None = None
        self.follower = LogFollower(g.root / "logs" / g.boot_id, g.boot_id)
        self.port: object | None = None

    # -- start / poll / stop ---------------------------------------------------------------
    def on_start(self) -> None:
        computer = str(
            self.g.value(f"{SYSTEM_CCS}\\Control\\ComputerName\\ComputerName", "ComputerName", "")
        )
        try:
            self.store = EventLogStore(self.g.root, computer)
        except OSError as exc:
            raise ServiceError(E.ERROR_PATH_NOT_FOUND, str(exc)) from exc
        self.pending()
        previous = self.store.last(SYSTEM)
        EVENT_QUEUE.attach(self._local_sink)
        self.port = serve_port(self.g, ev.EVENTLOG_PORT_NAME, ev.EVENTLOG_PORT, self.handlers())
        if previous is not None and self._unexpected_end(previous):
            self._report_unexpected_shutdown(previous)
        report_event(self.log, 6009, self._product_strings())
        report_event(self.log, 6005)
        self.poll()  # the replay: everything this boot logged before EventLog ran
        publish(self, self._endpoints())

    def poll(self) -> None:
        assert self.store is not None
        batch = self.follower.read()
        if batch:
            written = self.store.write(batch)
            if written:
                self.log.debug("evt.collected", read=len(batch), written=len(written))

    def on_stop(self, control: int) -> None:
        report_event(self.log, 6006)
        self.poll()
        EVENT_QUEUE.detach()
        register_endpoints(self.g, self.ctx.name, self._endpoints(), unregister=True)
        close_port(self.g, self.port, ev.EVENTLOG_PORT_NAME)
        if self.store is not None:
            self.store.close()

    # -- what goes in ----------------------------------------------------------------------
    def _local_sink(self, record: EventRecord) -> bool:
        """This process's own reports (its services, 6005/6006) go straight in."""
        if self.store is None:
            return False
        incoming = Incoming(
            record,
            now_text(),
            os.getpid(),
            self.g.image,
            self.g.boot_id,
            keywords_of(record.event_id),
        )
        self.store.write([incoming])
        return True

    def _product_strings(self) -> list[str]:
        """6009's insertion strings: "10.00." "19045" "" "Multiprocessor Free"."""
        key = f"{SOFTWARE}\\Microsoft\\Windows NT\\CurrentVersion"
        major = self.g.value(key, "CurrentMajorVersionNumber")
        minor = self.g.value(key, "CurrentMinorVersionNumber", 0)
        version = (
            f"{major}.{int(minor):02d}."
            if major is not None
            else f"{self.g.value(key, 'CurrentVersion', '')}."
        )
        build = str(self.g.value(key, "CurrentBuildNumber", ""))
        csd = str(self.g.value(key, "CSDVersion", ""))
        return [version, build, csd, str(self.g.value(key, "CurrentType", ""))]

    def _unexpected_end(self, last: StoredEvent) -> bool:
        """The previous boot ended without EventLog's 6006 and without the kernel's
        orderly ``shutdown.complete`` (Windows keeps a clean-shutdown mark the same way:
        written at the end of an orderly shutdown, missing after a crash or power loss)."""
        if last.boot_id == self.g.boot_id or last.event_id == 6006:
            return False
        try:
            kernel_logs = [
                p
                for p in (self.g.root / "logs" / last.boot_id).iterdir()
                if p.name.startswith("System.")
            ]
        except OSError:
            return True
        for path in kernel_logs:
            try:
                if b'"shutdown.complete"' in path.read_bytes():
                    return False
            except OSError:
                continue
        return True

    def _report_unexpected_shutdown(self, last: StoredEvent) -> None:
        """6008 with the time of the previous boot's last event (Windows keeps a
        last-alive stamp; the last logged event is the model's)."""
        try:
            when = datetime.fromisoformat(last.time_created.replace("Z", "+00:00"))
        except ValueError:
            when = datetime.now(UTC)
        local = when.astimezone()
        clock = local.strftime("%I:%M:%S %p").lstrip("0")
        date = f"{local.month}/{local.day}/{local.year}"
        report_event(self.log, 6008, [clock, date])

    def _endpoints(self) -> list[dict]:
        return endpoints((IF_EVENTLOG, "ncalrpc:[eventlog]", "Event log TCPIP"))

    # -- the port --------------------------------------------------------------------------
    def handlers(self) -> dict[int, object]:
        return {
            ev.ElfrNumberOfRecords: self.ElfrNumberOfRecords,
            ev.ElfrReadELW: self.ElfrReadELW,
            ev.ElfrReportEventW: self.ElfrReportEventW,
        }

    def _log_name(self, name: str) -> str | None:
        return next((log for log in LOG_NAMES if log.lower() == name.lower()), None)

    def _may_read(self, log: str, client: ClientContext) -> bool:
        """The Security log's channel access: SYSTEM, Administrators, Event Log Readers."""
        if log != SECURITY:
            return True
        token = client.token or {}
        return token.get("sid") == "S-1-5-18" or bool(
            {"S-1-5-32-544", "S-1-5-32-573"} & set(token.get("groups", []))
        )

    def ElfrNumberOfRecords(self, msg: dict, client: ClientContext) -> HandlerResult:
        log = self._log_name(msg["log"])
        if log is None or self.store is None:
            return ev.NO_SUCH_LOG
        if not self._may_read(log, client):
            return NtStatus.STATUS_ACCESS_DENIED
        return {"count": self.store.count(log)}

    def ElfrReadELW(self, msg: dict, client: ClientContext) -> HandlerResult:
        log = self._log_name(msg["log"])
        if log is None or self.store is None:
            return ev.NO_SUCH_LOG
        if not self._may_read(log, client):
            return NtStatus.STATUS_ACCESS_DENIED
        newest = msg.get("newest")
        q = Query(
            event_id=msg.get("event_id"),
            source=msg.get("source"),
            since=msg.get("since"),
            after_record=msg["after_record"],
            newest=newest,
            limit=None if newest is not None else ev.READ_MAX + 1,
        )
        found = self.store.query(log, q)
        records, size = [], 0
        for event in found[: ev.READ_MAX]:
            size += _size(event)
            if records and size > ev.READ_BYTES:  # the rest in the next call
                break
            records.append(_stored_body(event))
        more = newest is None and len(found) > len(records)
        return {"records": records, "more": more}

    def ElfrReportEventW(self, msg: dict, client: ClientContext) -> HandlerResult:
        assert self.store is not None
        body = msg["event"]
        record = EventRecord(
            event_id=body["event_id"],
            log=body["log"],
            source=body["source"],
            level=body["level"],
            strings=tuple(body["strings"]),
            message=body["message"],
            record=body["record"],
            data=body["data"],
        )
        incoming = Incoming(
            record,
            body["time_created"] or now_text(),
            client.pid,
            client.image,
            self.g.boot_id,
            keywords_of(record.event_id),
        )
        written = self.store.write([incoming])
        return {"record_number": written[0][1] if written else 0, "duplicate": not written}


_SLOT = GlobalsSlot()
SvchostPushServiceGlobals = _SLOT.push
ServiceMain = service_main(EventLogService, _SLOT)
