"""ntctl chaos through the user's entry point: a small seeded campaign on real machines,
and Ctrl+C in the middle of one. Nothing may be left running either way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from ntctl.chaosplan import BY_NAME, draw, select_victims
from ntctl.chaosrun import boot_logs, session_of, sessions_of
from tests.cluster.conftest import REPO

pytestmark = pytest.mark.cluster

# Seed 12 over these victims draws: System idle (no bugcheck, the machine gone), winlogon
# idle by SIGKILL (0xEF), winlogon 0.4 ms into its life by NtTerminateProcess (suspended:
# 0xC000021A "Windows Logon Process"), csrss@1 at 42 ms by NtTerminateProcess.
SEED, VICTIMS, TRIALS = 12, "System,winlogon,csrss", 4
BOOT_IDLE = ("boot", "idle")
# tests/unit/test_chaos.py pins these draws
LOGON_SEED, LOGON_VICTIMS, LOGON_PHASES = (
    2659,
    "winlogon,lsass,logonui,userinit,explorer",
    (
        "idle",
        "logon",
    ),
)


def chaos(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ntctl", "chaos", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


@dataclass
class Campaign:
    out: str
    err: str
    report: Path
    scratch: Path
    result: dict
    trials: dict[int, dict]


def campaign(tmp_path: Path, *args: str) -> Campaign:
    """Run ``ntctl chaos ARGS --report --scratch`` to its end; every trial judged, none an
    anomaly, the runner's exit status 0."""
    report, scratch = tmp_path / "report.json", tmp_path / "scratch"
    p = chaos(*args, "--report", str(report), "--scratch", str(scratch))
    out, err = p.communicate(timeout=240)
    result = json.loads(report.read_text())
    trials = {t["index"]: t for t in result["trials"]}
    assert p.returncode == 0, f"{out}\n{err}\n" + json.dumps(result["trials"], indent=1)
    assert result["summary"]["anomalies"] == 0
    return Campaign(out, err, report, scratch, result, trials)


def left_running(scratch: Path) -> list[int]:
    """Every process on this machine in a session of a root under ``scratch`` (the
    runner is gone: its orphans would be init's children now, so look at all of them)."""
    sessions = set().union(*(sessions_of(r) for r in scratch.iterdir() if r.is_dir()))
    return [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and session_of(int(p.name)) in sessions
    ]


def test_a_seeded_campaign_checks_each_trial_against_the_table(tmp_path: Path) -> None:
    draws = [draw(SEED, i, select_victims(VICTIMS), BOOT_IDLE) for i in range(TRIALS)]
    assert [d.victim for d in draws] == ["System", "winlogon", "winlogon", "csrss@1"]
    c = campaign(
        tmp_path,
        *("--seed", str(SEED), "--trials", str(TRIALS), "--victims", VICTIMS, "--jobs", "2"),
        *("--phase", ",".join(BOOT_IDLE), "--keep"),
    )
    out, trials = c.out, c.trials
    assert sorted(trials) == list(range(TRIALS)) and not c.result["interrupted"]
    assert trials[0]["outcome"] == "no bugcheck, machine gone"  # the kernel: no dump
    assert trials[1]["outcome"] == "0xEF" and trials[1]["state"]["critical"]
    for t in trials.values():
        assert t["verdict"] in ("ok", "missed"), t
        if t["verdict"] == "ok":
            assert t["outcome"] in t["predicted"]
            assert t["kill"]["pid"] > 0
    for name in ("System", "winlogon", "csrss@1"):
        assert name in out  # a row of the matrix
    assert f"{TRIALS} trials:" in out
    assert not left_running(c.scratch)


def test_session0_victims_and_the_shutdown_phase_follow_the_table(tmp_path: Path) -> None:
    """Seed 10 draws: lsass 1.96 ms and services.exe 5.85 ms into `ntctl shutdown`,
    services.exe idle by NtTerminateProcess (0xEF, raised inside the call), and the Task
    Scheduler's svchost idle by SIGKILL (the SCM's recovery: no bugcheck, machine up)."""
    victims, phases = "services,svchost,lsass,winlogon", ("idle", "shutdown")
    draws = [draw(10, i, select_victims(victims), phases) for i in range(4)]
    assert [(d.victim, d.phase) for d in draws] == [
        ("lsass", "shutdown"),
        ("services", "shutdown"),
        ("services", "idle"),
        ("svchost", "idle"),
    ]
    c = campaign(
        tmp_path,
        *("--seed", "10", "--trials", "4", "--victims", victims, "--jobs", "2"),
        *("--phase", ",".join(phases)),
    )
    out, trials = c.out, c.trials
    assert trials[2]["outcome"] == "0xEF" and trials[2]["state"]["terminated"]
    assert trials[3]["outcome"] == "no bugcheck" and trials[3]["state"]["critical"] is False
    for t in (trials[0], trials[1]):  # the shutdown phase: judged, or the kernel was first
        assert t["verdict"] in ("ok", "missed"), t
        if t["verdict"] == "ok":
            assert t["outcome"] in t["predicted"] and "stopping" in t["state"]
    assert trials[0]["outcome"] in ("no bugcheck, machine gone", "missed")  # lsass: never 0xEF
    assert "shutdown" in out
    assert not left_running(c.scratch)


