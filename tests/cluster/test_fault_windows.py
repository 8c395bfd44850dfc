"""The fault windows a seeded kill campaign found (issue 6), one test per class.

Each test hits its window deterministically, through a fault hook injected by
configuration (``NTMODEL_FAULTS``) or a registry overlay, and checks what Windows does
there: the bugcheck, its P1 string, the culprit in the dump, the processes the STOP
stopped. None of them measures time; ``./run.sh bench fault_windows`` reports the
kill -> bugcheck and kill -> last-gone figures of the same windows.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nt.status import NtStatus
from tests.cluster.conftest import REPO, Machine

pytestmark = pytest.mark.cluster

EXECUTE_WINLOGON = (
    "Windows Registry Editor Version 5.00\n\n"
    "[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Control\\Session Manager]\n"
    '"Execute"=hex(7):77,00,69,00,6e,00,6c,00,6f,00,67,00,6f,00,6e,00,2e,00,65,00,78,00,'
    "65,00,00,00,00,00\n"
)


def boot_in_background(m: Machine, *extra: str) -> subprocess.Popen:
    """``ntctl boot --detach`` for a boot that a fault keeps from coming up."""
    return subprocess.Popen(
        [sys.executable, "-m", "ntctl", "boot", "--detach", *extra, "--root", str(m.root)],
        cwd=REPO,
        env=m.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def crashed_boot(m: Machine, *extra: str) -> dict:
    assert m.boot(*extra).returncode != 0
    m.wait_stopped()
    return m.latest_dump()


def stopped_by_the_stop(m: Machine) -> dict:
    (stopped,) = m.events(event="bugcheck.stopped")
    assert stopped["all_gone"], stopped
    return stopped


# -- 1. a process being forked when the kernel dies ----------------------------------
def test_class1_a_process_forked_while_the_kernel_dies_goes_with_it(machine_factory) -> None:
    """Window: the zygote's middle child has not exited yet, so the new process (winlogon)
    is not yet the kernel's child and has no death signal armed. It must see that the
    kernel did not adopt it and exit at once, not after a timeout."""
    m = machine_factory(faults="zygote:hold_fork=winlogon")
    launcher = boot_in_background(m)
    try:
        created = m.wait_event("proc.create", image="System", child_image="winlogon.exe")
        os.kill(created["pid"], signal.SIGKILL)
        m.wait_stopped()
    finally:
        launcher.wait(30)
    stderr = (m.log_dir / "console.stderr").read_text()
    assert f"pid {created['child_pid']} (winlogon) exits: the kernel {created['pid']} died" in (
        stderr
    )
    assert not list(m.log_dir.glob("winlogon.exe.*.jsonl")), "the orphan ran the image"


# -- 2. a process created during a bugcheck -------------------------------------------
def test_class2_a_creation_in_flight_during_the_bugcheck_is_stopped_with_the_rest(
    machine_factory,
) -> None:
    """Window: winlogon is forked and watched, not yet published in the process table,
    when smss dies and KeBugCheckEx takes the list of processes to stop. The creation
    finishes first, and the new process is among those the STOP kills."""
    m = machine_factory(faults="System:bugcheck_while_creating=winlogon.exe")
    dump = crashed_boot(m)
    # smss died: within its 5 s (0x71), or after them on a very loaded machine (0xEF)
    assert dump["bugcheck_code"] in (0x71, 0xEF) and dump["faulting_process"]["image"] == "smss.exe"
    (fault,) = m.events(event="fault.bugcheck_while_creating")
    stopped = stopped_by_the_stop(m)
    assert fault["child_pid"] in stopped["victims"]
    assert m.events(event="proc.exit", image="System", child_pid=fault["child_pid"])


# -- 3. the initial command killed while still suspended ------------------------------
@pytest.mark.parametrize(
    "fault",
    [
        "smss.exe@1:kill_initial_command=before_exec_pgm",  # the instance's window
        "smss.exe:kill_initial_command=before_sb_create_session",  # the master's window
    ],
    ids=["before-SmExecPgm", "before-SbCreateSession"],
)
def test_class3_the_initial_command_killed_before_its_resume_is_windows_logon_process(
    machine_factory, fault: str
) -> None:
    m = machine_factory(faults=fault)
    dump = crashed_boot(m)
    killed = {e["child_pid"] for e in m.events(event="fault.kill_initial_command")}
    assert dump["bugcheck_code"] == 0xC000021A
    assert dump["decoded"]["p1_text"] == "Windows Logon Process"
    culprit = dump["faulting_process"]
    assert culprit["pid"] in killed
    assert culprit["image"] in ("winlogon.exe", "wininit.exe")
    assert culprit["signal"] == signal.SIGKILL
    assert dump["parameters"][1] == culprit["exit_status"] != 0
    assert dump["detected_by"]["image"] == "smss.exe"
    assert len(m.events(event="bugcheck")) == 1


# -- 4. a session smss instance that dies --------------------------------------------
@pytest.mark.parametrize("step", ["subsystem_started", "initial_command_created"])
def test_class4_a_boot_session_instance_dying_fails_session_manager_initialization(
    machine_factory, step: str
) -> None:
    """Windows: the master smss watches each instance it starts; one that dies before its
    session is ready fails the boot, naming the instance. Neither the healthy csrss
    (connecting to an event the master owns) nor the suspended initial command is
    blamed, and nothing is left half up."""
    m = machine_factory(faults=f"smss.exe@1:die_at={step}")
    dump = crashed_boot(m)
    (created,) = m.events(event="smss.session_create", target_session=1)
    assert dump["bugcheck_code"] == 0xC000021A
    assert dump["decoded"]["p1_text"] == "Session Manager Initialization"
    culprit = dump["faulting_process"]
    assert culprit["pid"] == created["instance_pid"] and culprit["image"] == "smss.exe"
    assert culprit["session"] == 1 and culprit["signal"] == signal.SIGKILL
    assert dump["parameters"][1] == culprit["exit_status"]
    assert dump["detected_by"]["image"] == "smss.exe"
    assert not m.events(event="smss.subsystem_refused")
    assert not m.events(event="smss.sb_connect_failed")


# -- 5. late detection -------------------------------------------------------------
def test_class5_smss_reacts_to_a_death_while_the_other_session_is_still_starting(
    machine_factory, tmp_path: Path
) -> None:
    """Window: wininit dies before it is critical while session 1's instance is still in
    its Execute delay (5 s). The master must raise 0xC000021A from the exit event at
    once: the session-1 instance is still running when the STOP comes."""
    overlay = tmp_path / "execute.reg"
    overlay.write_text(EXECUTE_WINLOGON)
    m = machine_factory(faults="wininit.exe:exit_before_critical=0xC0000005")
    dump = crashed_boot(m, "--reg", str(overlay))
    assert dump["bugcheck_code"] == 0xC000021A
    assert dump["decoded"]["p1_text"] == "Windows Logon Process"
    assert dump["faulting_process"]["image"] == "wininit.exe"
    assert dump["parameters"][1] == NtStatus.STATUS_ACCESS_VIOLATION
    (instance,) = m.events(event="smss.session_create", target_session=1)
    assert instance["instance_pid"] in stopped_by_the_stop(m)["victims"]


# -- 6. the kernel killed early in its boot ------------------------------------------
def test_class6_a_kernel_killed_before_lpc_init_is_reported_by_the_next_boot(
    machine_factory,
) -> None:
    m = machine_factory(faults="System:stall_at=ObInitSystem")
    launcher = boot_in_background(m)
    try:
        stall = m.wait_event("fault.stall", image="System")
        os.kill(stall["pid"], signal.SIGKILL)
        m.wait_stopped()
    finally:
        launcher.wait(30)
    first = m.log_dir.name
    m.env["NTMODEL_FAULTS"] = ""
    assert m.boot().returncode == 0
    assert m.log_dir.name != first
    (unexpected,) = m.events(event="event.report", event_id=6008)
    assert "was unexpected" in unexpected["message"]
    assert m.events(event="boot.unexpected_stop")[0]["previous_boot"] == first
    assert m.events(event="event.report", event_id=41)


# SmStartCsr from an attached client (Terminal Services' role), one JSON line out.
START_CSR = """
import json, sys
from ntctl.machine import Machine
from ports import sm
root, session = sys.argv[1], int(sys.argv[2])
with Machine(root, session=1) as m:
    r = sm.SmStartCsr(sm.SmConnectToSm(m.lpc), session)
    print(json.dumps({"status": r.status, "body": r.body}), flush=True)
