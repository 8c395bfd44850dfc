"""The service database: ScmCreateServiceDatabase over a registry accessor (database.c,
groupdb.c; nt-spec §4.1-4.4).

Pure: nothing is written. Keys are read in registry enumeration order, which the
configuration manager gives sorted case-insensitively; names starting with ``{`` are
skipped, and so are keys without ``Type``, ``Start`` or ``ErrorControl`` (silently, as
CreateServiceListEntry does). A key whose values are present but invalid (Start 7, a
FailureActions blob shorter than its cActions says) is not loaded either; it goes to
``problems`` so the SCM reports 7000 for it (reliability-security §6.5 V12).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from nt.status import NtStatus
from ports.svcctl import (
    SC_ACTION_RUN_COMMAND,
    SERVICE_AUTO_START,
    SERVICE_DISABLED,
    SERVICE_ERROR_CRITICAL,
    SERVICE_FILE_SYSTEM_DRIVER,
    SERVICE_INTERACTIVE_PROCESS,
    SERVICE_KERNEL_DRIVER,
    SERVICE_STOPPED,
    SERVICE_WIN32_OWN_PROCESS,
    SERVICE_WIN32_SHARE_PROCESS,
)

if TYPE_CHECKING:
    from processes.services.scm import Timer

REG_SZ, REG_EXPAND_SZ, REG_BINARY, REG_DWORD, REG_MULTI_SZ = 1, 2, 3, 4, 7
CONTROL = "Control"
SERVICES = "Services"
DEFAULT_PIPE_TIMEOUT_MS = 30000
DEFAULT_WAIT_TO_KILL_MS = 20000
DEFAULT_AUTO_START_DELAY_S = 120
DEFAULT_PRESHUTDOWN_TIMEOUT_MS = 10000  # build 15063 and later (SERVICE_PRESHUTDOWN_INFO)
DEFAULT_SPLIT_THRESHOLD_KB = 3670016  # 3.5 GB: Windows 10 1703's SvcHostSplitThresholdInKB
LOCAL_SYSTEM = "LocalSystem"
ERROR_SERVICE_NEVER_STARTED = 1077
ERROR_SERVICE_DISABLED = 1058
_VALID_TYPES = {
    SERVICE_KERNEL_DRIVER,
    SERVICE_FILE_SYSTEM_DRIVER,
    SERVICE_WIN32_OWN_PROCESS,
    SERVICE_WIN32_SHARE_PROCESS,
    SERVICE_WIN32_OWN_PROCESS | SERVICE_INTERACTIVE_PROCESS,
    SERVICE_WIN32_SHARE_PROCESS | SERVICE_INTERACTIVE_PROCESS,
}
_SKIPPED_TYPES = {0x4, 0x8, 0x40, 0x50, 0x60}  # adapters, recognizers, per-user templates


class RegistryAccessor(Protocol):
    """Read side of the configuration manager; a missing key or value raises an exception
    whose ``status`` is STATUS_OBJECT_NAME_NOT_FOUND (as nt/hive.py's errors do)."""

    def enum_values(self, path: str) -> list[tuple[str, int, object]]: ...

    def enum_keys(self, path: str) -> list[str]: ...


class ConfigError(ValueError):
    """A present but invalid configuration value."""


@dataclass(frozen=True)
class ScAction:
    type: int
    delay_ms: int


@dataclass(frozen=True)
class FailureActions:
    """SERVICE_FAILURE_ACTIONS. ``reset_period_s`` INFINITE: never reset."""

    reset_period_s: int = 0
    actions: tuple[ScAction, ...] = ()
    reboot_msg: str | None = None
    command: str | None = None

    def to_bytes(self) -> bytes:
        """The registry layout: the 32-bit struct (20 bytes), lpsaActions = offset 20."""
        head = struct.pack(
            "<5I", self.reset_period_s, 0, 0, len(self.actions), 20 if self.actions else 0
        )
        return head + b"".join(struct.pack("<2I", a.type, a.delay_ms) for a in self.actions)


def parse_failure_actions(blob: bytes) -> FailureActions:
    """The ``FailureActions`` REG_BINARY: DWORD dwResetPeriod, lpRebootMsg, lpCommand
    (placeholders), DWORD cActions, lpsaActions, then cActions SC_ACTION{Type, Delay}."""
    if len(blob) < 20:
        raise ConfigError(f"FailureActions: {len(blob)} bytes, header needs 20")
    reset, _msg, _cmd, count, _ptr = struct.unpack_from("<5I", blob, 0)
    if count > (len(blob) - 20) // 8:
        raise ConfigError(f"FailureActions: cActions {count} but {len(blob) - 20} bytes of actions")
    actions = []
    for i in range(count):
        kind, delay = struct.unpack_from("<2I", blob, 20 + 8 * i)
        if kind > SC_ACTION_RUN_COMMAND:
            raise ConfigError(f"FailureActions: action {i} has unknown type {kind}")
        actions.append(ScAction(kind, delay))
    return FailureActions(reset, tuple(actions))


@dataclass
class ServiceStatus:
    """SERVICE_STATUS_PROCESS as the SCM keeps it."""

    service_type: int
    current_state: int = SERVICE_STOPPED
    controls_accepted: int = 0
    win32_exit_code: int = ERROR_SERVICE_NEVER_STARTED
    service_specific_exit_code: int = 0
    check_point: int = 0
    wait_hint: int = 0
    process_id: int = 0
    service_flags: int = 0

    def as_dict(self, *, process: bool = False) -> dict[str, int]:
        out = {
            "service_type": self.service_type,
            "current_state": self.current_state,
            "controls_accepted": self.controls_accepted,
            "win32_exit_code": self.win32_exit_code,
            "service_specific_exit_code": self.service_specific_exit_code,
            "check_point": self.check_point,
            "wait_hint": self.wait_hint,
        }
        if process:
            out["process_id"] = self.process_id
            out["service_flags"] = self.service_flags
        return out


@dataclass
class ServiceRecord:
    """A service or driver entry (SERVICE in database.c): configuration plus run state."""

    name: str
    service_type: int
    start: int
    error_control: int
    image_path: str = ""
    display_name: str = ""
    group: str = ""
    tag: int = 0
    depend_on_service: list[str] = field(default_factory=list)
    depend_on_group: list[str] = field(default_factory=list)
    object_name: str = LOCAL_SYSTEM
    description: str | None = None
    delayed_autostart: bool = False
    failure_actions: FailureActions | None = None
    failure_actions_on_non_crash_failures: bool = False
    preshutdown_timeout_ms: int = DEFAULT_PRESHUTDOWN_TIMEOUT_MS
    required_privileges: list[str] = field(default_factory=list)
    service_sid_type: int = 0
    service_dll: str | None = None
    svchost_split_disable: bool = False
    status: ServiceStatus = field(init=False)
    # run state
    marked_for_delete: bool = False
    failure_count: int = 0
    last_failure_at: float | None = None
    service_tag: int = 0  # ScmGenerateServiceTag: the runtime tag, not the registry Tag
    image_key: str | None = None  # the ServiceImage it runs in while active
    standin: bool = False
    start_error: int = 0  # why the last start attempt failed (7001 names it)
    watchdog: Timer | None = None  # the hung-start timer
    stop_timer: Timer | None = None  # a stop that must finish within WaitToKillServiceTimeout

    def __post_init__(self) -> None:
        self.display_name = self.display_name or self.name
        exit_code = (
            ERROR_SERVICE_DISABLED
            if self.start == SERVICE_DISABLED
            else ERROR_SERVICE_NEVER_STARTED
        )
        self.status = ServiceStatus(service_type=self.service_type, win32_exit_code=exit_code)

    @property
    def event_name(self) -> str:
        """The name events quote: the display name, unless it is an indirect MUI string
        (``@%SystemRoot%\\system32\\x.dll,-100``) the model cannot load (a divergence)."""
        return self.name if self.display_name.startswith("@") else self.display_name

    @property
    def is_driver(self) -> bool:
        return bool(self.service_type & (SERVICE_KERNEL_DRIVER | SERVICE_FILE_SYSTEM_DRIVER))

    @property
    def is_auto_start(self) -> bool:
        return self.start == SERVICE_AUTO_START and not self.is_driver


@dataclass
class ServiceDatabase:
    """The service list in registry order, with the group order and its tag vectors."""

    services: dict[str, ServiceRecord] = field(default_factory=dict)  # key: name.lower()
    group_list: list[str] = field(default_factory=list)
    group_tags: dict[str, list[int]] = field(default_factory=dict)  # key: group.lower()
    skipped: list[str] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)
    pipe_timeout_ms: int = DEFAULT_PIPE_TIMEOUT_MS
    wait_to_kill_ms: int = DEFAULT_WAIT_TO_KILL_MS
    auto_start_delay_s: int = DEFAULT_AUTO_START_DELAY_S
    split_threshold_kb: int = DEFAULT_SPLIT_THRESHOLD_KB
    preshutdown_order: list[str] = field(default_factory=list)
    safe_boot: int = 0  # Control\SafeBoot\Option\OptionValue: 1 MINIMAL, 2 NETWORK, 3 DSREPAIR
    safe_boot_allowed: set[str] | None = None  # lower-case service and group names listed

    def allowed_in_safe_boot(self, record: ServiceRecord) -> bool:
        """Whether ``record`` may start in this boot: listed by name or by group."""
        if self.safe_boot_allowed is None:
            return True
        return record.name.lower() in self.safe_boot_allowed or (
            bool(record.group) and record.group.lower() in self.safe_boot_allowed
        )

    def get(self, name: str) -> ServiceRecord | None:
        return self.services.get(name.lower())

    def by_display_name(self, display: str) -> ServiceRecord | None:
        low = display.lower()
        return next((s for s in self.services.values() if s.display_name.lower() == low), None)

    def add(self, record: ServiceRecord) -> None:
        self.services[record.name.lower()] = record

    def remove(self, name: str) -> None:
        self.services.pop(name.lower(), None)

    def __iter__(self) -> Iterable[ServiceRecord]:  # type: ignore[override]
        return iter(list(self.services.values()))

    def __len__(self) -> int:
        return len(self.services)

    def dependents(self, name: str) -> list[ServiceRecord]:
        """Services naming ``name`` in DependOnService, or its group in DependOnGroup."""
        target = self.get(name)
        if target is None:
            return []
        low, group = name.lower(), target.group.lower()
        return [
            s
            for s in self.services.values()
            if low in (d.lower() for d in s.depend_on_service)
            or (group and group in (g.lower() for g in s.depend_on_group))
        ]


