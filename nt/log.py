"""Structured logging for every process: one JSON object per line, one file per process.

Why this shape: ``ntctl logs`` merges the per-process files by ``ts``; the dump writer
takes the last events of each process from them; people grep them. So every line carries
the same fixed keys first (``ts boot_id pid image session level event``), NTSTATUS values
are readable (``status`` as hex plus ``status_name``), and a line is written with exactly
one ``write(2)`` on an ``O_APPEND`` descriptor (no buffer to lose or to tear).

Logging must never kill a component (reliability-security §6.8 X12): a critical process
that raised from a full disk would bugcheck the machine. Every failure in the sink or in
the processor chain is swallowed and counted (:func:`stats`).

Per-event cost is kept near the floor measured in perf-floor.md §5: a filtering bound
logger, ``cache_logger_on_first_use`` and a held logger returned by :func:`configure`.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from structlog.contextvars import merge_contextvars
from structlog.processors import format_exc_info
from structlog.typing import FilteringBoundLogger

from nt.logfields import FIXED_KEYS
from nt.status import hexstatus, status_name

# The one logger type: what ``configure`` and ``get_logger`` return, what every component
# that is handed a logger (ports, kernel, smss) takes. In tests, structlog's
# ``capture_logs`` / ``CapturingLogger`` stand in for it.
Logger = FilteringBoundLogger

_LEVEL_NAMES = {"warn": "warning", "exception": "error", "fatal": "critical", "msg": "info"}


class _Stats:
    """Counters for the X12 promise: how many events were written, and how many lost."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.written = 0
        self.dropped = 0
        self.errors = 0
        self.last_error: str | None = None

    def fail(self, exc: BaseException, *, dropped: bool = True) -> None:
        with self.lock:
            self.errors += 1
            if dropped:
                self.dropped += 1
            self.last_error = f"{type(exc).__name__}: {exc}"


_STATS = _Stats()
_HELD: Any = None


def stats() -> dict[str, Any]:
    """Written/dropped/error counts since :func:`configure` (for health checks and tests)."""
    return {
        "written": _STATS.written,
        "dropped": _STATS.dropped,
        "errors": _STATS.errors,
        "last_error": _STATS.last_error,
    }


