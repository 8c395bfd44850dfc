"""The modelled services, each driven without a machine: a fake registry, a recording
ServiceContext, an injected clock and kernel. Every test says what the service does."""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from nt.regfile import SetKey, SetValue, parse
from nt.sctrl import ServiceContext
from nt.svcglobals import (
    SOFTWARE,
    SYSTEM_CCS,
    GlobalsSlot,
    ModelService,
    ServiceError,
    service_main,
)
from nt.syscalls import NtError
from ports import epmap, spoolss
from ports.contract import ClientContext
from processes.spoolsv import spooler
from processes.svchost.dll import (
    gpsvc,
    mprdim,
    netlogon,
    qmgr,
    rpcepmap,
    rpcss,
    schedsvc,
    srvsvc,
    umpnpmgr,
    w32time,
    wkssvc,
)
from processes.trustedinstaller import cbs
from tests.unit.svc_fakes import (
    REG_DWORD,
    REG_MULTI_SZ,
    REG_SZ,
    FakeRegistry,
    Recorder,
    Running,
    base_registry,
    events_named,
    make_globals,
)

REPO = Path(__file__).resolve().parents[2]
SERVICES = f"{SYSTEM_CCS}\\Services"


@functools.cache
def shipped_ops() -> tuple:
    return tuple(
        op
        for n in ("SYSTEM.reg", "SOFTWARE.reg")
        for op in parse((REPO / "configs" / n).read_bytes())
    )


def shipped_registry() -> FakeRegistry:
    """configs/SYSTEM.reg and SOFTWARE.reg, as the first boot imports them."""
    reg = base_registry()
    for op in shipped_ops():
        path = op.path.replace("HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001", SYSTEM_CCS)
        path = path.replace("HKEY_LOCAL_MACHINE", "\\Registry\\Machine")
        if isinstance(op, SetKey):
            reg.create_key(path)
        elif isinstance(op, SetValue):
            reg.set(path, op.name, op.type, op.data)
    return reg


def make(cls: type[ModelService], name: str, g) -> ModelService:  # type: ignore[no-untyped-def]
    return cls(ServiceContext(name, 1, 0x20, Recorder()), [name], g)


def reported(g) -> list[int]:  # type: ignore[no-untyped-def]
    return [kw["event_id"] for kw in events_named(g, "event.report")]


def client(pid: int = 77) -> ClientContext:
    return ClientContext(pid, "app.exe", 1, {"user": "NTMODEL\\alice"}, 1, "p", {})


# -- the shared status protocol ---------------------------------------------------------


class Quiet(ModelService):
    def on_start(self) -> None:
        self.pending(5000)


class Failing(ModelService):
    def on_start(self) -> None:
        raise ServiceError(2, "no file")


def test_start_pending_checkpoints_then_running_then_stop_protocol(tmp_path):
    slot = GlobalsSlot()
    slot.push(make_globals(tmp_path))
    svc = Running(service_main(Quiet, slot), "Quiet")
    assert svc.wait(4)
    pending = [s for s in svc.recorder.statuses if s["current_state"] == 2]
    assert [s["check_point"] for s in pending] == [1, 2] and pending[1]["wait_hint"] == 5000
    running = svc.recorder.statuses[-1]
    assert running["controls_accepted"] == 0x1 | 0x4 and running["check_point"] == 0
    assert svc.control(4) == 0  # INTERROGATE
    assert svc.control(2) == 1052  # PAUSE not accepted: ERROR_INVALID_SERVICE_CONTROL
    assert svc.control(6) == 120  # PARAMCHANGE unhandled: ERROR_CALL_NOT_IMPLEMENTED
    svc.stop()
    assert svc.recorder.states[-2:] == [3, 1]


