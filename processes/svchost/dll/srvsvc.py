"""srvsvc.dll: Server (LanmanServer, svchost -k netsvcs), the SMB server's share table.

At start it creates the shares ``Services\\LanmanServer\\Shares`` lists (one REG_MULTI_SZ
per share: ``Path=``, ``Type=``, ``Remark=``, ``MaxUses=``, ``Permissions=``, ``CSCFlags=``,
as ``net share`` writes them) plus the administrative shares (IPC$; ADMIN$ and C$ unless
``Parameters\\AutoShareWks`` is 0). A share whose directory is missing is not created and
the System log gets 2511, as on Windows. The table is re-read every poll, so a share added
or deleted in the registry is logged as created or deleted. Windows also depends on SamSS
and Srv2, which the model does not run (README, divergences).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from nt import winsvc as ws
from nt.evtmsg import report_event
from nt.svcglobals import SYSTEM_CCS, GlobalsSlot, ModelService, service_main
from processes.svchost.dll import IF_SRVSVC, endpoints, publish

SHARES_KEY = f"{SYSTEM_CCS}\\Services\\LanmanServer\\Shares"
PARAMS_KEY = f"{SYSTEM_CCS}\\Services\\LanmanServer\\Parameters"
STYPE_DISKTREE, STYPE_IPC, STYPE_SPECIAL = 0, 3, 0x80000000


@dataclass(frozen=True)
class Share:
    name: str
    path: str
    share_type: int
    remark: str
    max_uses: int


def parse_share(name: str, fields: list[str]) -> Share:
    """A ``Shares`` value (``["Path=C:\\\\Users", "Type=0", ...]``) → Share."""
    kv = {}
    for item in fields:
        key, _, value = str(item).partition("=")
        kv[key.strip().lower()] = value

    def num(key: str, default: int) -> int:
        try:
            return int(kv.get(key, default))
        except ValueError:
            return default

    return Share(
        name, kv.get("path", ""), num("type", 0), kv.get("remark", ""), num("maxuses", 0xFFFFFFFF)
    )


class ServerService(ModelService):
    divergences: ClassVar[tuple[str, ...]] = (
        "no SamSS or Srv2 dependency (not modelled); shares are served to nobody",
    )
    accepted: ClassVar[int] = (
        ws.SERVICE_ACCEPT_STOP | ws.SERVICE_ACCEPT_PAUSE_CONTINUE | ws.SERVICE_ACCEPT_SHUTDOWN
    )
    interval: ClassVar[float | None] = 5.0

    def on_start(self) -> None:
        self.shares: dict[str, Share] = {}
        self.missing: set[str] = set()
        for share in self._admin_shares():
            self._create(share)
        self.poll()
        publish(self, endpoints((IF_SRVSVC, "ncacn_np:[\\pipe\\srvsvc]", "")))

    def _admin_shares(self) -> list[Share]:
        shares = [Share("IPC$", "", STYPE_IPC | STYPE_SPECIAL, "Remote IPC", 0xFFFFFFFF)]
        if self.g.value(PARAMS_KEY, "AutoShareWks", 1) != 0:
            shares.append(Share("ADMIN$", "C:\\Windows", STYPE_SPECIAL, "Remote Admin", 0xFFFFFFFF))
            shares.append(Share("C$", "C:\\", STYPE_SPECIAL, "Default share", 0xFFFFFFFF))
        return shares

    def configured(self) -> dict[str, Share]:
        try:
            values = self.g.registry.enum_values(SHARES_KEY)
        except Exception:
            return {}
        out = {}
        for name, _type, data, *_ in values:
            fields = data if isinstance(data, list) else [str(data)]
            out[str(name).lower()] = parse_share(str(name), fields)
        return out

    def poll(self) -> None:
        wanted = self.configured()
        admin = {s.name.lower() for s in self._admin_shares()}
        for key, share in wanted.items():
            if key not in self.shares or self.shares[key] != share:
                self._create(share)
        for key in [k for k in self.shares if k not in wanted and k not in admin]:
            gone = self.shares.pop(key)
            self.log.info("srv.share_deleted", share=gone.name)
        self.missing &= set(wanted)

    def _create(self, share: Share) -> None:
        key = share.name.lower()
        if share.path and not self.g.host_path(share.path).is_dir():
            if key not in self.missing:  # said once, not at every poll
                self.missing.add(key)
                report_event(self.log, 2511, [share.name, share.path])
            return
        self.missing.discard(key)
        self.shares[key] = share
        self.log.info(
            "srv.share_created",
            share=share.name,
            path=share.path,
            share_type=share.share_type,
            remark=share.remark,
        )


_SLOT = GlobalsSlot()
SvchostPushServiceGlobals = _SLOT.push
ServiceMain = service_main(ServerService, _SLOT)
