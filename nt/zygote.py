"""The zygote: one interpreter that has loaded every image's code and forks new processes.

Starting a Python process costs ~70-250 ms of imports, almost all of it the same modules
in every image; on two CPUs a boot of nine processes is CPU-bound on that. The kernel
starts this process once (single-threaded, no ZeroMQ context), and for each
NtCreateUserProcess sends it the read end of the new process's parameters pipe. The
zygote forks twice: the middle child exits at once, so the new process is reparented to
the kernel, which is a child subreaper. The kernel is therefore still the Unix parent of
every process (it waits for it, its pidfd sees the exit), and the new process arms
PR_SET_PDEATHSIG only once the kernel is its parent.

Protocol on the socketpair: the kernel sends the package name with one fd (SCM_RIGHTS);
the zygote answers the new pid as a 4-byte little-endian integer.
"""

from __future__ import annotations

import sys

sys.modules.setdefault("rich", None)  # images draw nothing (see nt/bootstrap.py)

import importlib  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import struct  # noqa: E402
import time  # noqa: E402

from nt import bootstrap  # noqa: E402  (and with it zmq, msgpack, structlog, ports)
from nt.images import KNOWN_IMAGES  # noqa: E402

REPARENT_TIMEOUT = 2.0


def preload() -> None:
    """Import every image's modules now, so that a fork runs none of it again."""
    for package in set(KNOWN_IMAGES.values()):
        for module in (f"processes.{package}", f"processes.{package}.{package}"):
            try:
                importlib.import_module(module)
            except ImportError:
                continue


def become(package: str, fd: int, kernel_pid: int) -> None:
    """In the grandchild: wait to be the kernel's child, then be the image."""
    deadline = time.monotonic() + REPARENT_TIMEOUT
    while os.getppid() != kernel_pid:
        if time.monotonic() > deadline:
            os._exit(1)
        time.sleep(0.0002)
    bootstrap.set_pdeathsig()
    if os.getppid() != kernel_pid:  # the kernel died in between
        os._exit(1)
    bootstrap.become(package, fd)


def serve(sock: socket.socket, kernel_pid: int) -> None:
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
                child = os.fork()
                if child == 0:
                    sock.close()
                    become(msg.decode(), fds[0], kernel_pid)
                    os._exit(0)
                sock.sendall(struct.pack("<i", child))
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
