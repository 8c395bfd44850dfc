"""Crash dumps: ``Minidump/MiniMMDDYY-NN.json``, one per bugcheck, never half-written.

A dump is what ``ntctl analyze`` reads after the machine is gone, so it carries every
fact needed to explain the crash without the running system: the code and parameters
with their meanings, the decoded strings behind the fake pointers, the culprit and how
it died, who noticed, the process and port tables, the last log events of every
process, later deaths (consequences, never a second bugcheck) and CrashControl.

Record schema (``schema`` = 1), a JSON object:

=====================  ====================================================================
``schema``             int, this layout's version
``dump_type``          ``"minidump"``
``dump_file``          the file name it was written as (set by :func:`write_dump`)
``bugcheck_code``      int (0xEF, 0xC000021A, ...)
``bugcheck_name``      str (``CRITICAL_PROCESS_DIED``)
``parameters``         [int, int, int, int], 64-bit values
``parameter_meanings`` [str x4], the table meaning of each parameter
``decoded``            dict: ``process_name pid exit_status exit_status_name signal
                       signal_name`` and ``p1_text``..``p4_text`` for string parameters,
                       ``message`` for the text a STOP screen shows
``profile``            ``win10`` / ``win7`` / ...
``boot_id``            str
``uptime_ms``          int, since the kernel started
``timestamp``          UTC ISO-8601, ``...Z``
``faulting_process``   {pid, image, command_line, session, exit_status, exit_status_name,
                       signal, signal_name, critical} or null (0x6F, 0xE2 ...)
``detected_by``        {pid, image}: the kernel or smss
``process_table``      [process records as the kernel keeps them]
``port_table``         [port records]
``consequences``       [{ts, pid, image, exit_status, exit_status_name, signal, ...}]
``last_events``        {"<pid>": [last N log events of that process]}
``config``             CrashControl values (CrashDumpEnabled, AutoReboot, LogEvent, ...)
=====================  ====================================================================
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal as _signal
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nt import bugcodes
from nt.status import hexstatus, status_name

DUMP_SCHEMA_VERSION = 1

# HKLM\SYSTEM\CurrentControlSet\Control\CrashControl defaults (reliability-security §1.3).
DEFAULT_CRASH_CONTROL: dict[str, Any] = {
    "CrashDumpEnabled": 7,
    "AutoReboot": 1,
    "LogEvent": 1,
    "Overwrite": 1,
    "SendAlert": 1,
    "DumpFile": r"%SystemRoot%\MEMORY.DMP",
    "MinidumpDir": r"%SystemRoot%\Minidump",
}

_NAME_RE = re.compile(r"^Mini(\d{2})(\d{2})(\d{2})-(\d{2})\.json$")


# --- facts about a process ------------------------------------------------------------


def exit_status_name(value: int | None) -> str | None:
    """The NTSTATUS name of an exit status; plain hex for small exit codes.

    1..255 are TerminateProcess / exit() codes, not statuses: calling 1 "STATUS_WAIT_1"
    would mislead, so those stay ``0x00000001``.
    """
    if value is None:
        return None
    if 0 < (value & 0xFFFFFFFF) <= 0xFF:
        return hexstatus(value)
    return status_name(value)


def signal_name(sig: int | None) -> str | None:
    """``SIGKILL`` for 9."""
    if sig is None:
        return None
    try:
        return _signal.Signals(sig).name
    except ValueError:
        return f"SIG{sig}"


def process_info(
    pid: int,
    image: str,
    *,
    command_line: str = "",
    session: int | None = None,
    exit_status: int | None = None,
    signal: int | None = None,
    critical: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """A ``faulting_process`` / consequence record with the derived names filled in."""
    rec: dict[str, Any] = {
        "pid": pid,
        "image": image,
        "command_line": command_line,
        "session": session,
        "exit_status": exit_status,
        "exit_status_name": exit_status_name(exit_status),
        "signal": signal,
        "signal_name": signal_name(signal),
        "critical": critical,
    }
    rec.update(extra)
    return rec


def _normalize_process(proc: Mapping[str, Any]) -> dict[str, Any]:
    rec = dict(proc)
    if rec.get("exit_status") is not None and not rec.get("exit_status_name"):
        rec["exit_status_name"] = exit_status_name(rec["exit_status"])
    if rec.get("signal") is not None and not rec.get("signal_name"):
        rec["signal_name"] = signal_name(rec["signal"])
    return rec


def how_died(proc: Mapping[str, Any] | None) -> str:
    """``killed by SIGKILL`` / ``exited with 0xC0000005 STATUS_ACCESS_VIOLATION``."""
    if not proc:
        return "unknown"
    if proc.get("terminated_by") and not proc.get("signal"):
        status = proc.get("exit_status")
        shown = f" with {hexstatus(status)}" if status is not None else ""
        return f"NtTerminateProcess by pid {proc['terminated_by']}{shown}"
    sig = proc.get("signal")
    status = proc.get("exit_status")
    if sig:
        text = f"killed by {proc.get('signal_name') or signal_name(sig)}"
        if status is not None:
            text += f" (NT exit status {hexstatus(status)})"
        return text
    if status is None:
        return "ended (exit status unknown)"
    name = proc.get("exit_status_name") or exit_status_name(status)
    if name == hexstatus(status):
        return f"exited with {hexstatus(status)}"
    return f"exited with {hexstatus(status)} {name}"


# --- the record -----------------------------------------------------------------------


def _utc_text(ts: datetime | str | None) -> str:
    if isinstance(ts, str):
        return ts
    ts = ts or datetime.now(UTC)
    if ts.tzinfo is None:
        ts = ts.astimezone()
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_record(
    code: int,
    parameters: Sequence[int],
    *,
    profile: str,
    boot_id: str,
    uptime_ms: int,
    decoded: Mapping[str, Any] | None = None,
    faulting_process: Mapping[str, Any] | None = None,
    detected_by: Mapping[str, Any] | None = None,
    process_table: Iterable[Mapping[str, Any]] = (),
    port_table: Iterable[Mapping[str, Any]] = (),
    consequences: Iterable[Mapping[str, Any]] = (),
    last_events: Mapping[Any, list] | None = None,
    config: Mapping[str, Any] | None = None,
    timestamp: datetime | str | None = None,
) -> dict[str, Any]:
    """A complete dump record (module docstring) from what KeBugCheckEx knows.

    Fills the name and parameter meanings from the bugcheck table, the culprit's facts
    into ``decoded``, status and signal names, and CrashControl defaults; pads the
    parameters to four 64-bit values.
    """
    info = bugcodes.describe(code)
    params = [int(p) & 0xFFFFFFFFFFFFFFFF for p in list(parameters)[:4]]
    params += [0] * (4 - len(params))
    fault = _normalize_process(faulting_process) if faulting_process else None
    dec: dict[str, Any] = {}
    if fault:
        dec.update(
            process_name=fault.get("image"),
            pid=fault.get("pid"),
            exit_status=fault.get("exit_status"),
            exit_status_name=fault.get("exit_status_name"),
            signal=fault.get("signal"),
            signal_name=fault.get("signal_name"),
        )
    dec.update(decoded or {})
    if (
        "message" not in dec
        and dec.get("p4_text")
        and info.code == bugcodes.BugCode.CRITICAL_OBJECT_TERMINATION
    ):
        dec["message"] = dec["p4_text"]
    return {
        "schema": DUMP_SCHEMA_VERSION,
        "dump_type": "minidump",
        "bugcheck_code": info.code,
        "bugcheck_name": info.name,
        "parameters": params,
        "parameter_meanings": info.parameter_meanings,
        "decoded": dec,
        "profile": profile,
        "boot_id": boot_id,
        "uptime_ms": int(uptime_ms),
        "timestamp": _utc_text(timestamp),
        "faulting_process": fault,
        "detected_by": dict(detected_by) if detected_by else None,
        "process_table": [_normalize_process(p) for p in process_table],
        "port_table": [dict(p) for p in port_table],
        "consequences": [_normalize_process(c) for c in consequences],
        "last_events": {str(k): list(v) for k, v in (last_events or {}).items()},
        "config": {**DEFAULT_CRASH_CONTROL, **(config or {})},
    }


# --- files ----------------------------------------------------------------------------


def _json_default(obj: Any) -> Any:
    if isinstance(obj, bytes):
        return obj.hex()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return str(obj)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    """tmp in the same directory + fsync + rename + directory fsync.

    A kill at any point leaves the old file or none, and at worst a hidden ``.tmp``
    (removed by :func:`remove_stale_tmp`), never a truncated dump under the real name.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _local_date(record: Mapping[str, Any]) -> datetime:
    ts = record.get("timestamp")
    if isinstance(ts, str):
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone()
    return datetime.now().astimezone()


