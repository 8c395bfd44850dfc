"""w32time.dll: Windows Time (W32Time, svchost -k LocalService).

Measures the machine's clock against its time source with NTP's four timestamps
(t1 request sent and t4 reply received on the local clock, t2/t3 on the source's):
offset = ((t2 - t1) + (t3 - t4)) / 2, round-trip delay = (t4 - t1) - (t3 - t2), and logs
each sample (``w32time.sample``). The model has no network: the source named in
``Parameters\\NtpServer`` ("time.windows.com,0x9") is answered by the host's clock
(CLOCK_REALTIME), which is what the machine's processes read too, so the offset measured
is the model's real drift from its host — near zero unless a clock is skewed. The first
good sample logs 37 and 35; an offset beyond ``Config\\MaxAllowedPhaseOffset`` seconds
logs 50, as Windows does. It samples at start, then every
``TimeProviders\\NtpClient\\SpecialPollInterval`` seconds (0x1 in the NtpServer flags; else
2^MaxPollInterval), and at once on PARAMCHANGE (``w32tm /config /update``). Windows starts
it on demand or by trigger: Start=3.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import ClassVar

from nt import winsvc as ws
from nt.evtmsg import report_event
from nt.svcglobals import SYSTEM_CCS, GlobalsSlot, ModelService, service_main
from processes.svchost.dll import IF_W32TIME, endpoints, publish

KEY = f"{SYSTEM_CCS}\\Services\\W32Time"
NTP_FLAG_SPECIAL_INTERVAL = 0x1


def host_clock() -> float:
    return time.clock_gettime(time.CLOCK_REALTIME)


def ntp_sample(local: Callable[[], float], source: Callable[[], float]) -> tuple[float, float]:
    """(offset, delay) in seconds: the source's time minus ours, and the round trip."""
    t1 = local()
    t2 = source()
    t3 = source()
    t4 = local()
    return ((t2 - t1) + (t3 - t4)) / 2, (t4 - t1) - (t3 - t2)


class TimeService(ModelService):
    divergences: ClassVar[tuple[str, ...]] = (
        "the NTP source is answered by the host clock (no network)",
    )
    accepted: ClassVar[int] = (
        ws.SERVICE_ACCEPT_STOP | ws.SERVICE_ACCEPT_SHUTDOWN | ws.SERVICE_ACCEPT_PARAMCHANGE
    )
    source_clock: Callable[[], float] = staticmethod(host_clock)

    def on_start(self) -> None:
        self.synchronized = False
        self.configure()
        self.sample()
        publish(self, endpoints((IF_W32TIME, "ncalrpc:[W32TIME_ALT]", "")))

    def configure(self) -> None:
        server = str(self.g.value(f"{KEY}\\Parameters", "NtpServer", "time.windows.com,0x9"))
        name, _, flags = server.split(" ")[0].partition(",")
        self.source = name
        try:
            self.flags = int(flags, 16) if flags else 0
        except ValueError:
            self.flags = 0
        client = f"{KEY}\\TimeProviders\\NtpClient"
        if self.flags & NTP_FLAG_SPECIAL_INTERVAL:
            self.interval = float(self.g.value(client, "SpecialPollInterval", 604800))
        else:
            self.interval = float(2 ** int(self.g.value(f"{KEY}\\Config", "MaxPollInterval", 10)))
        self.max_offset = float(self.g.value(f"{KEY}\\Config", "MaxAllowedPhaseOffset", 300))

    def sample(self) -> None:
        offset, delay = ntp_sample(self.g.clock, self.source_clock)
        self.log.info(
            "w32time.sample",
            source=self.source,
            offset_ms=round(offset * 1000, 3),
            delay_ms=round(delay * 1000, 3),
        )
        if abs(offset) > self.max_offset:
            self.synchronized = False
            report_event(self.log, 50, [int(self.max_offset * 1000), int(self.interval)])
            return
        if not self.synchronized:
            self.synchronized = True
            report_event(
                self.log,
                37,
                [f"{self.source},0x{self.flags:x} (ntp.m|0x0|0.0.0.0:123->{self.source}:123)"],
            )
            report_event(
                self.log,
                35,
                [f"{self.source},0x{self.flags:x} (ntp.m|0x0|0.0.0.0:123->{self.source}:123)"],
            )

    def poll(self) -> None:
        self.sample()

    def on_control(self, control: int) -> int:
        if control == ws.SERVICE_CONTROL_PARAMCHANGE:  # w32tm /config /update
            self.configure()
            self.sample()
            return 0
        return super().on_control(control)


_SLOT = GlobalsSlot()
SvchostPushServiceGlobals = _SLOT.push
ServiceMain = service_main(TimeService, _SLOT)
