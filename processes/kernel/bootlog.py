"""What a boot leaves on the system drive for people and for the next boot.

The previous boot's bugcheck (System events 1001 and Kernel-Power 41, logged at the next
boot as Windows does after a crash), an unexpected stop (6008), the /BOOTLOG file, and
the boot's private runtime directory.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import tempfile
import time
from datetime import datetime
from pathlib import Path

from nt.evtmsg import report_event

BOOT_STATUS = Path("C") / "Windows" / "bootstat.dat"


def take_boot_status(root: Path, boot_id: str, kernel_pid: int) -> dict | None:
    """The first act of a boot: read what the previous boot left in bootstat.dat (it is
    there only if that boot never stopped cleanly), then mark this boot as running. Any
    stop after this line that is not a shutdown or a bugcheck is reported as 6008."""
    path = root / BOOT_STATUS
    try:
        previous = json.loads(path.read_text())
        previous["last_seen"] = path.stat().st_mtime  # 6008's "at %1 on %2"
    except (OSError, ValueError, TypeError):
        previous = None if not path.exists() else {"boot_id": "?"}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"boot_id": boot_id, "kernel_pid": kernel_pid, "state": "running"}))
    os.replace(tmp, path)
    return previous


def clear_boot_status(root: Path, boot_id: str) -> None:
    """A clean stop (shutdown, bugcheck with its own 1001/41, bad options): no 6008."""
    path = root / BOOT_STATUS
    try:
        if json.loads(path.read_text()).get("boot_id") == boot_id:
            path.unlink()
    except (OSError, ValueError):
        pass


def report_previous_boot(root: Path, log, previous: dict | None) -> None:
    """Events the previous boot left for this one, reported as Windows does at the next
    boot (``report_event``: System 1001 BugCheck and Kernel-Power 41 after a bugcheck,
    6008 and 41 after any other unclean stop); ``previous`` is the running marker it left
    behind (take_boot_status)."""
    pending = root / "C" / "Windows" / "bugcheck.pending.json"
    if pending.exists():
        info = json.loads(pending.read_text())
        code, parameters = info["code"], info["parameters"]
        bugcheck = f"0x{code:08x} (" + ", ".join(f"0x{p:016x}" for p in parameters) + ")"
        report_event(log, 1001, [bugcheck, info.get("dump") or "", info["boot_id"]])
        report_event(log, 41, [], data=json.dumps({"BugcheckCode": code}).encode())
        log.info(
            "bugcheck.previous",
            code=f"0x{code:08X}",
            parameters=[f"0x{p:X}" for p in parameters],
            previous_boot=info["boot_id"],
        )
        pending.unlink()
    elif previous is not None:
        seen = datetime.fromtimestamp(previous.get("last_seen") or time.time())
        report_event(log, 6008, [seen.strftime("%I:%M:%S %p"), seen.strftime("%m/%d/%Y")])
        report_event(log, 41, [], data=json.dumps({"BugcheckCode": 0}).encode())
        log.info("boot.unexpected_stop", previous_boot=previous.get("boot_id"))


def write_bootlog(root: Path) -> None:
    """/BOOTLOG: ntbtlog.txt in the Windows directory (UTF-16, like Windows writes it)."""
    lines = [datetime.now().strftime("%m %d %Y %H:%M:%S.%f")[:-3]]
    for image in ("ntoskrnl.exe", "hal.dll", "kdcom.dll", "ci.dll"):
        lines.append(f"Loaded driver \\SystemRoot\\system32\\{image}")
    append_bootlog(root, lines)


def append_bootlog(root: Path, lines: list[str]) -> None:
    """More ntbtlog.txt lines ("Loaded driver ...", "Did not load driver ..."), in the
    file's UTF-16 without a second byte-order mark."""
    path = root / "C" / "Windows" / "ntbtlog.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = not path.exists() or path.stat().st_size == 0
    with path.open("ab") as f:
        f.write(("\ufeff" if fresh else "").encode("utf-16-le"))
        f.write(("\n".join(lines) + "\n").encode("utf-16-le"))


def make_runtime_dir(boot_id: str) -> Path:
    """A private 0700 directory for this boot's sockets (reliability-security.md §3.6)."""
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
    path = base / f"ntm-{os.geteuid()}-{boot_id[-4:]}{secrets.token_hex(2)}"
    path.mkdir(mode=0o700)
    (path / "p").mkdir(mode=0o700)
    st = os.lstat(path)
    if (
        not stat.S_ISDIR(st.st_mode)
        or st.st_uid != os.geteuid()
        or stat.S_IMODE(st.st_mode) != 0o700
    ):
        raise SystemExit(f"runtime directory {path} is not a private directory of this user")
    return path


def write_machine_state(
    root: Path, boot_id: str, kernel_pid: int, runtime: Path, profile: str
) -> None:
    """var/machine.json: how ntctl finds the running machine (written once it has ports)."""
    state = {
        "boot_id": boot_id,
        "kernel_pid": kernel_pid,
        "runtime": str(runtime),
        "profile": profile,
        "started": time.time(),
    }
    tmp = root / "machine.json.tmp"
    tmp.write_text(json.dumps(state))
    os.replace(tmp, root / "machine.json")


def remove_machine_state(root: Path, boot_id: str) -> None:
    state = root / "machine.json"
    try:
        if json.loads(state.read_text()).get("boot_id") == boot_id:
            state.unlink()
    except (OSError, ValueError):
        pass
