"""Faults that must behave as Windows does: which bugcheck, which parameters, who saw it."""

from __future__ import annotations

import json
import os
import signal

import psutil
import pytest

from nt.bugcodes import eprocess_address, string_pointer
from tests.cluster.conftest import Machine

pytestmark = pytest.mark.cluster


def kill_and_wait(m: Machine, image: str, session: int | None) -> tuple[int, set[int], dict]:
    pids = {p["pid"] for p in m.processes() if p["image"] != "ntctl.exe"}
    victim = m.pid_of(image, session)
    os.kill(victim, signal.SIGKILL)
    m.wait_stopped()
    return victim, pids, m.latest_dump()


def assert_everything_gone(pids: set[int]) -> None:
    alive = [
        p
        for p in pids
        if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
    ]
    assert not alive, f"still running after the bugcheck: {alive}"


@pytest.mark.parametrize(
    ("image", "session"),
    [
        ("csrss.exe", 1),
        ("csrss.exe", 0),
        ("wininit.exe", 0),
        ("winlogon.exe", 1),
        ("services.exe", 0),
    ],
)
def test_killing_a_critical_process_is_0xEF_on_win10(
    machine: Machine, image: str, session: int
) -> None:
    victim, pids, dump = kill_and_wait(machine, image, session)
    assert dump["bugcheck_code"] == 0xEF and dump["bugcheck_name"] == "CRITICAL_PROCESS_DIED"
    assert dump["parameters"] == [eprocess_address(victim), 0, 0, 0]
    assert dump["faulting_process"]["pid"] == victim and dump["faulting_process"]["image"] == image
    assert dump["faulting_process"]["signal"] == signal.SIGKILL
    assert dump["detected_by"]["image"] == "System"
    assert_everything_gone(pids)
    (bugcheck,) = machine.events(event="bugcheck")  # exactly one per boot
    assert bugcheck["code"] == "0x000000EF"


def test_killing_csrss_on_win7_is_0xF4_critical_object_termination(machine_factory) -> None:
    m = machine_factory()
    assert m.boot("--profile", "win7").returncode == 0
    victim, pids, dump = kill_and_wait(m, "csrss.exe", 1)
    assert dump["bugcheck_code"] == 0xF4
    assert dump["parameters"][:3] == [3, eprocess_address(victim), string_pointer("csrss.exe")]
    assert dump["decoded"]["p3_text"] == "csrss.exe"
    assert "Terminating critical process" in dump["decoded"]["p4_text"]
    assert_everything_gone(pids)


def test_killing_smss_after_its_5_second_window_is_0xEF(machine: Machine) -> None:
    machine.wait_event("boot.smss_released", timeout=15)
    victim, pids, dump = kill_and_wait(machine, "smss.exe", None)
    assert dump["bugcheck_code"] == 0xEF and dump["parameters"][0] == eprocess_address(victim)
    assert_everything_gone(pids)


def test_smss_exiting_within_5_seconds_is_session5_initialization_failed(machine_factory) -> None:
    m = machine_factory(faults="smss.exe:exit_after_init=0xC0000005")
    assert m.boot().returncode != 0
    m.wait_stopped()
    dump = m.latest_dump()
    assert (
        dump["bugcheck_code"] == 0x71 and dump["bugcheck_name"] == "SESSION5_INITIALIZATION_FAILED"
    )
    assert dump["parameters"] == [0xC0000005, 0, 0, 0]
    assert dump["faulting_process"]["image"] == "smss.exe"


def test_csrss_dying_before_it_is_critical_is_0xC000021A_from_smss(machine_factory) -> None:
    m = machine_factory(faults="csrss.exe@1:exit_after_sm_connect=0xC0000005")
    assert m.boot().returncode != 0
    m.wait_stopped()
    dump = m.latest_dump()
    assert dump["bugcheck_code"] == 0xC000021A
    assert dump["decoded"]["p1_text"] == "Windows SubSystem"
    assert dump["parameters"][1] == 0xC0000005
    assert dump["detected_by"]["image"] == "smss.exe"
    assert dump["faulting_process"]["image"] == "csrss.exe"
    assert "Windows SubSystem system process terminated unexpectedly" in dump["decoded"]["message"]


