"""System-service stubs: what ntdll's Nt* functions are to a Windows image.

Each method is one request on the kernel's ``\\KiSystemService`` port, named by its Nt*
service and checked against that service's request schema before it is sent
(``ports.client.call_api``). Failures raise ``NtError`` carrying the NTSTATUS, so callers
read like NT code checking NT_SUCCESS.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from nt import regsnap, regwire
from nt.regfile import Op
from nt.status import NtStatus, status_name
from ports.client import Connection, call_api
from ports.kernel import OPTION_OK, SYSTEM_SERVICES

__all__ = ["INFINITE", "OPTION_OK", "NtError", "SystemServices"]

INFINITE = None


class NtError(Exception):
    def __init__(self, status: int, what: str = "", detail: str = "") -> None:
        self.status = int(status)
        self.detail = detail  # the server's own words, when it sent any
        text = f"{what} failed: {status_name(status)}" if what else status_name(status)
        super().__init__(f"{text}: {detail}" if detail else text)


class SystemServices:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def call(self, service: str, timeout: float | None = 30.0, **body: Any) -> dict:
        r = call_api(self.conn, SYSTEM_SERVICES.by_name()[service], body, timeout)
        if r.status != NtStatus.STATUS_SUCCESS:
            raise NtError(r.status, service)
        return r.body

    def status(self, service: str, timeout: float | None = 30.0, **body: Any) -> int:
        """The NTSTATUS alone, for calls whose failure is an answer (waits)."""
        return call_api(self.conn, SYSTEM_SERVICES.by_name()[service], body, timeout).status

    # -- processes --------------------------------------------------------------
    def create_process(
        self,
        image: str,
        command_line: str,
        environment: dict[str, str],
        session: int | None,
        suspended: bool = True,
        current_directory: str = "",
        logon_id: int = 0,
    ) -> int:
        body = self.call(
            "NtCreateUserProcess",
            logon_id=logon_id,
            image=image,
            command_line=command_line,
            environment=environment,
            session=session,
            suspended=suspended,
            current_directory=current_directory,
        )
        return body["pid"]

    def resume(self, pid: int) -> None:
        self.call("NtResumeThread", pid=pid)

    def terminate(self, pid: int, exit_status: int) -> None:
        self.call("NtTerminateProcess", pid=pid, exit_status=exit_status & 0xFFFFFFFF)

    def set_critical(self, critical: bool = True, pid: int = 0) -> None:
        """RtlSetProcessIsCritical(TRUE, NULL, FALSE) on the calling process (``pid`` 0), or
        NtSetInformationProcess(ProcessBreakOnTermination) on another (SYSTEM only)."""
        self.call(
            "NtSetInformationProcess",
            pid=pid,
            info_class="ProcessBreakOnTermination",
            value=int(critical),
        )

    def set_base_priority(self, priority: int) -> None:
        self.call("NtSetInformationProcess", info_class="ProcessBasePriority", value=priority)

    def query_process(self, pid: int) -> dict:
        return self.call("NtQueryInformationProcess", pid=pid)["process"]

    def processes(self) -> list[dict]:
        return self.call("NtQuerySystemInformation", info_class="SystemProcessInformation")[
            "processes"
        ]

    def modules(self) -> list[dict]:
        """The loaded drivers, in load order (SystemModuleInformation)."""
        return self.call("NtQuerySystemInformation", info_class="SystemModuleInformation")[
            "modules"
        ]

    # -- objects ----------------------------------------------------------------
    def create_directory(self, name: str, permanent: bool = False) -> None:
        self.call("NtCreateDirectoryObject", name=name, permanent=permanent)

    def create_link(self, name: str, target: str, permanent: bool = False) -> None:
        self.call("NtCreateSymbolicLinkObject", name=name, target=target, permanent=permanent)

    def query_link(self, name: str) -> str:
        return self.call("NtQuerySymbolicLinkObject", name=name)["target"]

    def delete_object(self, name: str) -> None:
        self.call("NtMakeTemporaryObject", name=name)

    def query_directory(self, name: str) -> list[dict]:
        return self.call("NtQueryDirectoryObject", name=name)["entries"]

    def create_event(
        self, name: str, manual_reset: bool = True, initial_state: bool = False
    ) -> None:
        self.call(
            "NtCreateEvent", name=name, manual_reset=manual_reset, initial_state=initial_state
        )

    def create_window_station(self, name: str, desktops: Sequence[str] = ()) -> str:
        """NtUserCreateWindowStation in the caller's session, then NtUserCreateDesktop for
        each of ``desktops``; returns the station's object name."""
        path = self.call("NtUserCreateWindowStation", name=name)["path"]
        for desktop in desktops:
            self.call("NtUserCreateDesktop", window_station=name, name=desktop)
        return path

    def set_event(self, name: str) -> None:
        self.call("NtSetEvent", name=name)

    def wait_event(self, name: str, timeout_ms: int | None = INFINITE) -> int:
        """STATUS_SUCCESS when signalled, STATUS_TIMEOUT at the deadline."""
        timeout = None if timeout_ms is None else timeout_ms / 1000 + 5
        # INFINITE is the absent field (a None would fail the schema: STATUS_INVALID_PARAMETER)
        limit = {} if timeout_ms is None else {"timeout_ms": timeout_ms}
        return self.status("NtWaitForSingleObject", timeout=timeout, name=name, **limit)

    # -- errors, shutdown, screen -----------------------------------------------
    def raise_hard_error(
        self, status: int, parameters: list, response_option: int, unicode_mask: int = 0
    ) -> int:
        body = self.call(
            "NtRaiseHardError",
            status=status & 0xFFFFFFFF,
            parameters=parameters,
            unicode_mask=unicode_mask,
            response_option=response_option,
        )
        return body["response"]

    def set_default_hard_error_port(self) -> None:
        self.call("NtSetDefaultHardErrorPort")

    def shutdown(self, action: int) -> None:
        self.call("NtShutdownSystem", action=action)

    def load_driver(self, service_key: str) -> None:
        self.call("NtLoadDriver", service_key=service_key)

    def display_string(self, text: str) -> None:
        self.call("NtDisplayString", text=text)

    # -- registry ---------------------------------------------------------------
    def create_key(self, path: str, volatile: bool = False) -> bool:
        return self.call("NtCreateKey", path=path, volatile=volatile)["created"]

    def key_exists(self, path: str) -> bool:
        return self.status("NtOpenKey", path=path) == NtStatus.STATUS_SUCCESS

    def delete_key(self, path: str, tree: bool = False) -> None:
        self.call("NtDeleteKey", path=path, tree=tree)

    def set_value(self, path: str, name: str, type: int, data: Any) -> None:
        self.call("NtSetValueKey", path=path, name=name, type=type, data=data)

    def query_value(self, path: str, name: str) -> tuple[int, Any]:
        body = self.call("NtQueryValueKey", path=path, name=name)
        return body["type"], body["data"]

    def delete_value(self, path: str, name: str) -> None:
        self.call("NtDeleteValueKey", path=path, name=name)

    def enum_keys(self, path: str) -> list[str]:
        return self.call("NtEnumerateKey", path=path)["keys"]

    def enum_values(self, path: str) -> list[tuple[int, Any]]:
        return [tuple(v) for v in self.call("NtEnumerateValueKey", path=path)["values"]]

    def query_key(self, path: str) -> dict:
        return self.call("NtQueryKey", path=path)["info"]

    def load_key(self, path: str, file: str) -> bool:
        """NtLoadKey of a user hive at ``HKU\\<SID>``; True when the file was made."""
        return self.call("NtLoadKey", path=path, file=file)["created"]

    def unload_key(self, path: str) -> None:
        self.call("NtUnloadKey", path=path)

    def initialize_registry(self, flags: int) -> None:
        self.call("NtInitializeRegistry", flags=flags)

    def import_reg(self, text: str) -> dict:
        """Import .reg text of any size: parsed here, staged in chunks (``import_ops``)."""
        from nt import regfile

        return self.import_ops(regfile.parse(text))

    def export_key(self, path: str) -> str:
        return self.call("CmExportKey", path=path)["text"]

    def import_ops(self, ops: Iterable[Op], timeout: float = 600.0) -> dict:
        """Staged import: chunks of about 1 MiB (``nt/regwire.py``), applied at commit."""
        handle = self.call("CmImportBegin")["handle"]
        try:
            for blob in regwire.pack_ops(ops):
                self.call("CmImportOps", timeout=timeout, handle=handle, ops=blob)
            commit = SYSTEM_SERVICES.by_name()["CmImportCommit"]
            r = call_api(self.conn, commit, {"handle": handle}, timeout)
            if r.status != NtStatus.STATUS_SUCCESS:
                raise NtError(r.status, "CmImportCommit", str(r.body.get("message", "")))
            return r.body
        except BaseException:
            with contextlib.suppress(Exception):  # the kernel drops it with us anyway
                self.call("CmImportAbort", timeout=5.0, handle=handle)
            raise

    def export_records(self, path: str, timeout: float = 600.0) -> Iterator[regsnap.Record]:
        """A subtree snapshot, read back in chunks: (path, [(name, type, raw)]) per key."""
        handle = self.call("CmExportBegin", timeout=timeout, path=path)["handle"]

        def chunks() -> Iterator[regsnap.Record]:
            while True:
                body = self.call("CmExportRead", timeout=timeout, handle=handle)
                yield from regwire.unpack_records(body["records"])
                if body["done"]:
                    return

        return regsnap.merge(chunks())
