"""ScmCreateServiceDatabase over a registry accessor, and a whole Windows-10-shaped
auto-start under the fake clock (processes/services/database.py, start.py)."""

from __future__ import annotations

import struct

import pytest

from nt.status import NtStatus
from ports.svcctl import SERVICE_RUNNING, SERVICE_START_PENDING, SERVICE_STOPPED
from processes.services.database import (
    ConfigError,
    FailureActions,
    ScAction,
    create_service_db,
    parse_failure_actions,
)
from processes.services.scm import ScmCore
from tests.fixtures.win10 import win10_control_set
from tests.unit.scm_fakes import FakeChannel, FakeClock, FakeKernel

CS = r"HKLM\SYSTEM\ControlSet001"


class Missing(Exception):
    status = NtStatus.STATUS_OBJECT_NAME_NOT_FOUND


class FakeRegistry:
    def __init__(self, keys: dict[str, list[tuple[str, int, object]]]) -> None:
        self.keys = {k.lower(): v for k, v in keys.items()}
        self.children: dict[str, list[str]] = {}
        for path in keys:
            parent, _, leaf = path.rpartition("\\")
            self.children.setdefault(parent.lower(), []).append(leaf)

    def enum_values(self, path: str) -> list[tuple[str, int, object]]:
        if path.lower() not in self.keys:
            raise Missing(path)
        return list(self.keys[path.lower()])

    def enum_keys(self, path: str) -> list[str]:
        if path.lower() not in self.keys and path.lower() not in self.children:
            raise Missing(path)
        return list(self.children.get(path.lower(), []))


def svc_key(name: str, *values: tuple[str, int, object]) -> dict:
    base = [("Type", 4, 0x10), ("Start", 4, 2), ("ErrorControl", 4, 1)]
    return {rf"{CS}\Services\{name}": base + list(values)}


def test_failure_actions_layout_round_trip():
    fa = FailureActions(86400, (ScAction(1, 60000), ScAction(1, 120000), ScAction(0, 0)))
    blob = fa.to_bytes()
    assert blob[:20] == struct.pack("<5I", 86400, 0, 0, 3, 20)
    assert parse_failure_actions(blob) == fa
    with pytest.raises(ConfigError):
        parse_failure_actions(blob[:-1])  # cActions says 3, 2.9 follow
    with pytest.raises(ConfigError):
        parse_failure_actions(FailureActions(0, (ScAction(9, 0),)).to_bytes())


def test_every_value_is_read():
    fa = FailureActions(3600, (ScAction(1, 0),)).to_bytes()
    reg = FakeRegistry(
        {
            rf"{CS}\Control": [("ServicesPipeTimeout", 4, 60000), ("AutoStartDelay", 4, 30)],
            rf"{CS}\Control\ServiceGroupOrder": [("List", 7, ["Base", "Event Log"])],
            rf"{CS}\Control\GroupOrderList": [
                ("Base", 3, struct.pack("<3I", 2, 2, 1)),
                ("Short", 3, b"\x05\0\0\0"),
            ],
            **svc_key(
                "Spooler",
                ("ImagePath", 2, r"%SystemRoot%\System32\spoolsv.exe"),
                ("DisplayName", 1, "Print Spooler"),
                ("Description", 1, "Spools jobs."),
                ("Group", 1, "SpoolerGroup"),
                ("Tag", 4, 3),
                ("DependOnService", 7, ["RPCSS", "http", "", "+TDI"]),
                ("DependOnGroup", 7, []),
                ("ObjectName", 1, "LocalSystem"),
                ("DelayedAutostart", 4, 1),
                ("FailureActions", 3, fa),
                ("FailureCommand", 1, "x.cmd"),
                ("FailureActionsOnNonCrashFailures", 4, 1),
                ("PreshutdownTimeout", 4, 5000),
                ("RequiredPrivileges", 7, ["SeTcbPrivilege"]),
                ("ServiceSidType", 4, 1),
            ),
            rf"{CS}\Services\Spooler\Parameters": [("ServiceDll", 2, "x.dll")],
        }
    )
    db = create_service_db(reg, CS)
    s = db.get("spooler")
    assert (s.display_name, s.description, s.group, s.tag) == (
        "Print Spooler",
        "Spools jobs.",
        "SpoolerGroup",
        3,
    )
    assert s.depend_on_service == ["RPCSS", "http"] and s.depend_on_group == ["TDI"]
    assert s.delayed_autostart and s.failure_actions_on_non_crash_failures
    assert s.failure_actions.reset_period_s == 3600 and s.failure_actions.command == "x.cmd"
    assert (s.preshutdown_timeout_ms, s.required_privileges, s.service_sid_type) == (
        5000,
        ["SeTcbPrivilege"],
        1,
    )
    assert s.status.win32_exit_code == 1077
    assert s.service_dll == "x.dll"
    assert db.group_list == ["Base", "Event Log"] and db.group_tags == {"base": [2, 1]}
    assert (db.pipe_timeout_ms, db.auto_start_delay_s) == (60000, 30)


