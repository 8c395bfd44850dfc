"""nt/log.py: the fixed keys, NTSTATUS rendering, and logging that never raises (X12)."""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path

import pytest
import structlog

from nt import log as ntlog

TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


@pytest.fixture(autouse=True)
def _reset_structlog():
    yield
    if ntlog._HELD is not None:
        ntlog._HELD._logger.close()
    structlog.reset_defaults()
    ntlog._HELD = None


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(name="log")
def _log(tmp_path):
    return ntlog.configure("csrss.exe", 4242, 1, "boot-1", tmp_path)


class TestFormat:
    def test_every_line_starts_with_the_fixed_keys(self, log, tmp_path):
        """ts boot_id pid image session level event come first, in that order, every time."""
        log.info("proc.create", child="winlogon.exe")
        log.warning("port.connect", port="\\Windows\\ApiPort")
        log.error("csr.api")
        events = _lines(tmp_path / "csrss.exe.4242.jsonl")
        assert len(events) == 3
        for ev in events:
            assert list(ev)[:7] == list(ntlog.FIXED_KEYS)
            assert TS_RE.match(ev["ts"])
            assert (ev["boot_id"], ev["pid"], ev["image"], ev["session"]) == (
                "boot-1",
                4242,
                "csrss.exe",
                1,
            )
        assert [e["level"] for e in events] == ["info", "warning", "error"]
        assert events[0]["child"] == "winlogon.exe"

    def test_timestamps_are_utc_and_ordered(self, log, tmp_path):
        """ts sorts as text in write order (what the merger relies on)."""
        for i in range(50):
            log.info("tick", i=i)
        ts = [e["ts"] for e in _lines(tmp_path / "csrss.exe.4242.jsonl")]
        assert ts == sorted(ts)

    def test_line_is_on_disk_as_soon_as_the_call_returns(self, log, tmp_path):
        """No buffering: a kill right after the call loses nothing (one write per event)."""
        log.info("boot.phase1")
        assert "boot.phase1" in (tmp_path / "csrss.exe.4242.jsonl").read_text()

    def test_status_int_becomes_hex_with_its_name(self, log, tmp_path):
        """status=0xC0000005 → "0xC0000005" and status_name STATUS_ACCESS_VIOLATION."""
        log.info("csr.reply", status=0xC0000005)
        log.info("csr.reply", status=0)
        log.info("odd", status="pending")
        log.info("flag", status=True)
        a, b, c, d = _lines(tmp_path / "csrss.exe.4242.jsonl")
        assert (a["status"], a["status_name"]) == ("0xC0000005", "STATUS_ACCESS_VIOLATION")
        assert (b["status"], b["status_name"]) == ("0x00000000", "STATUS_SUCCESS")
        assert c["status"] == "pending" and "status_name" not in c
        assert d["status"] is True and "status_name" not in d

    def test_caller_keys_never_overwrite_the_fixed_keys(self, log, tmp_path):
        """``pid=`` of a child is kept as arg_pid; the line still says who logged it."""
        log.info("proc.create", pid=777, image="winlogon.exe")
        (ev,) = _lines(tmp_path / "csrss.exe.4242.jsonl")
        assert (ev["pid"], ev["image"]) == (4242, "csrss.exe")
        assert (ev["arg_pid"], ev["arg_image"]) == (777, "winlogon.exe")

    def test_below_level_is_dropped(self, tmp_path):
        """The level given to configure filters cheaper events out."""
        log = ntlog.configure("smss.exe", 10, None, "b", tmp_path, level="warning")
        log.info("quiet")
        log.warning("loud")
        assert [e["event"] for e in _lines(tmp_path / "smss.exe.10.jsonl")] == ["loud"]

    def test_exception_is_rendered_as_text(self, log, tmp_path):
        """log.exception() carries the traceback as a string field."""
        try:
            raise RuntimeError("kaboom")
        except RuntimeError:
            log.exception("csr.handler_failed")
        (ev,) = _lines(tmp_path / "csrss.exe.4242.jsonl")
        assert ev["level"] == "error"
        assert "RuntimeError: kaboom" in ev["exception"]

    def test_odd_values_are_rendered_not_fatal(self, log, tmp_path):
        """bytes, sets, paths and objects become JSON; a cycle becomes a log_error line."""
        loop: list = []
        loop.append(loop)
        log.info("odd", data=b"\x01\x02", where=Path("/x"), obj=object(), tags={"a"})
        log.info("cycle", loop=loop)
        odd, cycle = _lines(tmp_path / "csrss.exe.4242.jsonl")
        assert (odd["data"], odd["where"], odd["tags"]) == ("0102", "/x", ["a"])
        assert cycle["event"] == "cycle" and "log_error" in cycle

    def test_get_logger_returns_the_held_logger(self, log):
        """Modules get the configured logger, bound and cheap."""
        assert ntlog.get_logger() is log

    def test_threads_never_interleave_lines(self, log, tmp_path):
        """Concurrent writers produce whole JSON lines only."""

        def work(n):
            for i in range(300):
                log.info("w", n=n, i=i, pad="x" * 200)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(_lines(tmp_path / "csrss.exe.4242.jsonl")) == 1800


