"""A small regf writer for tests: binary hives and HvLE transaction logs, made on the spot.

Follows M. Suhanov's "Windows registry file format specification": a 4096-byte base
block, hive bins of 4096-byte multiples, cells with negative (allocated) sizes aligned to
8 bytes; nk key nodes (ASCII names compressed), vk values (data of 4 bytes or less in
the value itself, more than 16,344 bytes in a db big-data cell with segments), value
lists, lh hash leaves (lf with ``leaf="lf"``; an ri index root above ``leaf_max``
subkeys), one shared sk security cell. Logs: a 512-byte base-block copy (file type 6) and
HvLE entries with dirty page references, Marvin32 Hash-1 and Hash-2.

Deterministic: the same tree gives the same bytes (timestamps fixed), so tests can
generate a real-scale hive instead of committing megabytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from nt.regflog import BASE_BLOCK, LOG_BASE, base_checksum, marvin32

BIG = 16344  # CM_KEY_VALUE_BIG: larger data goes in a db cell
FILETIME = 0x01D9_0000_0000_0000
# A minimal self-relative security descriptor: revision 1, SE_SELF_RELATIVE | DACL_PRESENT.
SD = struct.pack("<BBHIIII", 1, 0, 0x8004, 0, 0, 0, 0)


@dataclass
class Key:
    name: str
    values: list[tuple[str, int, bytes]] = field(default_factory=list)
    subkeys: list[Key] = field(default_factory=list)

    def add(self, name: str) -> Key:
        k = Key(name)
        self.subkeys.append(k)
        return k


def _lh_hash(name: str) -> int:
    h = 0
    for ch in name.upper():
        h = (37 * h + ord(ch)) & 0xFFFFFFFF
    return h


class _Bins:
    """Cells packed into hive bins; offsets are relative to the hive bins data."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.bin_end = 0

    def alloc(self, payload: bytes) -> int:
        size = (4 + len(payload) + 7) & ~7
        if len(self.data) + size > self.bin_end:
            self._new_bin(size)
        off = len(self.data)
        self.data += struct.pack("<i", -size) + payload + bytes(size - 4 - len(payload))
        return off

    def _new_bin(self, need: int) -> None:
        if len(self.data) < self.bin_end:  # the rest of this bin is one free cell
            free = self.bin_end - len(self.data)
            self.data += struct.pack("<i", free) + bytes(free - 4)
        start = len(self.data)
        size = max(4096, (32 + need + 4095) & ~4095)
        self.data += b"hbin" + struct.pack("<II", start, size) + bytes(8)
        self.data += struct.pack("<Q", FILETIME) + bytes(4)
        self.bin_end = start + size

    def finish(self) -> bytes:
        if len(self.data) < self.bin_end:
            free = self.bin_end - len(self.data)
            self.data += struct.pack("<i", free) + bytes(free - 4)
        return bytes(self.data)

    def patch(self, off: int, fmt: str, at: int, *vals: int) -> None:
        struct.pack_into(fmt, self.data, off + 4 + at, *vals)


def _name_bytes(name: str) -> tuple[bytes, bool]:
    if all(ord(c) < 256 for c in name):
        return name.encode("latin-1"), True
    return name.encode("utf-16-le"), False


def _data_cell(bins: _Bins, raw: bytes, minor: int) -> int:
    if len(raw) <= BIG or minor < 4:
        return bins.alloc(raw)
    segments = [bins.alloc(raw[i : i + BIG]) for i in range(0, len(raw), BIG)]
    seg_list = bins.alloc(struct.pack(f"<{len(segments)}I", *segments))
    return bins.alloc(b"db" + struct.pack("<HI", len(segments), seg_list))


def _value(bins: _Bins, name: str, type_: int, raw: bytes, minor: int) -> int:
    nb, comp = _name_bytes(name)
    if len(raw) <= 4:
        size, data = len(raw) | 0x80000000, int.from_bytes(raw.ljust(4, b"\0"), "little")
    else:
        size, data = len(raw), _data_cell(bins, raw, minor)
    flags = 1 if comp and name else 0
    return bins.alloc(b"vk" + struct.pack("<HIIIHH", len(nb), size, data, type_, flags, 0) + nb)


def _subkey_list(bins: _Bins, kids: list[tuple[str, int]], leaf: str, leaf_max: int) -> int:
    kids = sorted(kids, key=lambda t: t[0].upper())

    def one(part: list[tuple[str, int]]) -> int:
        body = b"".join(
            struct.pack(
                "<II",
                off,
                _lh_hash(n)
                if leaf == "lh"
                else int.from_bytes(n[:4].encode("latin-1", "replace").ljust(4, b"\0"), "little"),
            )
            for n, off in part
        )
        return bins.alloc(leaf.encode() + struct.pack("<H", len(part)) + body)

    if len(kids) <= leaf_max:
        return one(kids)
    leaves = [one(kids[i : i + leaf_max]) for i in range(0, len(kids), leaf_max)]
    return bins.alloc(b"ri" + struct.pack(f"<H{len(leaves)}I", len(leaves), *leaves))


