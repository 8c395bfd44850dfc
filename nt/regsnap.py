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
MAX_ITEMS = 16384  # records per export chunk, and values per record


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

    A key whose values pass ``limit`` (or MAX_ITEMS) is split into records of the same
    path, which the reader joins again (``merge``); one value is at most 1 MiB (the hive's
    MAX_DATA), so a group never passes ``limit`` by more than one value.
    """
    group: list[Record] = []
    size = 0
    for path, values in records:
        base = 64 + 2 * len(path)
        part: list[ValueRow] = []
        cost = base
        for v in values:
            c = 48 + 2 * len(v[0]) + len(v[2])
            if part and (size + cost + c > limit or len(part) >= MAX_ITEMS):
                group.append((path, part))
                yield group
                group, size, part, cost = [], 0, [], base
            part.append(v)
            cost += c
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
