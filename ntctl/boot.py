"""The boot launcher: the firmware and loader around the kernel.

It holds the data root's lock (a second ``./run.sh`` is refused), starts the kernel in
its own process group, shows the boot on the console as it happens (the kernel's and
every process's events, Phase 1's progress bar, the STOP screen), and handles what the
kernel's exit code asks for: shut down, halt at a bugcheck, or reboot (AutoReboot), with
a boot-loop guard. ``--detach`` runs the same loop in a background daemon and returns
once session 1's winlogon is waiting for a logon.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from ntctl.machine import REPO
from ntctl.setup import FirstAccount, create_account

EXIT_SHUTDOWN, EXIT_BUGCHECK_HALT, EXIT_REBOOT, EXIT_BAD_OPTIONS = 0, 2, 3, 4
MAX_FAILED_BOOTS = 3  # BootStatusPolicy-like guard: stop rebooting after this many STOPs in a row
READY_EVENT = "logon.ready"
ORDERLY_SHUTDOWN_WAIT = 15.0  # s: then the kernel's own NtShutdownSystem


def new_boot_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + os.urandom(2).hex()


class Launcher:
    def __init__(
        self,
        root: Path,
        boot: str,
        profile: str,
        regs: list[str],
        console: Any = None,
        verbose: bool = False,
        out: TextIO | None = None,
        system_hive: Path | None = None,
    ) -> None:
        """``console`` (a Rich Console) shows the boot as it happens; without one the
        launcher is a daemon writing plain text to ``out`` (console.log)."""
        self.root, self.boot, self.profile, self.regs = root, boot, profile, regs
        self.system_hive = system_hive
        self.console = console
        self.verbose = verbose
        self.out = out or sys.stdout
        self.kernel: subprocess.Popen | None = None
        self.lock_file = None
        self.interrupted = False
        self.first_account: FirstAccount | None = None  # created once, after the first boot

    # -- the lock (one machine per data root) ------------------------------------
    def acquire(self) -> str | None:
        """None when locked; else the pid of the launcher that holds it."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.lock_file = open(self.root / "machine.lock", "a+")  # noqa: SIM115
        try:
            fcntl.flock(self.lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.lock_file.seek(0)
            return self.lock_file.read().strip() or "?"
        self.lock_file.seek(0)
        self.lock_file.truncate()
        self.lock_file.write(str(os.getpid()))
        self.lock_file.flush()
        return None

    # -- one boot -----------------------------------------------------------------
    def start_kernel(self, boot_id: str) -> subprocess.Popen:
        cmd = [
            sys.executable,
            "-m",
            "processes.kernel",
            "--root",
            str(self.root),
            "--boot",
            self.boot,
            "--profile",
            self.profile,
            "--boot-id",
            boot_id,
        ]
        for reg in self.regs:
            cmd += ["--reg", reg]
        if self.system_hive is not None:
            cmd += ["--system-hive", str(self.system_hive)]
        env = dict(os.environ, NTMODEL_LAUNCHER_PID=str(os.getpid()))
        self.kernel = subprocess.Popen(
            cmd, cwd=REPO, env=env, start_new_session=True, stdin=subprocess.DEVNULL
        )
        return self.kernel

    def run_once(self, boot_id: str) -> int:
        self.interrupted = False
        stop = threading.Event()
        log_dir = self.root / "logs" / boot_id
        log_dir.mkdir(parents=True, exist_ok=True)
        # In the background nobody watches: tailing every log line would only take CPU
        # from the machine (the logs are on disk for `ntctl logs`).
        viewer = threading.Thread(target=self._console, args=(log_dir, stop), daemon=True)
        if self.console is not None:
            viewer.start()
        kernel = self.start_kernel(boot_id)
        if self.first_account is not None:
            account, self.first_account = self.first_account, None
            threading.Thread(
                target=self._create_first_account, args=(log_dir, account), daemon=True
            ).start()
        code = kernel.wait()
        time.sleep(0.1)  # let the viewer print the last events
        stop.set()
        if viewer.is_alive():
            viewer.join(timeout=2.0)
        return code

    def _create_first_account(self, log_dir: Path, account: FirstAccount) -> None:
        deadline = time.monotonic() + 60
        while not _ready(log_dir):
            if time.monotonic() > deadline or (self.kernel and self.kernel.poll() is not None):
                return
            time.sleep(0.05)
        ok, text = create_account(self.root, account)
        if self.console is not None:
            self.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.out, flush=True)

    def _console(self, log_dir: Path, stop: threading.Event) -> None:
        from nt.logquery import follow
        from ntctl.console import BootView

        view = BootView(self.console, self.verbose)
        try:
            view.feed(follow(log_dir, stop_event=stop, from_start=True))
        finally:
            view.stop()

    def say(self, text: str, style: str = "") -> None:
        """A launcher message: styled on the console, plain in console.log."""
        if self.console is not None:
            self.console.print(text, style=style or None, highlight=False, markup=False)
        else:
            self.out.write(text + "\n")
            self.out.flush()

    # -- the machine's life ---------------------------------------------------------
    def run(self) -> int:
        failed = 0
        while True:
            boot_id = new_boot_id()
            code = self.run_once(boot_id)
            if code in (EXIT_BUGCHECK_HALT, EXIT_REBOOT):
                self.show_stop(boot_id)
            if code == EXIT_SHUTDOWN:
                self.say("The machine was shut down.", "green")
                return 0
            if code == EXIT_BAD_OPTIONS:
                return 2
            if code == EXIT_REBOOT:
                failed = failed + 1 if self._was_bugcheck(boot_id) else 0
                if failed >= MAX_FAILED_BOOTS:
                    self.say(
                        f"{failed} boots in a row ended in a bugcheck: "
                        "not rebooting again. Read the dump with `ntctl analyze`.",
                        "red",
                    )
                    return 1
                self.say("Rebooting...", "yellow")
                continue
            if code == EXIT_BUGCHECK_HALT:
                self.say(
                    "The machine stopped at a bugcheck. `ntctl analyze` explains the "
                    "dump; ./run.sh boots again."
                )
                return 1
            self.say(
                f"The kernel died ({_how(code)}); every process of the "
                "machine went with it. ./run.sh boots again.",
                "red",
            )
            return 1

    def _was_bugcheck(self, boot_id: str) -> bool:
        from nt import dump

        path = dump.latest_dump(self.root / "C" / "Windows" / "Minidump")
        return path is not None and dump.read_dump(path).get("boot_id") == boot_id

    def show_stop(self, boot_id: str) -> None:
        from nt import dump
        from nt.stopscreen import render_stop_text

        path = dump.latest_dump(self.root / "C" / "Windows" / "Minidump")
        if path is None:
            return
        record = dump.read_dump(path)
        if record.get("boot_id") != boot_id:
            return
        if self.console is None:
            self.say(render_stop_text(record, path))
        else:
            from nt.stopscreen import render_stop

            # soft_wrap=False: the screen's paragraphs wrap inside the panel, never clip
            self.console.print(render_stop(record, path), soft_wrap=False)

    def interrupt(self, *_: object) -> None:
        """Ctrl+C / SIGTERM: the Windows shutdown (InitiateSystemShutdownEx to winlogon of
        the console session), on a thread so the signal handler returns at once. When
        winlogon cannot take it, or it does not finish in time, or a second Ctrl+C comes,
        the kernel's own NtShutdownSystem (SIGTERM)."""
        if self.kernel is None or self.kernel.poll() is not None:
            return
        if self.interrupted:
            self.kernel.send_signal(signal.SIGTERM)
            return
        self.interrupted = True
        threading.Thread(target=self._windows_shutdown, args=(self.kernel,), daemon=True).start()

    def _windows_shutdown(self, kernel: subprocess.Popen) -> None:
        from ntctl import sessions
        from ntctl.machine import Machine, MachineError

        try:
            with Machine(self.root) as m:
                sessions.initiate_shutdown(m, False, 0, "Ctrl+C on run.sh")
        except (MachineError, sessions.VerbError, OSError) as exc:
            self.say(f"Windows shutdown not possible ({exc}); stopping.", "yellow")
        try:
            kernel.wait(timeout=ORDERLY_SHUTDOWN_WAIT)
        except subprocess.TimeoutExpired:
            if kernel.poll() is None:
                kernel.send_signal(signal.SIGTERM)


