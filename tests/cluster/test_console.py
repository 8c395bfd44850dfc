"""Consoles and hard errors on a real machine (issue 9): condemo.exe started with
`ntctl start`, its console seen and typed into with `ntctl console`, and the hard errors
a user sees (a missing DLL, lsass dying) delivered to csrss of the console session."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from tests.cluster.conftest import REPO, Machine, machine_processes


@pytest.fixture(scope="module")
def con_machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machine]:
    root = tmp_path_factory.mktemp("console") / "m"
    m = Machine(root, dict(os.environ, NTMODEL_TEST_ROOT=str(root), NTMODEL_FAULTS=""))
    r = m.boot()
    assert r.returncode == 0, r.stdout + r.stderr
    yield m
    m.stop()
    assert not machine_processes(str(root))


def start_condemo(m: Machine, *args: str) -> int:
    out = json.loads(m.ntctl("start", "condemo.exe", *args, "--json").stdout)
    assert out["image"] == "condemo.exe" and out["session"] == 1
    m.wait_event("condemo.ready", pid=out["pid"])
    return out["pid"]


def screen(m: Machine, pid: int, *args: str) -> list[str]:
    return json.loads(m.ntctl("console", str(pid), "--json", *args).stdout)["lines"]


def typed(m: Machine, pid: int, text: str, done: Callable[[list[str]], bool]) -> list[str]:
    """``--send`` returns once the screen is quiet, which a loaded machine can reach between
    the program taking the line (its echo) and writing its answer: read again until done."""
    lines = screen(m, pid, "--send", text)
    deadline = time.monotonic() + 10
    while not done(lines) and time.monotonic() < deadline:
        time.sleep(0.05)
        lines = screen(m, pid)
    return lines


def test_console_shows_the_banner_and_answers_typed_commands(con_machine: Machine) -> None:
    m = con_machine
    pid = start_condemo(m, "/tick", "60")
    first = json.loads(m.ntctl("console", str(pid), "--json").stdout)
    assert first["title"] == "condemo.exe" and first["session"] == 1
    assert first["lines"][0].startswith("ConDemo 1.0") and first["lines"][-1] == "C:\\>"
    lines = typed(m, pid, "echo hello console", lambda ls: ls[-1] == "C:\\>")
    assert lines[-3:] == ["C:\\> echo hello console", "hello console", "C:\\>"]
    lines = typed(m, pid, "time", lambda ls: ls[-1] == "C:\\>")
    assert lines[-2].startswith("The current time is: ")
    lines = typed(m, pid, "dir", lambda ls: ls[-1] == "C:\\>")
    assert "'dir' is not recognized as an internal or external command," in lines
    plain = m.ntctl("console", str(pid)).stdout
    assert "hello console" in plain and plain.splitlines()[0].startswith("ConDemo")
    m.ntctl("console", str(pid), "--send", "exit 7")
    exit_event = m.wait_event("proc.exit", image="System", child_pid=pid)
    assert exit_event["status"] == "0x00000007"
    # its console went with its last process (ntctl had left it too)
    assert m.wait_event("csr.console_destroy", image="csrss.exe", session=1)


def test_follow_prints_the_tick_lines_until_the_program_exits(con_machine: Machine) -> None:
    m = con_machine
    pid = start_condemo(m, "/tick", "0.2", "/ticks", "3")
    follow = subprocess.Popen(
        [sys.executable, "-m", "ntctl", "console", str(pid), "--follow", "--root", str(m.root)],
        cwd=REPO,
        env=m.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if len(screen(m, pid)) >= 7:  # banner (3 rows), ticks 1-3, the prompt
                break
            time.sleep(0.1)
        m.ntctl("console", str(pid), "--send", "exit")
        out, err = follow.communicate(timeout=10)
    finally:
        follow.kill()
    assert follow.returncode == 0, err
    ticks = [line for line in out.splitlines() if line.endswith(("tick 1", "tick 2", "tick 3"))]
    assert len(ticks) == 3 and "C:\\> exit" in out
    assert f"process {pid} left its console" in err


def test_interactive_types_stdin_lines(con_machine: Machine) -> None:
    m = con_machine
    pid = start_condemo(m, "/tick", "60")
    r = subprocess.run(
        [sys.executable, "-m", "ntctl", "console", str(pid), "-i", "--root", str(m.root)],
        cwd=REPO,
        env=m.env,
        input="echo typed\nexit\n",
        capture_output=True,
        text=True,
        timeout=15,
    )
    assert r.returncode == 0, r.stderr
    assert "typed" in r.stdout.splitlines() and "C:\\> exit" in r.stdout


def test_console_and_start_mistakes_are_clear(con_machine: Machine) -> None:
    m = con_machine
    winlogon = m.pid_of("winlogon.exe", 1)
    r = m.ntctl("console", str(winlogon), check=False)
    assert (
        r.returncode == 1 and "has no console" in r.stderr and "STATUS_INVALID_HANDLE" in r.stderr
    )
    r = m.ntctl("console", "999999", check=False)
    assert r.returncode == 1 and "no process with PID 999999" in r.stderr
    smss = m.pid_of("smss.exe")
    r = m.ntctl("console", str(smss), check=False)
    assert r.returncode == 1 and "runs in no session" in r.stderr
    r = m.ntctl("console", "1", "--send", "x", "--interactive", check=False)
    assert r.returncode == 2
    r = m.ntctl("start", "nosuch.exe", check=False)
    assert r.returncode == 1 and "not recognized" in r.stderr
    r = m.ntctl("start", "condemo.exe", "--session", "0", check=False)
    assert r.returncode == 1 and "session 0" in r.stderr
    r = m.ntctl("start", "condemo.exe", "--session", "7", check=False)
    assert r.returncode == 1 and "no session 7" in r.stderr
    r = Machine(m.root.parent / "none", m.env).ntctl("console", "1", check=False)
    assert r.returncode == 1 and "not running" in r.stderr


def test_a_missing_dll_and_lsass_death_reach_the_console_session(machine_factory) -> None:
    m = machine_factory("condemo.exe:missing_dll=CONDEMOUI.dll")
    r = m.boot()
    assert r.returncode == 0, r.stdout + r.stderr
    pid = json.loads(m.ntctl("start", "condemo.exe", "--json").stdout)["pid"]
    exit_event = m.wait_event("proc.exit", image="System", child_pid=pid)
    assert exit_event["status_name"] == "STATUS_DLL_NOT_FOUND"
    box = m.wait_event("csr.hard_error_box", raiser_pid=pid)
    assert box["session"] == 1 and box["image"] == "csrss.exe"
    assert box["caption"] == "condemo.exe - System Error"
    assert box["text"] == (
        "The code execution cannot proceed because CONDEMOUI.dll was not found. "
        "Reinstalling the program may fix this problem."
    )
    popup = m.wait_event("event.report", event_id=26, image="csrss.exe")
    assert popup["message"] == f"Application popup: {box['caption']} : {box['text']}"
    # EventLog collects it from csrss's log line: poll `ntctl events` until it has
    deadline = time.monotonic() + 15
    while "condemo.exe - System Error" not in m.ntctl("events", "System", "--id", "26").stdout:
        assert time.monotonic() < deadline, "event 26 never reached the System log"
        time.sleep(0.1)

    os.kill(m.pid_of("lsass.exe", 0), signal.SIGKILL)
    box = m.wait_event("csr.hard_error_box", raiser_image="wininit.exe")
    assert box["session"] == 1 and box["error_status_name"] == "STATUS_SYSTEM_PROCESS_TERMINATED"
    assert box["caption"] == "Windows - Fatal System Error"
    assert box["text"].startswith(
        "The Local Security Authority Process system process terminated unexpectedly"
    )
    assert m.wait_event("wininit.critical_process_died")  # the restart countdown goes on
    assert not m.events(event="bugcheck")