def _missing(exc: BaseException) -> bool:
    return getattr(exc, "status", None) == NtStatus.STATUS_OBJECT_NAME_NOT_FOUND or isinstance(
        exc, KeyError
    )


def _values(registry: RegistryAccessor, path: str) -> dict[str, tuple[int, object]]:
    try:
        return {name.lower(): (vtype, data) for name, vtype, data in registry.enum_values(path)}
    except Exception as exc:
        if _missing(exc):
            return {}
        raise


def _keys(registry: RegistryAccessor, path: str) -> list[str]:
    try:
        return list(registry.enum_keys(path))
    except Exception as exc:
        if _missing(exc):
            return []
        raise


def _dword(found: tuple[int, object] | None, default: int) -> int:
    if found is None:
        return default
    vtype, data = found
    if isinstance(data, int) and not isinstance(data, bool):
        return data & 0xFFFFFFFF
    if isinstance(data, bytes) and len(data) == 4:
        return int.from_bytes(data, "little")
    if isinstance(data, str) and data.strip().isdigit():  # hivesys writes some as REG_SZ
        return int(data.strip())
    raise ConfigError(f"expected a DWORD, got type {vtype}")


def _str(found: tuple[int, object] | None) -> str | None:
    if found is None:
        return None
    data = found[1]
    if isinstance(data, list):
        return data[0] if data else ""
    if isinstance(data, bytes):
        return data.decode("utf-16-le", "replace").rstrip("\x00")
    return str(data)


