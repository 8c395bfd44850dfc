"""Starting services: RStartServiceW, ScmAutoStartServices and delayed auto-start
(database.c ScmLoadService / ScmStartUserModeService; nt-spec §4.5-4.7, §4.9).

Windows semantics where ReactOS differs: a service's dependencies are started first and
waited for until RUNNING (DependOnService), a DependOnGroup is met by one running member,
and a dependency that fails gives the dependent ERROR_SERVICE_DEPENDENCY_FAIL and event
7001. The SCM itself does not wait for a service to be RUNNING: a start completes when the
process has connected and acknowledged START_OWN / START_SHARE. Auto-start walks the order
computed by nt/svcorder; delayed auto-start services follow ``AutoStartDelay`` seconds
after every auto-start service has left START_PENDING, one at a time, at low priority.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nt.log import get_logger
from nt.status import nt_success
from nt.svcorder import Order, ServiceEntry, compute_order
from nt.win32 import Win32Error as E
from nt.win32 import error_message
from ports.svcctl import (
    SERVICE_CONTINUE_PENDING,
    SERVICE_CONTROL_START_OWN,
    SERVICE_CONTROL_START_SHARE,
    SERVICE_DISABLED,
    SERVICE_ERROR_IGNORE,
    SERVICE_ERROR_SEVERE,
    SERVICE_PAUSE_PENDING,
    SERVICE_PAUSED,
    SERVICE_RUNNING,
    SERVICE_START_PENDING,
    SERVICE_STOPPED,
    SERVICE_WIN32_SHARE_PROCESS,
)
from processes.services import control
from processes.services.database import ServiceDatabase, ServiceRecord
from processes.services.image import (
    SECURITY_SERVICES_STARTED,
    ServiceImage,
    check_account,
    image_file,
    image_key,
    is_security_process,
    status_type,
)
from processes.services.logon import logon_service_process

if TYPE_CHECKING:
    from processes.services.scm import Done, ScmCore

log = get_logger()
WAIT, OK = "wait", "ok"
_STARTED = {SERVICE_RUNNING, SERVICE_PAUSED, SERVICE_PAUSE_PENDING, SERVICE_CONTINUE_PENDING}


def start_service(
    core: ScmCore, name: str, argv: tuple[str, ...], done: Done, chain: frozenset[str] = frozenset()
) -> None:
    """RStartServiceW after the handle checks: the state checks, dependencies, then load."""
    svc = core.lookup(name)
    if svc is None:
        return done(E.ERROR_SERVICE_DOES_NOT_EXIST)
    if core.shutdown:
        return done(E.ERROR_SHUTDOWN_IN_PROGRESS)
    if svc.start == SERVICE_DISABLED:
        return done(E.ERROR_SERVICE_DISABLED)
    if svc.marked_for_delete:
        return done(E.ERROR_SERVICE_MARKED_FOR_DELETE)
    if not core.db.allowed_in_safe_boot(svc):
        return done(E.ERROR_NOT_SAFEBOOT_SERVICE)
    if svc.status.current_state != SERVICE_STOPPED or svc.name.lower() in core.starting:
        return done(E.ERROR_SERVICE_ALREADY_RUNNING)
    if svc.name.lower() in chain or depends_on_itself(core, svc):
        return done(E.ERROR_CIRCULAR_DEPENDENCY)  # waiting on itself would never end
    core.starting.add(svc.name.lower())
    chain = chain | {svc.name.lower()}
    for dep_name in svc.depend_on_service:  # start what it needs first (Windows, not ReactOS)
        dep = core.lookup(dep_name)
        if (
            dep is not None
            and dep.status.current_state == SERVICE_STOPPED
            and dep.name.lower() not in core.starting
        ):
            start_service(core, dep.name, (), lambda err, d=dep: _note_dependency(d, err), chain)

    def go() -> None:
        verdict, error, culprit, cause = dependency_state(core, svc)
        if verdict != OK:
            core.starting.discard(svc.name.lower())
            svc.status.win32_exit_code = error
            core.event(7001, svc.event_name, culprit, error_message(cause or error))
            return done(error)
        load_service(core, svc, argv, done)

    core.wait_until(lambda: dependency_state(core, svc)[0] != WAIT, go)
    return None


def depends_on_itself(core: ScmCore, svc: ServiceRecord) -> bool:
    """Whether a DependOnService path leads from ``svc`` back to it."""
    target, stack, seen = svc.name.lower(), [d.lower() for d in svc.depend_on_service], set()
    while stack:
        name = stack.pop()
        if name == target:
            return True
        if name not in seen:
            seen.add(name)
            dep = core.lookup(name)
            if dep is not None:
                stack.extend(d.lower() for d in dep.depend_on_service)
    return False


def _note_dependency(dep: ServiceRecord, error: int) -> None:
    if error:
        dep.start_error = error


def dependency_state(core: ScmCore, svc: ServiceRecord) -> tuple[str, int, str, int]:
    """(ok | wait | fail, win32 error, the dependency 7001 names, why that one failed)."""
    for dep_name in svc.depend_on_service:
        dep = core.lookup(dep_name)
        if dep is None or dep.marked_for_delete:
            return "fail", E.ERROR_SERVICE_DEPENDENCY_DELETED, dep_name, 0
        state = dep.status.current_state
        if state in _STARTED:  # a paused service has started
            continue
        if state == SERVICE_START_PENDING or dep.name.lower() in core.starting:
            return WAIT, 0, dep_name, 0
        cause = dep.start_error or dep.status.win32_exit_code
        return "fail", E.ERROR_SERVICE_DEPENDENCY_FAIL, dep.event_name, cause
    for group in svc.depend_on_group:
        members = [s for s in core.db.services.values() if s.group.lower() == group.lower()]
        if any(m.status.current_state == SERVICE_RUNNING for m in members):
            continue
        if any(
            m.status.current_state == SERVICE_START_PENDING
            or m.name.lower() in core.starting
            or m.name.lower() in core.auto_pending
            for m in members
        ):
            return WAIT, 0, group, 0
        return "fail", E.ERROR_SERVICE_DEPENDENCY_FAIL, group, 0
    return OK, 0, "", 0


def load_service(core: ScmCore, svc: ServiceRecord, argv: tuple[str, ...], done: Done) -> None:
    """ScmLoadService: a driver through the kernel, a Win32 service through its image."""
    svc.start_error = 0
    if svc.is_driver:
        status = core.kernel.load_driver(svc.name, svc.image_path)
        core.starting.discard(svc.name.lower())
        if nt_success(status):
            svc.status.current_state = SERVICE_RUNNING
            svc.status.win32_exit_code = 0
            core.state_changed()
            return done(0)
        return _start_failed(
            core, svc, E.ERROR_FILE_NOT_FOUND if status == 0xC0000034 else E.ERROR_GEN_FAILURE, done
        )
    image, error = reference_image(core, svc)
    if image is None:
        return _start_failed(core, svc, error, done)
    svc.image_key = image.key
    svc.service_tag = svc.service_tag or core.new_service_tag()
    core.status_handles[svc.service_tag] = svc.name.lower()
    image.services.add(svc.name.lower())
    st = svc.status
    st.service_type = status_type(svc, image.key)
    st.current_state, st.controls_accepted, st.win32_exit_code = SERVICE_START_PENDING, 0, 0
    st.service_specific_exit_code, st.check_point = 0, 0
    st.wait_hint, st.process_id = core.settings.initial_wait_hint_ms, image.pid
    # SERVICE_RUNS_IN_SYSTEM_PROCESS: hosted by a process that must always run (lsass)
    st.service_flags = 1 if image.security_process else 0
    core.starting.discard(svc.name.lower())
    own = not (svc.service_type & SERVICE_WIN32_SHARE_PROCESS)
    code = SERVICE_CONTROL_START_OWN if own else SERVICE_CONTROL_START_SHARE

    def acknowledged(error: int) -> None:
        if error:
            svc.start_error = error
            control.enter_stopped(core, svc, error)
            start_failure(core, svc, error)
            return done(error)
        control.arm_start_watchdog(core, svc)
        return done(0)

    log.info("scm.start", service=svc.name, child_pid=image.pid, control=code)
    control.send_control(core, image, code, svc.name, acknowledged, svc.service_tag, argv)
    core.state_changed()
    return None


def _start_failed(core: ScmCore, svc: ServiceRecord, error: int, done: Done) -> None:
    core.starting.discard(svc.name.lower())
    svc.start_error = error
    svc.status.current_state = SERVICE_STOPPED
    svc.status.win32_exit_code = error
    start_failure(core, svc, error)
    core.state_changed()
    done(error)


def start_failure(core: ScmCore, svc: ServiceRecord, error: int) -> None:
    """7000, by ErrorControl while auto-start runs: IGNORE logs nothing; SEVERE and
    CRITICAL go to the kernel, which decides about LastKnownGood (nt-spec §4.3)."""
    booting = core.auto.started and not core.auto.complete and svc.is_auto_start
    if booting and svc.error_control == SERVICE_ERROR_IGNORE:
        return
    core.event(7000, svc.event_name, error_message(error))
    if booting and svc.error_control >= SERVICE_ERROR_SEVERE:
        core.kernel.start_failed(svc.name, svc.error_control, error)


def reference_image(core: ScmCore, svc: ServiceRecord) -> tuple[ServiceImage | None, int]:
    """ScmCreateOrReferenceServiceImage: an existing image, or a new suspended process."""
    key = image_key(svc, split=core.split)
    image = core.images.get(key)
    if image is not None and not image.exited:
        error = check_account(image, svc)
        return (None, error) if error else (image, 0)
    # lsass hosts its services (ServiceCurrent 0); a model without an lsass image runs
    # them like any missing image (a stand-in, or 7000 / ERROR_FILE_NOT_FOUND).
    security = is_security_process(svc.image_path) and core.kernel.image_available(svc.image_path)
    standin = False
    if not security and not core.kernel.image_available(svc.image_path):
        if not core.settings.standins:
            return None, E.ERROR_FILE_NOT_FOUND
        standin = True
        file = image_file(svc.image_path)
        if file not in core.standins_logged:
            core.standins_logged.add(file)
            log.info("divergence", what="stand-in image", image=file, service=svc.name)
    if security:
        current = 0
    else:
        core.service_current += 1
        current = core.service_current
    image = ServiceImage(
        key=key,
        image_path=svc.image_path,
        account=svc.object_name,
        service_current=current,
        standin=standin,
        security_process=security,
    )
    svc.standin = standin
    if security:  # lsass: no new process; its dispatcher waits on this event
        core.kernel.set_event(SECURITY_SERVICES_STARTED)
    else:
        status, pid = core.kernel.create_process(
            split_command_line(svc, key),
            service_current=current,
            account=svc.object_name,
            standin=standin,
            low_priority=svc.name.lower() in core.auto.delayed_set,
        )
        if not nt_success(status):
            return None, E.ERROR_FILE_NOT_FOUND if status == 0xC0000034 else E.ERROR_GEN_FAILURE
        error = logon_service_process(core, svc, pid)  # a user account: its token, or 1069
        if error:
            core.kernel.terminate_process(pid, error)
            return None, error
        image.pid = pid
        core.images_by_pid[pid] = image
        core.kernel.resume_process(pid)
    core.images[key] = image
    control.arm_connect_timeout(core, image)
    log.info(
        "scm.image",
        image=image.image_path,
        service_current=current,
        child_pid=image.pid,
        standin=standin,
    )
    return image, 0


def split_command_line(svc: ServiceRecord, key: str) -> str:
    """Windows 10's split svchost names its one service: ``svchost.exe -k netsvcs -p -s
    Schedule`` (Process Explorer shows that command line)."""
    split = key.endswith("|" + svc.name.lower())
    if (
        split
        and svc.service_type & SERVICE_WIN32_SHARE_PROCESS
        and image_file(svc.image_path) == "svchost.exe"
    ):
        return f"{svc.image_path} -s {svc.name}"
    return svc.image_path


# --- auto-start ----------------------------------------------------------------------------


def svcorder_order(db: ServiceDatabase) -> Order:
    """The auto-start order (nt/svcorder) of the database; loaded drivers count as running."""
    entries = [
        ServiceEntry(
            name=r.name,
            start=r.start,
            type=r.service_type,
            group=r.group,
            tag=r.tag or None,
            depend_on_service=tuple(r.depend_on_service),
            depend_on_group=tuple(r.depend_on_group),
            delayed=r.delayed_autostart,
        )
        for r in db.services.values()
    ]
    running = [
        r.name
        for r in db.services.values()
        if r.is_driver and r.status.current_state == SERVICE_RUNNING
    ]
    return compute_order(entries, db.group_list, db.group_tags, running=running)


def auto_start_services(core: ScmCore) -> None:
    """ScmAutoStartServices: the computed order, sequentially; each start is awaited only
    up to its acknowledgement, but a service waits for its dependencies to be RUNNING."""
    order = core.order(core.db)
    auto = core.auto
    auto.started = True
    for name, err in order.errors.items():
        svc = core.lookup(name)
        if svc is not None and svc.is_auto_start:  # a demand-start one fails when started
            code = int(getattr(err, "code", err))
            svc.status.win32_exit_code = code
            svc.start_error = code
            start_failure(core, svc, code)
    names = [
        n
        for n in order.sequence
        if n not in order.errors
        and (s := core.lookup(n)) is not None
        and core.db.allowed_in_safe_boot(s)
    ]
    delayed = {n for n in names if getattr(order.reasons.get(n), "delayed", _is_delayed(core, n))}
    auto.sequence = [n for n in names if n not in delayed]
    auto.delayed = [n for n in names if n in delayed]
    auto.delayed_set = {n.lower() for n in auto.delayed}
    core.auto_pending = {n.lower() for n in auto.sequence}
    _next(core)


def _is_delayed(core: ScmCore, name: str) -> bool:
    svc = core.lookup(name)
    return svc is not None and svc.delayed_autostart and not svc.group


@dataclass
class _Walk:
    """Services started one after another (the auto-start pass, the delayed pass)."""

    names: list[str]
    finish: Callable[[], None]
    wait_running: bool = False  # the next waits until this one left START_PENDING
    window: int = 1  # starts in flight at once (1: each waits for the previous one's ack)
    index: int = 0
    outstanding: int = 0
    busy: bool = False
    ready: bool = False
    finished: bool = False


def _advance(core: ScmCore, walk: _Walk) -> None:
    """Start the walk's next services. A start that completes at once (a missing image, a
    failed dependency) loops here instead of recursing: a real hive with hundreds of
    failing services must not exhaust the stack."""
    if walk.busy:
        walk.ready = True
        return
    walk.busy = True
    try:
        while True:
            if walk.index >= len(walk.names) or (walk.wait_running and core.shutdown):
                if walk.outstanding == 0 and not walk.finished:
                    walk.finished = True
                    walk.finish()
                return
            if walk.outstanding >= walk.window:
                return  # a start in flight completes later, and _started carries on
            name = walk.names[walk.index]
            walk.index += 1
            svc = core.lookup(name)
            if svc is None or svc.status.current_state != SERVICE_STOPPED:
                core.auto_pending.discard(name.lower())
                continue
            walk.ready = False
            walk.outstanding += 1
            start_service(core, name, (), lambda _err, n=name: _started(core, walk, n))
    finally:
        walk.busy = False


def _started(core: ScmCore, walk: _Walk, name: str) -> None:
    walk.outstanding -= 1
    core.auto_pending.discard(name.lower())
    core.state_changed()  # a group dependency may have lost its last pending member
    if not walk.wait_running:
        return _advance(core, walk)
    svc = core.lookup(name)
    core.wait_until(
        lambda: svc is None or svc.status.current_state != SERVICE_START_PENDING,
        lambda: _advance(core, walk),
    )
    return None


def _next(core: ScmCore) -> None:
    walk = _Walk(
        list(core.auto.sequence),
        lambda: core.wait_until(lambda: _settled(core), lambda: _auto_complete(core)),
        window=max(1, core.settings.auto_start_window),
    )
    _advance(core, walk)


def _settled(core: ScmCore) -> bool:
    return all(
        (s := core.lookup(n)) is None or s.status.current_state != SERVICE_START_PENDING
        for n in core.auto.sequence
    )


def _auto_complete(core: ScmCore) -> None:
    """SetEvent(SC_AutoStartComplete); then the delayed ones after AutoStartDelay."""
    core.auto.complete = True
    running = sum(
        1
        for n in core.auto.sequence
        if (s := core.lookup(n)) is not None and s.status.current_state in _STARTED
    )  # services: the auto-start ones attempted; running: those that run (the console's n/m)
    log.info("scm.auto_start_complete", services=len(core.auto.sequence), running=running)
    if core.on_auto_start_complete is not None:
        core.on_auto_start_complete()
    if core.auto.delayed:
        core.clock.call_later(core.ms(core.db.auto_start_delay_s * 1000), lambda: _delayed(core))
    else:
        core.auto.delayed_complete = True


def _delayed(core: ScmCore) -> None:
    """One delayed service at a time: the next starts when this one left START_PENDING."""

    def finish() -> None:
        core.auto.delayed_complete = True

    _advance(core, _Walk(list(core.auto.delayed), finish, wait_running=True))
