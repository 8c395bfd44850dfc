"""nt/logquery.py: merging per-process logs, filters, times, tail, follow, boots."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from nt import logquery
from ntctl.logview import event_style, format_event

BASE = datetime(2026, 11, 22, 5, 35, 0, tzinfo=UTC)


def _ts(seconds: float) -> str:
    return logquery.ts_text(BASE + timedelta(seconds=seconds))


def _ev(t: float, image: str, pid: int, event: str, level="info", session=0, **kw) -> dict:
    return {
        "ts": _ts(t),
        "boot_id": "b",
        "pid": pid,
        "image": image,
        "session": session,
        "level": level,
        "event": event,
        **kw,
    }


def _write(log_dir, image, pid, events, *, mode="a"):
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"{image}.{pid}.jsonl", mode) as fh:
        for ev in events:
            fh.write(json.dumps(ev) + "\n")


@pytest.fixture(name="boot")
def _boot(tmp_path):
    d = tmp_path / "b"
    _write(
        d,
        "System",
        100,
        [
            _ev(0.0, "System", 100, "boot.phase1", session=None),
            _ev(0.3, "System", 100, "proc.create", session=None, child=200),
            _ev(5.0, "System", 100, "bugcheck", level="critical", session=None),
        ],
    )
    _write(
        d,
        "smss.exe",
        200,
        [
            _ev(0.4, "smss.exe", 200, "sm.init", session=None),
            _ev(1.0, "smss.exe", 200, "proc.create", session=None, child=300),
        ],
    )
    _write(
        d,
        "csrss.exe",
        300,
        [
            _ev(1.1, "csrss.exe", 300, "csr.start"),
            _ev(2.0, "csrss.exe", 300, "csr.api", level="warning", api="Basep"),
            _ev(3.0, "csrss.exe", 300, "csr.api", level="error"),
        ],
    )
    _write(d, "csrss.exe", 400, [_ev(2.5, "csrss.exe", 400, "csr.start", session=1)])
    return d


def _events(gen) -> list[tuple[str, str]]:
    return [(e["image"], e["event"]) for e in gen]


class TestMerge:
    def test_events_from_all_files_come_out_in_ts_order(self, boot):
        """A heap merge across processes gives one timeline."""
        ts = [e["ts"] for e in logquery.iter_events(boot)]
        assert len(ts) == 9
        assert ts == sorted(ts)
        first = _events(logquery.iter_events(boot))[:4]
        assert first == [
            ("System", "boot.phase1"),
            ("System", "proc.create"),
            ("smss.exe", "sm.init"),
            ("smss.exe", "proc.create"),
        ]

    def test_torn_and_foreign_lines_are_skipped(self, boot):
        """A half-written last line or a stray print does not break reading."""
        with open(boot / "smss.exe.200.jsonl", "a") as fh:
            fh.write('not json\n[1, 2]\n{"ts": "2026-11-22T05:35:09')
        assert len(list(logquery.iter_events(boot, image="smss"))) == 2

    def test_other_files_in_the_dir_are_ignored(self, boot):
        """Only <image>.<pid>.jsonl files are logs."""
        (boot / "README").write_text("x")
        (boot / "weird.jsonl").write_text(json.dumps(_ev(0, "x", 1, "x")) + "\n")
        assert len(list(logquery.iter_events(boot))) == 9

    def test_missing_dir_yields_nothing(self, tmp_path):
        """A boot dir that does not exist is empty, not an error."""
        assert list(logquery.iter_events(tmp_path / "nope")) == []


class TestFilters:
    def test_image_matches_without_exe_and_case_insensitively(self, boot):
        """``csrss`` and ``CSRSS.EXE`` both match csrss.exe."""
        assert len(list(logquery.iter_events(boot, image="csrss"))) == 4
        assert len(list(logquery.iter_events(boot, image="CSRSS.EXE"))) == 4
        assert {e["image"] for e in logquery.iter_events(boot, image="sm*")} == {"smss.exe"}

    def test_pid_filter(self, boot):
        """Only the one process."""
        assert {e["pid"] for e in logquery.iter_events(boot, pid=400)} == {400}

    def test_session_filter(self, boot):
        """Session 1 is only the second csrss."""
        assert _events(logquery.iter_events(boot, session=1)) == [("csrss.exe", "csr.start")]

    def test_level_is_a_minimum(self, boot):
        """``warning`` shows warnings and worse."""
        levels = [e["level"] for e in logquery.iter_events(boot, level="warning")]
        assert levels == ["warning", "error", "critical"]

    def test_unknown_level_is_rejected(self, boot):
        """A typo in the level is an error, not an empty result."""
        with pytest.raises(ValueError, match="unknown level"):
            list(logquery.iter_events(boot, level="loud"))

    def test_event_glob(self, boot):
        """``proc.*`` selects the process family; an exact name selects one event."""
        assert [e["pid"] for e in logquery.iter_events(boot, event="proc.*")] == [100, 200]
        assert len(list(logquery.iter_events(boot, event="bugcheck"))) == 1

    def test_since_and_until_are_inclusive_bounds(self, boot):
        """Times compare on the same UTC text the writer uses."""
        got = list(logquery.iter_events(boot, since=BASE + timedelta(seconds=1), until=_ts(2.5)))
        assert [e["ts"] for e in got] == [_ts(1.0), _ts(1.1), _ts(2.0), _ts(2.5)]

    def test_filters_combine(self, boot):
        """image + level + event together."""
        got = list(logquery.iter_events(boot, image="csrss", level="error", event="csr.*"))
        assert [(e["pid"], e["level"]) for e in got] == [(300, "error")]


class TestTimes:
    NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)

    @pytest.mark.parametrize(
        ("text", "delta"),
        [
            ("5m", 300),
            ("30s", 30),
            ("1h", 3600),
            ("2d", 172800),
            ("500ms", 0.5),
            ("10 min ago", 600),
            ("-5m", 300),
            ("45", 45),
        ],
    )
    def test_relative_forms_count_back_from_now(self, text, delta):
        """5m, 30s, 1h, 2d, 500ms, '10 min ago' ... mean now minus that."""
        assert logquery.parse_time(text, now=self.NOW) == self.NOW - timedelta(seconds=delta)

    def test_iso_with_zone_is_honoured(self):
        """Z and offsets are read as given."""
        assert logquery.parse_time("2026-11-22T05:35:13.123456Z") == datetime(
            2026, 11, 22, 5, 35, 13, 123456, tzinfo=UTC
        )
        assert logquery.parse_time("2026-11-22T07:35:13+02:00") == datetime(
            2026, 11, 22, 5, 35, 13, tzinfo=UTC
        )

    def test_naive_iso_is_local_time(self):
        """What a person types without a zone is their local time."""
        naive = datetime(2026, 11, 22, 5, 35, 13)
        assert logquery.parse_time("2026-11-22 05:35:13") == naive.astimezone().astimezone(UTC)

    def test_now_and_garbage(self):
        """'now' is now; nonsense is a ValueError that says what is accepted."""
        assert logquery.parse_time("now", now=self.NOW) == self.NOW
        with pytest.raises(ValueError, match="5m"):
            logquery.parse_time("yesterday-ish")

    def test_relative_since_filters_live_logs(self, tmp_path):
        """since='1m' keeps only events from the last minute."""
        now = datetime.now(UTC)
        old = {"ts": logquery.ts_text(now - timedelta(minutes=5)), "event": "old", "pid": 1}
        new = {"ts": logquery.ts_text(now - timedelta(seconds=5)), "event": "new", "pid": 1}
        _write(tmp_path, "x.exe", 1, [old, new])
        assert [e["event"] for e in logquery.iter_events(tmp_path, since="1m")] == ["new"]


class TestTail:
    def test_tail_returns_the_last_n_of_one_process(self, tmp_path):
        """The dump's last_events: oldest first, exactly n, from a long file."""
        _write(
            tmp_path,
            "csrss.exe",
            300,
            [_ev(i / 1000, "csrss.exe", 300, "e", i=i, pad="p" * 300) for i in range(500)],
        )
        got = logquery.tail(tmp_path, 300, 20)
        assert [e["i"] for e in got] == list(range(480, 500))

    def test_tail_of_a_short_or_missing_log(self, tmp_path):
        """Fewer lines than asked → all of them; no log → []."""
        _write(tmp_path, "a.exe", 5, [_ev(0, "a.exe", 5, "only")])
        assert [e["event"] for e in logquery.tail(tmp_path, 5, 10)] == ["only"]
        assert logquery.tail(tmp_path, 6, 10) == []
        assert logquery.tail(tmp_path, 5, 0) == []

    def test_last_events_maps_each_pid(self, boot):
        """{str(pid): events} for the dump writer."""
        got = logquery.last_events(boot, [100, 999], 2)
        assert [e["event"] for e in got["100"]] == ["proc.create", "bugcheck"]
        assert got["999"] == []


