"""LastKnownGood through the SCM (issue 7, issue 9): RNotifyBootConfigStatus(TRUE) saves the
current control set (``sc boot ok``), booting with /LASTKNOWNGOOD or after
RNotifyBootConfigStatus(FALSE) (``sc boot bad``) uses it, so changes made since are gone;
an auto-start service with ErrorControl CRITICAL that fails at boot restarts the machine
into LastKnownGood, and on LastKnownGood stops it with 0x5A CRITICAL_SERVICE_FAILED.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cluster.conftest import Machine
from tests.cluster.test_sessions import wait_rebooted

pytestmark = pytest.mark.cluster
SELECT = "HKLM\\SYSTEM\\Select"
TEST_KEY = "HKLM\\SYSTEM\\CurrentControlSet\\Control\\LkgTest"


def select(m: Machine) -> dict[str, int]:
    rows = json.loads(m.ntctl("reg", "query", SELECT, "--json").stdout)["values"]
    return {r["name"]: r["data"] for r in rows}


def marker(m: Machine) -> str | None:
    r = m.ntctl("reg", "query", TEST_KEY, "--value", "Marker", "--json", check=False)
    return json.loads(r.stdout)["values"][0]["data"] if r.returncode == 0 else None


def test_an_accepted_boot_is_last_known_good_and_later_changes_are_lost(machine_factory) -> None:
    m = machine_factory()
    assert m.boot().returncode == 0
    m.wait_event("scm.ready", image="services.exe")
    assert m.ntctl("sc", "boot", "ok").stdout == "[SC] NotifyBootConfigStatus SUCCESS\n"
    again = m.ntctl("sc", "boot", "ok", check=False)
    assert again.returncode == 1 and again.stdout.startswith(
        "[SC] NotifyBootConfigStatus FAILED 1076:"
    )
    assert m.ntctl("sc", "boot", "maybe", check=False).returncode == 2
    assert select(m) == {"Current": 1, "Default": 1, "Failed": 0, "LastKnownGood": 2}
    assert m.events(event="cm.boot_accepted", control_set=1, last_known_good=2)
    m.ntctl("reg", "add", TEST_KEY, "/v", "Marker", "/d", "after the first acceptance")

    # sc boot bad (RNotifyBootConfigStatus FALSE): 7007, an orderly restart into it
    first = m.log_dir.name
    m.ntctl("sc", "boot", "bad")
    wait_rebooted(m, first)
    old = m.root / "logs" / first
    events = [json.loads(line) for f in old.glob("*.jsonl") for line in f.read_text().splitlines()]
    (e7007,) = [e for e in events if e.get("event_id") == 7007]
    assert e7007["message"] == (
        "The system reverted to its last known good configuration.  The system is restarting...."
    )
    assert [e["phase"] for e in events if e["event"] == "shutdown.phase"] == ["smss", "kernel"]
    assert marker(m) is None  # ControlSet002: the copy taken at acceptance
    assert select(m) == {"Current": 2, "Default": 1, "Failed": 1, "LastKnownGood": 2}

    # this boot is accepted too (a new copy, ControlSet003); a change after it is lost
    # when the next boot asks for LastKnownGood (./run.sh --boot /LASTKNOWNGOOD)
    m.wait_event("scm.ready", image="services.exe")
    m.ntctl("sc", "boot", "ok")
    assert select(m)["LastKnownGood"] == 3
    m.ntctl("reg", "add", TEST_KEY, "/v", "Marker", "/d", "after the second acceptance")
    m.ntctl("shutdown")
    m.wait_stopped(30)
    assert m.boot("--boot", "/LASTKNOWNGOOD").returncode == 0
    assert marker(m) is None
    assert select(m) == {"Current": 3, "Default": 1, "Failed": 2, "LastKnownGood": 3}
    assert not m.events(event="bugcheck")


def test_a_critical_service_failing_at_boot_reverts_then_stops_with_0x5a(
    machine_factory, tmp_path: Path
) -> None:
    reg = tmp_path / "critical.reg"
    reg.write_text(
        "Windows Registry Editor Version 5.00\r\n\r\n"
        "[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services\\VendorCore]\r\n"
        '"Type"=dword:00000010\r\n"Start"=dword:00000002\r\n"ErrorControl"=dword:00000003\r\n'
        '"ImagePath"="C:\\\\Vendor\\\\quitter.exe"\r\n"ObjectName"="LocalSystem"\r\n'
    )
    m = machine_factory("quitter.exe:exit_at_once")
    m.boot("--reg", str(reg))
    m.wait_stopped(60)
    dump = m.latest_dump()
    assert dump["bugcheck_code"] == 0x5A and dump["bugcheck_name"] == "CRITICAL_SERVICE_FAILED"
    assert dump["decoded"]["p1_text"] == "VendorCore"
    boots = [p for p in (m.root / "logs").iterdir() if p.is_dir() and not p.is_symlink()]
    assert len(boots) == 2  # the failing boot, then the LastKnownGood one that stopped
    (before,) = [p for p in boots if p.name != dump["boot_id"]]
    first = [json.loads(line) for f in before.glob("*.jsonl") for line in f.open()]
    ids = [e.get("event_id") for e in first if e["event"] == "event.report"]
    assert 7000 in ids and 7007 in ids
    assert [e["service"] for e in first if e["event"] == "io.last_known_good_reboot"] == [
        "VendorCore"
    ]
    assert m.events(event="cm.last_known_good")
