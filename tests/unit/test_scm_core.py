"""The SCM core's state machine under a fake clock and a fake kernel (processes/services)."""

from __future__ import annotations

import pytest

from ports.svcctl import (
    SERVICE_ACCEPT_PAUSE_CONTINUE,
    SERVICE_ACCEPT_STOP,
    SERVICE_CONTROL_INTERROGATE,
    SERVICE_CONTROL_PAUSE,
    SERVICE_CONTROL_START_OWN,
    SERVICE_CONTROL_START_SHARE,
    SERVICE_CONTROL_STOP,
    SERVICE_DEMAND_START,
    SERVICE_DISABLED,
    SERVICE_PAUSED,
    SERVICE_RUNNING,
    SERVICE_START_PENDING,
    SERVICE_STOP_PENDING,
    SERVICE_STOPPED,
)
from processes.services.scm import ScmSettings
from tests.unit.scm_fakes import Machine, service

SVCHOST = r"%SystemRoot%\System32\svchost.exe -k netsvcs -p"


def control(m: Machine, name: str, code: int) -> list[tuple[int, dict]]:
    out: list[tuple[int, dict]] = []
    m.core.control_service(name, code, lambda err, st: out.append((err, st)))
    return out


def test_start_own_process_protocol():
    m = Machine(service("Spooler"))
    result = m.start("Spooler", "-v")
    assert result == []  # nothing until the dispatcher connects and acknowledges
    proc = m.kernel.created[0]
    assert proc["current"] == 1 and not proc["standin"]
    pid, channel = m.connect()
    (packet,) = channel.packets
    assert packet.control == SERVICE_CONTROL_START_OWN
    assert packet.service_name == "Spooler" and packet.arguments == ("-v",)
    m.ack_all(pid)
    assert result == [0]
    st = m.db.get("Spooler").status
    assert (st.current_state, st.wait_hint, st.process_id) == (SERVICE_START_PENDING, 2000, pid)
    assert m.report("Spooler", SERVICE_RUNNING) == 0
    assert m.state("Spooler") == SERVICE_RUNNING
    assert m.core.reported[-1].message == "The Spooler service entered the running state."


def test_never_connects_gives_1053_7009_7000_and_kills_the_process():
    m = Machine(service("Slow"))
    result = m.start("Slow")
    m.clock.advance(29.9)
    assert result == []
    m.clock.advance(0.2)
    assert result == [1053]
    assert m.ids() == [7009, 7000]
    assert m.core.reported[0].message == (
        "A timeout was reached (30000 milliseconds) while waiting for the Slow service to connect."
    )
    assert m.kernel.terminated == [m.kernel.created[0]["pid"]]
    assert m.state("Slow") == SERVICE_STOPPED
    assert m.db.get("Slow").status.win32_exit_code == 1053


def test_time_scale_scales_timeouts_but_not_the_figures():
    m = Machine(service("Slow"), settings=ScmSettings(time_scale=0.01))
    result = m.start("Slow")
    m.clock.advance(0.31)
    assert result == [1053]
    assert "30000 milliseconds" in m.core.reported[0].message


def test_start_pending_without_progress_is_hung_7022():
    m = Machine(service("Hang"))
    m.start("Hang")
    pid, _ = m.connect()
    m.ack_all(pid)
    m.report("Hang", SERVICE_START_PENDING, 0, check_point=1, wait_hint=5000)
    m.clock.advance(80 + 4.9)
    m.report("Hang", SERVICE_START_PENDING, 0, check_point=2, wait_hint=5000)  # progress re-arms
    m.clock.advance(80 + 4.9)
    assert m.state("Hang") == SERVICE_START_PENDING
    m.clock.advance(0.2)
    assert m.ids()[-1] == 7022
    assert m.core.reported[-1].message == "The Hang service hung on starting."
    assert m.db.get("Hang").status.win32_exit_code == 1070
    assert pid in m.kernel.terminated


