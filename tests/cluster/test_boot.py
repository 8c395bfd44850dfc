"""Booting to the Windows subsystem: the process tree, the handshakes, clean stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from tests.cluster.conftest import REPO, Machine, machine_processes

pytestmark = pytest.mark.cluster


def by_image(procs: list[dict], image: str) -> list[dict]:
    return [p for p in procs if p["image"] == image]


def test_boot_builds_the_win10_session_tree(machine: Machine) -> None:
    procs = machine.processes()
    system = by_image(procs, "System")[0]
    smss = by_image(procs, "smss.exe")
    assert len(smss) == 1 and smss[0]["parent_pid"] == system["pid"] and smss[0]["session"] is None
    csrss = {p["session"]: p for p in by_image(procs, "csrss.exe")}
    assert set(csrss) == {0, 1}
    (wininit,) = by_image(procs, "wininit.exe")
    (winlogon,) = by_image(procs, "winlogon.exe")
    assert wininit["session"] == 0 and winlogon["session"] == 1
    for p in (*smss, *csrss.values(), wininit, winlogon):
        assert p["critical"], f"{p['image']} should be critical"
    # The session smss instances started csrss and the initial command, then exited.
    instances = [e for e in machine.events(event="smss.session_create")]
    assert sorted(e["target_session"] for e in instances) == [0, 1]
    exited = {e["child_pid"] for e in machine.events(event="proc.exit")}
    assert {e["instance_pid"] for e in instances} <= exited
    assert winlogon["parent_pid"] in {e["instance_pid"] for e in instances}


def test_smss_gets_exactly_path_systemdrive_systemroot(machine: Machine) -> None:
    create = machine.events(event="proc.create", image="System")[0]
    assert create["child_image"] == "smss.exe"
    start = machine.events(event="proc.start", image="smss.exe")[0]
    assert start["environment"] == {
        "Path": "C:\\Windows\\System32",
        "SystemDrive": "C:",
        "SystemRoot": "C:\\Windows",
    }


def test_csrss_gets_the_whole_subsystems_windows_command_line(machine: Machine) -> None:
    starts = machine.events(event="smss.subsystem_start")
    assert len(starts) == 2
    for s in starts:
        assert s["command_line"] == (
            "C:\\Windows\\system32\\csrss.exe ObjectDirectory=\\Windows SharedSection=1024,3072,512 "
            "Windows=On SubSystemType=Windows ServerDll=basesrv,1 "
            "ServerDll=winsrv:UserServerDllInitialization,3 ServerDll=winsrv:ConServerDllInitialization,2 "
            "ProfileControl=Off MaxRequestThreads=16"
        )
    loaded = [e["dll"] for e in machine.events(event="csr.server_dll_loaded", session=1)]
    assert loaded == ["CSRSS", "basesrv", "winsrv", "winsrv"]  # slots 0, 1, 3, 2


def test_handshake_order_csrss_connects_back_before_the_initial_command(machine: Machine) -> None:
    for session, initial in ((0, "wininit.exe"), (1, "winlogon.exe")):
        # waited for: smss logs the SbCreateSession after its reply, and on a loaded machine
        # winlogon can reach logon.ready (when --detach returns) before that line is written
        connected = machine.wait_event("smss.subsystem_connected", target_session=session)
        created = machine.wait_event("smss.sb_create_session", child_image=initial)
        assert connected["ts"] < created["ts"]
        registered = machine.events(event="winlogon.registered")
        assert registered, "winlogon registered with its csrss as the logon process"


def test_phase1_progress_goes_from_0_to_100_in_order(machine: Machine) -> None:
    percents = [e["percent"] for e in machine.events(event="boot.phase1")]
    assert percents[0] == 0 and percents[-1] == 100
    assert percents == sorted(percents)
    steps = [e["step"] for e in machine.events(event="boot.phase1")]
    assert (
        steps.index("ObInitSystem")
        < steps.index("CmInitSystem1")
        < steps.index("ExpLoadInitialProcess")
    )


def test_boot_execute_runs_autochk_synchronously_before_the_sessions(machine: Machine) -> None:
    done = machine.events(event="smss.boot_execute")[0]
    assert done["command"] == "autocheck autochk *" and done["status"] == "0x00000000"
    first_session = machine.events(event="smss.session_create")[0]
    assert done["ts"] < first_session["ts"]
    assert any("NTFS" in e["text"] for e in machine.events(event="boot.display"))


def test_every_event_carries_the_fixed_keys(machine: Machine) -> None:
    for ev in machine.events():
        assert {"ts", "boot_id", "pid", "image", "session", "level", "event"} <= ev.keys()


def test_processes_show_their_nt_command_line_in_ps(machine: Machine) -> None:
    pid = machine.pid_of("csrss.exe", 1)
    title = " ".join(psutil.Process(pid).cmdline())
    assert title.startswith("csrss.exe ObjectDirectory=\\Windows")


def test_shutdown_stops_everything_and_closes_the_hives(machine: Machine) -> None:
    pids = {p["pid"] for p in machine.processes() if p["image"] != "ntctl.exe"}
    machine.ntctl("shutdown")
    machine.wait_stopped()
    assert not any(psutil.pid_exists(p) for p in pids)
    assert machine.events(event="shutdown.complete")
    assert not (machine.root / "machine.json").exists()


def test_second_boot_of_the_same_root_is_refused(machine: Machine) -> None:
    r = machine.boot()
    assert r.returncode != 0
    assert "already running" in r.stdout + r.stderr


def test_ctrl_c_in_the_foreground_shuts_down_cleanly(machine_factory) -> None:
    m = machine_factory()
    env = dict(m.env, COLUMNS="200")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ntctl", "boot", "--root", str(m.root)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (m.root / "logs" / "latest").exists() and m.events(event="logon.ready"):
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out.decode()
    assert m.events(event="shutdown.complete")
    m.wait_stopped()


def test_ntctl_without_a_running_machine_says_so(machine_factory) -> None:
    m = machine_factory()
    r = m.ntctl("ps", check=False)
    assert r.returncode != 0
    assert "not running" in r.stderr and "./run.sh" in r.stderr


def test_killing_the_kernel_takes_every_process_with_it(machine: Machine) -> None:
    pids = [p["pid"] for p in machine.processes() if p["image"] not in ("ntctl.exe",)]
    kernel = machine.kernel_pid()
    os.kill(kernel, signal.SIGKILL)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.01)
    assert not [p for p in pids if _alive(p)], "processes outlived the kernel by more than 1 s"
    machine.wait_stopped()
    assert not (machine_processes(str(machine.root)) & set(pids))


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
