"""SCM object security (scsecure.c): the SCM's and each service's security descriptor, the
access check every handle open makes, and R{Query,Set}ServiceObjectSecurity.

The descriptors are Windows 10's (``sc sdshow scmanager`` / ``sc sdshow <new service>``):
- the SCM: Authenticated Users may connect; INTERACTIVE and SERVICE may also enumerate and
  query the lock; SYSTEM may also change the boot configuration; Administrators get
  SC_MANAGER_ALL_ACCESS;
- a service without its own ``Security\\Security`` value: SYSTEM may query, start, stop,
  pause and interrogate; Administrators get every right; INTERACTIVE and SERVICE may query
  and interrogate only (so a user may ``sc query`` but not ``sc stop``).
A service's own descriptor lives in ``Services\\<name>\\Security`` value ``Security``
(REG_BINARY, self-relative), the SCM's in ``Control\\ServiceGroupOrder\\Security``, as on
Windows. Parsed descriptors are cached (an open is one dictionary lookup and one walk of a
four-ACE DACL), and every refusal is reported as event 4656 in the Security log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Final, Protocol

from nt import security as sec
from nt.log import Logger
from nt.seaudit import audit_open_denied
from nt.syscalls import NtError
from nt.win32 import Win32Error as E
from ports import svcctl as sv

if TYPE_CHECKING:
    from nt.syscalls import SystemServices

REG_BINARY: Final = 3

SCM_SDDL: Final = (
    "O:SYG:SYD:(A;;CC;;;AU)(A;;CCLCRPRC;;;IU)(A;;CCLCRPRC;;;SU)(A;;CCLCRPWPRC;;;SY)"
    "(A;;KA;;;BA)(A;;CC;;;AC)"
)
DEFAULT_SERVICE_SDDL: Final = (
    "O:SYG:SYD:(A;;CCLCSWRPWPDTLOCRRC;;;SY)(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;BA)"
    "(A;;CCLCSWLOCRRC;;;IU)(A;;CCLCSWLOCRRC;;;SU)"
)
# GENERIC_MAPPING for the two object types (winsvc.h; MS-SCMR 3.1.4).
SCM_MAPPING: Final = sec.GenericMapping(
    read=sec.READ_CONTROL | sv.SC_MANAGER_ENUMERATE_SERVICE | sv.SC_MANAGER_QUERY_LOCK_STATUS,
    write=sec.READ_CONTROL | sv.SC_MANAGER_CREATE_SERVICE | sv.SC_MANAGER_MODIFY_BOOT_CONFIG,
    execute=sec.READ_CONTROL | sv.SC_MANAGER_CONNECT | sv.SC_MANAGER_LOCK,
    all=sv.SC_MANAGER_ALL_ACCESS,
)
SERVICE_MAPPING: Final = sec.GenericMapping(
    read=sec.READ_CONTROL
    | sv.SERVICE_QUERY_CONFIG
    | sv.SERVICE_QUERY_STATUS
    | sv.SERVICE_INTERROGATE
    | sv.SERVICE_ENUMERATE_DEPENDENTS,
    write=sec.READ_CONTROL | sv.SERVICE_CHANGE_CONFIG,
    execute=sec.READ_CONTROL
    | sv.SERVICE_START
    | sv.SERVICE_STOP
    | sv.SERVICE_PAUSE_CONTINUE
    | sv.SERVICE_USER_DEFINED_CONTROL,
    all=sv.SERVICE_ALL_ACCESS,
)
SCM_OBJECT = "ServicesActive"  # the object name 4656 shows for the SCM
SECURITY_VALUE = "Security"
GRANTED_KEPT = 4096


class SecurityStore(Protocol):
    """Where descriptors persist: ``None`` is the SCM's own, else a service name."""

    def read(self, service: str | None) -> bytes | None: ...

    def write(self, service: str | None, data: bytes) -> None: ...


class MemoryStore:
    """No persistence (unit tests, and a core built without a registry)."""

    def __init__(self) -> None:
        self.values: dict[str | None, bytes] = {}

    def read(self, service: str | None) -> bytes | None:
        return self.values.get(service.lower() if service else None)

    def write(self, service: str | None, data: bytes) -> None:
        self.values[service.lower() if service else None] = data


class RegistrySecurityStore:
    """``Services\\<name>\\Security`` / ``Control\\ServiceGroupOrder\\Security``, value
    ``Security`` (REG_BINARY), through the kernel's registry calls."""

    def __init__(self, nt: SystemServices, control_set: str) -> None:
        self.nt, self.control_set = nt, control_set

    def _key(self, service: str | None) -> str:
        if service is None:
            return f"{self.control_set}\\Control\\ServiceGroupOrder\\Security"
        return f"{self.control_set}\\Services\\{service}\\Security"

    def read(self, service: str | None) -> bytes | None:
        try:
            vtype, data = self.nt.query_value(self._key(service), SECURITY_VALUE)
        except NtError:
            return None
        return data if vtype == REG_BINARY and isinstance(data, bytes) else None

    def write(self, service: str | None, data: bytes) -> None:
        self.nt.create_key(self._key(service))
        self.nt.set_value(self._key(service), SECURITY_VALUE, REG_BINARY, data)