def test_a_missing_server_dll_stops_with_status_dll_not_found(machine_factory, tmp_path) -> None:
    overlay = tmp_path / "missing-dll.reg"
    overlay.write_text(
        "Windows Registry Editor Version 5.00\n\n"
        "[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Control\\Session Manager\\SubSystems]\n"
        '"Windows"="%SystemRoot%\\\\system32\\\\csrss.exe ObjectDirectory=\\\\Windows '
        "SharedSection=1024,3072,512 Windows=On SubSystemType=Windows ServerDll=basesrv,1 "
        "ServerDll=winsrv:UserServerDllInitialization,3 ServerDll=nosuchsrv,2 "
        'ProfileControl=Off MaxRequestThreads=16"\n'
    )
    m = machine_factory()
    assert m.boot("--reg", str(overlay)).returncode != 0
    m.wait_stopped()
    dump = m.latest_dump()
    assert dump["bugcheck_code"] == 0xC0000135
    assert dump["decoded"]["p1_text"] == "nosuchsrv"
    assert dump["decoded"]["p2_text"] == "Default Load Path"
    assert m.events(event="csr.dll_not_found", dll="nosuchsrv")


def test_ntctl_kill_of_csrss_bugchecks_before_the_kill(machine: Machine) -> None:
    victim = machine.pid_of("csrss.exe", 1)
    machine.ntctl("kill", str(victim))
    machine.wait_stopped()
    dump = machine.latest_dump()
    assert dump["bugcheck_code"] == 0xEF
    assert dump["faulting_process"]["pid"] == victim
    assert dump["detected_by"]["image"] == "ntctl.exe"  # NtTerminateProcess's caller


def test_after_a_bugcheck_the_next_boot_is_normal_and_reports_it(machine: Machine) -> None:
    first_boot = machine.log_dir.name
    kill_and_wait(machine, "csrss.exe", 1)
    assert machine.boot().returncode == 0
    assert machine.log_dir.name != first_boot
    (event,) = machine.events(event="event.report", event_id=1001)
    assert "0x000000ef" in event["message"]
    assert machine.events(event="event.report", event_id=41)
    assert machine.pid_of("winlogon.exe", 1)


def test_analyze_explains_the_dump_like_windbg(machine: Machine) -> None:
    victim, _, _ = kill_and_wait(machine, "csrss.exe", 1)
    text = machine.ntctl("analyze").stdout
    assert "CRITICAL_PROCESS_DIED (ef)" in text or "CRITICAL_PROCESS_DIED" in text
    assert f"{victim}" in text and "csrss.exe" in text and "SIGKILL" in text
    assert "FAILURE_BUCKET_ID" in text
    data = json.loads(machine.ntctl("analyze", "--json").stdout)
    assert data["bugcheck_code"] == 0xEF or data.get("BUGCHECK_CODE") in ("ef", "0xEF", 0xEF)


def test_an_initial_command_that_cannot_start_is_0xC000021A(machine_factory, tmp_path) -> None:
    overlay = tmp_path / "execute.reg"
    overlay.write_text(
        "Windows Registry Editor Version 5.00\n\n"
        "[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Control\\Session Manager]\n"
        '"Execute"=hex(7):6e,00,6f,00,73,00,75,00,63,00,68,00,2e,00,65,00,78,00,65,00,00,00,00,00\n'
    )
    m = machine_factory()
    assert m.boot("--reg", str(overlay)).returncode != 0
    m.wait_stopped()
    dump = m.latest_dump()
    assert dump["bugcheck_code"] == 0xC000021A
    assert dump["decoded"]["p1_text"] == "Session Manager ExecuteInitialCommand"
    assert dump["parameters"][1] == 0xC0000034  # STATUS_OBJECT_NAME_NOT_FOUND
    assert m.events(event="smss.execute_override", command="nosuch.exe")
