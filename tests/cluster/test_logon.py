"""The logon path on real machines (issue 9): ``ntctl logon`` → the SAS → LogonUI and its
credential providers → winlogon → LsaLogonUser → the profile → userinit → explorer; the
failures LogonUI shows; AutoRestartShell; logoff; and the faults around them.

Most tests share one booted machine (cheap argon2id, as in test_lsass.py); the faults that
end a machine (0xEF, lsass killed) boot their own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.conftest import REPO, Machine, machine_processes
from tests.cluster.test_lsass import boot, ntctl_pw

pytestmark = pytest.mark.cluster

PASSWORDS = {"alice": "Al1ce-L0gon&UI", "bob": "B0b-l0gon horse", "carol": "C4rol-disabled"}
PIN = "864213"
RUN_KEY = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Run"
DEFAULT_RUNONCE = r"HKU\.DEFAULT\SOFTWARE\Microsoft\Windows\CurrentVersion\RunOnce"
PROFILE_LIST = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList"

# The SAS alone, as a keyboard that never types: prints LogonUI's pid and port.
SAS_ONLY = """
import json, sys
from ntctl.machine import Machine
from ports import winlogon as wl
with Machine(sys.argv[1], 1) as m:
    conn = wl.WMsgConnect(m.lpc, 1)
    print(json.dumps(wl.WlxSasNotify(conn).body), flush=True)
"""


# The operator asking winlogon for its session's part of a shutdown: SYSTEM's alone.
WMSG_SHUTDOWN = """
import json, sys
from ntctl.machine import Machine
from ports import winlogon as wl
with Machine(sys.argv[1], 1) as m:
    conn = wl.WMsgConnect(m.lpc, 1)
    print(json.dumps(wl.WMsgMessageHandler(conn, wl.WMSG_SHUTDOWN, 0x1).body), flush=True)