@pytest.mark.parametrize(
    ("setup", "code", "expected"),
    [
        ("stopped", SERVICE_CONTROL_STOP, 1062),
        ("running", SERVICE_CONTROL_PAUSE, 1052),  # not pausable
        ("stop_pending", SERVICE_CONTROL_STOP, 1061),
        ("start_pending", SERVICE_CONTROL_PAUSE, 1061),
        ("running", 99, 87),
        ("missing", SERVICE_CONTROL_STOP, 1060),
    ],
)
def test_control_errors(setup, code, expected):
    m = Machine(service("A"))
    if setup in ("running", "stop_pending"):
        m.run("A")
    if setup == "stop_pending":
        m.report("A", SERVICE_STOP_PENDING, 0)
    if setup == "start_pending":
        m.start("A")
        m.ack_all(m.connect()[0])
    out = control(m, "Nope" if setup == "missing" else "A", code)
    assert out[0][0] == expected


def test_interrogate_in_start_pending_is_answered_from_the_cache():
    m = Machine(service("A"))
    m.start("A")
    pid, channel = m.connect()
    m.ack_all(pid)
    out = control(m, "A", SERVICE_CONTROL_INTERROGATE)
    assert out == [(0, m.db.get("A").status.as_dict())]
    assert channel.packets == []


def test_start_errors():
    m = Machine(
        service("Off", start=SERVICE_DISABLED),
        service("A"),
        service("Gone", start=SERVICE_DEMAND_START),
    )
    assert m.start("Off") == [1058]
    assert m.db.get("Off").status.win32_exit_code == 1058  # a disabled service's initial code
    assert m.start("Nope") == [1060]
    m.run("A")
    assert m.start("A") == [1056]
    m.db.get("Gone").marked_for_delete = True
    assert m.start("Gone") == [1072]
    m.core.shutdown = True
    assert m.start("Gone") == [1115]


def test_pause_continue_and_stop_round_trip():
    m = Machine(service("A"))
    pid = m.run("A", SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_PAUSE_CONTINUE)
    out = control(m, "A", SERVICE_CONTROL_PAUSE)
    (packet,) = m.ack_all(pid)
    assert packet.control == SERVICE_CONTROL_PAUSE and out[0][0] == 0
    m.report("A", SERVICE_PAUSED, SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_PAUSE_CONTINUE)
    assert m.core.reported[-1].message == "The A service entered the paused state."
    out = control(m, "A", SERVICE_CONTROL_STOP)
    m.ack_all(pid)
    m.report("A", SERVICE_STOPPED)
    # the last service of the image stops the dispatcher: STOP with an empty name
    (last,) = m.channels[pid].packets
    assert (last.control, last.service_name) == (SERVICE_CONTROL_STOP, "")
    assert m.state("A") == SERVICE_STOPPED and m.core.images == {}
    m.core.process_exited(pid, 0)
    assert m.ids()[-1] == 7036  # a clean exit after STOPPED is no failure


def test_control_timeout_is_7011_and_1053():
    m = Machine(service("A"))
    m.run("A")
    out = control(m, "A", SERVICE_CONTROL_STOP)
    m.clock.advance(30.1)
    assert out[0][0] == 1053
    assert m.ids()[-1] == 7011


def test_stop_with_running_dependents_is_1051():
    m = Machine(service("A"), service("B", depend_on_service=["A"]))
    m.run("A")
    m.run("B")
    assert control(m, "A", SERVICE_CONTROL_STOP)[0][0] == 1051


def test_dependencies_start_first_and_are_waited_for():
    m = Machine(service("A", start=SERVICE_DEMAND_START), service("B", depend_on_service=["A"]))
    result = m.start("B")
    assert [p["image"].rsplit("\\", 1)[1] for p in m.kernel.created] == ["a.exe"]
    pid_a, _ = m.connect()
    m.ack_all(pid_a)
    assert len(m.kernel.created) == 1  # A acknowledged but START_PENDING: B waits
    m.report("A", SERVICE_RUNNING)
    assert len(m.kernel.created) == 2
    pid_b, _ = m.connect()
    m.ack_all(pid_b)
    assert result == [0]


