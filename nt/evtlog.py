"""The event logs on disk: System, Application and Security, one SQLite file each.

``<root>/C/Windows/System32/winevt/Logs/<Log>.sqlite`` stands for Windows'
``%SystemRoot%\\System32\\winevt\\Logs\\<Log>.evtx`` (the EVTX binary format is not worth
writing for a model; a divergence the README lists). The EventLog service
(``processes/svchost/dll/wevtsvc.py``) is the only writer; ``ntctl events`` reads through
the service's port while it runs and opens these files read-only when the machine is down,
as ``wevtutil qe /lf:true <file>`` reads an exported log.

Durability: WAL with ``synchronous=FULL``, one transaction per batch, so an event the
service acknowledged survives a ``kill -9`` (the hive engine's rule). De-duplication: an
event's key is (boot id, ``record``) where ``record`` is the reporter's ``"<pid>:<seq>"``
(``nt/evtmsg.py``); it is a UNIQUE index, so a record that arrives by two paths (the
replayed log line and the ReportEvent call) is stored once, across restarts of the service.
``RecordNumber`` is the table's rowid: it grows by one per event, as EventRecordID does.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from nt.evtmsg import APPLICATION, LEVEL_NAMES, SECURITY, SYSTEM, EventRecord

LOG_NAMES = (SYSTEM, APPLICATION, SECURITY)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    record_number INTEGER PRIMARY KEY AUTOINCREMENT,
    boot_id TEXT NOT NULL,
    record TEXT NOT NULL,
    time_created TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    source TEXT NOT NULL,
    level INTEGER NOT NULL,
    keywords TEXT NOT NULL,
    strings TEXT NOT NULL,
    message TEXT NOT NULL,
    computer TEXT NOT NULL,
    pid INTEGER NOT NULL,
    image TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS events_key ON events (boot_id, record);
CREATE INDEX IF NOT EXISTS events_id ON events (event_id);
"""
_COLUMNS = (
    "record_number, boot_id, record, time_created, event_id, source, level, keywords, "
    "strings, message, computer, pid, image, data"
)


def logs_dir(root: Path) -> Path:
    return Path(root) / "C" / "Windows" / "System32" / "winevt" / "Logs"


def log_path(root: Path, log: str) -> Path:
    return logs_dir(root) / f"{canonical_log(log)}.sqlite"


def canonical_log(name: str) -> str:
    """``system`` → ``System``; an unknown name raises ValueError (wevtutil: 15007)."""
    for log in LOG_NAMES:
        if log.lower() == name.lower():
            return log
    raise ValueError(f"The specified channel could not be found: {name}")


