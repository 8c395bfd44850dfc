"""The views of a real machine: the boot console, blame / critical-chain / plot, logs -n."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

from tests.cluster.conftest import BOOT_TIMEOUT, REPO, Machine

pytestmark = pytest.mark.cluster
SVG = "{http://www.w3.org/2000/svg}"
WIDTH = 90


def test_the_boot_console_shows_milestones_not_every_event(machine_factory) -> None:
    """Foreground boot: banner, Phase 1 bar, one line per milestone; Ctrl+C shuts down."""
    m = machine_factory()
    env = dict(m.env, COLUMNS=str(WIDTH))
    proc = subprocess.Popen(
        [sys.executable, "-m", "ntctl", "boot", "--root", str(m.root)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        for line in proc.stdout:  # the launcher prints as the boot goes; no sleeps
            lines.append(line.rstrip("\n"))
            if line.startswith("Press Ctrl+Alt+Del"):
                break
        proc.send_signal(signal.SIGINT)  # Ctrl+C: an orderly NtShutdownSystem
        rest, err = proc.communicate(timeout=BOOT_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines += rest.splitlines()
    shown = "\n".join(lines) + "\n--- stderr:\n" + err
    assert proc.returncode == 0, shown
    assert lines[0].startswith("ntmodel — Windows NT (win10)"), shown
    assert any("Starting Windows" in ln and "100%" in ln for ln in lines), shown
    for milestone in (
        "Windows subsystem ready in session 0",
        "Windows subsystem ready in session 1",
        "Windows has checked the file system and found no problems.",
        "Press Ctrl+Alt+Del to log on (session 1)",
        "The machine was shut down.",
    ):
        assert milestone in lines, f"{milestone!r} missing from:\n{shown}"
    assert not [ln for ln in lines if " proc.create " in ln or " port.connect " in ln], shown
    assert all(len(ln) <= WIDTH for ln in lines), f"a console line wrapped:\n{shown}"
    m.wait_stopped()


def _settled_blame(machine: Machine, timeout: float = 30) -> dict:
    """blame once every unit is ready: session 0's services are still starting when the
    machine is up (logon.ready), and delayed ones start later still."""
    machine.wait_event("scm.auto_start_complete", timeout=timeout)
    deadline = time.monotonic() + timeout
    while True:
        blame = json.loads(machine.ntctl("blame", "--json").stdout)
        if all(u["took_ms"] is not None for u in blame["units"]) or time.monotonic() > deadline:
            return blame  # (each ntctl call is itself the pause between two looks)


def test_blame_critical_chain_and_plot_of_a_running_machine(machine: Machine) -> None:
    blame = _settled_blame(machine)
    units = {u["unit"]: u for u in blame["units"]}
    assert {"System", "smss.exe", "csrss.exe@0", "csrss.exe@1", "winlogon.exe"} <= set(units)
    assert all(u["took_ms"] is not None for u in units.values())
    assert units["winlogon.exe"]["ready_event"] == "logon.ready"
    assert "winlogon.exe" in machine.ntctl("blame").stdout

    chain = json.loads(machine.ntctl("critical-chain", "--json").stdout)
    names = [link["unit"] for link in chain["links"]]
    assert names[0] == "System" and names[-1] == "winlogon.exe" and "csrss.exe@1" in names
    total = sum(link["added_ms"] for link in chain["links"])
    assert total == pytest.approx(units["winlogon.exe"]["ready_ms"], abs=0.5)
    text = machine.ntctl("critical-chain", "wininit.exe").stdout
    assert "wininit.exe @" in text and "└─csrss.exe@0" in text

    svg = ET.fromstring(machine.ntctl("plot").stdout)
    rows = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "unit"]
    assert {g.get("data-unit") for g in rows} == set(units)
    for g in rows:
        classes = [r.get("class") for r in g.iter(f"{SVG}rect")]
        assert "activating" in classes and float(g.find(f"{SVG}rect").get("width")) > 0

    lines = machine.ntctl("logs", "-n", "5").stdout.splitlines()
    assert len(lines) == 5

    for verb in ("blame", "critical-chain", "plot", "logs"):  # a boot id that does not exist
        r = machine.ntctl(verb, "--boot", "19990101-000000-dead", check=False)
        assert r.returncode == 2, verb
        assert "no logs for boot '19990101-000000-dead'" in r.stderr and not r.stdout


def test_blame_and_plot_of_a_boot_that_crashed_half_way(machine_factory) -> None:
    m = machine_factory(faults="winlogon.exe:exit_before_critical=0xC0000005")
    assert m.boot().returncode != 0
    m.wait_stopped()
    blame = json.loads(m.ntctl("blame", "--json").stdout)
    assert blame["bugcheck"]["code"] == "0xC000021A"
    units = {u["unit"]: u for u in blame["units"]}
    assert units["winlogon.exe"]["ready_ms"] is None
    assert units["winlogon.exe"]["exit_status"] == "0xC0000005"
    assert units["csrss.exe@1"]["ready_ms"] is not None
    assert "The boot ended in a bugcheck" in m.ntctl("blame").stdout
    svg = ET.fromstring(m.ntctl("plot").stdout)
    never = [
        g.get("data-unit")
        for g in svg.iter(f"{SVG}g")
        if any(r.get("class") == "never" for r in g.iter(f"{SVG}rect"))
    ]
    # winlogon never; session 0 (its smss instance and csrss, wininit starting lsass and
    # services.exe, lsass opening the SAM) starts in parallel and may not have finished when
    # smss stops the machine
    session0 = {"smss.exe@0", "csrss.exe@0", "wininit.exe", "lsass.exe", "services.exe", "lsm.exe"}
    assert "winlogon.exe" in never and set(never) <= {"winlogon.exe"} | session0
    chain = m.ntctl("critical-chain", "winlogon").stdout
    assert "winlogon.exe @" in chain and "(not ready)" in chain


def test_a_verb_without_a_machine_says_how_to_start_one(tmp_path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "ntctl", "ps", "--root", str(tmp_path)],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1
    assert "the machine is not running" in r.stderr and "./run.sh" in r.stderr
