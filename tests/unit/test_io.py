"""IoInitSystem's driver loading (processes/kernel/io.py) against the shipped SYSTEM.reg,
with the real configuration manager and object manager and a stand-in for the rest."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from nt.bugcodes import BugCode, string_pointer
from processes.kernel import io
from processes.kernel.bootopts import parse_boot_options
from processes.kernel.cm import ConfigurationManager
from processes.kernel.ke import EXIT_REBOOT
from processes.kernel.ob import ObjectManager

REPO = Path(__file__).resolve().parents[2]
SERVICES = r"HKLM\SYSTEM\ControlSet001\Services"


@dataclass
class FakePs:
    zygote_stopped: bool = False

    def stop_zygote(self) -> None:
        self.zygote_stopped = True


@dataclass
class FakeKernel:
    cm: Any
    root: Path
    options: Any
    ob: ObjectManager = field(default_factory=lambda: ObjectManager(None))
    ps: FakePs = field(default_factory=FakePs)
    log: Any = field(default_factory=lambda: structlog.get_logger("test"))
    stopping: bool = False
    exit_code: int = 0
    halt: threading.Event = field(default_factory=threading.Event)
    bugchecks: list = field(default_factory=list)
    io: Any = None

    shutdowns: list = field(default_factory=list)

    def raise_bugcheck(self, params, culprit, detected_by=None) -> None:
        self.stopping = True
        self.bugchecks.append(params)

    def request_shutdown(self, action: int, by: int) -> None:
        self.shutdowns.append((action, by))


@pytest.fixture
def make(tmp_path: Path):
    managers = []

    def boot(options: str = "", overlay: str = "") -> tuple[FakeKernel, list[dict]]:
        cm = ConfigurationManager(tmp_path / "config", structlog.get_logger("test"))
        managers.append(cm)
        overlays = []
        if overlay:
            path = tmp_path / "overlay.reg"
            path.write_text("Windows Registry Editor Version 5.00\n\n" + overlay)
            overlays.append(path)
        cm.init_system(REPO / "configs", overlays, False)
        opts = parse_boot_options(options)
        k = FakeKernel(cm, tmp_path, opts)
        with capture_logs() as logs:
            k.io = io.IoManager(k)
            k.io.init_system()
        return k, logs

    yield boot
    for cm in managers:
        cm.close()


def loaded(k: FakeKernel) -> list[str]:
    return [m["name"] for m in k.io.module_table()]


def fault(name: str, status: int = 0xC0000034, error_control: int | None = None) -> str:
    text = f"[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services\\{name}]\n"
    text += f'"NtModelLoadStatus"=dword:{status:08x}\n'
    if error_control is not None:
        text += f'"ErrorControl"=dword:{error_control:08x}\n'
    return text


def test_boot_drivers_load_in_group_and_tag_order_then_system_drivers(make) -> None:
    k, logs = make()
    names = loaded(k)
    boot = names[: names.index("Null")]
    assert boot[:5] == ["pci", "partmgr", "mountmgr", "volmgr", "storahci"]
    # GroupOrderList "System Bus Extender" = 3, 5, 7: partmgr, mountmgr, volmgr.
    assert boot.index("disk") < boot.index("FltMgr") < boot.index("fvevol") < boot.index("volsnap")
    assert boot.index("Ntfs") < boot.index("KSecDD") < boot.index("NDIS") < boot.index("Tcpip")
    system = names[len(boot) :]
    assert system[:2] == ["Null", "Beep"]  # Base tags 1, 3 (KSecDD, tag 2, is boot-start)
    assert system.index("tdx") < system.index("NetBT") < system.index("AFD")
    rows = {m["name"]: m for m in k.io.module_table()}
    assert rows["Ntfs"]["driver_type"] == "File System" and rows["Ntfs"]["start"] == 3
    assert rows["pci"]["image"] == r"\SystemRoot\System32\drivers\pci.sys"
    assert rows["pci"]["display_name"] == "PCI Bus Driver"
    assert [m["order"] for m in k.io.module_table()] == list(range(1, len(names) + 1))
    assert not [e for e in logs if e["event"] == "event.report"]


def test_each_driver_is_a_driver_object_file_systems_under_filesystem(make) -> None:
    k, _ = make()
    drivers = {e.name: e.type_name for e in k.ob.query_directory(r"\Driver")}
    assert drivers["pci"] == "Driver" and "Tcpip" in drivers and "Ntfs" not in drivers
    file_systems = {e.name for e in k.ob.query_directory(r"\FileSystem")}
    assert {"Ntfs", "Fs_Rec", "Msfs", "FltMgr", "NetBIOS"} <= file_systems


def test_sos_shows_each_driver_path_as_it_loads(make) -> None:
    k, logs = make("/SOS")
    shown = [e["text"] for e in logs if e["event"] == "boot.display"]
    assert shown[0] == r"multi(0)disk(0)rdisk(0)partition(1)\WINDOWS\System32\drivers\pci.sys"
    assert len(shown) == len(loaded(k))


def test_bootlog_writes_loaded_and_did_not_load_lines(make) -> None:
    k, _ = make("/BOOTLOG", fault("volsnap"))
    raw = (k.root / "C" / "Windows" / "ntbtlog.txt").read_bytes()
    assert raw[:2] == b"\xff\xfe" and raw.count(b"\xff\xfe") == 1
    lines = raw[2:].decode("utf-16-le").splitlines()
    assert r"Loaded driver \SystemRoot\System32\drivers\pci.sys" in lines
    assert r"Did not load driver \SystemRoot\System32\drivers\volsnap.sys" in lines


def test_safeboot_minimal_loads_only_what_safeboot_minimal_names(make) -> None:
    k, logs = make("/SAFEBOOT:MINIMAL")
    names = set(loaded(k))
    assert {"pci", "partmgr", "volmgr", "disk", "Ntfs", "Null", "KSecDD", "Msfs"} <= names
    assert not names & {"Tcpip", "NDIS", "AFD", "NetBT", "NetBIOS", "fvevol", "storahci"}
    skipped = {e["driver"] for e in logs if e["event"] == "io.driver_skipped"}
    assert "Tcpip" in skipped


def test_safeboot_network_adds_the_network_drivers(make) -> None:
    k, _ = make("/SAFEBOOT:NETWORK")
    assert {"Tcpip", "NDIS", "NetBT", "AFD", "NetBIOS", "volmgr"} <= set(loaded(k))


def test_error_control_normal_logs_7026_and_goes_on(make) -> None:
    k, logs = make("", fault("volsnap") + fault("Beep", error_control=0))
    assert "volsnap" not in loaded(k) and "Beep" not in loaded(k) and "Null" in loaded(k)
    (event,) = [e for e in logs if e["event"] == "event.report"]
    assert event["id"] == 7026 and event["source"] == "Service Control Manager"
    assert event["strings"] == ["volsnap"]  # ErrorControl 0 (Beep) is not reported
    assert event["message"].startswith(io.EVENT_7026)
    failed = [e for e in logs if e["event"] == "io.driver_failed"]
    assert {e["driver"]: e["status_name"] for e in failed} == {
        "volsnap": "STATUS_OBJECT_NAME_NOT_FOUND",
        "Beep": "STATUS_OBJECT_NAME_NOT_FOUND",
    }
    assert not k.stopping


@pytest.mark.parametrize("error_control", [2, 3])
def test_severe_or_critical_reboots_into_last_known_good(make, error_control: int) -> None:
    k, logs = make("", fault("disk", 0xC000007B, error_control))
    assert k.stopping and k.halt.is_set() and k.exit_code == EXIT_REBOOT
    assert k.ps.zygote_stopped and not k.bugchecks
    assert "volsnap" not in loaded(k)  # the boot stopped at disk
    marker = k.root / "C" / "Windows" / io.LKG_PENDING
    assert marker.exists()
    # The next boot's loader picks LastKnownGood, once.
    options = io.pending_last_known_good(k.root, parse_boot_options(""))
    assert options.lastknowngood and not marker.exists()
    assert [e["driver"] for e in logs if e["event"] == "io.last_known_good_reboot"] == ["disk"]


def test_severe_on_last_known_good_goes_on(make) -> None:
    k, _ = make("/LASTKNOWNGOOD", fault("disk", error_control=2))
    assert not k.stopping and "volsnap" in loaded(k)


def test_critical_on_last_known_good_is_0x5a_critical_service_failed(make) -> None:
    k, logs = make("/LASTKNOWNGOOD", fault("pci"))  # pci: ErrorControl 3
    (params,) = k.bugchecks
    assert params.code == BugCode.CRITICAL_SERVICE_FAILED == 0x5A
    assert params.parameters == (string_pointer("pci"), 0, 0, 0)
    assert params.decoded["p1_text"] == "pci"
    assert loaded(k) == []
    assert [e["id"] for e in logs if e["event"] == "event.report"] == [7026]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, r"\SystemRoot\System32\drivers\x.sys"),
        (r"System32\drivers\x.sys", r"\SystemRoot\System32\drivers\x.sys"),
        (r"%SystemRoot%\System32\drivers\x.sys", r"\SystemRoot\System32\drivers\x.sys"),
        (r"\SystemRoot\System32\x.sys", r"\SystemRoot\System32\x.sys"),
        (r"\??\C:\Vendor\x.sys", r"\??\C:\Vendor\x.sys"),
    ],
)
def test_image_path_as_the_loader_builds_it(value, expected) -> None:
    assert io.image_path("x", value) == expected


def test_the_scm_reverts_to_last_known_good_with_an_orderly_restart(make) -> None:
    k, _ = make()
    assert k.io.revert_to_last_known_good("Spooler", False, 812) is True
    assert k.shutdowns == [(1, 812)]  # SHUTDOWN_REBOOT, asked by services.exe's pid
    assert io.pending_last_known_good(k.root, k.options).lastknowngood
    assert not io.pending_last_known_good(k.root, k.options).lastknowngood  # used once


@pytest.mark.parametrize(("critical", "bugchecks"), [(False, 0), (True, 1)])
def test_on_last_known_good_a_critical_service_is_0x5a(make, critical, bugchecks) -> None:
    k, _ = make("/LASTKNOWNGOOD")
    assert k.io.revert_to_last_known_good("Spooler", critical, 812) is False
    assert not k.shutdowns and len(k.bugchecks) == bugchecks
    if critical:
        (params,) = k.bugchecks
        assert params.code == BugCode.CRITICAL_SERVICE_FAILED
        assert params.parameters[0] == string_pointer("Spooler")
