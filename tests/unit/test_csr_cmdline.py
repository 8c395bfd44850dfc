"""CsrParseServerCommandLine: grammar, defaults and every quirk of nt-spec.md §3.2."""

from __future__ import annotations

import pytest

from nt.status import NtStatus
from processes.csrss.cmdline import (
    ServerDllArg,
    parse_server_command_line,
    rtl_char_to_integer,
    split_command_line,
)

DESIGN_CMDLINE = (
    r"%SystemRoot%\system32\csrss.exe ObjectDirectory=\Windows SharedSection=1024,3072,512 "
    r"Windows=On SubSystemType=Windows ServerDll=basesrv,1 "
    r"ServerDll=winsrv:UserServerDllInitialization,3 ServerDll=winsrv:ConServerDllInitialization,2 "
    r"ProfileControl=Off MaxRequestThreads=16"
)
IMAGE = r"C:\Windows\system32\csrss.exe"


def parse(*args: str, loader=None):
    return parse_server_command_line([IMAGE, *args], loader=loader)


def test_design_command_line():
    cmd = parse_server_command_line(DESIGN_CMDLINE)
    assert cmd.status == NtStatus.STATUS_SUCCESS
    assert cmd.object_directory == "\\Windows"
    assert cmd.shared_section_kb == 3072
    assert cmd.shared_section_size == 3072 * 1024
    assert cmd.windows_control is True
    assert cmd.subsystem_type == 2
    assert cmd.max_request_threads == 16
    assert cmd.server_dlls == [
        ServerDllArg("basesrv", None, 1),
        ServerDllArg("winsrv", "UserServerDllInitialization", 3),
        ServerDllArg("winsrv", "ConServerDllInitialization", 2),
    ]
    assert cmd.load_order == [0, 1, 3, 2]


def test_defaults():
    cmd = parse()
    assert cmd.status == NtStatus.STATUS_SUCCESS
    assert cmd.object_directory is None
    assert cmd.max_request_threads == 16
    assert cmd.windows_control is False
    assert cmd.subsystem_type == 0
    assert cmd.server_dlls == [] and cmd.load_order == []


def test_names_are_case_insensitive_and_split_at_first_equals():
    cmd = parse("OBJECTDIRECTORY=\\Win=dows", "serverdll=basesrv,1", "windows=ON")
    assert cmd.object_directory == "\\Win=dows"
    assert cmd.server_dlls == [ServerDllArg("basesrv", None, 1)]
    assert cmd.windows_control is True


def test_shared_section_uses_the_second_number_quirk_6():
    cmd = parse("SharedSection=1024,12288,512")
    assert cmd.shared_section_kb == 12288
    assert cmd.shared_section_size == 12 * 1024 * 1024
    assert any("quirk #6" in line for line in cmd.log)


def test_shared_section_rounds_to_pages_and_takes_auto_base():
    cmd = parse("SharedSection=1,0x3")
    assert cmd.shared_section_kb == 3
    assert cmd.shared_section_size == 4096


@pytest.mark.parametrize("value", ["1024", "1024,", "", "1024,0"])
def test_shared_section_syntax_errors_stop_the_parse(value):
    cmd = parse(f"SharedSection={value}", "ServerDll=basesrv,1")
    assert cmd.status == NtStatus.STATUS_INVALID_PARAMETER
    assert cmd.server_dlls == []  # parsing stopped at SharedSection


def test_shared_section_loads_csrsrv_as_server_0_at_that_point():
    calls = []

    def loader(dll, init, index):
        calls.append((dll, init, index))
        return NtStatus.STATUS_SUCCESS

    parse("ServerDll=basesrv,1", "SharedSection=1024,3072", "ServerDll=winsrv:X,3", loader=loader)
    assert calls == [("basesrv", None, 1), ("CSRSS", None, 0), ("winsrv", "X", 3)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("basesrv,1", ("basesrv", None, 1)),
        ("winsrv:ConServerDllInitialization,2", ("winsrv", "ConServerDllInitialization", 2)),
        ("basesrv,010", ("basesrv", None, 10)),  # base 10: no octal
        ("basesrv,0x1", ("basesrv", None, 0)),  # stops at the 'x'
        ("basesrv,3junk", ("basesrv", None, 3)),
        ("a:b:c,1", ("a", "b:c", 1)),  # the first ':' only
        ("winsrv:,3", ("winsrv", "", 3)),  # an empty entry point is still one
    ],
)
def test_server_dll_grammar(value, expected):
    cmd = parse(f"ServerDll={value}")
    assert cmd.status == NtStatus.STATUS_SUCCESS
    assert cmd.server_dlls == [ServerDllArg(*expected)]


