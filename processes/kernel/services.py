"""System-service handlers: the kernel side of ``\\KiSystemService``.

Every handler is a ``ports.contract.Handler``: ``(message, client) -> dict | NTSTATUS |
Reply | PENDING``.
The caller's identity (``client.pid``) comes from the OS through ZAP, so "the caller"
below is always the real process, never a pid named in the body.
"""

from __future__ import annotations

import itertools
import re
import threading
from typing import Any

from nt import bugcodes
from nt import security as sec
from nt.regpath import HKLM, USER_HIVE_PREFIX, RegistryError, locate
from nt.seaudit import audit_open_denied, audit_privilege_denied
from nt.status import NtStatus
from ports.contract import PENDING, ClientContext, Handler, HandlerResult, Reply
from ports.kernel import ATTACH, OPTION_SHUTDOWN_SYSTEM, SYSTEM_SERVICES
from processes.kernel import keysec
from processes.kernel.harderr import RESPONSE_RETURN_TO_CALLER
from processes.kernel.ob import ObError

# Only these images may take the machine down through a hard error (nt-spec §7 #15).
SYSTEM_IMAGES = {
    "smss.exe",
    "csrss.exe",
    "wininit.exe",
    "winlogon.exe",
    "services.exe",
    "lsass.exe",
}
RESPONSE_OK = 6
# Who may create processes in session 0: SYSTEM, LocalService, NetworkService.
SESSION0_ACCOUNTS = {sec.LOCAL_SYSTEM, "S-1-5-19", "S-1-5-20"}

# One descriptor for HKLM's keys (the model keeps no per-key security yet).
PROCESS_TERMINATE = 0x0001
HKLM_SECURITY = sec.parse_sddl(sec.HKLM_DEFAULT_SDDL)
REGISTRY_WRITES = frozenset(
    {"NtCreateKey", "NtDeleteKey", "NtSetValueKey", "NtDeleteValueKey", "CmImportRegFile"}
)
# Hives only SYSTEM's security process may open (reliability-security §4.2 item 3).
LSA_ONLY_HIVES = frozenset({"SAM", "SECURITY"})
# Key lines of .reg text that name one of them (every spelling regpath accepts for HKLM).
_LSA_ONLY_REG_KEY = re.compile(
    r"^\s*\[-?\s*(?:HKEY_LOCAL_MACHINE|HKLM|\\?Registry\\Machine)\\(?:SAM|SECURITY)\s*[\\\]]",
    re.IGNORECASE | re.MULTILINE,
)


def _is_system(client: ClientContext) -> bool:
    """The caller's token is SYSTEM's (LocalSystem)."""
    return (client.token or {}).get("sid") == sec.LOCAL_SYSTEM


def _status(fn):
    """Turn object-manager and registry failures into their NTSTATUS replies."""

    def wrapper(self, msg: dict, client: ClientContext) -> HandlerResult:
        try:
            return fn(self, msg, client)
        except ObError as exc:
            return int(exc.status)
        except LookupError:
            return NtStatus.STATUS_OBJECT_NAME_NOT_FOUND
        except Exception as exc:
            status = getattr(exc, "status", None)
            if status is None:
                raise
            return int(status)

    wrapper.__name__ = fn.__name__
    return wrapper


def _lsa_only(fn):
    """HKLM\\SAM and HKLM\\SECURITY answer lsass alone: STATUS_ACCESS_DENIED to any other
    caller, whoever it says it is (the check reads the kernel's process record)."""

    def wrapper(self, msg: dict, client: ClientContext) -> HandlerResult:
        export = fn.__name__ in ("CmExportKey", "CmExportBegin")
        msg = {**msg, "path": self.current_user_path(msg["path"], client)}
        if self.protected_path(msg["path"], export=export) and not (self.is_lsass(client)):
            return self.deny_registry(client, msg["path"], fn.__name__)
        if fn.__name__ in REGISTRY_WRITES and not keysec.may_write(client.token, msg["path"]):
            return self.deny_registry(client, msg["path"], fn.__name__)
        if fn.__name__ not in REGISTRY_WRITES and not keysec.may_read(client.token, msg["path"]):
            return self.deny_registry(client, msg["path"], fn.__name__)
        return fn(self, msg, client)

    wrapper.__name__ = fn.__name__
    return wrapper


