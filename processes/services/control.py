"""Controls, status reports and the control connection (rpcserver.c RControlService,
RSetServiceStatus; database.c ScmControlService, ScmWaitForServiceConnect; nt-spec §4.8).

Timeouts (all scaled by the SCM's time scale, reported with the configured figures):
- a process that never connects: ``ServicesPipeTimeout`` → 7009 + 7000, the start gets
  ERROR_SERVICE_REQUEST_TIMEOUT 1053, the process is terminated (Windows; ReactOS leaves it);
- a control with no reply within ``ServicesPipeTimeout`` → 7011, the caller gets 1053;
- START_PENDING whose checkpoint does not move within its wait hint plus the start grace
  → 7022 "hung on starting", the service is stopped with ERROR_SERVICE_START_HANG.
A process that exits is seen at once (the kernel's exit event): every service still active
in it goes STOPPED with ERROR_PROCESS_ABORTED and its failure actions run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from nt.log import get_logger
from nt.win32 import Win32Error as E
from nt.win32 import error_message
from ports.svcctl import (
    SERVICE_ACCEPT_PARAMCHANGE,
    SERVICE_ACCEPT_PAUSE_CONTINUE,
    SERVICE_ACCEPT_PRESHUTDOWN,
    SERVICE_ACCEPT_SHUTDOWN,
    SERVICE_ACCEPT_STOP,
    SERVICE_CONTINUE_PENDING,
    SERVICE_CONTROL_CONTINUE,
    SERVICE_CONTROL_INTERROGATE,
    SERVICE_CONTROL_NETBINDADD,
    SERVICE_CONTROL_NETBINDDISABLE,
    SERVICE_CONTROL_PARAMCHANGE,
    SERVICE_CONTROL_PAUSE,
    SERVICE_CONTROL_PRESHUTDOWN,
    SERVICE_CONTROL_SHUTDOWN,
    SERVICE_CONTROL_STOP,
    SERVICE_PAUSE_PENDING,
    SERVICE_PAUSED,
    SERVICE_RUNNING,
    SERVICE_START_PENDING,
    SERVICE_STOP_PENDING,
    SERVICE_STOPPED,
)
from processes.services import recovery
from processes.services.database import ServiceRecord
from processes.services.image import ControlPacket, PendingControl, ServiceImage

if TYPE_CHECKING:
    from processes.services.scm import ControlChannel, ScmCore

log = get_logger()
ERROR_SERVICE_SPECIFIC_ERROR = 1066
STATUS_TIMEOUT = 0xC0000102
STATE_WORDS = {SERVICE_RUNNING: "running", SERVICE_STOPPED: "stopped", SERVICE_PAUSED: "paused"}
# Which accepted-controls bit a control needs (SERVICE_ACCEPT_*).
_NEEDS = {
    SERVICE_CONTROL_STOP: SERVICE_ACCEPT_STOP,
    SERVICE_CONTROL_PAUSE: SERVICE_ACCEPT_PAUSE_CONTINUE,
    SERVICE_CONTROL_CONTINUE: SERVICE_ACCEPT_PAUSE_CONTINUE,
    SERVICE_CONTROL_SHUTDOWN: SERVICE_ACCEPT_SHUTDOWN,
    SERVICE_CONTROL_PARAMCHANGE: SERVICE_ACCEPT_PARAMCHANGE,
    SERVICE_CONTROL_PRESHUTDOWN: SERVICE_ACCEPT_PRESHUTDOWN,
}
_ACTIVE = {
    SERVICE_START_PENDING,
    SERVICE_RUNNING,
    SERVICE_CONTINUE_PENDING,
    SERVICE_PAUSE_PENDING,
    SERVICE_PAUSED,
}
ControlDone = Callable[[int, dict], None]


def valid_control(control: int) -> bool:
    """RControlService's access switch: the codes a caller may send at all."""
    return (
        SERVICE_CONTROL_STOP <= control <= SERVICE_CONTROL_PARAMCHANGE
        or SERVICE_CONTROL_NETBINDADD <= control <= SERVICE_CONTROL_NETBINDDISABLE
        or control == SERVICE_CONTROL_PRESHUTDOWN
        or 128 <= control <= 255
    )


