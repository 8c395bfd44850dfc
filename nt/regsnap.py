"""Whole subtrees at once: what ``reg export`` and ``reg query /s`` read.

A real SYSTEM hive has 15k-23k keys and 36k-51k values. Walking it one key at a time
costs three queries per key; here a subtree is read with one query over the hive's keys
and batched value queries, inside the caller's read lock, so the snapshot is consistent.

A snapshot is a list of records ``(key path, [(value name, type, raw bytes), ...])`` in
export order: each key before its subkeys, subkeys in case-insensitive order, values in
creation order. Raw bytes are what the hive stores, so an export writes them back byte
for byte. Records are small and self-contained, so a port can hand them out in chunks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator

from nt import regfile
from nt.regpath import KeyTable

ValueRow = tuple[str, int, bytes]
Record = tuple[str, list[ValueRow]]

_BATCH = 500  # ids per "IN (...)" query, under SQLite's default variable limit
MAX_ITEMS = 4000  # the wire refuses arrays past 4096 items (ports/wire.py MAX_ARRAY)


def tree(t: KeyTable, kid: int, prefix: str) -> list[Record]:
    """The subtree of ``kid`` (named ``prefix``) as records, in export order."""
    children: dict[int, list[tuple[str, str, int]]] = defaultdict(list)
    queries = ["SELECT id, parent_id, name, name_folded FROM temp.vkeys"]  # few, all taken
    if kid > 0:  # the stable subtree alone, through the (parent_id, name_folded) index
        queries.append(
            "WITH RECURSIVE sub(id, parent_id, name, name_folded) AS ("
            "SELECT id, parent_id, name, name_folded FROM keys WHERE parent_id = :k "
            "UNION ALL SELECT k.id, k.parent_id, k.name, k.name_folded FROM keys k "
            "JOIN sub ON k.parent_id = sub.id) SELECT * FROM sub"
        )
    for query in queries:
        for cid, parent, name, folded in t.conn.execute(query, {"k": kid}):
            children[parent].append((folded, name, cid))
    order: list[tuple[int, str]] = []
    stack = [(kid, prefix)]
    while stack:
        k, path = stack.pop()
        order.append((k, path))
        subs = sorted(children.get(k, ()))
        stack.extend((cid, f"{path}\\{name}") for _, name, cid in reversed(subs))
    values = _values(t, [k for k, _ in order])
    return [(path, values.get(k, [])) for k, path in order]


def _values(t: KeyTable, ids: list[int]) -> dict[int, list[ValueRow]]:
    out: dict[int, list[ValueRow]] = defaultdict(list)
    for table, wanted in (
        ('"values"', [i for i in ids if i > 0]),
        ("temp.vvalues", [i for i in ids if i < 0]),
    ):
        for start in range(0, len(wanted), _BATCH):
            batch = wanted[start : start + _BATCH]
            marks = ",".join("?" * len(batch))
            for key_id, name, type_, raw in t.conn.execute(
                f"SELECT key_id, name, type, data FROM {table} WHERE key_id IN ({marks}) "
                "ORDER BY key_id, rowid",
                batch,
            ):
                out[key_id].append((name, type_, raw))
    return out


def ops(records: Iterable[Record]) -> Iterator[regfile.Op]:
    """Records as .reg operations (each value carrying its raw bytes)."""
    for path, values in records:
        yield regfile.SetKey(path)
        for name, type_, raw in values:
            yield regfile.SetValue(path, name, type_, regfile.decode_lenient(type_, raw), raw=raw)


def dumps(records: Iterable[Record]) -> str:
    """Records as the text of a ``reg export`` file."""
    return regfile.dumps(ops(records))


def chunks(records: list[Record], limit: int) -> Iterator[list[Record]]:
    """Records in groups of about ``limit`` bytes and at most MAX_ITEMS records.

    A key with more than MAX_ITEMS values is split into records of the same path, which
    the reader joins again (``merge``). A record larger than ``limit`` goes alone; the
    hive caps one value at 1 MiB, so the port's message limit leaves room for that.
    """
    group: list[Record] = []
    size = 0
    for path, values in records:
        parts = [values[i : i + MAX_ITEMS] for i in range(0, len(values), MAX_ITEMS)] or [[]]
        for part in parts:
            cost = 64 + 2 * len(path) + sum(48 + 2 * len(n) + len(r) for n, _, r in part)
            if group and (size + cost > limit or len(group) >= MAX_ITEMS):
                yield group
                group, size = [], 0
            group.append((path, part))
            size += cost
    if group:
        yield group


def merge(records: Iterable[Record]) -> Iterator[Record]:
    """Join consecutive records of one key (split by ``chunks``)."""
    last: Record | None = None
    for rec in records:
        if last is not None and rec[0] == last[0]:
            last[1].extend(rec[1])
            continue
        if last is not None:
            yield last
        last = (rec[0], list(rec[1]))
    if last is not None:
        yield last


# --- the wire form of operations (ports/kernel.py REG_OP) ---------------------------------

_KINDS = {regfile.SetKey: 0, regfile.DeleteKey: 1, regfile.SetValue: 2, regfile.DeleteValue: 3}


def op_to_wire(op: regfile.Op) -> dict:
    kind = _KINDS[type(op)]
    if kind < 2:
        return {"k": kind, "p": op.path}
    if kind == 3:
        return {"k": 3, "p": op.path, "n": op.name}
    return {"k": 2, "p": op.path, "n": op.name, "t": op.type, "d": op.stored()}


def op_from_wire(item: dict) -> regfile.Op:
    kind, path = item["k"], item["p"]
    if kind == 0:
        return regfile.SetKey(path)
    if kind == 1:
        return regfile.DeleteKey(path)
    if kind == 3:
        return regfile.DeleteValue(path, item["n"])
    raw = item["d"]
    return regfile.SetValue(path, item["n"], item["t"], None, raw=raw)


def wire_batches(ops: Iterable[regfile.Op], limit: int) -> Iterator[list[dict]]:
    """Operations in wire form, in groups of about ``limit`` bytes (at most MAX_ITEMS)."""
    group: list[dict] = []
    size = 0
    for op in ops:
        item = op_to_wire(op)
        cost = 24 + 2 * len(item["p"]) + 2 * len(item.get("n", "")) + len(item.get("d", b""))
        if group and (size + cost > limit or len(group) >= MAX_ITEMS):
            yield group
            group, size = [], 0
        group.append(item)
        size += cost
    if group:
        yield group


def record_to_wire(rec: Record) -> list:
    return [rec[0], [[n, t, r] for n, t, r in rec[1]]]


def record_from_wire(item: list) -> Record:
    return item[0], [(n, t, r) for n, t, r in item[1]]
