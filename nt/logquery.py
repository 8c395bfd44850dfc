"""Reading the per-process JSON-lines logs: filter, merge, tail, follow, pick a boot.

The writer (``nt/log.py``) keeps one file per process, ``<image>.<pid>.jsonl``, each in
time order, with ``ts`` in a fixed UTC format that sorts as text. So merging is a heap
merge over files, and time filters compare strings, with no date parsing per line.
Lines that are not JSON objects (a torn tail after a kill, a stray print) are skipped.
"""

from __future__ import annotations

import heapq
import json
import os
import re
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatch, fnmatchcase
from pathlib import Path

LEVELS = ("debug", "info", "warning", "error", "critical")
_LEVEL_RANK = {name: i for i, name in enumerate(LEVELS)}
_LEVEL_RANK.update({"warn": 2, "fatal": 4, "exception": 3})

TimeSpec = str | datetime | None


# --- time parsing ----------------------------------------------------------------------

_REL = re.compile(r"^-?\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h|d|w)?\s*(?:ago)?$", re.I)
_UNIT = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(value: TimeSpec, now: datetime | None = None) -> datetime | None:
    """An aware UTC datetime from ``"5m"``, ``"30s"``, ``"1h ago"``, ``"now"``, ISO text.

    Relative forms count back from ``now``. ISO text without a zone is local time (what a
    person types); ``Z`` or an offset is honoured. ``HH:MM[:SS]`` means today, local.
    """
    if value is None or isinstance(value, datetime):
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.astimezone()
        return value.astimezone(UTC) if value is not None else None
    text = value.strip()
    now = now or datetime.now(UTC)
    if text.lower() == "now":
        return now
    m = _REL.match(text)
    if m:
        unit = (m.group(2) or "s").lower()
        return now - timedelta(seconds=float(m.group(1)) * _UNIT[unit])
    if re.fullmatch(r"\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?", text):
        local = now.astimezone()
        text = f"{local.date().isoformat()}T{text}"
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise ValueError(f"cannot parse time {value!r} (try 5m, 30s, 1h or ISO 8601)") from None
    if dt.tzinfo is None:
        dt = dt.astimezone()
    return dt.astimezone(UTC)


