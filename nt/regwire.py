"""The bulk registry wire form: one msgpack blob per chunk (CmImportOps, CmExportRead).

A control set is ~60k operations; checking each against a generic schema on both ends of
the port cost more than applying them. So a chunk travels as one ``bytes`` field of at
most ``MAX_BLOB`` (the port checks that bound), and the two ends check its inside
themselves, with explicit limits, exactly as strictly:

- import chunk: ``[[kind, path, name, type, data], ...]`` with kind 0 ``[key]``,
  1 ``[-key]``, 2 ``"v"=data`` (type: REG_* number, data: the exact bytes), 3 ``"v"=-``
  (name and type/data unused: "", 0, b"");
- export chunk: ``[[path, [[name, type, data], ...]], ...]`` (``nt/regsnap.py`` records).

Anything else is STATUS_INVALID_PARAMETER with the reason; nothing of it is staged.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import msgpack

from nt import regfile, regsnap
from nt.regpath import MAX_DATA, MAX_VALUE_NAME, RegistryError
from nt.status import NtStatus

REG_CHUNK_BYTES = 1 << 20  # what a chunk aims at; one value alone may be MAX_DATA (1 MiB)
MAX_BLOB = (2 << 20) - (64 << 10)  # under the port's 2 MiB message limit, with room
MAX_PATH = 4096
EMPTY = msgpack.packb([])  # the last export chunk
_KINDS = {regfile.SetKey: 0, regfile.DeleteKey: 1, regfile.SetValue: 2, regfile.DeleteValue: 3}


def _unpack(blob: bytes) -> list:
    try:
        data = msgpack.unpackb(
            blob,
            raw=False,
            strict_map_key=True,
            max_bin_len=MAX_BLOB,
            max_str_len=MAX_BLOB,
            max_array_len=1 << 20,
            max_map_len=0,
            max_ext_len=0,
        )
    except Exception as exc:  # every msgpack failure is a malformed chunk
        raise _bad(f"chunk is not msgpack ({type(exc).__name__})") from None
    if type(data) is not list:
        raise _bad("chunk is not an array")
    return data


def _bad(why: str) -> RegistryError:
    return RegistryError(NtStatus.STATUS_INVALID_PARAMETER, why)


def pack_ops(ops: Iterable[regfile.Op], limit: int = REG_CHUNK_BYTES) -> Iterator[bytes]:
    """Operations as import chunks of about ``limit`` bytes."""
    group: list[list] = []
    size = 0
    for op in ops:
        kind = _KINDS[type(op)]
        if kind == 2:
            item = [2, op.path, op.name, op.type, op.stored()]
        else:
            item = [kind, op.path, getattr(op, "name", ""), 0, b""]
        cost = 16 + 3 * (len(item[1]) + len(item[2])) + len(item[4])
        if group and size + cost > limit:
            yield msgpack.packb(group)
            group, size = [], 0
        group.append(item)
        size += cost
    if group:
        yield msgpack.packb(group)


def unpack_ops(blob: bytes) -> list[regfile.Op]:
    """An import chunk checked item by item; a bad item names its index."""
    out: list[regfile.Op] = []
    for i, item in enumerate(_unpack(blob)):
        if type(item) is not list or len(item) != 5:
            raise _bad(f"op {i}: not [kind, path, name, type, data]")
        kind, path, name, type_, data = item
        if type(kind) is not int or not 0 <= kind <= 3:
            raise _bad(f"op {i}: kind {kind!r} is not 0-3")
        if type(path) is not str or not 0 < len(path) <= MAX_PATH:
            raise _bad(f"op {i}: path must be a string of 1-{MAX_PATH} characters")
        if type(name) is not str or len(name) > MAX_VALUE_NAME:
            raise _bad(f"op {i}: value name must be a string of at most {MAX_VALUE_NAME}")
        if type(type_) is not int or not 0 <= type_ <= 0xFFFFFFFF:
            raise _bad(f"op {i}: type {type_!r} is not a 32-bit REG_* number")
        if type(data) is not bytes or len(data) > MAX_DATA:
            raise _bad(f"op {i}: data must be bytes of at most {MAX_DATA}")
        if kind == 0:
            out.append(regfile.SetKey(path))
        elif kind == 1:
            out.append(regfile.DeleteKey(path))
        elif kind == 2:
            out.append(regfile.SetValue(path, name, type_, None, raw=data))
        else:
            out.append(regfile.DeleteValue(path, name))
    return out


def pack_records(records: list[regsnap.Record], limit: int = REG_CHUNK_BYTES) -> Iterator[bytes]:
    """A snapshot as export chunks (a key with many values split, ``regsnap.merge`` joins)."""
    for chunk in regsnap.chunks(records, limit):
        yield msgpack.packb([[p, [[n, t, r] for n, t, r in v]] for p, v in chunk])


def unpack_records(blob: bytes) -> list[regsnap.Record]:
    """An export chunk, checked as strictly as the kernel checks an import chunk."""
    out: list[regsnap.Record] = []
    for i, rec in enumerate(_unpack(blob)):
        if type(rec) is not list or len(rec) != 2 or type(rec[0]) is not str:
            raise _bad(f"record {i}: not [path, values]")
        values = []
        for v in rec[1] if type(rec[1]) is list else [None]:
            if (
                type(v) is not list
                or len(v) != 3
                or type(v[0]) is not str
                or type(v[1]) is not int
                or type(v[2]) is not bytes
            ):
                raise _bad(f"record {i}: a value is not [name, type, data]")
            values.append((v[0], v[1], v[2]))
        out.append((rec[0], values))
    return out
