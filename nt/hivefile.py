"""Hive files on disk: creating, opening, checking and setting aside SQLite hives.

What ``nt/hive.py``'s ``Registry.open`` needs below the registry calls: a fresh hive is
built as ``<name>.tmp``, fsynced and renamed (never a half-made hive); opening checks the
SQLite header, ``quick_check``, our ``application_id`` and the root key; a bad hive is
renamed to ``<name>.corrupt[.N]`` with its -wal/-shm (never deleted).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from nt.regpath import MAIN_SCHEMA, ROOT_ID, filetime_now

SQLITE_VERSION: str = sqlite3.sqlite_version
APPLICATION_ID = 0x72656766  # 'regf', the real hive signature, marks our SQLite files
SCHEMA_VERSION = 1
_SQLITE_MAGIC = b"SQLite format 3\x00"


def sqlite_wal_reset_bug() -> bool:
    """True when the linked SQLite has the WAL-reset race (fixed 3.51.3, 3.50.7, 3.44.6).

    The hive keeps one connection per file, so the race cannot happen here; the kernel
    logs this at boot, as reliability-security.md §5.2 asks.
    """
    v = sqlite3.sqlite_version_info
    return not (v >= (3, 51, 3) or (3, 50, 7) <= v < (3, 51) or (3, 44, 6) <= v < (3, 45))


class Corrupt(Exception):
    pass


def fsync(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def init_schema(conn: sqlite3.Connection, name: str, volatile: int = 0) -> None:
    conn.executescript(
        f"BEGIN; PRAGMA application_id={APPLICATION_ID}; PRAGMA user_version={SCHEMA_VERSION};"
        f"{MAIN_SCHEMA}"
    )
    conn.execute(
        "INSERT INTO keys(id, parent_id, name, name_folded, last_write_time, volatile) "
        "VALUES (?, NULL, ?, ?, ?, ?)",
        (ROOT_ID, name, name.casefold(), filetime_now(), volatile),
    )
    conn.execute("COMMIT")


def create_file(path: Path, name: str) -> None:
    """Build a fresh hive as ``<name>.tmp``, fsync, rename: never a half-made hive."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=MEMORY")  # no side files while building
        init_schema(conn, name)
    finally:
        conn.close()
    fsync(tmp)
    os.replace(tmp, path)
    fsync(path.parent, directory=True)


def connect_checked(path: Path) -> sqlite3.Connection:
    """Open a hive file; anything but a healthy hive of ours raises Corrupt."""
    with path.open("rb") as f:
        head = f.read(100)
    if len(head) < 100 or not head.startswith(_SQLITE_MAGIC):
        raise Corrupt(f"not a SQLite database ({len(head)} header bytes)")
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.executescript(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; "
            "PRAGMA temp_store=MEMORY;"
        )
        rows = conn.execute("PRAGMA quick_check").fetchall()
        if rows != [("ok",)]:
            raise Corrupt("quick_check: " + "; ".join(str(r[0]) for r in rows[:3]))
        app = conn.execute("PRAGMA application_id").fetchone()[0]
        if app != APPLICATION_ID:
            raise Corrupt(f"application_id {app:#x}: not a hive")
        if conn.execute("SELECT 1 FROM keys WHERE id = ?", (ROOT_ID,)).fetchone() is None:
            raise Corrupt("root key missing")
    except (sqlite3.DatabaseError, Corrupt) as exc:
        conn.close()
        if isinstance(exc, Corrupt):
            raise
        raise Corrupt(f"sqlite: {exc}") from None
    return conn


def move_aside(path: Path) -> str:
    """Rename a bad hive (with its -wal/-shm, never deleted) to ``<name>.corrupt[.N]``."""
    dest = path.with_name(path.name + ".corrupt")
    n = 0
    while dest.exists():
        n += 1
        dest = path.with_name(f"{path.name}.corrupt.{n}")
    os.replace(path, dest)
    for side in ("-wal", "-shm"):
        if Path(f"{path}{side}").exists():
            os.replace(f"{path}{side}", f"{dest}{side}")
    fsync(path.parent, directory=True)
    return str(dest)