class TestFollow:
    def _collect(self, gen, out):
        for ev in gen:
            out.append(ev)

    def _wait_for(self, out, n, timeout=3.0):
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return len(out) >= n

    def test_follow_picks_up_appended_lines_and_new_files(self, boot):
        """Lines appended to a known file and a file created later both arrive quickly."""
        stop = threading.Event()
        out: list[dict] = []
        gen = logquery.follow(boot, stop_event=stop, poll_interval=0.02)
        worker = threading.Thread(target=self._collect, args=(gen, out), daemon=True)
        worker.start()
        time.sleep(0.1)
        assert out == []  # from_start=False: the backlog is not replayed
        _write(boot, "csrss.exe", 300, [_ev(6, "csrss.exe", 300, "csr.late")])
        assert self._wait_for(out, 1, timeout=1.0)
        _write(boot, "winlogon.exe", 500, [_ev(7, "winlogon.exe", 500, "logon.start")])
        assert self._wait_for(out, 2, timeout=1.0)
        stop.set()
        worker.join(timeout=1.0)
        assert not worker.is_alive()
        assert [e["event"] for e in out] == ["csr.late", "logon.start"]

    def test_partial_line_waits_for_its_newline(self, tmp_path):
        """Half a line is held back until the writer finishes it."""
        stop = threading.Event()
        out: list[dict] = []
        path = tmp_path / "a.exe.1.jsonl"
        path.write_text("")
        gen = logquery.follow(tmp_path, stop_event=stop, poll_interval=0.02)
        worker = threading.Thread(target=self._collect, args=(gen, out), daemon=True)
        worker.start()
        time.sleep(0.1)
        line = json.dumps(_ev(1, "a.exe", 1, "whole"))
        with open(path, "a") as fh:
            fh.write(line[:20])
            fh.flush()
            time.sleep(0.15)
            assert out == []
            fh.write(line[20:] + "\n")
        assert self._wait_for(out, 1, timeout=1.0)
        stop.set()
        worker.join(timeout=1.0)
        assert out[0]["event"] == "whole"

    def test_from_start_replays_the_backlog_filtered(self, boot):
        """from_start=True yields existing events first, filters applied."""
        stop = threading.Event()
        gen = logquery.follow(
            boot,
            image="csrss",
            level="warning",
            stop_event=stop,
            from_start=True,
            poll_interval=0.02,
        )
        got = [next(gen), next(gen)]
        stop.set()
        assert [e["level"] for e in got] == ["warning", "error"]
        assert list(gen) == []


