"""The svcctl handlers (rpcserver.c), named after the MS-SCMR routines.

``SvcctlServer`` is the \\RPC Control\\ntsvcs handler table over an ``ScmCore``: each
handler takes the checked message and the caller's context (identity from the port, never
from the payload) and returns a body whose ``error`` is the routine's win32 result, or
``PENDING`` for the two that complete later (RStartServiceW: once the start control is
acknowledged; RControlService: once the handler answered). SC handles belong to the
connection that opened them (another connection's handle is ERROR_INVALID_HANDLE) and
carry the rights granted at open time, as ScmCheckAccess does.

Access: every open is checked against the object's security descriptor with the caller's
token (scsecure.py: Windows' default SCM and service descriptors, a service's own from its
``Security`` value); the handle keeps the granted mask and each routine checks its right.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from nt.win32 import Win32Error as E
from nt.winsvc import SERVICE_DRIVER
from ports import svcctl as sv
from ports.server import PENDING
from processes.services import config
from processes.services.database import ServiceRecord
from processes.services.logon import store_password
from processes.services.scm import ScmCore
from processes.services.scsecure import ScSecurity

LOCAL_SYSTEM_SID = "S-1-5-18"
ADMINISTRATORS_SID = "S-1-5-32-544"
SERVICES_ACTIVE_DATABASE = "ServicesActive"
STATUS_SUCCESS = 0


class Caller(Protocol):
    """The part of the port's ClientContext the handlers read."""

    pid: int
    conn_id: int
    token: dict

    def defer(self) -> Completion: ...


class Completion(Protocol):
    def complete(self, status: int, body: dict | None = None) -> None: ...


@dataclass
class ScHandle:
    conn_id: int
    access: int
    service: str | None = None  # None: an SC manager handle


def is_admin(token: dict | None) -> bool:
    if not token:
        return False
    groups = token.get("groups") or []
    enabled = ADMINISTRATORS_SID in groups and ADMINISTRATORS_SID not in (
        token.get("deny_only") or []
    )
    return token.get("sid") == LOCAL_SYSTEM_SID or enabled


