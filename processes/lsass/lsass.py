r"""lsass.exe (``base/system/lsass/lsass.c``, ``LsapInitLsa``; nt-spec §1.6).

Not critical (its death is a 60-second shutdown-and-restart, which the session-0 code
raises; the kernel records it as any process's exit). Start-up, in LsapInitLsa's order:

1. the SAM database (``SamIInitialize``; created on first boot: machine SID, built-in
   accounts) — read through the kernel's registry services, which serve ``HKLM\SAM`` and
   ``HKLM\SECURITY`` to lsass alone;
2. ``StartAuthenticationPort``: ``\LsaAuthenticationPort``, then the event
   ``\SECURITY\LSA_AUTHENTICATION_INITIALIZED``;
3. the SAM server's port (``\RPC Control\samss lpc``, standing in for lsarpc/samr), then
   ``LSA_RPC_SERVER_ACTIVE``, which releases the SCM (nt-spec §4.11). Windows never
   closes that handle; the model's event simply stays set.

Model settings (``HKLM\SYSTEM\CurrentControlSet\Control\Lsa``): ``Argon2`` (TimeCost,
MemoryCost in KiB, Parallelism) overrides OWASP's parameters — tests use it for cheap
hashes, a production machine has no such key; ``MaxConcurrentVerifies`` and
``VerifyDeadlineMs`` bound the hashing (reliability-security §4.2 item 4).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from nt.bootstrap import Process
from nt.syscalls import NtError, SystemServices
from ports import lsa, lsarpc, samr
from processes.lsass.lsapolicy import LsaPolicy, LsaPolicyServer
from processes.lsass.lsasrv import LsaServer, unix_parent
from processes.lsass.msv1_0 import HashParameters, Msv1_0
from processes.lsass.sam import Sam
from processes.lsass.samsrv import SamServer

LSA_KEY = r"HKLM\SYSTEM\CurrentControlSet\Control\Lsa"
COMPUTER_NAME_KEY = r"HKLM\SYSTEM\CurrentControlSet\Control\ComputerName\ComputerName"


DIVERGENCES = (
    "SAM stores an argon2id PHC string, readable names and Windows' F layout; Windows keeps "
    "the boot-key-encrypted NT hash in the V value",
    "the SAM server answers MS-SAMR opnums on the LPC port \\RPC Control\\samss lpc, not RPC",
    "an untrusted LSA connection may ask for Network logons only (STATUS_NOT_LOGON_PROCESS)",
    "a logon session ends when the LSA client that asked for it closes its connection",
    "LSA policy (rights, secrets) is served on \\RPC Control\\lsarpc; privileges are kept as "
    "names (Privilgs REG_MULTI_SZ), secrets sealed with HMAC-SHA256 under an unwrapped LSA "
    "key in SECURITY (Windows: AES-256 under the boot key)",
    "only the Service and Batch logon rights are enforced",
)


def value_or(nt: SystemServices, path: str, name: str, default: int | str) -> int | str:
    try:
        return nt.query_value(path, name)[1]
    except NtError:
        return default


def hash_parameters(nt: SystemServices) -> HashParameters:
    key = LSA_KEY + r"\Argon2"
    base = HashParameters()
    return HashParameters(
        time_cost=int(value_or(nt, key, "TimeCost", base.time_cost)),
        memory_cost=int(value_or(nt, key, "MemoryCost", base.memory_cost)),
        parallelism=int(value_or(nt, key, "Parallelism", base.parallelism)),
    )


def token_assigner(nt: SystemServices):  # noqa: ANN201
    """NtCreateToken for a caller's child (CreateProcessAsUser's token, ntctl --as)."""

    def assign(pid: int, token: dict) -> int:
        try:
            nt.call("NtCreateToken", pid=pid, token=token)
        except NtError as exc:
            return exc.status
        return 0

    return assign


def nt_parent(nt: SystemServices) -> Callable[[int], int | None]:
    """Who may have a token assigned to ``pid``: its NT parent while the kernel holds it
    suspended (a service process the SCM created), else its Unix parent (a --as child
    that has not attached yet)."""

    def parent_of(pid: int) -> int | None:
        try:
            record = nt.query_process(pid)
        except NtError:
            return unix_parent(pid)
        return int(record["parent_pid"]) if record.get("state") == "suspended" else None

    return parent_of


def main(proc: Process) -> int:
    if proc.fault("exit_at_start"):
        return int(proc.fault("exit_at_start") or "1", 0)
    nt = proc.nt
    sam = Sam(nt)
    created = sam.open()
    proc.log.info("sam.open", created=created, domain_sid=sam.domain_sid, users=len(sam.users))
    params = hash_parameters(nt)
    msv = Msv1_0(
        sam,
        params,
        max_verifies=int(value_or(nt, LSA_KEY, "MaxConcurrentVerifies", 2)),
        deadline=int(value_or(nt, LSA_KEY, "VerifyDeadlineMs", 5000)) / 1000,
    )
    proc.log.info(
        "lsa.hash_parameters",
        algorithm="argon2id",
        time_cost=params.time_cost,
        memory_cost_kib=params.memory_cost,
        parallelism=params.parallelism,
        max_verifies=msv.max_verifies,
    )
    computer = str(value_or(nt, COMPUTER_NAME_KEY, "ComputerName", "NTMODEL"))
    policy = LsaPolicy(nt)
    policy.open()
    server = LsaServer(
        sam,
        msv,
        proc.log,
        computer_name=computer,
        assign_token=token_assigner(nt),
        parent_of=nt_parent(nt),
        policy=policy,
    )
    if proc.lpc.events is not None:
        proc.lpc.events.subscribe(server.process_exited)
    server.stall = float(proc.fault("stall_logon") or 0)
    sam.stall_after_hash = float(proc.fault("stall_password_change") or 0)
    start_authentication_port(proc, server)
    proc.lpc.create_port(  # before LSA_RPC_SERVER_ACTIVE: the SCM reads secrets here
        lsarpc.LSARPC_PORT_NAME,
        lsarpc.LSARPC_PORT,
        LsaPolicyServer(policy, proc.log).handlers(),
        threads=1,
        max_threads=2,
    )
    start_sam_server(proc, SamServer(sam, msv, proc.log, computer))
    for what in DIVERGENCES:
        proc.log.info("divergence", what=what)
    proc.log.info("lsa.ready")
    threading.Event().wait()  # the port threads serve; the main thread has nothing left
    return 0


def start_authentication_port(proc: Process, server: LsaServer) -> None:
    proc.lpc.create_port(
        lsa.LSA_PORT_NAME,
        lsa.LSA_AUTH_PORT,
        server.handlers(),
        accept=server.accept,
        on_closed=server.closed,
        dispatch=server.dispatch,
        # authport.c serves one thread; hashing waits here on its bounded slots, so the
        # model lets a few more threads queue for them (the deadline still bounds them).
        threads=1,
        max_threads=8,
        max_inflight=256,
    )
    proc.nt.create_directory("\\SECURITY")
    proc.nt.create_event(lsa.LSA_AUTHENTICATION_INITIALIZED)
    proc.nt.set_event(lsa.LSA_AUTHENTICATION_INITIALIZED)


def start_sam_server(proc: Process, server: SamServer) -> None:
    proc.lpc.create_port(
        samr.SAMR_PORT_NAME, samr.SAMR_PORT, server.handlers(), threads=1, max_threads=2
    )
    proc.nt.create_event(lsa.LSA_RPC_SERVER_ACTIVE)
    proc.nt.set_event(lsa.LSA_RPC_SERVER_ACTIVE)
