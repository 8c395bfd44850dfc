"""What every ntctl verb module shares: the app and its groups, the common options, and
the output and failure helpers. Cheap to import (the standard library and ntctl.cli):
heavy imports stay inside the verbs and helpers that use them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ntctl.cli import Group, Opt, fail
from ntctl.machine import DEFAULT_ROOT

app = Group("ntctl", "ntctl: the user's tool for the running machine.")
reg_app = app.group("reg", "Read and write the registry through the kernel.")
csr_app = app.group("csr", "Call csrss's ApiPort as a client process would.")

ROOT = Opt(
    "--root", type=Path, default=DEFAULT_ROOT, metavar="DIR", help="data root of the machine"
)
JSON = Opt("--json", dest="as_json", flag=True, help="machine-readable output")
BOOT = Opt("--boot", dest="boot_", default="latest", help="latest, -1 (previous) or a boot id")


def emit(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def display(lines: Any) -> None:
    from ntctl.term import write_lines

    write_lines(lines)


def nt_failure(exc: Exception) -> None:
    from nt.status import hexstatus, status_name

    status = getattr(exc, "status", None)
    fail(f"{exc}" if status is None else f"{exc} ({hexstatus(status)} {status_name(status)})")


def quick(root: Path) -> Any:
    """A one-shot attach to the machine in ``root`` (see machine.QuickMachine)."""
    from ntctl.machine import QuickMachine

    return QuickMachine(root)


def nt_errors() -> tuple[type[Exception], ...]:
    from nt.syscalls import NtError
    from ports.client import PortError

    return NtError, PortError


def boot_dir(root: Path, boot_: str) -> Path:
    """The log directory of ``--boot`` (latest, -1, an id), or a clear usage error."""
    from nt.logquery import resolve_boot

    try:
        return resolve_boot(root / "logs", boot_)
    except (FileNotFoundError, ValueError) as exc:
        fail(
            f"no logs for boot {boot_!r}: {exc}",
            2,
            "list the boots with `ls " + str(root / "logs") + "`",
        )
        raise