@pytest.mark.parametrize("value", ["basesrv", "basesrv,", "winsrv:UserServerDllInitialization", ""])
def test_server_dll_without_an_index_is_invalid_and_fatal(value):
    cmd = parse(f"ServerDll={value}", "RequestThreads=1")
    assert cmd.status == NtStatus.STATUS_INVALID_PARAMETER
    assert cmd.server_dlls == []


def test_a_failed_load_stops_the_parse_with_its_status():
    def loader(dll, init, index):
        return NtStatus.STATUS_DLL_NOT_FOUND if dll == "basesrv" else NtStatus.STATUS_SUCCESS

    cmd = parse(
        "ServerDll=basesrv,1", "ServerDll=winsrv:UserServerDllInitialization,3", loader=loader
    )
    assert cmd.status == NtStatus.STATUS_DLL_NOT_FOUND
    assert cmd.load_order == [1]


def test_subsystem_type_is_gui_only_after_windows_on_quirk_7():
    assert parse("Windows=On", "SubSystemType=Windows").subsystem_type == 2
    late = parse("SubSystemType=Windows", "Windows=On")
    assert late.subsystem_type == 3
    assert any("quirk #7" in line for line in late.log)
    assert parse("Windows=Off", "SubSystemType=Windows").subsystem_type == 3


@pytest.mark.parametrize(
    ("value", "expected"), [("posix", 7), ("OS2", 5), ("native", 1), ("0x3", 3), ("2", 2)]
)
def test_subsystem_type_names_and_numbers(value, expected):
    assert parse(f"SubSystemType={value}").subsystem_type == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("16", 16),
        ("0x20", 32),
        ("0o17", 15),
        ("0b101", 5),
        ("12abc", 12),
        ("  7", 7),
        ("-1", 0xFFFFFFFF),
        ("0X10", 0),  # RtlCharToInteger knows only lower-case prefixes
    ],
)
def test_max_request_threads_auto_base(value, expected):
    cmd = parse(f"MaxRequestThreads={value}")
    assert cmd.status == NtStatus.STATUS_SUCCESS
    assert cmd.max_request_threads == expected


def test_max_request_threads_without_digits_reads_zero_and_logs():
    cmd = parse("MaxRequestThreads=lots")
    assert cmd.status == NtStatus.STATUS_SUCCESS
    assert cmd.max_request_threads == 0
    assert any("no digits" in line for line in cmd.log)


def test_request_threads_is_ignored_but_resets_status():
    cmd = parse("Bogus=1", "RequestThreads=99")
    assert cmd.status == NtStatus.STATUS_SUCCESS
    assert cmd.max_request_threads == 16


def test_unknown_argument_is_invalid_parameter():
    cmd = parse("Bogus=1")
    assert cmd.status == NtStatus.STATUS_INVALID_PARAMETER


def test_last_status_wins_quirk_19():
    assert parse("Bogus=1", "Windows=On").status == NtStatus.STATUS_SUCCESS
    assert parse("Bogus=1", "ObjectDirectory=\\Windows").status == NtStatus.STATUS_SUCCESS
    assert parse("Windows=On", "Bogus=1").status == NtStatus.STATUS_INVALID_PARAMETER
    # ...and the unknown argument does not stop the parse.
    cmd = parse("Bogus=1", "ServerDll=basesrv,1")
    assert cmd.status == NtStatus.STATUS_SUCCESS and cmd.server_dlls


def test_profile_control_does_not_reset_status_quirk_19():
    cmd = parse("Bogus=1", "ProfileControl=Off")
    assert cmd.status == NtStatus.STATUS_INVALID_PARAMETER
    assert any("ProfileControl does not reset" in line for line in cmd.log)
    assert parse("ProfileControl=On").status == NtStatus.STATUS_SUCCESS


def test_argument_without_equals_is_refused_as_a_divergence():
    cmd = parse("Windows", "ServerDll=basesrv,1")
    assert cmd.status == NtStatus.STATUS_INVALID_PARAMETER
    assert cmd.server_dlls == []
    assert any("divergence" in line for line in cmd.log)


def test_split_command_line_honours_quotes():
    assert split_command_line('a  "b c"\td') == ["a", "b c", "d"]
    assert split_command_line('x ObjectDirectory="\\My Dir"') == ["x", "ObjectDirectory=\\My Dir"]
    assert split_command_line("") == []


def test_rtl_char_to_integer_edges():
    assert rtl_char_to_integer("ff", 16) == (NtStatus.STATUS_SUCCESS, 255, True)
    assert rtl_char_to_integer("", 0) == (NtStatus.STATUS_SUCCESS, 0, False)
    assert rtl_char_to_integer("+12", 10)[1] == 12
    assert rtl_char_to_integer("99999999999", 10)[1] == 99999999999 & 0xFFFFFFFF
    assert rtl_char_to_integer("1", 7)[0] == NtStatus.STATUS_INVALID_PARAMETER
