"""Session Manager configuration (processes/smss/config.py)."""

from __future__ import annotations

import pytest

from nt.regpath import REG_DWORD, REG_EXPAND_SZ, REG_MULTI_SZ, REG_SZ
from nt.status import NtStatus
from processes.smss.config import (
    SESSION_MANAGER_KEY,
    PagingFile,
    dynamic_environment,
    load_session_manager_config,
    parse_paging_file,
)

SM = SESSION_MANAGER_KEY
KERNEL_ENV = {"Path": r"C:\Windows\System32", "SystemDrive": "C:", "SystemRoot": r"C:\Windows"}


class Missing(Exception):
    status = NtStatus.STATUS_OBJECT_NAME_NOT_FOUND


class FakeRegistry:
    """keys: {path: [(name, type, data), ...]} in value order."""

    def __init__(self, keys: dict[str, list[tuple[str, int, object]]]) -> None:
        self.keys = {path.lower(): values for path, values in keys.items()}

    def query_value(self, path: str, name: str) -> tuple[int, object]:
        for value_name, vtype, data in self.enum_values(path):
            if value_name.lower() == name.lower():
                return vtype, data
        raise Missing(name)

    def enum_values(self, path: str) -> list[tuple[str, int, object]]:
        if path.lower() not in self.keys:
            raise Missing(path)
        return list(self.keys[path.lower()])

    def enum_keys(self, path: str) -> list[str]:
        prefix = path.lower() + "\\"
        return sorted({k[len(prefix) :].split("\\")[0] for k in self.keys if k.startswith(prefix)})


def test_defaults_when_values_are_absent():
    config = load_session_manager_config(FakeRegistry({SM: []}), KERNEL_ENV)
    assert config.protection_mode == 1
    assert config.object_directories == [r"\Windows", r"\RPC Control"]
    assert config.boot_execute == ["autocheck AutoChk.exe *"]
    assert config.required == ["Debug", "Windows"]
    assert config.paging_files == [PagingFile(r"?:\pagefile.sys", any_drive=True)]
    assert config.environment == KERNEL_ENV
    assert config.default_lib_path == ""
    assert config.global_flag == 0
    assert (config.subsystems, config.execute, config.deletions) == ({}, [], [])


def test_environment_forward_references_resolve_on_the_second_pass():
    registry = FakeRegistry(
        {
            SM: [],
            SM + r"\Environment": [
                ("TEMP", REG_EXPAND_SZ, r"%MYROOT%\Temp"),
                ("ComSpec", REG_EXPAND_SZ, r"%SystemRoot%\system32\cmd.exe"),
                ("Literal", REG_SZ, r"%SystemRoot%"),
                ("MYROOT", REG_EXPAND_SZ, r"%SystemDrive%\Data"),
                ("Path", REG_EXPAND_SZ, r"%SystemRoot%\System32;%SystemRoot%"),
            ],
        }
    )
    config = load_session_manager_config(registry, KERNEL_ENV)
    env = config.environment
    assert env["TEMP"] == r"C:\Data\Temp"
    assert env["ComSpec"] == r"C:\Windows\system32\cmd.exe"
    assert env["Literal"] == "%SystemRoot%"  # REG_SZ is not expanded
    assert env["Path"] == r"C:\Windows\System32;C:\Windows"
    assert config.default_lib_path == r"C:\Windows\System32;C:\Windows"


def test_values_are_read_in_table_order_with_their_types():
    registry = FakeRegistry(
        {
            SM: [
                ("ProtectionMode", REG_DWORD, 0),
                ("ObjectDirectories", REG_MULTI_SZ, [r"\Windows", r"\RPC Control", r"\Extra"]),
                ("BootExecute", REG_MULTI_SZ, ["autocheck autochk *", ""]),
                ("Execute", REG_MULTI_SZ, ["first.exe", "last.exe"]),
                ("GlobalFlag", REG_DWORD, 0x100000),
                ("AllowProtectedRenames", REG_DWORD, 1),
                (
                    "PendingFileRenameOperations",
                    REG_MULTI_SZ,
                    [r"\??\C:\a", r"\??\C:\b", r"\??\C:\gone", ""],
                ),
            ],
            SM + r"\DOS Devices": [
                ("NUL", REG_SZ, r"\Device\Null"),
                ("PIPE", REG_SZ, r"\Device\NamedPipe"),
            ],
            SM + r"\KnownDlls": [
                ("DllDirectory", REG_EXPAND_SZ, r"%SystemRoot%\system32"),
                ("kernel32", REG_SZ, "kernel32.dll"),
            ],
            SM + r"\SubSystems": [
                ("Debug", REG_EXPAND_SZ, ""),
                ("Kmode", REG_EXPAND_SZ, r"%SystemRoot%\system32\win32k.sys"),
                ("Optional", REG_MULTI_SZ, ["Posix"]),
                ("PosixSingleInstance", REG_DWORD, 1),
                ("Required", REG_MULTI_SZ, ["Debug", "Windows"]),
                (
                    "Windows",
                    REG_EXPAND_SZ,
                    r"%SystemRoot%\system32\csrss.exe ObjectDirectory=\Windows",
                ),
            ],
        }
    )
    config = load_session_manager_config(registry, KERNEL_ENV)
    assert config.protection_mode == 0
    assert config.object_directories[-1] == r"\Extra"
    assert config.boot_execute == ["autocheck autochk *"]
    assert config.execute == ["first.exe", "last.exe"]
    assert config.global_flag == 0x100000
    assert config.pending_renames == [(r"\??\C:\a", r"\??\C:\b"), (r"\??\C:\gone", "")]
    assert (SM, "AllowProtectedRenames") in config.deletions
    assert (SM, "PendingFileRenameOperations") in config.deletions
    assert config.dos_devices == {"NUL": r"\Device\Null", "PIPE": r"\Device\NamedPipe"}
    assert config.known_dll_directory == r"C:\Windows\system32"
    assert config.known_dlls == ["kernel32.dll"]
    assert config.kmode == r"C:\Windows\system32\win32k.sys"
    assert config.subsystem("WINDOWS") == r"C:\Windows\system32\csrss.exe ObjectDirectory=\Windows"
    assert "PosixSingleInstance" not in config.subsystems
    assert config.optional == ["Posix"]


