"""svchost's command line and ServiceDll → module mapping; the SCM's ImagePath handling;
sc.exe's argument syntax."""

from __future__ import annotations

import pytest

from ntctl.scclient import ScFailed, options, parse_actions
from ntctl.views import _service_process
from processes.services.scmkernel import executable, expand
from processes.svchost.svchost import dll_module, parse_command_line


def test_group_and_split_service_from_the_command_line() -> None:
    assert parse_command_line(r"C:\Windows\system32\svchost.exe -k netsvcs -p") == ("netsvcs", None)
    assert parse_command_line("svchost.exe -k netsvcs -p -s Schedule") == ("netsvcs", "Schedule")
    assert parse_command_line("svchost.exe") == (None, None)


def test_service_dll_names_a_module_by_its_base_name() -> None:
    assert dll_module(r"%SystemRoot%\System32\wevtsvc.dll") == "processes.svchost.dll.wevtsvc"
    assert dll_module(r'"C:\Windows\System32\SvcTest.DLL"') == "processes.svchost.dll.svctest"
    assert dll_module(r"C:\x\bad-name.dll") is None  # not a module name: a stand-in


def test_image_paths_expand_as_the_scm_expands_them() -> None:
    assert (
        expand(r"%SystemRoot%\System32\svchost.exe -k x") == r"C:\Windows\System32\svchost.exe -k x"
    )
    assert expand(r"\SystemRoot\System32\a.exe") == r"C:\Windows\System32\a.exe"
    assert expand(r"system32\a.exe") == r"C:\Windows\system32\a.exe"
    assert executable(r'"C:\Program Files\V\v.exe" /service') == r"C:\Program Files\V\v.exe"
    assert executable(r"%SystemRoot%\System32\svchost.exe -k netsvcs -p") == (
        r"C:\Windows\System32\svchost.exe"
    )


def test_sc_options_take_both_spellings() -> None:
    assert options(["start=", "demand", "obj=LocalSystem"]) == {
        "start": "demand",
        "obj": "LocalSystem",
    }
    with pytest.raises(ScFailed):
        options(["start"])
    assert parse_actions("restart/60000/run/1000") == [
        {"type": 1, "delay": 60000},
        {"type": 3, "delay": 1000},
    ]
    with pytest.raises(ScFailed):
        parse_actions("explode/1")


def test_ps_marks_service_hosts_with_group_account_and_stand_in() -> None:
    row = {"image": "svchost.exe", "command_line": "svchost.exe -k netsvcs -p", "user": "U"}
    assert _service_process(row).plain == "  -k netsvcs -p  U"
    standin = {"image": "spoolsv.exe", "command_line": "spoolsv.exe", "user": "U", "standin": True}
    assert _service_process(standin).plain == "  U  (stand-in)"


def test_a_split_svchost_names_its_one_service() -> None:
    from processes.services.database import ServiceRecord
    from processes.services.start import split_command_line

    path = r"%SystemRoot%\System32\svchost.exe -k netsvcs -p"
    svc = ServiceRecord(name="Schedule", service_type=0x20, start=2, error_control=1)
    svc.image_path = path
    assert split_command_line(svc, path.lower() + "|schedule") == path + " -s Schedule"
    assert split_command_line(svc, path.lower()) == path  # shared: no -s
