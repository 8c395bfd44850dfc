"""The Windows event table (id, log, source, level, message template) and the one way a
component reports an event.

Texts are the English message-file templates with ``%1``.. insertion strings and ``%n``
for a line break, as Event Viewer renders them (netevent.dll for the Service Control
Manager and EventLog, the Security auditing templates' first line for Security ids).

How an event reaches the EventLog service (``ReportEvent`` in the model):

1. ``report_event(logger, event_id, strings)`` renders the message and writes one
   ``event.report`` line to the calling process's own JSON-lines log (``nt/log.py``: one
   ``write(2)`` per line, so it is durable at once and survives the reporter's death).
   Every record carries ``record`` = ``"<pid>:<seq>"``, unique within the boot.
2. The same record is posted to this process's :data:`EVENT_QUEUE`. While no sink is
   attached (EventLog not running yet, as early in boot) records wait there, in order,
   bounded by ``PENDING_MAX`` (the oldest are dropped and counted, and the drop is logged:
   the log line of step 1 still holds them).
3. When EventLog runs, the process wiring attaches a sink (a ReportEvent client stub on
   EventLog's port): ``EVENT_QUEUE.attach(sink)`` flushes the waiting records in order,
   then forwards new ones at once. A sink that fails is detached and records queue again.
4. EventLog, when it starts, also replays ``event.report`` lines of the current boot's
   log files (``record_from_log``) — this carries events of processes that died before
   EventLog ran (a crashed service, the previous smss instance). It keeps the ``record``
   ids it has written, so an event arriving by both paths is written once.

This is the shape of Windows' own hand-off: the kernel queues IoWriteErrorLogEntry
packets until EventLog connects to ``\\ErrorLogPort``; services report 6005 and the
queued events at its start.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

# Levels as Event Viewer numbers them (winmeta.xml).
LEVEL_CRITICAL = 1
LEVEL_ERROR = 2
LEVEL_WARNING = 3
LEVEL_INFORMATION = 4
LEVEL_NAMES = {1: "Critical", 2: "Error", 3: "Warning", 4: "Information"}

SYSTEM, APPLICATION, SECURITY = "System", "Application", "Security"
SCM = "Service Control Manager"
EVENTLOG = "EventLog"
AUDITING = "Microsoft-Windows-Security-Auditing"
TIME_SERVICE = "Microsoft-Windows-Time-Service"
GROUP_POLICY = "Microsoft-Windows-GroupPolicy"
PENDING_MAX = 10000


@dataclass(frozen=True)
class EventDef:
    event_id: int
    log: str
    source: str
    level: int
    symbol: str
    template: str
    keywords: str = "Classic"


_E = EventDef
# fmt: off
EVENTS: dict[int, EventDef] = {
    e.event_id: e
    for e in (
        _E(7000, SYSTEM, SCM, LEVEL_ERROR, "EVENT_SERVICE_START_FAILED",
           "The %1 service failed to start due to the following error: %n%2"),
        _E(7001, SYSTEM, SCM, LEVEL_ERROR, "EVENT_SERVICE_START_FAILED_II",
           "The %1 service depends on the %2 service which failed to start because of the "
           "following error: %n%3"),
        _E(7007, SYSTEM, SCM, LEVEL_ERROR, "EVENT_REVERTED_TO_LASTKNOWNGOOD",
           "The system reverted to its last known good configuration.  The system is "
           "restarting...."),
        _E(7009, SYSTEM, SCM, LEVEL_ERROR, "EVENT_CONNECTION_TIMEOUT",
           "A timeout was reached (%1 milliseconds) while waiting for the %2 service to "
           "connect."),
        _E(7011, SYSTEM, SCM, LEVEL_ERROR, "EVENT_TRANSACT_TIMEOUT",
           "A timeout (%1 milliseconds) was reached while waiting for a transaction response "
           "from the %2 service."),
        _E(7022, SYSTEM, SCM, LEVEL_ERROR, "EVENT_SERVICE_START_HUNG",
           "The %1 service hung on starting."),
        _E(7023, SYSTEM, SCM, LEVEL_ERROR, "EVENT_SERVICE_EXIT_FAILED",
           "The %1 service terminated with the following error: %n%2"),
        _E(7024, SYSTEM, SCM, LEVEL_ERROR, "EVENT_SERVICE_EXIT_FAILED_SPECIFIC",
           "The %1 service terminated with the following service-specific error: %n%2"),
        _E(7026, SYSTEM, SCM, LEVEL_ERROR, "EVENT_BOOT_SYSTEM_DRIVERS_FAILED",
           "The following boot-start or system-start driver(s) did not load: %n%1"),
        _E(7031, SYSTEM, SCM, LEVEL_ERROR, "EVENT_SERVICE_CRASH",
           "The %1 service terminated unexpectedly. It has done this %2 time(s). The "
           "following corrective action will be taken in %3 milliseconds: %5."),
        _E(7032, SYSTEM, SCM, LEVEL_ERROR, "EVENT_SERVICE_RECOVERY_FAILED",
           "The Service Control Manager tried to take a corrective action (%1) after the "
           "unexpected termination of the %2 service, but this action failed with the "
           "following error: %n%3"),
        _E(7034, SYSTEM, SCM, LEVEL_ERROR, "EVENT_SERVICE_CRASH_NO_ACTION",
           "The %1 service terminated unexpectedly. It has done this %2 time(s)."),
        _E(7036, SYSTEM, SCM, LEVEL_INFORMATION, "EVENT_SERVICE_STATUS_SUCCESS",
           "The %1 service entered the %2 state."),
        _E(7038, SYSTEM, SCM, LEVEL_ERROR, "EVENT_SERVICE_LOGON_FAILED",
           "The %1 service was unable to log on as %2 with the currently configured password "
           "due to the following error: %n%3%n%nTo ensure that the service is configured "
           "properly, use the Services snap-in in Microsoft Management Console (MMC)."),
        _E(7040, SYSTEM, SCM, LEVEL_INFORMATION, "EVENT_SERVICE_START_TYPE_CHANGED",
           "The start type of the %1 service was changed from %2 to %3."),
        _E(7043, SYSTEM, SCM, LEVEL_ERROR, "EVENT_SERVICE_SHUTDOWN_FAILED",
           "The %1 service did not shut down properly after receiving a preshutdown "
           "control."),
        _E(7045, SYSTEM, SCM, LEVEL_INFORMATION, "EVENT_SERVICE_INSTALLED",
           "A service was installed in the system.%n%nService Name:  %1%nService File Name:  "
           "%2%nService Type:  %3%nService Start Type:  %4%nService Account:  %5"),
        _E(6005, SYSTEM, EVENTLOG, LEVEL_INFORMATION, "EVENT_EventlogStarted",
           "The Event log service was started."),
        _E(6006, SYSTEM, EVENTLOG, LEVEL_INFORMATION, "EVENT_EventlogStopped",
           "The Event log service was stopped."),
        _E(6008, SYSTEM, EVENTLOG, LEVEL_ERROR, "EVENT_EventlogAbnormalShutdown",
           "The previous system shutdown at %1 on %2 was unexpected."),
        _E(6009, SYSTEM, EVENTLOG, LEVEL_INFORMATION, "EVENT_EventLogProductInfo",
           "Microsoft (R) Windows (R) %1 %2 %3 %4."),
        _E(1001, SYSTEM, "BugCheck", LEVEL_ERROR, "EVENT_BUGCHECK_SAVED",
           "The computer has rebooted from a bugcheck.  The bugcheck was: %1. A dump was "
           "saved in: %2. Report Id: %3."),
        _E(41, SYSTEM, "Microsoft-Windows-Kernel-Power", LEVEL_CRITICAL,
           "Kernel-Power 41",
           "The system has rebooted without cleanly shutting down first. This error could be "
           "caused if the system stopped responding, crashed, or lost power unexpectedly."),
        _E(26, SYSTEM, "Application Popup", LEVEL_INFORMATION, "STATUS_LOG_HARD_ERROR",
           "Application popup: %1 : %2"),
        _E(1015, SYSTEM, "Wininit", LEVEL_CRITICAL, "WININIT_CRITICAL_PROCESS_FAILED",
           "A critical system process, %1, failed with status code %2.  The machine must now "
           "be restarted."),
        _E(1074, SYSTEM, "User32", LEVEL_INFORMATION, "EVENT_SHUTDOWN_INITIATED",
           "The process %1 has initiated the %5 of computer %2 on behalf of user %7 for the "
           "following reason: %3%n Reason Code: %4%n Shutdown Type: %5%n Comment: %6"),
        # The modelled services' own events (System log, their real sources and texts).
        _E(2511, SYSTEM, "Server", LEVEL_ERROR, "EVENT_SRV_CANT_RECREATE_SHARE",
           "The server service was unable to recreate the share %1 because the directory %2 "
           "no longer exists."),
        _E(5719, SYSTEM, "NETLOGON", LEVEL_ERROR, "NELOG_NetlogonSSIInitError",
           "This computer was not able to set up a secure session with a domain controller in "
           "domain %1 due to the following: %n%2 %nThis may lead to authentication problems. "
           "Make sure that this computer is connected to the network. If the problem "
           "persists, please contact your domain administrator."),
        _E(35, SYSTEM, TIME_SERVICE, LEVEL_INFORMATION, "MSG_TIME_SOURCE_CHOSEN",
           "The time service is now synchronizing the system time with the time source %1."),
        _E(37, SYSTEM, TIME_SERVICE, LEVEL_INFORMATION, "MSG_TIME_SOURCE_REACHABLE",
           "The time provider NtpClient is currently receiving valid time data from %1."),
        _E(50, SYSTEM, TIME_SERVICE, LEVEL_WARNING, "MSG_TIME_CHANGE_TOO_BIG",
           "The time service detected a time difference of greater than %1 milliseconds for "
           "%2 seconds. The time difference might be caused by synchronization with "
           "low-accuracy time sources or by suboptimal network conditions. The time service "
           "is no longer synchronized and cannot provide the time to other clients or update "
           "the system clock. When a valid time stamp is received from a time service "
           "provider, the time service will correct itself."),
        _E(1500, SYSTEM, GROUP_POLICY, LEVEL_INFORMATION, "GPEVENT_SUCCESS_NO_CHANGES",
           "The Group Policy settings for the computer were processed successfully. There "
           "were no changes detected since the last successful processing of Group Policy."),
        _E(1502, SYSTEM, GROUP_POLICY, LEVEL_INFORMATION, "GPEVENT_SUCCESS_CHANGES",
           "The Group Policy settings for the computer were processed successfully. New "
           "settings from %1 Group Policy objects were detected and applied."),
        # Security log: the first line of each audit template; the fields follow as
        # insertion strings (Subject/Target names) once lsass reports them.
        _E(4624, SECURITY, AUDITING, LEVEL_INFORMATION, "SE_AUDITID_SUCCESSFUL_LOGON",
           "An account was successfully logged on.", "Audit Success"),
        _E(4625, SECURITY, AUDITING, LEVEL_INFORMATION, "SE_AUDITID_FAILED_LOGON",
           "An account failed to log on.", "Audit Failure"),
        _E(4634, SECURITY, AUDITING, LEVEL_INFORMATION, "SE_AUDITID_LOGOFF",
           "An account was logged off.", "Audit Success"),
        _E(4647, SECURITY, AUDITING, LEVEL_INFORMATION, "SE_AUDITID_BEGIN_LOGOFF",
           "User initiated logoff:", "Audit Success"),
        _E(4656, SECURITY, AUDITING, LEVEL_INFORMATION, "SE_AUDITID_OPEN_HANDLE",
           "A handle to an object was requested.", "Audit Failure"),
        _E(4720, SECURITY, AUDITING, LEVEL_INFORMATION, "SE_AUDITID_USER_CREATED",
           "A user account was created.", "Audit Success"),
        _E(4722, SECURITY, AUDITING, LEVEL_INFORMATION, "SE_AUDITID_USER_ENABLED",
           "A user account was enabled.", "Audit Success"),
        _E(4724, SECURITY, AUDITING, LEVEL_INFORMATION, "SE_AUDITID_USER_PWD_SET",
           "An attempt was made to reset an account's password.", "Audit Success"),
        _E(4725, SECURITY, AUDITING, LEVEL_INFORMATION, "SE_AUDITID_USER_DISABLED",
           "A user account was disabled.", "Audit Success"),
        _E(4726, SECURITY, AUDITING, LEVEL_INFORMATION, "SE_AUDITID_USER_DELETED",
           "A user account was deleted.", "Audit Success"),
        _E(4738, SECURITY, AUDITING, LEVEL_INFORMATION, "SE_AUDITID_USER_CHANGE",
           "A user account was changed.", "Audit Success"),
        _E(4740, SECURITY, AUDITING, LEVEL_INFORMATION, "SE_AUDITID_ACCOUNT_AUTO_LOCKED",
           "A user account was locked out.", "Audit Success"),
        _E(4767, SECURITY, AUDITING, LEVEL_INFORMATION, "SE_AUDITID_ACCOUNT_UNLOCKED",
           "A user account was unlocked.", "Audit Success"),
    )
}
# fmt: on


def format_message(template: str, strings: Sequence[str]) -> str:
    """FormatMessage with FORMAT_MESSAGE_ARGUMENT_ARRAY: ``%1``..``%99`` are insertion
    strings, ``%n`` a line break, ``%%`` a percent sign; a missing string stays ``%N``."""
    out: list[str] = []
    i, n = 0, len(template)
    while i < n:
        ch = template[i]
        if ch != "%" or i + 1 == n:
            out.append(ch)
            i += 1
            continue
        nxt = template[i + 1]
        if nxt == "n":
            out.append("\n")
            i += 2
        elif nxt == "%":
            out.append("%")
            i += 2
        elif nxt.isdigit():
            j = i + 1
            while j < n and j < i + 3 and template[j].isdigit():
                j += 1
            index = int(template[i + 1 : j])
            out.append(str(strings[index - 1]) if 0 < index <= len(strings) else template[i:j])
            i = j
        else:
            out.append(ch)
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class EventRecord:
    """One reported event, as EventLog stores it."""

    event_id: int
    log: str
    source: str
    level: int
    strings: tuple[str, ...]
    message: str
    record: str  # "<pid>:<seq>", unique within a boot: EventLog's de-duplication key
    data: bytes = b""

    def fields(self) -> dict[str, object]:
        """The ``event.report`` log fields (``nt/log.py`` adds ts, pid, image...)."""
        out: dict[str, object] = {
            "event_id": self.event_id,
            "log": self.log,
            "source": self.source,
            "event_level": LEVEL_NAMES.get(self.level, str(self.level)),
            "strings": list(self.strings),
            "message": self.message,
            "record": self.record,
        }
        if self.data:
            out["data"] = self.data.hex()
        return out


class EventSink(Protocol):
    def __call__(self, record: EventRecord) -> bool:
        """Deliver one record to EventLog; False when it could not (port gone)."""
        ...


class _Logger(Protocol):
    def info(self, event: str, **kw: object) -> object: ...

    def warning(self, event: str, **kw: object) -> object: ...

    def error(self, event: str, **kw: object) -> object: ...

    def critical(self, event: str, **kw: object) -> object: ...


# The log line's level follows the event's (``ntctl logs --level error`` finds 7031).
_LOG_METHOD = {LEVEL_CRITICAL: "critical", LEVEL_ERROR: "error", LEVEL_WARNING: "warning"}


@dataclass
class EventQueue:
    """Events reported before EventLog runs, handed over in order when it attaches."""

    max_pending: int = PENDING_MAX
    pending: deque[EventRecord] = field(default_factory=deque)
    dropped: int = 0
    sink: EventSink | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def post(self, record: EventRecord) -> None:
        with self.lock:
            if self.sink is not None and not self.pending:
                if self.sink(record):
                    return
                self.sink = None  # EventLog went away: queue until it is back
            if len(self.pending) >= self.max_pending:
                self.pending.popleft()
                self.dropped += 1
            self.pending.append(record)

    def attach(self, sink: EventSink) -> int:
        """Flush the waiting records to ``sink`` in order; returns how many went."""
        sent = 0
        with self.lock:
            while self.pending:
                if not sink(self.pending[0]):
                    return sent
                self.pending.popleft()
                sent += 1
            self.sink = sink
        return sent

    def detach(self) -> None:
        with self.lock:
            self.sink = None


EVENT_QUEUE = EventQueue()
_SEQ = itertools.count(1)


def report_event(
    logger: _Logger,
    event_id: int,
    strings: Sequence[object] = (),
    *,
    source: str | None = None,
    level: int | None = None,
    data: bytes = b"",
    queue: EventQueue | None = None,
    pid: int | None = None,
) -> EventRecord:
    """ReportEvent: log ``event.report`` with the rendered message and queue it for EventLog.

    ``source``/``level`` override the table (an event id can be raised by another
    source, as Windows allows); an id missing from the table is reported as Information
    with the insertion strings joined, so nothing is lost for want of a template.
    """
    texts = tuple(str(s) for s in strings)
    definition = EVENTS.get(event_id)
    if definition is None:
        log_name, src, lvl = APPLICATION, source or "Application", level or LEVEL_INFORMATION
        message = " ".join(texts)
    else:
        log_name = definition.log
        src = source or definition.source
        lvl = level or definition.level
        message = format_message(definition.template, texts)
    record = EventRecord(
        event_id=event_id,
        log=log_name,
        source=src,
        level=lvl,
        strings=texts,
        message=message,
        record=f"{os.getpid() if pid is None else pid}:{next(_SEQ)}",
        data=data,
    )
    getattr(logger, _LOG_METHOD.get(lvl, "info"))("event.report", **record.fields())
    (EVENT_QUEUE if queue is None else queue).post(record)
    return record


def record_from_log(line: dict[str, object]) -> EventRecord | None:
    """An ``event.report`` log line back as a record (EventLog's replay at its start)."""
    if line.get("event") != "event.report":
        return None
    try:
        level_name = str(line.get("event_level", "Information"))
        level = {v: k for k, v in LEVEL_NAMES.items()}.get(level_name, LEVEL_INFORMATION)
        raw = line.get("strings") or []
        strings = tuple(str(s) for s in raw) if isinstance(raw, list) else ()
        return EventRecord(
            event_id=int(str(line["event_id"])),
            log=str(line["log"]),
            source=str(line["source"]),
            level=level,
            strings=strings,
            message=str(line.get("message", "")),
            record=str(line["record"]),
            data=bytes.fromhex(str(line["data"])) if line.get("data") else b"",
        )
    except (KeyError, ValueError):
        return None


ReportFn = Callable[..., EventRecord]