def now_text() -> str:
    """An event's TimeCreated, in the logs' ``ts`` format (UTC, microseconds)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class StoredEvent:
    """One event as the log holds it (the fields ``wevtutil qe /f:text`` prints)."""

    record_number: int
    log: str
    boot_id: str
    record: str
    time_created: str
    event_id: int
    source: str
    level: int
    keywords: str
    strings: tuple[str, ...]
    message: str
    computer: str
    pid: int
    image: str
    data: bytes = b""

    def as_json(self) -> dict[str, object]:
        out = asdict(self)
        out["strings"] = list(self.strings)
        out["level_name"] = LEVEL_NAMES.get(self.level, str(self.level))
        out["data"] = self.data.hex()
        return out


@dataclass(frozen=True)
class Query:
    """What ``ntctl events`` asks for; ``newest`` keeps the last N, newest first."""

    event_id: int | None = None
    source: str | None = None
    since: str | None = None  # a ``ts``-format string; compared as text
    after_record: int = 0
    newest: int | None = None
    limit: int | None = None

    def where(self) -> tuple[str, list[object]]:
        clauses, args = ["record_number > ?"], [self.after_record]
        if self.event_id is not None:
            clauses.append("event_id = ?")
            args.append(self.event_id)
        if self.source is not None:
            clauses.append("source = ? COLLATE NOCASE")
            args.append(self.source)
        if self.since is not None:
            clauses.append("time_created >= ?")
            args.append(self.since)
        return " AND ".join(clauses), args


def _row(log: str, row: Sequence[object]) -> StoredEvent:
    (number, boot_id, record, ts, event_id, source, level, keywords) = row[:8]
    strings, message, computer, pid, image, data = row[8:]
    return StoredEvent(
        int(str(number)),
        log,
        str(boot_id),
        str(record),
        str(ts),
        int(str(event_id)),
        str(source),
        int(str(level)),
        str(keywords),
        tuple(json.loads(str(strings))),
        str(message),
        str(computer),
        int(str(pid)),
        str(image),
        bytes(data) if isinstance(data, bytes | bytearray | memoryview) else b"",
    )


@dataclass(frozen=True)
class Incoming:
    """An event on its way into a log: the record and where/when it was raised."""

    record: EventRecord
    time_created: str
    pid: int
    image: str
    boot_id: str
    keywords: str = "Classic"


class EventLogStore:
    """The three logs, opened for writing (the EventLog service) or reading (ntctl)."""

    def __init__(self, root: Path, computer: str = "", readonly: bool = False) -> None:
        self.root = Path(root)
        self.computer = computer
        self.readonly = readonly
        self.lock = threading.Lock()
        self._db: dict[str, sqlite3.Connection] = {}
        if not readonly:
            logs_dir(self.root).mkdir(parents=True, exist_ok=True)

    def _conn(self, log: str) -> sqlite3.Connection | None:
        log = canonical_log(log)
        db = self._db.get(log)
        if db is not None:
            return db
        path = log_path(self.root, log)
        if self.readonly:
            if not path.exists():
                return None
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        else:
            db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
        self._db[log] = db
        return db

    def write(self, events: Iterable[Incoming]) -> list[tuple[str, int]]:
        """Store each event not stored before; returns (log, RecordNumber) of the new ones.
        One transaction per log per call: the batch is durable when this returns."""
        by_log: dict[str, list[Incoming]] = {}
        for ev in events:
            try:
                log = canonical_log(ev.record.log)
            except ValueError:
                log = APPLICATION  # an unknown channel's event lands in Application
            by_log.setdefault(log, []).append(ev)
        written: list[tuple[str, int]] = []
        with self.lock:
            for log, batch in by_log.items():
                db = self._conn(log)
                assert db is not None
                db.execute("BEGIN IMMEDIATE")
                try:
                    for ev in batch:
                        written.extend((log, n) for n in self._insert(db, ev))
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
        return written

    def _insert(self, db: sqlite3.Connection, ev: Incoming) -> list[int]:
        r = ev.record
        cur = db.execute(
            "INSERT OR IGNORE INTO events (boot_id, record, time_created, event_id, source, "
            "level, keywords, strings, message, computer, pid, image, data) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                ev.boot_id,
                r.record,
                ev.time_created,
                r.event_id,
                r.source,
                r.level,
                ev.keywords,
                json.dumps(list(r.strings)),
                r.message,
                self.computer,
                ev.pid,
                ev.image,
                r.data,
            ),
        )
        return [int(cur.lastrowid or 0)] if cur.rowcount == 1 else []

    def query(self, log: str, q: Query = Query()) -> list[StoredEvent]:
        log = canonical_log(log)
        where, args = q.where()
        order = "DESC" if q.newest is not None else "ASC"
        limit = q.newest if q.newest is not None else q.limit
        sql = f"SELECT {_COLUMNS} FROM events WHERE {where} ORDER BY record_number {order}"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self.lock:
            db = self._conn(log)
            if db is None:
                return []
            return [_row(log, row) for row in db.execute(sql, args)]

    def count(self, log: str) -> int:
        with self.lock:
            db = self._conn(log)
            return 0 if db is None else int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def last(self, log: str) -> StoredEvent | None:
        found = self.query(log, Query(newest=1))
        return found[0] if found else None

    def clear(self, log: str) -> int:
        """ElfrClearELFW without a backup: every record goes; numbering goes on."""
        with self.lock:
            db = self._conn(log)
            assert db is not None
            return db.execute("DELETE FROM events").rowcount

    def close(self) -> None:
        with self.lock:
            for db in self._db.values():
                db.close()
            self._db.clear()


# --- wevtutil qe /f:text ---------------------------------------------------------------


def _date(ts: str) -> str:
    """``2026-12-02T06:53:31.123456Z`` → ``2026-12-02T06:53:31.123`` (wevtutil: local
    time, milliseconds; the model prints UTC, which its logs use throughout)."""
    return ts[:23] if len(ts) >= 23 else ts.rstrip("Z")


def format_text(events: Sequence[StoredEvent]) -> str:
    """The events as ``wevtutil qe <Log> /f:text`` prints them."""
    lines: list[str] = []
    for i, ev in enumerate(events):
        lines += [
            f"Event[{i}]:",
            f"  Log Name: {ev.log}",
            f"  Source: {ev.source}",
            f"  Date: {_date(ev.time_created)}",
            f"  Event ID: {ev.event_id}",
            "  Task: N/A",
            f"  Level: {LEVEL_NAMES.get(ev.level, str(ev.level))}",
            "  Opcode: N/A" if ev.log != SECURITY else "  Opcode: Info",
            f"  Keyword: {ev.keywords}",
            "  User: N/A",
            "  User Name: N/A",
            f"  Computer: {ev.computer}",
            "  Description: ",
            ev.message,
        ]
    return "\n".join(lines) + ("\n" if lines else "")