class ScSecurity:
    """The descriptors by object (cached), the check, and the query/set routines' core."""

    def __init__(self, store: SecurityStore | None = None, log: Logger | None = None) -> None:
        self.store = store or MemoryStore()
        self.log = log
        self._cache: dict[str | None, sec.SecurityDescriptor] = {}
        # Granted masks by (object, token, desired): a connection's token is one dict for
        # its life, so a repeated open costs a lookup. Denials are not kept (each is audited).
        self._granted: dict[tuple[str | None, int, int], tuple[Mapping[str, object], int]] = {}

    def descriptor(self, service: str | None) -> sec.SecurityDescriptor:
        key = service.lower() if service else None
        found = self._cache.get(key)
        if found is None:
            found = self._load(service)
            self._cache[key] = found
        return found

    def _load(self, service: str | None) -> sec.SecurityDescriptor:
        default = sec.cached_sddl(DEFAULT_SERVICE_SDDL if service else SCM_SDDL)
        try:
            data = self.store.read(service)
        except Exception:  # an unreadable value: the default, as ScmReadSecurityDescriptor
            data = None
        if not data:
            return default
        try:
            return sec.sd_from_bytes(data)
        except sec.SddlError:
            return default

    def forget(self, service: str) -> None:
        """A deleted service: its descriptor goes with it."""
        self._cache.pop(service.lower(), None)
        self._granted.clear()

    def check(
        self, client: object, desired: int, service: str | None, object_name: str = ""
    ) -> int | None:
        """ScmCheckAccess: the granted mask, or None (ERROR_ACCESS_DENIED; 4656 reported)."""
        token: Mapping[str, object] = getattr(client, "token", None) or {}
        key = (service.lower() if service else None, id(token), desired)
        hit = self._granted.get(key)
        if hit is not None and hit[0] is token:  # the same token object: the same answer
            return hit[1]
        mapping = SERVICE_MAPPING if service else SCM_MAPPING
        granted, status = sec.access_check(self.descriptor(service), token, desired, mapping)
        if status == sec.STATUS_SUCCESS:
            if len(self._granted) >= GRANTED_KEPT:
                self._granted.clear()
            self._granted[key] = (token, granted)
            return granted
        if self.log is not None:
            audit_open_denied(
                self.log,
                token,
                server="SC Manager",
                object_type="SERVICE OBJECT" if service else "SC_MANAGER OBJECT",
                object_name=object_name or service or SCM_OBJECT,
                desired=mapping.map(desired),
                pid=int(getattr(client, "pid", 0)),
                image=str(getattr(client, "image", "")),
                status=status,
            )
        return None

    def query(self, service: str | None, info: int, granted: int) -> tuple[int, bytes]:
        """RQueryServiceObjectSecurity: (win32 error, the self-relative descriptor with
        only the parts ``info`` names)."""
        if info & sec.SACL_SECURITY_INFORMATION:
            return E.ERROR_PRIVILEGE_NOT_HELD, b""  # the model keeps no SACL
        if not info & sec.ALL_SECURITY_INFORMATION or granted & sec.READ_CONTROL == 0:
            return (E.ERROR_INVALID_PARAMETER if not info else E.ERROR_ACCESS_DENIED), b""
        sd = self.descriptor(service)
        return 0, sec.sd_to_bytes(_select(sd, info))

    def set(self, service: str | None, info: int, data: bytes, granted: int) -> int:
        """RSetServiceObjectSecurity: replace the parts ``info`` names; persisted first."""
        if info & sec.SACL_SECURITY_INFORMATION:
            return E.ERROR_PRIVILEGE_NOT_HELD  # the model keeps no SACL
        if not info & sec.ALL_SECURITY_INFORMATION or info & ~0xF:
            return E.ERROR_INVALID_PARAMETER
        need = (sec.WRITE_DAC if info & sec.DACL_SECURITY_INFORMATION else 0) | (
            sec.WRITE_OWNER if info & 0x3 else 0
        )
        if granted & need != need:
            return E.ERROR_ACCESS_DENIED
        try:
            given = sec.sd_from_bytes(data)
        except sec.SddlError:
            return E.ERROR_INVALID_SECURITY_DESCR
        old = self.descriptor(service)
        new = sec.SecurityDescriptor(
            owner=given.owner if info & sec.OWNER_SECURITY_INFORMATION else old.owner,
            group=given.group if info & sec.GROUP_SECURITY_INFORMATION else old.group,
            dacl=given.dacl if info & sec.DACL_SECURITY_INFORMATION else old.dacl,
        )
        self.store.write(service, sec.sd_to_bytes(new))
        self._cache[service.lower() if service else None] = new
        self._granted.clear()
        return 0


def _select(sd: sec.SecurityDescriptor, info: int) -> sec.SecurityDescriptor:
    """Only the asked parts; an absent owner/group reads back as SYSTEM in the model."""
    return sec.SecurityDescriptor(
        owner=sd.owner if info & sec.OWNER_SECURITY_INFORMATION else sec.LOCAL_SYSTEM,
        group=sd.group if info & sec.GROUP_SECURITY_INFORMATION else sec.LOCAL_SYSTEM,
        dacl=sd.dacl if info & sec.DACL_SECURITY_INFORMATION else (),
    )