def next_dump_path(minidump_dir: Path, when: datetime) -> Path:
    """``MiniMMDDYY-NN.json`` with NN one past the highest used for that date.

    When 99 is taken, the lowest free number is used; when all are, FileExistsError.
    """
    prefix = f"Mini{when:%m%d%y}-"
    used = set()
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(minidump_dir):
            m = _NAME_RE.match(name)
            if m and name.startswith(prefix):
                used.add(int(m.group(4)))
    nn = max(used, default=0) + 1
    if nn > 99:
        free = [n for n in range(1, 100) if n not in used]
        if not free:
            raise FileExistsError(f"{minidump_dir}: all 99 dump names for {when:%m/%d/%y} used")
        nn = free[0]
    return Path(minidump_dir) / f"{prefix}{nn:02d}.json"


def write_dump(
    minidump_dir: Path, record: Mapping[str, Any], *, when: datetime | None = None
) -> Path:
    """Write ``record`` as the next ``MiniMMDDYY-NN.json`` (local date) atomically."""
    minidump_dir = Path(minidump_dir)
    minidump_dir.mkdir(parents=True, exist_ok=True)
    path = next_dump_path(minidump_dir, when or _local_date(record))
    body = {**record, "dump_file": path.name}
    _atomic_write(path, _encode(body))
    return path


