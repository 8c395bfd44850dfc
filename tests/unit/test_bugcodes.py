"""The bugcheck table, unknown codes, synthetic addresses and the call-site builders."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nt import bugcodes
from nt.bugcodes import BugCode
from nt.status import NtStatus

REPO = Path(__file__).resolve().parents[2]

EXPECTED = {
    0x4C: "FATAL_UNHANDLED_HARD_ERROR",
    0x5A: "CRITICAL_SERVICE_FAILED",
    0x6B: "PROCESS1_INITIALIZATION_FAILED",
    0x6D: "SESSION1_INITIALIZATION_FAILED",
    0x6E: "SESSION2_INITIALIZATION_FAILED",
    0x6F: "SESSION3_INITIALIZATION_FAILED",
    0x70: "SESSION4_INITIALIZATION_FAILED",
    0x71: "SESSION5_INITIALIZATION_FAILED",
    0x74: "BAD_SYSTEM_CONFIG_INFO",
    0xE2: "MANUALLY_INITIATED_CRASH",
    0xEF: "CRITICAL_PROCESS_DIED",
    0xF4: "CRITICAL_OBJECT_TERMINATION",
    0xC000021A: "STATUS_SYSTEM_PROCESS_TERMINATED",
    0xC0000135: "STATUS_DLL_NOT_FOUND",
}


class TestTable:
    @pytest.mark.parametrize(("code", "name"), sorted(EXPECTED.items()))
    def test_every_required_code_has_its_real_name_and_four_meanings(self, code, name):
        """Each required code is known, named as in bugcodes.mc, with 4 parameter meanings."""
        info = bugcodes.describe(code)
        assert (info.code, info.name, info.known) == (code, name, True)
        assert len(info.params) == 4
        assert all(p.meaning for p in info.params)
        assert len(info.description) > 40

    def test_parameter_kinds_follow_the_documentation(self):
        """0xEF P1 is a process object, 0xF4 P1 the object type, 0x21A P1 a string, P2 a status."""
        assert bugcodes.describe(0xEF).params[0].kind == bugcodes.PROCESS
        assert bugcodes.describe(0xEF).params[1].kind == bugcodes.THREAD_FLAG
        assert bugcodes.describe(0xF4).params[0].kind == bugcodes.OBJECT_TYPE
        assert bugcodes.describe(0xC000021A).params[0].kind == bugcodes.STRING
        assert bugcodes.describe(0xC000021A).params[1].kind == bugcodes.STATUS
        assert bugcodes.describe(0x74).params[3].kind == bugcodes.STATUS
        dll = bugcodes.describe(NtStatus.STATUS_DLL_NOT_FOUND)
        assert "Default Load Path" in dll.params[1].meaning

    def test_unknown_ntstatus_shaped_code_gets_its_status_name(self):
        """A hard-error code not in the table is named after its NTSTATUS."""
        info = bugcodes.describe(NtStatus.STATUS_ACCESS_VIOLATION)
        assert info.name == "STATUS_ACCESS_VIOLATION"
        assert info.known is False
        assert "0xC0000005" in info.description

    def test_unknown_ntstatus_not_in_the_status_table_still_gets_a_name(self):
        """An NTSTATUS-shaped code nobody named gets STATUS_<hex>, not a crash."""
        assert bugcodes.describe(0xC0FFEE01).name == "STATUS_C0FFEE01"

    def test_unknown_plain_code_is_reported_honestly(self):
        """A small unknown code is described as unknown, with four generic parameters."""
        info = bugcodes.describe(0x1234)
        assert info.known is False
        assert info.name == "BUGCHECK_0x1234"
        assert "Unknown" in info.description

    @pytest.mark.parametrize(
        ("text", "code"),
        [
            ("ef", 0xEF),
            ("0xEF", 0xEF),
            ("critical_process_died", 0xEF),
            ("c000021a", 0xC000021A),
            ("STATUS_DLL_NOT_FOUND", 0xC0000135),
            ("STATUS_ACCESS_VIOLATION", 0xC0000005),
        ],
    )
    def test_lookup_accepts_hex_and_names(self, text, code):
        """``!analyze -show`` arguments: bare hex, 0x-hex, bugcheck or status names."""
        assert bugcodes.lookup(text) == code

    def test_lookup_rejects_nonsense(self):
        """A word that is neither a name nor hex is a clear ValueError."""
        with pytest.raises(ValueError, match="unknown bugcheck"):
            bugcodes.lookup("nonsense")


class TestAddresses:
    def test_eprocess_address_matches_the_reliability_formula(self):
        """0xFFFF_A000_0000_0000 | pid << 12."""
        assert bugcodes.eprocess_address(0x123) == 0xFFFFA00000123000

    def test_string_pointer_is_deterministic_across_processes(self):
        """Same text, same fake pointer, even in another interpreter (no hash seed)."""
        here = bugcodes.string_pointer("Windows SubSystem")
        code = "from nt import bugcodes; print(bugcodes.string_pointer('Windows SubSystem'))"
        there = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": "123", "PYTHONPATH": str(REPO)},
        ).stdout.strip()
        assert int(there) == here

    def test_string_pointer_never_collides_with_eprocess_region(self):
        """String pointers live apart from process objects and differ per text."""
        a, b = bugcodes.string_pointer("a"), bugcodes.string_pointer("b")
        assert a != b
        assert a >> 44 == 0xFFFFB
        assert a % 16 == 0

    def test_formats_match_the_stop_line(self):
        """Code as 8 hex digits, parameters as 16, BUGCHECK_STR short."""
        assert bugcodes.format_code(0xEF) == "0x000000EF"
        assert bugcodes.format_param(0xFFFFA00000123000) == "0xFFFFA00000123000"
        assert bugcodes.bugcheck_str(0xC000021A) == "0xC000021A"


class TestBuilders:
    def test_critical_process_died_carries_the_process_object(self):
        """0xEF: P1 EPROCESS of the pid, P2 0 for a process, 1 for a thread."""
        bp = bugcodes.critical_process_died(1234)
        assert bp.code == BugCode.CRITICAL_PROCESS_DIED
        assert bp.parameters == (bugcodes.eprocess_address(1234), 0, 0, 0)
        assert bugcodes.critical_process_died(1234, thread=True).parameters[1] == 1

    def test_critical_object_termination_decodes_its_strings(self):
        """0xF4: type 3, the object, and pointers whose texts are kept in ``decoded``."""
        bp = bugcodes.critical_object_termination(42, "csrss.exe")
        p1, p2, p3, p4 = bp.parameters
        assert (p1, p2) == (3, bugcodes.eprocess_address(42))
        assert p3 == bugcodes.string_pointer("csrss.exe")
        assert bp.decoded["p3_text"] == "csrss.exe"
        assert (
            bp.decoded["p4_text"] == "Terminating critical process 0xFFFFA0000002A000 (csrss.exe)"
        )
        assert p4 == bugcodes.string_pointer(bp.decoded["p4_text"])

    def test_image_name_is_cut_to_the_eprocess_field(self):
        """EPROCESS.ImageFileName holds 15 characters."""
        bp = bugcodes.critical_object_termination(1, "averyveryverylongname.exe")
        assert bp.decoded["p3_text"] == "averyveryverylo"

    def test_system_process_terminated_names_the_subsystem_and_status(self):
        """0xC000021A: P1 → "Windows SubSystem", P2 the exit status, message as on screen."""
        bp = bugcodes.system_process_terminated("Windows SubSystem", 0xC0000005)
        assert bp.parameters[1] == 0xC0000005
        assert bp.decoded["p1_text"] == "Windows SubSystem"
        assert "terminated unexpectedly with a status of 0xc0000005" in bp.decoded["message"]

    def test_hard_error_uses_the_status_as_code(self):
        """csrss's failed ServerDll load: code 0xC0000135, P1/P2 the two strings."""
        bp = bugcodes.hard_error(NtStatus.STATUS_DLL_NOT_FOUND, "winsrv", "Default Load Path")
        assert bp.code == 0xC0000135
        assert bp.parameters[2:] == (0, 0)
        assert bp.decoded == {"p1_text": "winsrv", "p2_text": "Default Load Path"}

    def test_bad_system_config_info_puts_status_in_p4(self):
        """0x74 P4 is the NTSTATUS."""
        bp = bugcodes.bad_system_config_info(NtStatus.STATUS_REGISTRY_CORRUPT)
        assert bp.parameters == (0, 0, 0, 0xC000014C)