def control_service(core: ScmCore, name: str, code: int, done: ControlDone) -> None:
    """RControlService after the access check, in rpcserver.c's order (nt-spec §4.8)."""
    svc = core.lookup(name)
    if svc is None:
        return done(E.ERROR_SERVICE_DOES_NOT_EXIST, {})
    status = svc.status.as_dict()
    if core.shutdown:
        return done(E.ERROR_SHUTDOWN_IN_PROGRESS, status)
    if not valid_control(code):
        return done(E.ERROR_INVALID_PARAMETER, status)
    if code == SERVICE_CONTROL_STOP and any(
        d.status.current_state in _ACTIVE for d in core.db.dependents(svc.name)
    ):
        return done(E.ERROR_DEPENDENT_SERVICES_RUNNING, status)
    state = svc.status.current_state
    if svc.is_driver:  # loaded by the kernel: the SCM answers INTERROGATE from its record
        if state == SERVICE_STOPPED:
            return done(E.ERROR_SERVICE_NOT_ACTIVE, status)
        error = 0 if code == SERVICE_CONTROL_INTERROGATE else E.ERROR_INVALID_SERVICE_CONTROL
        return done(error, status)
    image = core.images.get(svc.image_key or "")
    if state == SERVICE_STOPPED or image is None:
        return done(E.ERROR_SERVICE_NOT_ACTIVE, status)
    if state == SERVICE_STOP_PENDING:
        return done(E.ERROR_SERVICE_CANNOT_ACCEPT_CTRL, status)
    if code == SERVICE_CONTROL_INTERROGATE:
        if state == SERVICE_START_PENDING:
            return done(0, status)  # answered from the cache
    elif state == SERVICE_START_PENDING and code != SERVICE_CONTROL_STOP:
        return done(E.ERROR_SERVICE_CANNOT_ACCEPT_CTRL, status)
    elif code < 128 and not svc.status.controls_accepted & _NEEDS.get(code, 0xFFFFFFFF):
        return done(E.ERROR_INVALID_SERVICE_CONTROL, status)
    if (
        code == SERVICE_CONTROL_STOP
        and state == SERVICE_START_PENDING
        and not svc.status.controls_accepted & SERVICE_ACCEPT_STOP
    ):
        return done(E.ERROR_SERVICE_CANNOT_ACCEPT_CTRL, status)

    def replied(error: int) -> None:
        # The service reports its own pending state (RSetServiceStatus); the reply is
        # the status as the SCM knows it after the handler returned.
        # The service may have reported STOPPED before its reply to the control arrived:
        # then there is nothing left to watch.
        if (
            code == SERVICE_CONTROL_STOP
            and error == 0
            and svc.status.current_state != SERVICE_STOPPED
        ):
            arm_stop_watchdog(core, svc)
        done(error, svc.status.as_dict())

    send_control(core, image, code, svc.name, replied, svc.service_tag)
    return None


# --- the control connection ------------------------------------------------------------


def send_control(
    core: ScmCore,
    image: ServiceImage,
    code: int,
    service_name: str,
    on_reply: Callable[[int], None],
    status_handle: int = 0,
    arguments: tuple[str, ...] = (),
) -> None:
    packet = ControlPacket(core.next_sequence(), code, service_name, status_handle, arguments)
    pending = PendingControl(packet, on_reply)
    if not image.connected:
        image.queued.append(pending)  # delivered when the dispatcher connects
        return
    _deliver(core, image, pending)


def _deliver(core: ScmCore, image: ServiceImage, pending: PendingControl) -> None:
    seq = pending.packet.sequence
    image.pending[seq] = pending
    pending.timer = core.clock.call_later(
        core.ms(core.db.pipe_timeout_ms), lambda: _reply_timeout(core, image, seq)
    )
    assert image.channel is not None
    image.channel.send(pending.packet)


def _reply_timeout(core: ScmCore, image: ServiceImage, seq: int) -> None:
    pending = image.pending.pop(seq, None)
    if pending is None:
        return
    core.event(7011, core.db.pipe_timeout_ms, _display(core, pending.packet.service_name))
    pending.on_reply(E.ERROR_SERVICE_REQUEST_TIMEOUT)


def _display(core: ScmCore, name: str) -> str:
    svc = core.lookup(name)
    return svc.event_name if svc is not None else name


def arm_connect_timeout(core: ScmCore, image: ServiceImage) -> None:
    image.connect_timer = core.clock.call_later(
        core.ms(core.db.pipe_timeout_ms), lambda: _connect_timeout(core, image)
    )


def _connect_timeout(core: ScmCore, image: ServiceImage) -> None:
    """ScmWaitForServiceConnect gave up: 7009, then each start fails with 1053 (7000)."""
    if image.connected or image.exited:
        return
    for pending in image.queued:
        core.event(7009, core.db.pipe_timeout_ms, _display(core, pending.packet.service_name))
    queued, image.queued = image.queued, []
    _forget_image(core, image)
    if image.pid:
        core.kernel.terminate_process(image.pid, 0xC0000102)  # STATUS_TIMEOUT
    for pending in queued:
        pending.on_reply(E.ERROR_SERVICE_REQUEST_TIMEOUT)


