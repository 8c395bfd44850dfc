"""The modelled services on a real machine booted with the shipped configuration: the
auto-start ones run, the event logs fill through EventLog and read back with
``ntctl events``, a print job goes through spoolsv.exe, the endpoint map knows the RPC
servers, demand services start and stop, a scheduled task runs at its time. One machine
serves the module; every wait is on the machine's own events, never a fixed sleep.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from nt.images import KNOWN_IMAGES
from ntctl.machine import Machine as Attached
from ntctl.main import app
from ports import epmap, spoolss
from tests.cluster.conftest import Machine, machine_processes

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif("services.exe" not in KNOWN_IMAGES, reason="services.exe not wired yet"),
]
RUNNING, STOPPED = 4, 1
AUTO = ("RpcEptMapper", "RpcSs", "EventLog", "gpsvc", "Schedule", "Spooler")
AUTO += ("LanmanWorkstation", "LanmanServer")


@pytest.fixture(scope="module")
def m(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machine]:
    root = tmp_path_factory.mktemp("svcmodels") / "m"
    env = dict(os.environ, NTMODEL_TEST_ROOT=str(root))
    machine = Machine(root, env)
    r = machine.boot()
    assert r.returncode == 0, r.stdout + r.stderr
    machine.wait_event("scm.auto_start_complete", image="services.exe")
    yield machine
    machine.stop()
    assert not machine_processes(str(root)), "processes left behind"


@pytest.fixture(scope="module")
def nt(m: Machine) -> Iterator[Attached]:
    """One attachment for the module's calls (an ntctl process per call costs ~2 s)."""
    attached = Attached(m.root)
    yield attached
    attached.close()


def wait_count(m: Machine, n: int, event: str, timeout: float = 20, **filters: object) -> None:
    """Until the machine has logged ``n`` such events (``wait_event`` finds the first)."""
    deadline = time.monotonic() + timeout
    while len(m.events(event=event, **filters)) < n:
        assert time.monotonic() < deadline, f"fewer than {n} {event} {filters} in {timeout} s"
        time.sleep(0.02)


def sc(m: Machine, *args: str) -> str:
    return m.ntctl("sc", *args, check=False).stdout


def control(nt: Attached, name: str, what: str) -> int:
    """StartService / ControlService(STOP) in this process → the win32 error."""
    from ports import svcctl as sv  # the SCM's stubs arrive with services.exe

    conn = sv.ScConnectToScm(nt.lpc)
    try:
        scm = sv.ROpenSCManagerW(conn, sv.SC_MANAGER_ALL_ACCESS).body["handle"]
        handle = sv.ROpenServiceW(conn, scm, name, sv.SERVICE_ALL_ACCESS).body["handle"]
        if what == "start":
            reply = sv.RStartServiceW(conn, handle, [])
        else:
            reply = sv.RControlService(conn, handle, sv.SERVICE_CONTROL_STOP)
        return int(reply.body["error"])
    finally:
        conn.close()


def queryex(nt: Attached, name: str) -> dict:
    from ports import svcctl as sv

    conn = sv.ScConnectToScm(nt.lpc)
    try:
        scm = sv.ROpenSCManagerW(conn, sv.SC_MANAGER_ALL_ACCESS).body["handle"]
        handle = sv.ROpenServiceW(conn, scm, name, sv.SERVICE_ALL_ACCESS).body["handle"]
        return dict(sv.RQueryServiceStatusEx(conn, handle).body["status"])
    finally:
        conn.close()


def events(m: Machine, log: str, **filters: object) -> tuple[list[dict], str]:
    """``ntctl events`` in this process: (records as --json prints them, where from)."""
    from ntctl import events as evq

    found, where = evq.query(m.root, evq.Request(log, **filters), Attached)  # type: ignore[arg-type]
    return [e.as_json() for e in found], where


def test_the_auto_start_services_run_in_their_hosts(m: Machine, nt: Attached) -> None:
    for name in AUTO:
        m.wait_event("svc.state", service=name, state=RUNNING)
        assert queryex(nt, name)["current_state"] == RUNNING, name
    procs = {p["pid"]: p for p in nt.nt.processes()}
    assert procs[queryex(nt, "Spooler")["process_id"]]["image"] == "spoolsv.exe"
    assert procs[queryex(nt, "EventLog")["process_id"]]["image"] == "svchost.exe"
    assert queryex(nt, "W32Time")["current_state"] == STOPPED  # demand start


def test_the_system_log_holds_the_boot_through_the_service(m: Machine) -> None:
    m.wait_event("svc.state", service="LanmanServer", state=RUNNING)
    found, where = events(m, "System")
    assert where == "service"  # read through EventLog's port
    ids = [e["event_id"] for e in found]
    assert ids[:2] == [6009, 6005]
    assert found[0]["message"] == "Microsoft (R) Windows (R) 10.00. 19045  Multiprocessor Free."
    texts = {e["message"] for e in found if e["event_id"] == 7036}
    assert "The Windows Event Log service entered the running state." in texts
    assert "The RPC Endpoint Mapper service entered the running state." in texts  # replayed
    assert len({e["record"] for e in found}) == len(found)  # each record once
    text = m.ntctl("events", "System", "--id", "6005").stdout.splitlines()
    assert (
        text[:2] == ["Event[0]:", "  Log Name: System"]
        and text[-1] == "The Event log service was started."
    )


