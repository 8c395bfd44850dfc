"""The configuration manager's storage engine: hives as SQLite databases.

reliability-security.md §5.2: each persistent hive (SYSTEM, SOFTWARE, SAM, SECURITY, DEFAULT)
is one SQLite file with ONE connection (WAL, ``synchronous=FULL``), and every call is one
``BEGIN IMMEDIATE … COMMIT``, so a call that returns has been committed and survives a
``kill -9``. HARDWARE lives in an in-memory database rebuilt each boot. Volatile keys of a
persistent hive live in TEMP tables of its connection (``nt/regpath.KeyTable``), so they
vanish when it closes, as REG_OPTION_VOLATILE keys vanish at reboot.

Deleting a key that has subkeys is refused with STATUS_ACCESS_DENIED, which is what a Win32
caller of RegDeleteKey sees (NtDeleteKey's STATUS_CANNOT_DELETE maps to ERROR_ACCESS_DENIED);
``delete_tree`` is the recursive ``reg delete`` / RegDeleteTree. A hive root cannot be deleted.
``SYSTEM\\CurrentControlSet`` is resolved on every call from ``Select\\Current``; it is not
stored, so enumerating SYSTEM does not list it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nt import regfile, regsnap
from nt.hivefile import (  # re-exported: the kernel logs the SQLite version and its bug
    SQLITE_VERSION,
    Corrupt,
    connect_checked,
    create_file,
    init_schema,
    move_aside,
    sqlite_wal_reset_bug,
)
from nt.regfile import DeleteKey, Op, SetKey, SetValue
from nt.regpath import (
    HKLM,
    KERNEL_ROOT,
    MACHINE_HIVES,
    MAX_DATA,
    PERSISTENT_HIVES,
    REG_DWORD,
    ROOT_ID,
    USER_HIVE_PREFIX,
    KeyTable,
    RegistryError,
    check_value_name,
    hive_prefix,
    locate,
    user_hive_name,
    validate_value,
)
from nt.status import NtStatus

__all__ = [
    "SQLITE_VERSION",
    "HiveEvent",
    "KeyInfo",
    "Registry",
    "RegistryError",
    "sqlite_wal_reset_bug",
]


@dataclass(frozen=True)
class KeyInfo:
    """NtQueryKey(KeyFullInformation), the parts the model keeps."""

    name: str
    subkeys: int
    values: int
    last_write_time: int  # FILETIME
    volatile: bool

    def keys(self) -> list[str]:
        """With ``__getitem__``, lets ``dict(info)`` give the wire form."""
        return ["name", "subkeys", "values", "last_write_time", "volatile"]

    def __getitem__(self, field: str) -> Any:
        return getattr(self, field)


@dataclass(frozen=True)
class HiveEvent:
    """Something ``Registry.open`` did that the kernel should log."""

    hive: str
    event: str  # "hive.created" or "hive.corrupt"
    status: NtStatus
    detail: str
    moved_to: str | None = None


class Registry:
    """All hives of one machine; every public call is one committed transaction.

    The constructor opens the hives (``open``; its events are kept in
    ``recovery_events``); ``close()`` or a ``with`` block ends it, and ``open()`` again
    reopens. Calls are serialised by one lock: the single writer of
    reliability-security.md §5.2.
    """

    def __init__(self, config_dir: str | os.PathLike[str]) -> None:
        self.config_dir = Path(config_dir)
        self.recovery_events: list[HiveEvent] = []
        self._hives: dict[str, KeyTable] = {}
        self._user_refs: dict[str, int] = {}  # loads of each user hive (logons using it)
        self._user_files: dict[str, Path] = {}
        self._lock = threading.RLock()
        self.open()

    # --- opening and closing ------------------------------------------------------------

    def open(self) -> list[HiveEvent]:
        """Open (creating or recovering) every hive; SYSTEM unusable -> REGISTRY_CORRUPT.

        Another hive that fails the check is moved aside to ``<name>.corrupt`` and
        recreated empty, with a ``hive.corrupt`` event; a missing one is created
        (``hive.created``), which tells the kernel to import ``configs/*.reg``.
        """
        with self._lock:
            if self._hives:
                return self.recovery_events
            self.config_dir.mkdir(parents=True, exist_ok=True)
            for stale in self.config_dir.glob("*.tmp"):
                stale.unlink(missing_ok=True)
            events: list[HiveEvent] = []
            try:
                for name in PERSISTENT_HIVES:
                    self._hives[name] = KeyTable(name, self._open_file(name, events), False)
                mem = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
                init_schema(mem, "HARDWARE", volatile=1)
                self._hives["HARDWARE"] = KeyTable("HARDWARE", mem, in_memory=True)
            except BaseException:
                self.close()
                raise
            self.recovery_events = events
            return events

    def _open_file(self, name: str, events: list[HiveEvent]) -> sqlite3.Connection:
        path = self.config_dir / name
        if not path.exists():
            create_file(path, name)
            events.append(HiveEvent(name, "hive.created", NtStatus.STATUS_SUCCESS, str(path)))
        try:
            return connect_checked(path)
        except Corrupt as exc:
            if name == "SYSTEM":
                raise RegistryError(
                    NtStatus.STATUS_REGISTRY_CORRUPT, f"SYSTEM hive {path}: {exc}"
                ) from None
            moved = move_aside(path)
            create_file(path, name)
            status = NtStatus.STATUS_REGISTRY_CORRUPT
            events.append(HiveEvent(name, "hive.corrupt", status, str(exc), moved))
            return connect_checked(path)

    def close(self) -> None:
        """Close every connection (SQLite checkpoints the WAL on the last close)."""
        with self._lock:
            for table in self._hives.values():
                with contextlib.suppress(sqlite3.Error):
                    table.conn.close()
            self._hives = {}
            self._user_refs.clear()
            self._user_files.clear()

    def __enter__(self) -> Registry:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transactions and path resolution -----------------------------------------------

    def _hive(self, name: str) -> KeyTable:
        try:
            return self._hives[name]
        except KeyError:
            if name.startswith(USER_HIVE_PREFIX) and self._hives:
                raise RegistryError(
                    NtStatus.STATUS_OBJECT_NAME_NOT_FOUND,
                    f"no hive is loaded at {hive_prefix(name)}",
                ) from None
            raise RegistryError(NtStatus.STATUS_INVALID_HANDLE, "registry is not open") from None

    # --- user hives (NtLoadKey / NtUnloadKey: a profile's NTUSER.DAT at HKU\<SID>) ---------

    def load_user_hive(self, key: str, path: Path, template: str = "DEFAULT") -> bool:
        r"""Load the hive file ``path`` at ``HKU\<key>``; a missing file is first made as a
        copy of ``template`` (userenv copies the Default User's NTUSER.DAT on a first
        logon). True when the file was created. Loading the same file again counts one
        more user of it; another file at a loaded key is STATUS_OBJECT_NAME_COLLISION."""
        name = user_hive_name(key)
        with self._lock:
            if name in self._hives:
                # Her profile is in use by another logon (another session): the same file
                # is counted, as the User Profile Service counts a loaded profile.
                if self._user_files.get(name) != path.resolve():
                    raise RegistryError(
                        NtStatus.STATUS_OBJECT_NAME_COLLISION, f"HKU\\{key} is loaded"
                    )
                self._user_refs[name] += 1
                return False
            created = not path.exists()
            if created:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(path.name + ".tmp")
                tmp.unlink(missing_ok=True)
                target = sqlite3.connect(tmp, isolation_level=None)
                try:
                    self._hive(template).conn.backup(target)
                finally:
                    target.close()
                os.replace(tmp, path)
            try:
                conn = connect_checked(path)
            except Corrupt as exc:
                raise RegistryError(NtStatus.STATUS_REGISTRY_CORRUPT, f"{path}: {exc}") from None
            self._hives[name] = KeyTable(name, conn, False)
            self._user_files[name] = path.resolve()
            self._user_refs[name] = 1
            return created

    def unload_user_hive(self, key: str) -> None:
        """NtUnloadKey: the connection is closed (SQLite checkpoints the WAL: flushed)."""
        name = user_hive_name(key)
        with self._lock:
            table = self._hive(name)
            self._user_refs[name] -= 1
            if self._user_refs[name] > 0:
                return  # still in use by another logon
            del self._hives[name], self._user_refs[name], self._user_files[name]
            table.conn.close()

    def user_hives(self) -> list[str]:
        """The keys under HKU that hold a loaded user hive."""
        with self._lock:
            return [
                hive_prefix(n).split("\\", 1)[1]
                for n in self._hives
                if n.startswith(USER_HIVE_PREFIX)
            ]

    @contextlib.contextmanager
    def _txn(self, tables: Iterable[KeyTable]) -> Iterator[None]:
        """BEGIN IMMEDIATE on each hive; COMMIT them only if the whole body succeeded."""
        with self._lock:
            begun: list[KeyTable] = []
            try:
                for t in tables:
                    t.conn.execute("BEGIN IMMEDIATE")
                    begun.append(t)
                yield
                for t in begun:
                    t.conn.execute("COMMIT")
            except BaseException as exc:
                for t in begun:
                    if t.conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            t.conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise RegistryError(NtStatus.STATUS_REGISTRY_IO_FAILED, str(exc)) from exc
                raise

    @contextlib.contextmanager
    def _read(self) -> Iterator[None]:
        with self._lock:
            try:
                yield
            except sqlite3.Error as exc:
                raise RegistryError(NtStatus.STATUS_REGISTRY_IO_FAILED, str(exc)) from exc

    def current_control_set(self) -> int:
        """N of ``ControlSet00N`` named by ``SYSTEM\\Select\\Current`` (REG_DWORD)."""
        with self._read():
            t = self._hive("SYSTEM")
            kid, found = t.walk(("Select",))
            row = t.value(kid, "Current") if found else None
        if row is None or row[0] != REG_DWORD:
            raise RegistryError(
                NtStatus.STATUS_OBJECT_NAME_NOT_FOUND,
                "CurrentControlSet: SYSTEM\\Select\\Current (REG_DWORD) is missing",
            )
        return regfile.decode_data(REG_DWORD, row[1])

    def _resolve(self, path: str) -> tuple[KeyTable | None, tuple[str, ...]]:
        loc = locate(path)
        if loc.hive is None:
            return None, ()
        parts = loc.parts
        if loc.hive == "SYSTEM" and parts and parts[0].casefold() == "currentcontrolset":
            parts = (f"ControlSet{self.current_control_set():03d}", *parts[1:])
        return self._hive(loc.hive), parts

    def _target(self, path: str) -> tuple[KeyTable, tuple[str, ...]]:
        t, parts = self._resolve(path)
        if t is None:
            raise RegistryError(NtStatus.STATUS_ACCESS_DENIED, f"{path!r} is a root, not a key")
        return t, parts

    # --- keys ---------------------------------------------------------------------------

    def create_key(self, path: str, volatile: bool = False) -> bool:
        """NtCreateKey: create the key and missing parents; True if it was created."""
        t, parts = self._target(path)
        with self._txn([t]):
            return t.create(parts, volatile)

    def key_exists(self, path: str) -> bool:
        """True if the key exists (roots and hive roots always do)."""
        with self._read():
            try:
                t, parts = self._resolve(path)
            except RegistryError as exc:
                if exc.status == NtStatus.STATUS_OBJECT_NAME_NOT_FOUND:
                    return False
                raise
            return t is None or t.walk(parts)[1] == len(parts)

    def open_key(self, path: str) -> str:
        """NtOpenKey: the key's full user path with each name in its stored spelling."""
        with self._read():
            t, parts = self._target(path)
            names, kid = [hive_prefix(t.name)], ROOT_ID
            for part in parts:
                child = t.child(kid, part)
                if child is None:
                    raise RegistryError(NtStatus.STATUS_OBJECT_NAME_NOT_FOUND, f"no key {path!r}")
                kid = child
                names.append(t.key_row(kid)[0])
            return "\\".join(names)

    def delete_key(self, path: str) -> None:
        """RegDeleteKey: a key with subkeys, or a hive root, -> STATUS_ACCESS_DENIED."""
        t, parts = self._target(path)
        if not parts:
            raise RegistryError(NtStatus.STATUS_ACCESS_DENIED, "cannot delete a hive root")
        with self._txn([t]):
            kid = t.find(parts, path)
            if t.children(kid):
                raise RegistryError(NtStatus.STATUS_ACCESS_DENIED, f"{path!r} has subkeys")
            t.drop_tree(kid)

    def delete_tree(self, path: str) -> None:
        """RegDeleteTree / ``reg delete``: the key and everything below it, atomically."""
        t, parts = self._target(path)
        if not parts:
            raise RegistryError(NtStatus.STATUS_ACCESS_DENIED, "cannot delete a hive root")
        with self._txn([t]):
            t.drop_tree(t.find(parts, path))

    def enum_keys(self, path: str) -> list[str]:
        """NtEnumerateKey: subkey names in case-insensitive order (roots list hives)."""
        with self._read():
            t, parts = self._resolve(path)
            if t is None:
                root = locate(path).root
                if root == KERNEL_ROOT:
                    return ["MACHINE", "USER"]
                return list(MACHINE_HIVES) if root == HKLM else [".DEFAULT", *self.user_hives()]
            return [name for _, name in t.children(t.find(parts, path))]

    def query_key(self, path: str) -> KeyInfo:
        """NtQueryKey: subkey and value counts, last write time, volatility."""
        with self._read():
            t, parts = self._target(path)
            kid = t.find(parts, path)
            name, lwt, volatile, _ = t.key_row(kid)
            return KeyInfo(name, len(t.children(kid)), len(t.values(kid)), lwt, bool(volatile))

    # --- values -------------------------------------------------------------------------

    @staticmethod
    def _put(
        t: KeyTable, kid: int, name: str, type_: int, data: Any, raw: bytes | None = None
    ) -> None:
        """Store a value; ``raw`` (from a .reg ``hex(N):`` or a binary hive) is kept as is."""
        check_value_name(name)
        if raw is None:
            raw = regfile.encode_data(type_, validate_value(type_, data))
        elif isinstance(type_, bool) or not isinstance(type_, int) or not 0 <= type_ <= 0xFFFFFFFF:
            raise RegistryError(NtStatus.STATUS_INVALID_PARAMETER, f"bad value type {type_!r}")
        if len(raw) > MAX_DATA:
            raise RegistryError(
                NtStatus.STATUS_INVALID_PARAMETER, f"{len(raw)} bytes of data (limit {MAX_DATA})"
            )
        t.put_value(kid, name, type_, raw)

    def set_value(self, path: str, name: str, type_: int, data: Any) -> None:
        """NtSetValueKey: validated against the type; durable when this returns."""
        check_value_name(name)
        validate_value(type_, data)  # fail before taking the write lock
        t, parts = self._target(path)
        with self._txn([t]):
            self._put(t, t.find(parts, path), name, type_, data)

    def query_value(
        self, path: str, name: str, expected_type: int | None = None
    ) -> tuple[int, Any]:
        """NtQueryValueKey -> (type, data); ``expected_type`` mismatch -> TYPE_MISMATCH."""
        check_value_name(name)
        with self._read():
            t, parts = self._target(path)
            row = t.value(t.find(parts, path), name)
        if row is None:
            raise RegistryError(NtStatus.STATUS_OBJECT_NAME_NOT_FOUND, f"no value {name!r}")
        if expected_type is not None and row[0] != expected_type:
            raise RegistryError(NtStatus.STATUS_OBJECT_TYPE_MISMATCH, f"{name!r} has type {row[0]}")
        return row[0], regfile.decode_lenient(row[0], row[1])

    def delete_value(self, path: str, name: str) -> None:
        """NtDeleteValueKey; a missing value is STATUS_OBJECT_NAME_NOT_FOUND."""
        check_value_name(name)
        t, parts = self._target(path)
        with self._txn([t]):
            if not t.delete_value(t.find(parts, path), name):
                raise RegistryError(NtStatus.STATUS_OBJECT_NAME_NOT_FOUND, f"no value {name!r}")

    def enum_values(self, path: str) -> list[tuple[str, int, Any]]:
        """NtEnumerateValueKey: (name, type, data) in creation order, as Windows lists them."""
        with self._read():
            t, parts = self._target(path)
            rows = t.values(t.find(parts, path))
        return [(n, ty, regfile.decode_lenient(ty, raw)) for n, ty, raw in rows]

    # --- .reg import / export, control sets ---------------------------------------------

    def import_ops(self, ops: Iterable[Op]) -> int:
        """Apply a parsed .reg file all-or-nothing: one transaction per hive it touches.

        Every op runs before any hive commits, so a failing op (bad path, type, limit)
        leaves nothing applied. ``[-key]`` of a missing key and ``"v"=-`` of a missing
        value are no-ops, as in regedit. Returns the number of operations applied.

        Several hives: each gets its own transaction, all begun before the first op and
        committed one after the other only once every op has succeeded, so an error
        anywhere applies nothing. SQLite in WAL mode cannot commit two files atomically:
        a crash (kill -9, power) between two hives' COMMITs, microseconds apart, can leave
        the first hive's part applied. One hive (every control-set export) is atomic
        against crashes too.
        """
        ops = list(ops)
        resolved: dict[str, tuple[KeyTable | None, tuple[str, ...]]] = {}
        targets = []
        for index, op in enumerate(ops):
            target = resolved.get(op.path)
            if target is None:  # a real export names each key path once per value
                with _annotate(index, op):
                    target = resolved[op.path] = self._resolve(op.path)
            targets.append(target)
        hives = {t.name: t for t, _ in targets if t is not None}
        kids: dict[tuple[str, tuple[str, ...]], int] = {}
        with self._txn(hives[name] for name in sorted(hives)):
            for index, (op, (t, parts)) in enumerate(zip(ops, targets, strict=True)):
                try:
                    self._apply(op, t, parts, kids)
                except RegistryError as exc:
                    raise RegistryError(
                        exc.status, f"op {index + 1} ({op!r}): {exc.message}"
                    ) from None
        return len(ops)

    def _apply(
        self,
        op: Op,
        t: KeyTable | None,
        parts: tuple[str, ...],
        kids: dict[tuple[str, tuple[str, ...]], int],
    ) -> None:
        if t is None or not parts:
            if isinstance(op, SetKey):
                return  # roots and hive roots always exist
            if t is None or isinstance(op, DeleteKey):
                raise RegistryError(NtStatus.STATUS_ACCESS_DENIED, "cannot change a root key")
        cache_key = (t.name, parts)
        if isinstance(op, SetKey):
            if cache_key not in kids:
                t.create(parts, volatile=False)
                kids[cache_key] = t.find(parts, op.path)
        elif isinstance(op, DeleteKey):
            kid, found = t.walk(parts)
            if found == len(parts):
                t.drop_tree(kid)
                kids.clear()  # ids below it are gone
        else:
            kid = kids.get(cache_key)
            if kid is None:
                kid = kids[cache_key] = t.find(parts, op.path)
            if isinstance(op, SetValue):
                self._put(t, kid, op.name, op.type, op.data, op.raw)
            else:
                t.delete_value(kid, check_value_name(op.name))

    def snapshot(self, path: str) -> list[regsnap.Record]:
        """The key and its subtree as records (HKLM/HKU: every hive), under one read lock."""
        loc = locate(path)
        out: list[regsnap.Record] = []
        with self._read():
            if loc.hive is None:
                if loc.root == KERNEL_ROOT:
                    raise RegistryError(NtStatus.STATUS_INVALID_PARAMETER, "export HKLM or HKU")
                for hive in MACHINE_HIVES if loc.root == HKLM else ("DEFAULT",):
                    out += regsnap.tree(self._hive(hive), ROOT_ID, hive_prefix(hive))
            else:
                t, parts = self._target(path)
                prefix = "\\".join([hive_prefix(loc.hive), *loc.parts])
                out = regsnap.tree(t, t.find(parts, path), prefix)
        return out

    def export(self, path: str) -> str:
        """``reg export``: the key and its subtree as .reg text (HKLM/HKU: every hive)."""
        return regsnap.dumps(self.snapshot(path))

    def copy_control_set(self, src: int, dst: int) -> None:
        """Copy ControlSet00<src> over ControlSet00<dst> in one transaction (LastKnownGood).

        Volatile keys are not copied: they describe this boot, not the configuration.
        """
        for n in (src, dst):
            if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 999:
                raise RegistryError(NtStatus.STATUS_INVALID_PARAMETER, f"control set {n!r}")
        if src == dst:
            raise RegistryError(NtStatus.STATUS_INVALID_PARAMETER, "source and target are equal")
        t = self._hive("SYSTEM")
        src_name, dst_name = f"ControlSet{src:03d}", f"ControlSet{dst:03d}"
        with self._txn([t]):
            src_id = t.find((src_name,), src_name)
            old, found = t.walk((dst_name,))
            if found:
                t.drop_tree(old)
            t.create((dst_name,), volatile=False)
            t.copy_tree(src_id, t.find((dst_name,), dst_name))


@contextlib.contextmanager
def _annotate(index: int, op: Op) -> Iterator[None]:
    """Name the failing operation of an import in the error."""
    try:
        yield
    except RegistryError as exc:
        raise RegistryError(exc.status, f"op {index + 1} ({op!r}): {exc.message}") from None
