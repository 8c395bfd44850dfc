"""Service configuration: create, change, delete, query (config.c, rpcserver.c).

Validation follows RCreateServiceW / RChangeServiceConfigW: a name with ``/`` or ``\\``
or longer than 256 → ERROR_INVALID_NAME; a type, start type or error control outside the
enumerations, BOOT/SYSTEM start for a Win32 service, interactive for a driver →
ERROR_INVALID_PARAMETER; an existing name → ERROR_SERVICE_EXISTS; a display name another
service has as name or display name → ERROR_DUPLICATE_SERVICE_NAME; dependencies that
close a cycle → ERROR_CIRCULAR_DEPENDENCY; a service marked for delete →
ERROR_SERVICE_MARKED_FOR_DELETE. Changes go to the ``ServiceStore`` (the hive) and are
reported: 7045 a service was installed, 7040 a start type changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nt.log import get_logger
from nt.win32 import Win32Error as E
from ports import svcctl as sv
from processes.services.database import (
    LOCAL_SYSTEM,
    FailureActions,
    ScAction,
    ServiceDatabase,
    ServiceRecord,
)

if TYPE_CHECKING:
    from processes.services.scm import ScmCore

log = get_logger()
START_WORDS = {
    0: "boot start",
    1: "system start",
    2: "auto start",
    3: "demand start",
    4: "disabled",
}
_WIN32 = (sv.SERVICE_WIN32_OWN_PROCESS, sv.SERVICE_WIN32_SHARE_PROCESS)
_DRIVERS = (sv.SERVICE_KERNEL_DRIVER, sv.SERVICE_FILE_SYSTEM_DRIVER)


def _check_values(service_type: int, start: int, error_control: int) -> int:
    base = service_type & ~sv.SERVICE_INTERACTIVE_PROCESS
    if base not in (*_WIN32, *_DRIVERS):
        return E.ERROR_INVALID_PARAMETER
    if service_type & sv.SERVICE_INTERACTIVE_PROCESS and base in _DRIVERS:
        return E.ERROR_INVALID_PARAMETER
    if start > sv.SERVICE_DISABLED or (base in _WIN32 and start < sv.SERVICE_AUTO_START):
        return E.ERROR_INVALID_PARAMETER
    if error_control > sv.SERVICE_ERROR_CRITICAL:
        return E.ERROR_INVALID_PARAMETER
    return 0


def _valid_name(name: str) -> bool:
    return 0 < len(name) <= sv.MAX_NAME and "/" not in name and "\\" not in name


def _split_dependencies(deps: list[str]) -> tuple[list[str], list[str]]:
    """lpDependencies: names, groups marked with SC_GROUP_IDENTIFIER (``+``)."""
    services = [d for d in deps if d and not d.startswith(sv.SC_GROUP_IDENTIFIER)]
    groups = [d[1:] for d in deps if d.startswith(sv.SC_GROUP_IDENTIFIER) and len(d) > 1]
    return services, groups


def creates_cycle(db: ServiceDatabase, name: str, depends_on: list[str]) -> bool:
    """Whether ``name`` depending on ``depends_on`` closes a DependOnService cycle."""
    target, stack, seen = name.lower(), [d.lower() for d in depends_on], set()
    while stack:
        cur = stack.pop()
        if cur == target:
            return True
        if cur in seen:
            continue
        seen.add(cur)
        svc = db.get(cur)
        if svc is not None:
            stack.extend(d.lower() for d in svc.depend_on_service)
    return False


def _display_taken(db: ServiceDatabase, display: str, owner: str) -> bool:
    low = display.lower()
    return any(
        s.name.lower() != owner.lower() and low in (s.name.lower(), s.display_name.lower())
        for s in db.services.values()
    )


def create_service(core: ScmCore, m: dict) -> tuple[int, ServiceRecord | None]:
    """RCreateServiceW (after the handle check)."""
    name = m["service_name"]
    if core.shutdown:
        return E.ERROR_SHUTDOWN_IN_PROGRESS, None
    if not _valid_name(name):
        return E.ERROR_INVALID_NAME, None
    error = _check_values(m["service_type"], m["start_type"], m["error_control"])
    if error or not m["binary_path_name"]:
        return error or E.ERROR_INVALID_PARAMETER, None
    existing = core.lookup(name)
    if existing is not None:
        return (
            E.ERROR_SERVICE_MARKED_FOR_DELETE
            if existing.marked_for_delete
            else E.ERROR_SERVICE_EXISTS
        ), None
    display = m["display_name"] or name
    if _display_taken(core.db, display, name) or core.db.by_display_name(name) is not None:
        return E.ERROR_DUPLICATE_SERVICE_NAME, None
    services, groups = _split_dependencies(m["dependencies"] or [])
    if name.lower() in (d.lower() for d in services) or creates_cycle(core.db, name, services):
        return E.ERROR_CIRCULAR_DEPENDENCY, None
    svc = ServiceRecord(
        name=name,
        service_type=m["service_type"],
        start=m["start_type"],
        error_control=m["error_control"],
        image_path=m["binary_path_name"],
        display_name=display,
        group=m["load_order_group"] or "",
        depend_on_service=services,
        depend_on_group=groups,
        object_name=m["service_start_name"] or (LOCAL_SYSTEM if m["service_type"] & 0x30 else ""),
    )
    core.db.add(svc)
    if core.store is not None:
        core.store.write_service(svc)
    kind = "kernel mode driver" if svc.is_driver else "user mode service"
    core.event(7045, svc.name, svc.image_path, kind, START_WORDS[svc.start], svc.object_name)
    return 0, svc


def change_config(core: ScmCore, svc: ServiceRecord, m: dict) -> dict:
    """RChangeServiceConfigW: SERVICE_NO_CHANGE / None keep a value."""
    if core.shutdown:
        return {"error": E.ERROR_SHUTDOWN_IN_PROGRESS, "tag_id": 0}
    if svc.marked_for_delete:
        return {"error": E.ERROR_SERVICE_MARKED_FOR_DELETE, "tag_id": 0}
    keep = sv.SERVICE_NO_CHANGE
    service_type = svc.service_type if m["service_type"] == keep else m["service_type"]
    start = svc.start if m["start_type"] == keep else m["start_type"]
    error_control = svc.error_control if m["error_control"] == keep else m["error_control"]
    error = _check_values(service_type, start, error_control)
    if error:
        return {"error": error, "tag_id": 0}
    display = m["display_name"]
    if display is not None and _display_taken(core.db, display, svc.name):
        return {"error": E.ERROR_DUPLICATE_SERVICE_NAME, "tag_id": 0}
    if m["dependencies"] is not None:
        services, groups = _split_dependencies(m["dependencies"])
        if svc.name.lower() in (d.lower() for d in services) or creates_cycle(
            core.db, svc.name, services
        ):
            return {"error": E.ERROR_CIRCULAR_DEPENDENCY, "tag_id": 0}
        svc.depend_on_service, svc.depend_on_group = services, groups
    old_start = svc.start
    svc.service_type, svc.start, svc.error_control = service_type, start, error_control
    for key, attr in (
        ("binary_path_name", "image_path"),
        ("load_order_group", "group"),
        ("service_start_name", "object_name"),
        ("display_name", "display_name"),
    ):
        if m[key] is not None:
            setattr(svc, attr, m[key])
    if core.store is not None:
        core.store.write_service(svc)
    if start != old_start:
        core.event(7040, svc.event_name, START_WORDS[old_start], START_WORDS[start])
    return {"error": 0, "tag_id": svc.tag}


def change_config2(core: ScmCore, svc: ServiceRecord, m: dict) -> int:
    """RChangeServiceConfig2W: the member the info level names must be there."""
    level, info = m["info_level"], m["info"]
    member = {
        sv.SERVICE_CONFIG_DESCRIPTION: "description",
        sv.SERVICE_CONFIG_FAILURE_ACTIONS: "failure_actions",
        sv.SERVICE_CONFIG_DELAYED_AUTO_START_INFO: "delayed_auto_start",
        sv.SERVICE_CONFIG_FAILURE_ACTIONS_FLAG: "failure_actions_on_non_crash_failures",
        sv.SERVICE_CONFIG_SERVICE_SID_INFO: "service_sid_type",
        sv.SERVICE_CONFIG_REQUIRED_PRIVILEGES_INFO: "required_privileges",
        sv.SERVICE_CONFIG_PRESHUTDOWN_INFO: "preshutdown_timeout",
    }[level]
    value = info.get(member)
    if value is None:
        return E.ERROR_INVALID_PARAMETER
    if svc.marked_for_delete:
        return E.ERROR_SERVICE_MARKED_FOR_DELETE
    if level == sv.SERVICE_CONFIG_FAILURE_ACTIONS:
        actions = tuple(ScAction(a["type"], a["delay"]) for a in value["actions"])
        svc.failure_actions = FailureActions(
            value["reset_period"], actions, value["reboot_msg"], value["command"]
        )
    elif level == sv.SERVICE_CONFIG_DESCRIPTION:
        svc.description = value
    elif level == sv.SERVICE_CONFIG_DELAYED_AUTO_START_INFO:
        svc.delayed_autostart = value
    elif level == sv.SERVICE_CONFIG_FAILURE_ACTIONS_FLAG:
        svc.failure_actions_on_non_crash_failures = value
    elif level == sv.SERVICE_CONFIG_SERVICE_SID_INFO:
        svc.service_sid_type = value
    elif level == sv.SERVICE_CONFIG_REQUIRED_PRIVILEGES_INFO:
        svc.required_privileges = list(value)
    else:
        svc.preshutdown_timeout_ms = value
    if core.store is not None:
        core.store.write_service(svc)
    return 0


def delete_service(core: ScmCore, svc: ServiceRecord) -> int:
    """RDeleteService: gone now if STOPPED, else marked until it stops."""
    if svc.marked_for_delete:
        return E.ERROR_SERVICE_MARKED_FOR_DELETE
    if core.store is not None:
        core.store.delete_service(svc.name)
    if svc.status.current_state == sv.SERVICE_STOPPED:
        core.db.remove(svc.name)
    else:
        svc.marked_for_delete = True
    log.info("scm.delete", service=svc.name, marked=svc.marked_for_delete)
    return 0


def query_config(svc: ServiceRecord) -> dict:
    """QUERY_SERVICE_CONFIGW; group dependencies come back ``+``-marked."""
    return {
        "service_type": svc.service_type,
        "start_type": svc.start,
        "error_control": svc.error_control,
        "binary_path_name": svc.image_path,
        "load_order_group": svc.group,
        "tag_id": svc.tag,
        "dependencies": [
            *svc.depend_on_service,
            *(sv.SC_GROUP_IDENTIFIER + g for g in svc.depend_on_group),
        ],
        "service_start_name": svc.object_name,
        "display_name": svc.display_name,
    }


def empty_config() -> dict:
    return {
        "service_type": 0,
        "start_type": 0,
        "error_control": 0,
        "binary_path_name": "",
        "load_order_group": "",
        "tag_id": 0,
        "dependencies": [],
        "service_start_name": "",
        "display_name": "",
    }


def query_config2(svc: ServiceRecord, level: int) -> dict:
    if level == sv.SERVICE_CONFIG_DESCRIPTION:
        return {"description": svc.description or ""}
    if level == sv.SERVICE_CONFIG_FAILURE_ACTIONS:
        fa = svc.failure_actions or FailureActions()
        info: dict = {
            "reset_period": fa.reset_period_s,
            "actions": [{"type": a.type, "delay": a.delay_ms} for a in fa.actions],
        }
        for key, text in (("reboot_msg", fa.reboot_msg), ("command", fa.command)):
            if text is not None:  # an absent optional member, not a nil
                info[key] = text
        return {"failure_actions": info}
    if level == sv.SERVICE_CONFIG_DELAYED_AUTO_START_INFO:
        return {"delayed_auto_start": svc.delayed_autostart}
    if level == sv.SERVICE_CONFIG_FAILURE_ACTIONS_FLAG:
        return {"failure_actions_on_non_crash_failures": svc.failure_actions_on_non_crash_failures}
    if level == sv.SERVICE_CONFIG_SERVICE_SID_INFO:
        return {"service_sid_type": svc.service_sid_type}
    if level == sv.SERVICE_CONFIG_REQUIRED_PRIVILEGES_INFO:
        return {"required_privileges": list(svc.required_privileges)}
    return {"preshutdown_timeout": svc.preshutdown_timeout_ms}


def enum_entry(svc: ServiceRecord, *, process: bool = False) -> dict:
    return {
        "service_name": svc.name,
        "display_name": svc.display_name,
        "status": svc.status.as_dict(process=process),
    }


def dependents_deep(db: ServiceDatabase, name: str) -> list[ServiceRecord]:
    """Every service that depends on ``name``, directly or not, deepest first (the order
    they must stop in, as EnumDependentServices returns them)."""
    out: list[ServiceRecord] = []
    seen: set[str] = {name.lower()}

    def visit(current: str) -> None:
        for dep in db.dependents(current):
            if dep.name.lower() in seen:
                continue
            seen.add(dep.name.lower())
            visit(dep.name)
            out.append(dep)

    visit(name)
    return out
