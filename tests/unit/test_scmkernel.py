"""services.exe's outside world (processes/services/scmkernel.py) over a fake kernel:
boot acceptance, the LastKnownGood revert, the Services snapshot, delayed priority."""

from __future__ import annotations

import os
import threading

import pytest
import structlog
from structlog.testing import capture_logs

from nt import regfile
from nt.status import NtStatus
from nt.syscalls import NtError
from processes.services.scmkernel import KernelScm, PrefetchedRegistry

SERVICES = r"HKLM\SYSTEM\CurrentControlSet\Services"


class FakeNt:
    def __init__(self, accept_status: int = 0) -> None:
        self.accept_status = accept_status
        self.flags: list[int] = []
        self.calls: list[tuple[str, dict]] = []
        self.called = threading.Event()
        self.live: list[str] = []

    def initialize_registry(self, flags: int) -> None:
        self.flags.append(flags)
        if self.accept_status:
            raise NtError(self.accept_status, "NtInitializeRegistry")

    def call(self, service: str, timeout: float | None = 30.0, **body: object) -> dict:
        self.calls.append((service, body))
        self.called.set()
        return {"reverted": True}

    def export_records(self, path: str):
        sz = regfile.encode_data(1, "x.exe")
        yield (r"\Registry\Machine\SYSTEM\ControlSet001\Services", [])
        start = ("Start", 4, (2).to_bytes(4, "little"))
        yield (r"\Registry\Machine\SYSTEM\ControlSet001\Services\Spooler", [start])
        yield (r"\Registry\Machine\SYSTEM\ControlSet001\Services\Spooler\Parameters", [])
        yield (r"\Registry\Machine\SYSTEM\ControlSet001\Services\W32Time", [("ImagePath", 1, sz)])

    def enum_values(self, path: str) -> list:
        self.live.append(path)
        return [("WaitToKillServiceTimeout", 1, "5000")]

    def enum_keys(self, path: str) -> list[str]:
        self.live.append(path)
        return []


def kernel(nt: FakeNt, **options: object) -> KernelScm:
    return KernelScm(nt, structlog.get_logger("test"), dict(options))  # type: ignore[arg-type]


def test_accepting_the_boot_is_the_kernels_copy_and_once():
    nt = FakeNt()
    assert kernel(nt).accept_boot(True) == 0 and nt.flags == [2]  # CM_BOOT_FLAG_ACCEPTED
    refused = FakeNt(NtStatus.STATUS_ACCESS_DENIED)  # the kernel accepted this boot already
    assert kernel(refused).accept_boot(True) == 1076  # ERROR_BOOT_ALREADY_ACCEPTED


@pytest.mark.parametrize(("lkg", "events"), [(False, [7007]), (True, [])])
def test_a_bad_boot_reverts_through_the_kernel_with_7007_unless_on_lkg(lkg, events):
    nt = FakeNt()
    with capture_logs() as logs:
        assert kernel(nt, lastknowngood=lkg).accept_boot(False) == 0
        assert nt.called.wait(5)
    assert nt.calls == [("CmRevertToLastKnownGood", {"service_name": "", "critical": False})]
    assert [e["event_id"] for e in logs if e["event"] == "event.report"] == events


def test_a_critical_service_failing_at_boot_asks_for_the_revert():
    nt = FakeNt()
    kernel(nt).start_failed("Vendor", 3, 1067)
    assert nt.called.wait(5)
    assert nt.calls == [("CmRevertToLastKnownGood", {"service_name": "Vendor", "critical": True})]


def test_the_services_snapshot_answers_inside_the_subtree_and_reads_live_outside():
    nt = FakeNt()
    reg = PrefetchedRegistry(nt, SERVICES)  # type: ignore[arg-type]
    assert reg.enum_keys(SERVICES) == ["Spooler", "W32Time"]
    assert reg.enum_values(SERVICES + r"\SPOOLER") == [("Start", 4, 2)]
    assert reg.enum_keys(SERVICES + r"\Spooler") == ["Parameters"]
    with pytest.raises(NtError):
        reg.enum_values(SERVICES + r"\Spooler\Security")  # inside, absent: not found
    assert nt.live == []
    reg.enum_values(r"HKLM\SYSTEM\CurrentControlSet\Control")
    assert nt.live == [r"HKLM\SYSTEM\CurrentControlSet\Control"]


def test_a_delayed_service_process_runs_ten_nicer_until_running():
    pid = os.fork()
    if pid == 0:  # a child to renice: sleep until killed
        os.execvp("sleep", ["sleep", "30"])
    try:
        k = kernel(FakeNt())
        base = os.getpriority(os.PRIO_PROCESS, 0)
        k.set_process_priority(pid, True)
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(base + 10, 19)
        k.set_process_priority(pid, False)
        assert os.getpriority(os.PRIO_PROCESS, pid) == base or os.geteuid() != 0
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)


def test_several_failures_at_boot_ask_for_one_restart():
    nt = FakeNt()
    k = kernel(nt)
    with capture_logs() as logs:
        k.start_failed("A", 2, 1067)
        k.start_failed("B", 3, 1067)
        assert nt.called.wait(5)
    assert len(nt.calls) == 1
    assert [e["event_id"] for e in logs if e["event"] == "event.report"] == [7007]
