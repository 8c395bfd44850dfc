"""Finding and joining the running machine from outside it.

``var/machine.json`` names the boot's private runtime directory; the per-boot key lies
there in a 0600 file. ntctl attaches through the kernel's ``\\KdAttachPort`` (same user,
holding the key), which records it in the process table as ``ntctl.exe``; from then on
its connections pass every port's check like any process of the machine.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from nt.status import NtStatus, status_name

if TYPE_CHECKING:  # imported where used: `ntctl ps` must not pay for the whole runtime
    from nt.csrclient import CsrClient
    from nt.syscalls import SystemServices
    from ports.client import Connection

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO / "var"


class MachineError(Exception):
    """A failure to report to the user: message, plus how to fix it."""

    def __init__(self, message: str, hint: str = "", status: int | None = None) -> None:
        self.status = status
        text = message + (f" ({status_name(status)})" if status is not None else "")
        super().__init__(text + (f"\n  {hint}" if hint else ""))


class MachineState:
    """var/machine.json: which boot runs, its kernel, its runtime directory."""

    def __init__(self, boot_id: str, kernel_pid: int, runtime: Path, profile: str) -> None:
        self.boot_id, self.kernel_pid, self.runtime, self.profile = (
            boot_id,
            kernel_pid,
            runtime,
            profile,
        )


def read_state(root: Path) -> MachineState:
    try:
        data = json.loads((root / "machine.json").read_text())
        state = MachineState(
            data["boot_id"], int(data["kernel_pid"]), Path(data["runtime"]), data["profile"]
        )
    except (OSError, ValueError, KeyError) as exc:
        raise MachineError(
            f"the machine is not running (no {root / 'machine.json'})",
            "start it with ./run.sh (or ./run.sh --detach to boot in the background)",
            NtStatus.STATUS_OBJECT_NAME_NOT_FOUND,
        ) from exc
    try:
        os.kill(state.kernel_pid, 0)
    except ProcessLookupError as exc:
        raise MachineError(
            f"the machine is not running (kernel pid {state.kernel_pid} is gone)",
            "start it with ./run.sh",
            NtStatus.STATUS_OBJECT_NAME_NOT_FOUND,
        ) from exc
    return state


def read_key(runtime: Path) -> bytes:
    """The boot's HMAC key, from the 0600 file in the 0700 runtime directory."""
    from ports.kernel import KEY_FILE

    try:
        return (runtime / KEY_FILE).read_bytes()
    except OSError as exc:
        raise MachineError(
            f"cannot read the boot key in {runtime}", "is the machine yours?"
        ) from exc


def register_with_csrss(lpc: object, session: int | None) -> None:
    """Have smss tell this session's csrss about us (SmExecPgm → SbCreateSession), the way
    an initial command is registered; csrss only accepts processes it knows. ``lpc`` is an
    ``LpcRuntime`` or a ``QuickMachine`` (both connect ports)."""
    from ports import sm
    from ports.client import PortError

    smc = sm.SmConnectToSm(lpc)
    try:
        r = sm.SmExecPgm(
            smc, os.getpid(), session=session or 0, subsystem_type=sm.IMAGE_SUBSYSTEM_WINDOWS_CUI
        )
    finally:
        smc.close()
    if not r.ok:
        raise PortError(r.status, "SmExecPgm")


