"""Process manager: creates every process, records its NT identity, sees every exit.

The kernel is the Unix parent of every image (so its pidfd learns of each death at
once) while the NT parent (InheritedFromUniqueProcessId) is recorded separately, as
Windows does. A process is started through the interpreter with a pipe carrying its
process parameters block; it stays "suspended" until NtResumeThread writes the resume
byte.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import msgpack

from nt.images import package_for
from nt.status import NtStatus, exit_status_from_returncode

REPO = Path(__file__).resolve().parents[2]

SYSTEM_TOKEN = {
    "user": "NT AUTHORITY\\SYSTEM",
    "sid": "S-1-5-18",
    "groups": ["S-1-5-32-544", "S-1-1-0", "S-1-5-11"],
    "privileges": [
        "SeTcbPrivilege",
        "SeShutdownPrivilege",
        "SeCreateTokenPrivilege",
        "SeAssignPrimaryTokenPrivilege",
        "SeDebugPrivilege",
    ],
}
ADMIN_TOKEN = {
    "user": "NTMODEL\\Administrator",
    "sid": "S-1-5-21-1004336348-1177238915-682003330-500",
    "groups": ["S-1-5-32-544", "S-1-1-0", "S-1-5-11"],
    "privileges": ["SeShutdownPrivilege", "SeDebugPrivilege"],
}


# The service accounts' well-known SIDs (ObjectName → token user); real tokens come from
# lsass (next issue): until then the account is recorded, so `ntctl ps` shows it.
SERVICE_ACCOUNTS = {
    "localsystem": ("NT AUTHORITY\\SYSTEM", "S-1-5-18"),
    "nt authority\\system": ("NT AUTHORITY\\SYSTEM", "S-1-5-18"),
    "nt authority\\localservice": ("NT AUTHORITY\\LOCAL SERVICE", "S-1-5-19"),
    "nt authority\\local service": ("NT AUTHORITY\\LOCAL SERVICE", "S-1-5-19"),
    "nt authority\\networkservice": ("NT AUTHORITY\\NETWORK SERVICE", "S-1-5-20"),
    "nt authority\\network service": ("NT AUTHORITY\\NETWORK SERVICE", "S-1-5-20"),
}
STANDIN_PACKAGE = "svchost"  # the generic service host runs stand-ins (processes/svchost)


# What `whoami /all` shows in a LocalService / NetworkService svchost on Windows 10:
# Everyone, Users, SERVICE, CONSOLE LOGON, Authenticated Users, This Organization, LOCAL;
# System integrity; the well-known logon sessions 0x3e5 and 0x3e4.
SERVICE_GROUPS = [
    "S-1-1-0",
    "S-1-5-32-545",
    "S-1-5-6",
    "S-1-2-1",
    "S-1-5-11",
    "S-1-5-15",
    "S-1-2-0",
]
SERVICE_ACCOUNT_PRIVILEGES = {
    "S-1-5-19": [
        "SeAssignPrimaryTokenPrivilege", "SeIncreaseQuotaPrivilege", "SeSystemtimePrivilege",
        "SeShutdownPrivilege", "SeAuditPrivilege", "SeChangeNotifyPrivilege",
        "SeUndockPrivilege", "SeImpersonatePrivilege", "SeCreateGlobalPrivilege",
        "SeIncreaseWorkingSetPrivilege", "SeTimeZonePrivilege",
    ],
    "S-1-5-20": [
        "SeAssignPrimaryTokenPrivilege", "SeIncreaseQuotaPrivilege", "SeShutdownPrivilege",
        "SeAuditPrivilege", "SeChangeNotifyPrivilege", "SeUndockPrivilege",
        "SeImpersonatePrivilege", "SeCreateGlobalPrivilege", "SeIncreaseWorkingSetPrivilege",
        "SeTimeZonePrivilege",
    ],
}  # fmt: skip
SERVICE_LOGON_IDS = {"S-1-5-19": 0x3E5, "S-1-5-20": 0x3E4}


def account_token(account: str) -> dict:
    """A service account's token: SYSTEM's for LocalSystem; LocalService's and
    NetworkService's as Windows builds them (not administrators). Any other name (a user
    account, ``.\\alice``) is a placeholder until lsass assigns the logged-on token to the
    suspended process (NtCreateToken)."""
    user, sid = SERVICE_ACCOUNTS.get(account.lower(), (account, ""))
    if sid == SYSTEM_TOKEN["sid"]:
        return SYSTEM_TOKEN
    return {
        "user": user,
        "sid": sid,
        "groups": list(SERVICE_GROUPS) if sid else ["S-1-1-0"],
        "privileges": list(SERVICE_ACCOUNT_PRIVILEGES.get(sid, ["SeChangeNotifyPrivilege"])),
        "logon_id": SERVICE_LOGON_IDS.get(sid, 0),
        "logon_type": 5,
        "integrity": "S-1-16-16384" if sid else "S-1-16-4096",
    }


class PsError(Exception):
    """A process creation that failed, with its NTSTATUS (the port replies with it)."""

    def __init__(self, status: int, what: str = "") -> None:
        self.status = int(status)
        super().__init__(f"{what}: {status:#010x}")


def _pidfd_kill(pidfd: int) -> None:
    """SIGKILL through a pidfd: never reaches a recycled pid."""
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _wait_child(pid: int) -> tuple[int, int | None]:
    """(exit status, signal) of a dead child of ours. A zygote fork that died before its
    middle parent exited is reparented to us a moment later: wait for that, briefly."""
    for _ in range(200):
        try:
            _, wait_status = os.waitpid(pid, 0)
            return exit_status_from_returncode(os.waitstatus_to_exitcode(wait_status))
        except ChildProcessError:
            time.sleep(0.001)
    return 1, None


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class ProcessRecord:
    pid: int
    image: str
    command_line: str
    parent_pid: int
    session: int | None
    token: dict
    state: str = "suspended"  # suspended → running → exited; "attached" for ntctl
    critical: bool = False
    create_time: str = field(default_factory=now_iso)
    created: float = field(default_factory=time.monotonic)
    exit_time: str | None = None
    exit_status: int | None = None
    reported_status: int | None = None
    signal: int | None = None
    child: bool = False  # ours to wait for (not an attached outsider)
    resume_fd: int | None = None
    terminated_by: int | None = None
    standin: bool = False  # the generic service host runs under this image's name

    def public(self) -> dict:
        return {
            "pid": self.pid,
            "image": self.image,
            "command_line": self.command_line,
            "parent_pid": self.parent_pid,
            "session": self.session,
            "state": self.state,
            "critical": self.critical,
            "create_time": self.create_time,
            "exit_time": self.exit_time,
            "exit_status": self.exit_status,
            "signal": self.signal,
            "user": self.token.get("user", ""),
            "token": self.token,
            "standin": self.standin,
        }


class ProcessManager:
    def __init__(
        self,
        params_base: dict,
        log_dir: Path,
        log,
        on_exit: Callable[[ProcessRecord], None],
    ) -> None:
        self._base = params_base
        self._log_dir = log_dir
        self.log = log
        self._on_exit = on_exit
        self.table: dict[int, ProcessRecord] = {}
        self._lock = threading.Lock()
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._stderr = open(log_dir / "console.stderr", "ab", buffering=0)  # noqa: SIM115
        self._thread = threading.Thread(target=self._monitor, name="ps-monitor", daemon=True)
        self._stop = False
        self._exited = threading.Condition()
        self._creating = threading.Lock()
        # PR_SET_PDEATHSIG follows the *thread* that forked a child, not the process: a
        # child spawned by a port worker that later retires (or by a test's thread) would
        # be killed with that thread. Fresh interpreters are spawned from one thread that
        # lives as long as the kernel.
        self._spawner = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="PspSpawn")
        self._closed = False
        self.zygote: Zygote | None = None
        self.fault: Callable[[str, ProcessRecord], None] | None = None

    def start_zygote(self) -> None:
        try:
            self.zygote = Zygote(self._stderr)
        except OSError as exc:
            self.log.warning("ps.zygote_failed", error=str(exc))

    def start(self) -> None:
        self._thread.start()
        kernel = ProcessRecord(
            pid=os.getpid(),
            image="System",
            command_line="System",
            parent_pid=0,
            session=None,
            token=SYSTEM_TOKEN,
            state="running",
        )
        self.table[kernel.pid] = kernel

    # -- creation ---------------------------------------------------------------
    def create(
        self,
        image: str,
        command_line: str,
        environment: dict[str, str],
        session: int | None,
        parent_pid: int,
        suspended: bool = True,
        *,
        account: str = "",
        standin: bool = False,
        token: dict | None = None,
    ) -> ProcessRecord:
        """NtCreateUserProcess. Built the way trio's ``_open_process`` builds a process:
        each step registers its undo, the child is watched (pidfd) before anything can
        fail, and the record is published in the table last. A child that dies at any
        step is therefore reaped and reported like any other death, and a failed
        creation leaves no pipe, pidfd or half-made record behind."""
        package = package_for(image)
        standin = standin and package is None
        if standin:
            package = STANDIN_PACKAGE
        if package is None:
            raise LookupError(image)
        name = image.replace("/", "\\").rsplit("\\", 1)[-1].lower()
        params = dict(
            self._base,
            image=name,
            package=package,
            command_line=command_line,
            environment=environment,
            session=session,
            parent_pid=parent_pid,
        )
        parent = self.get(parent_pid)
        # The creation gate orders creation against KeBugCheckEx and shutdown: once
        # closed no creation starts, and kill_all waits for one in flight to publish.
        with self._creating:
            if self._closed:
                raise PsError(NtStatus.STATUS_SHUTDOWN_IN_PROGRESS, image)
            with contextlib.ExitStack() as undo:
                r, w = os.pipe()
                undo.callback(os.close, w)
                pid = self._start(package, r)  # closes r
                own = os.pidfd_open(pid)  # a zombie still has one: its death is not missed
                undo.callback(os.close, own)
                undo.callback(_pidfd_kill, own)
                record = ProcessRecord(
                    pid=pid,
                    image=name,
                    command_line=command_line,
                    parent_pid=parent_pid,
                    session=session,
                    token=token
                    if token is not None
                    else account_token(account)
                    if account
                    else parent.token
                    if parent
                    else SYSTEM_TOKEN,
                    child=True,
                    standin=standin,
                )
                self._fault("spawned", record)
                self._watch(record)
                self._fault("watched", record)
                block = msgpack.packb(params, use_bin_type=True)
                try:
                    os.write(w, len(block).to_bytes(4, "little") + block)
                except OSError as exc:  # the child is already gone (EPIPE)
                    raise PsError(NtStatus.STATUS_PROCESS_IS_TERMINATING, image) from exc
                self._fault("written", record)
                undo.pop_all()
            os.close(own)
            with self._lock:
                if record.state != "exited":  # _reap may have run already: it closes nothing
                    record.resume_fd = w
                else:
                    os.close(w)
                self.table[record.pid] = record  # published last
        self.log.info(
            "proc.create",
            child_pid=record.pid,
            child_image=name,
            child_session=session,
            parent_pid=parent_pid,
            suspended=suspended,
            command_line=command_line,
        )
        if not suspended:
            self.resume(record.pid)
        return record

    def _fault(self, step: str, record: ProcessRecord) -> None:
        """Fault injection between the steps of ``create`` (the kernel's ``System:``
        faults, or a test): called with the step just done and the record being built."""
        if self.fault is not None:
            self.fault(step, record)

    def _watch(self, record: ProcessRecord) -> None:
        self._selector.register(os.pidfd_open(record.pid), selectors.EVENT_READ, record)
        os.write(self._wake_w, b"x")

    def close_creation(self) -> None:
        """No creation starts from now on; returns once a creation in flight published."""
        with self._creating:
            self._closed = True

    # -- starting a process: fork from the zygote, or a fresh interpreter ---------------
    def _start(self, package: str, r: int) -> int:
        """The pid of a new, not yet running image reading its parameters from ``r``."""
        try:
            pid = self.zygote.spawn(package, r) if self.zygote is not None else None
            if pid is None:
                pid = self._posix_spawn(package, r)
        finally:
            os.close(r)
        return pid

    def _posix_spawn(self, package: str, r: int) -> int:
        return self._spawner.submit(self._posix_spawn_now, package, r).result()

    def _posix_spawn_now(self, package: str, r: int) -> int:
        os.set_inheritable(r, True)
        args = [sys.executable, "-m", f"processes.{package}", "--ppb-fd", str(r)]
        actions = [
            (os.POSIX_SPAWN_DUP2, self._stderr.fileno(), 1),
            (os.POSIX_SPAWN_DUP2, self._stderr.fileno(), 2),
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        ]
        return os.posix_spawn(
            sys.executable, args, {**os.environ, "PYTHONPATH": str(REPO)}, file_actions=actions
        )

    def resume(self, pid: int) -> int:
        record = self.table.get(pid)
        if record is None or record.state == "exited":
            return NtStatus.STATUS_INVALID_CID
        with self._lock:  # taken from the record once, so _reap never closes it twice
            fd, record.resume_fd = record.resume_fd, None
        if fd is None:
            return NtStatus.STATUS_SUCCESS  # already running: NtResumeThread is a no-op
        try:
            os.write(fd, b"R")
        except OSError:
            return NtStatus.STATUS_PROCESS_IS_TERMINATING
        finally:
            os.close(fd)
        if record.state != "exited":
            record.state = "running"
        self.log.info("proc.resume", child_pid=pid, child_image=record.image)
        return NtStatus.STATUS_SUCCESS

    def attach(self, pid: int, image: str, session: int | None) -> ProcessRecord:
        """An outside process (ntctl) joins the table; watched like any other."""
        record = ProcessRecord(
            pid=pid,
            image=image,
            command_line=image,
            parent_pid=0,
            session=session,
            token=ADMIN_TOKEN,
            state="attached",
        )
        with self._lock:
            self.table[pid] = record
        self._watch(record)
        return record

    def get(self, pid: int) -> ProcessRecord | None:
        with self._lock:
            return self.table.get(pid)

    def live(self) -> list[ProcessRecord]:
        with self._lock:
            return [p for p in self.table.values() if p.state != "exited" and p.pid != os.getpid()]

    def snapshot(self) -> list[dict]:
        with self._lock:
            return [p.public() for p in self.table.values()]

    # -- exits ------------------------------------------------------------------
    def _monitor(self) -> None:
        while not self._stop:
            for key, _ in self._selector.select():
                if key.data is None:
                    os.read(self._wake_r, 4096)
                    continue
                self._selector.unregister(key.fd)
                os.close(key.fd)
                self._reap(key.data)

    def _reap(self, record: ProcessRecord) -> None:
        status, sig = 0, None  # attached: not our child, no wait status to read
        if record.child:
            status, sig = _wait_child(record.pid)
        record.signal = sig
        record.exit_status = (
            record.reported_status if record.reported_status is not None else status
        )
        with self._lock:
            record.state = "exited"
            record.exit_time = now_iso()
            fd, record.resume_fd = record.resume_fd, None
        if fd is not None:
            os.close(fd)
        self._on_exit(record)
        with self._exited:
            self._exited.notify_all()

    def kill_all(self, sig: int = signal.SIGKILL) -> list[int]:
        """Signal every live process of ours; returns their pids. A creation in flight
        is finished (and so killed with the rest) before the list is taken."""
        self.close_creation()
        self.stop_zygote()
        victims = [p.pid for p in self.live() if p.child]
        for pid in victims:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        return victims

    def wait_all(self, timeout: float) -> bool:
        """True when every process of ours has exited (and was reaped) within ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._exited:
            while any(p.child for p in self.live()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._exited.wait(left)
        return True

    def stop_zygote(self) -> None:
        if self.zygote is not None:
            self.zygote.stop()
            self.zygote = None


class Zygote:
    """The kernel's end of nt/zygote.py."""

    def __init__(self, stderr) -> None:
        self._sock, theirs = socket.socketpair()
        self._lock = threading.Lock()
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "nt.zygote", str(theirs.fileno()), str(os.getpid())],
            pass_fds=(theirs.fileno(),),
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
        )
        theirs.close()
        self._sock.settimeout(5.0)

    def spawn(self, package: str, fd: int) -> int | None:
        """The new process's pid, or None when the zygote is gone (start it fresh)."""
        with self._lock:
            try:
                socket.send_fds(self._sock, [package.encode()], [fd])
                data = b""
                while len(data) < 4:
                    chunk = self._sock.recv(4 - len(data))
                    if not chunk:
                        return None
                    data += chunk
            except OSError:
                return None
        return struct.unpack("<i", data)[0]

    def stop(self) -> None:
        self._sock.close()
        try:
            self.popen.kill()
            self.popen.wait(1.0)
        except (OSError, subprocess.TimeoutExpired):
            pass
