"""Sessions made on demand (LSM → SmStartCsr → an smss instance each) and the Windows
shutdown (InitShutdown → winlogon → ExitWindowsEx per session → SCM → NtShutdownSystem),
on real machines (issue 9)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from nt.bugcodes import eprocess_address
from tests.cluster.conftest import REPO, Machine

pytestmark = pytest.mark.cluster


CREATE_IN_SESSION_0 = """
import sys
from ntctl.machine import Machine
from nt.status import status_name
from nt.syscalls import NtError
with Machine(sys.argv[1], session=1) as m:
    try:
        m.nt.create_process("C:\\\\Windows\\\\System32\\\\winlogon.exe", "winlogon.exe", {}, 0)
        print("created")
    except NtError as exc:
        print(status_name(exc.status))
"""


def lsm_client(m: Machine, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "tests.cluster.session_client", str(m.root), *args],
        cwd=REPO,
        env=m.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def live(m: Machine) -> list[dict]:
    return [p for p in m.processes() if p["state"] != "exited" and p["image"] != "ntctl.exe"]


def object_paths(m: Machine) -> str:
    return m.ntctl("obj", "\\", "-r", "--json").stdout


def wait_rebooted(m: Machine, first: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if m.log_dir.name != first and m.events(event="logon.ready"):
            return
        time.sleep(0.05)
    raise AssertionError("the machine did not boot again")


def test_ten_sessions_at_once_then_closed_leave_nothing_behind(machine: Machine) -> None:
    made = lsm_client(machine, "new", "10")["results"]
    assert [r["error"] for r in made] == [0] * 10, made
    ids = sorted(r["session"]["session_id"] for r in made)
    assert ids == list(range(2, 12))
    ui = {n: machine.wait_event("logonui.ready", session=n)["pid"] for n in ids}  # the notice
    procs = live(machine)
    for r in made:
        s = r["session"]
        mine = {p["pid"]: p["image"] for p in procs if p["session"] == s["session_id"]}
        assert mine == {
            s["csrss_pid"]: "csrss.exe",
            s["winlogon_pid"]: "winlogon.exe",
            ui[s["session_id"]]: "logonui.exe",
        }
    # seed 002: parallel smss instances, not one after the other
    spans = {}
    for e in machine.events(event="smss.session_create", image="smss.exe"):
        if e["target_session"] >= 2:
            spans[e["instance_pid"]] = [e["ts"], None]
    for e in machine.events(event="proc.exit"):
        if e["child_pid"] in spans:
            spans[e["child_pid"]][1] = e["ts"]
    overlapping = sum(
        1
        for a, (s1, e1) in spans.items()
        for b, (s2, e2) in spans.items()
        if a < b and s1 < e2 and s2 < e1
    )
    assert len(spans) == 10 and overlapping >= 1, spans
    objects = object_paths(machine)
    assert all(f"\\\\Sessions\\\\{n}\\\\Windows" in objects for n in ids)
    assert all(f"WMsgKRpc{n}" in objects for n in ids)
    path = "\\Sessions\\2\\Windows\\WindowStations"
    stations = json.loads(machine.ntctl("obj", path, "--json").stdout)["entries"]
    assert [(e["name"], e["type"]) for e in stations] == [("WinSta0", "WindowStation")]
    rows = json.loads(machine.ntctl("session", "--json").stdout)
    assert [(r["session_id"], r["state_text"]) for r in rows][:2] == [(0, "Disc"), (1, "Conn")]
    assert {r["name"] for r in rows[2:]} == {f"RDP-Tcp#{i}" for i in range(10)}

    closed = lsm_client(machine, "logoff", *map(str, ids))["results"]
    assert [(r["error"], r["closed"]) for r in closed] == [(0, 1)] * 10, closed
    assert not [p for p in live(machine) if p["session"] not in (None, 0, 1)]
    objects = object_paths(machine)
    assert not any(f'\\\\Sessions\\\\{n}\\"' in objects or f'WMsgKRpc{n}"' in objects for n in ids)
    stations = json.loads(machine.ntctl("obj", "\\Windows\\WindowStations", "--json").stdout)
    assert [e["name"] for e in stations["entries"]] == ["WinSta0"]  # session 0's stays
    assert [r["session_id"] for r in json.loads(machine.ntctl("session", "--json").stdout)] == [
        0,
        1,
    ]
    assert not machine.events(event="bugcheck")

    # logoff with no one logged on, and of session 0: clear statuses
    r = machine.ntctl("session", "logoff", "1", check=False)
    assert r.returncode == 1 and "ERROR_NO_SUCH_LOGON_SESSION 1312" in r.stderr
    r = machine.ntctl("session", "logoff", "0", check=False)
    assert r.returncode == 1 and "ERROR_ACCESS_DENIED 5" in r.stderr

    # session 0 isolation: an administrator's process may not be created beside the services
    r = subprocess.run(
        [sys.executable, "-c", CREATE_IN_SESSION_0, str(machine.root)],
        cwd=REPO,
        env=machine.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.stdout.strip() == "STATUS_ACCESS_DENIED", r.stderr
    assert machine.events(event="proc.session0_refused")

    # Ctrl+C on the launcher: the Windows shutdown, not a kill
    launcher = int((machine.root / "machine.lock").read_text())
    os.kill(launcher, signal.SIGTERM)
    machine.wait_stopped(30)
    (e1074,) = machine.events(event="event.report", event_id=1074)
    assert "Ctrl+C on run.sh" in e1074["message"]
    assert [e["phase"] for e in machine.events(event="shutdown.phase")][-1] == "kernel"


def test_shutdown_countdown_abort_twice_request_during_and_restart(machine: Machine) -> None:
    machine.ntctl("reg", "add", "HKLM\\SOFTWARE\\SessionsTest", "/v", "Kept", "/d", "yes")
    machine.ntctl("user", "add", "keptuser", "--password-stdin", input="Kept-Acc0unt!\n")
    r = machine.ntctl("shutdown", "-t", "600", "-c", "patch Tuesday")
    assert "in 600 s" in r.stdout
    r = machine.ntctl("shutdown", check=False)
    assert r.returncode == 1 and "ERROR_SHUTDOWN_IN_PROGRESS 1115" in r.stderr
    r = machine.ntctl("session", "new", check=False)
    assert r.returncode == 1 and "ERROR_SHUTDOWN_IN_PROGRESS 1115" in r.stderr
    machine.ntctl("shutdown", "-a")
    r = machine.ntctl("shutdown", "-a", check=False)
    assert r.returncode == 1 and "ERROR_NO_SHUTDOWN_IN_PROGRESS 1116" in r.stderr
    made = json.loads(machine.ntctl("session", "new", "--json").stdout)
    machine.wait_event("logon.ready", session=made["session_id"])

    first = machine.log_dir.name
    machine.ntctl("shutdown", "-r", "-c", "kernel update")
    wait_rebooted(machine, first)
    old = machine.root / "logs" / first
    events = [json.loads(line) for f in old.glob("*.jsonl") for line in f.read_text().splitlines()]
    reports = [e for e in events if e["event"] == "event.report"]
    shutdowns = [e["message"] for e in reports if e["event_id"] == 1074]
    assert len(shutdowns) == 2  # the aborted one is on record too, as in Windows
    assert any("Comment: patch Tuesday" in t for t in shutdowns)
    assert any("Shutdown Type: restart" in t and "kernel update" in t for t in shutdowns)
    assert [e for e in reports if e["event_id"] == 6006]
    phases = sorted((e for e in events if e["event"] == "shutdown.phase"), key=lambda e: e["ts"])
    assert [e["phase"] for e in phases] == [
        "apps",
        "preshutdown",
        "services",
        "smss",
        "kernel",
    ]
    assert phases[0]["sessions"] == [made["session_id"], 1]  # the console session last
    # no state lost across the restart
    r = machine.ntctl("reg", "query", "HKLM\\SOFTWARE\\SessionsTest", "--value", "Kept")
    assert "yes" in r.stdout
    users = json.loads(machine.ntctl("user", "list", "--json").stdout)
    assert "keptuser" in json.dumps(users)  # the SAM hive came through
    system = json.loads(machine.ntctl("events", "System", "--id", "1074", "--json").stdout)
    assert any("kernel update" in json.dumps(e) for e in system)  # and the event logs
    assert machine.events(event="shutdown.phase") == []  # a fresh boot


@pytest.mark.parametrize(
    ("profile", "image", "code"),
    [("win10", "winlogon.exe", 0xEF), ("win7", "winlogon.exe", 0xF4), ("win10", "csrss.exe", 0xEF)],
)
def test_a_critical_process_of_an_on_demand_session_killed(
    machine_factory, profile: str, image: str, code: int
) -> None:
    m = machine_factory()
    assert m.boot("--profile", profile).returncode == 0
    autoreboot = image == "winlogon.exe" and profile == "win10"
    if autoreboot:
        m.ntctl(
            "reg", "add", "HKLM\\SYSTEM\\CurrentControlSet\\Control\\CrashControl",
            "/v", "AutoReboot", "/t", "REG_DWORD", "/d", "1",
        )  # fmt: skip
    made = json.loads(m.ntctl("session", "new", "--json").stdout)
    m.wait_event("logon.ready", session=made["session_id"])
    victim = made["winlogon_pid"] if image == "winlogon.exe" else made["csrss_pid"]
    first = m.log_dir.name
    os.kill(victim, signal.SIGKILL)
    if autoreboot:  # the machine boots again and reports the bugcheck (1001)
        wait_rebooted(m, first)
        (e1001,) = m.events(event="event.report", event_id=1001)
        assert "0x000000ef" in e1001["message"]
    else:
        m.wait_stopped()
    dump = m.latest_dump()
    assert dump["bugcheck_code"] == code
    assert dump["faulting_process"]["pid"] == victim
    if code == 0xEF:
        assert dump["parameters"] == [eprocess_address(victim), 0, 0, 0]
