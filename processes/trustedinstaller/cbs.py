"""The TrustedInstaller service (Windows Modules Installer): Component Based Servicing.

Demand-start (Start=3), own process, LocalSystem, as on Windows: something that wants a
package serviced (Windows Update, DISM) starts it; it services what is pending and, with
nothing left to do, stops itself — the way TrustedInstaller comes and goes on Windows.

Servicing: packages are keys of ``SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Component
Based Servicing\\Packages\\<identity>`` with CBS's ``CurrentState``: 0x60 (install pending)
becomes 0x70 (installed) and 0x5 (uninstall pending) 0x0 (absent); each change is logged
(``cbs.package_installed`` / ``cbs.package_uninstalled``) with ``InstallTimeHigh``/``Low``
written as FILETIME halves, as CBS keeps them. It accepts STOP and PRESHUTDOWN (it is in
``Control\\PreshutdownOrder``): at preshutdown it finishes the pending work first, as
TrustedInstaller completes servicing operations before the machine goes down.
"""

from __future__ import annotations

from typing import ClassVar

from nt import winsvc as ws
from nt.svcglobals import SOFTWARE, GlobalsSlot, ModelService, service_main

PACKAGES = f"{SOFTWARE}\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing\\Packages"
CBS_ABSENT, CBS_UNINSTALL_PENDING, CBS_INSTALL_PENDING, CBS_INSTALLED = 0x0, 0x5, 0x60, 0x70
REG_DWORD = 4
EPOCH_AS_FILETIME = 116444736000000000  # 1601-01-01 → 1970-01-01 in 100 ns units


class TrustedInstallerService(ModelService):
    accepted: ClassVar[int] = ws.SERVICE_ACCEPT_STOP | ws.SERVICE_ACCEPT_PRESHUTDOWN
    interval: ClassVar[float | None] = 30.0  # idle this long with nothing pending: stop

    def on_start(self) -> None:
        self.serviced = self.service_packages()
        self.log.info("cbs.session_started", serviced=self.serviced)

    def service_packages(self) -> int:
        """Move every pending package to its target state → how many were serviced."""
        try:
            names = self.g.registry.enum_keys(PACKAGES)
        except Exception:
            return 0
        done = 0
        for name in names:
            key = f"{PACKAGES}\\{name}"
            state = int(self.g.value(key, "CurrentState", CBS_ABSENT) or 0)
            target = {CBS_INSTALL_PENDING: CBS_INSTALLED, CBS_UNINSTALL_PENDING: CBS_ABSENT}.get(
                state
            )
            if target is None:
                continue
            self.g.registry.set_value(key, "CurrentState", REG_DWORD, target)
            if target == CBS_INSTALLED:
                filetime = int(self.g.clock() * 10_000_000) + EPOCH_AS_FILETIME
                self.g.registry.set_value(key, "InstallTimeHigh", REG_DWORD, filetime >> 32)
                self.g.registry.set_value(key, "InstallTimeLow", REG_DWORD, filetime & 0xFFFFFFFF)
            event = (
                "cbs.package_installed" if target == CBS_INSTALLED else "cbs.package_uninstalled"
            )
            self.log.info(event, package=name, state=f"0x{target:x}")
            done += 1
        return done

    def poll(self) -> None:
        if self.service_packages() == 0:
            self.log.info("cbs.idle_stop")
            self.stop_by_itself()

    def on_stop(self, control: int) -> None:
        if control == ws.SERVICE_CONTROL_PRESHUTDOWN:  # pending work is finished first
            self.service_packages()


_SLOT = GlobalsSlot()
ServiceMain = service_main(TrustedInstallerService, _SLOT)
push_globals = _SLOT.push
