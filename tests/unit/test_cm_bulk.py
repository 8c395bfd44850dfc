"""The configuration manager at the scale of a real hive: staged imports, chunked
exports, byte-exact round trips of what real exports hold, and the first boot from a
binary SYSTEM hive (--system-hive). No processes: the kernel's CM with a client state."""

from __future__ import annotations

from pathlib import Path

import pytest

from nt import regfile, regsnap, regwire
from nt.regpath import RegistryError
from nt.status import NtStatus
from processes.kernel.cm import ConfigurationManager
from tests.regfwriter import Key, build_hive, set_seq
from tests.regscale import REPO, control_set, count, with_config


class Log:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def _add(self, event: str, **fields: object) -> None:
        self.events.append((event, fields))

    info = warning = error = _add


@pytest.fixture
def cm(tmp_path: Path) -> ConfigurationManager:
    m = ConfigurationManager(tmp_path / "config", Log())
    m.init_system(REPO / "configs", [], False)
    yield m
    m.close()


# What real exports hold, in regedit's own layout: importing it and exporting the key
# again must give these bytes back exactly.
EDGE = (
    "Windows Registry Editor Version 5.00\r\n"
    "\r\n"
    "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Edge]\r\n"
    '@="default"\r\n'
    '"NoNul"=hex(1):61,00,62,00\r\n'
    '"MultiTrailing"=hex(7):61,00,00,00,00,00,00,00,00,00\r\n'
    '"MultiPlain"=hex(7):61,00,00,00,62,00,00,00,00,00\r\n'
    '"DevProp"=hex(ffff0012):01,02,03\r\n'
    '"Prop200000"=hex(200000):00\r\n'
    '"Odd"=hex(2):41\r\n'
    '"ShortQword"=hex(b):01,02\r\n'
    '"Dword"=dword:0000001f\r\n'
    '"LineFeed"=hex(1):61,00,0a,00,62,00,00,00\r\n'
    '"Wrapped"=hex:00,01,02,03,04,05,06,07,08,09,0a,0b,0c,0d,0e,0f,10,11,12,13,14,\\\r\n'
    "  15,16,17,18,19,1a,1b,1c,1d,1e,1f,20,21,22,23,24,25,26,27,28,29,2a,2b,2c,2d,\\\r\n"
    "  2e,2f\r\n"
    "\r\n"
    "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Edge\\Sub]\r\n"
    '"Quote"="a \\"b\\" \\\\c"\r\n'
    "\r\n"
)


def staged_import(cm: ConfigurationManager, state: dict, ops: list, limit: int = 300) -> dict:
    handle = cm.import_begin(state)
    for blob in regwire.pack_ops(ops, limit):
        cm.import_stage(state, handle, blob)
    return cm.import_commit(state, handle)


def chunked_export(cm: ConfigurationManager, state: dict, path: str) -> str:
    handle, _ = cm.export_begin(state, path)
    records = []
    while True:
        chunk, done = cm.export_read(state, handle)
        records += regwire.unpack_records(chunk)
        if done:
            return regsnap.dumps(records)


def test_edge_cases_round_trip_byte_for_byte(cm: ConfigurationManager) -> None:
    state: dict = {}
    staged_import(cm, state, regfile.parse(b"\xff\xfe" + EDGE.encode("utf-16-le")))
    assert chunked_export(cm, state, r"HKLM\SOFTWARE\Edge") == EDGE
    assert cm.export(r"HKLM\SOFTWARE\Edge") == EDGE
    assert state == {"cm_imports": {}, "cm_exports": {}}


