"""schedsvc.dll: Task Scheduler (Schedule, svchost -k netsvcs).

Runs registered tasks at their time. A task is a key
``SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Schedule\\TaskCache\\Tasks\\{GUID}``
(where Windows keeps its task cache) with plain values instead of Windows' binary
``Actions``/``Triggers``/``DynamicInfo`` blobs (a divergence the README lists):

- ``Path`` (REG_SZ) the task's name, ``\\Microsoft\\Windows\\Chkdsk\\ProactiveScan``;
- ``Command`` (REG_EXPAND_SZ) the image to run and ``Arguments`` (REG_SZ);
- ``StartBoundary`` (REG_SZ, ISO 8601; local time without a zone, as Task Scheduler
  reads it) and ``Interval`` (REG_DWORD, seconds; 0 runs once);
- ``Enabled`` (REG_DWORD, default 1) and ``StartWhenAvailable`` (run a missed start once).

At its time the service creates the process through the kernel (NtCreateUserProcess in
session 0, then resumes it), and writes back ``LastRunTime``, ``NextRunTime`` and
``LastTaskResult`` (0x41301 SCHED_S_TASK_RUNNING while it runs, then its exit status, or
the HRESULT of a failed start such as 0x80070002 for a missing image).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from nt import winsvc as ws
from nt.svcglobals import SOFTWARE, GlobalsSlot, ModelService, service_main
from processes.svchost.dll import IF_ATSVC, IF_ITASKSCHEDULER, endpoints, publish

TASKS_KEY = f"{SOFTWARE}\\Microsoft\\Windows NT\\CurrentVersion\\Schedule\\TaskCache\\Tasks"
REG_SZ, REG_DWORD = 1, 4
SCHED_S_TASK_RUNNING = 0x00041301
SCHED_S_TASK_HAS_NOT_RUN = 0x00041303
STATUS_OBJECT_NAME_NOT_FOUND = 0xC0000034
E_FILE_NOT_FOUND = 0x80070002


def hresult_from_nt(status: int) -> int:
    """A failed start's LastTaskResult (the image missing is ERROR_FILE_NOT_FOUND's HRESULT)."""
    return E_FILE_NOT_FOUND if status == STATUS_OBJECT_NAME_NOT_FOUND else (status | 0x10000000)


def parse_boundary(text: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.astimezone()


@dataclass
class Task:
    guid: str
    path: str
    command: str
    arguments: str
    start: datetime | None
    interval: int
    enabled: bool
    start_when_available: bool
    next_run: datetime | None = None
    pid: int | None = None


class ScheduleService(ModelService):
    divergences: ClassVar[tuple[str, ...]] = (
        "tasks as plain TaskCache values, not the Actions/Triggers blobs and XML",
    )
    accepted: ClassVar[int] = ws.SERVICE_ACCEPT_STOP | ws.SERVICE_ACCEPT_SHUTDOWN
    interval: ClassVar[float | None] = 1.0  # the scheduler's tick

    def on_start(self) -> None:
        self.tasks: dict[str, Task] = {}
        self.load()
        publish(
            self,
            endpoints(
                (IF_ITASKSCHEDULER, "ncalrpc:[ubpmtaskhostchannel]", ""),
                (IF_ATSVC, "ncacn_np:[\\pipe\\atsvc]", ""),
            ),
        )

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.g.clock(), UTC)

    def _task(self, guid: str) -> Task | None:
        key = f"{TASKS_KEY}\\{guid}"
        command = str(self.g.value(key, "Command", "") or "")
        if not command:
            return None
        return Task(
            guid,
            str(self.g.value(key, "Path", guid)),
            command,
            str(self.g.value(key, "Arguments", "") or ""),
            parse_boundary(str(self.g.value(key, "StartBoundary", "") or "")),
            int(self.g.value(key, "Interval", 0) or 0),
            bool(self.g.value(key, "Enabled", 1)),
            bool(self.g.value(key, "StartWhenAvailable", 0)),
        )

    def load(self) -> None:
        """Read the task cache; new or changed tasks get their next run time."""
        try:
            guids = self.g.registry.enum_keys(TASKS_KEY)
        except Exception:
            guids = []
        now = self.now()
        seen = set()
        for guid in guids:
            task = self._task(guid)
            if task is None:
                continue
            seen.add(guid.lower())
            old = self.tasks.get(guid.lower())
            if old is not None and (old.command, old.start, old.interval, old.enabled) == (
                task.command,
                task.start,
                task.interval,
                task.enabled,
            ):
                continue
            task.next_run = self._first_run(task, now)
            if old is not None:
                task.pid = old.pid
            else:
                self.log.info(
                    "sched.task_registered", task=task.path, next_run=_text(task.next_run)
                )
            self.tasks[guid.lower()] = task
            self._set(task, "NextRunTime", REG_SZ, _text(task.next_run))
        for gone in [g for g in self.tasks if g not in seen]:
            self.log.info("sched.task_deleted", task=self.tasks.pop(gone).path)

    def _first_run(self, task: Task, now: datetime) -> datetime | None:
        if not task.enabled or task.start is None:
            return None
        if task.start >= now:
            return task.start
        last = parse_boundary(
            str(self.g.value(f"{TASKS_KEY}\\{task.guid}", "LastRunTime", "") or "")
        )
        if task.start_when_available and (last is None or last < task.start):
            return now  # a missed start runs once, now
        if task.interval <= 0:
            return None
        steps = int((now - task.start).total_seconds() // task.interval) + 1
        return task.start + timedelta(seconds=steps * task.interval)

    def poll(self) -> None:
        self.load()
        now = self.now()
        for task in self.tasks.values():
            if task.pid is not None:
                self._check_exit(task)
            if task.next_run is not None and now >= task.next_run and task.pid is None:
                self.run_task(task, now)

    def run_task(self, task: Task, now: datetime) -> None:
        image = task.command.replace("%SystemRoot%", "C:\\Windows").replace(
            "%systemroot%", "C:\\Windows"
        )
        command_line = f"{image} {task.arguments}".strip()
        self._set(task, "LastRunTime", REG_SZ, _text(now))
        result = SCHED_S_TASK_RUNNING
        try:
            if self.g.kernel is None:
                raise RuntimeError("no kernel")
            pid = self.g.kernel.create_process(
                image, command_line, {"SystemRoot": "C:\\Windows"}, 0
            )
            self.g.kernel.resume(pid)
            task.pid = pid
            self.log.info(
                "sched.task_started", task=task.path, command_line=command_line, child_pid=pid
            )
        except Exception as exc:
            status = int(getattr(exc, "status", 0xC0000001))
            result = hresult_from_nt(status)
            self.log.error(
                "sched.task_failed",
                task=task.path,
                command_line=command_line,
                result=f"0x{result:08X}",
            )
        self._set(task, "LastTaskResult", REG_DWORD, result)
        if task.interval > 0:
            while task.next_run is not None and task.next_run <= now:
                task.next_run += timedelta(seconds=task.interval)
        else:
            task.next_run = None
        self._set(task, "NextRunTime", REG_SZ, _text(task.next_run))

    def _check_exit(self, task: Task) -> None:
        assert task.pid is not None and self.g.kernel is not None
        try:
            record = self.g.kernel.query_process(task.pid)
        except Exception:
            record = {"state": "exited", "exit_status": None}
        if record.get("exit_status") is None and record.get("state") not in (
            "exited",
            "terminated",
        ):
            return
        status = record.get("exit_status")
        self.log.info(
            "sched.task_completed", task=task.path, child_pid=task.pid, exit_status=status
        )
        self._set(task, "LastTaskResult", REG_DWORD, int(status or 0) & 0xFFFFFFFF)
        task.pid = None

    def _set(self, task: Task, name: str, type: int, data: Any) -> None:
        try:
            self.g.registry.set_value(f"{TASKS_KEY}\\{task.guid}", name, type, data)
        except Exception as exc:  # the task was deleted under us: the next load drops it
            self.log.debug("sched.state_not_saved", task=task.path, why=str(exc))


def _text(when: datetime | None) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if when is not None else ""


_SLOT = GlobalsSlot()
SvchostPushServiceGlobals = _SLOT.push
ServiceMain = service_main(ScheduleService, _SLOT)