class SvcctlServer:
    def __init__(self, core: ScmCore, security: ScSecurity | None = None) -> None:
        self.core = core
        self.security = security or ScSecurity()
        self.handles: dict[int, ScHandle] = {}
        self._ids = itertools.count(0x100)

    def table(self) -> dict[int, Callable[[dict, Caller], object]]:
        """Handlers by opnum, from the API names (a missing one refuses to install), each
        run under the core's lock."""
        return {api.number: self._locked(getattr(self, api.name)) for api in sv.SVCCTL_APIS}

    def _locked(
        self, handler: Callable[[dict, Caller], object]
    ) -> Callable[[dict, Caller], object]:
        def run(message: dict, client: Caller) -> object:
            with self.core.lock:
                return handler(message, client)

        run.__name__ = handler.__name__
        return run

    # --- handles ------------------------------------------------------------------------

    def _new(self, client: Caller, access: int, service: str | None = None) -> int:
        handle = next(self._ids)
        self.handles[handle] = ScHandle(client.conn_id, access, service)
        return handle

    def _get(self, client: Caller, handle: int, service: bool, need: int = 0) -> ScHandle | int:
        h = self.handles.get(handle)
        if h is None or h.conn_id != client.conn_id or (h.service is not None) != service:
            return E.ERROR_INVALID_HANDLE
        if need and h.access & need != need:
            return E.ERROR_ACCESS_DENIED
        if service and self.core.lookup(h.service or "") is None:
            return E.ERROR_INVALID_HANDLE  # deleted under the handle
        return h

    def client_gone(self, conn_id: int) -> None:
        """The connection closed: its handles go (and a database lock it held)."""
        for handle in [k for k, h in self.handles.items() if h.conn_id == conn_id]:
            del self.handles[handle]
        if self.core.lock_owner == conn_id:
            self.core.lock_owner = None

    def _service(self, message: dict, client: Caller, need: int) -> tuple[str, int]:
        h = self._get(client, message["handle"], True, need)
        return (h.service or "", 0) if isinstance(h, ScHandle) else ("", h)

    # --- the routines -------------------------------------------------------------------

    def ROpenSCManagerW(self, message: dict, client: Caller) -> dict:
        if message["database_name"] not in (None, "", SERVICES_ACTIVE_DATABASE):
            return {"error": E.ERROR_DATABASE_DOES_NOT_EXIST, "handle": 0}
        access = self.security.check(
            client, message["desired_access"] | sv.SC_MANAGER_CONNECT, None
        )
        if access is None:
            return {"error": E.ERROR_ACCESS_DENIED, "handle": 0}
        return {"error": 0, "handle": self._new(client, access)}

    def ROpenServiceW(self, message: dict, client: Caller) -> dict:
        h = self._get(client, message["scm_handle"], False, sv.SC_MANAGER_CONNECT)
        if not isinstance(h, ScHandle):
            return {"error": h, "handle": 0}
        svc = self.core.lookup(message["service_name"])
        if svc is None:
            return {"error": E.ERROR_SERVICE_DOES_NOT_EXIST, "handle": 0}
        access = self.security.check(client, message["desired_access"], svc.name)
        if access is None:
            return {"error": E.ERROR_ACCESS_DENIED, "handle": 0}
        return {"error": 0, "handle": self._new(client, access, svc.name)}

    def RCloseServiceHandle(self, message: dict, client: Caller) -> dict:
        h = self.handles.get(message["handle"])
        if h is None or h.conn_id != client.conn_id:
            return {"error": E.ERROR_INVALID_HANDLE}
        del self.handles[message["handle"]]
        return {"error": 0}

    def RStartServiceW(self, message: dict, client: Caller) -> object:
        name, error = self._service(message, client, sv.SERVICE_START)
        if error:
            return {"error": error}
        if self.core.lock_owner is not None and self.core.lock_owner != client.conn_id:
            return {"error": E.ERROR_SERVICE_DATABASE_LOCKED}
        reply = client.defer()
        self.core.start_service(
            name, message["argv"], lambda err: reply.complete(STATUS_SUCCESS, {"error": err})
        )
        return PENDING

    def RControlService(self, message: dict, client: Caller) -> object:
        code = message["control"]
        need = _control_right(code)
        if need is None:
            return {"error": E.ERROR_INVALID_PARAMETER, "status": _empty_status()}
        name, error = self._service(message, client, need)
        if error:
            return {"error": error, "status": _empty_status()}
        reply = client.defer()
        self.core.control_service(
            name,
            code,
            lambda err, st: reply.complete(
                STATUS_SUCCESS, {"error": err, "status": st or _empty_status()}
            ),
        )
        return PENDING

    def RQueryServiceStatus(self, message: dict, client: Caller) -> dict:
        name, error = self._service(message, client, sv.SERVICE_QUERY_STATUS)
        if error:
            return {"error": error, "status": _empty_status()}
        return {"error": 0, "status": self.core.lookup(name).status.as_dict()}

    def RQueryServiceStatusEx(self, message: dict, client: Caller) -> dict:
        name, error = self._service(message, client, sv.SERVICE_QUERY_STATUS)
        if error:
            return {
                "error": error,
                "status": {**_empty_status(), "process_id": 0, "service_flags": 0},
            }
        return {"error": 0, "status": self.core.lookup(name).status.as_dict(process=True)}

    def RSetServiceStatus(self, message: dict, client: Caller) -> dict:
        """Only from the process the service runs in (the pid the port stamped)."""
        name = self.core.status_handles.get(message["status_handle"])
        svc = self.core.lookup(name) if name else None
        image = self.core.images.get(svc.image_key or "") if svc is not None else None
        if image is None or image.pid != client.pid:
            return {"error": E.ERROR_INVALID_HANDLE}
        return {"error": self.core.set_service_status(message["status_handle"], message["status"])}

    def RLockServiceDatabase(self, message: dict, client: Caller) -> dict:
        h = self._get(client, message["scm_handle"], False, sv.SC_MANAGER_LOCK)
        if not isinstance(h, ScHandle):
            return {"error": h, "lock": 0}
        if self.core.lock_owner is not None:
            return {"error": E.ERROR_SERVICE_DATABASE_LOCKED, "lock": 0}
        self.core.lock_owner = client.conn_id
        return {"error": 0, "lock": client.conn_id & 0xFFFFFFFF or 1}

    def RUnlockServiceDatabase(self, message: dict, client: Caller) -> dict:
        if self.core.lock_owner != client.conn_id:
            return {"error": E.ERROR_INVALID_SERVICE_LOCK}
        self.core.lock_owner = None
        return {"error": 0}

    def RNotifyBootConfigStatus(self, message: dict, client: Caller) -> dict:
        if not is_admin(client.token):
            return {"error": E.ERROR_ACCESS_DENIED}
        if message["boot_acceptable"] and self.core.boot_accepted:
            return {"error": E.ERROR_BOOT_ALREADY_ACCEPTED}
        error = self.core.kernel.accept_boot(bool(message["boot_acceptable"]))
        if not error and message["boot_acceptable"]:
            self.core.boot_accepted = True
        return {"error": error}

    def ScPreshutdownServices(self, message: dict, client: Caller) -> object:
        return self._shutdown_round(client, self.core.preshutdown_round)

    def ScShutdownServices(self, message: dict, client: Caller) -> object:
        return self._shutdown_round(client, self.core.shutdown_round)

    def _shutdown_round(
        self, client: Caller, run: Callable[[Callable[[list], None]], None]
    ) -> object:
        """The model's own routines (ports/svcctl.py): only SYSTEM may stop the services."""
        if (client.token or {}).get("sid") != LOCAL_SYSTEM_SID:
            return {"error": E.ERROR_ACCESS_DENIED, "services": 0, "ms": 0.0, "late": []}
        reply = client.defer()
        started = self.core.clock.now()

        def done(outcomes: list) -> None:
            late = [o for o in outcomes if o["outcome"] != "stopped"][: sv.ENUM_PAGE]
            body = {
                "error": 0,
                "services": len(outcomes),
                "ms": round((self.core.clock.now() - started) * 1000, 3),
                "late": late,
            }
            reply.complete(STATUS_SUCCESS, body)

        run(done)
        return PENDING

    def RGetServiceDisplayNameW(self, message: dict, client: Caller) -> dict:
        h = self._get(client, message["scm_handle"], False)  # any SC manager handle
        if not isinstance(h, ScHandle):
            return {"error": h, "display_name": ""}
        svc = self.core.lookup(message["service_name"])
        if svc is None:
            return {"error": E.ERROR_SERVICE_DOES_NOT_EXIST, "display_name": ""}
        return {"error": 0, "display_name": svc.display_name}

    def RGetServiceKeyNameW(self, message: dict, client: Caller) -> dict:
        h = self._get(client, message["scm_handle"], False)
        if not isinstance(h, ScHandle):
            return {"error": h, "service_name": ""}
        svc = self.core.db.by_display_name(message["display_name"])
        if svc is None:
            return {"error": E.ERROR_SERVICE_DOES_NOT_EXIST, "service_name": ""}
        return {"error": 0, "service_name": svc.name}

    def RQueryServiceConfigW(self, message: dict, client: Caller) -> dict:
        name, error = self._service(message, client, sv.SERVICE_QUERY_CONFIG)
        if error:
            return {"error": error, "config": config.empty_config()}
        svc = self.core.lookup(name)
        return {"error": 0, "config": config.query_config(svc), "standin": self._standin(svc)}

    def _standin(self, svc: ServiceRecord) -> bool:
        """A Win32 service whose image the model lacks runs as a stand-in (start.py's
        reference_image decides it the same way; sc qc shows it: never silent)."""
        if svc.service_type & SERVICE_DRIVER:
            return False
        return not self.core.kernel.image_available(svc.image_path)

    def RQueryServiceConfig2W(self, message: dict, client: Caller) -> dict:
        name, error = self._service(message, client, sv.SERVICE_QUERY_CONFIG)
        if error:
            return {"error": error, "info": {}}
        return {
            "error": 0,
            "info": config.query_config2(self.core.lookup(name), message["info_level"]),
        }

    def RChangeServiceConfigW(self, message: dict, client: Caller) -> dict:
        name, error = self._service(message, client, sv.SERVICE_CHANGE_CONFIG)
        if error:
            return {"error": error, "tag_id": 0}
        reply = config.change_config(self.core, self.core.lookup(name), message)
        if not reply["error"] and message.get("password") is not None:
            reply["error"] = store_password(self.core, name, message["password"])
        return reply

    def RChangeServiceConfig2W(self, message: dict, client: Caller) -> dict:
        name, error = self._service(message, client, sv.SERVICE_CHANGE_CONFIG)
        if error:
            return {"error": error}
        return {"error": config.change_config2(self.core, self.core.lookup(name), message)}

    def RCreateServiceW(self, message: dict, client: Caller) -> dict:
        h = self._get(client, message["scm_handle"], False, sv.SC_MANAGER_CREATE_SERVICE)
        if not isinstance(h, ScHandle):
            return {"error": h, "handle": 0, "tag_id": 0}
        # The new service gets the default descriptor (a stale one of a deleted namesake goes).
        self.security.forget(message["service_name"])
        access = self.security.check(client, message["desired_access"], message["service_name"])
        if access is None:
            return {"error": E.ERROR_ACCESS_DENIED, "handle": 0, "tag_id": 0}
        error, svc = config.create_service(self.core, message)
        if svc is None:
            return {"error": error, "handle": 0, "tag_id": 0}
        if message.get("password") is not None:
            store_password(self.core, svc.name, message["password"])
        return {"error": 0, "handle": self._new(client, access, svc.name), "tag_id": svc.tag}

    def RDeleteService(self, message: dict, client: Caller) -> dict:
        name, error = self._service(message, client, sv.DELETE)
        if error:
            return {"error": error}
        return {"error": config.delete_service(self.core, self.core.lookup(name))}

    def RQueryServiceObjectSecurity(self, message: dict, client: Caller) -> dict:
        h = self._any(client, message["handle"])
        if not isinstance(h, ScHandle):
            return {"error": h, "security_descriptor": b""}
        error, data = self.security.query(h.service, message["security_information"], h.access)
        return {"error": error, "security_descriptor": data}

    def RSetServiceObjectSecurity(self, message: dict, client: Caller) -> dict:
        h = self._any(client, message["handle"])
        if not isinstance(h, ScHandle):
            return {"error": h}
        return {
            "error": self.security.set(
                h.service,
                message["security_information"],
                message["security_descriptor"],
                h.access,
            )
        }

    def _any(self, client: Caller, handle: int) -> ScHandle | int:
        """An SC manager or a service handle (the object-security routines take either)."""
        h = self.handles.get(handle)
        return self._get(client, handle, h is not None and h.service is not None)

    def REnumDependentServicesW(self, message: dict, client: Caller) -> dict:
        name, error = self._service(message, client, sv.SERVICE_ENUMERATE_DEPENDENTS)
        if error:
            return {"error": error, "services": []}
        found = config.dependents_deep(self.core.db, name)
        keep = [
            s for s in found if _state_matches(s.status.current_state, message["service_state"])
        ]
        return {"error": 0, "services": [config.enum_entry(s) for s in keep]}

    def REnumServicesStatusW(self, message: dict, client: Caller) -> dict:
        return self._enum(message, client, None, process=False)

    def REnumServicesStatusExW(self, message: dict, client: Caller) -> dict:
        return self._enum(message, client, message["group_name"], process=True)

    def _enum(self, message: dict, client: Caller, group: str | None, *, process: bool) -> dict:
        h = self._get(client, message["scm_handle"], False, sv.SC_MANAGER_ENUMERATE_SERVICE)
        empty = {"services": [], "resume_index": 0, "more_data": False}
        if not isinstance(h, ScHandle):
            return {"error": h, **empty}
        rows = [
            s
            for s in self.core.db.services.values()
            if s.service_type & message["service_type"]
            and _state_matches(s.status.current_state, message["service_state"])
            and (group is None or s.group.lower() == group.lower())
        ]
        start = message["resume_index"]
        page = rows[start : start + sv.ENUM_PAGE]
        more = start + len(page) < len(rows)
        return {
            "error": E.ERROR_MORE_DATA if more else 0,
            "services": [config.enum_entry(s, process=process) for s in page],
            "resume_index": start + len(page) if more else 0,
            "more_data": more,
        }


