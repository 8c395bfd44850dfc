"""Crash dumps: the record builder, Windows-style names, atomic writes, reading back."""

from __future__ import annotations

import json
import os
import signal
from datetime import UTC, datetime

import pytest

from nt import bugcodes, dump
from nt.status import NtStatus

WHEN = datetime(2026, 11, 22, 5, 35, 13)


def _record(**overrides):
    bp = bugcodes.critical_process_died(1234)
    kwargs = dict(
        decoded=bp.decoded,
        profile="win10",
        boot_id="b00t",
        uptime_ms=12_345,
        faulting_process=dump.process_info(
            1234, "csrss.exe", session=0, exit_status=1, signal=signal.SIGKILL, critical=True
        ),
        detected_by={"pid": 100, "image": "System"},
        process_table=[{"pid": 1234, "image": "csrss.exe", "state": "dead"}],
        port_table=[{"name": "\\Windows\\ApiPort", "owner": 1234}],
        consequences=[dump.process_info(1300, "winlogon.exe", exit_status=0xC0000037)],
        last_events={1234: [{"ts": "2026-11-22T05:35:13.000001Z", "event": "csr.api"}]},
        config={"AutoReboot": 0},
        timestamp=datetime(2026, 11, 22, 5, 35, 13, tzinfo=UTC),
    )
    kwargs.update(overrides)
    return dump.build_record(bp.code, bp.parameters, **kwargs)


class TestRecord:
    def test_builder_fills_names_meanings_and_decoded_facts(self):
        """Name and meanings come from the table; the culprit's facts land in ``decoded``."""
        rec = _record()
        assert rec["bugcheck_code"] == 0xEF
        assert rec["bugcheck_name"] == "CRITICAL_PROCESS_DIED"
        assert rec["parameters"] == [0xFFFFA000004D2000, 0, 0, 0]
        assert rec["parameter_meanings"][0] == "The process object"
        assert rec["decoded"]["process_name"] == "csrss.exe"
        assert rec["decoded"]["signal_name"] == "SIGKILL"
        assert rec["faulting_process"]["exit_status_name"] == "0x00000001"
        assert rec["consequences"][0]["exit_status_name"] == "STATUS_PORT_DISCONNECTED"
        assert rec["timestamp"] == "2026-11-22T05:35:13.000000Z"

    def test_builder_keys_last_events_by_pid_string_and_merges_crash_control(self):
        """JSON object keys are strings; unset CrashControl values take Windows defaults."""
        rec = _record()
        assert list(rec["last_events"]) == ["1234"]
        assert rec["config"]["AutoReboot"] == 0
        assert rec["config"]["CrashDumpEnabled"] == 7

    def test_builder_pads_parameters_to_four(self):
        """A caller passing fewer parameters still gets four."""
        rec = dump.build_record(0xE2, [], profile="win10", boot_id="b", uptime_ms=1)
        assert rec["parameters"] == [0, 0, 0, 0]
        assert rec["faulting_process"] is None

    @pytest.mark.parametrize(
        ("proc", "text"),
        [
            ({"signal": 9, "exit_status": 1}, "killed by SIGKILL (NT exit status 0x00000001)"),
            ({"exit_status": 0xC0000005}, "exited with 0xC0000005 STATUS_ACCESS_VIOLATION"),
            ({"exit_status": 3}, "exited with 0x00000003"),
            ({}, "unknown"),
        ],
    )
    def test_how_died_reads_like_a_sentence(self, proc, text):
        """Signals name the signal; statuses their NTSTATUS name."""
        assert dump.how_died(proc) == text


class TestNaming:
    def test_names_count_up_per_date_like_windows(self, tmp_path):
        """MiniMMDDYY-01, -02, ... for the same date; a new date starts at 01 again."""
        a = dump.write_dump(tmp_path, _record(), when=WHEN)
        b = dump.write_dump(tmp_path, _record(), when=WHEN)
        c = dump.write_dump(tmp_path, _record(), when=datetime(2026, 11, 23))
        assert [a.name, b.name, c.name] == [
            "Mini112226-01.json",
            "Mini112226-02.json",
            "Mini112326-01.json",
        ]

    def test_next_number_follows_the_highest_not_a_gap(self, tmp_path):
        """After -01 and -05 comes -06, so names keep the write order."""
        for nn in (1, 5):
            (tmp_path / f"Mini112226-{nn:02d}.json").write_text("{}")
        assert dump.next_dump_path(tmp_path, WHEN).name == "Mini112226-06.json"

    def test_when_99_is_used_the_lowest_gap_is_taken(self, tmp_path):
        """-99 taken → the lowest free number; all 99 taken → FileExistsError."""
        for nn in range(2, 100):
            (tmp_path / f"Mini112226-{nn:02d}.json").write_text("{}")
        assert dump.next_dump_path(tmp_path, WHEN).name == "Mini112226-01.json"
        (tmp_path / "Mini112226-01.json").write_text("{}")
        with pytest.raises(FileExistsError):
            dump.next_dump_path(tmp_path, WHEN)

    def test_date_defaults_to_the_local_date_of_the_record(self, tmp_path):
        """Without ``when`` the record's timestamp (in local time) names the file."""
        rec = _record()
        local = datetime(2026, 11, 22, 5, 35, 13, tzinfo=UTC).astimezone()
        assert dump.write_dump(tmp_path, rec).name == f"Mini{local:%m%d%y}-01.json"