def _setup(root: Path, account: FirstAccount) -> int:
    ok, text = create_account(root, account)
    print(text, flush=True)
    return 0 if ok else 1


def _how(code: int) -> str:
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def check_system_hive(root: Path, hive: Path) -> str | None:
    """Why ``--system-hive`` cannot be used here, or None.

    The hive is read in full (logs replayed, every cell walked) before the kernel starts,
    so a truncated or corrupt file, or a log with a bad hash, refuses the boot with a
    message naming the problem and leaves the data root untouched.
    """
    from nt.regf import HiveFileError, read_hive

    existing = root / "C" / "Windows" / "System32" / "config" / "SYSTEM"
    if existing.exists():
        return (
            f"{root} already has a SYSTEM hive ({existing}); --system-hive builds a fresh "
            "machine: give a new data root with --root"
        )
    try:
        read_hive(hive)
    except HiveFileError as exc:
        return f"{exc.message} (error {exc.win32}, {exc.status.name})"
    return None


def boot(
    root: Path,
    boot_options: str,
    profile: str,
    regs: list[str],
    detach: bool,
    verbose: bool,
    system_hive: Path | None = None,
    account: FirstAccount | None = None,
) -> int:
    launcher = Launcher(root, boot_options, profile, regs, system_hive=system_hive)
    launcher.first_account = account
    holder = launcher.acquire()
    if holder is not None:
        sys.stderr.write(
            f"ntmodel: the machine in {root} is already running (pid {holder}).\n"
            "  Stop it with `ntctl shutdown`, or give another data root with --root.\n"
        )
        return 1
    if system_hive is not None:
        problem = check_system_hive(root, system_hive)
        if problem is not None:
            sys.stderr.write(f"ntmodel: the boot is refused: {problem}\n")
            return 2
    if detach:
        launcher.lock_file.close()  # the daemon takes the lock over
        code = detach_boot(root, boot_options, profile, regs, system_hive)
        if code == 0 and account is not None:
            code = _setup(root, account)
        return code
    from rich.console import Console

    launcher.console = Console(highlight=False)
    launcher.verbose = verbose
    signal.signal(signal.SIGINT, launcher.interrupt)
    signal.signal(signal.SIGTERM, launcher.interrupt)
    return launcher.run()


