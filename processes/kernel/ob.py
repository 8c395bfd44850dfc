"""The object manager namespace: directories, symbolic links, ports, events, devices.

Every operation either returns its result or raises ``ObError(status)``; none returns an
NTSTATUS. Lookup follows ObpLookupObjectName (ReactOS ``ntoskrnl/ob/obname.c``): a name
must start with ``\\``, components are compared case-insensitively and keep the case they
were created with, a symbolic link met in the middle of a name is replaced by its target
and the lookup starts again from the root, at most ``MAX_REPARSE`` times.

``\\??`` is a symbolic link to ``\\GLOBAL??``. In Vista and later ``\\??`` is a per-logon
view that falls back to ``\\GLOBAL??``; the model has one DosDevices view for the whole
machine, which is what a session-0 process sees (ReactOS ``ObpCreateDosDevicesDirectory``
creates the same link as a stand-in for device maps).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple, TypeVar

from nt.status import NtStatus

MAX_COMPONENT_LENGTH = 255
# ObpLookupObjectName: "ULONG MaxReparse = 30".
MAX_REPARSE = 30
# sun_path is 108 bytes on Linux, one of which is the terminating NUL.
UNIX_PATH_MAX = 107

ARC_BOOT_DEVICE = "multi(0)disk(0)rdisk(0)partition(1)"
BOOT_VOLUME = r"\Device\HarddiskVolume1"

_NAME_INVALID = NtStatus.STATUS_OBJECT_NAME_INVALID
_NAME_NOT_FOUND = NtStatus.STATUS_OBJECT_NAME_NOT_FOUND
_PATH_NOT_FOUND = NtStatus.STATUS_OBJECT_PATH_NOT_FOUND
_SYNTAX_BAD = NtStatus.STATUS_OBJECT_PATH_SYNTAX_BAD
_COLLISION = NtStatus.STATUS_OBJECT_NAME_COLLISION
_TYPE_MISMATCH = NtStatus.STATUS_OBJECT_TYPE_MISMATCH

# (name, link target) made at boot; a target of None makes a directory. Devices and the
# \ObjectTypes entries are added separately.
_INITIAL_NAMESPACE: tuple[tuple[str, str | None], ...] = (
    (r"\ObjectTypes", None),
    (r"\Device", None),
    (r"\Driver", None),
    (r"\KernelObjects", None),
    (r"\GLOBAL??", None),
    (r"\GLOBAL??\GLOBALROOT", ""),
    (r"\GLOBAL??\Global", r"\GLOBAL??"),
    # The mount manager's job in Windows; the model has one volume.
    (r"\GLOBAL??\C:", BOOT_VOLUME),
    (r"\??", r"\GLOBAL??"),
    (r"\DosDevices", r"\??"),
    (r"\BaseNamedObjects", None),
    (r"\Sessions", None),
    (r"\Sessions\BNOLINKS", None),
    (r"\BaseNamedObjects\Global", r"\BaseNamedObjects"),
    (r"\BaseNamedObjects\Local", r"\BaseNamedObjects"),
    (r"\BaseNamedObjects\Session", r"\Sessions\BNOLINKS"),
    (r"\RPC Control", None),
    (r"\ArcName", None),
    (rf"\ArcName\{ARC_BOOT_DEVICE}", BOOT_VOLUME),
    (r"\SystemRoot", rf"\ArcName\{ARC_BOOT_DEVICE}\Windows"),
)


class ObError(Exception):
    """An object-manager failure carrying the NTSTATUS a system service would return."""

    def __init__(self, status: int, path: str = "", detail: str = "") -> None:
        self.status = NtStatus(status)
        self.path = path
        self.detail = detail
        where = f": {path}" if path else ""
        why = f" ({detail})" if detail else ""
        super().__init__(f"{self.status.name} (0x{int(self.status):08X}){where}{why}")


class EndpointPathTooLongError(ValueError):
    """The ipc:// endpoint would not fit in a Unix socket address."""


