"""ntctl/analyze.py: ``!analyze -v`` text and its JSON twin carry the same facts."""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime

import pytest

from nt import bugcodes, dump, stopscreen
from nt.status import NtStatus
from ntctl import analyze as an

PID = 0x123  # EPROCESS 0xFFFFA00000123000, as in the brief's example


def _events(pid, image, names):
    return [
        {
            "ts": f"2026-11-22T05:35:1{i}.000000Z",
            "boot_id": "b",
            "pid": pid,
            "image": image,
            "session": 0,
            "level": "info",
            "event": name,
            "api": "BasepCreateProcess",
        }
        for i, name in enumerate(names)
    ]


def _ef_record(**fault):
    bp = bugcodes.critical_process_died(PID)
    proc = dict(
        session=0,
        exit_status=1,
        signal=signal.SIGKILL,
        critical=True,
        command_line="csrss.exe ObjectDirectory=\\Windows",
    )
    proc.update(fault)
    return dump.build_record(
        bp.code,
        bp.parameters,
        decoded=bp.decoded,
        profile="win10",
        boot_id="boot-42",
        uptime_ms=3_723_456,
        faulting_process=dump.process_info(PID, "csrss.exe", **proc),
        detected_by={"pid": 100, "image": "System"},
        consequences=[
            dump.process_info(
                800, "winlogon.exe", exit_status=0xC0000037, ts="2026-11-22T05:35:20.000000Z"
            )
        ],
        last_events={
            PID: _events(PID, "csrss.exe", ["csr.start", "csr.api"]),
            100: _events(100, "System", ["proc.exit"]),
        },
        timestamp=datetime(2026, 11, 22, 5, 35, 21, tzinfo=UTC),
    )


@pytest.fixture(name="text")
def _text():
    return an.to_text(an.analyze(_ef_record()), width=200)


