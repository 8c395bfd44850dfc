"""Process bootstrap: what the NT loader and ntdll do before an image's entry point.

``start(image)`` reads the process parameters block the kernel wrote to the inherited
pipe (the per-boot key travels this way, never through argv or the environment), arms
PR_SET_PDEATHSIG so no process outlives the kernel, sets the process title to the NT
command line, configures logging, connects to the kernel, and then waits for the
kernel's resume byte: a process created suspended runs none of its own code until
NtResumeThread.
"""

from __future__ import annotations

import sys

# NT images never draw on a terminal: keep structlog.dev from importing rich, which is
# most of a process's start-up time (~80 ms of imports each).
sys.modules.setdefault("rich", None)

import ctypes  # noqa: E402
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import msgpack
import setproctitle

from nt import ldr
from nt import log as ntlog
from nt.status import NtStatus
from nt.syscalls import SystemServices
from ports import kernel
from ports.runtime import LpcRuntime

PR_SET_PDEATHSIG = 1
FAULTS_ENV = "NTMODEL_FAULTS"


def set_pdeathsig(sig: int = signal.SIGKILL) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)


def _read_exact(fd: int, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = os.read(fd, n - len(data))
        if not chunk:
            raise SystemExit("process parameters pipe closed before the block was complete")
        data += chunk
    return data


def read_parameters(fd: int) -> dict:
    """A 4-byte length, then the msgpack block; the resume byte follows, unread."""
    length = int.from_bytes(_read_exact(fd, 4), "little")
    return msgpack.unpackb(_read_exact(fd, length), raw=False)


def parse_faults(spec: str, image: str, session: int | None) -> dict[str, str]:
    """``image[@session]:fault[=value]`` entries, comma separated, for this image only."""
    faults: dict[str, str] = {}
    for entry in filter(None, (e.strip() for e in spec.split(","))):
        target, _, fault = entry.partition(":")
        name, _, sess = target.partition("@")
        if name.lower() != image.lower() or (sess and str(session) != sess):
            continue
        key, _, value = fault.partition("=")
        faults[key] = value or "1"
    return faults


@dataclass
class Process:
    """The running image's view of itself: its PEB, its ports, its kernel."""

    params: dict
    log: ntlog.Logger
    lpc: LpcRuntime
    nt: SystemServices
    faults: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    @property
    def image(self) -> str:
        return self.params["image"]

    @property
    def pid(self) -> int:
        return os.getpid()

    @property
    def session(self) -> int | None:
        return self.params["session"]

    @property
    def root(self) -> Path:
        return Path(self.params["root"])

    @property
    def environment(self) -> dict[str, str]:
        return self.params["environment"]

    @property
    def command_line(self) -> str:
        return self.params["command_line"]

    def fault(self, name: str) -> str | None:
        return self.faults.get(name)

    def set_critical(self) -> None:
        self.nt.set_critical(True)
        self.log.info("proc.critical", critical=True)

    def exit(self, status: int) -> NoReturn:
        """NtTerminateProcess(NtCurrentProcess(), status): report, then go."""
        self.log.info("proc.exit_self", status=status)
        try:
            self.nt.terminate(0, status)
        finally:
            os._exit(status & 0xFF or (1 if status else 0))


_PRELOADED: tuple[int, dict] | None = None  # (fd, params) a spare process already read


def start(image: str, argv: list[str] | None = None) -> Process:
    if _PRELOADED is not None:
        fd, params = _PRELOADED
    else:
        argv = sys.argv if argv is None else argv
        fd = int(argv[argv.index("--ppb-fd") + 1])
        os.umask(0o077)
        set_pdeathsig()
        params = read_parameters(fd)
    if os.getppid() != params["kernel_pid"]:  # the kernel died before PDEATHSIG was armed
        os._exit(1)
    image = params.get("image") or image  # the PEB's name (a stand-in runs under its image's)
    args = params["command_line"].split(" ", 1)
    setproctitle.setproctitle(f"{image} {args[1]}" if len(args) > 1 else image)
    log_dir = Path(params["root"]) / "logs" / params["boot_id"]
    log = ntlog.configure(
        image,
        os.getpid(),
        params["session"],
        params["boot_id"],
        log_dir,
        level=os.environ.get("NTMODEL_LOG_LEVEL", "info"),
    )
    runtime = Path(params["runtime"])
    lpc = LpcRuntime(
        key=params["key"],
        kernel_endpoint=kernel.endpoint(runtime, kernel.SYSTEM_SERVICE_ENDPOINT),
        events_endpoint=kernel.endpoint(runtime, kernel.EVENTS_ENDPOINT),
        log=log,
    )
    lpc.kernel.server_pid = params["kernel_pid"]
    proc = Process(
        params=params,
        log=log,
        lpc=lpc,
        nt=SystemServices(lpc.kernel),
        faults=parse_faults(params.get("faults", ""), image, params["session"]),
    )
    if os.read(fd, 1) != b"R":  # suspended until NtResumeThread
        os._exit(1)
    os.close(fd)
    log.info(
        "proc.start",
        command_line=params["command_line"],
        parent_pid=params["parent_pid"],
        environment=params["environment"],
    )
    return proc


def run(image: str, main) -> NoReturn:
    """Start the image and run ``main(proc)``; an escaping exception ends the process
    with STATUS_UNHANDLED_EXCEPTION, as an unhandled SEH exception would."""
    proc = start(image)
    status = ldr.initialize_process(proc)
    if status != NtStatus.STATUS_SUCCESS:
        proc.exit(status)
    try:
        status = main(proc)
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 0
    except BaseException:
        proc.log.error("proc.unhandled_exception", traceback=traceback.format_exc())
        status = NtStatus.STATUS_UNHANDLED_EXCEPTION
    proc.exit(int(status or 0))


def become(package: str, fd: int) -> None:
    """Run image ``package`` in this (forked, pre-imported) process: read the parameters
    block the kernel wrote, then the image's ``__main__`` as if started with ``-m``."""
    global _PRELOADED
    import runpy

    os.umask(0o077)
    _PRELOADED = (fd, read_parameters(fd))
    runpy.run_module(f"processes.{package}", run_name="__main__", alter_sys=True)