def test_a_failed_start_reports_stopped_with_its_error_and_no_globals_is_1054(tmp_path):
    slot = GlobalsSlot()
    slot.push(make_globals(tmp_path))
    svc = Running(service_main(Failing, slot), "Failing")
    svc.thread.join(30)
    assert svc.recorder.statuses[-1]["current_state"] == 1
    assert svc.recorder.statuses[-1]["win32_exit_code"] == 2
    bare = Running(service_main(Quiet, GlobalsSlot()), "Quiet")
    bare.thread.join(30)
    assert bare.recorder.statuses[-1]["win32_exit_code"] == 1054


def test_svchost_push_of_a_process_builds_the_globals(tmp_path):
    class Proc:
        log = make_globals(tmp_path).log
        nt = FakeRegistry()
        root = tmp_path
        params = {"boot_id": "b"}
        lpc = None
        image = "svchost.exe"

    slot = GlobalsSlot()
    slot.push({"process": Proc()})
    assert slot.get().boot_id == "b" and slot.get().registry is Proc.nt


def test_pause_and_continue_where_accepted(tmp_path):
    g = make_globals(tmp_path)
    wkssvc._SLOT.push(g)
    svc = Running(wkssvc.ServiceMain, "LanmanWorkstation")
    assert svc.wait(4)
    assert svc.control(2) == 0 and svc.recorder.statuses[-1]["current_state"] == 7
    assert svc.recorder.statuses[-1]["controls_accepted"] == 0x7
    assert svc.control(3) == 0 and svc.recorder.statuses[-1]["current_state"] == 4
    svc.stop()
    # Where it departs from Windows is said, as a divergence event, when it starts.
    assert any("Bowser" in d["what"] for d in events_named(g, "divergence"))


# -- RpcEptMapper and RpcSs ---------------------------------------------------------------


def test_endpoint_map_insert_replace_delete_lookup_map_and_dead_servers():
    alive = {10, 20}
    m = rpcepmap.EndpointMap(alive=lambda pid: pid in alive)
    ev = epmap.entry("82273fdc-e32a-18c3-3f78-827929dc23ea", "0.0", "ncalrpc:[eventlog]")
    sp = epmap.entry("12345678-1234-abcd-ef00-0123456789ab", "1.0", "ncacn_np:[\\pipe\\spoolss]")
    assert m.insert([ev], 10, "EventLog") == 0
    assert m.insert([sp], 20, "Spooler") == 0
    moved = {**ev, "binding": "ncalrpc:[eventlog2]"}
    m.insert([moved], 10, "EventLog")  # RpcEpRegister replaces this server's older entry
    assert [e["binding"] for e in m.lookup(ev["interface"])] == ["ncalrpc:[eventlog2]"]
    assert m.map(sp["interface"], "1.0", "ncacn_np") == "ncacn_np:[\\pipe\\spoolss]"
    assert m.map(sp["interface"], "2.0", "ncacn_np") is None  # another major version
    assert m.delete([ev]) == epmap.EPT_S_NOT_REGISTERED
    alive.discard(20)  # the spooler died without unregistering
    assert m.map(sp["interface"], "1.0", "ncacn_np") is None
    assert m.delete([moved]) == 0 and m.lookup() == []


def test_epmapper_service_serves_the_ept_handlers_and_cannot_be_stopped(tmp_path):
    g = make_globals(tmp_path)
    svc = make(rpcepmap.EndpointMapperService, "RpcEptMapper", g)
    svc.on_start()
    entry = epmap.entry("6bffd098-a112-3610-9833-46c3f87e345a", "1.0", "ncacn_np:[\\pipe\\wkssvc]")
    import os

    me = client(pid=os.getpid())
    assert svc.ept_insert(
        {"entries": [entry], "replace": True, "service": "LanmanWorkstation"}, me
    ) == {"status": 0}
    found = svc.ept_lookup({"interface": None, "max_ents": 500}, me)["entries"]
    assert {e["service"] for e in found} == {"RpcEptMapper", "LanmanWorkstation"}
    assert (
        svc.ept_map({"interface": entry["interface"], "version": "1.0", "protseq": "ncacn_np"}, me)[
            "binding"
        ]
        == entry["binding"]
    )
    assert svc.handler(1) == 1052  # NOT_STOPPABLE, as on Windows