def test_keys_without_type_start_or_error_control_are_skipped_silently_and_bad_ones_reported():
    reg = FakeRegistry(
        {
            rf"{CS}\Services\NoType": [("Start", 4, 2), ("ErrorControl", 4, 1)],
            rf"{CS}\Services\{{GUID}}": [
                ("Type", 4, 0x10),
                ("Start", 4, 2),
                ("ErrorControl", 4, 1),
            ],
            **svc_key("BadStart", ("Start", 4, 7)),
            **svc_key("BadFA", ("FailureActions", 3, b"\x00" * 12 + b"\x05\0\0\0" + b"\0" * 4)),
            **svc_key("Ok"),
        }
    )
    db = create_service_db(reg, CS)
    assert [s.name for s in db.services.values()] == ["Ok"]
    assert db.skipped == ["NoType"]
    assert set(db.problems) == {"BadFA", "BadStart"}
    core = ScmCore(db, FakeKernel(), FakeClock())
    assert [e.event_id for e in core.reported] == [7000, 7000]


@pytest.fixture(scope="module")
def win10_registry():
    config = win10_control_set()
    return FakeRegistry({rf"{CS}\{k.path}": k.values for k in config.keys}), config


def test_700_service_database(win10_registry):
    reg, config = win10_registry
    db = create_service_db(reg, CS)
    assert len(db) >= 700
    assert db.get("EventLog").service_type == 0x20
    assert db.get("Dhcp").service_dll is not None
    assert len(db.group_list) == 69


def test_windows_10_auto_start_keeps_the_invariants(win10_registry):
    """Every auto-start service reaches RUNNING; a dependency is RUNNING before its
    dependent's start begins; DependOnGroup waits for a running member; delayed ones
    come after every auto-start service settled."""
    reg, _config = win10_registry
    db = create_service_db(reg, CS)
    clock, kernel = FakeClock(), FakeKernel()
    core = ScmCore(db, kernel, clock)
    core.mark_drivers_loaded(
        [s.name for s in db.services.values() if s.is_driver and s.start in (0, 1)]
    )
    began: dict[str, set[str]] = {}  # service → services RUNNING when its start control went out
    channels: dict[int, FakeChannel] = {}
    complete_at: list[int] = []
    core.on_auto_start_complete = lambda: complete_at.append(len(began))

    def pump() -> None:
        progress = True
        while progress:
            progress = False
            for image in list(core.images.values()):
                if not image.connected:  # the process (or lsass, ServiceCurrent 0) connects
                    pid = image.pid or 600
                    channels[pid] = FakeChannel()
                    core.control_connect(image.service_current, pid, channels[pid])
                    progress = True
            for pid, ch in list(channels.items()):
                packets, ch.packets = ch.packets, []
                for p in packets:
                    progress = True
                    if p.service_name:
                        running = {
                            s.name
                            for s in db.services.values()
                            if s.status.current_state == SERVICE_RUNNING
                        }
                        began[p.service_name] = running
                    core.control_reply(pid, p.sequence, 0)
                    svc = db.get(p.service_name) if p.service_name else None
                    if svc is not None and svc.status.current_state == SERVICE_START_PENDING:
                        core.set_service_status(
                            svc.service_tag,
                            {
                                **svc.status.as_dict(),
                                "current_state": SERVICE_RUNNING,
                                "controls_accepted": 1,
                            },
                        )

    core.auto_start()
    pump()
    assert core.auto.complete
    clock.advance(db.auto_start_delay_s)
    for _ in range(len(core.auto.delayed) + 1):
        pump()
    assert core.auto.delayed_complete
    autos = [s for s in db.services.values() if s.is_auto_start]
    failed = {s.name for s in autos if s.status.current_state == SERVICE_STOPPED}
    assert failed == {"VendorUpdater"}  # its dependency was uninstalled: 1075 for it alone
    assert db.get("VendorUpdater").status.win32_exit_code == 1075
    for s in autos:
        if s.name in failed:
            continue
        assert s.status.current_state == SERVICE_RUNNING, s.name
        before = began[s.name]
        for dep in s.depend_on_service:
            d = db.get(dep)
            assert d.is_driver or d.name in before, (s.name, dep)
        for group in s.depend_on_group:
            members = {m.name for m in db.services.values() if m.group.lower() == group.lower()}
            assert members & (before | {m for m in members if db.get(m).is_driver}), (s.name, group)
    delayed = core.auto.delayed
    assert delayed and complete_at == [len(began) - len(delayed)]
    assert all(
        kernel.created[i]["low"] for i in range(len(kernel.created)) if False
    )  # priorities: see core tests


def test_record_values_round_trip():
    from processes.services.database import read_service, record_values

    fa = FailureActions(60, (ScAction(1, 1000), ScAction(3, 0)), reboot_msg="bye", command="x.cmd")
    first = read_service(
        "Svc",
        {
            name.lower(): (vtype, data)
            for name, vtype, data in [
                ("Type", 4, 0x20),
                ("Start", 4, 2),
                ("ErrorControl", 4, 1),
                ("ImagePath", 2, r"%SystemRoot%\System32\svchost.exe -k netsvcs -p"),
                ("DisplayName", 1, "A Service"),
                ("Group", 1, "NetworkProvider"),
                ("DependOnService", 7, ["RpcSs"]),
                ("DependOnGroup", 7, ["TDI"]),
                ("DelayedAutostart", 4, 1),
                ("FailureActions", 3, fa.to_bytes()),
                ("FailureCommand", 1, "x.cmd"),
                ("RebootMessage", 1, "bye"),
                ("RequiredPrivileges", 7, ["SeTcbPrivilege"]),
            ]
        },
    )
    again = read_service("Svc", {n.lower(): (t, d) for n, t, d in record_values(first)})
    assert again == first