def _state_matches(state: int, wanted: int) -> bool:
    active = state != sv.SERVICE_STOPPED
    return wanted == sv.SERVICE_STATE_ALL or (wanted == sv.SERVICE_ACTIVE) == active


def _control_right(code: int) -> int | None:
    """The access a control needs (RControlService's switch); None: invalid code."""
    if code == sv.SERVICE_CONTROL_STOP:
        return sv.SERVICE_STOP
    if code in (
        sv.SERVICE_CONTROL_PAUSE,
        sv.SERVICE_CONTROL_CONTINUE,
        sv.SERVICE_CONTROL_PARAMCHANGE,
    ) or (sv.SERVICE_CONTROL_NETBINDADD <= code <= sv.SERVICE_CONTROL_NETBINDDISABLE):
        return sv.SERVICE_PAUSE_CONTINUE
    if code == sv.SERVICE_CONTROL_INTERROGATE:
        return sv.SERVICE_INTERROGATE
    if 128 <= code <= 255:
        return sv.SERVICE_USER_DEFINED_CONTROL
    return None


def _empty_status() -> dict[str, int]:
    return {
        "service_type": 0,
        "current_state": sv.SERVICE_STOPPED,
        "controls_accepted": 0,
        "win32_exit_code": 0,
        "service_specific_exit_code": 0,
        "check_point": 0,
        "wait_hint": 0,
    }
