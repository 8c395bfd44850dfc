"""Binary hives: reading with dissect.regf, transaction-log replay, bad input.

Every hive and log here is made by tests/regfwriter.py, so each test says exactly which
bytes a file holds: a dirty hive with log entries split across .LOG1 and .LOG2, entries
whose order matters, a bad hash, a truncated file.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from nt.regf import HiveFileError, read_hive
from nt.regflog import (
    ERROR_NOT_REGISTRY_FILE,
    ERROR_REGISTRY_CORRUPT,
    base_checksum,
    marvin32,
)
from nt.status import NtStatus
from tests.regfwriter import Key, build_hive, log_entry, log_file, set_seq


def sz(text: str) -> bytes:
    return text.encode("utf-16-le")


EDGE_VALUES = [
    ("", 1, sz("the default\0")),
    ("(Default)", 1, sz("a value really named (Default)\0")),
    ("NoNul", 1, sz("abc")),  # REG_SZ without its terminating NUL
    ("Odd", 1, b"abc"),  # an odd number of bytes
    ("MultiTrailing", 7, sz("a\0b\0\0\0\0")),  # trailing empty strings
    ("MultiPlain", 7, sz("a\0b\0\0")),
    ("MultiEmpty", 7, b""),
    ("DevProp", 0xFFFF0012, bytes(range(16))),  # device property types above 11
    ("DevProp2", 0x200000, b"\x01"),
    ("Dword", 4, (0xDEADBEEF).to_bytes(4, "little")),
    ("ShortDword", 4, b"\x01\x02"),
    ("Qword", 11, (2**63 + 5).to_bytes(8, "little")),
    ("BigBinary", 3, bytes(i % 251 for i in range(40000))),  # db big-data cell
    ("Empty", 3, b""),
    ("Café", 1, sz("latin-1 name\0")),
    ("Ωmega", 1, sz("UTF-16 name\0")),
    ("LineFeeds", 1, sz("a\nb\r\nc\0")),
]


def edge_tree(subkeys: int = 120) -> Key:
    root = Key("ROOT")
    cs = root.add("ControlSet001")
    svc = cs.add("Services")
    svc.values += EDGE_VALUES
    for i in range(subkeys):
        svc.add(f"Svc{i:03d}").values.append(("Start", 4, (i % 5).to_bytes(4, "little")))
    svc.add("Ünïcode").add("Ωkey")
    root.add("Select").values.append(("Current", 4, (1).to_bytes(4, "little")))
    return root


def write(tmp_path: Path, data: bytes, logs: dict[str, bytes] | None = None) -> Path:
    hive = tmp_path / "SYSTEM"
    hive.write_bytes(data)
    for suffix, body in (logs or {}).items():
        (tmp_path / f"SYSTEM.{suffix}").write_bytes(body)
    return hive


def values_of(records: list, path: str) -> dict[str, tuple[int, bytes]]:
    for p, values in records:
        if p == path:
            return {n: (t, r) for n, t, r in values}
    raise KeyError(path)


@pytest.mark.parametrize("leaf", ["lh", "lf"])
def test_every_value_comes_back_byte_for_byte(tmp_path: Path, leaf: str) -> None:
    hive = write(tmp_path, build_hive(edge_tree(), leaf=leaf, leaf_max=50))  # ri above 50
    image = read_hive(hive)
    services = values_of(image.records, r"ControlSet001\Services")
    assert services == {n: (t, r) for n, t, r in EDGE_VALUES}
    assert list(services) == [n for n, _, _ in EDGE_VALUES]  # creation order kept
    paths = [p for p, _ in image.records]
    assert r"ControlSet001\Services\Ünïcode\Ωkey" in paths
    assert paths[:3] == ["", "ControlSet001", r"ControlSet001\Services"]
    assert image.keys == 4 + 120 + 2 and image.applied == []


def test_marvin32_matches_the_published_vectors() -> None:
    seed = 0x004FB61A001BDBCC  # SymCrypt's Marvin32 test seed
    assert marvin32(bytes.fromhex("af"), seed) == 0x48E73FC77D75DDC1
    assert marvin32(bytes.fromhex("e70f"), seed) == 0xB5F6E1FC485DBFF8
    assert marvin32(bytes.fromhex("37f495"), seed) == 0xF0B07C789B8CF7E8
    assert marvin32(bytes.fromhex("8642dc59"), seed) == 0x7008F2E87E9CF556


# --- transaction logs ---------------------------------------------------------------------


def state(value: int, extra: int = 0) -> bytes:
    """The same small tree with Marker=value (and ``extra`` more keys, a bigger hive)."""
    root = Key("ROOT")
    k = root.add("Marker")
    k.values.append(("V", 4, value.to_bytes(4, "little")))
    for i in range(extra):
        root.add(f"Extra{i}").values.append(("Pad", 3, bytes(3000)))
    return build_hive(root)


def pages(hive: bytes) -> list[tuple[int, bytes]]:
    """Every 4096-byte page of the hive bins: an entry that fully defines the hive."""
    data = hive[4096:]
    return [(off, data[off : off + 4096]) for off in range(0, len(data), 4096)]


def hbins_size(hive: bytes) -> int:
    return struct.unpack_from("<I", hive, 40)[0]


def marker(hive: Path) -> int:
    return int.from_bytes(values_of(read_hive(hive).records, "Marker")["V"][1], "little")


@pytest.fixture
def dirty(tmp_path: Path) -> tuple[Path, bytes, bytes]:
    """Primary at secondary sequence number 5 (Marker=1); entry 5 in .LOG2 sets Marker=2,
    entry 6 in .LOG1 sets Marker=3 and grows the hive; .LOG1 also holds a stale entry 4."""
    primary = set_seq(state(1), 6, 5)
    s2, s3 = state(2), state(3, extra=8)
    assert hbins_size(s3) > hbins_size(s2)
    log1 = log_file(
        primary,
        [log_entry(4, hbins_size(s2), pages(state(9))), log_entry(6, hbins_size(s3), pages(s3))],
    )
    log2 = log_file(primary, [log_entry(5, hbins_size(s2), pages(s2))])
    return write(tmp_path, primary, {"LOG1": log1, "LOG2": log2}), s2, s3


def naive_file_order(primary: bytes, logs: list[bytes]) -> bytes:
    """What a replay that takes .LOG1 then .LOG2 as they come (no ordering) produces."""
    buf = bytearray(primary)
    for log in logs:
        pos = 512
        while log[pos : pos + 4] == b"HvLE":
            size, _, seq, hbins, count = struct.unpack_from("<5I", log, pos + 4)
            if seq >= 5:
                buf.extend(bytes(max(0, 4096 + hbins - len(buf))))
                at = pos + 40 + 8 * count
                for i in range(count):
                    off, psize = struct.unpack_from("<II", log, pos + 40 + 8 * i)
                    buf[4096 + off : 4096 + off + psize] = log[at : at + psize]
                    at += psize
                struct.pack_into("<II", buf, 4, seq, seq)
                struct.pack_into("<I", buf, 40, hbins)
            pos += size
    struct.pack_into("<I", buf, 508, base_checksum(bytes(buf[:508])))
    return bytes(buf)


def test_dirty_hive_replays_both_logs_in_sequence_order(dirty, tmp_path: Path) -> None:
    hive, _, s3 = dirty
    image = read_hive(hive)
    assert [(e.log, e.seq) for e in image.applied] == [("SYSTEM.LOG2", 5), ("SYSTEM.LOG1", 6)]
    assert marker(hive) == 3
    (tmp_path / "expected").mkdir()
    assert image.records == read_hive(write(tmp_path / "expected", s3)).records


def test_replaying_in_file_order_gives_a_different_hive(dirty, tmp_path: Path) -> None:
    hive, _, _ = dirty
    logs = [(tmp_path / f"SYSTEM.LOG{i}").read_bytes() for i in (1, 2)]
    wrong = naive_file_order(hive.read_bytes(), logs)
    (tmp_path / "wrong").mkdir()
    wrong_path = write(tmp_path / "wrong", wrong)
    assert marker(wrong_path) == 2  # LOG1's entry 6 overwritten by LOG2's older entry 5
    assert marker(hive) == 3


def test_swapped_log_files_give_the_same_result(tmp_path: Path) -> None:
    primary = set_seq(state(1), 6, 5)
    s2, s3 = state(2), state(3, extra=8)
    log1 = log_file(primary, [log_entry(5, hbins_size(s2), pages(s2))])
    log2 = log_file(primary, [log_entry(6, hbins_size(s3), pages(s3))])
    hive = write(tmp_path, primary, {"LOG1": log1, "LOG2": log2})
    assert marker(hive) == 3


def test_header_takes_sequence_and_size_from_the_newest_entry(dirty) -> None:
    from nt.regflog import read_log, recover

    hive, _, s3 = dirty
    logs = [read_log(hive.with_name(f"SYSTEM.LOG{i}")) for i in (1, 2)]
    data, applied = recover(hive.read_bytes(), logs)
    assert struct.unpack_from("<II", data, 4) == (6, 6)
    assert hbins_size(data) == hbins_size(s3) and len(data) >= 4096 + hbins_size(s3)


def test_a_gap_in_sequence_numbers_ends_the_replay(tmp_path: Path) -> None:
    primary = set_seq(state(1), 6, 5)
    s2, s3 = state(2), state(3)
    log1 = log_file(
        primary, [log_entry(5, hbins_size(s2), pages(s2)), log_entry(7, hbins_size(s3), pages(s3))]
    )
    hive = write(tmp_path, primary, {"LOG1": log1})
    assert [e.seq for e in read_hive(hive).applied] == [5]
    assert marker(hive) == 2


def test_a_clean_hive_ignores_its_logs(tmp_path: Path) -> None:
    primary = set_seq(state(1), 5, 5)
    log1 = log_file(primary, [log_entry(5, hbins_size(primary), pages(state(2)))])
    hive = write(tmp_path, primary, {"LOG1": log1})
    assert marker(hive) == 1


def test_a_bad_checksum_takes_the_base_block_from_a_log(tmp_path: Path) -> None:
    primary = bytearray(set_seq(state(1), 5, 5))
    good_base = bytes(primary[:512])
    primary[508] ^= 0xFF  # checksum wrong: dirty
    s2 = state(2)
    log1 = log_file(good_base, [log_entry(5, hbins_size(s2), pages(s2))])
    hive = write(tmp_path, bytes(primary), {"LOG1": log1})
    assert marker(hive) == 2


def corrupt_entry(log: bytes, index: int, at: int) -> bytes:
    pos = 512
    for _ in range(index):
        pos += struct.unpack_from("<I", log, pos + 4)[0]
    b = bytearray(log)
    b[pos + at] ^= 0x01
    return bytes(b)


@pytest.mark.parametrize(("at", "which"), [(4096, "Hash-1"), (8, "Hash-2")])
def test_a_log_entry_with_a_bad_hash_refuses_the_hive(dirty, at: int, which: str) -> None:
    hive, _, _ = dirty
    log1 = hive.with_name("SYSTEM.LOG1")
    log1.write_bytes(corrupt_entry(log1.read_bytes(), 1, at))  # entry 6
    with pytest.raises(HiveFileError) as info:
        read_hive(hive)
    msg = str(info.value)
    assert which in msg and "sequence number 6" in msg and "SYSTEM.LOG1" in msg
    assert info.value.status == NtStatus.STATUS_REGISTRY_CORRUPT
    assert info.value.win32 == ERROR_REGISTRY_CORRUPT


def test_a_bad_hash_in_a_stale_entry_does_not_matter(dirty) -> None:
    hive, _, _ = dirty
    log1 = hive.with_name("SYSTEM.LOG1")
    log1.write_bytes(corrupt_entry(log1.read_bytes(), 0, 4096))  # entry 4, already applied
    assert marker(hive) == 3


def test_dirty_without_logs_or_without_the_next_entry_is_refused(tmp_path: Path) -> None:
    hive = write(tmp_path, set_seq(state(1), 6, 5))
    with pytest.raises(HiveFileError, match="no transaction log"):
        read_hive(hive)
    hive.with_name("SYSTEM.LOG1").write_bytes(b"")  # Windows leaves empty logs behind
    with pytest.raises(HiveFileError, match="no entry with sequence number 5"):
        read_hive(hive)
    s2 = state(2)
    hive.with_name("SYSTEM.LOG1").write_bytes(
        log_file(hive.read_bytes(), [log_entry(7, hbins_size(s2), pages(s2))])
    )
    with pytest.raises(HiveFileError, match="no entry with sequence number 5"):
        read_hive(hive)


def test_old_format_logs_are_refused_with_a_message(tmp_path: Path) -> None:
    primary = set_seq(state(1), 6, 5)
    old = bytearray(primary[:512])
    struct.pack_into("<I", old, 28, 1)  # file type 1: an old-format log
    hive = write(tmp_path, primary, {"LOG1": bytes(old) + b"DIRT" + bytes(508)})
    with pytest.raises(HiveFileError, match="old format"):
        read_hive(hive)


# --- damaged files --------------------------------------------------------------------------


def test_truncated_hive_is_refused(tmp_path: Path) -> None:
    data = build_hive(edge_tree())
    hive = write(tmp_path, data[: len(data) - 8192])
    with pytest.raises(HiveFileError, match="truncated"):
        read_hive(hive)
    hive.write_bytes(data[:1000])
    with pytest.raises(HiveFileError, match="shorter than") as info:
        read_hive(hive)
    assert info.value.win32 == ERROR_NOT_REGISTRY_FILE


def test_not_a_hive_is_refused(tmp_path: Path) -> None:
    hive = write(tmp_path, b"Windows Registry Editor Version 5.00\r\n".ljust(8192, b" "))
    with pytest.raises(HiveFileError, match="not a registry hive") as info:
        read_hive(hive)
    assert info.value.status == NtStatus.STATUS_NOT_REGISTRY_FILE


def test_a_corrupt_cell_is_refused_with_its_kind(tmp_path: Path) -> None:
    data = bytearray(build_hive(edge_tree()))
    at = data.index(b"nk", 4096 + 32 + 200)  # a key node past the root
    data[at : at + 2] = b"zz"
    hive = write(tmp_path, bytes(data))
    with pytest.raises(HiveFileError, match="corrupt hive"):
        read_hive(hive)
