"""The event table, FormatMessage insertion, and the hand-off of queued events to
EventLog (nt/evtmsg.py); the win32 error table (nt/win32.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from nt import evtmsg
from nt.evtmsg import EVENTS, EventQueue, format_message, record_from_log, report_event
from nt.win32 import MESSAGES, NAMES, Win32Error, error_message, error_name

REQUIRED_EVENTS = {
    7000,
    7001,
    7009,
    7011,
    7022,
    7023,
    7024,
    7026,
    7031,
    7034,
    7036,
    7038,
    7040,
    7045,
}
REQUIRED_EVENTS |= {6005, 6006, 6008, 6009, 1001, 41, 1074}
REQUIRED_EVENTS |= {4624, 4625, 4634, 4647, 4720, 4722, 4724, 4725, 4726, 4738, 4740, 4767}
REQUIRED_ERRORS = {2, 5, 87, 1051, 1052, 1053, 1056, 1058, 1059, 1060, 1061, 1062, 1063, 1068}
REQUIRED_ERRORS |= {1069, 1072, 1073, 1075, 1077, 1078, 1115}


class Logger:
    def __init__(self) -> None:
        self.lines: list[dict] = []

    def info(self, event: str, **kw: object) -> None:
        self.lines.append({"event": event, "level": "info", **kw})

    def error(self, event: str, **kw: object) -> None:
        self.lines.append({"event": event, "level": "error", **kw})

    warning = critical = error


def test_tables_are_complete():
    assert set(EVENTS) >= REQUIRED_EVENTS
    assert set(MESSAGES) >= REQUIRED_ERRORS
    assert set(NAMES) == set(MESSAGES)
    assert error_name(1060) == "ERROR_SERVICE_DOES_NOT_EXIST" and error_name(99999) == "ERROR_99999"
    assert type(Win32Error.ERROR_ACCESS_DENIED) is int
    assert error_message(1058).startswith(
        "The service cannot be started, either because it is disabled"
    )
    assert {e.log for e in EVENTS.values() if 4600 <= e.event_id < 4800} == {"Security"}


def test_format_message():
    assert format_message("The %1 service entered the %2 state.", ["Spooler", "running"]) == (
        "The Spooler service entered the running state."
    )
    assert format_message("a%nb %% %3 %12", ["x"]) == "a\nb % %3 %12"
    text = format_message(
        EVENTS[7045].template, ["S", r"C:\s.exe", "user mode service", "auto start", "LocalSystem"]
    )
    assert text.splitlines()[2:] == [
        "Service Name:  S",
        r"Service File Name:  C:\s.exe",
        "Service Type:  user mode service",
        "Service Start Type:  auto start",
        "Service Account:  LocalSystem",
    ]


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="%"), max_size=8), max_size=5))
def test_insertion_strings_appear_verbatim(strings):
    template = " ".join(f"[%{i + 1}]" for i in range(len(strings)))
    assert format_message(template, strings) == " ".join(f"[{s}]" for s in strings)


def test_report_logs_then_queues_until_eventlog_attaches():
    queue, logger = EventQueue(), Logger()
    first = report_event(logger, 7036, ["Spooler", "running"], queue=queue, pid=7)
    second = report_event(logger, 6005, queue=queue, pid=7)
    assert logger.lines[0]["event"] == "event.report"
    assert logger.lines[0]["message"] == "The Spooler service entered the running state."
    assert (first.record, second.record.split(":")[0]) == (first.record, "7")
    assert [r.event_id for r in queue.pending] == [7036, 6005]
    got: list[evtmsg.EventRecord] = []
    assert queue.attach(lambda r: got.append(r) or True) == 2
    report_event(logger, 7040, ["A", "auto start", "disabled"], queue=queue)
    assert [r.event_id for r in got] == [7036, 6005, 7040] and not queue.pending


def test_a_failing_sink_detaches_and_records_queue_again():
    queue, logger = EventQueue(), Logger()
    up = [True]
    got: list[int] = []
    queue.attach(lambda r: up[0] and (got.append(r.event_id) or True))
    report_event(logger, 7036, ["A", "running"], queue=queue)
    up[0] = False
    report_event(logger, 7036, ["A", "stopped"], queue=queue)
    assert got == [7036] and len(queue.pending) == 1 and queue.sink is None


def test_queue_is_bounded_and_counts_drops():
    queue, logger = EventQueue(max_pending=3), Logger()
    for i in range(5):
        report_event(logger, 7036, [str(i), "running"], queue=queue)
    assert queue.dropped == 2 and [r.strings[0] for r in queue.pending] == ["2", "3", "4"]


def test_replay_from_log_lines_round_trips():
    logger = Logger()
    record = report_event(
        logger, 7031, ["A", 1, 0, 1, "Restart the service"], queue=EventQueue(), data=b"\x01"
    )
    assert logger.lines[0]["level"] == "error"  # 7031 is an Error event
    line = {k: v for k, v in logger.lines[0].items() if k != "level"}
    assert record_from_log(line) == record
    assert record_from_log({"event": "svc.state"}) is None
    assert record_from_log({"event": "event.report", "event_id": "x"}) is None


def test_unknown_ids_are_kept_with_their_strings():
    with capture_logs() as logs:
        record = report_event(evtmsg_logger(), 9999, ["a", "b"], queue=EventQueue())
    assert record.message == "a b" and record.log == "Application"
    assert logs[0]["event"] == "event.report"


def evtmsg_logger():
    import structlog

    return structlog.get_logger()
