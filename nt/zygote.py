"""The zygote: one interpreter that has loaded every image's code and forks new processes.

Starting a Python process costs ~70-250 ms of imports, almost all of it the same modules
in every image; on two CPUs a boot of nine processes is CPU-bound on that. The kernel
starts this process once (single-threaded, no ZeroMQ context), and for each
NtCreateUserProcess sends it the read end of the new process's parameters pipe. The
zygote forks twice: the middle child exits at once, so the new process is reparented to
the kernel, which is a child subreaper. The kernel is therefore still the Unix parent of
every process (it waits for it, its pidfd sees the exit), and the new process arms
PR_SET_PDEATHSIG only once the kernel is its parent. It waits for exactly that: for its
middle parent to be gone. If its new parent is then not the kernel, the kernel died while
it was being forked, and it exits at once (no timeout: it lives no longer than any other
process of a dead kernel).

Fault (``NTMODEL_FAULTS``, image ``zygote``): ``zygote:hold_fork=PACKAGE`` keeps the
middle child of that package's fork alive until the kernel is gone, so that a test can
kill the kernel while a new process is still waiting to be reparented.

Protocol on the socketpair: the kernel sends the package name with one fd (SCM_RIGHTS);
the zygote answers the new pid as a 4-byte little-endian integer.
"""

from __future__ import annotations

import sys

sys.modules.setdefault("rich", None)  # images draw nothing (see nt/bootstrap.py)

import importlib  # noqa: E402
import os  # noqa: E402
import select  # noqa: E402
import socket  # noqa: E402
import struct  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

from nt import bootstrap  # noqa: E402  (and with it zmq, msgpack, structlog, ports)
from nt.images import KNOWN_IMAGES  # noqa: E402


def preload() -> None:
    """Import every image's modules now, so that a fork runs none of it again."""
    for package in set(KNOWN_IMAGES.values()):
        for module in (f"processes.{package}", f"processes.{package}.{package}"):
            try:
                importlib.import_module(module)
            except ImportError:
                continue


def become(package: str, fd: int, kernel_pid: int, middle: int) -> None:
    """In the grandchild: wait until the middle child is gone, then be the image if the
    kernel adopted us; if anyone else did, the kernel is dead: go at once."""
    while os.getppid() == middle:
        time.sleep(0.0002)
    if os.getppid() == kernel_pid:
        bootstrap.set_pdeathsig()
    if os.getppid() != kernel_pid:  # the kernel died before (or while) we were adopted
        print(
            f"zygote: pid {os.getpid()} ({package}) exits: the kernel {kernel_pid} died "
            f"while it was being created (adopted by {os.getppid()})",
            file=sys.stderr,
            flush=True,
        )
        os._exit(1)
    bootstrap.become(package, fd)


def hold(kernel_pid: int) -> None:
    """The ``hold_fork`` fault: the middle child lives until the kernel is gone, every
    thread of it (its pidfd polls readable then), so the new process is still waiting to
    be adopted when the kernel dies, whoever is scheduled first."""
    try:
        pidfd = os.pidfd_open(kernel_pid)
    except ProcessLookupError:
        return
    select.select([pidfd], [], [])


def serve(sock: socket.socket, kernel_pid: int) -> None:
    faults = bootstrap.parse_faults(os.environ.get(bootstrap.FAULTS_ENV, ""), "zygote", None)
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 256, 1)
        except OSError:
            return
        if not msg or not fds:
            return  # the kernel closed its end: shutdown
        middle = os.fork()
        if middle == 0:
            try:
                me = os.getpid()
                child = os.fork()
                if child == 0:
                    sock.close()
                    try:
                        become(msg.decode(), fds[0], kernel_pid, me)
                    except BaseException:  # the image never started: say why, then go
                        traceback.print_exc()
                        sys.stderr.flush()
                        os._exit(1)
                    os._exit(0)
                sock.sendall(struct.pack("<i", child))
                if faults.get("hold_fork") == msg.decode():
                    hold(kernel_pid)
            finally:
                os._exit(0)
        os.close(fds[0])
        os.waitpid(middle, 0)


def main() -> None:
    bootstrap.set_pdeathsig()
    sock = socket.socket(fileno=int(sys.argv[1]))
    kernel_pid = int(sys.argv[2])
    if os.getppid() != kernel_pid:
        return
    import setproctitle

    setproctitle.setproctitle("ntmodel zygote")
    preload()
    serve(sock, kernel_pid)


if __name__ == "__main__":
    main()
