"""winlogon.exe, first duties (winlogon.c WinMain, nt-spec §1.4).

kernel32 connects to the session's csrss before WinMain runs: if that fails the process
ends with the status while it is not yet critical, so smss raises 0xC000021A
("Windows Logon Process"). Then winlogon marks itself critical, registers with csrss as
the logon process (UserpRegisterLogonProcess), creates WinSta0 and its desktops, and waits
for the secure attention sequence. The logon work of later issues slots in after
``wait_for_sas``.
"""

from __future__ import annotations

import threading

from nt import csrclient
from nt.bootstrap import Process
from ports.client import PortError
from ports.lsa import LSA_RPC_SERVER_ACTIVE

DESKTOPS = ("Default", "Winlogon", "Screen-saver")
LSA_WAIT_MS = 60_000


def main(proc: Process) -> int:
    try:
        csr = csrclient.connect(proc.lpc, proc.session)
    except PortError as exc:
        proc.log.error("winlogon.csr_connect_failed", status=exc.status)
        return exc.status
    if proc.fault("exit_before_critical"):
        return int(proc.fault("exit_before_critical"), 0)
    proc.set_critical()
    reply = csr.call("UserpRegisterLogonProcess", {"process_id": proc.pid, "register": True})
    if not reply.ok:
        proc.log.error("winlogon.register_failed", status=reply.status)
        return reply.status
    proc.log.info("winlogon.registered", csrss_port=csr.conn.port)
    proc.log.info("winlogon.winsta", window_station="WinSta0", desktops=list(DESKTOPS))
    wait_for_lsa(proc)
    wait_for_sas(proc)
    return 0


def wait_for_lsa(proc: Process) -> None:
    """WaitForLsass: open (or create) LSA_RPC_SERVER_ACTIVE and wait until lsass sets it
    (nt-spec §1.4 step 8). Windows waits for ever; the model gives up after
    LSA_WAIT_MS and logs it, so a machine without lsass still reaches the SAS."""
    proc.nt.create_event(LSA_RPC_SERVER_ACTIVE)
    status = proc.nt.wait_event(LSA_RPC_SERVER_ACTIVE, LSA_WAIT_MS)
    if status != 0:
        proc.log.warning("winlogon.lsa_wait_timeout", status=status, timeout_ms=LSA_WAIT_MS)


def wait_for_sas(proc: Process) -> None:
    """STATE_LOGGED_OFF: the "press Ctrl+Alt+Del" notice, then the message loop."""
    proc.log.info("logon.ready", state="LOGGED_OFF")
    threading.Event().wait()