def build_hive(
    root: Key,
    *,
    minor: int = 5,
    seq: tuple[int, int] = (1, 1),
    leaf: str = "lh",
    leaf_max: int = 500,
    filename: str = "SYSTEM",
) -> bytes:
    """The bytes of a primary hive file holding ``root`` and its tree."""
    bins = _Bins()
    sk = bins.alloc(b"sk" + struct.pack("<HIIII", 0, 0, 0, 0, len(SD)) + SD)
    bins.patch(sk, "<II", 4, sk, sk)
    count = 0

    def node(key: Key, parent: int, is_root: bool) -> int:
        nonlocal count
        count += 1
        nb, comp = _name_bytes(key.name)
        flags = (0x20 if comp else 0) | (0x2C if is_root else 0)
        nk = bins.alloc(b"nk" + bytes(74) + nb)
        kids = [(k.name, node(k, nk, False)) for k in key.subkeys]
        lst = _subkey_list(bins, kids, leaf, leaf_max) if kids else 0xFFFFFFFF
        vals = [_value(bins, n, t, r, minor) for n, t, r in key.values]
        vlist = bins.alloc(struct.pack(f"<{len(vals)}I", *vals)) if vals else 0xFFFFFFFF
        max_name = max((len(k.name) * 2 for k in key.subkeys), default=0)
        max_vname = max((len(n) * 2 for n, _, _ in key.values), default=0)
        max_data = max((len(r) for _, _, r in key.values), default=0)
        bins.patch(
            nk,
            "<HQ15IHH",
            2,
            flags,
            FILETIME,
            0,
            parent,
            len(kids),
            0,
            lst,
            0xFFFFFFFF,
            len(vals),
            vlist,
            sk,
            0xFFFFFFFF,
            max_name,
            0,
            max_vname,
            max_data,
            0,
            len(nb),
            0,
        )
        return nk

    root_off = node(root, 0xFFFFFFFF, True)
    bins.patch(sk, "<I", 12, count)
    data = bins.finish()
    return base_block(seq, root_off, len(data), minor, filename) + data


def base_block(
    seq: tuple[int, int], root: int, hbins: int, minor: int = 5, filename: str = "SYSTEM"
) -> bytes:
    b = bytearray(BASE_BLOCK)
    struct.pack_into(
        "<4sIIQIIIIIII", b, 0, b"regf", seq[0], seq[1], FILETIME, 1, minor, 0, 1, root, hbins, 1
    )
    fn = filename.encode("utf-16-le")[:64]
    b[48 : 48 + len(fn)] = fn
    struct.pack_into("<I", b, 508, base_checksum(bytes(b[:508])))
    return bytes(b)


def set_seq(hive: bytes, seq1: int, seq2: int, *, checksum: bool = True) -> bytes:
    b = bytearray(hive)
    struct.pack_into("<II", b, 4, seq1, seq2)
    if checksum:
        struct.pack_into("<I", b, 508, base_checksum(bytes(b[:508])))
    return bytes(b)


def log_entry(seq: int, hbins_size: int, pages: list[tuple[int, bytes]], flags: int = 0) -> bytes:
    """One HvLE entry (padded to 512 bytes) with correct hashes."""
    refs = b"".join(struct.pack("<II", off, len(p)) for off, p in pages)
    body = refs + b"".join(p for _, p in pages)
    size = (40 + len(body) + 511) & ~511
    body = body.ljust(size - 40, b"\0")
    h1 = marvin32(body)
    head = (
        b"HvLE"
        + struct.pack("<5I", size, flags, seq, hbins_size, len(pages))
        + struct.pack("<Q", h1)
    )
    h2 = marvin32(head)
    return head + struct.pack("<Q", h2) + body


def log_file(primary: bytes, entries: list[bytes], seq: int | None = None) -> bytes:
    """A new-format log: the base block's first 512 bytes (type 6), then the entries."""
    b = bytearray(primary[:LOG_BASE])
    struct.pack_into("<I", b, 28, 6)
    if seq is not None:
        struct.pack_into("<II", b, 4, seq, seq)
    struct.pack_into("<I", b, 508, base_checksum(bytes(b[:508])))
    return bytes(b) + b"".join(entries)


def page_of(hive: bytes, off: int, size: int = 4096) -> bytes:
    """The hive bins page at ``off`` (relative to the hive bins data)."""
    return hive[BASE_BLOCK + off : BASE_BLOCK + off + size]
