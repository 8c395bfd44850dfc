"""Failure actions (SERVICE_FAILURE_ACTIONS; reliability-security §1.4, §6.5 V1-V3, V14).

A failure is a service process ending without the service having reported STOPPED, or,
with ``FailureActionsOnNonCrashFailures``, a STOPPED report with a non-zero exit code.
The count resets when ``ResetPeriod`` seconds passed since the last failure (INFINITE:
never); the Nth failure takes action N, beyond the list the last one repeats, for ever
(the SCM has no give-up rule). Events: 7031 with the count, the delay and the action, or
7034 when no action is configured; 7032 when the action itself fails.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nt.log import get_logger
from nt.win32 import error_message
from ports.svcctl import (
    INFINITE,
    SC_ACTION_NONE,
    SC_ACTION_REBOOT,
    SC_ACTION_RESTART,
    SC_ACTION_RUN_COMMAND,
    SERVICE_STOPPED,
)
from processes.services.database import ScAction, ServiceRecord

if TYPE_CHECKING:
    from processes.services.scm import ScmCore

log = get_logger()
ACTION_TEXT = {
    SC_ACTION_NONE: "No action",
    SC_ACTION_RESTART: "Restart the service",
    SC_ACTION_REBOOT: "Reboot the machine",
    SC_ACTION_RUN_COMMAND: "Run the configured recovery program",
}


def next_action(
    svc: ServiceRecord, now: float, time_scale: float = 1.0
) -> tuple[int, ScAction | None]:
    """Count this failure and pick its action: (failure count, action or None)."""
    fa = svc.failure_actions
    if (
        fa is not None
        and fa.reset_period_s != INFINITE
        and svc.last_failure_at is not None
        and now - svc.last_failure_at >= fa.reset_period_s * time_scale
    ):
        svc.failure_count = 0
    svc.failure_count += 1
    svc.last_failure_at = now
    if fa is None or not fa.actions:
        return svc.failure_count, None
    return svc.failure_count, fa.actions[min(svc.failure_count, len(fa.actions)) - 1]


def service_failed(core: ScmCore, svc: ServiceRecord) -> None:
    count, action = next_action(svc, core.clock.now(), core.settings.time_scale)
    if action is None:
        core.event(7034, svc.event_name, count)
        return
    index = svc.failure_actions.actions.index(action) + 1 if svc.failure_actions else 0
    core.event(7031, svc.event_name, count, action.delay_ms, index, ACTION_TEXT[action.type])
    log.info(
        "scm.recovery",
        service=svc.name,
        failures=count,
        action=action.type,
        delay_ms=action.delay_ms,
    )
    if action.type == SC_ACTION_NONE:
        return
    core.clock.call_later(core.ms(action.delay_ms), lambda: _act(core, svc.name, action, count))


def _act(core: ScmCore, name: str, action: ScAction, count: int) -> None:
    svc = core.lookup(name)
    if svc is None or core.shutdown:
        return
    if action.type == SC_ACTION_RESTART:
        if svc.status.current_state != SERVICE_STOPPED:
            return  # someone started it in the meantime

        def restarted(error: int) -> None:
            if error:
                core.event(7032, ACTION_TEXT[action.type], svc.event_name, error_message(error))

        core.start_service(svc.name, (), restarted)
    elif action.type == SC_ACTION_RUN_COMMAND:
        fa = svc.failure_actions
        command = (fa.command if fa else None) or ""
        # sc failure documents "%1%" in the command as the failure count.
        error = core.kernel.run_command(command.replace("%1%", str(count)), svc.object_name)
        if error:
            core.event(7032, ACTION_TEXT[action.type], svc.event_name, error_message(error))
    elif action.type == SC_ACTION_REBOOT:
        fa = svc.failure_actions
        core.kernel.reboot(fa.reboot_msg if fa else None, f"{svc.name} failed {count} time(s)")