def _multi(found: tuple[int, object] | None) -> list[str]:
    if found is None:
        return []
    data = found[1]
    if isinstance(data, list):
        return [s for s in data if s]
    if isinstance(data, str):
        return [data] if data else []
    if isinstance(data, bytes):
        return [s for s in data.decode("utf-16-le", "replace").split("\x00") if s]
    return []


def read_service(name: str, values: dict[str, tuple[int, object]]) -> ServiceRecord | None:
    """One ``Services\\<name>`` key → a record; None if it is not a service (skipped)."""
    if not all(k in values for k in ("type", "start", "errorcontrol")):
        return None
    service_type = _dword(values["type"], 0)
    if service_type in _SKIPPED_TYPES:
        return None
    if service_type not in _VALID_TYPES:
        raise ConfigError(f"Type 0x{service_type:x} is not a service type")
    start = _dword(values["start"], 0)
    if start > SERVICE_DISABLED:
        raise ConfigError(f"Start {start} is not a start type")
    error_control = _dword(values["errorcontrol"], 0)
    if error_control > SERVICE_ERROR_CRITICAL:
        raise ConfigError(f"ErrorControl {error_control} is not an error control")
    failure = values.get("failureactions")
    actions = None
    if failure is not None and isinstance(failure[1], bytes):
        actions = parse_failure_actions(failure[1])
        actions = FailureActions(
            actions.reset_period_s,
            actions.actions,
            _str(values.get("rebootmessage")),
            _str(values.get("failurecommand")),
        )
    on_service = _multi(values.get("dependonservice"))
    return ServiceRecord(
        name=name,
        service_type=service_type,
        start=start,
        error_control=error_control,
        image_path=_str(values.get("imagepath")) or "",
        display_name=_str(values.get("displayname")) or name,
        group=_str(values.get("group")) or "",
        tag=_dword(values.get("tag"), 0),
        # lpDependencies' "+Group" form in DependOnService names a group (as svcorder reads it)
        depend_on_service=[d for d in on_service if not d.startswith("+")],
        depend_on_group=_multi(values.get("dependongroup"))
        + [d[1:] for d in on_service if d[:1] == "+" and d[1:]],
        object_name=_str(values.get("objectname")) or LOCAL_SYSTEM,
        description=_str(values.get("description")),
        delayed_autostart=bool(_dword(values.get("delayedautostart"), 0)),
        failure_actions=actions,
        failure_actions_on_non_crash_failures=bool(
            _dword(values.get("failureactionsonnoncrashfailures"), 0)
        ),
        preshutdown_timeout_ms=_dword(
            values.get("preshutdowntimeout"), DEFAULT_PRESHUTDOWN_TIMEOUT_MS
        ),
        required_privileges=_multi(values.get("requiredprivileges")),
        service_sid_type=_dword(values.get("servicesidtype"), 0),
        svchost_split_disable=bool(_dword(values.get("svchostsplitdisable"), 0)),
    )