def test_a_print_job_is_spooled_and_printed(m: Machine, nt: Attached) -> None:
    m.wait_event("svc.state", service="Spooler", state=RUNNING)
    conn = spoolss.connect(nt.lpc)
    try:
        error, job = spoolss.SubmitJob(conn, "Microsoft Print to PDF", "report.txt", b"x" * 100_000)
    finally:
        conn.close()
    assert error == 0 and job >= 1
    printed = m.wait_event("spool.job_printed", job_id=job)
    assert printed["size"] == 100_000
    out = m.root / "C" / "Users" / "Public" / "Documents" / "report.txt"
    assert out.read_bytes() == b"x" * 100_000
    assert not (
        m.root / "C" / "Windows" / "System32" / "spool" / "PRINTERS" / f"FP{job:05d}.SPL"
    ).exists()
    # The same through the user's verb (print.exe's words), in this interpreter.
    doc = m.root.parent / "memo.txt"
    doc.write_text("memo\n")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = app.dispatch(["print", str(doc), "--root", str(m.root)], "ntctl")
    assert code == 0 and out.getvalue().startswith(f"{doc} is currently being printed (job ")
    m.wait_event("spool.job_printed", document="memo.txt")
    assert (m.root / "C" / "Users" / "Public" / "Documents" / "memo.txt").read_text() == "memo\n"


def test_the_endpoint_map_knows_the_rpc_servers(m: Machine, nt: Attached) -> None:
    for name in ("EventLog", "Spooler", "LanmanServer"):
        m.wait_event("svc.state", service=name, state=RUNNING)
    for name in ("RpcSs", "EventLog", "Spooler", "LanmanServer"):  # registered once up
        m.wait_event("rpc.ept_insert", service=name)
    conn = epmap.connect(nt.lpc)
    try:
        listed = epmap.RpcMgmtEpEltInqNext(conn).body["entries"]
        resolved = epmap.RpcEpResolveBinding(conn, spoolss.SPOOLSS_INTERFACE, "1.0", "ncacn_np")
    finally:
        conn.close()
    assert {"RpcEptMapper", "RpcSs", "EventLog", "Spooler", "LanmanServer"} <= {
        e["service"] for e in listed
    }
    assert resolved.body == {"binding": "ncacn_np:[\\pipe\\spoolss]", "status": 0}


def test_demand_services_start_do_their_work_and_stop(m: Machine, nt: Attached) -> None:
    assert control(nt, "W32Time", "start") == 0
    sample = m.wait_event("w32time.sample")
    assert abs(sample["offset_ms"]) < 1000 and sample["source"] == "time.windows.com"
    assert control(nt, "PlugPlay", "start") == 0
    assert m.wait_event("pnp.enumerated")["devices"] == 5
    assert control(nt, "Netlogon", "start") == 0  # its dependencies already run
    m.wait_event("svc.state", service="Netlogon", state=RUNNING)
    assert m.events(event="netlogon.workgroup")
    assert sc(m, "start", "RemoteAccess").startswith("[SC] StartService FAILED 1058:")
    assert control(nt, "W32Time", "stop") == 0
    m.wait_event("svc.state", service="W32Time", state=STOPPED)
    assert control(nt, "PlugPlay", "stop") == 1052  # NOT_STOPPABLE, as on Windows


def test_a_scheduled_task_runs_at_its_time(m: Machine, nt: Attached) -> None:
    m.wait_event("svc.state", service="Schedule", state=RUNNING)
    key = (
        r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Schedule\TaskCache\Tasks"
        r"\{5F2C1B6A-0000-4000-8000-00000000C4EC}"
    )
    nt.nt.create_key(key)
    nt.nt.set_value(key, "Path", 1, r"\Microsoft\Windows\Chkdsk\ProactiveScan")
    nt.nt.set_value(key, "Arguments", 1, "*")
    nt.nt.set_value(key, "Command", 2, r"%SystemRoot%\System32\autochk.exe")
    at = (datetime.now(UTC) + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    nt.nt.set_value(key, "StartBoundary", 1, at)  # last: the task is complete from here
    started = m.wait_event("sched.task_started", task=r"\Microsoft\Windows\Chkdsk\ProactiveScan")
    assert started["ts"] >= at.replace("Z", "")
    done = m.wait_event("sched.task_completed", child_pid=started["child_pid"])
    assert done["exit_status"] == 0


def test_eventlog_stopped_is_read_from_its_files_and_restarts(m: Machine, nt: Attached) -> None:
    m.wait_event("svc.state", service="EventLog", state=RUNNING)
    assert control(nt, "EventLog", "stop") == 0
    m.wait_event("svc.state", service="EventLog", state=STOPPED)
    r = m.ntctl("events", "System", "--newest", "1", "--json")
    assert "EventLog is not running; reading its log files" in r.stderr
    assert [e["event_id"] for e in json.loads(r.stdout)] == [6006]
    assert control(nt, "EventLog", "start") == 0
    wait_count(m, 2, "svc.state", service="EventLog", state=RUNNING)  # the boot's, then this
    found, where = events(m, "System", event_id=6005)
    assert len(found) == 2 and where == "service"
    stopped = [
        e
        for e in events(m, "System", event_id=7036)[0]
        if "Event Log service entered the stopped" in e["message"]
    ]
    assert len(stopped) == 1  # raised while EventLog was down, collected when it came back
