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
from datetime import datetime
from pathlib import Path


def report_previous_boot(root: Path, log) -> None:
    """Events the previous boot left for this one (1001, 41, 6008)."""
    pending = root / "C" / "Windows" / "bugcheck.pending.json"
    stale = root / "machine.json"
    if pending.exists():
        info = json.loads(pending.read_text())
        log.warning(
            "eventlog.system",
            id=1001,
            source="BugCheck",
            text=info["text"],
            previous_boot=info["boot_id"],
        )
        log.warning(
            "eventlog.system",
            id=41,
            source="Kernel-Power",
            BugcheckCode=info["code"],
            BugcheckParameter1=hex(info["parameters"][0]),
        )
        pending.unlink()
    elif stale.exists():
        log.warning(
            "eventlog.system",
            id=6008,
            source="EventLog",
            text="The previous system shutdown was unexpected.",
        )
        log.warning("eventlog.system", id=41, source="Kernel-Power", BugcheckCode=0)
        stale.unlink()


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
