"""Hard errors after csrss named its port (ntoskrnl/ex/harderr.c: ExpRaiseHardError).

``NtSetDefaultHardErrorPort`` from csrss sets ExReadyForErrors and names the port; from
then on a hard error that does not take the machine down is sent to that port as an
LPC_ERROR_EVENT (a HARDERROR_MSG carrying the raiser's client id) and the raiser waits for
the response the user chose. Before that, the kernel bugchecks (``services.py``).

Where it goes: ReactOS and Windows keep the *first* port registered (session 0's csrss).
Issue 9 asks for the csrss *of the active session*, where a user can see the box: every
csrss's registration is kept, and a hard error goes to the console session's csrss (the
lowest session above 0 that registered), else to session 0's. The divergence is logged
once, when the first interactive csrss registers.

Delivery runs on one thread with a bounded queue, so a process that raises hard errors in
a loop cannot pile up kernel threads: past ``QUEUE_MAX`` pending errors the raiser gets
ResponseReturnToCaller at once, as NT answers when no port can take the message.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

from nt.log import Logger
from ports.client import Connection, PortError
from ports.csr import API_PORT_NAME, object_directory

RESPONSE_RETURN_TO_CALLER = 0  # HARDERROR_RESPONSE ResponseReturnToCaller
QUEUE_MAX = 16
DELIVERY_TIMEOUT_S = 10.0


class HardErrorPorts:
    """The registered hard-error ports (one per csrss) and the delivery thread."""

    def __init__(self, lpc: Any, log: Logger) -> None:
        self._lpc, self._log = lpc, log
        self._lock = threading.Lock()
        self._ports: dict[int, tuple[int, str]] = {}  # session -> (csrss pid, ApiPort name)
        self._conns: dict[str, Connection] = {}
        self._queue: queue.Queue[tuple[dict, Any]] = queue.Queue(QUEUE_MAX)
        self._thread: threading.Thread | None = None

    def register(self, session: int, pid: int) -> bool:
        """NtSetDefaultHardErrorPort; True when this is the first port (ExReadyForErrors)."""
        name = object_directory(session) + "\\" + API_PORT_NAME
        with self._lock:
            first = not self._ports
            self._ports[session] = (pid, name)
        if session and not any(s for s in self._ports if s and s != session):
            self._log.info(
                "divergence",
                what="hard errors go to the csrss of the active (console) session "
                "(issue 9); Windows and ReactOS keep the first port registered",
                target_session=session,
            )
        return first

    def forget(self, pid: int) -> None:
        """A csrss died: its port is no longer a destination."""
        with self._lock:
            for session, (owner, name) in list(self._ports.items()):
                if owner == pid:
                    del self._ports[session]
                    conn = self._conns.pop(name, None)
                    if conn is not None:
                        conn.close(notify=False)

    def target(self) -> tuple[int, int, str] | None:
        with self._lock:
            interactive = sorted(s for s in self._ports if s)
            session = interactive[0] if interactive else (0 if 0 in self._ports else None)
            if session is None:
                return None
            pid, name = self._ports[session]
            return session, pid, name

    def deliver(self, message: dict, deferred: Any) -> bool:
        """Queue one HARDERROR_MSG; ``deferred.complete`` gets the response later."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="ExpRaiseHardError", daemon=True
                )
                self._thread.start()
        try:
            self._queue.put_nowait((message, deferred))
        except queue.Full:
            return False
        return True

    def _loop(self) -> None:
        while True:
            message, deferred = self._queue.get()
            response = self._send(message)
            deferred.complete(0, {"response": response})

    def _send(self, message: dict) -> int:
        target = self.target()
        if target is None:
            return RESPONSE_RETURN_TO_CALLER
        session, pid, name = target
        try:
            conn = self._conns.get(name)
            if conn is None or not conn.connected:
                conn = self._lpc.connect_port(name)
                self._conns[name] = conn
            reply = conn.error_event(message, DELIVERY_TIMEOUT_S)
        except PortError as exc:
            self._log.warning("harderror.undelivered", target_session=session, status=exc.status)
            return RESPONSE_RETURN_TO_CALLER
        self._log.info(
            "harderror.delivered",
            target_session=session,
            csrss_pid=pid,
            error_status=message["status"],
            delivery_status=reply.status,
        )
        if not reply.ok:
            return RESPONSE_RETURN_TO_CALLER
        return int(reply.body.get("response", RESPONSE_RETURN_TO_CALLER))