class TestBoots:
    def _make(self, root, name, start):
        _write(root / name, "System", 4, [_ev(start, "System", 4, "boot.phase1")])

    def test_latest_previous_and_by_id(self, tmp_path):
        """latest follows the symlink, -1 is the boot before it, ids and prefixes resolve."""
        self._make(tmp_path, "zz-first", 0)
        self._make(tmp_path, "aa-second", 100)
        self._make(tmp_path, "mm-third", 200)
        os.symlink("aa-second", tmp_path / "latest")
        assert logquery.resolve_boot(tmp_path).name == "aa-second"
        assert logquery.resolve_boot(tmp_path, "-1").name == "zz-first"
        assert logquery.resolve_boot(tmp_path, "mm-third").name == "mm-third"
        assert logquery.resolve_boot(tmp_path, "mm").name == "mm-third"
        assert [b.name for b in logquery.list_boots(tmp_path)] == [
            "zz-first",
            "aa-second",
            "mm-third",
        ]

    def test_without_symlink_latest_is_the_newest_boot(self, tmp_path):
        """Order is by each boot's first event, not by name."""
        self._make(tmp_path, "zz", 0)
        self._make(tmp_path, "aa", 50)
        assert logquery.resolve_boot(tmp_path, "latest").name == "aa"
        assert logquery.resolve_boot(tmp_path, "-1").name == "zz"

    def test_missing_boots_are_clear_errors(self, tmp_path):
        """No logs, too far back, or an unknown id: FileNotFoundError with the reason."""
        with pytest.raises(FileNotFoundError, match="no boot logs"):
            logquery.resolve_boot(tmp_path)
        self._make(tmp_path, "only", 0)
        with pytest.raises(FileNotFoundError, match="boot -1"):
            logquery.resolve_boot(tmp_path, "-1")
        with pytest.raises(FileNotFoundError, match="no boot 'other'"):
            logquery.resolve_boot(tmp_path, "other")


class TestLogView:
    """ntctl/logview.py renders what logquery reads (kept here: same events)."""

    def test_line_layout(self):
        """``HH:MM:SS.mmm image[pid] s<session> LEVEL event key=value``."""
        ev = _ev(
            13.123456,
            "csrss.exe",
            300,
            "csr.api",
            level="warning",
            session=1,
            api="BasepCreateProcess",
            note="two words",
            status="0xC0000005",
            status_name="STATUS_ACCESS_VIOLATION",
        )
        assert format_event(ev).plain == (
            "05:35:13.123 csrss.exe[300] s1 WARN  csr.api api=BasepCreateProcess "
            'note="two words" status=0xC0000005(STATUS_ACCESS_VIOLATION)'
        )

    def test_master_smss_has_no_session(self):
        """session None prints as s-."""
        assert " s- " in format_event(_ev(0, "smss.exe", 200, "sm.init", session=None)).plain

    def test_colours_by_level_and_family(self):
        """bugcheck red, proc.* cyan, errors red: the styles are on the right spans."""
        assert event_style("bugcheck") == "bold red"
        assert event_style("proc.exit") == "cyan"
        assert event_style("unknown.thing") == "white"
        line = format_event(_ev(0, "System", 4, "bugcheck", level="critical"))
        styles = dict(line.segments)
        assert styles["bugcheck"] == "bold red"
        assert "red" in styles["CRIT "]

    def test_exception_goes_on_indented_lines(self):
        """A traceback is appended below the event, indented."""
        ev = _ev(0, "a.exe", 1, "boom", level="error", exception="Traceback\nKeyError: 1")
        assert format_event(ev).plain.endswith("boom\n    Traceback\n    KeyError: 1")