"""


def sm_start_csr(m: Machine, session: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", START_CSR, str(m.root), str(session)],
        cwd=REPO,
        env=m.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_class4_a_session_made_on_demand_whose_instance_dies_fails_the_request_only(
    machine_factory,
) -> None:
    """SmpStartCsr for session 3, whose instance dies after starting csrss: the request
    fails with the instance's status, what it started is stopped, the machine stays up
    and still makes session 2."""
    m = machine_factory(faults="smss.exe@3:die_at=subsystem_started")
    assert m.boot().returncode == 0
    failed = sm_start_csr(m, 3)
    assert failed["status"] != NtStatus.STATUS_SUCCESS
    (event,) = m.events(event="smss.session_failed", image="smss.exe", target_session=3)
    assert failed["status"] == int(event["status"], 16) == NtStatus.STATUS_UNSUCCESSFUL
    assert event["stopped"], "the session's csrss was not stopped"
    assert not [p for p in m.processes() if p["session"] == 3 and p["state"] != "exited"]
    made = sm_start_csr(m, 2)
    assert made["status"] == NtStatus.STATUS_SUCCESS, made
    images = {p["pid"]: p["image"] for p in m.processes() if p["session"] == 2}
    assert images[made["body"]["csrss_pid"]] == "csrss.exe"
    assert images[made["body"]["initial_pid"]] == "winlogon.exe"
    m.wait_event("logon.ready", session=2)
    assert sm_start_csr(m, 2)["status"] == NtStatus.STATUS_OBJECT_NAME_COLLISION
    assert not m.events(event="bugcheck")
    assert m.pid_of("winlogon.exe", 1)