@dataclass(eq=False, kw_only=True)
class ObObject:
    type_name: ClassVar[str] = "Object"
    name: str = ""
    permanent: bool = False
    owner_pid: int | None = None
    parent: Directory | None = field(default=None, repr=False)

    @property
    def path(self) -> str:
        parts: list[str] = []
        node: ObObject = self
        while node.parent is not None:
            parts.append(node.name)
            node = node.parent
        return "\\" + "\\".join(reversed(parts))


@dataclass(eq=False, kw_only=True)
class Directory(ObObject):
    type_name: ClassVar[str] = "Directory"
    children: dict[str, ObObject] = field(default_factory=dict, repr=False)


@dataclass(eq=False, kw_only=True)
class SymbolicLink(ObObject):
    type_name: ClassVar[str] = "SymbolicLink"
    target: str = ""


@dataclass(eq=False, kw_only=True)
class Port(ObObject):
    type_name: ClassVar[str] = "Port"
    endpoint: str = ""
    max_message_length: int = 0
    # Opaque to the object manager: the port layer's ZAP handler interprets it.
    allow: Any = None


@dataclass(frozen=True)
class Waiter:
    waiter_id: Hashable
    pid: int | None = None
    context: Any = None


@dataclass(eq=False, kw_only=True)
class Event(ObObject):
    type_name: ClassVar[str] = "Event"
    manual_reset: bool = True
    signalled: bool = False
    waiters: list[Waiter] = field(default_factory=list, repr=False)


@dataclass(eq=False, kw_only=True)
class Device(ObObject):
    type_name: ClassVar[str] = "Device"


@dataclass(eq=False, kw_only=True)
class Driver(ObObject):
    """A driver object (IoCreateDriver): ``\\Driver\\<name>`` or ``\\FileSystem\\<name>``."""

    type_name: ClassVar[str] = "Driver"
    image: str = ""
    service_key: str = ""


@dataclass(eq=False, kw_only=True)
class WindowStation(ObObject):
    """A window station (win32k's, named in the session's ``WindowStations`` directory);
    its desktops live inside it, not in the namespace, as in Windows."""

    type_name: ClassVar[str] = "WindowStation"
    desktops: list[str] = field(default_factory=list)


@dataclass(eq=False, kw_only=True)
class ObjectType(ObObject):
    type_name: ClassVar[str] = "Type"


class DirectoryEntry(NamedTuple):
    name: str
    type_name: str
    target: str | None = None


class RemovedObject(NamedTuple):
    path: str
    type_name: str
    endpoint: str | None = None
    # Waiters of a removed event: the caller completes them (the wait can never be satisfied).
    waiters: tuple[Waiter, ...] = ()


_T = TypeVar("_T", bound=ObObject)


def _window_stations(session_id: int, name: str) -> str:
    """The session's ``WindowStations`` directory, once ``name`` (of a window station or a
    desktop: one component) is checked."""
    if not name or "\\" in name:
        raise ObError(NtStatus.STATUS_OBJECT_NAME_INVALID, name, "a window station or desktop")
    windows = r"\Windows" if session_id == 0 else rf"\Sessions\{session_id}\Windows"
    return windows + r"\WindowStations"


def split_path(path: str) -> list[str]:
    """The components of an absolute object name, validated."""
    if not isinstance(path, str) or not path.startswith("\\"):
        raise ObError(_SYNTAX_BAD, str(path), "names start with '\\'")
    if path == "\\":
        return []
    parts = path[1:].split("\\")
    for part in parts:
        if not part:
            raise ObError(_NAME_INVALID, path, "empty name component")
        if "\x00" in part:
            raise ObError(_NAME_INVALID, path, "NUL in name")
        if len(part) > MAX_COMPONENT_LENGTH:
            raise ObError(
                _NAME_INVALID, path, f"component longer than {MAX_COMPONENT_LENGTH} characters"
            )
    return parts


def ipc_endpoint(runtime_dir: str | os.PathLike[str], name: str) -> str:
    """``ipc://<runtime_dir>/p/<name>``, refusing paths a Unix socket cannot bind."""
    fs_path = os.path.join(os.fspath(runtime_dir), "p", name)
    size = len(os.fsencode(fs_path))
    if size > UNIX_PATH_MAX:
        raise EndpointPathTooLongError(
            f"ipc endpoint path {fs_path!r} is {size} bytes, but a Unix socket path holds at "
            f"most {UNIX_PATH_MAX}; use a shorter runtime directory "
            "(e.g. $XDG_RUNTIME_DIR/ntmodel/<boot_id> or /tmp/ntmodel-<uid>-<boot_id>)"
        )
    return "ipc://" + fs_path


