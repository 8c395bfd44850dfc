"""The model's autochk (processes/autochk/check.py)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from nt.status import NtStatus
from processes.autochk.check import check_hive_file, check_volume, check_volumes


def make_hive(path: Path, rows: int = 400) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE keys (path TEXT PRIMARY KEY, data BLOB)")
    connection.executemany(
        "INSERT INTO keys VALUES (?, ?)", [(f"k{i}", b"x" * 300) for i in range(rows)]
    )
    connection.commit()
    connection.close()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    config = tmp_path / "C" / "Windows" / "System32" / "config"
    for hive in ("SYSTEM", "SOFTWARE"):
        make_hive(config / hive)
    return tmp_path


def config_dir(root: Path) -> Path:
    return root / "C" / "Windows" / "System32" / "config"


def test_good_hives_pass_with_the_chkdsk_summary(root):
    report = check_volume(root)
    assert report.ok
    assert report.status == NtStatus.STATUS_SUCCESS
    assert sorted(report.files_checked) == [
        os.path.join("Windows", "System32", "config", "SOFTWARE"),
        os.path.join("Windows", "System32", "config", "SYSTEM"),
    ]
    assert report.lines[0] == "The type of the file system is NTFS."
    assert report.lines[-1] == "Windows has checked the file system and found no problems."
    assert "  Hive SAM is not present." in report.lines


def test_check_writes_nothing_to_the_volume(root):
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    check_volume(root)
    after = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    assert after == before  # no -wal/-shm created, no hive touched


def test_truncated_hive_is_reported_corrupt(root):
    hive = config_dir(root) / "SYSTEM"
    data = hive.read_bytes()
    hive.write_bytes(data[: len(data) // 2])
    report = check_volume(root)
    assert not report.ok
    [problem] = report.problems
    assert problem.status == NtStatus.STATUS_REGISTRY_CORRUPT
    assert problem.path.endswith("SYSTEM")
    assert report.lines[-2] == "Windows has checked the file system and found problems."


def test_garbage_file_is_not_a_registry_file(root):
    (config_dir(root) / "SAM").write_bytes(b"regf" + os.urandom(4000))
    problem = check_hive_file(config_dir(root) / "SAM")
    assert problem is not None
    assert problem.status == NtStatus.STATUS_NOT_REGISTRY_FILE
    assert check_volume(root).status == NtStatus.STATUS_NOT_REGISTRY_FILE


def test_corrupt_pages_behind_a_valid_header_are_registry_corrupt(root):
    hive = config_dir(root) / "SOFTWARE"
    data = bytearray(hive.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[page * 2 : page * 2 + 400] = os.urandom(400)
    hive.write_bytes(bytes(data))
    problem = check_hive_file(hive)
    assert problem is not None
    assert problem.status == NtStatus.STATUS_REGISTRY_CORRUPT


def test_empty_hive_file_is_not_a_registry_file(root):
    (config_dir(root) / "DEFAULT").write_bytes(b"")
    assert check_volume(root).status == NtStatus.STATUS_NOT_REGISTRY_FILE


def test_hive_open_by_a_writer_is_checked_through_its_wal(root):
    hive = config_dir(root) / "SYSTEM"
    writer = sqlite3.connect(hive)
    try:
        writer.execute("INSERT INTO keys VALUES ('new', x'00')")
        writer.commit()
        assert Path(f"{hive}-wal").exists()
        assert check_hive_file(hive) is None
    finally:
        writer.close()


def test_companion_and_temporary_files_are_not_hives_but_temps_are_listed(root):
    (config_dir(root) / "SYSTEM.tmp").write_bytes(b"half-written")
    (config_dir(root) / "SOFTWARE-journal").write_bytes(b"")
    report = check_volume(root)
    assert report.ok
    assert report.stale_temp_files == [os.path.join("Windows", "System32", "config", "SYSTEM.tmp")]
    assert any("orphaned temporary" in line for line in report.lines)


def test_unreadable_minidump_directory_is_access_denied(root, monkeypatch):
    minidump = root / "C" / "Windows" / "Minidump"
    minidump.mkdir()
    real_listdir = os.listdir

    def listdir(path):
        if Path(path) == minidump:
            raise PermissionError(13, "Permission denied")
        return real_listdir(path)

    # chmod 0 does not stop root, so the denial is simulated.
    monkeypatch.setattr("processes.autochk.check.os.listdir", listdir)
    report = check_volume(root)
    assert [p.status for p in report.problems] == [NtStatus.STATUS_ACCESS_DENIED]


def test_readable_minidump_directory_is_counted(root):
    minidump = root / "C" / "Windows" / "Minidump"
    minidump.mkdir()
    (minidump / "Mini010125-01.json").write_text("{}")
    report = check_volume(root)
    assert report.ok
    assert any("1 entries" in line for line in report.lines)


def test_missing_volume_is_reported(tmp_path):
    report = check_volume(tmp_path)
    assert report.status == NtStatus.STATUS_OBJECT_NAME_NOT_FOUND


def test_star_checks_every_volume_of_the_data_root(root):
    (root / "logs").mkdir()
    reports = check_volumes(root, "*")
    assert [r.volume for r in reports] == ["C:"]
    assert [r.volume for r in check_volumes(root, r"\??\C:")] == ["C:"]
    assert reports[0].as_dict()["problems"] == []
