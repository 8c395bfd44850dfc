"""Registry names and paths: parsing, limits, value validation, and walking a hive's keys.

Shared by the .reg codec (which canonicalises key paths and needs no database) and the
hive engine: ``KeyTable`` resolves names to keys in one hive's tables, so ``nt/hive.py``
only deals with files, transactions and the public calls.

Path forms accepted (case-insensitive, as the configuration manager compares names):
``\\Registry\\Machine\\SYSTEM\\...``, ``\\Registry\\User\\.DEFAULT\\...``,
``HKLM\\...`` / ``HKEY_LOCAL_MACHINE\\...``, ``HKU\\...`` / ``HKEY_USERS\\...``, and the
aliases Windows maps onto those trees:

- ``HKCR`` / ``HKEY_CLASSES_ROOT`` -> ``HKEY_LOCAL_MACHINE\\SOFTWARE\\Classes`` (the machine
  half of the merged view; the model has no per-user Classes hive);
- ``HKCU`` / ``HKEY_CURRENT_USER`` -> ``HKEY_USERS\\.DEFAULT`` (the registry layer runs as
  LocalSystem, whose HKCU is the .DEFAULT hive);
- ``HKCC`` / ``HKEY_CURRENT_CONFIG`` ->
  ``HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Hardware Profiles\\Current``.

A bare hive name (``SYSTEM\\Select``) is read as ``HKLM\\SYSTEM\\Select``.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from nt.status import NtStatus, hexstatus

REG_NONE = 0
REG_SZ = 1
REG_EXPAND_SZ = 2
REG_BINARY = 3
REG_DWORD = 4
REG_DWORD_BIG_ENDIAN = 5
REG_LINK = 6
REG_MULTI_SZ = 7
REG_RESOURCE_LIST = 8
REG_FULL_RESOURCE_DESCRIPTOR = 9
REG_RESOURCE_REQUIREMENTS_LIST = 10
REG_QWORD = 11

TYPE_NAMES: dict[int, str] = {
    REG_NONE: "REG_NONE",
    REG_SZ: "REG_SZ",
    REG_EXPAND_SZ: "REG_EXPAND_SZ",
    REG_BINARY: "REG_BINARY",
    REG_DWORD: "REG_DWORD",
    REG_DWORD_BIG_ENDIAN: "REG_DWORD_BIG_ENDIAN",
    REG_LINK: "REG_LINK",
    REG_MULTI_SZ: "REG_MULTI_SZ",
    REG_RESOURCE_LIST: "REG_RESOURCE_LIST",
    REG_FULL_RESOURCE_DESCRIPTOR: "REG_FULL_RESOURCE_DESCRIPTOR",
    REG_RESOURCE_REQUIREMENTS_LIST: "REG_RESOURCE_REQUIREMENTS_LIST",
    REG_QWORD: "REG_QWORD",
}

# Limits: learn.microsoft.com "Registry element size limits" plus the model's 1 MiB data cap
# (reliability-security.md §5.1).
MAX_KEY_NAME = 255
MAX_VALUE_NAME = 16383
MAX_DEPTH = 512
MAX_CREATE_LEVELS = 32
MAX_DATA = 1 << 20

HKLM = "HKEY_LOCAL_MACHINE"
HKU = "HKEY_USERS"
KERNEL_ROOT = "\\Registry"

PERSISTENT_HIVES: tuple[str, ...] = ("SYSTEM", "SOFTWARE", "SAM", "SECURITY", "DEFAULT")
VOLATILE_HIVES: tuple[str, ...] = ("HARDWARE",)
MACHINE_HIVES: tuple[str, ...] = ("HARDWARE", "SAM", "SECURITY", "SOFTWARE", "SYSTEM")

# alias (folded) -> (canonical root, components prepended below it)
_ROOT_ALIASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "hkey_local_machine": (HKLM, ()),
    "hklm": (HKLM, ()),
    "hkey_users": (HKU, ()),
    "hku": (HKU, ()),
    "hkey_current_user": (HKU, (".DEFAULT",)),
    "hkcu": (HKU, (".DEFAULT",)),
    "hkey_classes_root": (HKLM, ("SOFTWARE", "Classes")),
    "hkcr": (HKLM, ("SOFTWARE", "Classes")),
    "hkey_current_config": (
        HKLM,
        ("SYSTEM", "CurrentControlSet", "Hardware Profiles", "Current"),
    ),
    "hkcc": (HKLM, ("SYSTEM", "CurrentControlSet", "Hardware Profiles", "Current")),
}
_MACHINE_FOLDED = {h.casefold(): h for h in MACHINE_HIVES}


class RegistryError(Exception):
    """A registry call failed with an NTSTATUS (what NtXxxKey would return)."""

    def __init__(self, status: int, message: str = "") -> None:
        self.status = NtStatus(status)
        self.message = message
        text = f"{self.status.name} ({hexstatus(self.status)})"
        super().__init__(f"{text}: {message}" if message else text)


@dataclass(frozen=True)
class Location:
    """Where a path points: a root, and (unless the path is the root itself) a hive."""

    root: str  # HKEY_LOCAL_MACHINE, HKEY_USERS or \Registry
    hive: str | None  # SYSTEM ... DEFAULT, HARDWARE; None when the path names a root
    parts: tuple[str, ...]  # key names below the hive root, as the caller spelt them


def split_components(path: str) -> list[str]:
    """Split on backslashes and reject what NtOpenKey rejects (empty names, NUL, > 255)."""
    if not isinstance(path, str) or not path:
        raise RegistryError(NtStatus.STATUS_OBJECT_NAME_INVALID, "empty or non-string path")
    if "\0" in path:
        raise RegistryError(NtStatus.STATUS_OBJECT_NAME_INVALID, "path contains a NUL")
    body = path[1:] if path.startswith("\\") else path
    parts = body.split("\\")
    if any(p == "" for p in parts):
        raise RegistryError(
            NtStatus.STATUS_OBJECT_NAME_INVALID,
            f"empty key name in {path!r} (doubled or trailing backslash)",
        )
    for p in parts:
        if len(p) > MAX_KEY_NAME:
            raise RegistryError(
                NtStatus.STATUS_NAME_TOO_LONG,
                f"key name of {len(p)} characters (limit {MAX_KEY_NAME})",
            )
    return parts


def split_root(path: str) -> tuple[str, list[str]]:
    """(canonical root, components below it) with aliases expanded; hive not checked."""
    parts = split_components(path)
    if path.startswith("\\"):
        if parts[0].casefold() != "registry":
            raise RegistryError(
                NtStatus.STATUS_OBJECT_NAME_INVALID,
                f"{path!r}: kernel paths start with \\Registry",
            )
        if len(parts) == 1:
            return KERNEL_ROOT, []
        second = parts[1].casefold()
        if second == "machine":
            return HKLM, parts[2:]
        if second == "user":
            return HKU, parts[2:]
        raise RegistryError(
            NtStatus.STATUS_OBJECT_NAME_NOT_FOUND,
            f"{path!r}: \\Registry holds only Machine and User",
        )
    head = parts[0].casefold()
    if head in _ROOT_ALIASES:
        root, prefix = _ROOT_ALIASES[head]
        return root, [*prefix, *parts[1:]]
    if head in _MACHINE_FOLDED:
        return HKLM, parts
    raise RegistryError(
        NtStatus.STATUS_OBJECT_NAME_INVALID,
        f"unknown root key {parts[0]!r}: use HKEY_LOCAL_MACHINE (HKLM), HKEY_USERS (HKU), "
        "HKEY_CURRENT_USER (HKCU), HKEY_CLASSES_ROOT (HKCR) or \\Registry\\Machine",
    )


def user_path(path: str) -> str:
    """The ``HKEY_LOCAL_MACHINE\\...`` spelling of any accepted path (for .reg files)."""
    root, parts = split_root(path)
    if root == KERNEL_ROOT:
        raise RegistryError(NtStatus.STATUS_OBJECT_NAME_INVALID, "\\Registry has no HKEY_ spelling")
    return "\\".join([root, *parts])


def locate(path: str) -> Location:
    """Resolve a path to its hive; a missing hive is STATUS_OBJECT_NAME_NOT_FOUND."""
    root, parts = split_root(path)
    if not parts:
        return Location(root, None, ())
    if root == HKLM:
        hive = _MACHINE_FOLDED.get(parts[0].casefold())
    elif root == HKU:
        # .DEFAULT is the DEFAULT hive; any other name is a user hive NtLoadKey put there
        # (HKU\<SID>); whether it is loaded is the registry's to say.
        hive = "DEFAULT" if parts[0].casefold() == ".default" else user_hive_name(parts[0])
    else:
        hive = None
    if hive is None:
        raise RegistryError(
            NtStatus.STATUS_OBJECT_NAME_NOT_FOUND,
            f"no hive {parts[0]!r} is loaded under {root}",
        )
    below = tuple(parts[1:])
    if len(below) > MAX_DEPTH:
        raise RegistryError(
            NtStatus.STATUS_INVALID_PARAMETER,
            f"key depth {len(below)} exceeds {MAX_DEPTH} levels",
        )
    return Location(root, hive, below)


USER_HIVE_PREFIX = "USER:"  # the registry's name for a hive loaded under HKU (a profile)


def user_hive_name(key: str) -> str:
    """The hive name of ``HKU\\<key>`` (a SID, case-folded: names are case-insensitive)."""
    return USER_HIVE_PREFIX + key.upper()


def hive_prefix(hive: str) -> str:
    """The user-facing path of a hive's root key."""
    if hive.startswith(USER_HIVE_PREFIX):
        return f"{HKU}\\{hive[len(USER_HIVE_PREFIX) :]}"
    return f"{HKU}\\.DEFAULT" if hive == "DEFAULT" else f"{HKLM}\\{hive}"


