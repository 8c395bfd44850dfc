"""Session 0's services on a real machine: services.exe, svchost, stand-ins, sc and faults.

One machine boots with the test services (data/svctest.reg, data/svcfaults.reg; SCM
timeouts scaled to 5 %) and serves the tests that do not end it; each test waits on the
machine's events, never on fixed sleeps.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from ntctl.machine import Machine as Attached
from ntctl.main import app
from ports import svcctl as sv
from ports.client import call_api
from tests.cluster.conftest import Machine, machine_processes

pytestmark = pytest.mark.cluster
DATA = Path(__file__).parent / "data"
REGS = ("--reg", str(DATA / "svctest.reg"), "--reg", str(DATA / "svcfaults.reg"))
FAULTS = "hang.exe:start_hang,stubborn.exe:ignore_stop,quitter.exe:exit_at_once,mute.exe:no_connect"
RUNNING, STOPPED = 4, 1


@pytest.fixture(scope="module")
def svcm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machine]:
    root = tmp_path_factory.mktemp("svc") / "m"
    env = dict(os.environ, NTMODEL_TEST_ROOT=str(root), NTMODEL_FAULTS=FAULTS)
    m = Machine(root, env)
    r = m.boot(*REGS)
    assert r.returncode == 0, r.stdout + r.stderr
    m.wait_event("scm.auto_start_complete", image="services.exe")
    yield m
    m.stop()
    assert not machine_processes(str(root)), "processes left behind"


def sc(m: Machine, *args: str, check: bool = True) -> str:
    """``ntctl sc ...`` in this interpreter (the verbs are the same code; a subprocess per
    call would be most of the suite's time)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = app.dispatch(["sc", *args, "--root", str(m.root)], "ntctl")
    if check:
        assert code == 0, out.getvalue() + err.getvalue()
    return out.getvalue()


def processes(m: Machine) -> list[dict]:
    with Attached(m.root, session=0) as attached:
        return attached.nt.processes()


def state(m: Machine, name: str) -> dict:
    return json.loads(sc(m, "queryex", name, "--json"))


def wait_state(m: Machine, name: str, wanted: int) -> None:
    m.wait_event("svc.state", service=name, state=wanted)


def test_boot_starts_the_auto_services_dependencies_first(svcm: Machine) -> None:
    starts = {e["service"]: e["ts"] for e in svcm.events(event="scm.start")}
    running = {e["service"]: e["ts"] for e in svcm.events(event="svc.state", state=RUNNING)}
    assert {"TestA", "TestB", "TestC"} <= running.keys()
    # each dependency RUNNING before its dependent's start begins
    assert running["TestA"] <= starts["TestB"] and running["TestB"] <= starts["TestC"]
    assert {state(svcm, n)["current_state"] for n in ("TestA", "TestB", "TestC")} == {RUNNING}
    assert "TestSolo" not in starts  # demand start
    # an auto-start driver: the SCM has the kernel load it (NtLoadDriver)
    assert svcm.events(event="io.driver_loaded", driver="TestDrv", phase="demand")
    assert json.loads(sc(svcm, "query", "TestDrv", "--json"))["current_state"] == RUNNING
    procs = processes(svcm)
    scm = next(p for p in procs if p["image"] == "services.exe")
    host = next(p for p in procs if p["image"] == "svchost.exe" and "ntmtest" in p["command_line"])
    assert scm["critical"] and scm["session"] == 0
    assert host["parent_pid"] == scm["pid"] and host["session"] == 0
    assert host["user"] == "NT AUTHORITY\\SYSTEM"
    assert state(svcm, "TestA")["process_id"] == host["pid"]  # one svchost, three services
    assert svcm.events(event="svchost.dll_loaded", service="TestA")


def test_sc_reports_the_real_win32_errors(svcm: Machine) -> None:
    out = sc(svcm, "query", "NoSuchService", check=False)
    assert out.startswith("[SC] OpenService FAILED 1060:")
    assert "does not exist as an installed service" in out
    assert sc(svcm, "config", "TestSolo", "start=", "bogus", check=False).startswith(
        "[SC] ChangeServiceConfig FAILED 87:"
    )
    assert sc(svcm, "config", "TestA", "depend=", "TestC", check=False).startswith(
        "[SC] ChangeServiceConfig FAILED 1059:"
    )
    assert sc(svcm, "start", "TestMissingDep", check=False).startswith(
        "[SC] StartService FAILED 1075:"
    )
    assert sc(svcm, "start", "TestCycleA", check=False).startswith("[SC] StartService FAILED 1059:")
    assert sc(svcm, "start", "TestA", check=False).startswith("[SC] StartService FAILED 1056:")
    assert sc(svcm, "stop", "TestSolo", check=False).startswith("[SC] ControlService FAILED 1062:")
    assert sc(svcm, "create", "TestA", "binPath=", "C:\\x.exe", check=False).startswith(
        "[SC] CreateService FAILED 1073:"
    )
    failed = json.loads(sc(svcm, "qc", "Nope", "--json", check=False))
    assert failed == {
        "routine": "OpenService",
        "error": 1060,
        "message": "The specified service does not exist as an installed service.",
    }


def test_own_process_service_in_svchost_runs_under_its_account(svcm: Machine) -> None:
    out = sc(svcm, "start", "TestSolo")
    assert "SERVICE_NAME: TestSolo" in out and "PID" in out
    wait_state(svcm, "TestSolo", RUNNING)
    pid = state(svcm, "TestSolo")["process_id"]
    proc = next(p for p in processes(svcm) if p["pid"] == pid)
    assert proc["user"] == "NT AUTHORITY\\LOCAL SERVICE" and proc["session"] == 0
    sc(svcm, "stop", "TestSolo")
    svcm.wait_event("proc.exit", child_pid=pid)
    # as LOCAL SERVICE (not an administrator) it may not have SC_MANAGER_ALL_ACCESS
    sc(svcm, "start", "TestSolo", "probe-scm")
    assert svcm.wait_event("svctest.scm_probe")["error"] == 5  # ERROR_ACCESS_DENIED
    pid = state(svcm, "TestSolo")["process_id"]
    sc(svcm, "stop", "TestSolo")
    svcm.wait_event("proc.exit", child_pid=pid)  # its last service stopped: the host ends
    assert state(svcm, "TestSolo")["current_state"] == STOPPED


def test_a_stand_in_answers_start_and_stop_and_says_so(svcm: Machine) -> None:
    assert "(stand-in: the model does not implement this image" in sc(svcm, "qc", "TestStandin")
    assert json.loads(sc(svcm, "qc", "TestStandin", "--json"))["standin"] is True
    assert "stand-in" not in sc(svcm, "qc", "EventLog")  # a modelled service (wevtsvc.dll)
    assert "stand-in" not in sc(svcm, "qc", "SamSs")  # lsass hosts it
    sc(svcm, "start", "TestStandin")
    wait_state(svcm, "TestStandin", RUNNING)
    pid = state(svcm, "TestStandin")["process_id"]
    proc = next(p for p in processes(svcm) if p["pid"] == pid)
    assert proc["image"] == "vendorsvc.exe" and proc["standin"]
    assert svcm.events(event="divergence", what="stand-in image", image="vendorsvc.exe")
    sc(svcm, "stop", "TestStandin")
    svcm.wait_event("proc.exit", child_pid=pid)


def test_a_process_that_never_connects_fails_with_1053(svcm: Machine) -> None:
    out = sc(svcm, "start", "TestMute", check=False)
    assert out.startswith("[SC] StartService FAILED 1053:")
    assert svcm.events(event="event.report", event_id=7009)
    assert state(svcm, "TestMute")["current_state"] == STOPPED


def test_a_process_that_exits_at_once_fails_the_start(svcm: Machine) -> None:
    out = sc(svcm, "start", "TestQuitter", check=False)
    assert out.startswith("[SC] StartService FAILED 1067:")
    assert state(svcm, "TestQuitter")["current_state"] == STOPPED


def test_a_start_that_stalls_is_7022_hung(svcm: Machine) -> None:
    sc(svcm, "start", "TestHang")
    event = svcm.wait_event("event.report", event_id=7022, timeout=30)
    assert event["strings"][0] == "TestHang"
    assert state(svcm, "TestHang")["current_state"] == STOPPED


def test_a_service_ignoring_stop_is_killed_after_wait_to_kill(svcm: Machine) -> None:
    sc(svcm, "start", "TestStubborn")
    wait_state(svcm, "TestStubborn", RUNNING)
    pid = state(svcm, "TestStubborn")["process_id"]
    sc(svcm, "stop", "TestStubborn", check=False)
    svcm.wait_event("scm.stop_timeout", service="TestStubborn")
    svcm.wait_event("proc.exit", child_pid=pid)
    assert state(svcm, "TestStubborn")["current_state"] == STOPPED


def test_delete_of_a_running_service_waits_for_its_stop(svcm: Machine) -> None:
    sc(svcm, "create", "TestDel", "binPath=", "C:\\Vendor\\del.exe")
    sc(svcm, "start", "TestDel")
    wait_state(svcm, "TestDel", RUNNING)
    assert sc(svcm, "delete", "TestDel") == "[SC] DeleteService SUCCESS\n"
    assert sc(svcm, "delete", "TestDel", check=False).startswith("[SC] DeleteService FAILED 1072:")
    sc(svcm, "stop", "TestDel")
    svcm.wait_event("scm.deleted", service="TestDel")
    assert sc(svcm, "query", "TestDel", check=False).startswith("[SC] OpenService FAILED 1060:")


def test_malformed_and_oversized_scm_messages_leave_the_port_serving(svcm: Machine) -> None:
    with Attached(svcm.root, session=0) as m:
        conn = sv.ScConnectToScm(m.lpc)
        api = sv._BY_NAME["ROpenSCManagerW"]
        assert conn.call(api.number, {"desired_access": "all"}).status == 0xC000000D
        big = {"desired_access": 1, "database_name": "x" * (sv.MAX_MESSAGE_LENGTH + 10)}
        assert conn.call(api.number, big).status == 0xC000002F  # STATUS_PORT_MESSAGE_TOO_LONG
        assert conn.call(999, {}).status != 0
        reply = call_api(conn, api, {"desired_access": 1})  # the port still serves
        assert reply.ok and reply.body["error"] == 0


def test_start_stop_cycles_leave_no_process_or_handle(svcm: Machine) -> None:
    with Attached(svcm.root, session=0) as m:
        conn = sv.ScConnectToScm(m.lpc)
        scm = sv.ROpenSCManagerW(conn).body["handle"]
        for _ in range(15):
            h = sv.ROpenServiceW(conn, scm, "TestStandin", sv.SERVICE_ALL_ACCESS).body["handle"]
            assert sv.RStartServiceW(conn, h).body["error"] == 0
            while sv.RQueryServiceStatus(conn, h).body["status"]["current_state"] != RUNNING:
                pass  # a query is the SCM's answer; no sleep
            assert sv.RControlService(conn, h, sv.SERVICE_CONTROL_STOP).body["error"] == 0
            while sv.RQueryServiceStatus(conn, h).body["status"]["current_state"] != STOPPED:
                pass
            assert sv.RCloseServiceHandle(conn, h).body["error"] == 0
            assert sv.RCloseServiceHandle(conn, h).body["error"] == 6  # closed: invalid
    hosts = [p for p in processes(svcm) if p["image"] == "vendorsvc.exe" and p["state"] != "exited"]
    for p in hosts:  # the last one may still be on its way out
        svcm.wait_event("proc.exit", child_pid=p["pid"])


def test_killing_a_svchost_stops_its_three_services_and_recovery_restarts(svcm: Machine) -> None:
    host = state(svcm, "TestA")["process_id"]
    os.kill(host, signal.SIGKILL)
    svcm.wait_event("proc.exit", child_pid=host)
    aborted = svcm.wait_event("scm.service_aborted", service="TestC", child_pid=host)
    assert aborted
    assert {e["service"] for e in svcm.events(event="scm.service_aborted", child_pid=host)} == {
        "TestA",
        "TestB",
        "TestC",
    }
    texts = {
        e["event_id"]: e for e in svcm.events(event="event.report") if e["event_id"] in (7031, 7034)
    }
    assert 7034 in texts and 7031 in texts  # A, B: no action; C: restart after 0 ms
    assert "Restart the service" in texts[7031]["message"]
    # C's restart starts its dependencies first: all three run again in a new host
    m = svcm
    for name in ("TestA", "TestB", "TestC"):
        found = [
            e
            for e in m.events(event="svc.state", service=name, state=RUNNING)
            if e["ts"] > aborted["ts"]
        ]
        if not found:
            m.wait_event("scm.start", service=name)
    new = state(svcm, "TestC")
    assert new["process_id"] != host


def test_samss_and_keyiso_run_in_lsass_with_no_process_of_their_own(svcm: Machine) -> None:
    lsass = svcm.pid_of("lsass.exe", 0)
    samss = state(svcm, "SamSs")
    assert (samss["current_state"], samss["process_id"]) == (RUNNING, lsass)
    assert samss["service_flags"] == 1  # SERVICE_RUNS_IN_SYSTEM_PROCESS
    assert "NOT_STOPPABLE" in sc(svcm, "query", "SamSs")
    (image,) = svcm.events(event="scm.image", service_current=0)
    assert image["child_pid"] == 0  # ServiceCurrent 0: no process created
    assert svcm.events(event="sctrl.connected", pid=lsass, service_current=0)
    sc(svcm, "start", "KeyIso")
    wait_state(svcm, "KeyIso", RUNNING)
    assert state(svcm, "KeyIso")["process_id"] == lsass
    sc(svcm, "stop", "KeyIso")
    wait_state(svcm, "KeyIso", STOPPED)
    assert state(svcm, "SamSs")["current_state"] == RUNNING
    assert svcm.pid_of("lsass.exe", 0) == lsass


def test_a_delayed_auto_start_service_runs_at_lower_priority_until_running(svcm: Machine) -> None:
    svcm.wait_event("svc.state", service="BITS", state=RUNNING, timeout=30)
    pid = state(svcm, "BITS")["process_id"]
    low, back = (svcm.wait_event("scm.priority", child_pid=pid, low=x) for x in (True, False))
    assert low["nice"] == back["nice"] + 10 and low["ts"] <= back["ts"]
    assert psutil.Process(pid).nice() == back["nice"]


def test_the_shutdown_times_out_a_silent_preshutdown_service_then_stops_the_rest(
    svcm: Machine,
) -> None:
    """Last on this machine: it shuts it down (winlogon → the SCM's two rounds → kernel)."""
    sc(svcm, "start", "TestSolo", "ignore-preshutdown")  # accepts PRESHUTDOWN, never answers
    wait_state(svcm, "TestSolo", RUNNING)
    solo = state(svcm, "TestSolo")["process_id"]
    svcm.ntctl("shutdown")
    svcm.wait_stopped(30)
    pre = svcm.events(event="scm.preshutdown")
    assert [e["service"] for e in pre][0] == "gpsvc"  # Control\PreshutdownOrder first
    (silent,) = [e for e in pre if e["service"] == "TestSolo"]
    assert silent["outcome"] == "timeout" and silent["timeout_ms"] == 10000  # scaled: 5 %
    assert all(e["outcome"] == "stopped" for e in pre if e["service"] != "TestSolo")
    (e7043,) = svcm.events(event="event.report", event_id=7043)
    assert e7043["message"] == (
        "The Test Solo service did not shut down properly after receiving a preshutdown control."
    )
    # then SHUTDOWN to the rest; TestSolo ignores that too and is ended at WaitToKill
    rounds = [e["round"] for e in svcm.events(event="scm.shutdown_round")]
    assert rounds == ["preshutdown", "shutdown"]
    (kill,) = svcm.events(event="scm.shutdown_kill")
    assert kill["child_pid"] == solo and kill["services"] == ["TestSolo"]
    assert {"TestA", "EventLog"} <= {e["service"] for e in svcm.events(event="scm.shutdown_stop")}
    (e6006,) = svcm.events(event="event.report", event_id=6006)
    assert e6006["image"] == "svchost.exe"  # EventLog's own, as it stopped
    phases = [e["phase"] for e in svcm.events(event="shutdown.phase")]
    assert phases == ["apps", "preshutdown", "services", "smss", "kernel"]
    assert not svcm.events(event="shutdown.scm_skipped")
    assert not svcm.events(event="bugcheck")


def test_without_stand_ins_a_missing_image_is_7000_file_not_found(machine_factory) -> None:
    m = machine_factory()
    reg = m.root.parent / "nostandins.reg"
    reg.write_text(
        "Windows Registry Editor Version 5.00\r\n\r\n"
        "[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Control\\NtModel]\r\n"
        '"ServiceStandins"=dword:00000000\r\n'
    )
    r = m.boot(*REGS, "--reg", str(reg))
    assert r.returncode == 0, r.stdout + r.stderr
    m.wait_event("scm.auto_start_complete", image="services.exe")  # --detach returns earlier
    out = sc(m, "start", "TestNoImage", check=False)
    assert out.startswith("[SC] StartService FAILED 2:")
    (event,) = [
        e for e in m.events(event="event.report", event_id=7000) if e["strings"][0] == "TestNoImage"
    ]
    assert "cannot find the file" in event["message"]
    assert not [
        e
        for e in m.events(event="event.report", event_id=7000)
        if e["strings"][0] == "TestMissingDep"
    ]  # demand start: no 7000 at boot