def ts_text(dt: datetime) -> str:
    """The log's own ``ts`` format for ``dt`` (for string comparison)."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- files -----------------------------------------------------------------------------


def split_log_name(path: Path) -> tuple[str, int] | None:
    """(image, pid) from ``csrss.exe.1234.jsonl``; None for other files."""
    name = path.name
    if not name.endswith(".jsonl"):
        return None
    stem, _, pid = name[: -len(".jsonl")].rpartition(".")
    if not stem or not pid.isdigit():
        return None
    return stem, int(pid)


def _image_matches(pattern: str, image: str) -> bool:
    p, i = pattern.lower(), image.lower()
    return p == i or f"{p}.exe" == i or fnmatch(i, p)


def log_files(log_dir: Path, image: str | None = None, pid: int | None = None) -> list[Path]:
    """The log files of one boot, optionally only those of an image (glob ok) or a pid."""
    out = []
    try:
        entries = list(os.scandir(log_dir))
    except FileNotFoundError:
        return []
    for entry in entries:
        parsed = split_log_name(Path(entry.path))
        if parsed is None:
            continue
        if image is not None and not _image_matches(image, parsed[0]):
            continue
        if pid is not None and parsed[1] != pid:
            continue
        out.append(Path(entry.path))
    return sorted(out)


def parse_line(line: bytes | str) -> dict | None:
    """One event from one line, or None for a blank, torn or non-object line."""
    try:
        ev = json.loads(line)
    except ValueError:
        return None
    return ev if isinstance(ev, dict) else None


def _read_events(path: Path) -> Iterator[dict]:
    try:
        with open(path, "rb") as fh:
            for line in fh:
                ev = parse_line(line)
                if ev is not None:
                    yield ev
    except FileNotFoundError:
        return


class Filter:
    """The event predicate shared by :func:`iter_events` and :func:`follow`."""

    def __init__(
        self,
        image: str | None = None,
        pid: int | None = None,
        session: int | None = None,
        level: str | None = None,
        event: str | None = None,
        since: TimeSpec = None,
        until: TimeSpec = None,
        now: datetime | None = None,
    ) -> None:
        self.image, self.pid, self.session, self.event = image, pid, session, event
        if level is not None and level.lower() not in _LEVEL_RANK:
            raise ValueError(f"unknown level {level!r}; one of {', '.join(LEVELS)}")
        self.min_rank = _LEVEL_RANK[level.lower()] if level else None
        s, u = parse_time(since, now), parse_time(until, now)
        self.since = ts_text(s) if s else None
        self.until = ts_text(u) if u else None

    def __call__(self, ev: dict) -> bool:
        if self.pid is not None and ev.get("pid") != self.pid:
            return False
        if self.image is not None and not _image_matches(self.image, str(ev.get("image", ""))):
            return False
        if self.session is not None and ev.get("session") != self.session:
            return False
        if self.min_rank is not None:
            rank = _LEVEL_RANK.get(str(ev.get("level", "")).lower(), 1)
            if rank < self.min_rank:
                return False
        if self.event is not None and not fnmatchcase(str(ev.get("event", "")), self.event):
            return False
        ts = str(ev.get("ts", ""))
        if self.since is not None and ts < self.since:
            return False
        return not (self.until is not None and ts > self.until)


def _merge(streams: Iterable[Iterator[dict]]) -> Iterator[dict]:
    return heapq.merge(*streams, key=lambda ev: str(ev.get("ts", "")))


def iter_events(
    log_dir: Path,
    image: str | None = None,
    pid: int | None = None,
    session: int | None = None,
    level: str | None = None,
    event: str | None = None,
    since: TimeSpec = None,
    until: TimeSpec = None,
) -> Iterator[dict]:
    """Events of one boot, merged across processes in ``ts`` order, filtered.

    ``image`` matches case-insensitively, ``csrss`` also matches ``csrss.exe``, globs work;
    ``level`` is a minimum (``warning`` shows warnings, errors, criticals); ``event`` is a
    glob (``proc.*``); ``since``/``until`` take ISO times or ``5m``-style relative ones.
    """
    keep = Filter(image, pid, session, level, event, since, until)
    streams = [_read_events(p) for p in log_files(log_dir, image=image, pid=pid)]
    return (ev for ev in _merge(streams) if keep(ev))


def _tail_lines(path: Path, n: int, block: int = 8192) -> list[bytes]:
    """The last ``n`` complete lines of a file, reading backwards (dumps need this fast)."""
    if n <= 0:
        return []
    with open(path, "rb") as fh:
        end = fh.seek(0, os.SEEK_END)
        data = b""
        pos = end
        while pos > 0 and data.count(b"\n") <= n:
            step = min(block, pos)
            pos -= step
            fh.seek(pos)
            data = fh.read(step) + data
    lines = data.split(b"\n")
    if pos > 0:
        lines = lines[1:]  # the first piece may be the end of an earlier line
    return [ln for ln in lines if ln.strip()][-n:]


def tail(log_dir: Path, pid: int, n: int = 20) -> list[dict]:
    """The last ``n`` events of process ``pid`` (oldest first); [] when it has no log."""
    events: list[dict] = []
    for path in log_files(log_dir, pid=pid):
        try:
            lines = _tail_lines(path, n)
        except OSError:
            continue
        events.extend(ev for ev in map(parse_line, lines) if ev is not None)
    events.sort(key=lambda ev: str(ev.get("ts", "")))
    return events[-n:] if n > 0 else []


class _Tracker:
    """One growing file: its offset and the partial line not yet terminated."""

    __slots__ = ("fh", "partial")

    def __init__(self, path: Path, from_start: bool) -> None:
        self.fh = open(path, "rb")  # noqa: SIM115 - held open across polls
        if not from_start:
            self.fh.seek(0, os.SEEK_END)
        self.partial = b""

    def read(self) -> list[dict]:
        chunk = self.fh.read()
        if not chunk:
            return []
        data = self.partial + chunk
        *lines, self.partial = data.split(b"\n")
        return [ev for ev in map(parse_line, lines) if ev is not None]


def follow(
    log_dir: Path,
    image: str | None = None,
    pid: int | None = None,
    session: int | None = None,
    level: str | None = None,
    event: str | None = None,
    since: TimeSpec = None,
    until: TimeSpec = None,
    stop_event: threading.Event | None = None,
    *,
    from_start: bool = False,
    poll_interval: float = 0.05,
) -> Iterator[dict]:
    """Yield events as they are written, like ``tail -f`` over every process's file.

    Picks up new files (processes started later) and lines appended to known ones; a
    line is yielded only once its newline is written. Each poll's batch is sorted by
    ``ts``. ``from_start`` first yields what the files already hold. Stops when
    ``stop_event`` is set (checked every ``poll_interval`` seconds).
    """
    keep = Filter(image, pid, session, level, event, since, until)
    stop = stop_event or threading.Event()
    trackers: dict[Path, _Tracker] = {}
    first = True
    try:
        while not stop.is_set():
            for path in log_files(log_dir, image=image, pid=pid):
                if path not in trackers:
                    try:
                        trackers[path] = _Tracker(path, from_start or not first)
                    except FileNotFoundError:
                        continue
            first = False
            batch: list[dict] = []
            for tracker in trackers.values():
                batch.extend(ev for ev in tracker.read() if keep(ev))
            batch.sort(key=lambda ev: str(ev.get("ts", "")))
            yield from batch
            if not batch:
                stop.wait(poll_interval)
    finally:
        for tracker in trackers.values():
            tracker.fh.close()


# --- boots -----------------------------------------------------------------------------


def _boot_start(boot_dir: Path) -> str:
    """The earliest first-line ``ts`` in a boot dir: when that boot began."""
    best = ""
    for path in log_files(boot_dir):
        try:
            with open(path, "rb") as fh:
                ev = parse_line(fh.readline())
        except OSError:
            continue
        ts = str(ev.get("ts", "")) if ev else ""
        if ts and (not best or ts < best):
            best = ts
    if not best:
        try:
            best = ts_text(datetime.fromtimestamp(boot_dir.stat().st_mtime, UTC))
        except OSError:
            best = ""
    return best


def list_boots(log_root: Path) -> list[Path]:
    """Boot log directories under ``log_root``, oldest first (by their first event)."""
    try:
        dirs = [p for p in Path(log_root).iterdir() if p.is_dir() and not p.is_symlink()]
    except FileNotFoundError:
        return []
    return sorted(dirs, key=lambda d: (_boot_start(d), d.name))


def resolve_boot(log_root: Path, boot: str = "latest") -> Path:
    """The log directory of a boot: ``latest`` (or ``0``), a boot id, or ``-N`` back.

    ``latest`` follows the ``latest`` symlink (the newest boot dir when there is none);
    ``-1`` is the boot before it, as ``journalctl -b -1``. Raises FileNotFoundError with
    a readable message when there is no such boot.
    """
    log_root = Path(log_root)
    boots = list_boots(log_root)
    if not boots:
        raise FileNotFoundError(f"no boot logs under {log_root}")
    link = log_root / "latest"
    current = boots[-1]
    if link.is_symlink() or link.is_dir():
        target = link.resolve()
        for b in boots:
            if b.resolve() == target:
                current = b
                break
    text = str(boot).strip()
    if text in ("latest", "0", "current"):
        return current
    if re.fullmatch(r"-\d+", text):
        index = boots.index(current) + int(text)
        if index < 0:
            raise FileNotFoundError(
                f"boot {text}: only {boots.index(current)} boot(s) before the latest"
            )
        return boots[index]
    for b in boots:
        if b.name == text:
            return b
    matches = [b for b in boots if b.name.startswith(text)]
    if len(matches) == 1:
        return matches[0]
    raise FileNotFoundError(f"no boot {text!r} under {log_root}")


def last_events(log_dir: Path, pids: Iterable[int], n: int = 20) -> dict[str, list[dict]]:
    """``{str(pid): last n events}`` for the dump; missing logs give empty lists."""
    return {str(p): tail(log_dir, p, n) for p in pids}
