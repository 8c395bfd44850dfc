"""SmpParseCommandLine and the image table (processes/smss/cmdline.py, images.py)."""

from __future__ import annotations

import pytest

from nt.status import NtStatus
from processes.smss.cmdline import (
    SMP_ASYNC_FLAG,
    SMP_AUTOCHK_FLAG,
    SMP_DEBUG_FLAG,
    SMP_INVALID_PATH,
    SmCommandLineError,
    smp_parse_command_line,
)
from processes.smss.images import expand_environment, resolve_image

KERNEL_ENV = {
    "Path": r"C:\Windows\System32",
    "SystemDrive": "C:",
    "SystemRoot": r"C:\Windows",
}
CSRSS = (
    r"%SystemRoot%\system32\csrss.exe ObjectDirectory=\Windows SharedSection=1024,12288,512 "
    "Windows=On SubSystemType=Windows ServerDll=basesrv,1"
)


def test_autocheck_keyword_sets_the_flag_and_builds_autochks_command_line():
    cmd = smp_parse_command_line("autocheck AutoChk.exe *", KERNEL_ENV)
    assert cmd.flags == SMP_AUTOCHK_FLAG
    assert cmd.image == r"C:\Windows\System32\autochk.exe"
    assert cmd.package == "processes.autochk"
    assert cmd.arguments == "*"
    assert cmd.command_line == r"\??\C:\Windows\System32\autochk.exe *"


def test_keywords_are_case_insensitive_and_repeatable():
    cmd = smp_parse_command_line("ASYNC Debug\tasync winlogon", KERNEL_ENV)
    assert cmd.flags == SMP_ASYNC_FLAG | SMP_DEBUG_FLAG
    assert cmd.image == r"C:\Windows\System32\winlogon.exe"
    assert cmd.command_line == "ASYNC Debug\tasync winlogon"


def test_tokens_split_on_any_character_up_to_space():
    cmd = smp_parse_command_line("autocheck\x01autochk\x1f\x1f/p  \\??\\C:", KERNEL_ENV)
    assert cmd.flags == SMP_AUTOCHK_FLAG
    assert cmd.arguments == "/p  \\??\\C:"


def test_subsystem_command_line_expands_systemroot_and_keeps_arguments():
    cmd = smp_parse_command_line(CSRSS, KERNEL_ENV)
    assert cmd.flags == 0
    assert cmd.image == r"C:\Windows\System32\csrss.exe"
    assert cmd.package == "processes.csrss"
    assert cmd.arguments.startswith(r"ObjectDirectory=\Windows SharedSection=")
    assert cmd.command_line == CSRSS
    assert cmd.directory == r"C:\Windows\System32"


def test_image_is_found_through_the_default_lib_path_when_path_misses_it():
    env = dict(KERNEL_ENV, Path=r"C:\Tools")
    cmd = smp_parse_command_line("wininit.exe", env)
    assert cmd.found
    assert cmd.image == r"C:\Windows\System32\wininit.exe"


def test_unknown_image_sets_invalid_path_and_maps_to_name_not_found():
    cmd = smp_parse_command_line("autocheck NoSuchChk.exe *", KERNEL_ENV)
    assert cmd.flags == SMP_AUTOCHK_FLAG | SMP_INVALID_PATH
    assert cmd.image == "NoSuchChk.exe"
    assert cmd.package is None
    assert cmd.status == NtStatus.STATUS_OBJECT_NAME_NOT_FOUND
    assert cmd.arguments == ""


def test_known_image_in_the_wrong_directory_is_not_found():
    cmd = smp_parse_command_line(r"C:\Temp\csrss.exe", KERNEL_ENV)
    assert cmd.flags & SMP_INVALID_PATH


def test_no_image_token_is_unsuccessful():
    for line in ("", "   ", "debug async"):
        with pytest.raises(SmCommandLineError) as info:
            smp_parse_command_line(line, KERNEL_ENV)
        assert info.value.status == NtStatus.STATUS_UNSUCCESSFUL


def test_missing_path_variable_is_name_not_found():
    with pytest.raises(SmCommandLineError) as info:
        smp_parse_command_line("winlogon.exe", {"SystemRoot": r"C:\Windows"})
    assert info.value.status == NtStatus.STATUS_OBJECT_NAME_NOT_FOUND


@pytest.mark.parametrize(
    "name",
    [
        "CSRSS",
        "csrss.exe",
        r"C:\WINDOWS\SYSTEM32\CSRSS.EXE",
        r"%SystemRoot%\system32\csrss.exe",
        r"\SystemRoot\System32\csrss.exe",
        r"\??\C:\Windows\System32\csrss.exe",
        r"\Windows\System32\csrss",
    ],
)
def test_resolve_image_accepts_names_dos_paths_and_nt_paths(name):
    assert resolve_image(name, [r"C:\Windows\System32"]) == (
        r"C:\Windows\System32\csrss.exe",
        "processes.csrss",
    )


def test_resolve_image_searches_in_order_and_honours_the_system_root():
    assert resolve_image("smss", r"C:\Windows;C:\Windows\System32") is not None
    assert resolve_image("smss", [r"C:\Windows"]) is None
    assert resolve_image("smss", [r"D:\WinNT\System32"], system_root=r"D:\WinNT") == (
        r"D:\WinNT\System32\smss.exe",
        "processes.smss",
    )
    assert resolve_image("notepad", [r"C:\Windows\System32"]) is None


def test_expand_environment_is_case_insensitive_and_keeps_unknown_names():
    env = {"SystemRoot": r"C:\Windows", "Path": "P"}
    assert expand_environment(r"%systemroot%\x", env) == r"C:\Windows\x"
    assert expand_environment("%NOPE%", env) == "%NOPE%"
    # Windows resumes at the second '%' of an undefined reference.
    assert expand_environment("%NOPE%Path%", env) == "%NOPEP"
    assert expand_environment("100%", env) == "100%"
