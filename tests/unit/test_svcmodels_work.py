"""The modelled services that do timed and queued work (Schedule, W32Time, BITS, gpsvc,
Spooler, TrustedInstaller) and their ports' tables, driven without a machine."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from nt.svcglobals import SYSTEM_CCS
from nt.syscalls import NtError
from ports import epmap, spoolss
from processes.spoolsv import spooler
from processes.svchost.dll import (
    gpsvc,
    qmgr,
    rpcepmap,
    schedsvc,
    w32time,
)
from processes.trustedinstaller import cbs
from tests.unit.svc_fakes import (
    REG_DWORD,
    REG_SZ,
    Running,
    base_registry,
    client,
    events_named,
    make,
    make_globals,
    reported,
    shipped_registry,
)

# A ServiceMain that raises on its thread is a failure here, not a warning.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")


SERVICES = f"{SYSTEM_CCS}\\Services"


# -- Schedule -------------------------------------------------------------------------------


class FakeKernel:
    def __init__(self, missing: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.created: list[tuple[str, str]] = []
        self.resumed: list[int] = []
        self.missing = missing
        self.exited: dict[int, int] = {}

    def create_process(
        self, image: str, command_line: str, environment: dict, session: int | None
    ) -> int:
        if image.lower().rsplit("\\", 1)[-1] in self.missing:
            raise NtError(0xC0000034, "NtCreateUserProcess")
        self.created.append((image, command_line))
        return 1000 + len(self.created)

    def resume(self, pid: int) -> None:
        self.resumed.append(pid)

    def query_process(self, pid: int) -> dict:
        if pid in self.exited:
            return {"state": "exited", "exit_status": self.exited[pid]}
        return {"state": "running", "exit_status": None}


def test_schedule_runs_a_task_at_its_time_records_the_result_and_repeats(tmp_path):
    reg = base_registry()
    task = f"{schedsvc.TASKS_KEY}\\{{A1B2C3D4-0000-0000-0000-000000000001}}"
    reg.set(task, "Path", REG_SZ, "\\Microsoft\\Windows\\Chkdsk\\ProactiveScan")
    reg.set(task, "Command", 2, "%SystemRoot%\\System32\\autochk.exe")
    reg.set(task, "Arguments", REG_SZ, "*")
    reg.set(task, "StartBoundary", REG_SZ, "2026-12-02T08:00:00Z")
    reg.set(task, "Interval", REG_DWORD, 3600)
    now = [datetime(2026, 12, 2, 7, 59, 59, tzinfo=UTC).timestamp()]
    kernel = FakeKernel()
    g = make_globals(tmp_path, registry=reg, kernel=kernel, clock=lambda: now[0])
    svc = make(schedsvc.ScheduleService, "Schedule", g)
    svc.on_start()
    assert reg.query_value(task, "NextRunTime")[1] == "2026-12-02T08:00:00Z"
    svc.poll()
    assert kernel.created == []  # one second early
    now[0] += 1
    svc.poll()
    assert kernel.created == [
        ("C:\\Windows\\System32\\autochk.exe", "C:\\Windows\\System32\\autochk.exe *")
    ]
    assert kernel.resumed == [1001]
    assert reg.query_value(task, "LastTaskResult")[1] == schedsvc.SCHED_S_TASK_RUNNING
    assert reg.query_value(task, "LastRunTime")[1] == "2026-12-02T08:00:00Z"
    assert reg.query_value(task, "NextRunTime")[1] == "2026-12-02T09:00:00Z"
    kernel.exited[1001] = 0
    svc.poll()
    assert reg.query_value(task, "LastTaskResult")[1] == 0
    assert events_named(g, "sched.task_completed")[0]["exit_status"] == 0
    now[0] += 3600
    svc.poll()
    assert len(kernel.created) == 2


def test_schedule_a_missing_image_is_0x80070002_and_a_once_task_does_not_repeat(tmp_path):
    reg = base_registry()
    task = f"{schedsvc.TASKS_KEY}\\{{B0000000-0000-0000-0000-000000000002}}"
    reg.set(task, "Path", REG_SZ, "\\Backup")
    reg.set(task, "Command", REG_SZ, "C:\\Tools\\backup.exe")
    reg.set(task, "StartBoundary", REG_SZ, "2026-12-02T08:00:00Z")
    now = [datetime(2026, 12, 2, 8, 0, 0, tzinfo=UTC).timestamp()]
    kernel = FakeKernel(missing={"backup.exe"})
    g = make_globals(tmp_path, registry=reg, kernel=kernel, clock=lambda: now[0])
    svc = make(schedsvc.ScheduleService, "Schedule", g)
    svc.on_start()
    svc.poll()
    assert reg.query_value(task, "LastTaskResult")[1] == 0x80070002
    assert reg.query_value(task, "NextRunTime")[1] == ""
    now[0] += 86400
    svc.poll()
    assert len(events_named(g, "sched.task_failed")) == 1


# -- W32Time --------------------------------------------------------------------------------


def test_w32time_measures_the_offset_and_logs_37_35_then_50_beyond_the_limit(tmp_path):
    g = make_globals(tmp_path, clock=lambda: 1000.0)
    svc = make(w32time.TimeService, "W32Time", g)
    svc.source_clock = lambda: 1000.25  # the source is 250 ms ahead
    svc.on_start()
    sample = events_named(g, "w32time.sample")[0]
    assert sample["offset_ms"] == 250.0 and sample["delay_ms"] == 0.0
    assert sample["source"] == "time.windows.com" and svc.interval == 604800
    assert reported(g) == [37, 35]
    svc.source_clock = lambda: 1000.0 + 400  # beyond MaxAllowedPhaseOffset (300 s)
    svc.poll()
    assert reported(g) == [37, 35, 50]
    assert events_named(g, "event.report")[-1]["message"].startswith(
        "The time service detected a time difference of greater than 300000 milliseconds"
    )


def test_ntp_offset_and_delay_formula():
    ticks = iter([10.0, 20.5, 20.5, 11.0])  # t1 local, t2 t3 source, t4 local
    offset, delay = w32time.ntp_sample(lambda: next(ticks), lambda: next(ticks))
    assert (offset, delay) == (10.0, 1.0)


# -- BITS -----------------------------------------------------------------------------------


def test_bits_transfers_in_chunks_resumes_after_a_restart_and_completes(tmp_path, monkeypatch):
    monkeypatch.setattr(qmgr, "CHUNK", 4)
    g = make_globals(tmp_path)
    src = tmp_path / "C" / "Source"
    src.mkdir(parents=True)
    (src / "setup.bin").write_bytes(b"0123456789")
    queue = qmgr.queue_dir(g)
    queue.mkdir(parents=True)
    (queue / "update.job").write_text(
        json.dumps(
            {
                "display_name": "Update",
                "files": [{"remote": "C:\\Source\\setup.bin", "local": "C:\\Dest\\setup.bin"}],
            }
        )
    )
    svc = make(qmgr.BitsService, "BITS", g)
    svc.on_start()
    svc.poll()
    job = json.loads((queue / "update.job").read_text())
    assert job["state"] == "TRANSFERRING" and job["files"][0]["bytes_transferred"] == 4
    svc = make(qmgr.BitsService, "BITS", g)  # a restart: progress is in the job file
    svc.on_start()
    svc.poll()
    svc.poll()
    assert json.loads((queue / "update.job").read_text())["files"][0]["bytes_transferred"] == 10
    svc.poll()
    assert (tmp_path / "C" / "Dest" / "setup.bin").read_bytes() == b"0123456789"
    assert not (queue / "update.job").exists() and not list(
        (tmp_path / "C" / "Dest").glob("BIT*.tmp")
    )
    assert events_named(g, "bits.job_acknowledged")[0]["bytes"] == 10


def test_bits_a_missing_source_is_an_error_said_once(tmp_path):
    g = make_globals(tmp_path)
    queue = qmgr.queue_dir(g)
    queue.mkdir(parents=True)
    (queue / "x.job").write_text(
        json.dumps({"files": [{"remote": "C:\\none", "local": "C:\\d\\none"}]})
    )
    svc = make(qmgr.BitsService, "BITS", g)
    svc.on_start()
    svc.poll()
    svc.poll()
    assert json.loads((queue / "x.job").read_text())["error"] == 0x80070002
    assert len(events_named(g, "bits.job_error")) == 1


# -- gpsvc ----------------------------------------------------------------------------------


def test_gpsvc_applies_policy_1502_then_1500_and_accepts_preshutdown_not_stop(tmp_path):
    reg = base_registry()
    reg.set(
        f"{gpsvc.POLICIES}\\Microsoft\\Windows\\WindowsUpdate\\AU", "NoAutoUpdate", REG_DWORD, 1
    )
    g = make_globals(tmp_path, registry=reg)
    gpsvc._SLOT.push(g)
    svc = Running(gpsvc.ServiceMain, "gpsvc")
    assert svc.wait(4)
    assert reported(g) == [1502]
    assert svc.control(6) == 0  # gpupdate: nothing changed
    assert reported(g) == [1502, 1500]
    reg.set(
        f"{gpsvc.POLICIES}\\Microsoft\\Windows\\WindowsUpdate\\AU", "NoAutoUpdate", REG_DWORD, 0
    )
    svc.control(6)
    assert reported(g) == [1502, 1500, 1502]
    assert svc.recorder.statuses[-1]["controls_accepted"] == 0x108
    assert svc.control(1) == 1052  # STOP: NOT_STOPPABLE
    assert svc.control(15) == 0  # PRESHUTDOWN
    svc.thread.join(30)
    assert svc.recorder.states[-2:] == [3, 1] and events_named(g, "gp.preshutdown")


def test_the_shipped_preshutdown_order_names_the_preshutdown_services():
    reg = shipped_registry()
    order = reg.query_value(f"{SYSTEM_CCS}\\Control", "PreshutdownOrder")[1]
    assert order == ["gpsvc", "trustedinstaller"]
    for name in order:
        assert reg.key_exists(f"{SERVICES}\\{name}")
    assert (
        gpsvc.GroupPolicyService.accepted & 0x100 and cbs.TrustedInstallerService.accepted & 0x100
    )


# -- Spooler --------------------------------------------------------------------------------


def spooler_with_printer(tmp_path: Path, attributes: int = 0xA40):
    reg = base_registry()
    key = f"{spooler.PRINTERS_KEY}\\Microsoft Print to PDF"
    reg.set(key, "Name", REG_SZ, "Microsoft Print to PDF")
    reg.set(key, "Port", REG_SZ, "PORTPROMPT:")
    reg.set(key, "Attributes", REG_DWORD, attributes)
    g = make_globals(tmp_path, registry=reg)
    svc = make(spooler.SpoolerService, "Spooler", g)
    svc.on_start()
    return g, svc


def submit(svc, document: str, *chunks: bytes) -> int:  # type: ignore[no-untyped-def]
    started = svc.RpcStartDocPrinter(
        {"printer": "microsoft print to pdf", "document": document, "datatype": "RAW"}, client()
    )
    assert started["error"] == 0
    for chunk in chunks:
        assert svc.RpcWritePrinter({"job_id": started["job_id"], "data": chunk}, client())[
            "written"
        ] == len(chunk)
    return started["job_id"]


def test_spooler_writes_the_job_to_the_spool_folder_then_prints_and_removes_it(tmp_path):
    g, svc = spooler_with_printer(tmp_path)
    job = submit(svc, "Report 1.txt", b"hello ", b"printer")
    shd, spl = svc._files(job)
    assert spl.read_bytes() == b"hello printer"
    assert shd.parent == tmp_path / "C" / "Windows" / "System32" / "spool" / "PRINTERS"
    assert spl.name == "FP00001.SPL" and json.loads(shd.read_text())["status"] == "SPOOLING"
    svc.poll()
    assert spl.exists()  # not ended: nothing printed yet
    assert svc.RpcEndDocPrinter({"job_id": job}, client()) == {"error": 0}
    queue = svc.RpcEnumJobs({"printer": "Microsoft Print to PDF"}, client())["jobs"]
    assert [(j["job_id"], j["status"], j["size"], j["user"]) for j in queue] == [
        (1, "SPOOLED", 13, "NTMODEL\\alice")
    ]
    svc.poll()
    out = tmp_path / "C" / "Users" / "Public" / "Documents" / "Report 1.txt"
    assert out.read_bytes() == b"hello printer"
    assert not shd.exists() and not spl.exists()
    assert events_named(g, "spool.job_printed")[0]["size"] == 13


def test_spooler_errors_keep_printed_and_restart_recovery(tmp_path):
    g, svc = spooler_with_printer(
        tmp_path, attributes=0xA40 | spooler.PRINTER_ATTRIBUTE_KEEPPRINTEDJOBS
    )
    assert (
        svc.RpcStartDocPrinter({"printer": "HP", "document": "x", "datatype": "RAW"}, client())[
            "error"
        ]
        == 1801
    )
    assert (
        svc.RpcStartDocPrinter(
            {"printer": "Microsoft Print to PDF", "document": "x", "datatype": "PCL"}, client()
        )["error"]
        == 1804
    )
    assert svc.RpcWritePrinter({"job_id": 99, "data": b"x"}, client())["error"] == 3003
    kept = submit(svc, "kept", b"k")
    svc.RpcEndDocPrinter({"job_id": kept}, client())
    svc.poll()
    assert json.loads(svc._files(kept)[0].read_text())["status"] == "PRINTED"  # kept
    queued = submit(svc, "queued", b"q")
    svc.RpcEndDocPrinter({"job_id": queued}, client())
    unfinished = submit(svc, "unfinished", b"u")
    # A restart (the process was stopped before it despooled): the SPOOLED job is picked
    # up again, the unfinished one deleted, and job ids go on from the highest.
    g2 = make_globals(tmp_path, registry=g.registry)
    again = make(spooler.SpoolerService, "Spooler", g2)
    again.on_start()
    assert not again._files(unfinished)[1].exists()
    assert sorted(again.jobs) == [kept, queued] and again.next_id == unfinished
    again.poll()
    assert (tmp_path / "C" / "Users" / "Public" / "Documents" / "queued").read_bytes() == b"q"


# -- TrustedInstaller ------------------------------------------------------------------------


def test_trustedinstaller_services_pending_packages_then_stops_by_itself(tmp_path):
    reg = base_registry()
    pkg = f"{cbs.PACKAGES}\\Package_for_KB5031356~31bf3856ad364e35~amd64~~19041.3570.1.8"
    old = f"{cbs.PACKAGES}\\Package_for_KB4000000~31bf3856ad364e35~amd64~~19041.1.1.1"
    reg.set(pkg, "CurrentState", REG_DWORD, cbs.CBS_INSTALL_PENDING)
    reg.set(old, "CurrentState", REG_DWORD, cbs.CBS_UNINSTALL_PENDING)
    g = make_globals(tmp_path, registry=reg, clock=lambda: 0.0)
    svc = make(cbs.TrustedInstallerService, "TrustedInstaller", g)
    svc.on_start()
    assert reg.query_value(pkg, "CurrentState")[1] == cbs.CBS_INSTALLED
    assert reg.query_value(old, "CurrentState")[1] == cbs.CBS_ABSENT
    filetime = (reg.query_value(pkg, "InstallTimeHigh")[1] << 32) | reg.query_value(
        pkg, "InstallTimeLow"
    )[1]
    assert filetime == cbs.EPOCH_AS_FILETIME  # the clock's 0 is 1970-01-01
    assert svc.serviced == 2
    svc.poll()  # nothing pending any more: it stops on its own
    assert svc.stop_event.is_set() and events_named(g, "cbs.idle_stop")


# -- the ports' handlers answer within their tables (request and reply schemas) -----------


def test_handlers_replies_match_their_api_tables(tmp_path):
    from ports import eventlog as ev
    from ports.contract import Reply, invoke
    from processes.svchost.dll import wevtsvc

    def call(protocol, handlers, name, body):  # type: ignore[no-untyped-def]
        api = protocol.by_name()[name]
        reply = invoke(api, handlers[api.number], body, client())
        assert isinstance(reply, Reply) and reply.status == 0, (name, reply)
        return reply.body

    g, svc = spooler_with_printer(tmp_path)
    h = svc.handlers()
    job = call(
        spoolss.SPOOLSS_PORT,
        h,
        "RpcStartDocPrinter",
        {"printer": "Microsoft Print to PDF", "document": "d"},
    )["job_id"]
    call(spoolss.SPOOLSS_PORT, h, "RpcWritePrinter", {"job_id": job, "data": b"abc"})
    call(spoolss.SPOOLSS_PORT, h, "RpcEndDocPrinter", {"job_id": job})
    assert (
        call(spoolss.SPOOLSS_PORT, h, "RpcEnumJobs", {"printer": "Microsoft Print to PDF"})["jobs"][
            0
        ]["size"]
        == 3
    )

    mapper = make(rpcepmap.EndpointMapperService, "RpcEptMapper", make_globals(tmp_path))
    mapper.on_start()
    h = mapper.handlers()
    entry = epmap.entry(spoolss.SPOOLSS_INTERFACE, "1.0", "ncacn_np:[\\pipe\\spoolss]")
    call(epmap.EPMAP_PORT, h, "ept_insert", {"entries": [entry]})
    assert call(epmap.EPMAP_PORT, h, "ept_lookup", {})["entries"]
    call(
        epmap.EPMAP_PORT,
        h,
        "ept_map",
        {"interface": entry["interface"], "version": "1.0", "protseq": "ncacn_np"},
    )
    call(epmap.EPMAP_PORT, h, "ept_delete", {"entries": [entry]})

    from nt.evtlog import EventLogStore
    from nt.evtmsg import EventQueue, report_event

    log = make(wevtsvc.EventLogService, "EventLog", make_globals(tmp_path))
    log.store = EventLogStore(tmp_path)
    h = log.handlers()
    record = report_event(log.log, 7036, ["Spooler", "running"], queue=EventQueue())
    body = {"event": ev.event_body(record, "2026-12-02T07:00:00.000000Z")}
    assert call(ev.EVENTLOG_PORT, h, "ElfrReportEventW", body)["duplicate"] is False
    read = call(ev.EVENTLOG_PORT, h, "ElfrReadELW", {"log": "System", "newest": 1})
    assert read["records"][0]["message"] == "The Spooler service entered the running state."
    assert call(ev.EVENTLOG_PORT, h, "ElfrNumberOfRecords", {"log": "System"}) == {"count": 1}
    log.store.close()