def test_failed_dependency_gives_1068_and_7001():
    m = Machine(service("A", start=SERVICE_DEMAND_START), service("B", depend_on_service=["A"]))
    m.kernel.missing.add("a.exe")
    m.core.settings.standins = False
    result = m.start("B")
    assert result == [1068]
    assert m.ids() == [7000, 7001]
    assert m.core.reported[0].message == (
        "The A service failed to start due to the following error: \n"
        "The system cannot find the file specified."
    )
    assert m.core.reported[1].message == (
        "The B service depends on the A service which failed to start because of the following "
        "error: \nThe system cannot find the file specified."
    )


def test_depend_on_group_waits_for_one_running_member():
    m = Machine(service("M1", group="NetBIOSGroup"), service("R", depend_on_group=["NetBIOSGroup"]))
    m.start("M1")
    pid, _ = m.connect()
    m.ack_all(pid)
    result = m.start("R")
    assert len(m.kernel.created) == 1
    m.report("M1", SERVICE_RUNNING)
    assert len(m.kernel.created) == 2
    m.ack_all(m.connect()[0])
    assert result == [0]


def test_depend_on_group_with_no_member_fails():
    m = Machine(service("R", depend_on_group=["Nobody"]))
    assert m.start("R") == [1068]


def test_shared_host_death_stops_every_service_with_1067():
    names = ("S1", "S2", "S3")
    m = Machine(*(service(n, service_type=0x20, image_path=SVCHOST) for n in names))
    results = [m.start(n) for n in names]
    assert len(m.kernel.created) == 1
    pid, channel = m.connect()
    assert {p.control for p in channel.packets} == {SERVICE_CONTROL_START_SHARE}
    m.ack_all(pid)
    assert results == [[0], [0], [0]]
    for n in names:
        m.report(n, SERVICE_RUNNING)
    m.core.process_exited(pid, 9)
    for n in names:
        st = m.db.get(n).status
        assert (st.current_state, st.win32_exit_code) == (SERVICE_STOPPED, 1067)
    assert m.ids()[-3:] == [7034, 7034, 7034]
    assert (
        m.core.reported[-1].message
        == "The S3 service terminated unexpectedly. It has done this 1 time(s)."
    )


def test_process_exit_before_connect_fails_the_start():
    m = Machine(service("A"))
    result = m.start("A")
    m.core.process_exited(m.kernel.created[0]["pid"], 1)
    assert result == [1067]


def test_svchost_split_above_the_threshold():
    m = Machine(
        service("S1", service_type=0x20, image_path=SVCHOST),
        service("S2", service_type=0x20, image_path=SVCHOST),
        service("S3", service_type=0x20, image_path=SVCHOST, svchost_split_disable=True),
        service("S4", service_type=0x20, image_path=SVCHOST, svchost_split_disable=True),
        split_threshold_kb=1024,
    )
    assert m.core.split
    for n in ("S1", "S2", "S3", "S4"):
        m.start(n)
    assert len(m.kernel.created) == 3  # S1, S2 alone; S3 and S4 share
    assert m.db.get("S1").status.service_type == 0x30
    assert m.db.get("S3").status.service_type == 0x20


def test_standins_logged_once_and_optional():
    m = Machine(
        service("X1", service_type=0x20, image_path=r"C:\x\thing.exe"),
        service("X2", service_type=0x10, image_path=r"C:\x\thing.exe"),
    )
    m.kernel.missing.add("thing.exe")
    m.start("X1")
    m.start("X2")
    assert [p["standin"] for p in m.kernel.created] == [True, True]
    assert m.core.standins_logged == {"thing.exe"}
    off = Machine(service("X"), settings=ScmSettings(standins=False))
    off.kernel.missing.add("x.exe")
    assert off.start("X") == [2]
    assert off.ids() == [7000]


def test_security_process_is_service_current_0_without_a_process():
    m = Machine(service("SamSs", service_type=0x20, image_path=r"C:\Windows\system32\lsass.exe"))
    result = m.start("SamSs")
    assert m.kernel.created == [] and m.kernel.events == ["SECURITY_SERVICES_STARTED"]
    channel_pid = 612
    from tests.unit.scm_fakes import FakeChannel

    channel = FakeChannel()
    assert m.core.control_connect(0, channel_pid, channel) == 0
    m.channels[channel_pid] = channel
    m.ack_all(channel_pid)
    assert result == [0]
    st = m.db.get("SamSs").status
    assert (st.process_id, st.service_flags) == (channel_pid, 1)  # RUNS_IN_SYSTEM_PROCESS