def test_rpcss_runs_without_the_mapper_and_says_it_could_not_register(tmp_path):
    g = make_globals(tmp_path)
    svc = make(rpcss.RpcSsService, "RpcSs", g)
    svc.on_start()
    assert svc.epm_status == epmap.EPT_S_CANT_PERFORM_OP


# -- PlugPlay -------------------------------------------------------------------------------


def test_plugplay_enumerates_the_shipped_device_tree_and_sees_arrivals_and_removals(tmp_path):
    reg = shipped_registry()
    g = make_globals(tmp_path, registry=reg)
    svc = make(umpnpmgr.PlugPlayService, "PlugPlay", g)
    svc.on_start()
    devices = events_named(g, "pnp.device")
    assert len(devices) == 5 and events_named(g, "pnp.enumerated")[0]["devices"] == 5
    disk = next(d for d in devices if d["device_class"] == "DiskDrive")
    assert disk["description"] == "QEMU HARDDISK" and disk["driver_service"] == "disk"
    ahci = next(d for d in devices if d["driver_service"] == "storahci")
    assert ahci["description"] == "Standard SATA AHCI Controller"
    usb = f"{umpnpmgr.ENUM}\\USB\\VID_0627&PID_0001\\28754-0000:00:04.0-1"
    reg.set(usb, "DeviceDesc", REG_SZ, "USB Input Device")
    reg.delete_key(f"{umpnpmgr.ENUM}\\ROOT\\BasicDisplay\\0000")
    svc.poll()
    assert [a["instance_id"] for a in events_named(g, "pnp.arrival")] == [usb.split("Enum\\", 1)[1]]
    assert [r["instance_id"] for r in events_named(g, "pnp.removal")] == [
        "ROOT\\BasicDisplay\\0000"
    ]


# -- LanmanServer, LanmanWorkstation, Netlogon, RemoteAccess --------------------------------


def test_server_creates_admin_and_configured_shares_and_2511_for_a_missing_directory(tmp_path):
    reg = base_registry()
    (tmp_path / "C" / "Windows").mkdir(parents=True)
    (tmp_path / "C" / "Users" / "Public").mkdir(parents=True)
    reg.set(
        srvsvc.SHARES_KEY,
        "Public",
        REG_MULTI_SZ,
        [
            "CSCFlags=0",
            "MaxUses=4294967295",
            "Path=C:\\Users\\Public",
            "Permissions=0",
            "Remark=",
            "Type=0",
        ],
    )
    reg.set(srvsvc.SHARES_KEY, "Gone", REG_MULTI_SZ, ["Path=C:\\Nowhere", "Type=0"])
    g = make_globals(tmp_path, registry=reg)
    svc = make(srvsvc.ServerService, "LanmanServer", g)
    svc.on_start()
    assert sorted(s["share"] for s in events_named(g, "srv.share_created")) == [
        "ADMIN$",
        "C$",
        "IPC$",
        "Public",
    ]
    assert reported(g) == [2511]
    assert events_named(g, "event.report")[0]["message"] == (
        "The server service was unable to recreate the share Gone because the directory "
        "C:\\Nowhere no longer exists."
    )
    svc.poll()
    assert reported(g) == [2511]  # said once, not at every poll
    (tmp_path / "C" / "Nowhere").mkdir()
    reg.delete_value(srvsvc.SHARES_KEY, "Public")
    svc.poll()
    assert "Gone" in [s["share"] for s in events_named(g, "srv.share_created")]
    assert [s["share"] for s in events_named(g, "srv.share_deleted")] == ["Public"]


