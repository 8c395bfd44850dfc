"""SmpStopCsr: the end of a session made on demand (termsrv calls it once the session's
user has logged off and the session is reset; nt-spec §1.10, seed 002).

ReactOS answers STATUS_NOT_IMPLEMENTED. The model ends the session the way Windows
leaves it: no process and no object of it remains. Its csrss and winlogon are critical,
so their flag is cleared first (NtSetInformationProcess(ProcessBreakOnTermination) on
them, which SYSTEM may do), then every live process of the session is terminated and
waited for, then ``\\Sessions\\N`` (with its ``Windows``, ``DosDevices``,
``BaseNamedObjects`` and ``SmSubSystemReady``) and ``\\Sessions\\BNOLINKS\\N`` go.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from nt.bootstrap import Process
from nt.status import NtStatus
from nt.syscalls import NtError
from ports.client import PortError
from ports.contract import Deferred

if TYPE_CHECKING:
    from processes.smss.smloop import SmApi
    from processes.smss.smwatch import Exits

EXIT_WAIT = 5.0  # s: a terminated process is gone well before this


def stop_session(proc: Process, api: SmApi, exits: Exits, session: int, reply: Deferred) -> None:
    threading.Thread(
        target=_stop, args=(proc, api, exits, session, reply), name=f"SmpStopCsr-{session}"
    ).start()


def _stop(proc: Process, api: SmApi, exits: Exits, session: int, reply: Deferred) -> None:
    status = NtStatus.STATUS_SUCCESS
    api.watch.forget_session(session)  # from here on its deaths are expected
    try:
        victims = [
            p for p in proc.nt.processes() if p.get("session") == session and p["state"] != "exited"
        ]
        for p in victims:
            if p["critical"]:
                proc.nt.set_critical(False, pid=p["pid"])
        for p in victims:
            try:
                proc.nt.terminate(p["pid"], NtStatus.STATUS_SUCCESS)
            except NtError:
                pass  # it went by itself
        left = [p["pid"] for p in victims if exits.wait(p["pid"], EXIT_WAIT) is None]
        for name in (f"\\Sessions\\{session}", f"\\Sessions\\BNOLINKS\\{session}"):
            try:
                proc.nt.delete_object(name)
            except NtError as exc:
                if exc.status != NtStatus.STATUS_OBJECT_NAME_NOT_FOUND:
                    raise
        if left:
            status = NtStatus.STATUS_UNSUCCESSFUL
        proc.log.info(
            "smss.session_stopped",
            target_session=session,
            stopped=[p["pid"] for p in victims],
            left=left,
            status=status,
        )
    except (NtError, PortError) as exc:
        status = exc.status
        proc.log.error("smss.session_stop_failed", target_session=session, status=status)
    finally:
        api.session_stopped(session)
        reply.complete(status)
