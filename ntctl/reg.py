"""``ntctl reg``: import, export and query at the size of a real hive.

A control-set export is 9-23 MB of UTF-16 with ~20k keys; none of it travels in one port
message. ``import`` parses the file here (a syntax error is reported with its line before
the machine is touched), then stages the operations in ~1 MiB chunks
(CmImportBegin/Ops/Commit) and the kernel applies them in one transaction per hive.
``export`` and ``query /s`` read a snapshot in chunks (CmExportBegin/Read) and write it as
it arrives. Values travel as their raw bytes, so an export gives back exactly what was
imported.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from nt import regfile, regsnap
from nt.syscalls import SystemServices


def read_reg_file(file: Path) -> tuple[list[regfile.Op], list[int]]:
    """Parse a .reg file; OSError and RegFileError (with its line) go to the caller."""
    return regfile.parse_lines(file.read_bytes())


def import_ops(nt: SystemServices, ops: list[regfile.Op]) -> dict:
    """Stage and commit: every operation applied, or none."""
    return nt.import_ops(ops)


def failed_line(detail: str, lines: list[int]) -> int | None:
    """The file line of the operation a refused commit names ("op N (...): why")."""
    m = re.match(r"op (\d+) ", detail)
    if m is None or not 1 <= int(m.group(1)) <= len(lines):
        return None
    return lines[int(m.group(1)) - 1]


def write_export(records: Iterable[regsnap.Record], out: BinaryIO, encoding: str) -> int:
    """Write records as a ``reg export`` file as they arrive; returns the keys written.

    ``utf-16-le`` (what regedit and ``reg export`` write) gets a BOM.
    """
    if encoding == "utf-16-le":
        out.write(b"\xff\xfe")
    out.write((regfile.HEADER_V5 + "\r\n").encode(encoding))
    keys = 0
    batch: list[regsnap.Record] = []
    for rec in records:
        batch.append(rec)
        keys += 1
        if len(batch) >= 512:
            out.write("".join(regfile.dump_lines(regsnap.ops(batch))).encode(encoding))
            batch = []
    out.write("".join(regfile.dump_lines(regsnap.ops(batch))).encode(encoding))
    out.write(b"\r\0\n\0" if encoding == "utf-16-le" else b"\r\n")
    return keys


def export_key(nt: SystemServices, key: str, file: Path | None) -> int:
    """``reg export KEY [FILE]``: UTF-16 LE with BOM to FILE, UTF-8 text to stdout."""
    records = nt.export_records(key)
    if file is None:
        return write_export(records, sys.stdout.buffer, "utf-8")
    tmp = file.with_name(file.name + ".partial")
    try:
        with tmp.open("wb") as out:
            keys = write_export(records, out, "utf-16-le")
        tmp.replace(file)  # a failed export leaves no truncated file behind
    finally:
        tmp.unlink(missing_ok=True)
    return keys


def query_tree(nt: SystemServices, key: str) -> dict:
    """``reg query KEY /s`` from one chunked snapshot, in the shape ``views.reg_query`` has."""
    from ntctl.views import value_row

    nodes: dict[str, dict] = {}
    top: dict[str, Any] | None = None
    prefix_len = 0
    for path, values in nt.export_records(key):
        if top is None:
            prefix_len = len(path)
            shown = key
        else:
            shown = key + path[prefix_len:]
        node = {
            "key": shown,
            "values": [value_row(n, t, regfile.decode_lenient(t, r)) for n, t, r in values],
            "subkeys": [],
            "children": [],
        }
        nodes[path.casefold()] = node
        if top is None:
            top = node
            continue
        parent, _, name = path.rpartition("\\")
        up = nodes[parent.casefold()]
        up["subkeys"].append(name)
        up["children"].append(node)
    assert top is not None  # a snapshot always holds its root key
    return top