def check_value_name(name: str) -> str:
    """A value name: any text up to 16,383 characters except NUL ("" is the default)."""
    if not isinstance(name, str):
        raise RegistryError(NtStatus.STATUS_OBJECT_NAME_INVALID, "value name must be a str")
    if "\0" in name:
        raise RegistryError(NtStatus.STATUS_OBJECT_NAME_INVALID, "value name contains a NUL")
    if len(name) > MAX_VALUE_NAME:
        raise RegistryError(
            NtStatus.STATUS_NAME_TOO_LONG,
            f"value name of {len(name)} characters (limit {MAX_VALUE_NAME})",
        )
    return name


def _check_text(text: str, what: str) -> None:
    if "\0" in text:
        raise RegistryError(NtStatus.STATUS_INVALID_PARAMETER, f"{what} contains a NUL")
    try:
        text.encode("utf-16-le")
    except UnicodeEncodeError as exc:
        raise RegistryError(
            NtStatus.STATUS_INVALID_PARAMETER, f"{what} is not valid Unicode: {exc.reason}"
        ) from None


def validate_value(type_: int, data: Any) -> Any:
    """Check ``data`` against ``type_`` and return it in the HACKING.md Python form.

    A wrong Python type is STATUS_OBJECT_TYPE_MISMATCH; the right type with a bad value
    (out of range, wrong byte length, NUL inside a string) is STATUS_INVALID_PARAMETER.
    """
    if isinstance(type_, bool) or not isinstance(type_, int) or not 0 <= type_ <= 0xFFFFFFFF:
        raise RegistryError(NtStatus.STATUS_INVALID_PARAMETER, f"bad value type {type_!r}")
    tname = TYPE_NAMES.get(type_, f"type {type_}")
    mismatch = RegistryError(
        NtStatus.STATUS_OBJECT_TYPE_MISMATCH, f"{tname} cannot hold {type(data).__name__}"
    )
    if type_ in (REG_SZ, REG_EXPAND_SZ):
        if not isinstance(data, str):
            raise mismatch
        _check_text(data, tname)
        return data
    if type_ == REG_MULTI_SZ:
        if not isinstance(data, list | tuple) or not all(isinstance(s, str) for s in data):
            raise mismatch
        for s in data:
            if s == "":
                raise RegistryError(
                    NtStatus.STATUS_INVALID_PARAMETER,
                    "REG_MULTI_SZ cannot hold an empty string (it ends the list)",
                )
            _check_text(s, tname)
        return list(data)
    if type_ in (REG_DWORD, REG_QWORD):
        width = 4 if type_ == REG_DWORD else 8
        if isinstance(data, bytes | bytearray | memoryview):
            raw = bytes(data)
            if len(raw) != width:
                raise RegistryError(
                    NtStatus.STATUS_INVALID_PARAMETER,
                    f"{tname} data is {width} bytes, got {len(raw)}",
                )
            return int.from_bytes(raw, "little")
        if isinstance(data, bool) or not isinstance(data, int):
            raise mismatch
        if not 0 <= data < 1 << (8 * width):
            raise RegistryError(
                NtStatus.STATUS_INVALID_PARAMETER, f"{tname} {data} out of range 0..2^{8 * width}-1"
            )
        return data
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    raise mismatch