def detach_boot(
    root: Path,
    boot_options: str,
    profile: str,
    regs: list[str],
    system_hive: Path | None = None,
) -> int:
    """Fork a daemon launcher; return once session 1's winlogon waits for a logon.

    A fork, not a new interpreter: this process is single-threaded here, and starting
    Python again would cost a few hundred milliseconds of imports before the kernel starts.
    """
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    latest = logs / "latest"
    before = os.readlink(latest) if latest.is_symlink() else None
    daemon = os.fork()
    if daemon == 0:
        os._exit(_daemon(root, boot_options, profile, regs, logs / "console.log", system_hive))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(daemon, os.WNOHANG)
        if done:
            sys.stderr.write(
                f"The machine did not come up (launcher exit "
                f"{os.waitstatus_to_exitcode(status)}); see {logs / 'console.log'} and "
                "`ntctl logs`.\n"
            )
            return 1
        if latest.is_symlink() and os.readlink(latest) != before and _ready(latest):
            print(
                f"Machine up: boot {os.readlink(latest)}, launcher pid {daemon}. "
                "`ntctl ps` shows it; `ntctl shutdown` stops it."
            )
            return 0
        time.sleep(0.01)
    sys.stderr.write("The machine did not come up within 60 s; see `ntctl logs`.\n")
    return 1


def _daemon(
    root: Path,
    boot_options: str,
    profile: str,
    regs: list[str],
    log: Path,
    system_hive: Path | None = None,
) -> int:
    """The background launcher: its own session, output to console.log."""
    os.setsid()
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    launcher = Launcher(
        root,
        boot_options,
        profile,
        regs,
        out=open(1, "w", closefd=False),  # noqa: SIM115
        system_hive=system_hive,
    )
    if launcher.acquire() is not None:
        return 1
    signal.signal(signal.SIGTERM, launcher.interrupt)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return launcher.run()
    except BaseException:
        import traceback

        traceback.print_exc()
        return 1


def _ready(boot_dir: Path) -> bool:
    for path in boot_dir.glob("winlogon.exe.*.jsonl"):
        try:
            if f'"event":"{READY_EVENT}"' in path.read_text().replace(" ", ""):
                return True
        except OSError:
            continue
    return False
