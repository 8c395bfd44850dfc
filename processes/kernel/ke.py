"""KeBugCheckEx: stop the machine, write the dump, never return.

Only one bugcheck per boot: the first caller takes the latch; deaths and hard errors
that follow (ports disconnecting after csrss dies, smss's own 0xC000021A arriving after
the kernel's 0xEF) are recorded as consequences of the same crash, never as a second
bugcheck (reliability-security.md §1.1). Every process is killed first (the STOP must be
quick), then the dump is written with tmp + fsync + rename.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from nt import bugcodes, dump
from nt.bugcodes import BugcheckParams
from nt.logquery import tail
from nt.status import hexstatus
from processes.kernel.cm import CONTROL
from processes.kernel.ob import ObError

# Exit codes of the kernel process, read by the boot launcher.
EXIT_SHUTDOWN = 0
EXIT_BUGCHECK_HALT = 2
EXIT_REBOOT = 3

CONSEQUENCE_WINDOW = 0.2  # seconds after the bugcheck during which deaths are collected


class BugCheck:
    def __init__(self, kernel: Any) -> None:
        self.k = kernel
        self._latch = threading.Lock()
        self.record: dict | None = None
        self.consequences: list[dict] = []
        self.done = threading.Event()
        self.latched = threading.Event()  # set in the thread that took the latch
        self.stopping_all = False
        self.culprit_pid: int | None = None

    @property
    def raised(self) -> bool:
        return self._latch.locked()

    def consequence(self, what: dict) -> None:
        self.consequences.append(what)
        self.k.log.info(
            "bugcheck.consequence",
            culprit_pid=what.get("pid"),
            culprit_image=what.get("image"),
            status=what.get("exit_status"),
            signal=what.get("signal"),
        )

    def latch(self, culprit: dict | None) -> bool:
        """Take the one bugcheck of this boot, in the caller's thread, so that the first
        caller wins however the threads doing the work are scheduled afterwards."""
        if self._latch.acquire(blocking=False):
            self.culprit_pid = (culprit or {}).get("pid")
            self.latched.set()
            return True
        if culprit is not None:
            self.consequence(culprit)
        return False

    def raise_(self, params: BugcheckParams, culprit: dict | None, detected_by: dict) -> None:
        """KeBugCheckEx, for the caller that took the latch."""
        k = self.k
        t0 = time.monotonic()
        info = bugcodes.describe(params.code)
        k.log.critical(
            "bugcheck",
            code=bugcodes.format_code(params.code),
            name=info.name,
            parameters=[bugcodes.format_param(p) for p in params.parameters],
            culprit_pid=(culprit or {}).get("pid"),
            culprit_image=(culprit or {}).get("image"),
            detected_by=detected_by.get("image"),
            **{k2: v for k2, v in params.decoded.items() if isinstance(v, str | int)},
        )
        k.stopping = True
        self.stopping_all = True  # deaths from here on are the STOP's own, not consequences
        victims = k.ps.kill_all()
        gone = k.ps.wait_all(2.0)
        k.log.info(
            "bugcheck.stopped",
            processes=len(victims),
            victims=victims,
            all_gone=gone,
            stop_ms=round((time.monotonic() - t0) * 1000, 3),
        )
        time.sleep(max(0.0, CONSEQUENCE_WINDOW - (time.monotonic() - t0)))
        self.record = self._record(params, culprit, detected_by)
        path = None
        if self.record["config"].get("CrashDumpEnabled", 7):
            path = dump.write_dump(k.root / "C" / "Windows" / "Minidump", self.record)
            k.log.info("bugcheck.dump", path=str(path))
        self._pending_event(params, path)
        self.done.set()

    def _record(self, params: BugcheckParams, culprit: dict | None, detected_by: dict) -> dict:
        k = self.k
        log_dir = k.log_dir
        last = {}
        for p in k.ps.snapshot():
            if p["pid"] != os.getpid():
                last[p["pid"]] = tail(log_dir, p["pid"], 20)
        last[os.getpid()] = tail(log_dir, os.getpid(), 20)
        return dump.build_record(
            params.code,
            params.parameters,
            profile=k.profile,
            boot_id=k.boot_id,
            uptime_ms=int((time.monotonic() - k.started) * 1000),
            decoded=params.decoded,
            faulting_process=culprit,
            detected_by=detected_by,
            process_table=[_strip(p) for p in k.ps.snapshot()],
            port_table=self._ports(),
            consequences=[_strip(c) for c in self.consequences],
            last_events=last,
            config=self.crash_control(),
        )

    def crash_control(self) -> dict:
        key = CONTROL + r"\CrashControl"
        return {
            name: self.k.cm.value_or(key, name, default)
            for name, default in (
                ("AutoReboot", 0),
                ("CrashDumpEnabled", 7),
                ("LogEvent", 1),
                ("Overwrite", 1),
            )
        }

    def _ports(self) -> list[dict]:
        """The port table of the dump: every Port object and its owner."""
        ports = []
        for path, entry in self.k.ob.walk("\\"):
            if entry.type_name == "Port":
                try:
                    port = self.k.ob.lookup_port(path)
                except ObError:
                    continue
                ports.append({"name": path, "owner_pid": port.owner_pid, "endpoint": port.endpoint})
        return ports

    def _pending_event(self, params: BugcheckParams, path: Path | None) -> None:
        """What the next boot reports as System event 1001 (BugCheck) and Kernel-Power 41."""
        pending = {
            "code": params.code,
            "parameters": list(params.parameters),
            "dump": str(path) if path else None,
            "boot_id": self.k.boot_id,
            "text": f"The computer has rebooted from a bugcheck. The bugcheck was: "
            f"{bugcodes.format_code(params.code).lower()} "
            f"({', '.join(bugcodes.format_param(p).lower() for p in params.parameters)})."
            + (f" A dump was saved in: {path}." if path else ""),
        }
        target = self.k.root / "C" / "Windows" / "bugcheck.pending.json"
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(pending))
        os.replace(tmp, target)


def _strip(p: dict) -> dict:
    out = {k: v for k, v in p.items() if k != "token"}
    if out.get("exit_status") is not None:
        out["exit_status_hex"] = hexstatus(out["exit_status"])
    return out