def test_workstation_restores_persistent_connections_to_local_shares_only(tmp_path):
    reg = base_registry()
    reg.set(srvsvc.SHARES_KEY, "Public", REG_MULTI_SZ, ["Path=C:\\Users\\Public"])
    reg.set(f"{wkssvc.NETWORK_KEY}\\z", "RemotePath", REG_SZ, "\\\\NTMODEL\\Public")
    reg.set(f"{wkssvc.NETWORK_KEY}\\y", "RemotePath", REG_SZ, "\\\\fileserver\\home")
    g = make_globals(tmp_path, registry=reg)
    svc = make(wkssvc.WorkstationService, "LanmanWorkstation", g)
    svc.on_start()
    assert svc.uses == {"Y:": "Unavailable", "Z:": "OK"}
    assert svc.info["computer_name"] == "NTMODEL" and svc.info["lan_group"] == "WORKGROUP"


def test_netlogon_in_a_workgroup_is_quiet_and_in_a_domain_without_dc_logs_5719(tmp_path):
    reg = base_registry()
    g = make_globals(tmp_path, registry=reg)
    svc = make(netlogon.NetlogonService, "Netlogon", g)
    svc.on_start()
    assert reported(g) == [] and events_named(g, "netlogon.workgroup")
    reg.set(svc.params_key, "DomainName", REG_SZ, "corp")
    assert svc.handler(6) == 0  # PARAMCHANGE reads the domain again
    assert reported(g) == [5719]
    message = events_named(g, "event.report")[0]["message"]
    assert message.startswith(
        "This computer was not able to set up a secure session with a domain controller in domain CORP"
    )
    assert netlogon.NO_LOGON_SERVERS_TEXT in message


def test_remote_access_brings_up_its_interfaces(tmp_path):
    reg = base_registry()
    reg.set(f"{mprdim.INTERFACES_KEY}\\1", "InterfaceName", REG_SZ, "Loopback")
    reg.set(f"{mprdim.INTERFACES_KEY}\\2", "InterfaceName", REG_SZ, "Internal")
    g = make_globals(tmp_path, registry=reg)
    reg.set(f"{SERVICES}\\RemoteAccess\\Parameters", "RouterType", REG_DWORD, 7)
    svc = make(mprdim.RemoteAccessService, "RemoteAccess", g)
    svc.on_start()
    started = events_named(g, "rras.started")[0]
    assert started["interfaces"] == 2 and started["roles"] == [
        "LAN routing",
        "remote access server",
        "demand-dial routing",
    ]
    svc.on_stop(1)
    assert [e["interface"] for e in events_named(g, "rras.interface_down")] == [
        "Loopback",
        "Internal",
    ]


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


@pytest.mark.parametrize(
    "module",
    [gpsvc, mprdim, netlogon, qmgr, rpcepmap, rpcss, schedsvc, srvsvc, umpnpmgr, w32time, wkssvc],
)
def test_every_shipped_servicedll_names_a_module_with_servicemain_and_the_push(module):
    reg = shipped_registry()
    base = module.__name__.rsplit(".", 1)[1]
    dlls = []
    for name in reg.enum_keys(SERVICES):
        try:
            dlls.append(str(reg.query_value(f"{SERVICES}\\{name}\\Parameters", "ServiceDll")[1]))
        except NtError:
            continue
    assert base in {d.rsplit("\\", 1)[1][:-4].lower() for d in dlls}
    assert callable(module.ServiceMain) and callable(module.SvchostPushServiceGlobals)


def test_every_svchost_group_lists_services_with_that_group_in_their_image_path():
    reg = shipped_registry()
    key = f"{SOFTWARE}\\Microsoft\\Windows NT\\CurrentVersion\\Svchost"
    for group, _type, names, *_ in reg.enum_values(key):
        for name in names:
            image = str(reg.query_value(f"{SERVICES}\\{name}", "ImagePath")[1])
            assert f"-k {group.lower()}" in image.lower(), (group, name, image)


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
