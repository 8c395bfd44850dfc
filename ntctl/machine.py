"""Finding and joining the running machine from outside it.

``var/machine.json`` names the boot's private runtime directory; the per-boot key lies
there in a 0600 file. ntctl attaches through the kernel's ``\\KdAttachPort`` (same user,
holding the key), which records it in the process table as ``ntctl.exe``; from then on
its connections pass every port's check like any process of the machine.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from nt import csrclient
from nt.csrclient import CsrClient
from nt.log import get_logger
from nt.status import NtStatus, status_name
from nt.syscalls import SystemServices
from ports import kernel, sm
from ports.client import PortError
from ports.runtime import LpcRuntime

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO / "var"


class MachineError(Exception):
    """A failure to report to the user: message, plus how to fix it."""

    def __init__(self, message: str, hint: str = "", status: int | None = None) -> None:
        self.status = status
        text = message + (f" ({status_name(status)})" if status is not None else "")
        super().__init__(text + (f"\n  {hint}" if hint else ""))


@dataclass
class MachineState:
    boot_id: str
    kernel_pid: int
    runtime: Path
    profile: str


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


class Machine:
    """An attached session with the running machine."""

    def __init__(self, root: Path = DEFAULT_ROOT, session: int | None = 1) -> None:
        self.root = Path(root)
        self.session = session
        self._registered = False
        self.state = read_state(self.root)
        rt = self.state.runtime
        try:
            key = (rt / kernel.KEY_FILE).read_bytes()
        except OSError as exc:
            raise MachineError(
                f"cannot read the boot key in {rt}", "is the machine yours?"
            ) from exc
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
        """Have smss tell this session's csrss about us (SmExecPgm → SbCreateSession), the way
        an initial command is registered; csrss only accepts processes it knows."""
        smc = sm.SmConnectToSm(self.lpc)
        try:
            r = sm.SmExecPgm(
                smc,
                os.getpid(),
                session=self.session or 0,
                subsystem_type=sm.IMAGE_SUBSYSTEM_WINDOWS_CUI,
            )
        finally:
            smc.close()
        if not r.ok:
            raise PortError(r.status, "SmExecPgm")

    def csr_client(self) -> CsrClient:
        """A CSR client of this session's csrss (registered first if needed)."""
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
