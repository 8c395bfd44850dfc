"""The EventLog service (wevtsvc.dll): replay of the boot's event.report lines, following
new ones, de-duplication by record id, durability across restarts, 6005/6006/6008/6009,
and the ElfrReadELW / ElfrReportEventW handlers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nt.evtlog import EventLogStore, Query, format_text
from nt.evtmsg import EventQueue, report_event
from ports.contract import ClientContext
from processes.svchost.dll import wevtsvc
from tests.unit.svc_fakes import Running, make_globals

# A ServiceMain that raises on its thread is a failure here, not a warning.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")


def line(
    pid: int, seq: int, event_id: int, strings: list[str], ts: str, image: str = "services.exe"
) -> str:

    from nt.evtmsg import EVENTS, format_message

    d = EVENTS[event_id]
    return json.dumps(
        {
            "ts": ts,
            "boot_id": "boot-1",
            "pid": pid,
            "image": image,
            "session": 0,
            "level": "info",
            "event": "event.report",
            "event_id": event_id,
            "log": d.log,
            "source": d.source,
            "event_level": "Information" if d.level == 4 else "Error",
            "strings": strings,
            "message": format_message(d.template, strings),
            "record": f"{pid}:{seq}",
        }
    )


def write_log(root: Path, name: str, *lines: str, boot: str = "boot-1") -> Path:
    d = root / "logs" / boot
    d.mkdir(parents=True, exist_ok=True)
    path = d / name
    with open(path, "a") as fh:
        for text in lines:
            fh.write(text + "\n")
    return path


def client(pid: int = 4242, image: str = "services.exe") -> ClientContext:
    return ClientContext(pid, image, 0, {}, 1, "\\RPC Control\\eventlog", {})


@pytest.fixture(autouse=True)
def fresh_queue(monkeypatch):
    """Each test gets its own process-wide EVENT_QUEUE (the service attaches to it)."""
    queue = EventQueue()
    monkeypatch.setattr(wevtsvc, "EVENT_QUEUE", queue)
    monkeypatch.setattr("nt.evtmsg.EVENT_QUEUE", queue)
    return queue


def start(tmp_path: Path, **kw):
    g = make_globals(tmp_path, **kw)
    wevtsvc.SvchostPushServiceGlobals(g)
    svc = Running(wevtsvc.ServiceMain, "EventLog")
    assert svc.wait(4)
    return g, svc


def ids(root: Path, log: str = "System") -> list[int]:
    store = EventLogStore(root, readonly=True)
    try:
        return [e.event_id for e in store.query(log)]
    finally:
        store.close()


def test_replays_the_boot_before_it_ran_then_follows_and_writes_6005_6009_6006(tmp_path):
    write_log(
        tmp_path,
        "services.exe.100.jsonl",
        line(100, 1, 7026, ["disk"], "2026-12-02T06:00:00.000001Z"),
        '{"torn": ',  # a torn tail of a killed process is skipped
    )
    write_log(
        tmp_path, "gone.exe.99.jsonl", line(99, 1, 7036, ["X", "running"], "2026-12-02T06:00:00.5Z")
    )
    g, svc = start(tmp_path)
    # Already in when RUNNING was reported: 6009 and 6005, then the replayed boot.
    assert ids(tmp_path)[:2] == [6009, 6005]
    assert sorted(ids(tmp_path)[2:]) == [7026, 7036]
    write_log(
        tmp_path,
        "services.exe.100.jsonl",
        line(100, 2, 7036, ["Y", "stopped"], "2026-12-02T06:00:01Z"),
    )
    service = wevtsvc.EventLogService(svc.ctx, ["EventLog"], g)
    service.store = EventLogStore(tmp_path)
    service.follower = wevtsvc.LogFollower(tmp_path / "logs" / "boot-1", "boot-1")
    service.poll()  # a second reader of the same lines: every record already stored
    service.store.close()
    svc.stop()
    got = ids(tmp_path)
    assert got.count(7036) == 2 and got.count(7026) == 1 and got[-1] == 6006
    sixty09 = EventLogStore(tmp_path, readonly=True).query("System", Query(event_id=6009))[0]
    assert sixty09.message == "Microsoft (R) Windows (R) 10.00. 19045  Multiprocessor Free."
    assert sixty09.computer == "NTMODEL"


def test_a_record_by_port_and_by_log_line_is_stored_once(tmp_path):
    g, svc = start(tmp_path)
    service = wevtsvc.EventLogService(svc.ctx, ["EventLog"], g)
    service.store = EventLogStore(tmp_path)
    record = report_event(g.log, 7036, ["Spooler", "running"], pid=4242, queue=EventQueue())
    body = {"event": {**wevtsvc.ev.event_body(record, "2026-12-02T06:00:02Z")}}
    first = service.ElfrReportEventW(body, client())
    again = service.ElfrReportEventW(body, client())
    assert first["duplicate"] is False and first["record_number"] > 0
    assert again == {"record_number": 0, "duplicate": True}
    write_log(
        tmp_path,
        "services.exe.4242.jsonl",
        line(
            4242,
            int(record.record.split(":")[1]),
            7036,
            ["Spooler", "running"],
            "2026-12-02T06:00:02Z",
        ),
    )
    service.follower = wevtsvc.LogFollower(tmp_path / "logs" / "boot-1", "boot-1")
    service.poll()
    service.store.close()
    svc.stop()
    assert ids(tmp_path).count(7036) == 1


def test_read_handler_filters_pages_and_newest(tmp_path):
    g, svc = start(tmp_path)
    service = wevtsvc.EventLogService(svc.ctx, ["EventLog"], g)
    service.store = EventLogStore(tmp_path)
    for n in range(300):
        r = report_event(g.log, 7036, [f"S{n}", "running"], pid=7, queue=EventQueue())
        service.ElfrReportEventW(
            {"event": wevtsvc.ev.event_body(r, f"2026-12-02T07:{n // 60:02d}:{n % 60:02d}Z")},
            client(),
        )
    page = service.ElfrReadELW({"log": "system", "after_record": 0, "event_id": 7036}, client())
    assert len(page["records"]) == 256 and page["more"] is True
    rest = service.ElfrReadELW(
        {"log": "System", "after_record": page["records"][-1]["record_number"], "event_id": 7036},
        client(),
    )
    assert len(rest["records"]) == 44 and rest["more"] is False
    big = report_event(g.log, 7000, ["X" * 30000, "Y" * 30000], pid=7, queue=EventQueue())
    for _ in range(8):  # eight events of ~90 KB: more than one reply holds
        big = report_event(g.log, 7000, list(big.strings), pid=7, queue=EventQueue())
        body = {"event": wevtsvc.ev.event_body(big, "2026-12-02T08:00:00Z")}
        service.ElfrReportEventW(body, client())
    first = service.ElfrReadELW({"log": "System", "after_record": 0, "event_id": 7000}, client())
    assert 0 < len(first["records"]) < 8 and first["more"] is True
    newest = service.ElfrReadELW({"log": "System", "after_record": 0, "newest": 2}, client())
    assert [r["strings"][0][:1] for r in newest["records"]] == ["X", "X"]
    since = service.ElfrReadELW(
        {"log": "System", "after_record": 0, "event_id": 7036, "since": "2026-12-02T07:04:50Z"},
        client(),
    )
    assert [r["strings"][0] for r in since["records"]] == [f"S{n}" for n in range(290, 300)]
    assert (
        service.ElfrReadELW({"log": "Setup", "after_record": 0}, client()) == wevtsvc.ev.NO_SUCH_LOG
    )
    admin = client()
    admin.token = {"sid": "S-1-5-21-1-500", "groups": ["S-1-5-32-544"]}
    assert service.ElfrNumberOfRecords({"log": "Security"}, admin) == {"count": 0}
    user = client()
    user.token = {"sid": "S-1-5-21-1-1001", "groups": ["S-1-5-32-545"]}
    assert service.ElfrNumberOfRecords({"log": "Security"}, user) == 0xC0000022
    assert service.ElfrReadELW({"log": "Security", "after_record": 0}, user) == 0xC0000022
    assert service.ElfrReadELW({"log": "System", "after_record": 0, "newest": 1}, user)["records"]
    service.store.close()
    svc.stop()


def test_queued_events_of_its_own_process_go_in_first_and_in_order(tmp_path, fresh_queue):
    g = make_globals(tmp_path)
    for n in range(3):  # reported in this process before EventLog ran
        report_event(g.log, 7036, [f"Early{n}", "running"])
    wevtsvc.SvchostPushServiceGlobals(g)
    svc = Running(wevtsvc.ServiceMain, "EventLog")
    assert svc.wait(4)
    report_event(g.log, 7036, ["Late", "running"])  # attached: written at once
    svc.stop()
    events = EventLogStore(tmp_path, readonly=True).query("System", Query(event_id=7036))
    assert [e.strings[0] for e in events] == ["Early0", "Early1", "Early2", "Late"]
    assert fresh_queue.sink is None  # detached at stop: later reports queue again


def test_durable_across_restart_and_6008_after_an_unexpected_end(tmp_path):
    g, svc = start(tmp_path, boot_id="boot-1")
    svc.stop()
    g, svc = start(tmp_path, boot_id="boot-2")  # boot-1 ended with 6006: no 6008
    svc.stop()
    # Forge the crash: drop boot-2's 6006, as if the machine died before EventLog stopped.
    import sqlite3

    db = sqlite3.connect(tmp_path / "C/Windows/System32/winevt/Logs/System.sqlite")
    db.execute("DELETE FROM events WHERE boot_id='boot-2' AND event_id=6006")
    db.commit()
    db.close()
    g, svc = start(tmp_path, boot_id="boot-3")
    svc.stop()
    # boot-3's kernel logged an orderly shutdown but EventLog never wrote 6006 (it was
    # ended with its process): a clean end, no 6008 at boot-4.
    db = sqlite3.connect(tmp_path / "C/Windows/System32/winevt/Logs/System.sqlite")
    db.execute("DELETE FROM events WHERE boot_id='boot-3' AND event_id=6006")
    db.commit()
    db.close()
    write_log(tmp_path, "System.1.jsonl", '{"event": "shutdown.complete"}', boot="boot-3")
    g, svc = start(tmp_path, boot_id="boot-4")
    svc.stop()
    got = ids(tmp_path)
    assert got.count(6005) == 4 and got.count(6008) == 1
    assert got.index(6008) > got.index(6005) and got[got.index(6008) + 1] == 6009
    text = format_text(EventLogStore(tmp_path, readonly=True).query("System", Query(event_id=6008)))
    assert "Source: EventLog" in text and "Event ID: 6008" in text and "was unexpected." in text


def test_wevtutil_text_layout(tmp_path):
    g, svc = start(tmp_path)
    svc.stop()
    text = format_text(EventLogStore(tmp_path, readonly=True).query("System", Query(event_id=6005)))
    lines = text.splitlines()
    assert lines[0] == "Event[0]:" and lines[1] == "  Log Name: System"
    assert lines[2] == "  Source: EventLog" and lines[4] == "  Event ID: 6005"
    assert lines[6] == "  Level: Information" and lines[-2] == "  Description: "
    assert lines[-1] == "The Event log service was started."


def test_ntctl_events_reads_the_files_when_the_machine_is_down(tmp_path):
    from ntctl import events as evq

    g, svc = start(tmp_path)
    svc.stop()

    def down(root):
        raise RuntimeError("the machine is not running")

    found, where = evq.query(tmp_path, evq.Request("system", event_id=6005), down)
    assert where == "files" and [e.event_id for e in found] == [6005]
    newest, _ = evq.query(tmp_path, evq.Request("System", newest=2), down)
    assert [e.event_id for e in newest] == [6006, 6005]
    with pytest.raises(evq.EventsError) as exc:
        evq.query(tmp_path, evq.Request("Setup"), down)
    assert exc.value.code == 2 and "15007" in str(exc.value)
    assert evq.query(tmp_path, evq.Request("Security"), down)[0] == []
