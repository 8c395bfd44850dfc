"""Transaction logs of a binary hive (regf): bringing a dirty primary file up to date.

Windows 8.1 and later write a hive's changes to ``NAME.LOG1`` / ``NAME.LOG2`` first
("HvLE" log entries, the new format) and reconcile the primary file later; a hive copied
from a running or crashed machine is therefore often *dirty* (its base block's primary
and secondary sequence numbers differ, or its checksum is wrong) and only correct once
its logs are replayed. This follows M. Suhanov's "Windows registry file format
specification", sections "New format" and "Multiple transaction log files":

- log entries of both files are taken together and applied in sequence-number order,
  starting at the base block's secondary sequence number, each number once; a gap ends
  the replay (notes 5 and 7), older entries are already in the primary file;
- each applied entry's Hash-1 (Marvin32 of the entry from its first page reference on)
  and Hash-2 (Marvin32 of its first 32 bytes) are checked, and its hive-bins data size
  must be a multiple of 4096;
- the base block then takes the newest applied entry's sequence number (both fields),
  hive-bins data size and flags, and a fresh checksum.

Divergence: where Windows stops at an entry with a bad hash and boots with what came
before it (silently losing later changes), the model refuses the hive with an error
naming the file, offset and sequence number: a user importing a configuration should
know it is incomplete. Old-format logs (Windows XP-8, "DIRT") are refused with a clear
message when the hive would need them.

regipy (the only one of the libraries compared in README that replays logs) applies
``.LOG2`` and then ``.LOG1`` whatever their sequence numbers, applies every entry found
including stale ones, and checks no hash; dissect.regf does not replay at all, and
libregf only reads an old-format dirty vector.
So the replay is ours, on raw bytes, and the parsed result goes to dissect.regf.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from nt.status import NtStatus
from nt.win32 import Win32Error

BASE_BLOCK = 4096
LOG_BASE = 512  # a log file starts with a 512-byte copy of the base block
MARVIN_SEED = 0xC5554E7A884DEF82  # bytes 82 EF 4D 88 7A 4E 55 C5, little-endian
HVLE = b"HvLE"
FILE_TYPE_PRIMARY = 0
FILE_TYPE_LOG_NEW = 6

# Win32 errors for the messages (nt/win32.py); the NTSTATUS is what the kernel returns.
ERROR_FILE_NOT_FOUND = Win32Error.ERROR_FILE_NOT_FOUND
ERROR_BADDB = Win32Error.ERROR_BADDB
ERROR_REGISTRY_CORRUPT = Win32Error.ERROR_REGISTRY_CORRUPT
ERROR_REGISTRY_IO_FAILED = Win32Error.ERROR_REGISTRY_IO_FAILED
ERROR_NOT_REGISTRY_FILE = Win32Error.ERROR_NOT_REGISTRY_FILE

_M32 = 0xFFFFFFFF


class HiveFileError(Exception):
    """A binary hive or its log cannot be used; the message names the problem."""

    def __init__(
        self,
        message: str,
        status: int = NtStatus.STATUS_REGISTRY_CORRUPT,
        win32: int = ERROR_REGISTRY_CORRUPT,
        divergence: str = "",
    ) -> None:
        self.message = message
        self.status = NtStatus(status)
        self.win32 = win32
        self.divergence = divergence  # how Windows would have gone on, when it would
        super().__init__(message)


def _rotl(x: int, n: int) -> int:
    return ((x << n) | (x >> (32 - n))) & _M32


def marvin32(data: bytes, seed: int = MARVIN_SEED) -> int:
    """Marvin32 (SymCrypt's, as .NET's string hashing): the 64-bit result, p1:p0."""
    p0, p1 = seed & _M32, seed >> 32
    n = len(data) // 4
    words = [w for (w,) in struct.iter_unpack("<I", data[: n * 4])]
    final = 0x80
    for b in reversed(data[n * 4 :]):
        final = (final << 8) | b
    words.append(final)
    for i, w in enumerate(words):
        p0 = (p0 + w) & _M32
        for _ in range(2 if i == len(words) - 1 else 1):
            p1 ^= p0
            p0 = _rotl(p0, 20)
            p0 = (p0 + p1) & _M32
            p1 = _rotl(p1, 9)
            p1 ^= p0
            p0 = _rotl(p0, 27)
            p0 = (p0 + p1) & _M32
            p1 = _rotl(p1, 19)
    return (p1 << 32) | p0


def base_checksum(block: bytes) -> int:
    """XOR-32 of the first 508 bytes; 0 becomes 1 and -1 becomes -2, as Windows writes it."""
    c = 0
    for (w,) in struct.iter_unpack("<I", block[:508]):
        c ^= w
    return 1 if c == 0 else 0xFFFFFFFE if c == _M32 else c


def checksum_ok(block: bytes) -> bool:
    return len(block) >= 512 and struct.unpack_from("<I", block, 508)[0] == base_checksum(block)


@dataclass
class LogEntry:
    log: str  # file name, for messages
    offset: int  # in the log file
    seq: int
    flags: int
    hbins_size: int
    pages: list[tuple[int, bytes]] = field(default_factory=list)
    problem: str = ""  # a bad hash or size; empty when the entry is sound


@dataclass
class LogFile:
    name: str
    base: bytes | None  # the base-block copy, when its checksum is right
    entries: list[LogEntry]
    old_format: bool = False


def read_log(path: Path) -> LogFile:
    """Every HvLE entry of one log file, sound or not (checked when it would be applied)."""
    data = path.read_bytes()
    name = path.name
    if len(data) < LOG_BASE or data[:4] != b"regf":
        return LogFile(name, None, [])  # empty (Windows keeps a 0-byte .LOG) or unused
    base = data[:LOG_BASE] if checksum_ok(data) else None
    if data[LOG_BASE : LOG_BASE + 4] == b"DIRT" or struct.unpack_from("<I", data, 28)[0] in (1, 2):
        return LogFile(name, base, [], old_format=True)
    entries: list[LogEntry] = []
    pos = LOG_BASE
    while pos + 40 <= len(data) and data[pos : pos + 4] == HVLE:
        size, flags, seq, hbins, count = struct.unpack_from("<5I", data, pos + 4)
        if size < 40 or size % 512 or pos + size > len(data) or 40 + 8 * count > size:
            break  # the end of what was written, or a torn remnant
        entry = LogEntry(name, pos, seq, flags, hbins)
        h1, h2 = struct.unpack_from("<QQ", data, pos + 24)
        if marvin32(data[pos + 40 : pos + size]) != h1:
            entry.problem = "Hash-1 (Marvin32 of its pages) does not match"
        elif marvin32(data[pos : pos + 32]) != h2:
            entry.problem = "Hash-2 (Marvin32 of its header) does not match"
        elif hbins % 4096 or hbins == 0:
            entry.problem = f"hive bins data size {hbins} is not a multiple of 4096"
        else:
            at = pos + 40 + 8 * count
            for i in range(count):
                off, psize = struct.unpack_from("<II", data, pos + 40 + 8 * i)
                entry.pages.append((off, data[at : at + psize]))
                at += psize
            if at > pos + size:
                entry.problem = "its dirty pages run past the end of the entry"
        entries.append(entry)
        pos += size
    return LogFile(name, base, entries)


def is_dirty(base: bytes) -> bool:
    seq1, seq2 = struct.unpack_from("<II", base, 4)
    return seq1 != seq2 or not checksum_ok(base)


def recover(primary: bytes, logs: list[LogFile]) -> tuple[bytes, list[LogEntry]]:
    """The primary file with its logs replayed; (bytes, entries applied in order).

    A clean hive comes back unchanged (a clean hive's logs are ignored, as the
    specification says). A dirty one that cannot be brought up to date raises.
    """
    if len(primary) < BASE_BLOCK:
        raise HiveFileError(f"file is {len(primary)} bytes, shorter than the 4096-byte base block")
    base = primary[:BASE_BLOCK]
    if not is_dirty(base):
        return primary, []
    seq1, seq2 = struct.unpack_from("<II", base, 4)
    why = (
        "its base block checksum is wrong"
        if not checksum_ok(base)
        else f"sequence numbers {seq1} != {seq2}"
    )
    if not logs:
        raise HiveFileError(
            f"the hive is dirty ({why}) and has no transaction log (.LOG1/.LOG2) beside it: "
            "copy the logs with the hive"
        )
    if any(lf.old_format for lf in logs) and not any(lf.entries for lf in logs):
        raise HiveFileError(
            f"the hive is dirty ({why}) and its logs are in the old format (Windows XP-8, "
            "DIRT): not supported; let Windows reconcile the hive, or export it with reg save"
        )
    buf = bytearray(primary)
    if not checksum_ok(base):
        # Note 6: the base block comes from a log file's copy (type set back to primary).
        copies = [lf.base for lf in logs if lf.base]
        copies.sort(key=lambda b: struct.unpack_from("<I", b, 8)[0])
        if not copies:
            raise HiveFileError(
                "the hive's base block checksum is wrong and no log holds a valid copy of it"
            )
        buf[:LOG_BASE] = copies[-1]
        struct.pack_into("<I", buf, 28, FILE_TYPE_PRIMARY)
    expected = struct.unpack_from("<I", buf, 8)[0]  # the secondary sequence number
    by_seq: dict[int, LogEntry] = {}
    for lf in logs:
        for e in lf.entries:
            if e.seq >= expected and (e.seq not in by_seq or by_seq[e.seq].problem):
                by_seq[e.seq] = e
    applied: list[LogEntry] = []
    while expected in by_seq:
        e = by_seq[expected]
        if e.problem:
            raise HiveFileError(
                f"log entry with sequence number {e.seq} in {e.log} at offset {e.offset:#x}: "
                f"{e.problem}; the log is corrupt, the hive cannot be brought up to date",
                divergence="Windows stops the replay at a bad log entry and loads the older "
                "state; the model refuses the hive",
            )
        _apply(buf, e)
        applied.append(e)
        expected += 1
    if not applied:
        raise HiveFileError(
            f"the hive is dirty ({why}) and its logs hold no entry with sequence number "
            f"{expected} to continue from"
        )
    last = applied[-1]
    struct.pack_into("<II", buf, 4, last.seq, last.seq)
    struct.pack_into("<I", buf, 40, last.hbins_size)
    struct.pack_into("<I", buf, 144, last.flags)
    struct.pack_into("<I", buf, 508, base_checksum(bytes(buf[:508])))
    return bytes(buf), applied


def _apply(buf: bytearray, e: LogEntry) -> None:
    end = BASE_BLOCK + e.hbins_size
    if len(buf) < end:  # note 9: the file grows to the entry's hive bins size
        buf.extend(bytes(end - len(buf)))
    for off, page in e.pages:
        if off + len(page) > e.hbins_size:
            raise HiveFileError(
                f"log entry with sequence number {e.seq} in {e.log}: a dirty page at "
                f"{off:#x} ({len(page)} bytes) lies outside the hive bins ({e.hbins_size} bytes)"
            )
        buf[BASE_BLOCK + off : BASE_BLOCK + off + len(page)] = page