def test_strings_with_line_feeds_case_and_deletions(cm: ConfigurationManager) -> None:
    text = (
        "Windows Registry Editor Version 5.00\n\n"
        "[HKEY_LOCAL_MACHINE\\SOFTWARE\\T\\Services]\n"
        '"Raw"="line one\r\nline two\nthree"\n'
        '"Wine"="a\\nb\\rc"\n'
        '"Gone"="x"\n'
        "[HKEY_LOCAL_MACHINE\\SOFTWARE\\T\\services\\Sub]\n"
        '"V"=dword:1\n'
        "[HKEY_LOCAL_MACHINE\\SOFTWARE\\T\\SERVICES]\n"
        '"Gone"=-\n'
        "[HKEY_LOCAL_MACHINE\\SOFTWARE\\T\\Old]\n"
        "[-HKEY_LOCAL_MACHINE\\SOFTWARE\\T\\Old]\n"
    )
    staged_import(cm, {}, regfile.parse(text))
    assert cm.enum_keys(r"HKLM\SOFTWARE\T") == ["Services"]  # one key, first spelling
    assert cm.query_value(r"HKLM\SOFTWARE\T\Services", "Raw") == (1, "line one\r\nline two\nthree")
    assert cm.query_value(r"HKLM\SOFTWARE\T\Services", "Wine") == (1, "a\nb\rc")
    assert [v[0] for v in cm.enum_values(r"HKLM\SOFTWARE\T\Services")] == ["Raw", "Wine"]
    again = cm.export(r"HKLM\SOFTWARE\T")
    assert regfile.parse(again) == regfile.parse(cm.export(r"HKLM\SOFTWARE\T"))
    assert "[HKEY_LOCAL_MACHINE\\SOFTWARE\\T\\Services\\Sub]" in again


def test_a_failure_mid_file_applies_nothing_and_drops_the_stage(cm: ConfigurationManager) -> None:
    ops = [regfile.SetKey(rf"HKEY_LOCAL_MACHINE\SOFTWARE\Many\K{i}") for i in range(400)]
    ops.insert(200, regfile.SetValue(r"HKEY_LOCAL_MACHINE\SOFTWARE\Missing", "v", 4, 1))
    state: dict = {}
    with pytest.raises(RegistryError) as info:
        staged_import(cm, state, ops)
    assert info.value.status == NtStatus.STATUS_OBJECT_NAME_NOT_FOUND and "op 201" in str(
        info.value
    )
    assert not cm.key_exists(r"HKLM\SOFTWARE\Many")
    assert state["cm_imports"] == {}


@pytest.mark.parametrize(
    "blob",
    [
        b"\xc1",  # not msgpack
        b"\x80",  # a map, not an array
        bytes([0x91, 0x93, 0, 0xA1, 0x41, 0xA0]),  # [[0, "A", ""]]: three items, not five
        bytes([0x91, 0x95, 7, 0xA1, 0x41, 0xA0, 0, 0xC4, 0]),  # kind 7
        bytes([0x91, 0x95, 2, 0xA1, 0x41, 0xA0, 0xFF, 0xA0]),  # data is a string
    ],
)
def test_a_malformed_chunk_is_refused_and_stages_nothing(cm: ConfigurationManager, blob) -> None:
    state: dict = {}
    handle = cm.import_begin(state)
    with pytest.raises(RegistryError) as info:
        cm.import_stage(state, handle, blob)
    assert info.value.status == NtStatus.STATUS_INVALID_PARAMETER
    assert cm.import_commit(state, handle) == {"keys": 0, "values": 0}


def test_handles_are_per_connection_and_checked(cm: ConfigurationManager) -> None:
    mine, other = {}, {}
    handle = cm.import_begin(mine)
    with pytest.raises(RegistryError) as info:
        cm.import_commit(other, handle)
    assert info.value.status == NtStatus.STATUS_INVALID_HANDLE
    cm.import_abort(mine, handle)
    with pytest.raises(RegistryError):
        cm.export_read(mine, 999)
    for _ in range(4):
        cm.import_begin(mine)
    with pytest.raises(RegistryError) as info:
        cm.import_begin(mine)
    assert info.value.status == NtStatus.STATUS_INSUFFICIENT_RESOURCES


# --- first boot from a binary hive ------------------------------------------------------


def marker_hive(tmp_path: Path, dirty: bool = False) -> Path:
    root = with_config()
    root.add("Model").values.append(("Prop", 0xFFFF0012, b"\x01\x02\x03"))
    data = build_hive(root)
    path = tmp_path / "SYSTEM"
    path.write_bytes(set_seq(data, 3, 2) if dirty else data)
    return path


def test_first_boot_builds_system_from_the_binary_hive(tmp_path: Path) -> None:
    log = Log()
    m = ConfigurationManager(tmp_path / "config", log)
    m.init_system(REPO / "configs", [], False, system_hive=marker_hive(tmp_path))
    try:
        assert m.query_value(r"HKLM\SYSTEM\Model", "Prop") == (0xFFFF0012, b"\x01\x02\x03")
        assert m.query_value(r"HKLM\SYSTEM\Select", "Current") == (4, 1)
        assert m.key_exists(r"HKLM\SOFTWARE\Microsoft")  # SOFTWARE.reg still imported
        files = [f["file"] for e, f in log.events if e == "cm.import"]
        assert "--system-hive" in files and "SYSTEM.reg" not in files
    finally:
        m.close()


