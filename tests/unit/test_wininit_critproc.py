"""wininit's lsass watch: event 1015, the shutdown notice, the scaled countdown, a restart."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from structlog.testing import capture_logs

from nt.syscalls import NtError
from ports.kernel import OPTION_OK, SHUTDOWN_REBOOT
from processes.wininit.critproc import shutdown_notice, watch_lsass


class FakeNt:
    def __init__(self, percent: int | None) -> None:
        self.percent = percent
        self.shown: list[str] = []
        self.shutdowns: list[int] = []
        self.done = threading.Event()
        self.hard_errors: list[tuple] = []
        self.raised = threading.Event()

    def raise_hard_error(self, status: int, parameters: list, option: int, mask: int = 0) -> int:
        self.hard_errors.append((status, parameters, option, mask))
        self.raised.set()
        return 6

    def query_value(self, path: str, name: str) -> tuple[int, int]:
        if self.percent is None:
            raise NtError(0xC0000034)
        return 4, self.percent

    def display_string(self, text: str) -> None:
        self.shown.append(text)

    def shutdown(self, action: int) -> None:
        self.shutdowns.append(action)
        self.done.set()


def machine(percent: int | None):
    subscribers = []
    events = SimpleNamespace(subscribe=subscribers.append)
    import structlog

    proc = SimpleNamespace(
        nt=FakeNt(percent), lpc=SimpleNamespace(events=events), log=structlog.get_logger()
    )
    return proc, subscribers


def test_lsass_death_counts_down_then_restarts() -> None:
    proc, subscribers = machine(percent=1)
    waited: list[float] = []
    with capture_logs() as logs:
        watch_lsass(proc, wait=waited.append)
        (on_exit,) = subscribers
        on_exit(1234, 0, "csrss.exe")  # not lsass: nothing
        on_exit(1235, 0xC0000005, "lsass.exe")
        assert proc.nt.done.wait(5)
        on_exit(1236, 1, "lsass.exe")  # one countdown only
    assert waited == [0.6]  # 60 s at 1 %
    assert proc.nt.shutdowns == [SHUTDOWN_REBOOT]
    # the box the user sees: a hard error csrss shows, not a bugcheck (OptionOk)
    assert proc.nt.raised.wait(5)
    assert proc.nt.hard_errors == [
        (0xC000021A, ["Local Security Authority Process", 0xC0000005, 0, 0], OPTION_OK, 1)
    ]
    (event,) = [e for e in logs if e["event"] == "event.report"]
    assert event["event_id"] == 1015 and event["strings"][1] == "c0000005"
    assert "terminated unexpectedly with status code -1073741819" in proc.nt.shown[0]
    assert any(e["event"] == "divergence" for e in logs)


def test_the_notice_reads_as_windows_words_it() -> None:
    text = shutdown_notice(0xC0000005, 60)
    assert text.startswith("The system is shutting down. Please save all work in progress")
    assert "Shutdown will begin in: 00:01:00" in text
    assert text.endswith("The system will now shut down and restart.")