def test_stale_safeboot_option_is_skipped_and_scheduled_for_deletion():
    registry = FakeRegistry(
        {SM: [], SM + r"\Environment": [("SAFEBOOT_OPTION", REG_SZ, "MINIMAL")]}
    )
    config = load_session_manager_config(registry, KERNEL_ENV)
    assert "SAFEBOOT_OPTION" not in config.environment
    assert (SM + r"\Environment", "SAFEBOOT_OPTION") in config.deletions


def test_other_registry_errors_propagate():
    class Broken(FakeRegistry):
        def query_value(self, path, name):
            raise OSError("disk gone")

    with pytest.raises(OSError):
        load_session_manager_config(Broken({SM: []}), KERNEL_ENV)


@pytest.mark.parametrize(
    ("descriptor", "expected"),
    [
        (r"?:\pagefile.sys", PagingFile(r"?:\pagefile.sys", 0, 0, True, True)),
        (r"c:\pagefile.sys 1024 2048", PagingFile(r"C:\pagefile.sys", 1024, 2048, False, False)),
        (r"C:\pagefile.sys 512", PagingFile(r"C:\pagefile.sys", 512, 0, False, False)),
        (r"C:\pagefile.sys 0 0", PagingFile(r"C:\pagefile.sys", 0, 0, True, False)),
        (r"C:\pagefile.sys 0x400 010", PagingFile(r"C:\pagefile.sys", 1024, 10, False, False)),
    ],
)
def test_paging_file_descriptors_parse_to_path_and_sizes(descriptor, expected):
    assert parse_paging_file(descriptor) == expected


def test_bad_paging_file_descriptors_are_reported_and_skipped():
    with pytest.raises(ValueError, match="not a number"):
        parse_paging_file(r"C:\pagefile.sys big")
    registry = FakeRegistry(
        {
            SM: [],
            SM + r"\Memory Management": [
                (
                    "PagingFiles",
                    REG_MULTI_SZ,
                    [r"?:\pagefile.sys", r"C:\bad.sys x", r"?:\second.sys"],
                ),
            ],
        }
    )
    config = load_session_manager_config(registry, KERNEL_ENV)
    assert [p.path for p in config.paging_files] == [r"?:\pagefile.sys"]
    assert len(config.problems) == 2


CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 158
model name\t: Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz
stepping\t: 10

processor\t: 1
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 158
stepping\t: 10
"""


def test_dynamic_environment_from_proc_cpuinfo():
    values = dynamic_environment(CPUINFO, None)
    assert values == {
        "OS": "Windows_NT",
        "PROCESSOR_ARCHITECTURE": "AMD64",
        "PROCESSOR_LEVEL": "6",
        "PROCESSOR_IDENTIFIER": "Intel64 Family 6 Model 158 Stepping 10, GenuineIntel",
        "PROCESSOR_REVISION": "9e0a",
        "NUMBER_OF_PROCESSORS": "2",
    }


def test_dynamic_environment_of_amd_and_safe_boot():
    blocks = [
        {
            "processor": "0",
            "vendor_id": "AuthenticAMD",
            "cpu family": "23",
            "model": "49",
            "stepping": "0",
        }
    ]
    values = dynamic_environment(blocks, 2)
    assert values["PROCESSOR_IDENTIFIER"] == "AMD64 Family 23 Model 49 Stepping 0, AuthenticAMD"
    assert values["PROCESSOR_REVISION"] == "3100"
    assert values["SAFEBOOT_OPTION"] == "NETWORK"
    assert dynamic_environment(blocks, "minimal")["SAFEBOOT_OPTION"] == "MINIMAL"
    assert list(values)[-1] == "SAFEBOOT_OPTION"
    with pytest.raises(ValueError):
        dynamic_environment(blocks, 7)
