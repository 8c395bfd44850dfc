"""gpsvc.dll: Group Policy Client (gpsvc, svchost -k netsvcs).

Applies the computer's policy: the settings under ``HKLM\\SOFTWARE\\Policies`` (what the
Local Group Policy object and domain GPOs write there). At start and every
``GroupPolicyRefreshTime`` minutes (``SOFTWARE\\Policies\\Microsoft\\Windows\\System``,
default 90) it reads the whole tree, compares its digest with the last one applied
(``...\\Group Policy\\State\\Machine\\PolicyDigest``, the model's stand-in for Windows'
per-extension history) and logs 1502 ("New settings from 1 Group Policy objects were
detected and applied") or 1500 (no changes). PARAMCHANGE refreshes at once (``gpupdate``).

It accepts PRESHUTDOWN and is listed in ``Control\\PreshutdownOrder``: the SCM tells it
before the ordinary SHUTDOWN broadcast, in that order, and waits for it (Vista's
preshutdown). Like Windows 10 it cannot be stopped by a STOP control.
"""

from __future__ import annotations

import hashlib
from typing import ClassVar

from nt import winsvc as ws
from nt.evtmsg import report_event
from nt.svcglobals import SOFTWARE, GlobalsSlot, ModelService, Registry, service_main
from processes.svchost.dll import IF_GPSVC, endpoints, publish

POLICIES = f"{SOFTWARE}\\Policies"
SYSTEM_POLICY = f"{POLICIES}\\Microsoft\\Windows\\System"
STATE = f"{SOFTWARE}\\Microsoft\\Windows\\CurrentVersion\\Group Policy\\State\\Machine"
REG_SZ = 1
MAX_KEYS = 10000  # a policy tree is small; a runaway one is cut, not walked for ever


def policy_settings(reg: Registry) -> list[tuple[str, str, int, str]]:
    """Every value under Policies: (key, name, type, data) in a stable order."""
    out: list[tuple[str, str, int, str]] = []
    stack, walked = [POLICIES], 0
    while stack and walked < MAX_KEYS:
        key = stack.pop()
        walked += 1
        try:
            values = reg.enum_values(key)
            subkeys = reg.enum_keys(key)
        except Exception:
            continue
        out.extend((key[len(POLICIES) :], str(v[0]), int(v[1]), repr(v[2])) for v in values)
        stack.extend(f"{key}\\{k}" for k in sorted(subkeys, reverse=True))
    return sorted(out)


class GroupPolicyService(ModelService):
    divergences: ClassVar[tuple[str, ...]] = (
        "no Mup dependency; Local Group Policy only, PolicyDigest instead of per-extension history",
    )
    # PRESHUTDOWN and PARAMCHANGE; no STOP (Windows 10's gpsvc is NOT_STOPPABLE).
    accepted: ClassVar[int] = ws.SERVICE_ACCEPT_PRESHUTDOWN | ws.SERVICE_ACCEPT_PARAMCHANGE
    start_wait_hint_ms: ClassVar[int] = 60000

    def on_start(self) -> None:
        minutes = int(self.g.value(SYSTEM_POLICY, "GroupPolicyRefreshTime", 90) or 90)
        self.interval = minutes * 60.0
        self.refresh()
        publish(self, endpoints((IF_GPSVC, "ncalrpc:[gpsvc]", "")))

    def refresh(self) -> None:
        settings = policy_settings(self.g.registry)
        digest = hashlib.sha256(repr(settings).encode()).hexdigest()
        if digest == self.g.value(STATE, "PolicyDigest"):
            report_event(self.log, 1500)
            self.log.info("gp.refresh", settings=len(settings), changed=False)
            return
        self.log.info("gp.refresh", settings=len(settings), changed=True)
        report_event(self.log, 1502, [1])
        try:
            self.g.registry.create_key(STATE)
            self.g.registry.set_value(STATE, "PolicyDigest", REG_SZ, digest)
        except Exception as exc:
            self.log.warning("gp.state_not_saved", why=str(exc))

    def poll(self) -> None:
        self.refresh()

    def on_control(self, control: int) -> int:
        if control == ws.SERVICE_CONTROL_PARAMCHANGE:  # gpupdate
            self.refresh()
            return 0
        return super().on_control(control)

    def on_stop(self, control: int) -> None:
        if control == ws.SERVICE_CONTROL_PRESHUTDOWN:
            self.log.info("gp.preshutdown", service=self.ctx.name)


_SLOT = GlobalsSlot()
SvchostPushServiceGlobals = _SLOT.push
ServiceMain = service_main(GroupPolicyService, _SLOT)