class TestText:
    def test_banner_name_and_code(self, text):
        """The banner, then ``CRITICAL_PROCESS_DIED (ef)`` as WinDbg prints it."""
        assert "Bugcheck Analysis" in text
        assert "CRITICAL_PROCESS_DIED (ef)" in text
        assert "A critical system process died" in text

    def test_each_argument_is_explained_for_this_dump(self, text):
        """Arg1 names the culprit and its pid; Arg2 says process, not thread."""
        assert (
            "Arg1: ffffa00000123000, The process object: the critical process that died "
            "(csrss.exe, pid 291)"
        ) in text
        assert "Arg2: 0000000000000000, 0: a process died" in text
        assert "Arg3: 0000000000000000, Reserved" in text
        assert "Arg4: 0000000000000000, Reserved" in text

    def test_debugging_details_sections(self, text):
        """BUGCHECK_CODE/P1..P4, PROCESS_NAME, how it died, who noticed, buckets, boot facts."""
        for line in (
            "BUGCHECK_CODE:  ef",
            "BUGCHECK_P1:  ffffa00000123000",
            "BUGCHECK_P2:  0",
            "PROCESS_NAME:  csrss.exe",
            "PROCESS_ID:  291 (session 0)",
            "SIGNAL:  SIGKILL (9)",
            "HOW_IT_DIED:  killed by SIGKILL",
            "DETECTED_BY:  System (pid 100)",
            "BUGCHECK_STR:  0xEF",
            "DEFAULT_BUCKET_ID:  WIN10_CRITICAL_PROCESS_DIED",
            "FAILURE_BUCKET_ID:  0xEF_csrss.exe_SIGKILL",
            "PROFILE:  win10",
            "BOOT_ID:  boot-42",
            "UPTIME:  0 days 1:02:03.456",
        ):
            assert line in text, line

    def test_last_events_and_consequences(self, text):
        """Both event tables and the later death appear."""
        assert "Last events of the culprit: csrss.exe (pid 291)" in text
        assert "Last events of the detecting process: System (pid 100)" in text
        assert "csr.api" in text and "proc.exit" in text
        assert "api=BasepCreateProcess" in text
        assert "CONSEQUENCES:" in text
        assert "winlogon.exe (pid 800)" in text
        assert "STATUS_PORT_DISCONNECTED" in text

    def test_exit_status_death_is_bucketed_by_status_name(self):
        """A crash (no signal) buckets on its NTSTATUS name."""
        rec = _ef_record(exit_status=0xC0000005, signal=None)
        text = an.to_text(an.analyze(rec), width=200)
        assert "HOW_IT_DIED:  exited with 0xC0000005 STATUS_ACCESS_VIOLATION" in text
        assert "EXIT_STATUS:  0xC0000005 (STATUS_ACCESS_VIOLATION)" in text
        assert "FAILURE_BUCKET_ID:  0xEF_csrss.exe_STATUS_ACCESS_VIOLATION" in text

    def test_f4_explains_strings_and_object_type(self):
        """0xF4: object type 3 = process, image name and message decoded from pointers."""
        bp = bugcodes.critical_object_termination(PID, "winlogon.exe")
        rec = dump.build_record(
            bp.code,
            bp.parameters,
            decoded=bp.decoded,
            profile="win7",
            boot_id="b",
            uptime_ms=1,
            faulting_process=dump.process_info(PID, "winlogon.exe", signal=9),
            detected_by={"pid": 100, "image": "System"},
        )
        text = an.to_text(an.analyze(rec), width=220)
        assert "Arg1: 0000000000000003, Terminating object type: 3 = process" in text
        assert "the critical process that was terminated (winlogon.exe, pid 291)" in text
        assert 'The process image file name: "winlogon.exe"' in text
        assert '"Terminating critical process 0xFFFFA00000123000 (winlogon.exe)"' in text

    def test_21a_explains_the_subsystem_string_and_status(self):
        """0xC000021A: P1 decoded, P2 as NTSTATUS tied to the dead process."""
        bp = bugcodes.system_process_terminated("Windows SubSystem", 0xC0000005)
        rec = dump.build_record(
            bp.code,
            bp.parameters,
            decoded=bp.decoded,
            profile="nt5",
            boot_id="b",
            uptime_ms=1,
            faulting_process=dump.process_info(PID, "csrss.exe", exit_status=0xC0000005),
            detected_by={"pid": 200, "image": "smss.exe"},
        )
        text = an.to_text(an.analyze(rec), width=220)
        assert "STATUS_SYSTEM_PROCESS_TERMINATED (c000021a)" in text
        assert 'A string that identifies the problem: "Windows SubSystem"' in text
        assert (
            "The error code: 0xC0000005 STATUS_ACCESS_VIOLATION (exit status of csrss.exe, pid 291)"
        ) in text
        assert "DETECTED_BY:  smss.exe (pid 200)" in text

    def test_dump_without_culprit_still_analyzes(self):
        """0x71 has no faulting process: analysis works, bucket uses the code only."""
        bp = bugcodes.status_bugcheck(0x71, 0)
        rec = dump.build_record(
            bp.code,
            bp.parameters,
            profile="win10",
            boot_id="b",
            uptime_ms=4000,
            detected_by={"pid": 1, "image": "System"},
        )
        facts = an.analyze_json(rec)
        assert facts["failure_bucket_id"] == "0x71"
        assert facts["process_name"] == "System"
        assert "SESSION5_INITIALIZATION_FAILED (71)" in an.to_text(an.analyze(rec))


class TestJson:
    def test_json_has_the_same_facts_as_the_text(self, text):
        """Code, name, argument meanings, culprit, buckets: identical in both views."""
        facts = an.analyze_json(_ef_record())
        json.dumps(facts)  # serialisable as is
        assert facts["bugcheck_code"] == 0xEF
        assert facts["bugcheck_name"] == "CRITICAL_PROCESS_DIED"
        assert facts["failure_bucket_id"] == "0xEF_csrss.exe_SIGKILL"
        assert facts["culprit"]["pid"] == PID and facts["culprit"]["how"].startswith("killed")
        assert facts["detected_by"] == {"pid": 100, "image": "System"}
        for arg in facts["arguments"]:
            assert f"Arg{arg['index']}: {arg['hex']}, {arg['meaning']}" in text
        assert "csrss.exe, pid 291" in facts["arguments"][0]["meaning"]
        assert [e["event"] for e in facts["last_events_culprit"]] == ["csr.start", "csr.api"]
        assert [e["event"] for e in facts["last_events_detector"]] == ["proc.exit"]
        assert facts["consequences"][0]["image"] == "winlogon.exe"

    def test_json_of_a_dump_read_from_disk(self, tmp_path):
        """A dump written and read back analyzes the same (string pid keys included)."""
        rec = _ef_record()
        back = dump.read_dump(dump.write_dump(tmp_path, rec, when=datetime(2026, 1, 1)))
        facts = an.analyze_json(back)
        assert facts["dump_file"] == "Mini010126-01.json"
        assert facts["failure_bucket_id"] == an.analyze_json(rec)["failure_bucket_id"]
        assert len(facts["last_events_culprit"]) == 2