def rewrite_dump(path: Path, record: Mapping[str, Any]) -> Path:
    """Replace an existing dump atomically (to add consequences seen after writing it)."""
    path = Path(path)
    _atomic_write(path, _encode({**record, "dump_file": path.name}))
    return path


def _encode(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, indent=2, default=_json_default, ensure_ascii=False).encode()


def read_dump(path: Path) -> dict[str, Any]:
    """Load a dump; ValueError when the file is not one (so ``analyze`` can say so)."""
    with open(path, encoding="utf-8") as fh:
        try:
            record = json.load(fh)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not a crash dump ({exc})") from None
    if not isinstance(record, dict) or "bugcheck_code" not in record:
        raise ValueError(f"{path}: not a crash dump (no bugcheck_code)")
    return record


def _sort_key(path: Path) -> tuple:
    m = _NAME_RE.match(path.name)
    assert m is not None
    mm, dd, yy, nn = (int(g) for g in m.groups())
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        mtime = 0
    return (2000 + yy, mm, dd, mtime, nn)


def list_dumps(minidump_dir: Path) -> list[Path]:
    """Every ``MiniMMDDYY-NN.json`` in the directory, newest last."""
    try:
        names = os.listdir(minidump_dir)
    except FileNotFoundError:
        return []
    paths = [Path(minidump_dir) / n for n in names if _NAME_RE.match(n)]
    return sorted(paths, key=_sort_key)


def latest_dump(minidump_dir: Path) -> Path | None:
    """The newest dump, or None."""
    dumps = list_dumps(minidump_dir)
    return dumps[-1] if dumps else None


def remove_stale_tmp(minidump_dir: Path) -> list[Path]:
    """Delete ``.Mini*.tmp`` left by a kill during a write (X2); returns what went."""
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(minidump_dir):
            if name.startswith(".Mini") and name.endswith(".tmp"):
                p = Path(minidump_dir) / name
                with contextlib.suppress(OSError):
                    p.unlink()
                    removed.append(p)
    return removed
