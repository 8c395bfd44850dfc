"""The model's autochk: a read-only check of the data root's volume C:.

smss runs ``autocheck autochk *`` from BootExecute before the registry is writable
(nt-spec §1.2). The model's "file system" is the hive files, the crash dump directory and
the temporary files the atomic-write pattern leaves behind after a crash. Nothing is
repaired or written: hives are opened through read-only SQLite URIs, as chkdsk without /F
only reports.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from nt.status import NtStatus

SQLITE_MAGIC = b"SQLite format 3\x00"
SQLITE_HEADER_SIZE = 100
STANDARD_HIVES = ("SYSTEM", "SOFTWARE", "SAM", "SECURITY", "DEFAULT")
CONFIG_DIR = Path("Windows", "System32", "config")
MINIDUMP_DIR = Path("Windows", "Minidump")
_COMPANION_SUFFIXES = ("-wal", "-shm", "-journal")


@dataclass(frozen=True)
class AutochkProblem:
    path: str
    status: NtStatus
    message: str


@dataclass
class AutochkReport:
    volume: str
    files_checked: list[str] = field(default_factory=list)
    problems: list[AutochkProblem] = field(default_factory=list)
    stale_temp_files: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def status(self) -> NtStatus:
        return self.problems[0].status if self.problems else NtStatus.STATUS_SUCCESS

    def as_dict(self) -> dict[str, object]:
        return {
            "volume": self.volume,
            "files_checked": list(self.files_checked),
            "problems": [
                {
                    "path": p.path,
                    "status": f"0x{int(p.status):08X}",
                    "status_name": p.status.name,
                    "message": p.message,
                }
                for p in self.problems
            ],
            "stale_temp_files": list(self.stale_temp_files),
            "lines": list(self.lines),
        }


def check_volume(root: Path, letter: str = "C") -> AutochkReport:
    """Check ``<root>/<letter>`` (the volume ``<letter>:``) without writing to it."""
    volume = Path(root) / letter
    report = AutochkReport(volume=f"{letter}:")
    report.lines.append("The type of the file system is NTFS.")
    report.lines.append("WARNING!  /F parameter not specified.")
    report.lines.append("Running CHKDSK in read-only mode.")
    if not volume.is_dir():
        report.problems.append(
            AutochkProblem(str(volume), NtStatus.STATUS_OBJECT_NAME_NOT_FOUND, "volume not found")
        )
        report.lines.append(f"Cannot open volume for direct access: {volume} does not exist.")
        return report
    report.lines.append("CHKDSK is verifying files (stage 1 of 3)...")
    _check_hives(volume, report)
    report.lines.append(f"  {len(report.files_checked)} file records processed.")
    report.lines.append("File verification completed.")
    report.lines.append("CHKDSK is verifying indexes (stage 2 of 3)...")
    _check_minidump_dir(volume, report)
    report.lines.append("Index verification completed.")
    report.lines.append("CHKDSK is verifying security descriptors (stage 3 of 3)...")
    _find_stale_temp_files(volume, report)
    report.lines.append("Security descriptor verification completed.")
    if report.ok:
        report.lines.append("Windows has checked the file system and found no problems.")
    else:
        report.lines.append("Windows has checked the file system and found problems.")
        report.lines.append("Run CHKDSK with the /F (fix) option to correct these.")
    return report


def check_volumes(root: Path, arguments: str = "*") -> list[AutochkReport]:
    """autochk's argument: ``*`` is every volume (drive-letter directories of the data root),
    otherwise a list of volumes such as ``C:`` or ``\\??\\C:``."""
    root = Path(root)
    if arguments.strip() in ("", "*"):
        found = root.iterdir() if root.is_dir() else iter(())
        letters = sorted(p.name.upper() for p in found if _is_drive_dir(p)) or ["C"]
    else:
        letters = [word.removeprefix("\\??\\").rstrip(":\\").upper() for word in arguments.split()]
    return [check_volume(root, letter) for letter in letters]


def check_hive_file(path: Path) -> AutochkProblem | None:
    """None when ``path`` is a sound SQLite hive, else the problem found."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            header = handle.read(SQLITE_HEADER_SIZE)
    except OSError as exc:
        return AutochkProblem(
            str(path), NtStatus.STATUS_REGISTRY_IO_FAILED, f"cannot read: {exc.strerror}"
        )
    if len(header) < SQLITE_HEADER_SIZE or not header.startswith(SQLITE_MAGIC):
        return AutochkProblem(
            str(path), NtStatus.STATUS_NOT_REGISTRY_FILE, "not a registry hive (bad header)"
        )
    # With a -wal file the newest pages may live there, so the main file's size proves nothing.
    truncated = None if Path(f"{path}-wal").exists() else _truncation(header, size)
    if truncated:
        return AutochkProblem(str(path), NtStatus.STATUS_REGISTRY_CORRUPT, truncated)
    try:
        findings = _quick_check(path)
    except sqlite3.DatabaseError as exc:
        return AutochkProblem(str(path), NtStatus.STATUS_REGISTRY_CORRUPT, str(exc))
    if findings != ["ok"]:
        return AutochkProblem(str(path), NtStatus.STATUS_REGISTRY_CORRUPT, "; ".join(findings[:5]))
    return None


