"""FailureActions under the fake clock (reliability-security §6.5 V1, V2, V14)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ports.svcctl import INFINITE, SC_ACTION_REBOOT, SC_ACTION_RESTART, SC_ACTION_RUN_COMMAND
from processes.services.database import FailureActions, ScAction
from processes.services.recovery import next_action
from tests.unit.scm_fakes import Machine, service

V1 = FailureActions(
    86400,
    (
        ScAction(SC_ACTION_RESTART, 0),
        ScAction(SC_ACTION_RESTART, 1000),
        ScAction(SC_ACTION_REBOOT, 0),
    ),
    reboot_msg="bye",
)


def crash(m: Machine, name: str) -> None:
    pid = m.db.get(name).status.process_id
    m.core.process_exited(pid, 9)


def test_v1_restart_restart_then_reboot_with_exact_times():
    m = Machine(service("A", failure_actions=V1))
    m.run("A")
    crash(m, "A")
    assert m.core.reported[-1].message == (
        "The A service terminated unexpectedly. It has done this 1 time(s). The following "
        "corrective action will be taken in 0 milliseconds: Restart the service."
    )
    m.clock.advance(0)
    assert len(m.kernel.created) == 2  # restarted at once
    pid, _ = m.connect()
    m.ack_all(pid)
    m.report("A", 4)
    crash(m, "A")
    assert "It has done this 2 time(s)" in m.core.reported[-1].message
    m.clock.advance(0.999)
    assert len(m.kernel.created) == 2
    m.clock.advance(0.001)
    assert len(m.kernel.created) == 3
    pid, _ = m.connect()
    m.ack_all(pid)
    m.report("A", 4)
    for n in (3, 4):
        crash(m, "A") if m.db.get("A").status.process_id else None
        assert m.core.reported[-1].message.endswith("0 milliseconds: Reboot the machine.")
        assert f"{n} time(s)" in m.core.reported[-1].message
        m.clock.advance(0)
        assert m.kernel.reboots[-1] == "bye"
        m.run("A")


def test_v2_reset_period_boundary():
    svc = service("A", failure_actions=FailureActions(10, (ScAction(1, 0), ScAction(2, 0))))
    assert next_action(svc, 0.0) == (1, svc.failure_actions.actions[0])
    assert next_action(svc, 9.0)[0] == 2  # within ResetPeriod of the last failure
    assert next_action(svc, 18.9)[0] == 3  # 9.9 s after the last one
    assert next_action(svc, 28.9)[0] == 1  # exactly ResetPeriod without a failure: reset


def test_infinite_reset_period_never_resets():
    svc = service("A", failure_actions=FailureActions(INFINITE, (ScAction(1, 0),)))
    for i in range(1, 5):
        assert next_action(svc, i * 1e9)[0] == i


def test_run_command_with_failure_count():
    fa = FailureActions(0, (ScAction(SC_ACTION_RUN_COMMAND, 0),), command="notify.cmd %1%")
    m = Machine(service("A", failure_actions=fa))
    m.run("A")
    crash(m, "A")
    m.clock.advance(0)
    assert m.kernel.commands == ["notify.cmd 1"]
    assert m.core.reported[-1].message.endswith("Run the configured recovery program.")


def test_v14_instant_crash_loop_repeats_forever():
    m = Machine(
        service("A", failure_actions=FailureActions(INFINITE, (ScAction(SC_ACTION_RESTART, 0),)))
    )
    m.run("A")
    for _ in range(200):
        crash(m, "A")
        m.clock.advance(0)
        pid, _ = m.connect()
        m.ack_all(pid)
        m.report("A", 4)
    assert "It has done this 200 time(s)" in m.core.reported[-2].message
    assert len(m.core.images) == 1 and len(m.core.images_by_pid) == 1  # nothing leaks


@given(
    st.lists(st.sampled_from([1, 2, 3]), min_size=1, max_size=5),
    st.lists(st.floats(min_value=0, max_value=100), min_size=1, max_size=30),
)
def test_nth_failure_takes_action_n_and_the_last_repeats(kinds, gaps):
    actions = tuple(ScAction(k, i) for i, k in enumerate(kinds))
    svc = service("A", failure_actions=FailureActions(INFINITE, actions))
    now = 0.0
    for n, gap in enumerate(gaps, start=1):
        now += gap
        count, action = next_action(svc, now)
        assert count == n
        assert action == actions[min(n, len(actions)) - 1]
