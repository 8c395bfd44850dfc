"""Binary hives (regf): read a Windows hive file into the model's registry.

``./run.sh --system-hive path/to/SYSTEM`` builds a fresh machine's SYSTEM hive from a
copy of ``C:\\Windows\\System32\\config\\SYSTEM`` (with ``SYSTEM.LOG1``/``.LOG2`` beside
it when present). ``read_hive`` checks the base block, replays the transaction logs
(``nt/regflog.py``), walks the key tree with dissect.regf and returns every key and every
value with its exact bytes, in export order, as ``nt/regsnap.py`` records. Class names,
security descriptors and timestamps are not kept (the model's hive has no place for them).

Why dissect.regf (compared in README): pure Python (no compiler, installs anywhere
Python does), maintained by Fox-IT with releases through 2025, gives raw value bytes
(big-data ``db`` cells included) and the cell-level API needed to validate a tree.
regipy replays logs in a fixed file order without hash checks; libregf-python is C
bindings (a compiler to install) with no new-format log replay. None of them replays logs correctly, so the
replay is ours, on bytes, before dissect sees the file.

Everything that can go wrong with a copied file is a ``HiveFileError`` naming the
problem (the kernel answers STATUS_REGISTRY_CORRUPT, Win32 ERROR_REGISTRY_CORRUPT 1015;
STATUS_NOT_REGISTRY_FILE for what is not a hive at all), raised before anything is
imported.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

from nt.regflog import (
    BASE_BLOCK,
    ERROR_FILE_NOT_FOUND,
    ERROR_NOT_REGISTRY_FILE,
    ERROR_REGISTRY_IO_FAILED,
    HiveFileError,
    LogEntry,
    read_log,
    recover,
)
from nt.regpath import MAX_DEPTH
from nt.regsnap import Record
from nt.status import NtStatus

__all__ = ["HiveFileError", "HiveImage", "log_paths", "read_hive"]

KEY_COMP_NAME = 0x0020
VALUE_COMP_NAME = 0x0001
MAX_KEYS = 2_000_000  # a loop in a corrupt hive must end


class HiveImage:
    """A binary hive, read: its records and what recovery did."""

    def __init__(self, records: list[Record], applied: list[LogEntry], root_name: str) -> None:
        self.records = records
        self.applied = applied
        self.root_name = root_name

    @property
    def keys(self) -> int:
        return len(self.records)

    @property
    def values(self) -> int:
        return sum(len(v) for _, v in self.records)


def log_paths(hive: Path) -> list[Path]:
    """``NAME.LOG1`` and ``NAME.LOG2`` beside the hive (either case), when present."""
    out = []
    for suffix in (".LOG1", ".LOG2"):
        for cand in (
            hive.with_name(hive.name + suffix),
            hive.with_name(hive.name + suffix.lower()),
        ):
            if cand.is_file():
                out.append(cand)
                break
    return out


def _check_base(buf: bytes, name: str) -> None:
    if len(buf) < BASE_BLOCK:
        raise HiveFileError(
            f"{name}: {len(buf)} bytes, shorter than a hive's 4096-byte base block (not a hive, "
            "or truncated)",
            NtStatus.STATUS_NOT_REGISTRY_FILE,
            ERROR_NOT_REGISTRY_FILE,
        )
    if buf[:4] != b"regf":
        raise HiveFileError(
            f"{name}: not a registry hive (signature {buf[:4]!r}, expected b'regf')",
            NtStatus.STATUS_NOT_REGISTRY_FILE,
            ERROR_NOT_REGISTRY_FILE,
        )
    major, minor, ftype, fmt, root, size = struct.unpack_from("<6I", buf, 20)
    if major != 1 or not 2 <= minor <= 6 or ftype != 0 or fmt != 1:
        raise HiveFileError(
            f"{name}: unsupported hive (version {major}.{minor}, file type {ftype}, "
            f"format {fmt}); expected a primary file of version 1.3-1.6"
        )
    if size % 4096 or size == 0:
        raise HiveFileError(f"{name}: hive bins data size {size} is not a multiple of 4096")
    if len(buf) < BASE_BLOCK + size:
        raise HiveFileError(
            f"{name}: truncated: the base block says {size} bytes of hive bins, the file "
            f"holds {len(buf) - BASE_BLOCK}"
        )
    if buf[BASE_BLOCK : BASE_BLOCK + 4] != b"hbin":
        raise HiveFileError(f"{name}: no hive bin at offset 4096 (signature missing)")
    if root + 4 > size:
        raise HiveFileError(f"{name}: root cell offset {root:#x} lies outside the hive bins")


def _comp_name(name: str) -> str:
    """A compressed (8-bit) name as Windows reads it: Latin-1.

    dissect.regf tries UTF-8 first; bytes that happen to be valid UTF-8 are turned back
    into their Latin-1 reading, the one the configuration manager uses.
    """
    if name.isascii():
        return name
    try:
        name.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        if any(ord(c) > 0xFF for c in name):
            return name.encode("utf-8").decode("latin-1")
        return name  # dissect fell back to Latin-1 itself
    return name.encode("utf-8").decode("latin-1")


def read_hive(path: Path, logs: list[Path] | None = None) -> HiveImage:
    """Read a binary hive (replaying its logs); raise HiveFileError naming any problem."""
    from dissect.regf import regf as dregf  # heavy: imported only when a hive is read

    try:
        primary = path.read_bytes()
    except FileNotFoundError:
        raise HiveFileError(
            f"{path}: no such file", NtStatus.STATUS_OBJECT_NAME_NOT_FOUND, ERROR_FILE_NOT_FOUND
        ) from None
    except OSError as exc:
        raise HiveFileError(
            f"{path}: cannot read it: {exc.strerror}",
            NtStatus.STATUS_REGISTRY_IO_FAILED,
            ERROR_REGISTRY_IO_FAILED,
        ) from None
    if len(primary) >= 4 and primary[:4] == b"regf" and len(primary) >= BASE_BLOCK:
        log_files = [read_log(p) for p in (log_paths(path) if logs is None else logs)]
        try:
            primary, applied = recover(primary, log_files)
        except HiveFileError as exc:
            raise HiveFileError(
                f"{path.name}: {exc.message}", exc.status, exc.win32, exc.divergence
            ) from None
    else:
        applied = []
    _check_base(primary, path.name)
    try:
        hive = dregf.RegistryHive(io.BytesIO(primary))
        root = hive.root()
        records = _walk(root, path.name)
    except HiveFileError:
        raise
    except Exception as exc:  # dissect's errors for a corrupt cell are many kinds
        raise HiveFileError(
            f"{path.name}: corrupt hive: {type(exc).__name__}: {exc}"[:400]
        ) from None
    return HiveImage(records, applied, root.name)


def _walk(root: object, name: str) -> list[Record]:
    """Every key below the root (root included, path ""), each with its values' bytes."""
    records: list[Record] = []
    stack: list[tuple[object, str, int]] = [(root, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        if depth > MAX_DEPTH or len(records) > MAX_KEYS:
            raise HiveFileError(f"{name}: corrupt hive: key tree deeper than {MAX_DEPTH} (a loop?)")
        cell = node.cell
        values = []
        for v in node.values():
            vname = "" if v.cell.NameLength == 0 else v.name
            if v.cell.Flags & VALUE_COMP_NAME:
                vname = _comp_name(vname)
            data = v.data
            if len(data) != v.size:
                raise HiveFileError(
                    f"{name}: corrupt hive: value {vname!r} of key {path or '(root)'!r} has "
                    f"{len(data)} of its {v.size} bytes"
                )
            values.append((vname, v.type, bytes(data)))
        if len(values) != cell.ValueList.Count:
            raise HiveFileError(
                f"{name}: corrupt hive: key {path or '(root)'!r} lists {len(values)} of its "
                f"{cell.ValueList.Count} values"
            )
        records.append((path, values))
        subs = list(node.subkeys())
        if len(subs) != cell.SubKeyCounts[0]:
            raise HiveFileError(
                f"{name}: corrupt hive: key {path or '(root)'!r} lists {len(subs)} of its "
                f"{cell.SubKeyCounts[0]} subkeys"
            )
        named = []
        for sub in subs:
            sname = sub.name
            if sub.cell.Flags & KEY_COMP_NAME:
                sname = _comp_name(sname)
            named.append((sname.casefold(), sname, sub))
        named.sort(key=lambda t: t[0])
        for _, sname, sub in reversed(named):
            stack.append((sub, f"{path}\\{sname}" if path else sname, depth + 1))
    return records