class ObjectManager:
    """The kernel's object namespace. Thread-safe: every public method holds one lock."""

    def __init__(self, runtime_dir: str | os.PathLike[str] | None = None, *, init: bool = True):
        self.runtime_dir = runtime_dir
        self._lock = threading.RLock()
        self._root = Directory(name="", permanent=True)
        self._next_endpoint = 0
        if init:
            self.init_system()

    # -- initial namespace -------------------------------------------------------------

    def init_system(self) -> None:
        """The namespace the kernel has when smss starts (ObInitSystem, IoInitSystem,
        ObpCreateDosDevicesDirectory, ExpCreateSystemRootLink). smss adds ``\\Windows``."""
        with self._lock:
            for path, target in _INITIAL_NAMESPACE:
                if target is None:
                    self.create_directory(path, permanent=True, open_if=True)
                else:
                    self.create_symbolic_link(path, target, permanent=True)
            for cls in (
                ObjectType,
                Directory,
                SymbolicLink,
                Port,
                Event,
                Device,
                Driver,
                WindowStation,
            ):
                self._insert(rf"\ObjectTypes\{cls.type_name}", ObjectType(permanent=True), True)
            for dev in ("Null", "NamedPipe", "MailSlot", "HarddiskVolume1"):
                self._insert(rf"\Device\{dev}", Device(permanent=True), True)

    def create_session_directory(self, session_id: int) -> str:
        """``\\Sessions\\<n>`` with its BaseNamedObjects and the ``BNOLINKS`` entry."""
        if not isinstance(session_id, int) or session_id < 0:
            raise ObError(NtStatus.STATUS_INVALID_PARAMETER, detail=f"session id {session_id!r}")
        with self._lock:
            base = rf"\Sessions\{session_id}"
            self.create_directory(base, permanent=True, open_if=True)
            if session_id == 0:
                bno = r"\BaseNamedObjects"
            else:
                bno = self.create_directory(
                    base + r"\BaseNamedObjects", permanent=True, open_if=True
                ).path
            link = rf"\Sessions\BNOLINKS\{session_id}"
            if not self.exists(link):
                self.create_symbolic_link(link, bno, permanent=True)
            return base

    # -- creation ------------------------------------------------------------------------

    def create_directory(
        self,
        path: str,
        permanent: bool = False,
        open_if: bool = False,
        *,
        owner_pid: int | None = None,
    ) -> Directory:
        """NtCreateDirectoryObject. With ``open_if`` an existing directory is returned."""
        obj = Directory(permanent=permanent, owner_pid=owner_pid)
        return self._insert(path, obj, open_if)

    def create_symbolic_link(
        self, path: str, target: str, *, permanent: bool = False, owner_pid: int | None = None
    ) -> SymbolicLink:
        """NtCreateSymbolicLinkObject. An empty target means the root (``GLOBALROOT``)."""
        if not isinstance(target, str) or "\x00" in target:
            raise ObError(_NAME_INVALID, path, "bad link target")
        if target and not target.startswith("\\"):
            raise ObError(_SYNTAX_BAD, target, "targets are absolute")
        obj = SymbolicLink(target=target, permanent=permanent, owner_pid=owner_pid)
        return self._insert(path, obj, False)

    def create_port(
        self,
        path: str,
        owner_pid: int,
        max_message_length: int,
        allow: Any = None,
        *,
        endpoint: str | None = None,
    ) -> Port:
        """Register a port name. A taken name fails with STATUS_OBJECT_NAME_COLLISION:
        a second creator never takes over a name. The endpoint is allocated when not given."""
        if not isinstance(max_message_length, int) or max_message_length <= 0:
            raise ObError(NtStatus.STATUS_INVALID_PARAMETER, path, "max_message_length must be > 0")
        endpoint = endpoint or self.allocate_endpoint()
        port = Port(endpoint=endpoint, owner_pid=owner_pid, allow=allow)
        port.max_message_length = max_message_length
        return self._insert(path, port, False)

    def create_event(
        self,
        path: str,
        manual_reset: bool,
        initial_state: bool = False,
        *,
        owner_pid: int | None = None,
        permanent: bool = False,
        open_if: bool = False,
    ) -> Event:
        """NtCreateEvent: NotificationEvent when ``manual_reset``, else SynchronizationEvent."""
        obj = Event(manual_reset=manual_reset, signalled=initial_state, permanent=permanent)
        obj.owner_pid = owner_pid
        return self._insert(path, obj, open_if)

    def create_window_station(self, session_id: int, name: str, owner_pid: int) -> WindowStation:
        """NtUserCreateWindowStation: ``WindowStations`` of the session's ``Windows``
        directory (made on first use, owned like the station: it goes with its creator)."""
        with self._lock:
            stations = _window_stations(session_id, name)
            if not self.exists(stations):
                self.create_directory(stations, owner_pid=owner_pid)
            station = WindowStation(owner_pid=owner_pid)
            return self._insert(rf"{stations}\{name}", station, False)

    def create_desktop(self, session_id: int, station: str, name: str) -> None:
        """NtUserCreateDesktop: a desktop of a window station of the session."""
        stations = _window_stations(session_id, name)
        with self._lock:
            obj = self._lookup_typed(rf"{stations}\{station}", WindowStation)
            if name in obj.desktops:
                raise ObError(NtStatus.STATUS_OBJECT_NAME_COLLISION, name, "desktop exists")
            obj.desktops.append(name)

    def create_driver(self, path: str, image: str, service_key: str) -> Driver:
        """The driver object IoInitSystem makes for each driver it loads (permanent)."""
        return self._insert(
            path, Driver(image=image, service_key=service_key, permanent=True), False
        )

    def allocate_endpoint(self, runtime_dir: str | os.PathLike[str] | None = None) -> str:
        """A fresh short endpoint: ``ipc://<runtime>/p/<n>``."""
        directory = runtime_dir if runtime_dir is not None else self.runtime_dir
        if directory is None:
            raise ValueError("allocate_endpoint needs a runtime directory")
        with self._lock:
            self._next_endpoint += 1
            number = self._next_endpoint
        return ipc_endpoint(directory, str(number))

    # -- lookup ----------------------------------------------------------------------------

    def exists(self, path: str) -> bool:
        try:
            self.lookup(path, follow_final=False)
        except ObError:
            return False
        return True

    def lookup(self, path: str, *, follow_final: bool = True) -> ObObject:
        """The object named ``path``. A name that continues inside a device fails with
        STATUS_OBJECT_TYPE_MISMATCH; ``resolve`` returns such names."""
        with self._lock:
            obj, rest = self._walk(path, follow_final=follow_final)
            if rest:
                raise ObError(_TYPE_MISMATCH, path, "name continues in a device")
            return obj

    def lookup_port(self, path: str) -> Port:
        return self._lookup_typed(path, Port)

    def lookup_event(self, path: str) -> Event:
        return self._lookup_typed(path, Event)

    def query_symbolic_link(self, path: str) -> str:
        """NtQuerySymbolicLinkObject: the target of the link itself (not followed)."""
        with self._lock:
            obj = self.lookup(path, follow_final=False)
            if not isinstance(obj, SymbolicLink):
                raise ObError(_TYPE_MISMATCH, path, obj.type_name)
            return obj.target

    def resolve(self, path: str) -> str:
        """The canonical name after following every link, e.g. ``\\??\\C:\\Windows`` →
        ``\\Device\\HarddiskVolume1\\Windows``."""
        with self._lock:
            obj, rest = self._walk(path, follow_final=True)
            return "\\".join([obj.path.rstrip("\\"), *rest]) if rest else obj.path

    def query_directory(self, path: str) -> list[DirectoryEntry]:
        """NtQueryDirectoryObject, sorted by name as WinObj shows it."""
        with self._lock:
            directory = self._lookup_typed(path, Directory)
            return [self._entry(child) for child in _sorted_children(directory)]

    def walk(self, path: str = "\\") -> list[tuple[str, DirectoryEntry]]:
        """Every object below ``path`` (depth first, links not followed), for ``ntctl obj``."""
        with self._lock:
            start = self._lookup_typed(path, Directory)
            out: list[tuple[str, DirectoryEntry]] = []
            stack = list(reversed(_sorted_children(start)))
            while stack:
                obj = stack.pop()
                out.append((obj.path, self._entry(obj)))
                if isinstance(obj, Directory):
                    stack.extend(reversed(_sorted_children(obj)))
            return out

    # -- deletion and ownership ------------------------------------------------------------------

    def delete(self, path: str) -> list[RemovedObject]:
        """Remove an object now (a directory with everything below it)."""
        with self._lock:
            obj = self.lookup(path, follow_final=False)
            if obj is self._root:
                raise ObError(NtStatus.STATUS_ACCESS_DENIED, path, "the root cannot be deleted")
            return self._remove(obj)

    def make_temporary(self, path: str) -> list[RemovedObject]:
        """NtMakeTemporaryObject. An object no live process holds goes at once (the
        ObpDeleteNameCheck rule: no handles and not permanent); otherwise it goes with
        its owner."""
        with self._lock:
            obj = self.lookup(path, follow_final=False)
            if obj is self._root:
                raise ObError(NtStatus.STATUS_ACCESS_DENIED, path, "the root is permanent")
            obj.permanent = False
            return self._remove(obj) if obj.owner_pid is None else []

    def on_process_exit(self, pid: int) -> list[RemovedObject]:
        """Remove the ports and temporary objects ``pid`` created, and drop its waits."""
        with self._lock:
            doomed: list[ObObject] = []
            stack: list[ObObject] = [self._root]
            while stack:
                obj = stack.pop()
                if isinstance(obj, Event):
                    obj.waiters = [w for w in obj.waiters if w.pid != pid]
                if obj.owner_pid == pid and not obj.permanent:
                    doomed.append(obj)
                    continue
                if isinstance(obj, Directory):
                    stack.extend(obj.children.values())
            removed: list[RemovedObject] = []
            for obj in doomed:
                removed.extend(self._remove(obj))
            return removed

    # -- events -------------------------------------------------------------------------------

    def set_event(self, path: str) -> list[Waiter]:
        """KeSetEvent. Returns the waiters the caller must now complete."""
        with self._lock:
            event = self._lookup_typed(path, Event)
            if event.manual_reset:
                event.signalled = True
                released, event.waiters = event.waiters, []
                return released
            if event.waiters:
                return [event.waiters.pop(0)]
            event.signalled = True
            return []

    def reset_event(self, path: str) -> bool:
        """KeResetEvent; returns the previous state."""
        with self._lock:
            event = self._lookup_typed(path, Event)
            previous, event.signalled = event.signalled, False
            return previous

    def pulse_event(self, path: str) -> list[Waiter]:
        """KePulseEvent: release the waiters a set would release, leave it unsignalled."""
        with self._lock:
            event = self._lookup_typed(path, Event)
            if event.manual_reset:
                released, event.waiters = event.waiters, []
            else:
                released = event.waiters[:1]
                del event.waiters[:1]
            event.signalled = False
            return released

    def wait_event(
        self, path: str, waiter_id: Hashable, *, pid: int | None = None, context: Any = None
    ) -> bool:
        """Never blocks. True: the event was signalled and the wait is satisfied now (an
        auto-reset event is consumed). False: the waiter is queued and comes back from a
        later ``set_event``/``pulse_event``."""
        with self._lock:
            event = self._lookup_typed(path, Event)
            if event.signalled:
                if not event.manual_reset:
                    event.signalled = False
                return True
            if any(w.waiter_id == waiter_id for w in event.waiters):
                raise ObError(
                    NtStatus.STATUS_INVALID_PARAMETER, path, f"waiter {waiter_id!r} exists"
                )
            event.waiters.append(Waiter(waiter_id, pid, context))
            return False

    def cancel_wait(self, path: str, waiter_id: Hashable) -> Waiter | None:
        with self._lock:
            event = self._lookup_typed(path, Event)
            for index, waiter in enumerate(event.waiters):
                if waiter.waiter_id == waiter_id:
                    return event.waiters.pop(index)
            return None

    # -- internals ----------------------------------------------------------------------------

    def _lookup_typed(self, path: str, cls: type[_T]) -> _T:
        with self._lock:
            obj = self.lookup(path)
            if not isinstance(obj, cls):
                raise ObError(_TYPE_MISMATCH, path, f"{obj.type_name}, not {cls.type_name}")
            return obj

    def _walk(self, path: str, *, follow_final: bool) -> tuple[ObObject, list[str]]:
        """(object, rest): rest is non-empty only when the name continues inside a device."""
        parts = split_path(path)
        reparses = 0
        while True:
            node: ObObject = self._root
            for index, component in enumerate(parts):
                if isinstance(node, Device):
                    return node, parts[index:]
                if not isinstance(node, Directory):
                    raise ObError(_TYPE_MISMATCH, path, f"{node.path} is a {node.type_name}")
                child = node.children.get(component.upper())
                last = index == len(parts) - 1
                if child is None:
                    status = _NAME_NOT_FOUND if last else _PATH_NOT_FOUND
                    raise ObError(status, path)
                if isinstance(child, SymbolicLink) and (follow_final or not last):
                    reparses += 1
                    if reparses > MAX_REPARSE:
                        # ObpLookupObjectName normalises "reparsed too many times" to this.
                        raise ObError(_NAME_NOT_FOUND, path, "too many symbolic links")
                    rest = parts[index + 1 :]
                    parts = (split_path(child.target) if child.target else []) + rest
                    break
                node = child
            else:
                return node, []

    def _parent_for_create(self, path: str) -> tuple[Directory, str]:
        parts = split_path(path)
        if not parts:
            raise ObError(_COLLISION, path, "the root exists")
        parent_path = "\\" + "\\".join(parts[:-1])
        try:
            parent, rest = self._walk(parent_path, follow_final=True)
        except ObError as err:
            if err.status == _NAME_NOT_FOUND:
                raise ObError(_PATH_NOT_FOUND, path) from None
            raise ObError(err.status, path, err.detail) from None
        if rest or not isinstance(parent, Directory):
            raise ObError(_TYPE_MISMATCH, path, "parent is not a directory")
        return parent, parts[-1]

    def _insert(self, path: str, obj: _T, open_if: bool) -> _T:
        with self._lock:
            parent, name = self._parent_for_create(path)
            existing = parent.children.get(name.upper())
            if existing is not None:
                if not open_if:
                    raise ObError(_COLLISION, path)
                if type(existing) is not type(obj):
                    raise ObError(_TYPE_MISMATCH, path, existing.type_name)
                if obj.permanent:
                    existing.permanent = True
                return existing  # type: ignore[return-value]
            obj.name = name
            obj.parent = parent
            parent.children[name.upper()] = obj
            return obj

    def _remove(self, obj: ObObject) -> list[RemovedObject]:
        removed: list[RemovedObject] = []
        stack = [obj]
        while stack:
            node = stack.pop()
            endpoint = node.endpoint if isinstance(node, Port) else None
            waiters: tuple[Waiter, ...] = ()
            if isinstance(node, Event):
                waiters, node.waiters = tuple(node.waiters), []
            removed.append(RemovedObject(node.path, node.type_name, endpoint, waiters))
            if isinstance(node, Directory):
                stack.extend(_sorted_children(node, reverse=True))
        if obj.parent is not None:
            obj.parent.children.pop(obj.name.upper(), None)
            obj.parent = None
        return removed

    @staticmethod
    def _entry(obj: ObObject) -> DirectoryEntry:
        target = obj.target if isinstance(obj, SymbolicLink) else None
        return DirectoryEntry(obj.name, obj.type_name, target)


def _sorted_children(directory: Directory, *, reverse: bool = False) -> list[ObObject]:
    return sorted(directory.children.values(), key=_sort_key, reverse=reverse)


def _sort_key(obj: ObObject) -> str:
    return obj.name.upper()