def record_values(record: ServiceRecord) -> list[tuple[str, int, object]]:
    """The ``Services\\<name>`` values of a record (what a ServiceStore writes), the
    inverse of ``read_service``; absent optional values are left out."""
    out: list[tuple[str, int, object]] = [
        ("Type", REG_DWORD, record.service_type),
        ("Start", REG_DWORD, record.start),
        ("ErrorControl", REG_DWORD, record.error_control),
        ("ImagePath", REG_EXPAND_SZ, record.image_path),
        ("DisplayName", REG_SZ, record.display_name),
        ("ObjectName", REG_SZ, record.object_name),
    ]
    optional: list[tuple[str, int, object, bool]] = [
        ("Group", REG_SZ, record.group, bool(record.group)),
        ("Tag", REG_DWORD, record.tag, bool(record.tag)),
        (
            "DependOnService",
            REG_MULTI_SZ,
            list(record.depend_on_service),
            bool(record.depend_on_service),
        ),
        ("DependOnGroup", REG_MULTI_SZ, list(record.depend_on_group), bool(record.depend_on_group)),
        ("Description", REG_SZ, record.description, record.description is not None),
        ("DelayedAutostart", REG_DWORD, 1, record.delayed_autostart),
        (
            "FailureActionsOnNonCrashFailures",
            REG_DWORD,
            1,
            record.failure_actions_on_non_crash_failures,
        ),
        (
            "PreshutdownTimeout",
            REG_DWORD,
            record.preshutdown_timeout_ms,
            record.preshutdown_timeout_ms != DEFAULT_PRESHUTDOWN_TIMEOUT_MS,
        ),
        (
            "RequiredPrivileges",
            REG_MULTI_SZ,
            list(record.required_privileges),
            bool(record.required_privileges),
        ),
        ("ServiceSidType", REG_DWORD, record.service_sid_type, bool(record.service_sid_type)),
    ]
    out += [(name, vtype, data) for name, vtype, data, present in optional if present]
    fa = record.failure_actions
    if fa is not None:
        out.append(("FailureActions", REG_BINARY, fa.to_bytes()))
        if fa.command is not None:
            out.append(("FailureCommand", REG_SZ, fa.command))
        if fa.reboot_msg is not None:
            out.append(("RebootMessage", REG_SZ, fa.reboot_msg))
    return out