# --- the key tree of one hive database ---------------------------------------------------

_FILETIME_EPOCH = 116444736000000000  # 1601-01-01 -> 1970-01-01 in 100 ns units

_TABLES = """
CREATE TABLE IF NOT EXISTS {k}(
  id INTEGER PRIMARY KEY,
  parent_id INTEGER {fk},
  name TEXT NOT NULL,
  name_folded TEXT NOT NULL,
  last_write_time INTEGER NOT NULL,
  volatile INTEGER NOT NULL DEFAULT 0,
  UNIQUE(parent_id, name_folded));
CREATE TABLE IF NOT EXISTS {v}(
  key_id INTEGER NOT NULL {fk},
  name TEXT NOT NULL,
  name_folded TEXT NOT NULL,
  type INTEGER NOT NULL,
  data BLOB NOT NULL,
  UNIQUE(key_id, name_folded));
"""
# reliability-security.md §5.2; names compare by str.casefold() (NOCASE folds ASCII only).
MAIN_SCHEMA = _TABLES.format(k="keys", v='"values"', fk="REFERENCES keys(id) ON DELETE CASCADE")
TEMP_SCHEMA = _TABLES.format(k="temp.vkeys", v="temp.vvalues", fk="")
ROOT_ID = 1


def filetime_now() -> int:
    """Now as a Windows FILETIME (100 ns since 1601), the unit of LastWriteTime."""
    return time.time_ns() // 100 + _FILETIME_EPOCH


