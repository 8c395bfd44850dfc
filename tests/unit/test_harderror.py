"""Hard errors after csrss named its port: UserServerHardError's box (caption, text,
event 26), the kernel's choice of csrss, and LPC_ERROR_EVENT on a real port."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
from structlog.testing import capture_logs

from nt.log import ntstatus_processor
from nt.status import NtStatus
from ports.contract import Reply
from processes.csrss.harderror import format_box
from processes.kernel.harderr import RESPONSE_RETURN_TO_CALLER, HardErrorPorts
from tests.unit.test_csrsrv import SUCCESS, boot

DLL = int(NtStatus.STATUS_DLL_NOT_FOUND)
TERMINATED = int(NtStatus.STATUS_SYSTEM_PROCESS_TERMINATED)


def box(status: int, parameters: list, image: str = "", system: bool = False) -> tuple[str, str]:
    return format_box(
        {"status": status, "parameters": parameters, "image": image, "system": system}
    )


def test_a_missing_dll_names_the_program_and_the_dll():
    assert box(DLL, ["CONDEMOUI.dll"], "condemo.exe") == (
        "condemo.exe - System Error",
        "The code execution cannot proceed because CONDEMOUI.dll was not found. "
        "Reinstalling the program may fix this problem.",
    )


def test_a_braced_caption_wins_and_a_system_raiser_is_windows():
    caption, text = box(
        TERMINATED, ["Local Security Authority Process", 0xC0000005, 0, 0], "wininit.exe", True
    )
    assert caption == "Windows - Fatal System Error"
    assert text == (
        "The Local Security Authority Process system process terminated unexpectedly with a "
        "status of 0xc0000005 (0x00000000 0x00000000).\nThe system has been shut down."
    )


@pytest.mark.parametrize(
    ("status", "caption"),
    [
        (0xC0000022, "System Error"),
        (0x80000005, "System Warning"),
        (0x40000000, "System Information"),
    ],
)
def test_a_status_without_text_gets_its_severity_caption_and_name(status, caption):
    got_caption, text = box(status, ["%s%n"], "app.exe")
    assert got_caption == f"app.exe - {caption}"
    assert text.endswith(": %s%n")  # parameters stay data


def test_the_box_is_logged_and_reported_as_event_26():
    csr, _, _ = boot()
    message = {"status": DLL, "parameters": ["x.dll"], "image": "condemo.exe", "process_id": 77}
    with capture_logs(processors=[ntstatus_processor]) as logs:
        assert csr.handle_hard_error(message) == Reply(SUCCESS, {"response": 6})
    shown = next(e for e in logs if e["event"] == "csr.hard_error_box")
    assert shown["caption"] == "condemo.exe - System Error" and shown["raiser_pid"] == 77
    (report,) = [e for e in logs if e["event"] == "event.report"]
    assert report["event_id"] == 26 and report["source"] == "Application Popup"
    assert report["message"].startswith("Application popup: condemo.exe - System Error : The code")


class FakeConn:
    def __init__(self, name: str, sent: list) -> None:
        self.name, self.sent, self.connected = name, sent, True

    def error_event(self, message: dict, timeout: float) -> Reply:
        self.sent.append((self.name, message))
        return Reply(SUCCESS, {"response": 6})

    def close(self, notify: bool = True) -> None:
        self.connected = False


class Deferred:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: tuple | None = None

    def complete(self, status: int, body: dict) -> None:
        self.result = (status, body)
        self.done.set()


def ports() -> tuple[HardErrorPorts, list]:
    sent: list = []
    lpc = SimpleNamespace(connect_port=lambda name: FakeConn(name, sent))
    import structlog

    return HardErrorPorts(lpc, structlog.get_logger()), sent


def test_the_console_sessions_csrss_gets_the_hard_error():
    hard, sent = ports()
    assert hard.register(0, 100) is True  # the first port: ExReadyForErrors
    assert hard.target() == (0, 100, "\\Windows\\ApiPort")
    with capture_logs() as logs:
        assert hard.register(1, 200) is False
    assert any(e["event"] == "divergence" for e in logs)
    hard.register(2, 300)
    assert hard.target() == (1, 200, "\\Sessions\\1\\Windows\\ApiPort")
    d = Deferred()
    assert hard.deliver({"status": DLL, "parameters": []}, d)
    assert d.done.wait(5) and d.result == (0, {"response": 6})
    assert sent[0][0] == "\\Sessions\\1\\Windows\\ApiPort"
    hard.forget(200)  # session 1's csrss died: session 2 is the lowest interactive one
    assert hard.target()[1] == 300
    hard.forget(300)
    hard.forget(100)
    d = Deferred()
    hard.deliver({"status": DLL, "parameters": []}, d)
    assert d.done.wait(5) and d.result == (0, {"response": RESPONSE_RETURN_TO_CALLER})
