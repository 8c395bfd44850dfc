"""A diagnostic server: the real ``ports.server.PortServer``, no machine around it.

    python -m tests.bench.portserver ENDPOINT nolog|log|check LOGDIR [profile]
                                                    (the key arrives on stdin)

It serves the csrss ApiPort protocol with csrss's port settings (one request thread
growing to 16, 16 in flight per client) and a dispatch that does BaseSrvGetTempFile's
work (a counter under a lock). With ``log`` it also writes csrss's per-call ``csr.api``
event through ``nt.log`` (same fields as processes/csrss/api.py ``_log_call``) into a
private directory that nobody tails. So csr_rtt can split a call's cost into: the port
machinery (ZAP identity, MAC, sequence, worker hand-off, signed reply), the per-call log
line, and the rest (csrss's CSR dispatch plus the launcher daemon that tails every log
line of a booted machine). With ``profile`` the port thread and each request thread run
under their own cProfile; when stdin closes the merged statistics go to stdout
(tests/bench/profile_csr.py reads them). With ``check`` each call first makes the SCM's
access check (``ScSecurity.check``: an interactive user's token asking SERVICE_QUERY_STATUS
on a service with the default descriptor), the work an ROpenServiceW adds (bench_access).
"""

from __future__ import annotations

import os
import sys
import threading

import zmq

from nt import log as ntlog
from nt.status import NtStatus, hexstatus
from ports import csr
from ports.server import PortServer
from ports.zap import ZapHandler

PORT_NAME = "\\Sessions\\1\\Windows\\ApiPort"


PROFILES: dict[str, object] = {}
# An interactive user's token, as lsass builds one (what the check walks).
USER_TOKEN = {
    "user": "NTMODEL\\bob",
    "sid": "S-1-5-21-1-2-3-1001",
    "groups": ["S-1-5-32-545", "S-1-1-0", "S-1-5-4", "S-1-2-1", "S-1-5-11", "S-1-5-15",
               "S-1-5-113", "S-1-2-0", "S-1-5-64-10", "S-1-16-8192"],
    "deny_only": [],
    "privileges": ["SeShutdownPrivilege", "SeChangeNotifyPrivilege", "SeUndockPrivilege",
                   "SeIncreaseWorkingSetPrivilege", "SeTimeZonePrivilege"],
}  # fmt: skip


def _access_check():
    """The SCM's check, bound to one service (its descriptor parsed once, then cached)."""
    from ports import svcctl
    from processes.services.scsecure import ScSecurity

    security = ScSecurity()
    return lambda client: security.check(client, svcctl.SERVICE_QUERY_STATUS, "EventLog")


def _profiled(name: str, fn):
    """Run ``fn`` (a thread's loop) under a cProfile of its own, kept in PROFILES."""
    import cProfile

    def run(*args, **kw):
        prof = cProfile.Profile()
        PROFILES[f"{name}-{threading.get_ident()}"] = prof
        prof.enable()
        return fn(*args, **kw)

    return run


def _dump_profiles() -> None:
    import io
    import pstats

    out = io.StringIO()
    for name, prof in PROFILES.items():
        stats = pstats.Stats(prof, stream=out)
        out.write(f"\n##### thread {name}\n")
        stats.sort_stats("tottime").print_stats(25)
    sys.stdout.write(out.getvalue())
    sys.stdout.flush()


def main() -> None:
    endpoint, mode, log_dir = sys.argv[1], sys.argv[2], sys.argv[3]
    profile = "profile" in sys.argv[4:]
    max_threads = int(os.environ.get("NTBENCH_MAX_THREADS", "16"))
    key = sys.stdin.buffer.read(32)
    if profile:
        from ports.pool import WorkerPool

        PortServer._port_loop = _profiled("port", PortServer._port_loop)
        WorkerPool._loop = _profiled("request", WorkerPool._loop)
    ntlog.configure("csrss.exe", os.getpid(), 1, "bench", log_dir)
    log = ntlog.get_logger()
    counter = [0]
    lock = threading.Lock()
    with_log = mode == "log"
    check = _access_check() if mode == "check" else None

    def dispatch(api_number: int, message: dict, client) -> dict:
        if check is not None and check(client) is None:
            return NtStatus.STATUS_ACCESS_DENIED
        with lock:
            counter[0] = (counter[0] + 1) & 0xFFFF
            body = {"unique_id": counter[0]}
        if with_log:
            log.info(
                "csr.api",
                api="BasepGetTempFile",
                api_number=hexstatus(api_number),
                caller_pid=client.pid,
                status=NtStatus.STATUS_SUCCESS,
            )
        return body

    ctx = zmq.Context()
    zap = ZapHandler(ctx, log)
    server = PortServer(
        ctx,
        zap,
        name=PORT_NAME,
        endpoint=endpoint,
        protocol=csr.API_PORT,
        handlers={},
        key=key,
        identify=lambda pid: {"image": "bench.exe", "session": 1, "token": USER_TOKEN},
        policy=lambda pid, uid: (True, ""),
        log=log,
        dispatch=dispatch,
        threads=1,
        max_threads=max_threads,
        max_inflight=16,
    )
    server.start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while sys.stdin.buffer.read(4096):
        pass
    if profile:
        _dump_profiles()
    os._exit(0)


def start(reaper, endpoint: str, mode: str, key: bytes, log_dir: str, profile: bool = False):
    import subprocess

    from tests.bench.common import PY, REPO

    p = reaper.popen(
        [PY, "-m", "tests.bench.portserver", endpoint, mode, log_dir]
        + (["profile"] if profile else []),
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    p.stdin.write(key)
    p.stdin.flush()
    if p.stdout.readline().strip() != b"ready":
        p.kill()
        raise RuntimeError(f"port server ({mode}) did not start")
    return p


def connect(ctx: zmq.Context, endpoint: str, key: bytes):
    from ports.client import Connection

    conn = Connection(
        ctx,
        port=PORT_NAME,
        endpoint=endpoint,
        key=key,
        max_message_length=csr.MAX_MESSAGE_LENGTH,
    )
    conn.connect()
    return conn


if __name__ == "__main__":
    main()