def control_connect(core: ScmCore, service_current: int, pid: int, channel: ControlChannel) -> int:
    """A dispatcher connected (StartServiceCtrlDispatcher) with its ServiceCurrent."""
    image = next(
        (i for i in core.images.values() if i.service_current == service_current and not i.exited),
        None,
    )
    if image is None:
        return E.ERROR_FAILED_SERVICE_CONTROLLER_CONNECT
    if image.connected:
        return E.ERROR_SERVICE_ALREADY_RUNNING  # StartServiceCtrlDispatcher called twice
    if image.pid and pid != image.pid:
        log.warning("scm.pid_mismatch", expected=image.pid, got=pid)  # only logged (§4.9)
    if image.security_process and not image.pid:
        image.pid = pid
        core.images_by_pid[pid] = image
        for name in image.services:
            svc = core.lookup(name)
            if svc is not None:
                svc.status.process_id = pid
    if image.connect_timer is not None:
        image.connect_timer.cancel()
    image.channel = channel
    queued, image.queued = image.queued, []
    for pending in queued:
        _deliver(core, image, pending)
    return 0


def control_reply(core: ScmCore, pid: int, sequence: int, error: int) -> None:
    image = core.images_by_pid.get(pid)
    pending = image.pending.pop(sequence, None) if image is not None else None
    if pending is None:
        return  # late (timed out) or unknown: dropped
    if pending.timer is not None:
        pending.timer.cancel()
    pending.on_reply(error)


# --- status ------------------------------------------------------------------------------


def set_service_status(core: ScmCore, status_handle: int, new: dict[str, int]) -> int:
    """RSetServiceStatus (ScmSetServiceStatus rules)."""
    name = core.status_handles.get(status_handle)
    svc = core.lookup(name) if name else None
    if svc is None:
        return E.ERROR_INVALID_HANDLE
    state = new["current_state"]
    if not SERVICE_STOPPED <= state <= SERVICE_PAUSED or new["controls_accepted"] > 0xFFF:
        return E.ERROR_INVALID_DATA
    st, old = svc.status, svc.status.current_state
    if (
        state == SERVICE_START_PENDING
        and old == SERVICE_START_PENDING
        and new["check_point"] > st.check_point
    ):
        arm_start_watchdog(core, svc, new["wait_hint"])
    st.current_state = state
    st.controls_accepted = new["controls_accepted"]
    st.win32_exit_code = new["win32_exit_code"]
    st.service_specific_exit_code = new["service_specific_exit_code"]
    pending_state = state in (
        SERVICE_START_PENDING,
        SERVICE_STOP_PENDING,
        SERVICE_CONTINUE_PENDING,
        SERVICE_PAUSE_PENDING,
    )
    st.check_point = new["check_point"] if pending_state else 0
    st.wait_hint = new["wait_hint"] if pending_state else 0
    if state != SERVICE_START_PENDING:
        _cancel_watchdog(svc)
    if state == SERVICE_STOPPED:
        _cancel_stop_timer(svc)
        _stopped_by_service(core, svc)
    elif state != old and state in STATE_WORDS:
        core.event(7036, svc.event_name, STATE_WORDS[state])
        if state == SERVICE_RUNNING and svc.name.lower() in core.auto.delayed_set and st.process_id:
            core.kernel.set_process_priority(st.process_id, low=False)
    log.info("svc.state", service=svc.name, state=state, exit_code=st.win32_exit_code)
    core.state_changed()
    return 0


def _stopped_by_service(core: ScmCore, svc: ServiceRecord) -> None:
    """The service reported STOPPED: 7036, 7023/7024 for an error, non-crash recovery."""
    st = svc.status
    error = st.win32_exit_code
    core.event(7036, svc.event_name, "stopped")
    if error == ERROR_SERVICE_SPECIFIC_ERROR:
        core.event(7024, svc.event_name, f"%%{st.service_specific_exit_code}")
    elif error:
        core.event(7023, svc.event_name, error_message(error))
    _leave_image(core, svc)
    if error and svc.failure_actions_on_non_crash_failures:
        recovery.service_failed(core, svc)
    _maybe_delete(core, svc)


def enter_stopped(core: ScmCore, svc: ServiceRecord, error: int) -> None:
    """The SCM stops a service itself (failed start, hang, abort)."""
    _cancel_watchdog(svc)
    _cancel_stop_timer(svc)
    st = svc.status
    st.current_state, st.win32_exit_code = SERVICE_STOPPED, error
    st.controls_accepted = st.check_point = st.wait_hint = 0
    _leave_image(core, svc)
    _maybe_delete(core, svc)
    core.state_changed()