class SystemServiceHandlers:
    def __init__(self, kernel: Any) -> None:
        self.k = kernel
        self._waits = itertools.count(1)
        # Tokens lsass made for processes that have not attached yet (ntctl --as).
        self.pending_tokens: dict[int, dict] = {}
        # The tokens lsass made, by logon id: the handles winlogon holds for a logon's life
        # (a SYSTEM process starts the user's shell again with one).
        self.logon_tokens: dict[int, dict] = {}

    def table(self) -> dict[int, Handler]:
        names = {a.name: a.number for a in SYSTEM_SERVICES.apis}
        return {
            number: self._with_current_token(getattr(self, name)) for name, number in names.items()
        }

    def _with_current_token(self, fn: Handler) -> Handler:
        """The caller's token as the process table has it now, not as it was when it
        connected: a process CreateProcessAsUser made connects while suspended, before
        its token is set (NtCreateToken on a suspended process)."""

        def handler(msg: dict, client: ClientContext) -> HandlerResult:
            record = self.k.ps.get(client.pid)
            if record is not None and record.state != "exited" and record.token:
                client.token = record.token
            return fn(msg, client)

        handler.__name__ = getattr(fn, "__name__", "handler")
        return handler

    # -- who may read the security hives ---------------------------------------------
    def is_lsass(self, client: ClientContext) -> bool:
        """The security process as the kernel created it: image lsass.exe, not attached."""
        record = self.k.ps.get(client.pid)
        return record is not None and record.image == "lsass.exe" and record.state != "attached"

    @staticmethod
    def may_write_registry(client: ClientContext) -> bool:
        """KEY_WRITE against HKLM's descriptor: Administrators (not deny-only) and SYSTEM."""
        _, status = sec.access_check(HKLM_SECURITY, client.token, sec.KEY_WRITE, sec.KEY_MAPPING)
        return status == NtStatus.STATUS_SUCCESS

    def current_user_path(self, path: str, client: ClientContext) -> str:
        """HKEY_CURRENT_USER is the caller's own hive when its profile is loaded
        (HKU\\<SID>, LoadUserProfile); otherwise .DEFAULT, as for LocalSystem."""
        head, sep, rest = path.partition("\\")
        if head.casefold() not in ("hkcu", "hkey_current_user"):
            return path
        sid = (client.token or {}).get("sid", "")
        if not sid or sid.upper() not in self.k.cm.registry.user_hives():
            return path
        return f"HKEY_USERS\\{sid}{sep}{rest}"

    @staticmethod
    def protected_path(path: str, export: bool = False) -> bool:
        try:
            loc = locate(path)
        except RegistryError:
            return False  # the service itself answers the bad path
        if loc.hive is None:  # exporting HKLM means exporting SAM and SECURITY too
            return export and loc.root == HKLM
        return loc.hive in LSA_ONLY_HIVES

    def deny_registry(self, client: ClientContext, path: str, service: str) -> int:
        self.k.log.warning(
            "cm.access_denied",
            path=path[:512],
            service=service,
            caller_pid=client.pid,
            caller_image=client.image,
            status=NtStatus.STATUS_ACCESS_DENIED,
        )
        audit_open_denied(
            self.k.log,
            client.token,
            server="Security",
            object_type="Key",
            object_name=path,
            desired=sec.KEY_WRITE if service in REGISTRY_WRITES else sec.KEY_READ,
            pid=client.pid,
            image=client.image,
        )
        return NtStatus.STATUS_ACCESS_DENIED

    def attach_table(self) -> dict[int, Handler]:
        return {ATTACH.by_name()["KdAttachProcess"].number: self.KdAttachProcess}

    # -- processes --------------------------------------------------------------
    @_status
    def NtCreateUserProcess(self, msg: dict, client: ClientContext) -> HandlerResult:
        if self.k.stopping:
            return NtStatus.STATUS_SHUTDOWN_IN_PROGRESS
        if (
            msg["account"] or msg["standin"] or msg["logon_id"]
        ) and "SeAssignPrimaryTokenPrivilege" not in ((client.token or {}).get("privileges") or []):
            return NtStatus.STATUS_PRIVILEGE_NOT_HELD
        if msg["account"] and not _is_system(client):
            # Naming an account conjures its token: only SYSTEM (the SCM) may. A LocalService
            # process holds SeAssignPrimaryTokenPrivilege too, but no SYSTEM token to assign.
            return NtStatus.STATUS_ACCESS_DENIED
        caller = self.k.ps.get(client.pid)
        token = caller.token if caller is not None else {}
        if msg["session"] == 0 and token.get("sid") not in SESSION0_ACCOUNTS:
            # Session 0 isolation (Vista+): no user process runs beside the services.
            self.k.log.warning(
                "proc.session0_refused",
                image=msg["image"],
                by_pid=client.pid,
                user=token.get("user", ""),
                status=NtStatus.STATUS_ACCESS_DENIED,
            )
            return NtStatus.STATUS_ACCESS_DENIED
        user_token = None
        if msg["logon_id"]:
            user_token = self.logon_tokens.get(msg["logon_id"])
            if user_token is None:
                return NtStatus.STATUS_NO_SUCH_LOGON_SESSION
        record = self.k.ps.create(
            msg["image"],
            msg["command_line"],
            msg["environment"],
            msg["session"],
            client.pid,
            msg["suspended"],
            account=msg["account"],
            standin=msg["standin"],
            token=user_token,
        )
        return {"pid": record.pid, "create_time": record.create_time}

    @_status
    def NtResumeThread(self, msg: dict, client: ClientContext) -> HandlerResult:
        return self.k.ps.resume(msg["pid"])

    @_status
    def NtTerminateProcess(self, msg: dict, client: ClientContext) -> HandlerResult:
        pid = msg["pid"] or client.pid
        target = self.k.ps.get(pid)
        if (
            pid != client.pid
            and target is not None
            and not sec.may_terminate(client.token, target.token)
        ):
            self.k.log.warning(
                "ps.access_denied",
                child_pid=pid,
                caller_pid=client.pid,
                caller_image=client.image,
                status=NtStatus.STATUS_ACCESS_DENIED,
            )
            audit_open_denied(
                self.k.log,
                client.token,
                server="Security",
                object_type="Process",
                object_name=f"{target.image} ({pid})",
                desired=PROCESS_TERMINATE,
                pid=client.pid,
                image=client.image,
            )
            return NtStatus.STATUS_ACCESS_DENIED
        return self.k.terminate(pid, msg["exit_status"], by=client.pid)

    @_status
    def NtSetInformationProcess(self, msg: dict, client: ClientContext) -> HandlerResult:
        target = msg["pid"] or client.pid
        system = client.image in SYSTEM_IMAGES and _is_system(client)
        if target != client.pid and not system:
            # RtlSetProcessIsCritical acts on the caller; another process's flag needs
            # PROCESS_SET_INFORMATION on it, which only SYSTEM's own images get here (smss
            # ending a session made on demand clears its csrss's and winlogon's).
            return NtStatus.STATUS_ACCESS_DENIED
        record = self.k.ps.get(target)
        if record is None or record.state == "exited":
            return NtStatus.STATUS_INVALID_CID
        if msg["info_class"] == "ProcessBreakOnTermination":
            record.critical = bool(msg["value"])
            self.k.log.info(
                "proc.critical",
                child_pid=target,
                by_pid=client.pid,
                child_image=record.image,
                critical=record.critical,
            )
            return {}
        if msg["info_class"] == "ProcessBasePriority":
            return {}
        return NtStatus.STATUS_INVALID_INFO_CLASS

    @_status
    def NtQueryInformationProcess(self, msg: dict, client: ClientContext) -> HandlerResult:
        record = self.k.ps.get(msg["pid"])
        if record is None:
            return NtStatus.STATUS_INVALID_CID
        return {"process": record.public()}

    @_status
    def NtQuerySystemInformation(self, msg: dict, client: ClientContext) -> HandlerResult:
        if msg["info_class"] == "SystemModuleInformation":  # drivers: processes/kernel/io.py
            io = getattr(self.k, "io", None)  # set by IoInitSystem
            return {"modules": io.module_table() if io is not None else []}
        if msg["info_class"] != "SystemProcessInformation":
            return NtStatus.STATUS_INVALID_INFO_CLASS
        return {"processes": self.k.ps.snapshot()}

    # -- objects ----------------------------------------------------------------
    @_status
    def NtCreatePort(self, msg: dict, client: ClientContext) -> HandlerResult:
        port = self.k.ob.create_port(msg["name"], client.pid, msg["max_message_length"])
        self.k.log.info("ob.port_create", name=msg["name"], owner_pid=client.pid)
        return {"endpoint": port.endpoint}

    @_status
    def NtOpenPort(self, msg: dict, client: ClientContext) -> HandlerResult:
        port = self.k.ob.lookup_port(msg["name"])
        return {
            "endpoint": port.endpoint,
            "max_message_length": port.max_message_length,
            "server_pid": port.owner_pid,
        }

    @_status
    def NtCreateDirectoryObject(self, msg: dict, client: ClientContext) -> HandlerResult:
        self.k.ob.create_directory(
            msg["name"], msg["permanent"], open_if=True, owner_pid=client.pid
        )
        return {}

    @_status
    def NtCreateSymbolicLinkObject(self, msg: dict, client: ClientContext) -> HandlerResult:
        self.k.ob.create_symbolic_link(
            msg["name"], msg["target"], permanent=msg["permanent"], owner_pid=client.pid
        )
        return {}

    @_status
    def NtQuerySymbolicLinkObject(self, msg: dict, client: ClientContext) -> HandlerResult:
        return {"target": self.k.ob.query_symbolic_link(msg["name"])}

    @_status
    def NtMakeTemporaryObject(self, msg: dict, client: ClientContext) -> HandlerResult:
        for removed in self.k.ob.delete(msg["name"]):
            self.k.complete_waiters(removed.waiters, NtStatus.STATUS_INVALID_HANDLE)
        return {}

    @_status
    def NtQueryDirectoryObject(self, msg: dict, client: ClientContext) -> HandlerResult:
        entries = self.k.ob.query_directory(msg["name"])
        return {"entries": [[e.name, e.type_name, e.target] for e in entries]}

    @_status
    def NtCreateEvent(self, msg: dict, client: ClientContext) -> HandlerResult:
        self.k.ob.create_event(
            msg["name"],
            msg["manual_reset"],
            msg["initial_state"],
            owner_pid=client.pid,
            open_if=True,
        )
        return {}

    @_status
    def NtUserCreateWindowStation(self, msg: dict, client: ClientContext) -> HandlerResult:
        if not _is_system(client):  # winlogon and wininit make them
            return NtStatus.STATUS_ACCESS_DENIED
        station = self.k.ob.create_window_station(client.session or 0, msg["name"], client.pid)
        return {"path": station.path}

    @_status
    def NtUserCreateDesktop(self, msg: dict, client: ClientContext) -> HandlerResult:
        if not _is_system(client):
            return NtStatus.STATUS_ACCESS_DENIED
        self.k.ob.create_desktop(client.session or 0, msg["window_station"], msg["name"])
        return {}

    @_status
    def NtSetEvent(self, msg: dict, client: ClientContext) -> HandlerResult:
        waiters = self.k.ob.set_event(msg["name"])
        self.k.complete_waiters(waiters, NtStatus.STATUS_SUCCESS)
        return {}

    @_status
    def NtWaitForSingleObject(self, msg: dict, client: ClientContext) -> HandlerResult:
        """No thread blocks: the reply is deferred until the event is set or time runs out."""
        deferred = client.defer()
        waiter_id = next(self._waits)
        if self.k.ob.wait_event(msg["name"], waiter_id, pid=client.pid, context=deferred):
            return {}
        timeout = msg["timeout_ms"]
        if timeout is not None:

            def expire() -> None:
                try:
                    waiter = self.k.ob.cancel_wait(msg["name"], waiter_id)
                except ObError:  # the event went away; its waiters were completed then
                    return
                if waiter is not None:
                    deferred.complete(NtStatus.STATUS_TIMEOUT)

            timer = threading.Timer(timeout / 1000, expire)
            timer.daemon = True
            timer.start()
        return PENDING

    # -- hard errors, shutdown, display -----------------------------------------
    @_status
    def NtRaiseHardError(self, msg: dict, client: ClientContext) -> HandlerResult:
        status, params = msg["status"], msg["parameters"]
        self.k.log.warning(
            "harderror",
            status=status,
            parameters=[str(p) for p in params],
            caller_pid=client.pid,
            caller_image=client.image,
            option=msg["response_option"],
        )
        system = client.image in SYSTEM_IMAGES and _is_system(client)
        if msg["response_option"] == OPTION_SHUTDOWN_SYSTEM and not system:
            return NtStatus.STATUS_PRIVILEGE_NOT_HELD
        if msg["response_option"] == OPTION_SHUTDOWN_SYSTEM or not self.k.ready_for_errors:
            self.k.hard_error_bugcheck(status, params, client)
            return PENDING  # the machine is going down; no reply will be needed
        # ExpRaiseHardError: the HARDERROR_MSG goes to csrss (harderr.py); the reply waits
        # for the response it sends back.
        message = {
            "status": status,
            "parameters": [p if isinstance(p, int) else str(p)[:512] for p in params],
            "unicode_string_parameter_mask": msg["unicode_mask"],
            "valid_response_options": min(msg["response_option"], 8),
            "process_id": client.pid,
            "image": client.image or "",
            "system": _is_system(client),
        }
        if self.k.hard_errors.deliver(message, client.defer()):
            return PENDING
        return {"response": RESPONSE_RETURN_TO_CALLER}

    @_status
    def NtSetDefaultHardErrorPort(self, msg: dict, client: ClientContext) -> HandlerResult:
        if client.image != "csrss.exe":
            return NtStatus.STATUS_PRIVILEGE_NOT_HELD
        if self.k.hard_errors.register(client.session or 0, client.pid):
            self.k.ready_for_errors = True
            self.k.log.info("ex.hard_error_port", csrss_pid=client.pid)
        return {}

    @_status
    def NtLoadDriver(self, msg: dict, client: ClientContext) -> HandlerResult:
        """SeLoadDriverPrivilege: the model grants it to SYSTEM's token alone."""
        if not _is_system(client):
            return NtStatus.STATUS_PRIVILEGE_NOT_HELD
        io = getattr(self.k, "io", None)
        if io is None:
            return NtStatus.STATUS_NOT_IMPLEMENTED
        return io.load_driver(msg["service_key"].rsplit("\\", 1)[-1])

    @_status
    def CmRevertToLastKnownGood(self, msg: dict, client: ClientContext) -> HandlerResult:
        if not _is_system(client):
            return NtStatus.STATUS_PRIVILEGE_NOT_HELD
        io = getattr(self.k, "io", None)
        if io is None:
            return NtStatus.STATUS_NOT_IMPLEMENTED
        reverted = io.revert_to_last_known_good(msg["service_name"], msg["critical"], client.pid)
        return {"reverted": reverted}

    @_status
    def NtShutdownSystem(self, msg: dict, client: ClientContext) -> HandlerResult:
        if "SeShutdownPrivilege" not in client.token.get("privileges", []):
            audit_privilege_denied(
                self.k.log,
                client.token,
                "SeShutdownPrivilege",
                server="Security",
                object_name="NtShutdownSystem",
                pid=client.pid,
                image=client.image,
            )
            return NtStatus.STATUS_PRIVILEGE_NOT_HELD
        self.k.request_shutdown(msg["action"], by=client.pid)
        return {}

    @_status
    def NtDisplayString(self, msg: dict, client: ClientContext) -> HandlerResult:
        self.k.log.info("boot.display", text=msg["text"], caller_image=client.image)
        return {}

    # -- registry ---------------------------------------------------------------
    @_status
    @_lsa_only
    def NtCreateKey(self, msg: dict, client: ClientContext) -> HandlerResult:
        return {"created": self.k.cm.create_key(msg["path"], volatile=msg["volatile"])}

    @_status
    @_lsa_only
    def NtOpenKey(self, msg: dict, client: ClientContext) -> HandlerResult:
        return {} if self.k.cm.key_exists(msg["path"]) else NtStatus.STATUS_OBJECT_NAME_NOT_FOUND

    @_status
    @_lsa_only
    def NtDeleteKey(self, msg: dict, client: ClientContext) -> HandlerResult:
        self.k.cm.delete_key(msg["path"], tree=msg["tree"])
        return {}

    @_status
    @_lsa_only
    def NtSetValueKey(self, msg: dict, client: ClientContext) -> HandlerResult:
        self.k.cm.set_value(msg["path"], msg["name"], msg["type"], msg["data"])
        return {}

    @_status
    @_lsa_only
    def NtQueryValueKey(self, msg: dict, client: ClientContext) -> HandlerResult:
        vtype, data = self.k.cm.query_value(msg["path"], msg["name"])
        return {"type": vtype, "data": data}

    @_status
    @_lsa_only
    def NtDeleteValueKey(self, msg: dict, client: ClientContext) -> HandlerResult:
        self.k.cm.delete_value(msg["path"], msg["name"])
        return {}

    @_status
    @_lsa_only
    def NtEnumerateKey(self, msg: dict, client: ClientContext) -> HandlerResult:
        return {"keys": self.k.cm.enum_keys(msg["path"])}

    @_status
    @_lsa_only
    def NtEnumerateValueKey(self, msg: dict, client: ClientContext) -> HandlerResult:
        return {"values": [list(v) for v in self.k.cm.enum_values(msg["path"])]}

    @_status
    @_lsa_only
    def NtQueryKey(self, msg: dict, client: ClientContext) -> HandlerResult:
        return {"info": self.k.cm.query_key(msg["path"])}

    @_status
    def NtLoadKey(self, msg: dict, client: ClientContext) -> HandlerResult:
        """LoadUserProfile's RegLoadKey: HKU\\<SID> only, SYSTEM only."""
        key = self._user_hive_key(msg["path"], client, "NtLoadKey")
        if isinstance(key, int):
            return key
        from nt.dospath import host_path

        file = host_path(self.k.root, msg["file"])
        created = self.k.cm.registry.load_user_hive(key, file)
        self.k.log.info("cm.hive_loaded", key=f"HKU\\{key}", file=msg["file"], created=created)
        return {"created": created}

    @_status
    def NtUnloadKey(self, msg: dict, client: ClientContext) -> HandlerResult:
        key = self._user_hive_key(msg["path"], client, "NtUnloadKey")
        if isinstance(key, int):
            return key
        self.k.cm.registry.unload_user_hive(key)
        self.k.log.info("cm.hive_unloaded", key=f"HKU\\{key}")
        return {}

    def _user_hive_key(self, path: str, client: ClientContext, routine: str) -> str | int:
        """``<SID>`` of ``HKU\\<SID>`` for NtLoadKey/NtUnloadKey (SYSTEM only), or the status."""
        if not _is_system(client):
            return self.deny_registry(client, path, routine)
        loc = locate(path)
        if loc.hive is None or not loc.hive.startswith(USER_HIVE_PREFIX) or loc.parts:
            return NtStatus.STATUS_INVALID_PARAMETER
        return path.replace("/", "\\").rstrip("\\").rsplit("\\", 1)[1]

    @_status
    def NtInitializeRegistry(self, msg: dict, client: ClientContext) -> HandlerResult:
        return self.k.cm.initialize_registry(msg["flags"], client)

    @_status
    def CmImportRegFile(self, msg: dict, client: ClientContext) -> HandlerResult:
        if _LSA_ONLY_REG_KEY.search(msg["text"]) and not self.is_lsass(client):
            return self.deny_registry(client, "<import>", "CmImportRegFile")
        if not self.may_write_registry(client):
            return self.deny_registry(client, "<import>", "CmImportRegFile")
        return self.k.cm.import_text(msg["text"])

    @_status
    @_lsa_only
    def CmExportKey(self, msg: dict, client: ClientContext) -> HandlerResult:
        return {"text": self.k.cm.export(msg["path"])}

    @_status
    def CmImportBegin(self, msg: dict, client: ClientContext) -> Any:
        if not self.may_write_registry(client):
            return self.deny_registry(client, "<import>", "CmImportBegin")
        return {"handle": self.k.cm.import_begin(client.state)}

    @_status
    def CmImportOps(self, msg: dict, client: ClientContext) -> Any:
        return {"staged": self.k.cm.import_stage(client.state, msg["handle"], msg["ops"])}

    @_status
    def CmImportCommit(self, msg: dict, client: ClientContext) -> Any:
        """A refused import says which operation and why (the caller maps it to a line)."""
        staged = client.state.get("cm_imports", {}).get(msg["handle"])
        if (
            staged is not None
            and not self.is_lsass(client)
            and any(self.protected_path(op.path) for op in staged.ops)
        ):
            client.state["cm_imports"].pop(msg["handle"], None)
            return self.deny_registry(client, "<import>", "CmImportCommit")
        try:
            return self.k.cm.import_commit(client.state, msg["handle"])
        except RegistryError as exc:
            return Reply(int(exc.status), {"message": exc.message[:2000]})

    @_status
    def CmImportAbort(self, msg: dict, client: ClientContext) -> Any:
        self.k.cm.import_abort(client.state, msg["handle"])
        return {}

    @_status
    @_lsa_only
    def CmExportBegin(self, msg: dict, client: ClientContext) -> Any:
        handle, keys = self.k.cm.export_begin(client.state, msg["path"])
        return {"handle": handle, "keys": keys}

    @_status
    def CmExportRead(self, msg: dict, client: ClientContext) -> Any:
        records, done = self.k.cm.export_read(client.state, msg["handle"])
        return {"records": records, "done": done}

    # -- attach -----------------------------------------------------------------
    @_status
    def KdAttachProcess(self, msg: dict, client: ClientContext) -> HandlerResult:
        record = self.k.ps.get(client.pid)
        if record is None or record.state == "exited":
            record = self.k.ps.attach(client.pid, msg["image"], msg["session"])
            token = self.pending_tokens.pop(client.pid, None)
            if token is not None:
                record.token = token
            self.k.log.info(
                "proc.attach",
                child_pid=client.pid,
                child_image=msg["image"],
                user=record.token.get("user", ""),
            )
        return {"kernel_pid": self.k.pid}

    # -- tokens -------------------------------------------------------------------
    @_status
    def NtCreateToken(self, msg: dict, client: ClientContext) -> HandlerResult:
        """Only lsass mints tokens; a process already running keeps the one it has. A
        process created suspended that has not run yet takes it as its primary token
        (NtSetInformationProcess(ProcessAccessToken): a service's account, logged on by the
        SCM); one not yet attached gets it when it attaches (ntctl --as)."""
        if not self.is_lsass(client) or "SeCreateTokenPrivilege" not in client.token.get(
            "privileges", []
        ):
            return NtStatus.STATUS_PRIVILEGE_NOT_HELD
        record = self.k.ps.get(msg["pid"])
        if record is not None and record.state == "suspended":
            record.token = msg["token"]
            self._keep_logon_token(msg["token"])
            self.k.log.info(
                "se.token_assigned", child_pid=msg["pid"], user=msg["token"].get("user")
            )
            return {}
        if record is not None:
            return NtStatus.STATUS_ACCESS_DENIED
        if len(self.pending_tokens) >= 64:
            self.pending_tokens.pop(next(iter(self.pending_tokens)))
        self.pending_tokens[msg["pid"]] = msg["token"]
        self._keep_logon_token(msg["token"])
        self.k.log.info("se.token_assigned", child_pid=msg["pid"], user=msg["token"].get("user"))
        return {}

    def _keep_logon_token(self, token: dict) -> None:
        logon_id = int(token.get("logon_id") or 0)
        if logon_id:
            if len(self.logon_tokens) >= 256:
                self.logon_tokens.pop(next(iter(self.logon_tokens)))
            self.logon_tokens[logon_id] = token


def critical_params(profile: str, pid: int, image: str, external: bool) -> bugcodes.BugcheckParams:
    """0xEF on win10, 0xF4 on win7 (reliability-security.md §1.1)."""
    if profile == "win7":
        return bugcodes.critical_object_termination(pid, image, external=external)
    return bugcodes.critical_process_died(pid)


__all__ = ["SystemServiceHandlers", "critical_params"]
