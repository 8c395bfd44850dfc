"""The chaos runner: boot a machine on a scratch data root, kill the drawn victim at the
drawn moment, let the machine do what it does, then check it against the oracle, count
what is left, and boot the same root again.

It never touches a process it did not start. The runner is a child subreaper, so the
launcher daemons (which detach from ``ntctl boot --detach``) and anything orphaned by a
dying kernel are re-parented to it, not to init. A machine is two Unix sessions: the
launcher daemon's (it calls setsid) and its kernel's (started with a new session, which
every NT process inherits). A process is a trial's only if it is a descendant of the
runner *and* in one of the sessions of that trial's root (the launcher's pid from
``machine.lock``, each kernel's from its log file's name); leftovers are killed by pid.
The environment is no marker here: setproctitle overwrites /proc/PID/environ. Trials
run on threads (``--jobs``): each one mostly waits on its machine.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ntctl.chaosoracle import is_victim
from ntctl.chaosplan import BY_NAME, SIGKILL, Draw, Victim
from ntctl.machine import REPO

PR_SET_CHILD_SUBREAPER = 36
BOOT_TIMEOUT = 120.0  # s: a boot on a loaded 2-CPU machine, first boots included
SETTLE = 1.0  # s: after a kill the table says is harmless, how long a bugcheck may take
HANG = 60.0  # s: smss's own longest wait (a session's csrss connecting) before we call it hung
GONE = 5.0  # s: after the kernel's exit, every process of the machine must be gone
IDLE_WHEN = {"wininit.exe", "winlogon.exe"}  # critical: the boot is over in both sessions
NEVER = 30.0  # s: after the machine is up, a victim not created by then never will be
POLL = 0.002  # s: how often the kernel's log is read while a moment is awaited
HIVES = Path("C") / "Windows" / "System32" / "config"
USER = "chaos"  # the trial's account for a logon, made through lsass before the kill window
LOGON_WAIT = 30.0  # s: after the kill, `ntctl logon` has its answer by then (or is stopped)
FOLLOW_WAIT = 10.0  # s: what the table says follows a death is logged by then
FOLLOW_POLL = 0.2  # s: how often the boot's logs are read for it


class Interrupted(Exception):
    """Ctrl+C: the campaign is stopping; the trial stops its machine and leaves."""


class BootFailed(Exception):
    pass


def become_subreaper() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


@dataclass
class Lab:
    """What the trials of one campaign share."""

    scratch: Path
    profile: str = "win10"
    keep: bool = False
    stop: threading.Event = field(default_factory=threading.Event)
    template: Path | None = None
    _popen: set[int] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def env(self, root: Path) -> dict[str, str]:
        env = dict(os.environ, NTMODEL_FAULTS="")
        env.pop("NTMODEL_LAUNCHER_PID", None)
        return env

    def spawn_boot(self, root: Path) -> subprocess.Popen:
        """``ntctl boot --detach`` in its own process group (a Ctrl+C is the runner's)."""
        cmd = [sys.executable, "-m", "ntctl", "boot", "--detach", "--root", str(root)]
        cmd += ["--profile", self.profile]
        p = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=self.env(root),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        with self._lock:
            self._popen.add(p.pid)
        return p

    def spawn_ntctl(self, root: Path, *args: str) -> subprocess.Popen:
        """``ntctl ARGS --root ROOT`` with pipes, in its own session (a Ctrl+C is the
        runner's), and known to reap_orphans: the subreaper must not reap it under
        subprocess (whose exit status would then read 0)."""
        p = subprocess.Popen(
            [sys.executable, "-m", "ntctl", *args, "--root", str(root)],
            cwd=REPO,
            env=self.env(root),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        with self._lock:
            self._popen.add(p.pid)
        return p

    def done_with(self, p: subprocess.Popen) -> None:
        with self._lock:
            self._popen.discard(p.pid)

    def check(self) -> None:
        if self.stop.is_set():
            raise Interrupted

    def reap_orphans(self) -> None:
        """Collect the zombies the subreaper inherited (launchers, orphans of a dead
        kernel), leaving the runner's own ``ntctl boot`` children to subprocess."""
        import psutil

        with self._lock:
            mine = set(self._popen)
        for child in psutil.Process().children():
            if child.pid in mine:
                continue
            with contextlib.suppress(ChildProcessError, psutil.Error):
                if child.status() == psutil.STATUS_ZOMBIE:
                    os.waitpid(child.pid, os.WNOHANG)


def boot_logs(root: Path) -> list[Path]:
    """The kernel's log file of each boot of ``root``, in its boot's own directory (not
    through ``latest``, nor the ``.latest.PID.tmp`` link the kernel is renaming into it:
    a glob would walk that link and fail when it vanishes)."""
    found: list[Path] = []
    try:
        boots = list(os.scandir(root / "logs"))
    except FileNotFoundError:
        return []
    for boot in boots:
        if boot.name.startswith(".") or boot.name == "latest":
            continue
        with contextlib.suppress(NotADirectoryError, FileNotFoundError):
            found += [
                Path(f.path)
                for f in os.scandir(boot.path)
                if f.name.startswith("System.") and f.name.endswith(".jsonl")
            ]
    return found


def sessions_of(root: Path) -> set[int]:
    """The Unix sessions of the machines booted in ``root``: its launcher's (the pid in
    machine.lock) and every kernel's (the pid in logs/BOOT/System.PID.jsonl)."""
    found = {int(p.name.split(".")[1]) for p in boot_logs(root)}
    with contextlib.suppress(OSError, ValueError):
        found.add(int((root / "machine.lock").read_text().strip()))
    return found


def session_of(pid: int) -> int | None:
    """Field 6 of /proc/PID/stat (after the parenthesised name, which may hold spaces)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else int(fields[3])


def machine_processes(root: Path) -> list[int]:
    """Live processes of the machine in ``root``: descendants of the runner in one of
    its sessions. Nothing else is ever signalled."""
    import psutil

    sessions = sessions_of(root)
    found = []
    for p in psutil.Process().children(recursive=True):
        if session_of(p.pid) in sessions:
            found.append(p.pid)
    return found


def kill_machine(root: Path) -> list[int]:
    pids = machine_processes(root)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


def wait_gone(lab: Lab, root: Path, timeout: float) -> list[int]:
    """Pids of the machine still alive after ``timeout`` (killed, then reported)."""
    deadline = time.monotonic() + timeout
    while (left := machine_processes(root)) and time.monotonic() < deadline:
        lab.reap_orphans()
        time.sleep(0.05)
    if left:
        kill_machine(root)
    lab.reap_orphans()
    return left


class KernelLog:
    """The kernel's log of the one boot in a fresh root, read as it is written."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path: Path | None = None
        self._fh: Any = None
        self._buf = b""
        self.events: list[dict] = []

    def poll(self) -> list[dict]:
        import json

        if self._fh is None:
            found = sorted(boot_logs(self.root))
            if not found:
                return []
            self.path = found[0]
            self._fh = open(self.path, "rb")  # noqa: SIM115  (closed by close())
        self._buf += self._fh.read()
        *lines, self._buf = self._buf.split(b"\n")
        new = [json.loads(line) for line in lines if line.strip()]
        self.events += new
        return new

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()

    @property
    def boot_dir(self) -> Path | None:
        return None if self.path is None else self.path.parent


def _own(pid: int, root: Path) -> int | None:
    """A pidfd for ``pid`` if it is still the machine's process (its pid not reused)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    if session_of(pid) not in sessions_of(root):
        os.close(fd)
        return None
    return fd


def shutdown_machine(lab: Lab, root: Path, timeout: float = 30) -> list[str]:
    """An orderly NtShutdownSystem of the machine in ``root``; what went wrong, if anything."""
    from ntctl.machine import QuickMachine

    problems: list[str] = []
    fd = None
    try:
        with QuickMachine(root) as m:
            fd = _own(m.state.kernel_pid, root)
            m.nt.shutdown(0)
    except Exception as exc:  # noqa: BLE001  a machine that cannot be asked is killed
        problems.append(f"the machine could not be shut down: {exc}")
        kill_machine(root)
    if fd is not None:
        if not _exited(fd, timeout):
            problems.append(f"the machine did not shut down within {timeout:.0f} s")
        os.close(fd)
    left = wait_gone(lab, root, GONE)
    if left:
        problems.append(f"{len(left)} processes left after the shutdown: {left}")
    return problems


def disconnect_when_gone(conn: Any) -> Callable[[], None]:
    """A QuickMachine has no exit events: watch the port's server (winlogon, which the
    shutdown it runs ends) and fail the pending call at once when it exits, instead of at
    the call's 30-s deadline (the trial's close must not destroy the context under it).
    Returns the function that stops the watch."""
    done = threading.Event()
    try:
        fd = os.pidfd_open(conn.server_pid or 0)
    except (OSError, ValueError):
        return done.set

    def watch() -> None:
        try:
            while not done.is_set():
                if select.select([fd], [], [], 0.1)[0]:
                    conn.disconnect()
                    return
        finally:
            os.close(fd)

    threading.Thread(target=watch, name="watch-winlogon", daemon=True).start()
    return done.set


def _exited(pidfd: int, timeout: float) -> bool:
    ready, _, _ = select.select([pidfd], [], [], timeout)
    return bool(ready)


@dataclass
class Kill:
    pid: int = 0
    t_kill: float = 0.0  # time.time() just before the kill
    moment_ms: float = 0.0  # realised: from the creation seen to the kill
    done: bool = False
    missed: str = ""


class Trial:
    """One trial: its machine, its kill, its records."""

    def __init__(self, lab: Lab, d: Draw) -> None:
        self.lab, self.d = lab, d
        self.victim: Victim = BY_NAME[d.victim]
        self.root = lab.scratch / f"trial-{d.index:05d}"
        self.log = KernelLog(self.root)
        self.boot: subprocess.Popen | None = None
        self.kernel_fd: int | None = None
        self.kernel_pid = 0
        self.qm: Any = None
        self.shutdown_requested = False  # the runner's own NtShutdownSystem (not the trial's)
        self.asked: threading.Thread | None = None
        self.logon: subprocess.Popen | None = None  # `ntctl logon` of a logon trial
        self.logon_result: tuple[int, str] | None = None  # its exit status and message
        self.logon_started = False
        self._password = ""

    # -- the machine -----------------------------------------------------------
    def prepare(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True)
        if self.lab.template is not None:  # hives of a booted root: no first-boot import
            shutil.copytree(self.lab.template / HIVES, self.root / HIVES)

    def poll_until(self, found: Callable[[], Any], timeout: float = BOOT_TIMEOUT) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.lab.check()
            self.log.poll()
            self._see_kernel()
            value = found()
            if value:
                return value
            if self.boot is not None and self.boot.poll() not in (None, 0):
                raise BootFailed(f"the boot ended (launcher exit {self.boot.returncode})")
            time.sleep(POLL)
        raise BootFailed(f"nothing within {timeout:.0f} s")

    def _see_kernel(self) -> None:
        if self.kernel_fd is None and self.log.events:
            pid = self.log.events[0]["pid"]
            self.kernel_fd = _own(pid, self.root)
            self.kernel_pid = pid

    def attach(self) -> None:
        if self.qm is None and (self.root / "machine.json").exists():
            from ntctl.machine import MachineError, QuickMachine

            with contextlib.suppress(MachineError):
                self.qm = QuickMachine(self.root)

    def up(self) -> bool:
        return self.boot is not None and self.boot.poll() == 0

    def find_victim(self) -> int:
        """The victim's pid, the moment it exists (boot) or once the machine is up (idle)."""
        v = self.victim
        up_since: list[float] = []

        def created() -> int:
            if self.d.method != SIGKILL:
                self.attach()
            if not up_since and self.up():
                up_since.append(time.monotonic())
            if self.d.phase != "boot" and not (up_since and self._idle()):
                return 0
            if self.d.phase == "logon" or v.of_logon:
                self.begin_logon(wait=self.d.phase != "logon")
                # the moment counts from the victim's creation when the logon makes it,
                # else from the kernel's record of `ntctl logon` attaching (the SAS
                # follows within a few ms)
                if v.of_logon:
                    if not any(is_victim(e, v) for e in self.log.events):
                        return 0
                elif not any(self._attached(e) for e in self.log.events):
                    return 0
            if v.image == "System":
                return self.kernel_pid
            for e in self.log.events:
                if is_victim(e, v):
                    return int(e["child_pid"])
            # `ntctl boot --detach` returns once session 1 is ready; session 0 may still
            # be making wininit then, so "up" alone does not mean the victim never comes.
            if up_since and time.monotonic() - up_since[0] > NEVER:
                raise BootFailed(f"{v.image} was not created within {NEVER:.0f} s of the boot")
            return 0

        return self.poll_until(created)

    # -- the logon ----------------------------------------------------------------
    def begin_logon(self, wait: bool) -> None:
        """Once: the trial's account (`ntctl user add`, through lsass), then `ntctl logon`
        as a user types it; ``wait``: until the logon is over (an idle trial of her
        shell). The password is drawn fresh (it is no part of the trial) and goes on
        stdin only, never argv, the environment or a log."""
        if self.logon_started:
            return
        import secrets

        self.logon_started = True
        self._password = "Ch4os-" + secrets.token_urlsafe(12)
        add = self.lab.spawn_ntctl(self.root, "user", "add", USER, "--password-stdin")
        try:
            _, err = add.communicate(self._password + "\n", timeout=60)
        except subprocess.TimeoutExpired:
            add.kill()
            _, err = add.communicate()
        finally:
            self.lab.done_with(add)
        if add.returncode != 0:
            raise BootFailed(f"ntctl user add {USER} failed: {err.strip()}")
        self.logon = self.lab.spawn_ntctl(self.root, "logon", USER, "--password-stdin")
        assert self.logon.stdin is not None
        self.logon.stdin.write(self._password + "\n")
        self.logon.stdin.close()
        self.logon.stdin = None  # written and closed: communicate() must leave it alone
        self._password = ""
        if wait:
            code, text = self.logon_done(60)
            if code != 0:
                raise BootFailed(f"the logon before the kill failed: {text}")

    def logon_done(self, timeout: float) -> tuple[int, str]:
        """`ntctl logon`'s exit status and message (stopped, by its pid, after ``timeout``)."""
        if self.logon_result is None and self.logon is not None:
            try:
                _, err = self.logon.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.logon.kill()
                _, err = self.logon.communicate()
                err = f"ntctl logon did not return within {timeout:.0f} s; {err}"
            self.lab.done_with(self.logon)
            lines = [line for line in err.strip().splitlines() if line.strip()]
            self.logon_result = (self.logon.returncode, lines[-1] if lines else "")
        return self.logon_result or (0, "")

    def followed(self, k: Kill) -> bool | None:
        """Is what the table says follows this death logged yet? None: the table names
        nothing to follow it."""
        from nt.logquery import iter_events
        from ntctl import chaosoracle as oracle

        if self.log.boot_dir is None:
            return None
        records = oracle.Records(list(iter_events(self.log.boot_dir)))
        expected = oracle.expected_follows(
            records, self.victim, k.pid, k.t_kill, self.d.method, self.lab.profile
        )
        if expected is None:
            return False
        if not any(expected):
            return None
        after = oracle.logged_after(records, k.t_kill)
        return any(names <= after for names in expected)

    def _attached(self, event: dict) -> bool:
        return (
            self.logon is not None
            and event.get("event") == "proc.attach"
            and event.get("child_pid") == self.logon.pid
        )

    def _idle(self) -> bool:
        """Both sessions' initial commands are critical (the kernel's proc.critical):
        the machine has finished booting, session 0 included."""
        done = {
            e.get("child_image")
            for e in self.log.events
            if e.get("event") == "proc.critical" and e.get("critical")
        }
        return done >= IDLE_WHEN

    # -- the kill ---------------------------------------------------------------
    def kill(self) -> Kill:
        k = Kill()
        k.pid = self.find_victim()
        seen = time.monotonic()
        fd = _own(k.pid, self.root) if self.d.method == SIGKILL else None
        if self.d.method != SIGKILL:
            self.poll_until(lambda: self.attach() or self.qm)
        if self.d.phase == "shutdown":  # the moment counts from the shutdown request
            seen = self.request_shutdown()
        try:
            left = seen + self.d.moment_ms / 1000 - time.monotonic()
            if left > 0:
                self.lab.stop.wait(left)
            self.lab.check()
            k.t_kill = time.time()
            k.moment_ms = round((time.monotonic() - seen) * 1000, 2)
            if self.d.method == SIGKILL:
                if fd is None:
                    k.missed = "the victim was gone before the moment"
                else:
                    try:
                        signal.pidfd_send_signal(fd, signal.SIGKILL)
                        k.done = True
                    except ProcessLookupError:
                        k.missed = "the victim was gone before the moment"
            else:
                from nt.syscalls import NtError
                from ports.client import PortError

                try:
                    self.qm.nt.terminate(k.pid, self.d.status)
                    k.done = True
                except (NtError, PortError) as exc:
                    k.missed = str(exc)  # "NtTerminateProcess failed: STATUS_..."
        finally:
            if fd is not None:
                os.close(fd)
        return k

    def request_shutdown(self) -> float:
        """InitiateSystemShutdownEx through winlogon's InitShutdown port, as `ntctl
        shutdown` asks, on its own thread (the call returns when the machine is going
        down); the monotonic time of the request."""
        from ports import winlogon as wl

        self.poll_until(lambda: self.attach() or self.qm)
        conn = wl.InitShutdownConnect(self.qm.lpc)  # a QuickMachine connects ports too

        def ask() -> None:
            stop = disconnect_when_gone(conn)  # winlogon may be ended before it answers
            try:
                wl.BaseInitiateShutdownEx(
                    conn, message="", timeout=0, force_apps_closed=False, reboot=False, reason=0
                )
            finally:
                stop()

        self.asked = threading.Thread(target=ask, name="chaos-shutdown", daemon=True)
        t0 = time.monotonic()
        self.asked.start()
        return t0

    def wait_outcome(self, k: Kill) -> bool:
        """Until the kernel exits; True when it stopped by itself (a bugcheck, its own
        death), False when the runner shut a machine down that stayed up."""
        assert self.kernel_fd is not None
        start = time.monotonic()
        follows_checked, follows_done, followed = 0.0, False, False
        while True:
            self.lab.check()
            if _exited(self.kernel_fd, 0.05):
                return not self.shutdown_requested
            self.log.poll()
            now = time.monotonic()
            settled = now - start > SETTLE
            if settled and self.logon is not None and self.logon.poll() is None:
                # `ntctl logon` has its answer first (a port's death fails its call)
                settled = now - start > LOGON_WAIT
            if settled and k.done and not follows_done:
                # what the table says follows a death that leaves the machine up
                if now - follows_checked > FOLLOW_POLL:
                    follows_checked = now
                    seen = self.followed(k)
                    followed = bool(seen)
                    follows_done = seen is not False or now - start > FOLLOW_WAIT
                settled = follows_done
            # a shutdown trial's machine is already stopping: a hang is the HANG below
            asked = self.d.phase == "shutdown"
            # A machine that is not up yet is shut down once what follows has been seen:
            # lsass killed during boot holds winlogon's LSA wait (60 s) and starts the
            # restart countdown, both longer than a trial watches.
            if settled and (self.up() or followed) and not self.shutdown_requested and not asked:
                self.shutdown()
            if time.monotonic() - start > HANG:
                raise BootFailed(f"the machine neither stopped nor came up within {HANG:.0f} s")

    def shutdown(self) -> None:
        """NtShutdownSystem for a machine that stayed up (or one that never got far
        enough to be asked: it is killed)."""
        self.shutdown_requested = True
        try:
            self.attach()
            if self.qm is None:
                kill_machine(self.root)
            else:
                self.qm.nt.shutdown(0)
        except Exception:  # noqa: BLE001  the machine may be going anyway: make sure
            kill_machine(self.root)

    def close(self) -> None:
        if self.logon is not None:
            self.logon_done(5)
            self.logon = None
        if self.asked is not None:
            self.asked.join(5)
            self.asked = None
        if self.qm is not None:
            with contextlib.suppress(Exception):
                self.qm.close()
            self.qm = None
        if self.kernel_fd is not None:
            os.close(self.kernel_fd)
            self.kernel_fd = None
        if self.boot is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.boot.wait(5)
            self.lab.done_with(self.boot)
            self.boot = None
        self.log.close()