def _check_hives(volume: Path, report: AutochkReport) -> None:
    config = volume / CONFIG_DIR
    if not config.is_dir():
        report.problems.append(
            AutochkProblem(
                str(config), NtStatus.STATUS_OBJECT_PATH_NOT_FOUND, "hive directory missing"
            )
        )
        return
    present = set()
    for path in sorted(config.iterdir()):
        if not path.is_file() or not _is_hive_name(path.name):
            continue
        present.add(path.name.upper())
        report.files_checked.append(str(path.relative_to(volume)))
        problem = check_hive_file(path)
        if problem is not None:
            report.problems.append(problem)
            report.lines.append(f"  Hive {path.name}: {problem.message} ({problem.status.name}).")
    for hive in STANDARD_HIVES:
        if hive not in present:
            report.lines.append(f"  Hive {hive} is not present.")


def _check_minidump_dir(volume: Path, report: AutochkReport) -> None:
    minidump = volume / MINIDUMP_DIR
    if not minidump.exists():
        return
    try:
        names = os.listdir(minidump)
    except OSError as exc:
        report.problems.append(
            AutochkProblem(
                str(minidump),
                NtStatus.STATUS_ACCESS_DENIED,
                f"dump directory unreadable: {exc.strerror}",
            )
        )
        return
    report.lines.append(f"  {len(names)} entries in {MINIDUMP_DIR}.")


def _find_stale_temp_files(volume: Path, report: AutochkReport) -> None:
    # A *.tmp file is a write that was interrupted before its rename: the original is intact.
    for path in sorted(volume.rglob("*.tmp")):
        if path.is_file():
            report.stale_temp_files.append(str(path.relative_to(volume)))
    if report.stale_temp_files:
        report.lines.append(
            f"  {len(report.stale_temp_files)} orphaned temporary file(s) found; left in place."
        )


def _is_drive_dir(path: Path) -> bool:
    return path.is_dir() and len(path.name) == 1 and path.name.isalpha()


def _is_hive_name(name: str) -> bool:
    return "." not in name and not name.endswith(_COMPANION_SUFFIXES)


def _truncation(header: bytes, size: int) -> str | None:
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return f"invalid page size {page_size}"
    pages = int.from_bytes(header[28:32], "big")
    # The in-header page count is valid only when the two change counters agree.
    counted = header[24:28] == header[92:96] and pages > 0
    if size % page_size or (counted and size < pages * page_size):
        return f"hive file truncated: {size} bytes, expected {pages * page_size}"
    return None


def _quick_check(path: Path) -> list[str]:
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    # With no -wal file no writer has the hive open; immutable=1 then keeps SQLite from
    # creating -wal/-shm files, which a read-only WAL reader would otherwise leave behind.
    if not Path(f"{path}-wal").exists():
        uri += "&immutable=1"
    connection = sqlite3.connect(uri, uri=True)
    try:
        connection.execute("PRAGMA query_only = 1")
        return [str(row[0]) for row in connection.execute("PRAGMA quick_check")]
    finally:
        connection.close()
