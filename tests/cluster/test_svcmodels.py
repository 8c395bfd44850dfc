"""The modelled services on a real machine booted with the shipped configuration: the
auto-start ones run, the event logs fill through EventLog and read back with
``ntctl events``, a print job goes through spoolsv.exe, the endpoint map knows the RPC
servers, demand services start and stop, a scheduled task runs at its time. One machine
serves the module; every wait is on the machine's own events, never a fixed sleep.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from nt.images import KNOWN_IMAGES
from ntctl.machine import Machine as Attached
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


def sc(m: Machine, *args: str) -> str:
    return m.ntctl("sc", *args, check=False).stdout


def queryex(m: Machine, name: str) -> dict:
    return json.loads(m.ntctl("sc", "queryex", name, "--json").stdout)


def events(m: Machine, log: str, *args: str) -> tuple[list[dict], str]:
    r = m.ntctl("events", log, "--json", *args)
    return json.loads(r.stdout), r.stderr


def test_the_auto_start_services_run_in_their_hosts(m: Machine) -> None:
    for name in AUTO:
        m.wait_event("svc.state", service=name, state=RUNNING)
        assert queryex(m, name)["current_state"] == RUNNING, name
    spooler = queryex(m, "Spooler")
    procs = {p["pid"]: p for p in m.processes()}
    assert procs[spooler["process_id"]]["image"] == "spoolsv.exe"
    assert procs[queryex(m, "EventLog")["process_id"]]["image"] == "svchost.exe"
    assert queryex(m, "W32Time")["current_state"] == STOPPED  # demand start


def test_the_system_log_holds_the_boot_through_the_service(m: Machine) -> None:
    m.wait_event("svc.state", service="LanmanServer", state=RUNNING)
    found, stderr = events(m, "System")
    assert "not running" not in stderr  # read through EventLog's port
    ids = [e["event_id"] for e in found]
    assert ids[:2] == [6009, 6005]
    assert found[0]["message"] == "Microsoft (R) Windows (R) 10.00. 19045  Multiprocessor Free."
    texts = {e["message"] for e in found if e["event_id"] == 7036}
    assert "The Windows Event Log service entered the running state." in texts
    assert "The RPC Endpoint Mapper service entered the running state." in texts  # replayed
    assert len({e["record"] for e in found}) == len(found)  # each record once
    newest, _ = events(m, "System", "--id", "6005", "--newest", "1")
    assert [e["source"] for e in newest] == ["EventLog"]
    text = m.ntctl("events", "System", "--id", "6005").stdout.splitlines()
    assert (
        text[:2] == ["Event[0]:", "  Log Name: System"]
        and text[-1] == "The Event log service was started."
    )


def test_a_print_job_is_spooled_and_printed(m: Machine) -> None:
    m.wait_event("svc.state", service="Spooler", state=RUNNING)
    with Attached(m.root) as attached:
        conn = spoolss.connect(attached.lpc)
        try:
            error, job = spoolss.SubmitJob(
                conn, "Microsoft Print to PDF", "report.txt", b"x" * 100_000
            )
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


def test_the_endpoint_map_knows_the_rpc_servers(m: Machine) -> None:
    for name in ("EventLog", "Spooler", "LanmanServer"):
        m.wait_event("svc.state", service=name, state=RUNNING)
    m.wait_event("rpc.ept_insert", service="Spooler")
    with Attached(m.root) as attached:
        conn = epmap.connect(attached.lpc)
        try:
            listed = epmap.RpcMgmtEpEltInqNext(conn).body["entries"]
            resolved = epmap.RpcEpResolveBinding(conn, spoolss.SPOOLSS_INTERFACE, "1.0", "ncacn_np")
        finally:
            conn.close()
    assert {"RpcEptMapper", "RpcSs", "EventLog", "Spooler", "LanmanServer"} <= {
        e["service"] for e in listed
    }
    assert resolved.body == {"binding": "ncacn_np:[\\pipe\\spoolss]", "status": 0}


def test_demand_services_start_do_their_work_and_stop(m: Machine) -> None:
    sc(m, "start", "W32Time")
    sample = m.wait_event("w32time.sample")
    assert abs(sample["offset_ms"]) < 1000 and sample["source"] == "time.windows.com"
    sc(m, "start", "PlugPlay")
    assert m.wait_event("pnp.enumerated")["devices"] == 5
    sc(m, "start", "Netlogon")  # its dependencies already run
    m.wait_event("svc.state", service="Netlogon", state=RUNNING)
    assert m.events(event="netlogon.workgroup")
    assert sc(m, "start", "RemoteAccess").startswith("[SC] StartService FAILED 1058:")
    sc(m, "stop", "W32Time")
    m.wait_event("svc.state", service="W32Time", state=STOPPED)
    assert sc(m, "stop", "PlugPlay").startswith("[SC] ControlService FAILED 1052:")  # NOT_STOPPABLE


def test_a_scheduled_task_runs_at_its_time(m: Machine) -> None:
    m.wait_event("svc.state", service="Schedule", state=RUNNING)
    key = (
        r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Schedule\TaskCache\Tasks"
        r"\{5F2C1B6A-0000-4000-8000-00000000C4EC}"
    )
    at = (datetime.now(UTC) + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for name, vtype, data in (
        ("Path", "REG_SZ", r"\Microsoft\Windows\Chkdsk\ProactiveScan"),
        ("Arguments", "REG_SZ", "*"),
        ("StartBoundary", "REG_SZ", at),
        ("Command", "REG_EXPAND_SZ", r"%SystemRoot%\System32\autochk.exe"),
    ):
        m.ntctl("reg", "add", key, "/v", name, "/t", vtype, "/d", data)
    started = m.wait_event("sched.task_started", task=r"\Microsoft\Windows\Chkdsk\ProactiveScan")
    assert started["ts"] >= at.replace("Z", "")
    done = m.wait_event("sched.task_completed", child_pid=started["child_pid"])
    assert done["exit_status"] == 0


def test_eventlog_stopped_is_read_from_its_files_and_restarts(m: Machine) -> None:
    m.wait_event("svc.state", service="EventLog", state=RUNNING)
    sc(m, "stop", "EventLog")
    m.wait_event("svc.state", service="EventLog", state=STOPPED)
    found, stderr = events(m, "System", "--newest", "1")
    assert "EventLog is not running; reading its log files" in stderr
    assert [e["event_id"] for e in found] == [6006]
    sc(m, "start", "EventLog")
    m.wait_event("svc.state", service="EventLog", state=RUNNING)
    found, stderr = events(m, "System", "--id", "6005")
    assert len(found) == 2 and "not running" not in stderr
    stopped = [
        e
        for e in events(m, "System", "--id", "7036")[0]
        if "Event Log service entered the stopped" in e["message"]
    ]
    assert len(stopped) == 1  # raised while EventLog was down, collected when it came back
