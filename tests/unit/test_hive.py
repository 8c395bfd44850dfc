"""nt/hive.py: the SQLite hive engine (reliability-security.md §5, §6.7 R3-R9)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from nt import regfile
from nt.hive import SQLITE_VERSION, Registry, RegistryError, sqlite_wal_reset_bug
from nt.regfile import DeleteKey, DeleteValue, SetKey, SetValue
from nt.status import NtStatus

REPO = Path(__file__).resolve().parents[2]
CSRSS = (
    r"%SystemRoot%\system32\csrss.exe ObjectDirectory=\Windows SharedSection=1024,3072,512 "
    r"Windows=On SubSystemType=Windows ServerDll=basesrv,1 "
    r"ServerDll=winsrv:UserServerDllInitialization,3 ServerDll=winsrv:ConServerDllInitialization,2 "
    r"ProfileControl=Off MaxRequestThreads=16"
)
T = r"HKLM\SOFTWARE\Test"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return tmp_path / "C" / "Windows" / "System32" / "config"


@pytest.fixture
def reg(config: Path) -> Iterator[Registry]:
    r = Registry(config)
    yield r
    r.close()


def status_of(call, *args, **kwargs) -> NtStatus:
    with pytest.raises(RegistryError) as info:
        call(*args, **kwargs)
    return info.value.status


# --- CRUD -----------------------------------------------------------------------------------


def test_open_creates_every_hive_file_and_reports_it(config: Path) -> None:
    with Registry(config) as r:
        assert {e.hive for e in r.recovery_events} == {
            "SYSTEM",
            "SOFTWARE",
            "SAM",
            "SECURITY",
            "DEFAULT",
        }
        assert all(e.event == "hive.created" for e in r.recovery_events)
    assert sorted(p.name for p in config.iterdir()) == [
        "DEFAULT",
        "SAM",
        "SECURITY",
        "SOFTWARE",
        "SYSTEM",
    ]
    with Registry(config) as r:
        assert r.recovery_events == []


def test_create_key_makes_parents_and_reports_whether_it_was_new(reg: Registry) -> None:
    assert reg.create_key(T + r"\A\B\C") is True
    assert reg.create_key(T + r"\A\B\C") is False
    assert reg.key_exists(T + r"\A\B")
    assert reg.enum_keys(T) == ["A"]


def test_set_query_enum_and_delete_values(reg: Registry) -> None:
    reg.create_key(T)
    reg.set_value(T, "Zeta", 1, "z")
    reg.set_value(T, "Alpha", 4, 7)
    reg.set_value(T, "", 7, ["a", "b"])
    reg.set_value(T, "Blob", 3, bytearray(b"\x00\x01"))
    reg.set_value(T, "Q", 11, 2**63)
    assert reg.query_value(T, "Alpha") == (4, 7)
    assert reg.query_value(T, "") == (7, ["a", "b"])
    assert reg.query_value(T, "Blob") == (3, b"\x00\x01")
    assert [n for n, _, _ in reg.enum_values(T)] == [
        "Zeta",
        "Alpha",
        "",
        "Blob",
        "Q",
    ]  # creation order
    reg.set_value(T, "zeta", 1, "again")  # overwrite keeps the first spelling and position
    assert reg.enum_values(T)[0] == ("Zeta", 1, "again")
    reg.delete_value(T, "ALPHA")
    assert status_of(reg.query_value, T, "Alpha") == NtStatus.STATUS_OBJECT_NAME_NOT_FOUND
    assert status_of(reg.delete_value, T, "Alpha") == NtStatus.STATUS_OBJECT_NAME_NOT_FOUND


def test_enum_keys_is_case_insensitive_order(reg: Registry) -> None:
    for name in ("beta", "Alpha", "gamma", "ALPHA2"):
        reg.create_key(rf"{T}\{name}")
    assert reg.enum_keys(T) == ["Alpha", "ALPHA2", "beta", "gamma"]


def test_query_key_counts_and_last_write_time_moves(reg: Registry) -> None:
    reg.create_key(T + r"\Sub")
    before = reg.query_key(T)
    reg.set_value(T, "V", 4, 1)
    after = reg.query_key(T)
    assert (after.name, after.subkeys, after.values, after.volatile) == ("Test", 1, 1, False)
    assert after.last_write_time > before.last_write_time > 116444736000000000
    assert dict(after)["subkeys"] == 1


def test_missing_key_and_value_are_object_name_not_found(reg: Registry) -> None:
    assert status_of(reg.query_value, T, "x") == NtStatus.STATUS_OBJECT_NAME_NOT_FOUND
    assert status_of(reg.set_value, T, "x", 1, "y") == NtStatus.STATUS_OBJECT_NAME_NOT_FOUND
    assert status_of(reg.enum_keys, T) == NtStatus.STATUS_OBJECT_NAME_NOT_FOUND
    assert reg.key_exists(T) is False
    assert reg.key_exists(r"HKU\S-1-5-21-1\Software") is False


def test_delete_key_refuses_a_key_with_subkeys_but_delete_tree_removes_all(reg: Registry) -> None:
    reg.create_key(T + r"\A\B")
    reg.set_value(T + r"\A\B", "v", 1, "x")
    assert status_of(reg.delete_key, T + r"\A") == NtStatus.STATUS_ACCESS_DENIED
    assert reg.key_exists(T + r"\A\B")
    reg.delete_key(T + r"\A\B")
    reg.delete_key(T + r"\A")
    reg.create_key(T + r"\X\Y\Z")
    reg.delete_tree(T + r"\X")
    assert reg.enum_keys(T) == []
    assert status_of(reg.delete_tree, T + r"\X") == NtStatus.STATUS_OBJECT_NAME_NOT_FOUND


def test_hive_roots_cannot_be_deleted(reg: Registry) -> None:
    assert status_of(reg.delete_key, r"HKLM\SOFTWARE") == NtStatus.STATUS_ACCESS_DENIED
    assert status_of(reg.delete_tree, r"HKLM\SYSTEM") == NtStatus.STATUS_ACCESS_DENIED
    assert status_of(reg.set_value, "HKLM", "x", 1, "y") == NtStatus.STATUS_ACCESS_DENIED


def test_roots_enumerate_their_hives(reg: Registry) -> None:
    assert reg.enum_keys("HKLM") == ["HARDWARE", "SAM", "SECURITY", "SOFTWARE", "SYSTEM"]
    assert reg.enum_keys("HKEY_USERS") == [".DEFAULT"]
    assert reg.enum_keys("\\Registry") == ["MACHINE", "USER"]


def test_data_persists_across_close_and_reopen(config: Path) -> None:
    with Registry(config) as r:
        r.create_key(T)
        r.set_value(T, "Kept", 2, "%SystemRoot%")
    with Registry(config) as r:
        assert r.query_value(T, "Kept") == (2, "%SystemRoot%")


def test_calls_after_close_are_invalid_handle(config: Path) -> None:
    r = Registry(config)
    r.close()
    assert status_of(r.create_key, T) == NtStatus.STATUS_INVALID_HANDLE
    r.open()
    assert r.create_key(T) is True
    r.close()


def test_concurrent_writers_are_serialised_and_all_acknowledged(reg: Registry) -> None:
    reg.create_key(T)
    errors: list[BaseException] = []

    def work(tag: int) -> None:
        try:
            for i in range(50):
                reg.set_value(T, "Shared", 4, tag * 1000 + i)
                reg.set_value(T, f"Own{tag}", 4, i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [reg.query_value(T, f"Own{n}")[1] for n in range(4)] == [49] * 4
    assert reg.query_value(T, "Shared")[1] % 1000 == 49


# --- names and paths ------------------------------------------------------------------------


def test_key_and_value_names_are_case_insensitive(reg: Registry) -> None:
    reg.create_key(r"HKLM\SOFTWARE\MixedCase\Sub")
    reg.set_value(r"hklm\software\MIXEDCASE\sub", "Value", 4, 1)
    assert reg.query_value(r"HKEY_LOCAL_MACHINE\Software\mixedcase\SUB", "VALUE") == (4, 1)
    assert (
        reg.open_key(r"hklm\software\mixedcase\sub") == r"HKEY_LOCAL_MACHINE\SOFTWARE\MixedCase\Sub"
    )
    assert reg.create_key(r"HKLM\SOFTWARE\MIXEDCASE") is False


def test_non_ascii_names_fold_with_casefold_not_just_ascii(reg: Registry) -> None:
    reg.create_key(r"HKLM\SOFTWARE\Ärger\ΣΊΣΥΦΟΣ")
    assert reg.key_exists(r"HKLM\SOFTWARE\ärger\σίσυφος")
    assert reg.create_key(r"HKLM\SOFTWARE\ÄRGER\σίσυφοσ") is False
    reg.set_value(r"HKLM\SOFTWARE\Ärger", "Größe", 1, "x")
    assert reg.query_value(r"HKLM\SOFTWARE\ÄRGER", "GRÖSSE") == (1, "x")
    assert reg.enum_keys(r"HKLM\SOFTWARE") == ["Ärger"]


@pytest.mark.parametrize(
    "path",
    [
        r"\Registry\Machine\SOFTWARE\Test",
        r"\REGISTRY\MACHINE\software\test",
        r"HKEY_LOCAL_MACHINE\SOFTWARE\Test",
        r"HKLM\SOFTWARE\Test",
        r"SOFTWARE\Test",
    ],
)
def test_every_path_spelling_reaches_the_same_key(reg: Registry, path: str) -> None:
    reg.create_key(T)
    reg.set_value(T, "v", 4, 5)
    assert reg.query_value(path, "v") == (4, 5)


def test_user_hive_and_aliases(reg: Registry) -> None:
    reg.create_key(r"HKU\.DEFAULT\Console")
    reg.set_value(r"HKU\.DEFAULT\Console", "FaceName", 1, "Consolas")
    assert reg.query_value(r"HKCU\Console", "FaceName") == (1, "Consolas")
    assert reg.query_value(r"\Registry\User\.DEFAULT\Console", "FaceName") == (1, "Consolas")
    reg.create_key(r"HKCR\.txt")
    assert reg.key_exists(r"HKLM\SOFTWARE\Classes\.txt")


def test_current_control_set_follows_select_current(reg: Registry) -> None:
    assert status_of(reg.query_value, r"HKLM\SYSTEM\CurrentControlSet\Control", "x") == (
        NtStatus.STATUS_OBJECT_NAME_NOT_FOUND
    )
    reg.create_key(r"HKLM\SYSTEM\Select")
    reg.set_value(r"HKLM\SYSTEM\Select", "Current", 4, 2)
    reg.create_key(r"HKLM\SYSTEM\CurrentControlSet\Control")
    assert reg.enum_keys(r"HKLM\SYSTEM") == ["ControlSet002", "Select"]
    reg.set_value(r"HKLM\SYSTEM\CurrentControlSet\Control", "Which", 4, 2)
    reg.create_key(r"HKLM\SYSTEM\ControlSet001\Control")
    reg.set_value(r"HKLM\SYSTEM\ControlSet001\Control", "Which", 4, 1)
    assert reg.query_value(r"\Registry\Machine\SYSTEM\currentcontrolset\Control", "Which")[1] == 2
    reg.set_value(r"HKLM\SYSTEM\Select", "Current", 4, 1)
    assert reg.current_control_set() == 1
    assert reg.query_value(r"HKLM\SYSTEM\CurrentControlSet\Control", "Which")[1] == 1


@pytest.mark.parametrize(
    "path",
    [r"HKLM\SOFTWARE\\Test", "HKLM\\SOFTWARE\\Test\\", "HKLM\\SOFTWARE\\Te\0st", "", r"HKXX\Test"],
)
def test_bad_paths_are_object_name_invalid(reg: Registry, path: str) -> None:
    assert status_of(reg.create_key, path) == NtStatus.STATUS_OBJECT_NAME_INVALID


def test_dot_dot_is_an_ordinary_name(reg: Registry) -> None:
    reg.create_key(T + r"\..")
    assert reg.enum_keys(T) == [".."]
    assert reg.enum_keys(r"HKLM\SOFTWARE") == ["Test"]


def test_unknown_hive_is_object_name_not_found(reg: Registry) -> None:
    assert status_of(reg.create_key, r"HKLM\NOSUCHHIVE\X") == NtStatus.STATUS_OBJECT_NAME_NOT_FOUND


# --- limits -------------------------------------------------------------------------------------


def test_key_name_limit_is_255(reg: Registry) -> None:
    reg.create_key(T + "\\" + "k" * 255)
    assert status_of(reg.create_key, T + "\\" + "k" * 256) == NtStatus.STATUS_NAME_TOO_LONG


def test_value_name_limit_is_16383(reg: Registry) -> None:
    reg.create_key(T)
    reg.set_value(T, "v" * 16383, 4, 1)
    assert status_of(reg.set_value, T, "v" * 16384, 4, 1) == NtStatus.STATUS_NAME_TOO_LONG
    assert status_of(reg.set_value, T, "a\0b", 4, 1) == NtStatus.STATUS_OBJECT_NAME_INVALID


def test_at_most_32_levels_are_created_per_call_and_nothing_is_left(reg: Registry) -> None:
    reg.create_key(T)
    assert status_of(reg.create_key, T + "\\x" * 33) == NtStatus.STATUS_INVALID_PARAMETER
    assert reg.enum_keys(T) == []
    reg.create_key(T + "\\x" * 32)


def test_depth_limit_is_512_levels(reg: Registry) -> None:
    path = r"HKLM\SOFTWARE"
    for _ in range(16):
        path += "\\d" * 32
        reg.create_key(path)
    assert reg.query_key(path).name == "d"  # 512 levels below the hive root
    assert status_of(reg.create_key, path + "\\d") == NtStatus.STATUS_INVALID_PARAMETER
    reg.delete_tree(r"HKLM\SOFTWARE\d")
    assert reg.enum_keys(r"HKLM\SOFTWARE") == []


def test_data_limit_is_1_mib(reg: Registry) -> None:
    reg.create_key(T)
    reg.set_value(T, "Big", 3, b"x" * (1 << 20))
    assert status_of(reg.set_value, T, "Bigger", 3, b"x" * ((1 << 20) + 1)) == (
        NtStatus.STATUS_INVALID_PARAMETER
    )
    assert (
        status_of(reg.set_value, T, "Str", 1, "x" * (1 << 19)) == NtStatus.STATUS_INVALID_PARAMETER
    )
    assert [n for n, _, _ in reg.enum_values(T)] == ["Big"]


# --- type checks --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "data", "status"),
    [
        (4, "1", NtStatus.STATUS_OBJECT_TYPE_MISMATCH),
        (4, True, NtStatus.STATUS_OBJECT_TYPE_MISMATCH),
        (4, -1, NtStatus.STATUS_INVALID_PARAMETER),
        (4, 2**32, NtStatus.STATUS_INVALID_PARAMETER),
        (4, b"\x01\x02\x03", NtStatus.STATUS_INVALID_PARAMETER),
        (11, 2**64, NtStatus.STATUS_INVALID_PARAMETER),
        (1, 5, NtStatus.STATUS_OBJECT_TYPE_MISMATCH),
        (1, b"x", NtStatus.STATUS_OBJECT_TYPE_MISMATCH),
        (1, "a\0b", NtStatus.STATUS_INVALID_PARAMETER),
        (1, "\ud800", NtStatus.STATUS_INVALID_PARAMETER),
        (2, ["x"], NtStatus.STATUS_OBJECT_TYPE_MISMATCH),
        (7, "not a list", NtStatus.STATUS_OBJECT_TYPE_MISMATCH),
        (7, ["a", 1], NtStatus.STATUS_OBJECT_TYPE_MISMATCH),
        (7, ["a", ""], NtStatus.STATUS_INVALID_PARAMETER),
        (3, "text", NtStatus.STATUS_OBJECT_TYPE_MISMATCH),
        (0, None, NtStatus.STATUS_OBJECT_TYPE_MISMATCH),
        (-1, b"", NtStatus.STATUS_INVALID_PARAMETER),
        (2**32, b"", NtStatus.STATUS_INVALID_PARAMETER),
    ],
)
def test_data_is_checked_against_its_type_and_nothing_is_written(
    reg: Registry, type_: int, data: object, status: NtStatus
) -> None:
    reg.create_key(T)
    assert status_of(reg.set_value, T, "v", type_, data) == status
    assert reg.enum_values(T) == []


def test_raw_four_bytes_are_accepted_as_a_dword(reg: Registry) -> None:
    reg.create_key(T)
    reg.set_value(T, "D", 4, b"\x1f\x00\x00\x00")
    assert reg.query_value(T, "D") == (4, 31)


def test_reading_with_the_wrong_expected_type_is_a_mismatch(reg: Registry) -> None:
    reg.create_key(T)
    reg.set_value(T, "D", 4, 1)
    assert reg.query_value(T, "D", expected_type=4) == (4, 1)
    assert (
        status_of(reg.query_value, T, "D", expected_type=1) == NtStatus.STATUS_OBJECT_TYPE_MISMATCH
    )


# --- volatile keys and HARDWARE -----------------------------------------------------------------


def test_volatile_keys_work_until_reopen_then_vanish(config: Path) -> None:
    with Registry(config) as r:
        r.create_key(T + r"\Stable")
        r.create_key(T + r"\Vol\Child", volatile=True)
        r.set_value(T + r"\Vol\Child", "v", 1, "x")
        assert r.query_key(T + r"\Vol").volatile is True
        assert r.enum_keys(T) == ["Stable", "Vol"]
        assert r.query_value(T + r"\vol\child", "V") == (1, "x")
        assert (
            status_of(r.create_key, T + r"\Vol\Child\Stable") == NtStatus.STATUS_INVALID_PARAMETER
        )
        assert status_of(r.delete_key, T + r"\Vol") == NtStatus.STATUS_ACCESS_DENIED
    assert {p.name for p in config.iterdir()} == {
        "DEFAULT",
        "SAM",
        "SECURITY",
        "SOFTWARE",
        "SYSTEM",
    }
    with Registry(config) as r:
        assert r.enum_keys(T) == ["Stable"]
        assert r.key_exists(T + r"\Vol") is False


def test_delete_tree_removes_volatile_subkeys_of_stable_keys(reg: Registry) -> None:
    reg.create_key(T + r"\A")
    reg.create_key(T + r"\A\V\W", volatile=True)
    reg.delete_tree(T + r"\A")
    assert reg.enum_keys(T) == []
    reg.create_key(T + r"\A\V")  # the name is free again, as a stable key
    assert reg.query_key(T + r"\A\V").volatile is False


def test_hardware_hive_is_memory_only(config: Path) -> None:
    with Registry(config) as r:
        r.create_key(r"HKLM\HARDWARE\DESCRIPTION\System")
        r.set_value(r"HKLM\HARDWARE\DESCRIPTION\System", "Identifier", 1, "AT/AT COMPATIBLE")
        assert r.query_key(r"HKLM\HARDWARE\DESCRIPTION").volatile is True
    assert not (config / "HARDWARE").exists()
    with Registry(config) as r:
        assert r.enum_keys(r"HKLM\HARDWARE") == []


# --- import / export / control sets ---------------------------------------------------------


def test_import_applies_every_op_kind(reg: Registry) -> None:
    reg.create_key(T + r"\Old\Deep")
    reg.create_key(T + r"\Keep")
    reg.set_value(T + r"\Keep", "Gone", 1, "x")
    n = reg.import_ops(
        [
            DeleteKey(r"HKEY_LOCAL_MACHINE\SOFTWARE\Test\Old"),
            DeleteKey(r"HKEY_LOCAL_MACHINE\SOFTWARE\Test\NeverWas"),
            SetKey(r"HKEY_LOCAL_MACHINE\SOFTWARE\Test\Keep"),
            DeleteValue(r"HKEY_LOCAL_MACHINE\SOFTWARE\Test\Keep", "Gone"),
            DeleteValue(r"HKEY_LOCAL_MACHINE\SOFTWARE\Test\Keep", "NeverWas"),
            SetValue(r"HKEY_LOCAL_MACHINE\SOFTWARE\Test\Keep", "New", 4, 9),
        ]
    )
    assert n == 6
    assert reg.enum_keys(T) == ["Keep"]
    assert reg.enum_values(T + r"\Keep") == [("New", 4, 9)]


def test_import_is_all_or_nothing_when_a_late_op_fails(reg: Registry) -> None:
    ops = [SetKey(r"HKEY_LOCAL_MACHINE\SYSTEM\Imported")]
    ops += [SetValue(r"HKEY_LOCAL_MACHINE\SYSTEM\Imported", f"v{i}", 4, i) for i in range(50)]
    ops += [SetKey(r"HKEY_LOCAL_MACHINE\SOFTWARE\Imported\Sub")]
    ops += [SetValue(r"HKEY_LOCAL_MACHINE\SOFTWARE\Imported\Sub", "ok", 1, "x")]
    ops += [SetValue(r"HKEY_LOCAL_MACHINE\SOFTWARE\Imported\Sub", "bad", 4, "not a number")]
    with pytest.raises(RegistryError) as info:
        reg.import_ops(ops)
    assert info.value.status == NtStatus.STATUS_OBJECT_TYPE_MISMATCH
    assert "op 54" in str(info.value)
    assert not reg.key_exists(r"HKLM\SYSTEM\Imported")
    assert not reg.key_exists(r"HKLM\SOFTWARE\Imported")
    reg.import_ops(ops[:-1])  # the same import without the bad op goes through
    assert reg.query_value(r"HKLM\SYSTEM\Imported", "v49") == (4, 49)


def test_import_of_a_bad_path_late_in_the_file_applies_nothing(reg: Registry) -> None:
    ops = [SetKey(r"HKEY_LOCAL_MACHINE\SOFTWARE\A"), SetKey(r"HKEY_LOCAL_MACHINE\NOHIVE\B")]
    assert status_of(reg.import_ops, ops) == NtStatus.STATUS_OBJECT_NAME_NOT_FOUND
    assert not reg.key_exists(r"HKLM\SOFTWARE\A")


def test_export_then_import_reproduces_the_subtree(reg: Registry) -> None:
    reg.create_key(T + r"\A\B")
    reg.set_value(T, "", 1, 'quote " and \\')
    reg.set_value(T + r"\A", "M", 7, ["x", "y"])
    reg.set_value(T + r"\A\B", "Q", 11, 5)
    reg.set_value(T + r"\A\B", "E", 2, "%TEMP%")
    text = reg.export(T)
    assert text.startswith(
        "Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\Test]"
    )
    reg.delete_tree(T)
    reg.import_ops(regfile.parse(text))
    assert reg.export(T) == text


def test_export_of_a_root_covers_its_hives(reg: Registry) -> None:
    reg.create_key(r"HKU\.DEFAULT\Environment")
    text = reg.export("HKEY_USERS")
    assert "[HKEY_USERS\\.DEFAULT\\Environment]" in text


def test_copy_control_set_replaces_the_target_with_a_stable_copy(reg: Registry) -> None:
    cs1, cs2 = r"HKLM\SYSTEM\ControlSet001", r"HKLM\SYSTEM\ControlSet002"
    reg.create_key(cs1 + r"\Control\Session Manager")
    reg.set_value(cs1 + r"\Control\Session Manager", "GlobalFlag", 4, 0)
    reg.set_value(cs1 + r"\Control\Session Manager", "BootExecute", 7, ["autocheck autochk *"])
    reg.create_key(cs1 + r"\Services")
    reg.create_key(cs1 + r"\Services\Vol", volatile=True)
    reg.create_key(cs2 + r"\Stale")
    reg.copy_control_set(1, 2)
    assert reg.enum_keys(cs2) == ["Control", "Services"]
    assert reg.enum_values(cs2 + r"\Control\Session Manager") == reg.enum_values(
        cs1 + r"\Control\Session Manager"
    )
    assert reg.enum_keys(cs2 + r"\Services") == []
    assert status_of(reg.copy_control_set, 3, 1) == NtStatus.STATUS_OBJECT_NAME_NOT_FOUND
    assert status_of(reg.copy_control_set, 1, 1) == NtStatus.STATUS_INVALID_PARAMETER
    assert status_of(reg.copy_control_set, 1, 1000) == NtStatus.STATUS_INVALID_PARAMETER
    assert reg.key_exists(cs1 + r"\Control\Session Manager")


def test_shipped_configs_import_cleanly_and_give_the_csrss_command_line(reg: Registry) -> None:
    for name in ("SYSTEM.reg", "SOFTWARE.reg"):
        reg.import_ops(regfile.parse((REPO / "configs" / name).read_bytes()))
    sm = r"HKLM\SYSTEM\CurrentControlSet\Control\Session Manager"
    assert reg.query_value(sm + r"\SubSystems", "Windows") == (2, CSRSS)
    assert reg.query_value(sm + r"\SubSystems", "Required") == (7, ["Debug", "Windows"])
    assert reg.query_value(sm + r"\SubSystems", "Kmode") == (2, r"\SystemRoot\System32\win32k.sys")
    assert reg.query_value(sm, "BootExecute") == (7, ["autocheck autochk *"])
    assert reg.query_value(sm, "ObjectDirectories") == (7, ["\\Windows", "\\RPC Control"])
    assert reg.query_value(sm + r"\Memory Management", "PagingFiles") == (7, ["?:\\pagefile.sys"])
    assert reg.query_value(sm + r"\DOS Devices", "NUL") == (1, r"\Device\Null")
    assert reg.query_value(sm + r"\Environment", "ComSpec") == (2, r"%SystemRoot%\system32\cmd.exe")
    crash = r"HKLM\SYSTEM\CurrentControlSet\Control\CrashControl"
    assert reg.query_value(crash, "AutoReboot") == (4, 0)
    assert [
        reg.query_value(r"HKLM\SYSTEM\Select", n)[1]
        for n in ("Current", "Default", "Failed", "LastKnownGood")
    ] == [1, 1, 0, 1]
    wl = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon"
    assert reg.query_value(wl, "Userinit") == (1, "C:\\Windows\\system32\\userinit.exe,")
    cv = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion"
    assert reg.query_value(cv, "CurrentMajorVersionNumber") == (4, 10)
    assert reg.query_value(cv, "SystemRoot") == (1, "C:\\Windows")


# --- corruption and recovery (R3, R4) -----------------------------------------------------------


def test_corrupt_system_hive_is_registry_corrupt(config: Path) -> None:
    Registry(config).close()
    (config / "SYSTEM").write_bytes(b"this is not a database" * 100)
    with pytest.raises(RegistryError) as info:
        Registry(config)
    assert info.value.status == NtStatus.STATUS_REGISTRY_CORRUPT
    assert (config / "SYSTEM").exists()  # left in place for the 0x74 investigation


@pytest.mark.parametrize("damage", ["garbage", "zero", "truncated", "foreign_sqlite"])
def test_corrupt_other_hive_is_moved_aside_and_recreated(config: Path, damage: str) -> None:
    with Registry(config) as r:
        r.create_key(r"HKLM\SOFTWARE\Lost")
        for i in range(200):
            r.set_value(r"HKLM\SOFTWARE\Lost", f"v{i}", 3, bytes(500))
    path = config / "SOFTWARE"
    if damage == "garbage":
        path.write_bytes(b"\x00garbage" * 1000)
    elif damage == "zero":
        path.write_bytes(b"")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:6000])
    else:
        path.unlink()
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE t(x)")
        conn.commit()
        conn.close()
    with Registry(config) as r:
        [event] = r.recovery_events
        assert (event.hive, event.event, event.status) == (
            "SOFTWARE",
            "hive.corrupt",
            NtStatus.STATUS_REGISTRY_CORRUPT,
        )
        assert event.moved_to == str(config / "SOFTWARE.corrupt")
        assert r.enum_keys(r"HKLM\SOFTWARE") == []
        r.create_key(r"HKLM\SOFTWARE\Fresh")
    assert (config / "SOFTWARE.corrupt").exists()
    with Registry(config) as r:
        assert r.recovery_events == []
        assert r.enum_keys(r"HKLM\SOFTWARE") == ["Fresh"]


def test_second_corruption_does_not_overwrite_the_first_evidence(config: Path) -> None:
    Registry(config).close()
    for _ in range(2):
        (config / "SAM").write_bytes(b"junk" * 50)
        Registry(config).close()
    assert (config / "SAM.corrupt").exists() and (config / "SAM.corrupt.1").exists()


def test_stale_tmp_files_are_removed_at_open(config: Path) -> None:
    config.mkdir(parents=True)
    (config / "SYSTEM.tmp").write_bytes(b"half-built hive")
    (config / "other.tmp").write_bytes(b"")
    with Registry(config):
        assert not list(config.glob("*.tmp"))


def test_hot_wal_left_by_a_dead_writer_is_replayed_not_discarded(config: Path) -> None:
    script = (
        "import os, sys; from nt.hive import Registry; r = Registry(sys.argv[1]); "
        "r.create_key(r'HKLM\\SOFTWARE\\Test'); r.set_value(r'HKLM\\SOFTWARE\\Test', 'v', 4, 7); "
        "os._exit(0)"  # no close(): no checkpoint, the commit lives only in SOFTWARE-wal
    )
    subprocess.run([sys.executable, "-c", script, str(config)], cwd=REPO, check=True, timeout=60)
    assert (config / "SOFTWARE-wal").stat().st_size > 0
    with Registry(config) as r:
        assert r.recovery_events == []
        assert r.query_value(T, "v") == (4, 7)


def test_hive_files_use_wal_and_the_sqlite_version_is_exposed(config: Path) -> None:
    Registry(config).close()
    header = (config / "SYSTEM").read_bytes()[:20]
    assert header[18:20] == b"\x02\x02"  # file format read/write version 2 = WAL
    assert sqlite3.sqlite_version == SQLITE_VERSION
    assert isinstance(sqlite_wal_reset_bug(), bool)