"""


def client_json(m: Machine, script: str) -> dict:
    r = subprocess.run(
        [sys.executable, "-c", script, str(m.root)],
        cwd=REPO,
        env=m.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1])


def logon(m: Machine, user: str, *extra: str, secret: str | None = None, check: bool = True):
    secret = PASSWORDS.get(user, "") if secret is None else secret
    flag = "--pin-stdin" if "--pin" in extra else "--password-stdin"
    args = [a for a in extra if a != "--pin"]
    return m.ntctl("logon", user, flag, *args, input=secret + "\n", check=check, timeout=60)


def live(m: Machine, image: str, session: int = 1) -> list[dict]:
    return [
        p
        for p in m.processes()
        if p["image"] == image and p["session"] == session and p["state"] != "exited"
    ]


def sid_of(m: Machine, name: str) -> str:
    return json.loads(m.ntctl("user", "show", name, "--json").stdout)["sid"]


def security(m: Machine, event_id: int) -> list[dict]:
    return m.events(event="event.report", event_id=event_id)


@pytest.fixture(scope="module")
def lm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machine]:
    # userinit of session 2 (made on demand) stalls, so a test can kill it mid-way.
    faults = "userinit.exe@2:stall=30,winlogon.exe@2:stall_exit_windows=3"
    m = boot(tmp_path_factory.mktemp("logon") / "m", faults=faults)
    ntctl_pw(m, PASSWORDS["alice"], "user", "add", "alice", "--admin")
    ntctl_pw(m, PASSWORDS["bob"], "user", "add", "bob")
    ntctl_pw(m, PASSWORDS["carol"], "user", "add", "carol")
    m.ntctl("user", "disable", "carol")
    yield m
    m.stop()
    assert not machine_processes(str(m.root))


def test_logon_runs_logonui_userinit_and_the_shell_with_her_token_and_profile(
    lm: Machine,
) -> None:
    m = lm
    m.ntctl("reg", "add", RUN_KEY, "/v", "Missing", "/d", r"C:\Tools\missing.exe")
    m.ntctl("reg", "add", DEFAULT_RUNONCE, "/v", "Setup", "/d", r"C:\Tools\setup.exe /q")
    startup = m.root / "C/ProgramData/Microsoft/Windows/Start Menu/Programs/Startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "tool.cmd").write_text("@echo off\r\nrem a shortcut\r\nC:\\Tools\\tray.exe /min\r\n")
    r = logon(m, "alice")
    assert r.stdout.strip() == "alice logged on in session 1."
    ok = m.wait_event("logon.success", image="winlogon.exe")
    sid = sid_of(m, "alice")
    assert ok["user"] == "alice" and ok["sid"] == sid and ok["first_logon"] is True
    m.wait_event("explorer.ready", user="alice")
    [shell] = live(m, "explorer.exe")
    assert shell["user"] == "NTMODEL\\alice"
    # LogonUI drew the notice since the boot and is gone after her logon.
    [started] = m.events(event="winlogon.logonui_started", session=1)
    m.wait_event("winlogon.logonui_exit", child_pid=started["child_pid"])
    assert not live(m, "logonui.exe") and m.events(event="logonui.provider_loaded")
    assert {e["name"] for e in m.events(event="logonui.provider_loaded")} == {
        "PasswordProvider",
        "NGC Credential Provider",
    }
    m.wait_event("userinit.done")
    failed = {e["source"].rsplit("\\", 1)[-1] for e in m.events(event="userinit.run_failed")}
    assert failed == {"Missing", "Setup", "tool.cmd"}  # missing images: logged, not fatal
    # RunOnce ran from her hive (HKCU = HKU\<SID>) and was deleted there, not in DEFAULT.
    runonce = rf"HKU\{sid}\SOFTWARE\Microsoft\Windows\CurrentVersion\RunOnce"
    assert "Setup" not in m.ntctl("reg", "query", runonce).stdout
    assert "Setup" in m.ntctl("reg", "query", DEFAULT_RUNONCE).stdout
    profile = m.ntctl("reg", "query", rf"{PROFILE_LIST}\{sid}").stdout
    assert r"%SystemDrive%\Users\alice" in profile
    assert (m.root / "C/Users/alice/NTUSER.DAT").exists()
    console = m.ntctl("session").stdout.splitlines()[2].split()
    assert console[:4] == [">console", "alice", "1", "Active"]
    assert [e["logon_type"] for e in m.events(event="lsa.logon", user="alice")] == [2]
    m.wait_event("winlogon.boot_accepted")
    # A second SAS while she is logged on: a clear status, no second LogonUI.
    again = logon(m, "bob", check=False)
    assert again.returncode == 1 and "STATUS_LOGON_SESSION_EXISTS" in again.stderr


def test_the_shell_killed_is_restarted_and_nothing_bugchecks(lm: Machine) -> None:
    m = lm
    [shell] = live(m, "explorer.exe")
    m.ntctl("kill", str(shell["pid"]))
    restart = m.wait_event("winlogon.shell_restart")
    [new] = live(m, "explorer.exe")
    assert new["pid"] == restart["child_pid"] != shell["pid"]
    assert new["user"] == "NTMODEL\\alice"
    key = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon"
    m.ntctl("reg", "add", key, "/v", "AutoRestartShell", "/t", "REG_DWORD", "/d", "0")
    try:
        m.ntctl("kill", str(new["pid"]))
        m.wait_event("winlogon.shell_not_restarted")
        assert not live(m, "explorer.exe") and len(m.events(event="winlogon.shell_restart")) == 1
    finally:
        m.ntctl("reg", "add", key, "/v", "AutoRestartShell", "/t", "REG_DWORD", "/d", "1")
    assert not m.events(event="bugcheck")


def test_logoff_ends_her_processes_and_the_logon_session(lm: Machine) -> None:
    m = lm
    sid = sid_of(m, "alice")
    winlogon = m.pid_of("winlogon.exe", 1)
    r = m.ntctl("logoff")
    assert r.stdout.strip() == "Session 1 logged off."
    assert not live(m, "explorer.exe")
    assert m.pid_of("winlogon.exe", 1) == winlogon and m.pid_of("csrss.exe", 1)
    assert any(e["strings"][1] == "alice" for e in security(m, 4647))
    m.wait_event("event.report", event_id=4634, image="lsass.exe")
    unloaded = m.ntctl("reg", "query", rf"HKU\{sid}", check=False)
    assert unloaded.returncode != 0
    assert "alice" not in m.ntctl("session").stdout
    nobody = m.ntctl("logoff", check=False)
    assert nobody.returncode == 1 and "ERROR_NO_SUCH_LOGON_SESSION 1312" in nobody.stderr
    # Her second logon finds her profile: no new NTUSER.DAT.
    logon(m, "alice")
    assert [e["first_logon"] for e in m.events(event="logon.success")] == [True, False]
    m.ntctl("logoff")


def test_failed_logons_show_logonui_texts_and_one_logonui_stays_up(lm: Machine) -> None:
    m = lm
    ready = len(m.events(event="logon.ready", image="winlogon.exe", session=1))
    started = len(m.events(event="winlogon.logonui_started", session=1))
    bad = logon(m, "bob", secret="not-his", check=False)
    assert bad.returncode == 1
    assert "The user name or password is incorrect." in bad.stderr
    assert "STATUS_LOGON_FAILURE" in bad.stderr
    off = logon(m, "carol", check=False)
    assert off.returncode == 1 and "disabled" in off.stderr
    m.ntctl("accounts", "--lockout-threshold", "2")
    try:
        for _ in range(2):
            logon(m, "bob", secret="guess", check=False)
        locked = logon(m, "bob", check=False)
        assert "The referenced account is currently locked out" in locked.stderr
    finally:
        m.ntctl("accounts", "--lockout-threshold", "0")
        m.ntctl("user", "unlock", "bob")
    nopin = logon(m, "bob", "--pin", secret="1111", check=False)  # no PIN set: refused
    assert nopin.returncode == 1 and "PIN is incorrect" in nopin.stderr
    m.wait_event("logon.ready", timeout=10, image="winlogon.exe", session=1)
    assert len(m.events(event="logon.ready", image="winlogon.exe", session=1)) >= ready + 5
    # Windows keeps the tiles up: the six attempts went to the LogonUI the logoff started.
    assert len(m.events(event="winlogon.logonui_started", session=1)) == started
    assert len(live(m, "logonui.exe")) == 1 and not live(m, "explorer.exe")


def test_logonui_killed_idle_at_the_notice_is_started_again_without_a_bugcheck(
    lm: Machine,
) -> None:
    m = lm
    [ui] = live(m, "logonui.exe")
    m.wait_event("logonui.ready", pid=ui["pid"])  # the notice is up, nobody typing
    os.kill(ui["pid"], signal.SIGKILL)
    restart = m.wait_event("winlogon.logonui_restart", dead_pid=ui["pid"])
    assert restart["status"] == "0x00000000" and restart["child_pid"] not in (0, ui["pid"])
    assert m.events(event="divergence", image="winlogon.exe", session=1)
    m.wait_event("logonui.ready", pid=restart["child_pid"])
    logon(m, "bob")  # the SAS reaches the new LogonUI
    m.wait_event("explorer.ready", user="bob")
    m.ntctl("logoff")
    assert not m.events(event="bugcheck")


def test_logonui_killed_during_a_logon_then_the_sas_works_again(lm: Machine) -> None:
    m = lm
    ui = client_json(m, SAS_ONLY)
    assert ui["status"] == 0 and ui["port"] == "\\RPC Control\\LogonUI1"
    os.kill(ui["logonui_pid"], signal.SIGKILL)
    m.wait_event("winlogon.logonui_exit", child_pid=ui["logonui_pid"])
    logon(m, "bob")
    m.wait_event("explorer.ready", user="bob")
    m.ntctl("logoff")
    assert not m.events(event="bugcheck")


def test_bob_logs_on_in_a_session_made_on_demand_and_userinit_killed_is_no_bugcheck(
    lm: Machine,
) -> None:
    m = lm
    made = json.loads(m.ntctl("session", "new", "--json", timeout=90).stdout)
    session = made["session_id"]
    assert session == 2  # the fault of this module's machine stalls its userinit
    m.wait_event("logon.ready", session=session)
    logon(m, "bob", "--session", str(session))
    [userinit] = live(m, "userinit.exe", session)
    assert userinit["user"] == "NTMODEL\\bob"
    os.kill(userinit["pid"], signal.SIGKILL)
    m.wait_event("winlogon.userinit_exit", session=session)
    assert "bob" in m.ntctl("session").stdout and not m.events(event="bugcheck")
    assert not live(m, "explorer.exe", 1)  # session 1 has nobody
    # bob on the console too: one profile, loaded once and counted (userenv's refcount)
    logon(m, "bob")
    m.ntctl("logoff", "--session", str(session))
    sid = sid_of(m, "bob")
    assert m.ntctl("reg", "query", rf"HKU\{sid}").returncode == 0  # still his session 1's
    assert [p["user"] for p in live(m, "explorer.exe", 1)] == ["NTMODEL\\bob"]
    m.ntctl("logoff")
    assert m.ntctl("reg", "query", rf"HKU\{sid}", check=False).returncode != 0
    m.ntctl("session", "logoff", str(session), timeout=60)


def test_pin_logon_through_the_pin_provider(lm: Machine) -> None:
    m = lm
    m.ntctl("user", "pin", "bob", "--pin-stdin", input=PIN + "\n", timeout=60)
    wrong = logon(m, "bob", "--pin", secret="999999", check=False)
    assert wrong.returncode == 1 and "The PIN is incorrect. Try again." in wrong.stderr
    logon(m, "bob", "--pin", secret=PIN)
    m.wait_event("explorer.ready", user="bob", session=1)
    assert [p["user"] for p in live(m, "explorer.exe")] == ["NTMODEL\\bob"]
    assert any(e["provider"] == "NGC Credential Provider" for e in m.events(event="logonui.submit"))
    m.ntctl("logoff")


def test_the_operator_may_not_end_a_sessions_applications_through_wmsg(lm: Machine) -> None:
    assert client_json(lm, WMSG_SHUTDOWN) == {"error": 5, "status": 0}  # ERROR_ACCESS_DENIED
    assert lm.events(event="winlogon.wmsg_denied") and lm.pid_of("winlogon.exe", 1)


def test_no_secret_is_written_anywhere_on_the_logon_path(lm: Machine) -> None:
    secrets = [p.encode() for p in PASSWORDS.values()] + [PIN.encode()]
    found = []
    for path in Path(lm.root).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [(str(path), s) for s in secrets if s in data]
            found += [(str(path), s) for s in secrets if s.decode().encode("utf-16-le") in data]
    assert found == []


def test_a_logon_while_the_machine_shuts_down_gets_a_clear_status(lm: Machine) -> None:
    m = lm
    session = json.loads(m.ntctl("session", "new", "--json", timeout=90).stdout)["session_id"]
    assert session == 2  # its winlogon's part of the shutdown stalls (the module's fault)
    m.wait_event("logon.ready", session=session)
    down = subprocess.Popen(
        [sys.executable, "-m", "ntctl", "shutdown", "--root", str(m.root)],
        cwd=REPO,
        env=m.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        m.wait_event("fault.stall_exit_windows", session=session)
        r = logon(m, "alice", "--session", str(session), check=False)
        assert r.returncode == 1
        assert (
            "the system is shutting down" in r.stderr and "STATUS_SHUTDOWN_IN_PROGRESS" in r.stderr
        )
    finally:
        down.wait(60)
    assert down.returncode == 0
    m.wait_stopped(20)


# -- faults that end a machine --------------------------------------------------------------
def test_csrss_of_her_session_killed_while_she_is_logged_on_is_0xEF(tmp_path: Path) -> None:
    m = boot(tmp_path / "m", setup=("alice", PASSWORDS["alice"]))
    try:
        logon(m, "alice")
        m.wait_event("explorer.ready", user="alice")
        csrss = m.pid_of("csrss.exe", 1)
        os.kill(csrss, signal.SIGKILL)
        m.wait_stopped()
        (check,) = m.events(event="bugcheck")
        assert check["code"] == "0x000000EF"
        assert m.latest_dump()["faulting_process"]["pid"] == csrss
    finally:
        m.stop()


def test_lsass_killed_during_logonuser_fails_the_logon_cleanly(tmp_path: Path) -> None:
    m = boot(tmp_path / "m", faults="lsass.exe:stall_logon=10", setup=("alice", "x"))
    try:
        ntctl_pw(m, PASSWORDS["bob"], "user", "add", "bob")
        typed = tmp_path / "typed"
        typed.write_text(PASSWORDS["bob"] + "\n")
        with typed.open() as keyboard:
            pending = subprocess.Popen(
                [sys.executable, "-m", "ntctl", "logon", "bob", "--password-stdin"]
                + ["--root", str(m.root)],
                cwd=REPO,
                env=m.env,
                stdin=keyboard,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        m.wait_event("fault.stall_logon", image="lsass.exe")
        os.kill(m.pid_of("lsass.exe", 0), signal.SIGKILL)
        out, err = pending.communicate(timeout=30)
        assert pending.returncode == 1
        assert "STATUS_PORT_DISCONNECTED" in err, out + err
        m.wait_event("logon.ready", timeout=10)  # back to the SAS
        m.wait_event("wininit.critical_process_died", timeout=10)  # the 60-second countdown
        again = logon(m, "bob", check=False)
        assert again.returncode == 1 and "0xC" in again.stderr
        assert not m.events(event="logon.success")
    finally:
        m.stop()