class SafeSink:
    """The wrapped logger: writes each rendered line with one ``os.write``; never raises.

    An unbuffered O_APPEND descriptor is line buffering with nothing left in a buffer:
    lines from several threads never interleave, and after ENOSPC no stale buffer
    retries forever.
    """

    def __init__(self, path: Path | str | None) -> None:
        self.path = Path(path) if path is not None else None
        self.fd: int | None = None
        if self.path is not None:
            try:
                self.fd = os.open(
                    self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644
                )
            except OSError as exc:
                _STATS.fail(exc, dropped=False)

    def msg(self, message: str) -> None:
        fd = self.fd
        if fd is None:
            _STATS.dropped += 1
            return
        try:
            data = (message + "\n").encode("utf-8", "replace")
            n = os.write(fd, data)
            while n < len(data):  # a short write (disk almost full): finish the line
                data = data[n:]
                n = os.write(fd, data)
            _STATS.written += 1
        except (OSError, ValueError) as exc:
            _STATS.fail(exc)

    debug = info = warning = warn = error = err = critical = fatal = exception = log = msg

    def close(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


_ts_cache: list = [-1, ""]  # [whole second, "YYYY-MM-DDTHH:MM:SS"]


def _timestamp() -> str:
    """UTC ISO-8601 with microseconds and a ``Z``: sorts as text, parses everywhere.

    The date-and-time part is formatted once per second (datetime formatting costs
    about 3 µs, a third of a whole event).
    """
    now = time.time_ns() // 1000
    sec, micro = divmod(now, 1_000_000)
    cache = _ts_cache
    if cache[0] != sec:
        prefix = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        cache[0], cache[1] = sec, prefix
    else:
        prefix = cache[1]
    return f"{prefix}.{micro:06d}Z"


# NTSTATUS-valued fields: logged as ints, formatted here and nowhere else.
STATUS_FIELDS = ("status", "error_status")


def ntstatus_processor(_logger: Any, _method: str, event_dict: dict) -> dict:
    """``status=0xC0000005`` as an int becomes ``"0xC0000005"`` plus ``status_name``
    (``error_status`` likewise, with ``error_status_name``)."""
    for key in STATUS_FIELDS:
        value = event_dict.get(key)
        if type(value) is not bool and isinstance(value, int):
            event_dict[key] = hexstatus(value)
            event_dict.setdefault(f"{key}_name", status_name(value))
    return event_dict


def _json_default(obj: Any) -> Any:
    if isinstance(obj, bytes):
        return obj.hex()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return str(obj)


def _make_renderer(boot_id: str, pid: int, image: str, session: int | None):
    """The last processor: fixed keys first, then the event's own, as one JSON line.

    A caller key that collides with a fixed key (``pid=`` of a child, say) is kept as
    ``arg_<key>`` instead of overwriting who logged the event.
    """
    dumps = json.JSONEncoder(default=_json_default, ensure_ascii=False).encode

    def render(_logger: Any, method: str, event_dict: dict) -> str:
        out = {
            "ts": _timestamp(),
            "boot_id": boot_id,
            "pid": pid,
            "image": image,
            "session": session,
            "level": _LEVEL_NAMES.get(method, method),
            "event": event_dict.pop("event", None),
        }
        for key, value in event_dict.items():
            if key in out:
                key = f"arg_{key}"
            out[key] = value
        try:
            return dumps(out)
        except Exception as exc:  # circular structure, bad key type, ...
            _STATS.fail(exc, dropped=False)
            safe = {k: out[k] for k in FIXED_KEYS}
            safe["log_error"] = f"{type(exc).__name__}: {exc}"
            safe["fields"] = repr(event_dict)[:2000]
            return dumps(safe)

    return render


def _safe_wrapper(level: str | int) -> type:
    """A filtering bound logger whose processor chain can never raise into the caller."""
    base = structlog.make_filtering_bound_logger(level)

    class SafeBoundLogger(base):  # type: ignore[misc, valid-type]
        def _proxy_to_logger(self, method_name: str, event: Any = None, **event_kw: Any) -> Any:
            try:
                return super()._proxy_to_logger(method_name, event, **event_kw)
            except Exception as exc:
                _STATS.fail(exc)
                return None

    return SafeBoundLogger


def configure(
    image: str,
    pid: int,
    session: int | None,
    boot_id: str,
    log_dir: Path,
    level: str = "info",
) -> Logger:
    """Set up structlog for this process and return a held bound logger.

    Writes to ``<log_dir>/<image>.<pid>.jsonl``. Never raises for I/O problems: if the
    directory or file cannot be made, events are counted as dropped instead.
    """
    global _HELD
    log_dir = Path(log_dir)
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _STATS.fail(exc, dropped=False)
    sink = SafeSink(log_dir / f"{image}.{pid}.jsonl")
    old = _HELD
    structlog.configure(
        processors=[
            merge_contextvars,
            ntstatus_processor,
            format_exc_info,
            _make_renderer(boot_id, pid, image, session),
        ],
        wrapper_class=_safe_wrapper(level.lower() if isinstance(level, str) else level),
        context_class=dict,
        logger_factory=lambda *_args: sink,
        cache_logger_on_first_use=True,
    )
    _HELD = structlog.get_logger().bind()
    if old is not None and old._logger is not sink:
        old._logger.close()
    return _HELD


def get_logger() -> Logger:
    """The configured logger (held, so cheap); a lazy structlog proxy before configure."""
    return _HELD if _HELD is not None else structlog.get_logger()


def update_latest(log_root: Path, boot_id: str) -> None:
    """Point ``<log_root>/latest`` at ``<boot_id>`` atomically (symlink + rename).

    Readers never see a missing ``latest``: the new link is made beside it and renamed
    over the old one.
    """
    log_root = Path(log_root)
    log_root.mkdir(parents=True, exist_ok=True)
    tmp = log_root / f".latest.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(boot_id, tmp)
    try:
        os.replace(tmp, log_root / "latest")
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fd = os.open(log_root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