def _leave_image(core: ScmCore, svc: ServiceRecord) -> None:
    """ScmStopThread: the last service of an image stops its dispatcher."""
    svc.status.process_id = 0
    image = core.images.get(svc.image_key or "")
    svc.image_key = None
    if image is None:
        return
    image.services.discard(svc.name.lower())
    if not image.services and not image.exited:
        if image.connected:
            send_control(core, image, SERVICE_CONTROL_STOP, "", lambda _e: None)
        _forget_image(core, image)
        if image.pid and not image.security_process:  # no process outlives its services
            delay = core.ms(core.db.wait_to_kill_ms)
            image.reap_timer = core.clock.call_later(delay, lambda: _reap(core, image))


def _reap(core: ScmCore, image: ServiceImage) -> None:
    if not image.exited and not image.services:
        log.warning("scm.reap", child_pid=image.pid, image=image.image_path)
        core.kernel.terminate_process(image.pid, 0)


def _forget_image(core: ScmCore, image: ServiceImage) -> None:
    if core.images.get(image.key) is image:
        del core.images[image.key]
    if image.connect_timer is not None:
        image.connect_timer.cancel()


def _maybe_delete(core: ScmCore, svc: ServiceRecord) -> None:
    if svc.marked_for_delete and svc.status.current_state == SERVICE_STOPPED:
        core.db.remove(svc.name)
        log.info("scm.deleted", service=svc.name)


def arm_start_watchdog(core: ScmCore, svc: ServiceRecord, wait_hint: int | None = None) -> None:
    _cancel_watchdog(svc)
    hint = svc.status.wait_hint if wait_hint is None else wait_hint
    delay = core.ms(hint + core.settings.start_hang_grace_ms)
    svc.watchdog = core.clock.call_later(delay, lambda: _start_hung(core, svc))


def _cancel_watchdog(svc: ServiceRecord) -> None:
    if svc.watchdog is not None:
        svc.watchdog.cancel()
        svc.watchdog = None


def _cancel_stop_timer(svc: ServiceRecord) -> None:
    if svc.stop_timer is not None:
        svc.stop_timer.cancel()
        svc.stop_timer = None


def arm_stop_watchdog(core: ScmCore, svc: ServiceRecord) -> None:
    """A service that accepted STOP has WaitToKillServiceTimeout to reach STOPPED; then
    the SCM stops it itself and ends its process when nothing else runs there."""
    if svc.stop_timer is not None:
        svc.stop_timer.cancel()
    # The image this stop is for: a later restart of the service runs in another one.
    stopping = core.images.get(svc.image_key or "")
    svc.stop_timer = core.clock.call_later(
        core.ms(core.db.wait_to_kill_ms), lambda: _stop_timed_out(core, svc, stopping)
    )


def _stop_timed_out(core: ScmCore, svc: ServiceRecord, stopping: ServiceImage | None) -> None:
    svc.stop_timer = None
    image = core.images.get(svc.image_key or "")
    if svc.status.current_state == SERVICE_STOPPED or image is not stopping:
        return
    log.warning("scm.stop_timeout", service=svc.name, wait_to_kill_ms=core.db.wait_to_kill_ms)
    enter_stopped(core, svc, E.ERROR_SERVICE_REQUEST_TIMEOUT)
    core.event(7036, svc.event_name, "stopped")
    if image is not None and not image.services and image.pid:
        core.kernel.terminate_process(image.pid, STATUS_TIMEOUT)


def _start_hung(core: ScmCore, svc: ServiceRecord) -> None:
    svc.watchdog = None
    if svc.status.current_state != SERVICE_START_PENDING:
        return
    core.event(7022, svc.event_name)
    image = core.images.get(svc.image_key or "")
    enter_stopped(core, svc, E.ERROR_SERVICE_START_HANG)
    if image is not None and not image.services and image.pid:
        core.kernel.terminate_process(image.pid, 1)


def process_exited(core: ScmCore, pid: int, exit_status: int) -> None:
    """The kernel's exit event for a service process: abort what still ran in it."""
    image = core.images_by_pid.pop(pid, None)
    if image is None:
        return
    image.exited = True
    if image.reap_timer is not None:
        image.reap_timer.cancel()
    _forget_image(core, image)
    for pending in [*image.pending.values(), *image.queued]:
        if pending.timer is not None:
            pending.timer.cancel()
        pending.on_reply(E.ERROR_PROCESS_ABORTED)
    image.pending.clear()
    image.queued.clear()
    crashed = [core.lookup(n) for n in sorted(image.services)]
    image.services.clear()
    for svc in crashed:
        if svc is None or svc.status.current_state == SERVICE_STOPPED:
            continue
        log.warning("scm.service_aborted", service=svc.name, child_pid=pid, exit_status=exit_status)
        svc.image_key = None
        enter_stopped(core, svc, E.ERROR_PROCESS_ABORTED)
        if not core.shutdown:  # the machine is stopping: no 7031/7034, no recovery
            recovery.service_failed(core, svc)
