"""The modelled services, each driven without a machine: a fake registry, a recording
ServiceContext, an injected clock and kernel. Every test says what the service does."""

from __future__ import annotations

import pytest

from nt.svcglobals import (
    SOFTWARE,
    SYSTEM_CCS,
    GlobalsSlot,
    ModelService,
    ServiceError,
    service_main,
)
from nt.syscalls import NtError
from ports import epmap
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
from tests.unit.svc_fakes import (
    REG_DWORD,
    REG_MULTI_SZ,
    REG_SZ,
    FakeRegistry,
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
