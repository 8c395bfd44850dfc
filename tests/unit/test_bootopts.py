"""Boot options (processes/kernel/bootopts.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from processes.kernel.bootopts import (
    CONTROL_KEY,
    REG_DWORD,
    REG_SZ,
    SAFEBOOT_OPTION_KEY,
    BootOptionError,
    BootOptions,
    load_boot_options,
    parse_boot_ini,
    parse_boot_options,
)

REPO_BOOT_INI = Path(__file__).resolve().parents[2] / "configs" / "boot.ini"

TWO_ENTRIES = r"""
[boot loader]
timeout=5
default=multi(0)disk(0)rdisk(0)partition(2)\WINNT
[operating systems]
multi(0)disk(0)rdisk(0)partition(1)\WINDOWS="Windows 10" /FASTDETECT
multi(0)disk(0)rdisk(0)partition(2)\WINNT="Windows 2000 Professional" /SOS /BASEVIDEO
C:\="Previous Operating System on C:"
"""


def test_repository_boot_ini_default_entry_gives_noexecute_and_fastdetect():
    options = load_boot_options(REPO_BOOT_INI)
    assert options.description == "Windows 10 (ntmodel)"
    assert options.noexecute == "OPTIN"
    assert options.fastdetect is True
    assert options.system_start_options() == " NOEXECUTE=OPTIN FASTDETECT"
    assert options.timeout == 30
    assert options.unknown == ()


def test_default_entry_is_chosen_by_arc_path_case_insensitively():
    ini = parse_boot_ini(TWO_ENTRIES.replace("partition(2)\\WINNT\n[", "PARTITION(2)\\winnt\n["))
    entry = ini.default_entry()
    assert entry.description == "Windows 2000 Professional"
    assert entry.options == "/SOS /BASEVIDEO"
    assert len(ini.entries) == 3
    assert ini.entries[2].arc_path == "C:\\"


def test_missing_default_falls_back_to_the_first_entry():
    ini = parse_boot_ini(
        TWO_ENTRIES.replace("default=multi(0)disk(0)rdisk(0)partition(2)", "default=x")
    )
    assert ini.default_entry().description == "Windows 10"


def test_command_line_options_merge_after_boot_ini_options(tmp_path):
    path = tmp_path / "boot.ini"
    path.write_text(REPO_BOOT_INI.read_text())
    options = load_boot_options(path, "/sos /SafeBoot:Minimal")
    assert options.sos is True
    assert options.safeboot == "MINIMAL"
    assert options.safeboot_option == 1
    assert options.system_start_options() == " NOEXECUTE=OPTIN FASTDETECT SOS SAFEBOOT:MINIMAL"


def test_a_later_switch_replaces_an_earlier_one_of_the_same_name():
    options = parse_boot_options("/NOEXECUTE=OPTIN /FASTDETECT", "/NOEXECUTE=ALWAYSOFF")
    assert options.noexecute == "ALWAYSOFF"
    assert options.options == ("FASTDETECT", "NOEXECUTE=ALWAYSOFF")


def test_every_recognised_switch_sets_its_field():
    options = parse_boot_options(
        "/SOS /NOGUIBOOT /BOOTLOG /BASEVIDEO /LASTKNOWNGOOD /DEBUG /PAE /CONSOLE "
        "/MAXMEM=2048 /NUMPROC=2 /FASTDETECT:COM1"
    )
    for flag in (
        "sos",
        "noguiboot",
        "bootlog",
        "basevideo",
        "lastknowngood",
        "debug",
        "pae",
        "console",
    ):
        assert getattr(options, flag) is True, flag
    assert (options.maxmem, options.numproc, options.fastdetect) == (2048, 2, True)


def test_unknown_switches_are_kept_and_reported():
    options = parse_boot_options("/FASTDETECT /DEBUGPORT=COM1 /Redirect")
    assert options.unknown == ("DEBUGPORT=COM1", "REDIRECT")
    assert options.system_start_options() == " FASTDETECT DEBUGPORT=COM1 REDIRECT"


def test_registry_writes_of_a_normal_boot():
    writes = parse_boot_options("/NOEXECUTE=OPTIN /FASTDETECT").registry_writes()
    assert [tuple(w) for w in writes] == [
        (CONTROL_KEY, "SystemStartOptions", REG_SZ, " NOEXECUTE=OPTIN FASTDETECT", False),
        (CONTROL_KEY, "SystemBootDevice", REG_SZ, "multi(0)disk(0)rdisk(0)partition(1)", False),
    ]


@pytest.mark.parametrize(("mode", "value"), [("MINIMAL", 1), ("NETWORK", 2), ("DSREPAIR", 3)])
def test_safe_boot_writes_a_volatile_option_value(mode, value):
    writes = parse_boot_options(f"/SAFEBOOT:{mode}").registry_writes()
    option = [w for w in writes if w.key == SAFEBOOT_OPTION_KEY]
    assert [(w.name, w.type, w.data, w.volatile) for w in option] == [
        ("OptionValue", REG_DWORD, value, True)
    ]


def test_alternate_shell_is_written_only_when_configured():
    options = parse_boot_options("/SAFEBOOT:MINIMAL(ALTERNATESHELL)")
    assert options.alternate_shell is True
    names = [w.name for w in options.registry_writes()]
    assert "UseAlternateShell" in names
    names = [w.name for w in options.registry_writes(alternate_shell_configured=False)]
    assert "UseAlternateShell" not in names
    assert options.system_start_options() == " SAFEBOOT:MINIMAL(ALTERNATESHELL)"


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("/SAFEBOOT:BOGUS", "/SAFEBOOT:MINIMAL"),
        ("/SAFEBOOT", "/SAFEBOOT:MINIMAL"),
        ("/SAFEBOOT:MINIMAL(SHELL)", "ALTERNATESHELL"),
        ("/MAXMEM=abc", "/MAXMEM=2048"),
        ("/NUMPROC=0", "/NUMPROC=4"),
        ("/NOEXECUTE=MAYBE", "/NOEXECUTE=OPTIN"),
        ("/SOS=1", "write /SOS"),
        ("SOS", "must start with '/'"),
    ],
)
def test_invalid_options_raise_with_a_fix(text, hint):
    with pytest.raises(BootOptionError) as info:
        parse_boot_options("", text)
    assert hint in str(info.value)


def test_boot_ini_errors_name_the_line():
    with pytest.raises(BootOptionError, match="line 2"):
        parse_boot_ini("[boot loader]\ntimeout=soon\n")
    with pytest.raises(BootOptionError, match="closing quote"):
        parse_boot_ini(
            '[operating systems]\nmulti(0)disk(0)rdisk(0)partition(1)\\WINDOWS="Win /SOS\n'
        )
    with pytest.raises(BootOptionError, match="no \\[operating systems\\] entry"):
        parse_boot_ini("[boot loader]\ntimeout=1\n").default_entry()


def test_missing_boot_ini_says_where_to_get_one(tmp_path):
    with pytest.raises(BootOptionError, match="restore configs/boot.ini"):
        load_boot_options(tmp_path / "boot.ini")


def test_no_boot_ini_means_no_options_but_the_command_line():
    options = load_boot_options(None, "/BOOTLOG")
    assert options.options == ("BOOTLOG",)
    assert options.boot_path == "\\WINDOWS"


def test_options_round_trip_through_the_process_parameters_map():
    options = parse_boot_options("/NOEXECUTE=OPTIN /SAFEBOOT:NETWORK /X")
    data = options.as_dict()
    assert data["system_start_options"] == " NOEXECUTE=OPTIN SAFEBOOT:NETWORK X"
    assert isinstance(data["options"], list)
    assert BootOptions.from_dict(data) == options