class TestShow:
    def test_show_explains_a_code_without_a_dump(self):
        """``!analyze -show ef``: name, description, every argument's general meaning."""
        text = an.to_text(an.show("ef"), width=200)
        assert "CRITICAL_PROCESS_DIED (ef)" in text
        assert "Arg1: The process object" in text
        assert "Arg2: 0 if a process died, 1 if a thread died" in text

    def test_show_with_parameters_decodes_them(self):
        """Given values, statuses are named (as ``-show Code Params`` does)."""
        facts = an.show_json(0x74, [0, 0, 0, NtStatus.STATUS_REGISTRY_CORRUPT])
        assert "STATUS_REGISTRY_CORRUPT" in facts["arguments"][3]["meaning"]
        text = an.to_text(an.show(0x74, [0, 0, 0, 0xC000014C]), width=200)
        assert "Arg4: 00000000c000014c, The NT status value" in text

    def test_show_of_an_ntstatus_hard_error(self):
        """An NTSTATUS-shaped code is explained as a hard error under its status name."""
        facts = an.show_json("c0000005")
        assert facts["bugcheck_name"] == "STATUS_ACCESS_VIOLATION"
        assert facts["known"] is False

    def test_show_of_nonsense_is_a_value_error(self):
        """The CLI can turn this into a usage error."""
        with pytest.raises(ValueError):
            an.show("not-a-code")


class TestStopScreen:
    """nt/stopscreen.py renders the same record for the console (kept here: same input)."""

    def test_classic_and_modern_stop_lines(self):
        """Intro, name, ``*** STOP: 0x000000EF (...)``, ``Stop code:``, culprit, dump path."""
        text = stopscreen.render_stop_text(_ef_record(), "/var/C/Windows/Minidump/Mini.json")
        assert text.startswith("A problem has been detected and Windows has been shut down")
        assert "\nCRITICAL_PROCESS_DIED\n" in text
        assert "Technical information:" in text
        assert (
            "*** STOP: 0x000000EF (0xFFFFA00000123000, 0x0000000000000000, "
            "0x0000000000000000, 0x0000000000000000)"
        ) in text
        assert "Stop code: CRITICAL_PROCESS_DIED (0x000000EF)" in text
        assert "What failed: csrss.exe (pid 291) in session 0, killed by SIGKILL" in text
        assert "Collecting data for crash dump ..." in text
        assert "Dump written to /var/C/Windows/Minidump/Mini.json" in text

    def test_crash_control_changes_the_footer(self):
        """CrashDumpEnabled=0 says no dump; AutoReboot=0 says halted."""
        rec = _ef_record()
        rec["config"].update(CrashDumpEnabled=0, AutoReboot=0)
        text = stopscreen.render_stop_text(rec)
        assert "Crash dump disabled (CrashDumpEnabled=0)" in text
        assert "Dump written" not in text
        assert "The system is halted (AutoReboot=0)." in text

    def test_21a_shows_the_hard_error_message(self):
        """0xC000021A prints the errcodes.mc sentence naming the subsystem."""
        bp = bugcodes.system_process_terminated("Windows Logon Process", 0xC0000005)
        rec = dump.build_record(
            bp.code, bp.parameters, decoded=bp.decoded, profile="nt5", boot_id="b", uptime_ms=1
        )
        text = stopscreen.render_stop_text(rec)
        assert (
            "The Windows Logon Process system process terminated unexpectedly with a "
            "status of 0xc0000005"
        ) in text
        assert "What failed" not in text

    def test_rich_form_is_white_on_blue(self):
        """The renderable carries the blue style and the same lines."""
        panel = stopscreen.render_stop(_ef_record())
        assert "on blue" in str(panel.style)
        assert "Stop code: CRITICAL_PROCESS_DIED" in an.to_text(panel, width=140)