def create_service_db(registry: RegistryAccessor, control_set: str) -> ServiceDatabase:
    """ScmCreateServiceDatabase for ``control_set`` (``HKLM\\SYSTEM\\CurrentControlSet``)."""
    db = ServiceDatabase()
    control = f"{control_set}\\{CONTROL}"
    _read_groups(registry, control, db)
    settings = _values(registry, control)
    try:
        db.pipe_timeout_ms = _dword(settings.get("servicespipetimeout"), DEFAULT_PIPE_TIMEOUT_MS)
        db.wait_to_kill_ms = _dword(
            settings.get("waittokillservicetimeout"), DEFAULT_WAIT_TO_KILL_MS
        )
        db.auto_start_delay_s = _dword(settings.get("autostartdelay"), DEFAULT_AUTO_START_DELAY_S)
        db.split_threshold_kb = _dword(
            settings.get("svchostsplitthresholdinkb"), DEFAULT_SPLIT_THRESHOLD_KB
        )
    except ConfigError as exc:
        db.problems["Control"] = str(exc)
    db.preshutdown_order = _multi(
        _values(registry, f"{control}\\PreshutdownOrder").get("")
    ) or _multi(settings.get("preshutdownorder"))
    _read_safe_boot(registry, control, db)
    services = f"{control_set}\\{SERVICES}"
    for name in sorted(_keys(registry, services), key=str.lower):
        if name.startswith("{"):
            continue
        key = f"{services}\\{name}"
        try:
            record = read_service(name, _values(registry, key))
        except ConfigError as exc:
            db.problems[name] = str(exc)
            continue
        if record is None:
            db.skipped.append(name)
            continue
        if record.service_type & 0x30:
            record.service_dll = _str(_values(registry, f"{key}\\Parameters").get("servicedll"))
        db.add(record)
    return db


def _read_groups(registry: RegistryAccessor, control: str, db: ServiceDatabase) -> None:
    """ScmCreateGroupList: ServiceGroupOrder\\List, and GroupOrderList's tag vectors
    (DWORD count, then the tags; a vector shorter than its count gives no tags)."""
    db.group_list = _multi(_values(registry, f"{control}\\ServiceGroupOrder").get("list"))
    for name, (_vtype, data) in _values(registry, f"{control}\\GroupOrderList").items():
        if not isinstance(data, bytes) or len(data) < 4:
            continue
        count = int.from_bytes(data[:4], "little")
        if len(data) < 4 + 4 * count:
            continue
        db.group_tags[name] = list(struct.unpack_from(f"<{count}I", data, 4))


def _read_safe_boot(registry: RegistryAccessor, control: str, db: ServiceDatabase) -> None:
    """ScmAutoStartServices step 1: in safe mode only what ``SafeBoot\\Minimal`` (1, 3)
    or ``SafeBoot\\Network`` (2) lists may start; a missing list means no filtering."""
    try:
        db.safe_boot = _dword(
            _values(registry, f"{control}\\SafeBoot\\Option").get("optionvalue"), 0
        )
    except ConfigError:
        db.safe_boot = 0
    if db.safe_boot not in (1, 2, 3):
        return
    listing = f"{control}\\SafeBoot\\{'Network' if db.safe_boot == 2 else 'Minimal'}"
    names = _keys(registry, listing)
    if names:
        db.safe_boot_allowed = {n.lower() for n in names}
