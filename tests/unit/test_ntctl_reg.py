"""ntctl/reg.py: an export written as it streams is the file regedit would write."""

from __future__ import annotations

import io

import pytest

from nt import regsnap, regwire
from ntctl.reg import write_export

RECORDS = [
    ("HKEY_LOCAL_MACHINE\\SOFTWARE\\A", [("", 1, "x\0".encode("utf-16-le")), ("D", 4, b"\1\0\0\0")])
] + [
    (f"HKEY_LOCAL_MACHINE\\SOFTWARE\\A\\K{i:04d}", [("B", 3, bytes(range(i % 90)))])
    for i in range(1500)
]


@pytest.mark.parametrize(("encoding", "bom"), [("utf-16-le", b"\xff\xfe"), ("utf-8", b"")])
def test_streamed_export_equals_the_whole_file(encoding: str, bom: bytes) -> None:
    out = io.BytesIO()
    assert write_export(iter(RECORDS), out, encoding) == len(RECORDS)
    assert out.getvalue() == bom + regsnap.dumps(RECORDS).encode(encoding)


def test_chunks_split_a_huge_key_and_merge_joins_it_again() -> None:
    many = [(f"v{i}", 4, b"\0\0\0\0") for i in range(40000)]
    large = [(f"b{i}", 3, bytes(700_000)) for i in range(5)]  # 3.5 MB in one key
    records = [
        ("HKEY_LOCAL_MACHINE\\SOFTWARE\\Big", many),
        ("HKEY_LOCAL_MACHINE\\SOFTWARE\\Large", large),
        ("HKEY_LOCAL_MACHINE\\SOFTWARE\\Z", []),
    ]
    blobs = list(regwire.pack_records(records))
    assert all(len(b) <= regwire.MAX_BLOB for b in blobs) and len(blobs) >= 4
    chunks = [regwire.unpack_records(b) for b in blobs]
    assert all(len(v) <= regsnap.MAX_ITEMS for c in chunks for _, v in c)
    assert list(regsnap.merge(r for c in chunks for r in c)) == records


def test_a_refused_operation_is_named_by_its_line() -> None:
    from nt.regfile import parse_lines
    from ntctl.reg import failed_line

    text = (
        "Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\A]\r\n"
        '"S"="two\r\nlines"\r\n"B"=hex:01,\\\r\n  02\r\n[-HKEY_LOCAL_MACHINE\\SOFTWARE]\r\n'
    )
    ops, lines = parse_lines(text)
    assert lines == [3, 4, 6, 8]
    assert failed_line("op 4 (DeleteKey(...)): cannot change a root key", lines) == 8
    assert failed_line("op 9 (...)", lines) is None and failed_line("other", lines) is None