def test_delete_of_a_running_service_waits_until_it_stops():
    m = Machine(service("A"))
    pid = m.run("A")
    m.db.get("A").marked_for_delete = True
    control(m, "A", SERVICE_CONTROL_STOP)
    m.ack_all(pid)
    assert m.db.get("A") is not None
    m.report("A", SERVICE_STOPPED)
    assert m.db.get("A") is None


def test_auto_start_then_delayed_after_the_delay_at_low_priority():
    m = Machine(
        service("A"),
        service("B", depend_on_service=["A"]),
        service("D", delayed_autostart=True),
        auto_start_delay_s=120,
    )
    m.core.auto_start()
    pid_a, _ = m.connect()
    m.ack_all(pid_a)
    m.report("A", SERVICE_RUNNING)
    pid_b, _ = m.connect()
    m.ack_all(pid_b)
    assert not m.core.auto.complete  # B still START_PENDING
    m.report("B", SERVICE_RUNNING)
    assert m.core.auto.complete and len(m.kernel.created) == 2
    m.clock.advance(119)
    assert len(m.kernel.created) == 2
    m.clock.advance(1)
    assert m.kernel.created[-1]["low"] is True
    pid_d, _ = m.connect()
    m.ack_all(pid_d)
    m.report("D", SERVICE_RUNNING)
    assert m.kernel.priorities == [(pid_d, False)]
    assert m.core.auto.delayed_complete


def test_non_crash_failure_logs_7023_and_acts_only_with_the_flag():
    from processes.services.database import FailureActions, ScAction

    fa = FailureActions(86400, (ScAction(1, 0),))
    m = Machine(
        service("A", failure_actions=fa),
        service("B", failure_actions=fa, failure_actions_on_non_crash_failures=True),
    )
    m.run("A")
    m.report("A", SERVICE_STOPPED, exit_code=5)
    assert m.ids()[-2:] == [7036, 7023]
    assert (
        m.core.reported[-1].message
        == "The A service terminated with the following error: \nAccess is denied."
    )
    m.run("B")
    m.report("B", SERVICE_STOPPED, exit_code=1066, specific=42)
    assert m.ids()[-3:] == [7036, 7024, 7031]


def test_control_connect_errors():
    m = Machine(service("A"))
    from tests.unit.scm_fakes import FakeChannel

    assert m.core.control_connect(7, 1, FakeChannel()) == 1063  # no such ServiceCurrent
    m.start("A")
    m.connect()
    proc = m.kernel.created[-1]
    assert m.core.control_connect(proc["current"], proc["pid"], FakeChannel()) == 1056


def test_set_service_status_checks():
    m = Machine(service("A"))
    m.run("A")
    tag = m.db.get("A").service_tag
    bad = {**m.db.get("A").status.as_dict(), "current_state": 9}
    assert m.core.set_service_status(tag, bad) == 13
    assert m.core.set_service_status(999, bad) == 6
    ok = {
        **m.db.get("A").status.as_dict(),
        "current_state": SERVICE_RUNNING,
        "check_point": 5,
        "wait_hint": 7,
    }
    assert m.core.set_service_status(tag, ok) == 0
    assert (m.db.get("A").status.check_point, m.db.get("A").status.wait_hint) == (
        0,
        0,
    )  # RUNNING clears


@pytest.mark.parametrize(
    ("error_control", "events", "kernel_told"),
    [(0, [], False), (1, [7000], False), (2, [7000], True), (3, [7000], True)],
)
def test_error_control_at_boot(error_control, events, kernel_told):
    m = Machine(service("A", error_control=error_control), settings=ScmSettings(standins=False))
    m.kernel.missing.add("a.exe")
    m.core.auto_start()
    assert m.ids() == events
    assert bool(m.kernel.boot_failures) == kernel_told
    assert m.core.auto.complete


