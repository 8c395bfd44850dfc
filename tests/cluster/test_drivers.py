"""IoInitSystem on a real machine: drivers in group and tag order, /SOS, /BOOTLOG, SafeBoot,
ErrorControl (7026, LastKnownGood, 0x5A) and `ntctl drivers`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cluster.conftest import Machine

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


def test_boot_loads_drivers_in_order_with_sos_bootlog_and_7026(machine_factory, tmp_path) -> None:
    m = machine_factory()
    faults = overlay(tmp_path, ("volsnap", 0xC0000034, 1))
    assert m.boot("--boot", "/SOS /BOOTLOG", "--reg", faults).returncode == 0
    rows = drivers(m)
    names = [r["module_name"] for r in rows]
    assert names[:6] == ["pci", "partmgr", "mountmgr", "volmgr", "storahci", "disk"]
    assert "volsnap" not in names and names.index("Tcpip") < names.index("Null")
    assert (
        rows[0]["reason"] == "group 4 of 69 (Boot Bus Extender), tag 5 (1 of 1 in GroupOrderList)"
    )
    # /SOS: each driver's path on the boot screen, in load order.
    shown = [e["text"] for e in m.events(event="boot.display", image="System")]
    paths = [t.rsplit("\\", 1)[-1] for t in shown if t.endswith(".sys")]
    assert [p.removesuffix(".sys").lower() for p in paths if "volsnap" not in p] == [
        n.lower() for n in names
    ]
    # /BOOTLOG: ntbtlog.txt in Windows' words.
    log = (m.root / "C" / "Windows" / "ntbtlog.txt").read_bytes().decode("utf-16").splitlines()
    assert r"Loaded driver \SystemRoot\System32\drivers\pci.sys" in log
    assert r"Did not load driver \SystemRoot\System32\drivers\volsnap.sys" in log
    (event,) = m.events(event="event.report", id=7026)
    assert event["strings"] == ["volsnap"] and event["source"] == "Service Control Manager"
    # Driver objects, like WinObj shows them.
    objects = json.loads(m.ntctl("obj", "\\Driver", "--json").stdout)
    assert "pci" in json.dumps(objects) and "Ntfs" not in json.dumps(objects)
    table = m.ntctl("drivers").stdout.splitlines()
    assert table[1].startswith("Module Name  Display Name") and table[3].startswith("pci ")


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
    boots = sorted(p for p in (m.root / "logs").iterdir() if p.is_dir() and not p.is_symlink())
    assert len(boots) == 2
    first = [json.loads(line) for f in boots[0].glob("System.*.jsonl") for line in f.open()]
    assert [e["driver"] for e in first if e["event"] == "io.last_known_good_reboot"] == ["disk"]
    assert m.events(event="cm.last_known_good")