def _tables(kid: int) -> tuple[str, str]:
    return ("temp.vkeys", "temp.vvalues") if kid < 0 else ("keys", '"values"')


class KeyTable:
    """Keys and values of one hive, addressed by id; the caller owns the transaction.

    Stable keys live in ``keys``/``"values"``; volatile keys in the connection's TEMP
    tables ``vkeys``/``vvalues`` with negative ids, so they join the same transactions and
    disappear with the connection. ``in_memory`` marks HARDWARE, volatile as a whole.
    """

    def __init__(self, name: str, conn: sqlite3.Connection, in_memory: bool) -> None:
        self.name = name
        self.conn = conn
        self.in_memory = in_memory
        conn.executescript(TEMP_SCHEMA)

    def child(self, parent: int, name: str) -> int | None:
        folded = name.casefold()
        for table in ("temp.vkeys",) if parent < 0 else ("keys", "temp.vkeys"):
            row = self.conn.execute(
                f"SELECT id FROM {table} WHERE parent_id = ? AND name_folded = ?", (parent, folded)
            ).fetchone()
            if row is not None:
                return row[0]
        return None

    def walk(self, parts: tuple[str, ...]) -> tuple[int, int]:
        """(id of the deepest existing key, how many of ``parts`` exist)."""
        kid = ROOT_ID
        for depth, part in enumerate(parts):
            child = self.child(kid, part)
            if child is None:
                return kid, depth
            kid = child
        return kid, len(parts)

    def find(self, parts: tuple[str, ...], path: str) -> int:
        kid, found = self.walk(parts)
        if found != len(parts):
            raise RegistryError(NtStatus.STATUS_OBJECT_NAME_NOT_FOUND, f"no key {path!r}")
        return kid

    def children(self, kid: int) -> list[tuple[int, str]]:
        """Subkeys as (id, name) in case-insensitive order, as NtEnumerateKey lists them."""
        rows: list[tuple[int, str, str]] = []
        for table in ("temp.vkeys",) if kid < 0 else ("keys", "temp.vkeys"):
            rows += self.conn.execute(
                f"SELECT id, name, name_folded FROM {table} WHERE parent_id = ?", (kid,)
            ).fetchall()
        rows.sort(key=lambda r: r[2])
        return [(r[0], r[1]) for r in rows]

    def key_row(self, kid: int) -> tuple[str, int, int, int | None]:
        """(name, last_write_time, volatile, parent_id)."""
        return self.conn.execute(
            f"SELECT name, last_write_time, volatile, parent_id FROM {_tables(kid)[0]} "
            "WHERE id = ?",
            (kid,),
        ).fetchone()

    def touch(self, kid: int) -> None:
        self.conn.execute(
            f"UPDATE {_tables(kid)[0]} SET last_write_time = ? WHERE id = ?", (filetime_now(), kid)
        )

    def create(self, parts: tuple[str, ...], volatile: bool) -> bool:
        """Create ``parts`` and missing parents (at most 32 levels); True if created."""
        kid, depth = self.walk(parts)
        missing = parts[depth:]
        if not missing:
            return False
        if len(missing) > MAX_CREATE_LEVELS:
            raise RegistryError(
                NtStatus.STATUS_INVALID_PARAMETER,
                f"{len(missing)} missing levels; at most {MAX_CREATE_LEVELS} per call",
            )
        volatile = volatile and not self.in_memory
        if kid < 0 and not volatile:
            raise RegistryError(
                NtStatus.STATUS_INVALID_PARAMETER,
                "a volatile key can only have volatile subkeys (CHILD_MUST_BE_VOLATILE)",
            )
        now = filetime_now()
        self.touch(kid)
        for part in missing:
            row = (kid, part, part.casefold(), now)
            if volatile:
                kid = self.conn.execute(
                    "SELECT coalesce(min(id), 0) - 1 FROM temp.vkeys"
                ).fetchone()[0]
                self.conn.execute(
                    "INSERT INTO temp.vkeys(id, parent_id, name, name_folded, last_write_time, "
                    "volatile) VALUES (?, ?, ?, ?, ?, 1)",
                    (kid, *row),
                )
            else:
                kid = self.conn.execute(
                    "INSERT INTO keys(parent_id, name, name_folded, last_write_time, volatile) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (*row, int(self.in_memory)),
                ).lastrowid
        return True

    def drop_tree(self, kid: int) -> None:
        """Delete the key, its subkeys and their values (children first)."""
        order, stack = [], [kid]
        while stack:
            k = stack.pop()
            order.append(k)
            stack.extend(c for c, _ in self.children(k))
        parent = self.key_row(kid)[3]
        for k in reversed(order):
            kt, vt = _tables(k)
            self.conn.execute(f"DELETE FROM {vt} WHERE key_id = ?", (k,))
            self.conn.execute(f"DELETE FROM {kt} WHERE id = ?", (k,))
        if parent is not None:
            self.touch(parent)

    def value(self, kid: int, name: str) -> tuple[int, bytes] | None:
        return self.conn.execute(
            f"SELECT type, data FROM {_tables(kid)[1]} WHERE key_id = ? AND name_folded = ?",
            (kid, name.casefold()),
        ).fetchone()

    def values(self, kid: int) -> list[tuple[str, int, bytes]]:
        """(name, type, raw data) in creation order, as NtEnumerateValueKey lists them."""
        return self.conn.execute(
            f"SELECT name, type, data FROM {_tables(kid)[1]} WHERE key_id = ? ORDER BY rowid",
            (kid,),
        ).fetchall()

    def put_value(self, kid: int, name: str, type_: int, raw: bytes) -> None:
        """Insert or overwrite (keeping the first spelling of the name and its position)."""
        self.conn.execute(
            f"INSERT INTO {_tables(kid)[1]}(key_id, name, name_folded, type, data) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(key_id, name_folded) DO UPDATE SET "
            "type = excluded.type, data = excluded.data",
            (kid, name, name.casefold(), type_, raw),
        )
        self.touch(kid)

    def delete_value(self, kid: int, name: str) -> bool:
        cur = self.conn.execute(
            f"DELETE FROM {_tables(kid)[1]} WHERE key_id = ? AND name_folded = ?",
            (kid, name.casefold()),
        )
        if cur.rowcount:
            self.touch(kid)
        return cur.rowcount > 0

    def copy_tree(self, src: int, dst: int) -> None:
        """Copy the stable subkeys and values below ``src`` under ``dst`` (not volatile ones)."""
        stack = [(src, dst)]
        while stack:
            s, d = stack.pop()
            self.conn.execute(
                'INSERT INTO "values"(key_id, name, name_folded, type, data) '
                'SELECT ?, name, name_folded, type, data FROM "values" WHERE key_id = ? '
                "ORDER BY rowid",
                (d, s),
            )
            rows = self.conn.execute(
                "SELECT id, name, name_folded, last_write_time FROM keys WHERE parent_id = ?", (s,)
            ).fetchall()
            for cid, *row in rows:
                new = self.conn.execute(
                    "INSERT INTO keys(parent_id, name, name_folded, last_write_time, volatile) "
                    "VALUES (?, ?, ?, ?, 0)",
                    (d, *row),
                ).lastrowid
                stack.append((cid, new))