class TestNeverRaises:
    def test_disk_full_is_swallowed_and_counted(self, tmp_path):
        """A sink on /dev/full (ENOSPC on every write) does not raise; drops are counted."""
        (tmp_path / "wininit.exe.7.jsonl").symlink_to("/dev/full")
        log = ntlog.configure("wininit.exe", 7, 0, "b", tmp_path)
        before = ntlog.stats()["dropped"]
        for _ in range(5):
            log.info("svc.state", status=0xC0000001)
        stats = ntlog.stats()
        assert stats["dropped"] - before == 5
        assert "OSError" in stats["last_error"] or "No space" in stats["last_error"]

    def test_closed_descriptor_is_swallowed(self, log):
        """If the file is closed under the logger, events are dropped, not raised."""
        os.close(log._logger.fd)
        before = ntlog.stats()["dropped"]
        log.critical("bugcheck", code="0x000000EF")
        assert ntlog.stats()["dropped"] == before + 1
        log._logger.fd = None  # the fd number is gone; do not let close() hit a reused one

    def test_unusable_log_dir_does_not_stop_the_process(self, tmp_path):
        """A log dir that is a file: configure and logging both succeed, events dropped."""
        blocker = tmp_path / "blocker"
        blocker.write_text("")
        log = ntlog.configure("lsass.exe", 9, 0, "b", blocker / "logs")
        before = ntlog.stats()["dropped"]
        log.info("lsa.start")
        assert ntlog.stats()["dropped"] == before + 1

    def test_a_broken_processor_does_not_raise(self, log, monkeypatch):
        """Even a failure inside the processor chain is counted, not raised."""

        def broken(_logger, _method, _event_dict):
            raise KeyError("processor bug")

        monkeypatch.setattr(log, "_processors", [broken])
        before = ntlog.stats()["errors"]
        log.info("anything")
        assert ntlog.stats()["errors"] == before + 1


class TestLatest:
    def test_update_latest_points_at_the_boot_and_replaces_atomically(self, tmp_path):
        """latest → boot id; a second boot swaps the link; no temporary link stays."""
        (tmp_path / "b1").mkdir()
        (tmp_path / "b2").mkdir()
        ntlog.update_latest(tmp_path, "b1")
        assert os.readlink(tmp_path / "latest") == "b1"
        ntlog.update_latest(tmp_path, "b2")
        assert os.readlink(tmp_path / "latest") == "b2"
        assert (tmp_path / "latest").resolve() == (tmp_path / "b2").resolve()
        assert sorted(os.listdir(tmp_path)) == ["b1", "b2", "latest"]
