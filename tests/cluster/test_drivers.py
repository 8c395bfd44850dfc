"""IoInitSystem on a real machine: drivers in group and tag order, /SOS, /BOOTLOG, SafeBoot,
ErrorControl (7026, LastKnownGood, 0x5A) and `ntctl drivers`."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from nt.svcorder import compute_order
from tests.cluster.conftest import Machine
from tests.fixtures.win10 import export_bytes, win10_control_set

pytestmark = pytest.mark.cluster

SERVICES = r"HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Services"


def overlay(tmp_path: Path, *faults: tuple[str, int, int]) -> str:
    """A .reg overlay that makes drivers fail to load (processes/kernel/io.py FAULT_VALUE)."""
    text = "Windows Registry Editor Version 5.00\n\n"
    for name, status, error_control in faults:
        text += (
            f"[{SERVICES}\\{name}]\n"
            f'"NtModelLoadStatus"=dword:{status:08x}\n'
            f'"ErrorControl"=dword:{error_control:08x}\n\n'
        )
    path = tmp_path / "faults.reg"
    path.write_text(text)
    return str(path)


def drivers(m: Machine) -> list[dict]:
    return json.loads(m.ntctl("drivers", "--json").stdout)


def test_windows_10_configuration_loads_its_drivers_in_order_with_sos_bootlog_7026(
    machine_factory, tmp_path
) -> None:
    """A reg export of a 760-service Windows-10-shaped control set, one driver failing."""
    config = win10_control_set()
    export = tmp_path / "controlset.reg"
    export.write_bytes(export_bytes(config))  # UTF-16 LE, CRLF, regedit's wrapped hex
    faults = overlay(tmp_path, ("volsnap", 0xC0000034, 1))
    m = machine_factory()
    assert m.boot("--boot", "/SOS /BOOTLOG", "--reg", str(export), "--reg", faults).returncode == 0
    # The order nt/svcorder.py gives for this configuration, boot pass then system pass
    # (Ntfs, the boot volume's file system, loads in the boot pass whatever its Start).
    entries = [
        replace(e, start=0) if e.name == "Ntfs" else e
        for e in config.entries()
        if e.type in (1, 2, 8)
    ]
    args = (entries, config.group_list, config.group_order)
    boot = [n for n in compute_order(*args, start_types={0}, pull_dependencies=False).sequence]
    boot.remove("volsnap")
    system = compute_order(*args, start_types={1}, running=boot, pull_dependencies=False)
    rows = drivers(m)
    expected = boot + list(system.sequence)
    names = [r["module_name"] for r in rows][: len(expected)]
    assert names == expected and len(names) > 150
    # then, once services.exe runs, the auto-start drivers it loads (NtLoadDriver), if any yet
    auto = {e.name for e in entries if e.start == 2}
    assert {r["module_name"] for r in rows[len(expected) :]} <= auto
    assert rows[0]["reason"].startswith("group 4 of 69 (Boot Bus Extender), tag ")
    # /SOS: each driver's path on the boot screen, in load order.
    shown = [e["text"] for e in m.events(event="boot.display", image="System")]
    paths = [t.rsplit("\\", 1)[-1] for t in shown if t.endswith(".sys")]
    # (the SCM's NtLoadDriver of auto-start drivers such as Http shows after them)
    shown_names = [p.removesuffix(".sys") for p in paths if p != "volsnap.sys"]
    assert shown_names[: len(names)] == names
    # /BOOTLOG: ntbtlog.txt in Windows' words.
    log = (m.root / "C" / "Windows" / "ntbtlog.txt").read_bytes().decode("utf-16").splitlines()
    assert r"Loaded driver \SystemRoot\System32\drivers\pci.sys" in log
    assert r"Did not load driver \SystemRoot\System32\drivers\volsnap.sys" in log
    (event,) = m.events(event="event.report", id=7026)
    assert event["strings"] == ["volsnap"] and event["source"] == "Service Control Manager"
    # Driver objects, like WinObj shows them.
    objects = json.dumps(json.loads(m.ntctl("obj", "\\Driver", "--json").stdout))
    assert "pci" in objects and "Ntfs" not in objects
    table = m.ntctl("drivers").stdout.splitlines()
    assert table[1].startswith("Module Name  Display Name") and table[3].startswith(names[0])


def test_safeboot_minimal_loads_only_the_listed_drivers(machine_factory) -> None:
    m = machine_factory()
    assert m.boot("--boot", "/SAFEBOOT:MINIMAL").returncode == 0
    names = {r["module_name"] for r in drivers(m)}
    assert {"pci", "volmgr", "disk", "Ntfs", "Null"} <= names
    assert not names & {"Tcpip", "NDIS", "AFD", "NetBT"}
    assert m.events(event="io.driver_skipped", driver="Tcpip")


def test_critical_driver_failure_reboots_into_lkg_then_stops_with_0x5a(
    machine_factory, tmp_path
) -> None:
    m = machine_factory()
    faults = overlay(tmp_path, ("disk", 0xC000007B, 3))
    assert m.boot("--reg", faults).returncode != 0
    m.wait_stopped()
    dump = m.latest_dump()
    assert dump["bugcheck_code"] == 0x5A and dump["bugcheck_name"] == "CRITICAL_SERVICE_FAILED"
    assert dump["decoded"]["p1_text"] == "disk" and dump["parameters"][1:] == [0, 0, 0]
    # The boot before the STOP was the LastKnownGood one the first failure asked for.
    boots = [p for p in (m.root / "logs").iterdir() if p.is_dir() and not p.is_symlink()]
    assert len(boots) == 2
    # Boot ids sort by second only, so the first boot is the one the dump does not name.
    (before,) = [p for p in boots if p.name != dump["boot_id"]]
    first = [json.loads(line) for f in before.glob("System.*.jsonl") for line in f.open()]
    assert [e["driver"] for e in first if e["event"] == "io.last_known_good_reboot"] == ["disk"]
    assert m.events(event="cm.last_known_good")