class Machine:
    """An attached session with the running machine."""

    def __init__(self, root: Path = DEFAULT_ROOT, session: int | None = 1) -> None:
        from nt.log import get_logger
        from nt.syscalls import SystemServices
        from ports import kernel
        from ports.client import PortError
        from ports.runtime import LpcRuntime

        self.root = Path(root)
        self.session = session
        self._registered = False
        self.state = read_state(self.root)
        rt = self.state.runtime
        key = read_key(rt)
        log = get_logger()
        try:
            self.lpc = LpcRuntime(
                key=key,
                kernel_endpoint=kernel.endpoint(rt, kernel.SYSTEM_SERVICE_ENDPOINT),
                events_endpoint=kernel.endpoint(rt, kernel.EVENTS_ENDPOINT),
                log=log,
                attach={
                    "endpoint": kernel.endpoint(rt, kernel.ATTACH_ENDPOINT),
                    "image": "ntctl.exe",
                    "session": session,
                },
            )
        except PortError as exc:
            raise MachineError(
                "cannot attach to the machine", "is it still booting?", exc.status
            ) from exc
        self.lpc.kernel.server_pid = self.state.kernel_pid
        self.nt = SystemServices(self.lpc.kernel)

    def register_with_csrss(self) -> None:
        register_with_csrss(self.lpc, self.session)

    def csr_client(self) -> CsrClient:
        """A CSR client of this session's csrss (registered first if needed)."""
        from nt import csrclient

        if not self._registered:
            self.register_with_csrss()
            self._registered = True
        return csrclient.connect(self.lpc, self.session)

    def close(self) -> None:
        self.lpc.close()

    def __enter__(self) -> Machine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class QuickMachine:
    """A one-shot attach for the read-only verbs (ps, reg query, obj): KdAttachProcess,
    then one connection to the kernel's system-service port, and nothing else.

    :class:`Machine` builds a whole LPC runtime (a ZAP handler and an exit-event thread,
    each polling at 100 ms, joined at close: ~180 ms). A verb that serves no port and
    outlives no server needs neither; this closes in a millisecond.
    """

    def __init__(self, root: Path = DEFAULT_ROOT, session: int | None = 1) -> None:
        import zmq

        from nt.syscalls import SystemServices
        from ports import kernel
        from ports.client import Connection, PortError, call_api
        from ports.kernel import ATTACH, ATTACH_PORT, SYSTEM_SERVICE_PORT, SYSTEM_SERVICES

        self.root = Path(root)
        self.state = read_state(self.root)
        rt = self.state.runtime
        key = read_key(rt)
        self.ctx = zmq.Context()
        self.kernel: Connection | None = None
        try:
            attach = Connection(
                self.ctx,
                port=ATTACH_PORT,
                endpoint=kernel.endpoint(rt, kernel.ATTACH_ENDPOINT),
                key=key,
                max_message_length=ATTACH.max_message_length,
            )
            attach.connect(timeout=2.0)
            try:
                body = {"image": "ntctl.exe", "session": session}
                r = call_api(attach, ATTACH.by_name()["KdAttachProcess"], body, 5.0)
            finally:
                attach.close()
            if not r.ok:
                raise PortError(r.status, "attach")
            self.kernel = Connection(
                self.ctx,
                port=SYSTEM_SERVICE_PORT,
                endpoint=kernel.endpoint(rt, kernel.SYSTEM_SERVICE_ENDPOINT),
                key=key,
                max_message_length=SYSTEM_SERVICES.max_message_length,
                server_pid=self.state.kernel_pid,
            )
            self.kernel.connect()
        except PortError as exc:
            self.close()
            raise MachineError(
                "cannot attach to the machine", "is it still booting?", exc.status
            ) from exc
        self.nt: SystemServices = SystemServices(self.kernel)
        self.session = session
        self._key = key

    @property
    def lpc(self) -> QuickMachine:
        """Itself: it answers ``connect_port`` as ``LpcRuntime`` does, so the ports' connect
        stubs (``svcctl.ScConnectToScm(m.lpc)``, ``lsm.LsmConnect(m.lpc)``) take either."""
        return self

    def connect_port(self, name: str, info: dict | None = None, timeout: float = 1.0) -> Connection:
        """NtOpenPort + connect, as ``LpcRuntime.connect_port`` (so a port's connect stub,
        e.g. ``svcctl.ScConnectToScm``, takes this too); raises ``PortError``. No exit-event
        thread watches the server: callers pass short timeouts and reconnect on failure."""
        from ports.client import Connection, PortError, call_api
        from ports.kernel import SYSTEM_SERVICES

        assert self.kernel is not None
        r = call_api(self.kernel, SYSTEM_SERVICES.by_name()["NtOpenPort"], {"name": name}, timeout)
        if not r.ok:
            raise PortError(r.status, f"open port {name}")
        conn = Connection(
            self.ctx,
            port=name,
            endpoint=r.body["endpoint"],
            key=self._key,
            max_message_length=r.body["max_message_length"],
            server_pid=r.body["server_pid"],
        )
        try:
            conn.connect(info, timeout)
        except PortError:
            conn.close(notify=False)
            raise
        return conn

    def csr_client(self) -> CsrClient:
        """A CSR client of this session's csrss, registered through smss first."""
        from nt import csrclient

        register_with_csrss(self, self.session)
        return csrclient.connect(self, self.session)  # type: ignore[arg-type]

    def close(self) -> None:
        if self.kernel is not None:
            self.kernel.close()
        self.ctx.destroy(linger=0)

    def __enter__(self) -> QuickMachine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
