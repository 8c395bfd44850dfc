"""An in-memory registry and a fake clock for the lsass cores (no kernel, no sockets)."""

from __future__ import annotations

from typing import Any

from nt.log import get_logger
from nt.status import NtStatus
from ports.contract import ClientContext
from processes.lsass.lsasrv import LsaServer
from processes.lsass.msv1_0 import HashParameters, Msv1_0
from processes.lsass.sam import Sam
from processes.lsass.samsrv import SamServer

# Cheap argon2id for tests only (production: OWASP's m=19 MiB, t=2).
CHEAP = HashParameters(time_cost=1, memory_cost=64, parallelism=1)
ADMIN_TOKEN = {
    "user": "NTMODEL\\Administrator",
    "sid": "S-1-5-21-1-2-3-500",
    "groups": ["S-1-5-32-544", "S-1-1-0"],
    "privileges": ["SeShutdownPrivilege"],
}
SYSTEM_TOKEN = {
    "user": "NT AUTHORITY\\SYSTEM",
    "sid": "S-1-5-18",
    "groups": ["S-1-5-32-544"],
    "privileges": ["SeTcbPrivilege"],
}
USER_TOKEN = {
    "user": "NTMODEL\\bob",
    "sid": "S-1-5-21-1-2-3-1001",
    "groups": ["S-1-5-32-545"],
    "privileges": [],
}


class RegError(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


class FakeRegistry:
    def __init__(self) -> None:
        self.keys: dict[str, dict[str, tuple[int, Any]]] = {}
        self.writes = 0

    @staticmethod
    def _k(path: str) -> str:
        return path.casefold()

    def create_key(self, path: str, volatile: bool = False) -> bool:
        created = self._k(path) not in self.keys
        self.keys.setdefault(self._k(path), {})
        return created

    def delete_key(self, path: str, tree: bool = False) -> None:
        k = self._k(path)
        for key in [x for x in self.keys if x == k or x.startswith(k + "\\")]:
            del self.keys[key]

    def set_value(self, path: str, name: str, type: int, data: Any) -> None:
        self.writes += 1
        self.keys.setdefault(self._k(path), {})[name] = (type, data)

    def query_value(self, path: str, name: str) -> tuple[int, Any]:
        try:
            return self.keys[self._k(path)][name]
        except KeyError:
            raise RegError(NtStatus.STATUS_OBJECT_NAME_NOT_FOUND) from None

    def enum_keys(self, path: str) -> list[str]:
        k = self._k(path) + "\\"
        return sorted({x[len(k) :].split("\\")[0] for x in self.keys if x.startswith(k)})


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def client(token: dict, info: dict | None = None, conn_id: int = 1) -> ClientContext:
    return ClientContext(
        pid=4242,
        image="test.exe",
        session=0,
        token=token,
        conn_id=conn_id,
        port="x",
        info=info or {},
    )


class Lsa:
    """A whole lsass core over one fake registry."""

    def __init__(self, reg: FakeRegistry | None = None, clock: Clock | None = None) -> None:
        self.reg = reg or FakeRegistry()
        self.clock = clock or Clock()
        self.sam = Sam(self.reg, clock=self.clock)
        self.sam.open()
        self.msv = Msv1_0(self.sam, CHEAP, max_verifies=2, deadline=2.0)
        self.log = get_logger()
        self.lsa = LsaServer(self.sam, self.msv, self.log)
        self.samsrv = SamServer(self.sam, self.msv, self.log)