def test_shutdown_preshutdown_in_order_then_shutdown_then_kill():
    from ports.svcctl import (
        SERVICE_ACCEPT_PRESHUTDOWN,
        SERVICE_ACCEPT_SHUTDOWN,
        SERVICE_CONTROL_PRESHUTDOWN,
        SERVICE_CONTROL_SHUTDOWN,
    )

    m = Machine(
        service("Gp", preshutdown_timeout_ms=5000),
        service("Wu", preshutdown_timeout_ms=5000),
        service("Plain"),
        service("Stubborn"),
        preshutdown_order=["Wu", "Gp"],
        wait_to_kill_ms=20000,
    )
    pre = SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_PRESHUTDOWN
    pids = {
        n: m.run(n, pre if n in ("Gp", "Wu") else SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN)
        for n in ("Gp", "Wu", "Plain", "Stubborn")
    }
    finished: list[bool] = []
    m.core.shutdown_services(lambda: finished.append(True))
    assert m.start("Plain") == [1115]
    (p,) = m.ack_all(pids["Wu"])  # Wu first, as PreshutdownOrder says
    assert p.control == SERVICE_CONTROL_PRESHUTDOWN
    assert m.channels[pids["Gp"]].packets == []
    m.report("Wu", SERVICE_STOPPED)
    m.core.process_exited(pids["Wu"], 0)  # its dispatcher returned, the process ends
    (p,) = m.ack_all(pids["Gp"])
    assert p.control == SERVICE_CONTROL_PRESHUTDOWN
    m.clock.advance(5.0)  # Gp keeps going past its PreshutdownTimeout: the SCM moves on
    assert m.ids()[-1] == 7043
    assert m.core.reported[-1].message == (
        "The Gp service did not shut down properly after receiving a preshutdown control."
    )
    assert [x.control for x in m.ack_all(pids["Plain"])] == [SERVICE_CONTROL_SHUTDOWN]
    assert [x.control for x in m.ack_all(pids["Stubborn"])] == [SERVICE_CONTROL_SHUTDOWN]
    m.report("Plain", SERVICE_STOPPED)
    m.core.process_exited(pids["Plain"], 0)
    assert not finished
    m.clock.advance(20.0)
    assert finished == [True]
    assert pids["Stubborn"] in m.kernel.terminated and pids["Plain"] not in m.kernel.terminated
    # Gp accepts no SHUTDOWN: the SCM leaves its process to NtShutdownSystem
    assert pids["Gp"] not in m.kernel.terminated


def test_shutdown_rounds_asked_one_by_one_report_outcomes_and_run_once():
    from ports.svcctl import (
        SERVICE_ACCEPT_PRESHUTDOWN,
        SERVICE_ACCEPT_SHUTDOWN,
        SERVICE_CONTROL_PRESHUTDOWN,
    )

    m = Machine(
        service("Gp", preshutdown_timeout_ms=10000),
        service("Deaf"),
        service("Plain"),
        preshutdown_order=["Gp"],
        wait_to_kill_ms=5000,
    )
    gp = m.run("Gp", SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_PRESHUTDOWN)
    deaf = m.run("Deaf", SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN)
    plain = m.run("Plain", SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN)
    pre: list[list] = []
    m.core.preshutdown_round(pre.append)
    assert m.start("Plain") == [1115]  # from the first round on
    assert [p.control for p in m.ack_all(gp)] == [SERVICE_CONTROL_PRESHUTDOWN]
    m.clock.advance(1.5)
    m.report("Gp", SERVICE_STOPPED)
    assert pre == [[{"service": "Gp", "outcome": "stopped", "ms": 1500.0}]]
    assert m.channels[deaf].packets == []  # SHUTDOWN waits for its own round
    again: list[list] = []
    m.core.preshutdown_round(again.append)  # the kernel's SIGTERM later: joins, no resend
    assert again == pre
    assert SERVICE_CONTROL_PRESHUTDOWN not in [p.control for p in m.channels[gp].packets]
    down: list[list] = []
    m.core.shutdown_round(down.append)
    m.ack_all(deaf)
    m.ack_all(plain)
    m.clock.advance(0.5)
    m.report("Plain", SERVICE_STOPPED)
    m.clock.advance(4.6)  # WaitToKillServiceTimeout: Deaf's process is ended
    assert down == [
        [
            {"service": "Plain", "outcome": "stopped", "ms": 500.0},
            {"service": "Deaf", "outcome": "killed", "ms": 0},
        ]
    ]
    assert deaf in m.kernel.terminated and plain not in m.kernel.terminated
    killed = list(m.kernel.terminated)
    both: list[bool] = []
    m.core.shutdown_services(lambda: both.append(True))  # both rounds are over: at once
    assert both == [True] and m.kernel.terminated == killed


