"""netlogon.dll: Netlogon (svchost -k netsvcs in the model; lsass.exe on Windows).

Netlogon maintains the computer's secure channel to a domain controller and passes
domain logons through it. It depends on LanmanWorkstation and LanmanServer (the seed's
example of DependOnService), and is demand-start, as on a Windows workgroup machine.
- In a workgroup (``Parameters\\DomainName`` empty or absent) there is no secure channel
  to set up: it logs so and serves local pass-through only.
- A machine joined to a domain looks for a domain controller at start and at every poll;
  the model has no network, so none answers: the System log gets 5719 with
  ERROR_NO_LOGON_SERVERS, as a Windows machine cut off from its domain does.
Windows hosts Netlogon in lsass.exe (ServiceCurrent 0); the model hosts it in svchost
until lsass loads service DLLs (README, divergences).
"""

from __future__ import annotations

from typing import ClassVar

from nt import winsvc as ws
from nt.evtmsg import report_event
from nt.svcglobals import GlobalsSlot, ModelService, service_main
from processes.svchost.dll import IF_NETLOGON, endpoints, publish

ERROR_NO_LOGON_SERVERS = 1311
NO_LOGON_SERVERS_TEXT = (
    "There are currently no logon servers available to service the logon request."
)


class NetlogonService(ModelService):
    divergences: ClassVar[tuple[str, ...]] = ("hosted in svchost -k netsvcs, not lsass.exe",)
    accepted: ClassVar[int] = (
        ws.SERVICE_ACCEPT_STOP
        | ws.SERVICE_ACCEPT_PAUSE_CONTINUE
        | ws.SERVICE_ACCEPT_SHUTDOWN
        | ws.SERVICE_ACCEPT_PARAMCHANGE
    )
    interval: ClassVar[float | None] = 60.0  # DC discovery retry (Windows: every 15 minutes)

    def on_start(self) -> None:
        self.domain = str(self.g.value(self.params_key, "DomainName", "") or "")
        self.secure_channel = False
        if not self.domain:
            self.log.info("netlogon.workgroup", secure_channel=False)
        else:
            self.discover()
        publish(
            self,
            endpoints(
                (IF_NETLOGON, "ncalrpc:[NETLOGON_LRPC]", ""),
                (IF_NETLOGON, "ncacn_np:[\\pipe\\netlogon]", ""),
            ),
        )

    def discover(self) -> None:
        """DsGetDcName for the domain: no DC answers in the model → 5719."""
        self.log.warning("netlogon.no_dc", domain=self.domain, error=ERROR_NO_LOGON_SERVERS)
        report_event(self.log, 5719, [self.domain.upper(), NO_LOGON_SERVERS_TEXT])

    def poll(self) -> None:
        if self.domain and not self.secure_channel:
            self.discover()

    def on_control(self, control: int) -> int:
        if control == ws.SERVICE_CONTROL_PARAMCHANGE:  # the domain may have been set or cleared
            self.domain = str(self.g.value(self.params_key, "DomainName", "") or "")
            self.log.info("netlogon.paramchange", domain=self.domain)
            if self.domain:
                self.discover()
            return 0
        return super().on_control(control)


_SLOT = GlobalsSlot()
SvchostPushServiceGlobals = _SLOT.push
ServiceMain = service_main(NetlogonService, _SLOT)