class TestAtomicWrite:
    def test_success_leaves_no_tmp_file(self, tmp_path):
        """Only the dump is left in the directory after a write."""
        path = dump.write_dump(tmp_path / "Minidump", _record(), when=WHEN)
        assert sorted(os.listdir(path.parent)) == [path.name]

    def test_failure_before_rename_leaves_neither_dump_nor_tmp(self, tmp_path, monkeypatch):
        """A crash between writing and renaming must not publish a partial dump (K5)."""

        def boom(src, dst):
            raise OSError("simulated crash before rename")

        monkeypatch.setattr(dump.os, "replace", boom)
        with pytest.raises(OSError, match="simulated"):
            dump.write_dump(tmp_path, _record(), when=WHEN)
        assert os.listdir(tmp_path) == []

    def test_failure_during_write_keeps_the_old_dump_intact(self, tmp_path, monkeypatch):
        """Rewriting a dump that fails midway leaves the previous content whole."""
        path = dump.write_dump(tmp_path, _record(), when=WHEN)
        before = path.read_bytes()
        monkeypatch.setattr(dump.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError("EIO")))
        with pytest.raises(OSError):
            dump.rewrite_dump(path, _record(consequences=[]))
        assert path.read_bytes() == before
        assert os.listdir(tmp_path) == [path.name]

    def test_stale_tmp_files_are_removed_and_ignored(self, tmp_path):
        """A ``.Mini*.tmp`` left by a kill is not listed and can be cleaned."""
        stale = tmp_path / ".Mini112226-01.json.abc.tmp"
        stale.write_text('{"bugcheck_code": ')
        assert dump.list_dumps(tmp_path) == []
        assert dump.remove_stale_tmp(tmp_path) == [stale]
        assert not stale.exists()


class TestReadBack:
    def test_round_trip_preserves_every_field(self, tmp_path):
        """What was written is what is read, plus the file's own name."""
        rec = _record()
        path = dump.write_dump(tmp_path, rec, when=WHEN)
        back = dump.read_dump(path)
        assert back == {**rec, "dump_file": path.name}

    def test_64_bit_parameters_survive_json(self, tmp_path):
        """EPROCESS addresses above 2**63 come back as the same ints."""
        rec = _record()
        back = dump.read_dump(dump.write_dump(tmp_path, rec, when=WHEN))
        assert back["parameters"][0] == 0xFFFFA000004D2000

    def test_reading_a_non_dump_is_a_clear_error(self, tmp_path):
        """Garbage or unrelated JSON raises ValueError saying it is not a crash dump."""
        (tmp_path / "x.json").write_text("{not json")
        (tmp_path / "y.json").write_text(json.dumps({"hello": 1}))
        for name in ("x.json", "y.json"):
            with pytest.raises(ValueError, match="not a crash dump"):
                dump.read_dump(tmp_path / name)

    def test_list_is_oldest_first_and_latest_is_the_newest(self, tmp_path):
        """Dates order first, then the write order within a date."""
        later = dump.write_dump(tmp_path, _record(), when=datetime(2027, 1, 2))
        first = dump.write_dump(tmp_path, _record(), when=datetime(2026, 12, 31))
        second = dump.write_dump(tmp_path, _record(), when=datetime(2026, 12, 31))
        (tmp_path / "notes.txt").write_text("not a dump")
        assert dump.list_dumps(tmp_path) == [first, second, later]
        assert dump.latest_dump(tmp_path) == later

    def test_latest_of_an_empty_or_missing_dir_is_none(self, tmp_path):
        """No dumps → None, not an exception."""
        assert dump.latest_dump(tmp_path) is None
        assert dump.latest_dump(tmp_path / "missing") is None
        assert dump.list_dumps(tmp_path / "missing") == []

    def test_hard_error_dump_keeps_the_strings(self, tmp_path):
        """0xC0000135's string parameters are readable from the dump."""
        bp = bugcodes.hard_error(NtStatus.STATUS_DLL_NOT_FOUND, "winsrv", "Default Load Path")
        rec = dump.build_record(
            bp.code, bp.parameters, decoded=bp.decoded, profile="win10", boot_id="b", uptime_ms=9
        )
        back = dump.read_dump(dump.write_dump(tmp_path, rec, when=WHEN))
        assert back["bugcheck_name"] == "STATUS_DLL_NOT_FOUND"
        assert back["decoded"]["p1_text"] == "winsrv"