def test_a_service_that_ignores_stop_is_killed_after_wait_to_kill():
    m = Machine(service("Deaf"), service("Other"), wait_to_kill_ms=20000)
    pid = m.run("Deaf")
    out = control(m, "Deaf", SERVICE_CONTROL_STOP)
    m.ack_all(pid)
    assert out[0][0] == 0
    m.report("Deaf", SERVICE_STOP_PENDING, 0, check_point=1, wait_hint=1000)
    m.clock.advance(19.9)
    assert m.state("Deaf") == SERVICE_STOP_PENDING
    m.clock.advance(0.2)
    assert m.state("Deaf") == SERVICE_STOPPED and pid in m.kernel.terminated
    m.core.process_exited(pid, 0xC0000102)
    assert 7031 not in m.ids() and 7034 not in m.ids()  # the SCM's own kill is no failure


def test_a_thousand_start_stop_cycles_leak_nothing():
    m = Machine(service("A"))
    for _ in range(1000):
        pid = m.run("A")
        control(m, "A", SERVICE_CONTROL_STOP)
        m.ack_all(pid)
        m.report("A", SERVICE_STOPPED)
        m.core.process_exited(pid, 0)
    assert m.core.images == {} and m.core.images_by_pid == {}
    assert len(m.core.status_handles) == 1 and m.core.waiters == []
    assert sum(not t[2].cancelled for t in m.clock.heap) == 0  # no timer left armed


def test_safe_boot_starts_only_what_the_list_names():
    m = Machine(service("EventLog", group="Event Log"), service("Spooler"), service("RpcSs"))
    m.db.safe_boot, m.db.safe_boot_allowed = 1, {"event log", "rpcss"}
    m.core.auto_start()
    started = [p["image"].rsplit("\\", 1)[1] for p in m.kernel.created]
    assert started == ["eventlog.exe"]  # RpcSs comes after EventLog connects
    assert m.start("Spooler") == [1084]


def test_drivers_loaded_by_the_kernel_answer_interrogate_only():
    m = Machine(service("Tcpip", service_type=1, start=1, image_path=r"System32\drivers\tcpip.sys"))
    assert control(m, "Tcpip", SERVICE_CONTROL_INTERROGATE)[0][0] == 1062
    m.core.mark_drivers_loaded(["Tcpip"])
    assert control(m, "Tcpip", SERVICE_CONTROL_INTERROGATE)[0][0] == 0
    assert control(m, "Tcpip", SERVICE_CONTROL_PAUSE)[0][0] == 1052


def test_a_dependency_cycle_fails_with_1059_and_leaves_nothing_waiting():
    m = Machine(
        service("A", depend_on_service=["B"]),
        service("B", depend_on_service=["C"]),
        service("C", depend_on_service=["A"]),
        service("D", depend_on_service=["A"]),
    )
    assert m.start("A") == [1059]
    assert m.start("D") == [1068]  # its dependency cannot start
    assert m.core.starting == set() and m.core.waiters == [] and m.kernel.created == []


def test_hundreds_of_failures_at_once_do_not_exhaust_the_stack():
    names = [f"S{i:03d}" for i in range(900)]
    m = Machine(*(service(n) for n in names), settings=ScmSettings(standins=False))
    m.kernel.missing.add(".exe")
    m.core.auto_start()
    assert m.core.auto.complete
    assert all(m.db.get(n).status.win32_exit_code == 2 for n in names)


def test_a_process_that_stays_after_its_last_service_stopped_is_ended():
    m = Machine(service("A"), wait_to_kill_ms=20000)
    pid = m.run("A")
    control(m, "A", SERVICE_CONTROL_STOP)
    m.ack_all(pid)
    m.report("A", SERVICE_STOPPED)
    m.clock.advance(20.0)
    assert m.kernel.terminated == [pid]