def test_logon_victims_and_the_logon_phase_follow_the_table(tmp_path: Path) -> None:
    """Seed 2659 draws: LogonUI at the notice (idle: winlogon starts a new one), lsass
    35 ms after `ntctl logon` attached (LsaLogonUser in flight: the logon fails with
    STATUS_PORT_DISCONNECTED, wininit's countdown starts), LogonUI 0.1 ms after it (at
    the notice or on the tiles: a new LogonUI), and userinit 0.2 ms after its creation
    (still suspended: the logon fails). Each logon trial makes its user through lsass
    before the kill."""
    draws = [draw(LOGON_SEED, i, select_victims(LOGON_VICTIMS), LOGON_PHASES) for i in range(4)]
    assert [(d.victim, d.phase) for d in draws] == [
        ("logonui", "idle"),
        ("lsass", "logon"),
        ("logonui", "logon"),
        ("userinit", "logon"),
    ]
    c = campaign(
        tmp_path,
        *("--seed", str(LOGON_SEED), "--trials", "4", "--victims", LOGON_VICTIMS),
        *("--phase", ",".join(LOGON_PHASES), "--jobs", "2", "--keep"),
    )
    out, err, report, scratch, trials = c.out, c.err, c.report, c.scratch, c.trials
    notice, lsass, logonui, userinit = (trials[i] for i in range(4))
    assert notice["verdict"] == "ok" and notice["outcome"] == "no bugcheck"
    assert "logon" not in notice  # idle at the notice: nobody logs on
    for t in (lsass, logonui, userinit):  # judged, or the victim was gone at the moment
        assert t["verdict"] in ("ok", "missed"), t
        assert t["outcome"] in ("no bugcheck", "missed")
    if lsass["verdict"] == "ok":
        assert lsass["outcome"] == "no bugcheck" and lsass["logon"]["exit"] == 1
        if lsass["state"]["lsa_logon"]:
            assert "STATUS_PORT_DISCONNECTED" in lsass["logon"]["message"]
    if userinit["verdict"] == "ok" and userinit["state"]["resumed"] is False:
        assert userinit["logon"]["exit"] == 1
    assert "logon" in out
    assert not left_running(scratch)
    # no trial's password (drawn fresh, "Ch4os-..." on stdin) reached a log, a hive, a
    # dump, the report or the output
    assert "Ch4os-" not in report.read_text() + out + err
    marks = (b"Ch4os-", "Ch4os-".encode("utf-16-le"))
    written = [
        str(f)
        for f in scratch.rglob("*")
        if f.is_file() and any(mark in f.read_bytes() for mark in marks)
    ]
    assert written == []


def test_ctrl_c_stops_the_machines_and_writes_a_partial_report(tmp_path: Path) -> None:
    report, scratch = tmp_path / "report.json", tmp_path / "scratch"
    victim = BY_NAME["winlogon"]
    p = chaos(
        *("--seed", "3", "--trials", "2", "--jobs", "2", "--victims", victim.name),
        *("--phase", "idle", "--report", str(report), "--scratch", str(scratch)),
    )
    deadline = time.monotonic() + 120
    while not any(boot_logs(r) for r in scratch.glob("trial-*")):  # a machine is booting
        assert p.poll() is None and time.monotonic() < deadline, p.communicate()
        time.sleep(0.02)
    os.kill(p.pid, signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, f"{out}\n{err}"
    result = json.loads(report.read_text())
    assert result["interrupted"]
    assert sorted(result["not_run"] + [t["index"] for t in result["trials"]]) == [0, 1]
    assert result["not_run"], "Ctrl+C came while both machines were booting"
    assert "Interrupted" in out + err
    assert not left_running(scratch)