def test_a_value_past_the_data_limit_is_left_out_and_said(tmp_path: Path) -> None:
    root = with_config()
    root.add("Huge").values += [("Big", 3, bytes((1 << 20) + 1)), ("Small", 4, b"\x01\0\0\0")]
    (tmp_path / "SYSTEM").write_bytes(build_hive(root))
    log = Log()
    m = ConfigurationManager(tmp_path / "config", log)
    m.init_system(REPO / "configs", [], False, system_hive=tmp_path / "SYSTEM")
    try:
        assert [v[0] for v in m.enum_values(r"HKLM\SYSTEM\Huge")] == ["Small"]
        said = [f for e, f in log.events if e == "divergence"]
        assert said and said[0]["value"] == "Big" and said[0]["size"] == (1 << 20) + 1
    finally:
        m.close()


def test_a_refused_hive_leaves_the_data_root_fresh(tmp_path: Path) -> None:
    m = ConfigurationManager(tmp_path / "config", Log())
    with pytest.raises(RegistryError) as info:
        m.init_system(REPO / "configs", [], False, system_hive=marker_hive(tmp_path, dirty=True))
    assert info.value.status == NtStatus.STATUS_REGISTRY_CORRUPT
    assert "no transaction log" in str(info.value)
    assert not (tmp_path / "config" / "SYSTEM").exists()


def test_a_failing_first_boot_import_removes_the_hives_it_made(tmp_path: Path) -> None:
    root = Key("ROOT")
    root.add("Bad").values.append(("v" * 20000, 1, b"x\0"))  # value name past 16,383
    (tmp_path / "SYSTEM").write_bytes(build_hive(root))
    m = ConfigurationManager(tmp_path / "config", Log())
    with pytest.raises(RegistryError) as info:
        m.init_system(REPO / "configs", [], False, system_hive=tmp_path / "SYSTEM")
    assert info.value.status == NtStatus.STATUS_NAME_TOO_LONG
    assert not any((tmp_path / "config").glob("SYSTEM*"))


def test_first_boot_from_a_real_scale_hive(tmp_path: Path) -> None:
    """15k+ keys, as a real SYSTEM hive: read, imported in one transaction, readable."""
    root = with_config()
    control_set(root, name="ControlSet002")
    keys, values = count(root)
    assert keys >= 15000 and values >= 36000
    (tmp_path / "SYSTEM").write_bytes(build_hive(root))
    log = Log()
    m = ConfigurationManager(tmp_path / "config", log)
    m.init_system(REPO / "configs", [], False, system_hive=tmp_path / "SYSTEM")
    try:
        read = next(f for e, f in log.events if e == "cm.system_hive_read")
        assert (read["keys"], read["values"]) == (keys, values)
        assert len(m.enum_keys(r"HKLM\SYSTEM\ControlSet002\Services")) == 760
        pci = r"HKLM\SYSTEM\ControlSet002\Enum\PCI"
        dev = pci + "\\" + m.enum_keys(pci)[0]
        props = (
            dev
            + "\\"
            + m.enum_keys(dev)[0]
            + r"\Properties\{a8b865dd-2e3d-4094-ad97-e593a70c75d6}\0000"
        )
        vtype, data = m.query_value(props, "")
        assert vtype == 0xFFFF0012 and len(data) == 24
    finally:
        m.close()


def test_a_windows_10_shaped_export_round_trips(cm: ConfigurationManager) -> None:
    """The svcorder fixture's export (its own regedit-format writer, 760 services): the
    codec writes it back byte for byte, and every value lands in the hive unchanged."""
    from tests.fixtures.win10 import export_bytes, win10_control_set

    data = export_bytes(win10_control_set(), "ControlSet007")
    ops = regfile.parse(data)
    assert regfile.dump_bytes(ops) == data
    staged_import(cm, {}, ops, limit=1 << 20)
    stored = {
        (path.casefold(), name): (type_, raw)
        for path, values in cm.registry.snapshot(r"HKLM\SYSTEM\ControlSet007")
        for name, type_, raw in values
    }
    for op in ops:
        if isinstance(op, regfile.SetValue):
            assert stored[(op.path.casefold(), op.name)] == (op.type, op.stored())
    assert len(cm.enum_keys(r"HKLM\SYSTEM\ControlSet007\Services")) >= 700
