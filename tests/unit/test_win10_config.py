"""A Windows-10-shaped control set at real scale (tests/fixtures/win10.py): regedit's
format, read by nt/regfile.py and the hive, and ordered by nt/svcorder.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from nt import regfile
from nt.hive import Registry
from nt.svcorder import ERROR_SERVICE_DEPENDENCY_DELETED, compute_order
from tests.fixtures.win10 import export_bytes, win10_control_set

SERVICES = r"HKLM\SYSTEM\CurrentControlSet\Services"


@pytest.fixture(scope="module")
def config():
    return win10_control_set()


@pytest.fixture(scope="module")
def exported(config) -> bytes:
    return export_bytes(config)


def test_export_is_utf16le_with_bom_crlf_and_regedit_wrapped_hex(exported: bytes) -> None:
    assert exported[:2] == b"\xff\xfe"
    text = exported[2:].decode("utf-16-le")
    assert text.startswith("Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\")
    assert "\n" not in text.replace("\r\n", "")
    lines = text.split("\r\n")
    continued = [i for i, line in enumerate(lines) if line.endswith("\\")]
    assert len(continued) > 1000
    assert all(lines[i + 1].startswith("  ") for i in continued)
    hex_lines = [line for line in lines if line.startswith("  ")]
    assert max(len(line) for line in hex_lines) <= 80


def test_export_has_real_scale_and_windows_10_shapes(config) -> None:
    services = config.services()
    assert len(services) >= 700
    images = [str(v.get("ImagePath", "")) for v in services.values()]
    assert sum("svchost.exe -k netsvcs -p" in i for i in images) > 10
    assert sum(v.get("DelayedAutostart") == 1 for v in services.values()) > 10
    assert sum(v.get("Type") in (1, 2) and "Tag" in v for v in services.values()) > 100
    assert sum("DependOnGroup" in v for v in services.values()) >= 3
    assert config.group_list[0] == "System Reserved" and len(config.group_list) == 69
    assert len(config.group_order) >= 10


def test_regfile_reads_every_value_of_the_export(config, exported: bytes) -> None:
    ops = regfile.parse(exported)
    values = [op for op in ops if isinstance(op, regfile.SetValue)]
    assert len(values) == sum(len(k.values) for k in config.keys)
    odd = {op.name: (op.type, op.data) for op in values if op.path.endswith("\\Properties")}
    assert odd["DEVPKEY_200000"] == (0x200000, b"\x01\x02\x03\x04")
    assert odd["DEVPKEY_ffff0012"][0] == 0xFFFF0012
    assert odd["NoNul"] == (1, "NoNul")
    assert odd["MultiTrailing"] == (7, ["a", "b"])
    assert odd["MultiNoTerminator"] == (7, ["a", "b"])


def test_hive_imports_the_whole_export_atomically(tmp_path: Path, exported: bytes) -> None:
    reg = Registry(tmp_path)
    try:
        select = [
            regfile.SetKey(r"HKLM\SYSTEM\Select"),
            regfile.SetValue(r"HKLM\SYSTEM\Select", "Current", 4, 1),
        ]
        reg.import_ops(select + regfile.parse(exported))
        assert len(reg.enum_keys(SERVICES)) >= 700
        assert reg.query_value(SERVICES + r"\Tcpip", "Group") == (1, "PNP_TDI")
    finally:
        reg.close()


def test_order_of_the_windows_10_configuration(config) -> None:
    entries = config.entries()
    boot = compute_order(
        entries, config.group_list, config.group_order, start_types={0}, pull_dependencies=False
    )
    system = compute_order(
        entries,
        config.group_list,
        config.group_order,
        start_types={1},
        running=boot.sequence,
        pull_dependencies=False,
    )
    loaded = set(boot.sequence) | set(system.sequence)
    auto = compute_order(entries, config.group_list, config.group_order, running=loaded)
    seq = auto.sequence
    # Windows' own services in their groups' order; RpcSs after what it depends on.
    assert seq.index("RpcEptMapper") < seq.index("RpcSs") < seq.index("EventLog")
    assert seq.index("EventLog") < seq.index("Audiosrv") < seq.index("Spooler")
    assert auto.reasons["Power"].group_index == 52  # "Plugplay" matches "PlugPlay"
    assert auto.reasons["nsi"].pulled_by == "Dhcp"
    delayed = [n for n in seq if auto.reasons[n].delayed]
    assert delayed and seq[-len(delayed) :] == tuple(delayed)
    # The one leftover dependency fails that service alone.
    assert {n: e.code for n, e in auto.errors.items()} == {
        "VendorUpdater": ERROR_SERVICE_DEPENDENCY_DELETED
    }
    # Boot drivers: pci's group before disk's, tag order inside System Bus Extender.
    assert boot.sequence.index("pci") < boot.sequence.index("disk")
    sbe = [n for n in boot.sequence if boot.reasons[n].group == "System Bus Extender"]
    tags = [boot.reasons[n].tag_index or 10**6 for n in sbe]
    assert tags == sorted(tags)


def test_enum_devices_carry_the_device_property_types(tmp_path: Path) -> None:
    config = win10_control_set(services=700, devices=20)
    ops = regfile.parse(export_bytes(config))
    props = [op for op in ops if isinstance(op, regfile.SetValue) and "\\Properties\\" in op.path]
    assert len(props) == 20 * 5
    assert {op.type for op in props} == {0xFFFF0012, 0xFFFF0010, 0xFFFF0007, 0xFFFF2012}
    assert all(op.name == "" for op in props)  # the key's default value, as PnP stores them
    hwids = [op.data for op in ops if isinstance(op, regfile.SetValue) and op.name == "HardwareID"]
    assert len(hwids) == 20 and all(
        h[0].startswith(("PCI\\", "ACPI\\", "USB\\", "HID\\", "SCSI\\")) for h in hwids
    )
