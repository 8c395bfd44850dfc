"""The kernel: Phase 1 initialisation, then the machine's life until shutdown or STOP.

Phase 1 runs the executive steps of ``Phase1InitializationDiscard`` in order (each one
logged, with InbvUpdateProgressBar's percentages), creates smss with exactly ``Path``,
``SystemDrive`` and ``SystemRoot`` in its environment, and watches it for 5 seconds:
an smss gone within that window is SESSION5_INITIALIZATION_FAILED. From then on only the
critical-process rule protects it. The kernel is the Unix parent of every process and
learns of every exit at once (pidfd); a critical process's death raises the profile's
bugcheck before any user-mode watcher can act.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import sqlite3
import threading
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nt import bootstrap, bugcodes
from nt import log as ntlog
from nt.bootstrap import set_pdeathsig
from nt.status import NtStatus, hexstatus
from ports.events import ExitPublisher
from ports.kernel import (
    ATTACH,
    ATTACH_ENDPOINT,
    ATTACH_PORT,
    EVENTS_ENDPOINT,
    SYSTEM_SERVICE_ENDPOINT,
    SYSTEM_SERVICE_PORT,
    SYSTEM_SERVICES,
    endpoint,
)
from ports.runtime import LpcRuntime
from ports.zap import same_uid
from processes.kernel import bootopts, io
from processes.kernel.bootlog import (
    clear_boot_status,
    make_runtime_dir,
    remove_machine_state,
    report_previous_boot,
    take_boot_status,
    write_bootlog,
    write_machine_state,
)
from processes.kernel.cm import CONTROL, ConfigurationManager
from processes.kernel.faults import KernelFaults
from processes.kernel.harderr import HardErrorPorts
from processes.kernel.ke import EXIT_BUGCHECK_HALT, EXIT_REBOOT, EXIT_SHUTDOWN, BugCheck
from processes.kernel.ob import ObjectManager
from processes.kernel.phase1 import progress_steps
from processes.kernel.ps import REPO, ProcessManager, ProcessRecord
from processes.kernel.services import SystemServiceHandlers, critical_params
from processes.kernel.shutdown import nt_shutdown_system

SYSTEM_ROOT = "C:\\Windows"
SMSS_COMMAND_LINE = "\\SystemRoot\\System32\\smss.exe"
# Services that only read the kernel's own tables: answered on the port thread itself.
QUICK_SERVICES = frozenset(
    SYSTEM_SERVICES.by_name()[name].number
    for name in (
        "NtQueryInformationProcess",
        "NtQuerySystemInformation",
        "NtOpenPort",
        "NtQuerySymbolicLinkObject",
        "NtQueryDirectoryObject",
        "NtSetInformationProcess",
        "NtDisplayString",
        "NtCreateEvent",
        "NtSetEvent",
    )
)
SMSS_WINDOW = 5.0  # seconds: ZwWaitForSingleObject(smss, 5 s) in ExpLoadInitialProcess's caller


class LocalNamespace:
    """The LPC runtime's namespace, served by the kernel's own object manager."""

    def __init__(self, kernel: Kernel) -> None:
        self.k = kernel

    def create_port(self, name: str, max_message_length: int, endpoint: str | None = None) -> str:
        return self.k.ob.create_port(
            name, os.getpid(), max_message_length, endpoint=endpoint
        ).endpoint

    def open_port(self, name: str) -> tuple[str, int, int]:
        port = self.k.ob.lookup_port(name)
        return port.endpoint, port.max_message_length, port.owner_pid

    def query_process(self, pid: int) -> dict | None:
        record = self.k.ps.get(pid)
        return record.public() if record is not None else None


class Kernel:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.pid = os.getpid()
        self.root = Path(args.root).resolve()
        self.profile = args.profile
        self.boot_id = args.boot_id or datetime.now(UTC).strftime(
            "%Y%m%d-%H%M%S-"
        ) + secrets.token_hex(2)
        self.started = time.monotonic()
        # First act of the boot: from here on, a stop that is neither a shutdown nor a
        # bugcheck (a kill -9 of the kernel at any moment) is reported by the next boot.
        self.previous_boot = take_boot_status(self.root, self.boot_id, self.pid)
        (self.root / "machine.json").unlink(missing_ok=True)  # a dead boot's, if any
        self.teardown = contextlib.ExitStack()  # each boot step registers its own undo
        self.teardown.callback(clear_boot_status, self.root, self.boot_id)
        self.faults = KernelFaults(self)
        self.key = secrets.token_bytes(32)
        self.stopping = False
        self.ready_for_errors = False  # ExReadyForErrors: set when csrss names its hard-error port
        self.halt = threading.Event()
        self.exit_code = EXIT_SHUTDOWN
        self.bugcheck = BugCheck(self)
        self.smss: ProcessRecord | None = None
        self.log_dir = self.root / "logs" / self.boot_id
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.log = ntlog.configure(
            "System",
            self.pid,
            None,
            self.boot_id,
            self.log_dir,
            level=os.environ.get("NTMODEL_LOG_LEVEL", "info"),
        )
        ntlog.update_latest(self.root / "logs", self.boot_id)

    # -- Phase 1 ----------------------------------------------------------------
    def phase1(self) -> None:
        self.options = bootopts.load_boot_options(
            Path(self.args.configs) / "boot.ini", self.args.boot or ""
        )
        # After a Severe/Critical driver failure the loader picks LastKnownGood (io.py).
        self.options = io.pending_last_known_good(self.root, self.options)
        self.log.info(
            "boot.start",
            profile=self.profile,
            options=list(self.options.options),
            unknown_options=list(self.options.unknown),
            sos=self.options.sos,
            noguiboot=self.options.noguiboot,
            root=str(self.root),
            sqlite_version=sqlite3.sqlite_version,
        )
        report_previous_boot(self.root, self.log, self.previous_boot)
        self.runtime = make_runtime_dir(self.boot_id)
        self.teardown.callback(shutil.rmtree, self.runtime, ignore_errors=True)
        (self.runtime / "key").write_bytes(self.key)
        base = {
            "key": self.key,
            "boot_id": self.boot_id,
            "runtime": str(self.runtime),
            "root": str(self.root),
            "kernel_pid": self.pid,
            "profile": self.profile,
            "options": self.options.as_dict(),
            "faults": os.environ.get(bootstrap.FAULTS_ENV, ""),
        }
        self.ps = ProcessManager(base, self.log_dir, self.log, self.on_exit)
        self.ps.fault = self.faults.creation_hook()
        self.ps.start_zygote()  # pre-imported interpreter that forks new processes
        for step, percent in progress_steps():
            self.log.info(
                "boot.phase1", step=step.name, percent=percent, description=step.description
            )
            if self.faults.stall(step.name):  # a test killed the kernel here, or shut it down
                return
            action = self.STEPS.get(step.name)
            if action is not None:
                try:
                    action(self)
                except (bootopts.BootOptionError, SystemExit):
                    raise
                except Exception as exc:  # the step's own bugcheck (phase1.py), as ex/init.c does
                    self.log.critical(
                        "boot.step_failed",
                        step=step.name,
                        error=repr(exc),
                        traceback=traceback.format_exc(),
                    )
                    self.raise_bugcheck(
                        bugcodes.status_bugcheck(
                            step.bugcheck or 0x32,
                            getattr(exc, "status", NtStatus.STATUS_UNSUCCESSFUL),
                        ),
                        None,
                    )
                    return
            if self.stopping:  # IoInitSystem stopped the boot (0x5A, LastKnownGood reboot)
                return
            if self.options.sos:
                self.log.info("boot.display", text=f"{step.name}")

    def _ob_init(self) -> None:
        self.ob = ObjectManager(self.runtime)

    def _cm_init(self) -> None:
        self.cm = ConfigurationManager(
            self.root / "C" / "Windows" / "System32" / "config", self.log
        )
        self.teardown.callback(self._closing, "cm", self.cm.close)
        events = self.cm.init_system(
            Path(self.args.configs),
            [Path(p) for p in self.args.reg or []],
            self.options.lastknowngood,
            system_hive=Path(self.args.system_hive) if self.args.system_hive else None,
        )
        for ev in events:
            if ev.event == "hive.created":
                self.log.info("cm.hive_created", hive=ev.hive, path=ev.detail)
            else:
                self.log.warning(
                    "cm.hive_recovered",
                    hive=ev.hive,
                    event=ev.event,
                    status=ev.status,
                    detail=ev.detail,
                    moved_to=ev.moved_to,
                )
        for w in self.options.registry_writes(
            alternate_shell_configured=self.cm.value_or(
                CONTROL + r"\SafeBoot", "AlternateShell", None
            )
            is not None
        ):
            self.cm.create_key(w.key, volatile=w.volatile)
            self.cm.set_value(w.key, w.name, w.type, w.data)
        if self.options.bootlog:
            write_bootlog(self.root)

    def _lpc_init(self) -> None:
        self.lpc = LpcRuntime(
            key=self.key,
            kernel_endpoint="",
            events_endpoint=None,
            log=self.log,
            namespace=LocalNamespace(self),
        )
        self.teardown.callback(self._closing, "lpc", self.lpc.close)
        self.publisher = ExitPublisher(
            self.lpc.ctx, endpoint(self.runtime, EVENTS_ENDPOINT), self.key
        )
        self.teardown.callback(self._closing, "publisher", self.publisher.close)
        self.hard_errors = HardErrorPorts(self.lpc, self.log)
        handlers = SystemServiceHandlers(self)
        self.services = self.lpc.create_port(
            SYSTEM_SERVICE_PORT,
            SYSTEM_SERVICES,
            handlers.table(),
            inline=QUICK_SERVICES,
            threads=2,
            max_threads=8,
            max_inflight=64,
            endpoint=endpoint(self.runtime, SYSTEM_SERVICE_ENDPOINT),
        )
        self.lpc.create_port(
            ATTACH_PORT,
            ATTACH,
            handlers.attach_table(),
            endpoint=endpoint(self.runtime, ATTACH_ENDPOINT),
            identify=self._attach_identity,
            policy=lambda pid, uid: (same_uid(uid), "another user"),
        )
        write_machine_state(self.root, self.boot_id, self.pid, self.runtime, self.profile)
        self.teardown.callback(remove_machine_state, self.root, self.boot_id)

    def _io_init(self) -> None:
        self.io = io.IoManager(self)
        self.io.init_system()

    def _ps_init(self) -> None:
        self.ps.start()

    def _load_initial_process(self) -> None:
        environment = {
            "Path": SYSTEM_ROOT + "\\System32",
            "SystemDrive": SYSTEM_ROOT[:2],
            "SystemRoot": SYSTEM_ROOT,
        }
        try:
            self.smss = self.ps.create(
                SMSS_COMMAND_LINE, SMSS_COMMAND_LINE, environment, None, self.pid
            )
        except (LookupError, OSError) as exc:
            status = (
                NtStatus.STATUS_OBJECT_NAME_NOT_FOUND
                if isinstance(exc, LookupError)
                else NtStatus.STATUS_UNSUCCESSFUL
            )
            self.raise_bugcheck(bugcodes.status_bugcheck(0x6F, status), None)
            return
        if self.ps.resume(self.smss.pid) != NtStatus.STATUS_SUCCESS:
            self.raise_bugcheck(bugcodes.status_bugcheck(0x70, NtStatus.STATUS_UNSUCCESSFUL), None)

    def _watch_smss(self) -> None:
        def window_closed() -> None:
            if self.smss is not None and self.smss.state != "exited":
                self.log.info("boot.smss_released", smss_pid=self.smss.pid, window_s=SMSS_WINDOW)

        timer = threading.Timer(SMSS_WINDOW, window_closed)
        timer.daemon = True
        timer.start()

    STEPS = {
        "ObInitSystem": _ob_init,
        "CmInitSystem1": _cm_init,
        "LpcInitSystem": _lpc_init,
        "IoInitSystem": _io_init,
        "PsInitSystem": _ps_init,
        "ExpLoadInitialProcess": _load_initial_process,
        "ZwWaitForSingleObject(smss, 5 s)": _watch_smss,
    }

    # -- exits and bugchecks ----------------------------------------------------
    def on_exit(self, record: ProcessRecord) -> None:
        """Every exit, seen first by the kernel (pidfd)."""
        self.log.info(
            "proc.exit",
            child_pid=record.pid,
            child_image=record.image,
            status=record.exit_status,
            signal=record.signal,
            critical=record.critical,
            child_session=record.session,
        )
        if record.image == "csrss.exe":
            self.hard_errors.forget(record.pid)
        for removed in self.ob.on_process_exit(record.pid):
            self.complete_waiters(removed.waiters, NtStatus.STATUS_INVALID_HANDLE)
        try:
            self.publisher.publish(record.pid, record.exit_status or 0, record.image)
        except Exception:  # the publisher may already be closed during shutdown
            pass
        self._check_exit(record)

    def _check_exit(self, record: ProcessRecord) -> None:
        """Which bugcheck, if any, this exit raises."""
        if self.stopping:
            culprit = self.bugcheck.culprit_pid
            if self.bugcheck.raised and not self.bugcheck.stopping_all and record.pid != culprit:
                self.bugcheck.consequence(_culprit(record))
            return
        if record is self.smss and time.monotonic() - record.created < SMSS_WINDOW:
            # Windows passes the status in P1; ReactOS passes nothing (nt-spec §7 #18).
            self.log.info(
                "divergence", what="0x71 P1 = smss exit status (Windows), ReactOS passes 0"
            )
            self.raise_bugcheck(bugcodes.status_bugcheck(0x71, record.exit_status or 0), record)
        elif record.critical:
            external = record.signal is not None or record.terminated_by not in (None, record.pid)
            self.raise_bugcheck(
                critical_params(self.profile, record.pid, record.image, external), record
            )

    def raise_bugcheck(
        self,
        params: bugcodes.BugcheckParams,
        culprit: ProcessRecord | None,
        detected_by: dict | None = None,
    ) -> None:
        """KeBugCheckEx on its own thread: the caller (a monitor or port thread) returns."""
        self.stopping = True
        by = detected_by or {"pid": self.pid, "image": "System"}
        record = _culprit(culprit) if culprit else None
        if not self.bugcheck.latch(record):
            return

        def run() -> None:
            self.bugcheck.raise_(params, record, by)
            reboot = self.cm.value_or(CONTROL + r"\CrashControl", "AutoReboot", 0)
            self.exit_code = EXIT_REBOOT if reboot else EXIT_BUGCHECK_HALT
            self.halt.set()

        threading.Thread(target=run, name="KeBugCheckEx", daemon=False).start()

    def hard_error_bugcheck(self, status: int, params: list, client: Any) -> None:
        if status == NtStatus.STATUS_SYSTEM_PROCESS_TERMINATED:
            what = str(params[0]) if params else ""
            code = int(params[1]) if len(params) > 1 and isinstance(params[1], int) else 0
            bc = bugcodes.system_process_terminated(what, code)
            culprit_pid = params[2] if len(params) > 2 and isinstance(params[2], int) else 0
        else:
            bc = bugcodes.hard_error(status, *[str(p) for p in params[:4]])
            culprit_pid = client.pid
        culprit = self.ps.get(culprit_pid) if culprit_pid else None
        self.raise_bugcheck(bc, culprit, {"pid": client.pid, "image": client.image})

    def terminate(self, pid: int, exit_status: int, by: int) -> int:
        record = self.ps.get(pid)
        if record is None or record.state == "exited" or record.pid == self.pid:
            return NtStatus.STATUS_INVALID_CID
        record.reported_status = exit_status
        record.terminated_by = by
        if pid == by:  # NtTerminateProcess(NtCurrentProcess()): the process exits itself
            return NtStatus.STATUS_SUCCESS
        self.log.info(
            "proc.terminate", child_pid=pid, child_image=record.image, by_pid=by, status=exit_status
        )
        if record.critical and not self.stopping:  # PspCatchCriticalBreak, before the kill
            record.exit_status = exit_status  # what NtTerminateProcess was asked to set
            self.raise_bugcheck(
                critical_params(self.profile, pid, record.image, True),
                record,
                _identity(self.ps.get(by)),
            )
            return NtStatus.STATUS_SUCCESS
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return NtStatus.STATUS_INVALID_CID
        return NtStatus.STATUS_SUCCESS

    def complete_waiters(self, waiters: Any, status: int) -> None:
        for waiter in waiters:
            if waiter.context is not None:
                waiter.context.complete(status)

    # -- shutdown ---------------------------------------------------------------
    def request_shutdown(self, action: int, by: int) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.log.info("shutdown.begin", action=action, by_pid=by)

        threading.Thread(
            target=nt_shutdown_system, args=(self, action), name="NtShutdownSystem", daemon=False
        ).start()

    def close(self) -> None:
        """Undo what the boot built, in reverse order: only the steps that ran."""
        self.teardown.close()

    def _closing(self, what: str, close: Any) -> None:
        try:
            close()
        except Exception:
            self.log.exception("shutdown.close_failed", what=what)

    def _attach_identity(self, pid: int) -> dict:
        return {
            "pid": pid,
            "image": "ntctl.exe",
            "session": None,
            "token": {},
            "state": "attaching",
        }


def _identity(record: ProcessRecord | None) -> dict | None:
    return None if record is None else {"pid": record.pid, "image": record.image}


def _culprit(record: ProcessRecord) -> dict:
    out = record.public()
    out.pop("token", None)
    if record.terminated_by not in (None, record.pid):
        out["terminated_by"] = record.terminated_by
    if record.exit_status is not None:
        out["exit_status_hex"] = hexstatus(record.exit_status)
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ntoskrnl", description="The ntmodel kernel (System).")
    p.add_argument("--root", default=str(REPO / "var"))
    p.add_argument("--configs", default=str(REPO / "configs"))
    p.add_argument("--boot", default="", help='boot options, e.g. "/SOS /SAFEBOOT:MINIMAL"')
    p.add_argument("--profile", default="win10", choices=["win10", "win7"])
    p.add_argument("--reg", action="append", help="extra .reg file imported at every boot")
    p.add_argument("--system-hive", default=None, help="binary SYSTEM hive for the first boot")
    p.add_argument("--boot-id", default=None)
    return p.parse_args(argv)


PR_SET_CHILD_SUBREAPER = 36


def main(argv: list[str] | None = None) -> int:
    os.umask(0o077)
    # Processes forked by the zygote are reparented to the kernel (nt/zygote.py).
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    launcher = os.environ.get("NTMODEL_LAUNCHER_PID")
    if launcher:  # a foreground boot: the machine must not outlive run.sh
        set_pdeathsig()
        if os.getppid() != int(launcher):
            return 1
    kernel = Kernel(parse_args(argv))
    signal.signal(signal.SIGTERM, lambda *_: kernel.request_shutdown(0, os.getpid()))
    signal.signal(signal.SIGINT, lambda *_: kernel.request_shutdown(0, os.getpid()))
    try:
        kernel.phase1()
        while not kernel.halt.wait(0.5):
            pass
    except bootopts.BootOptionError as exc:
        kernel.log.error("boot.options_invalid", error=str(exc))
        print(f"ntmodel: {exc}", flush=True)
        kernel.exit_code = 4
    finally:
        t0 = time.monotonic()
        kernel.close()  # hives flushed and closed, runtime directory removed
        if not kernel.bugcheck.raised:
            kernel.log.info(
                "shutdown.phase", phase="kernel", ms=round((time.monotonic() - t0) * 1000, 3)
            )
    kernel.log.info("kernel.exit", code=kernel.exit_code)
    return kernel.exit_code
