"""The svcctl handlers over the SCM core (processes/services/rpcserver.py, config.py),
each request checked against its ports/svcctl.py schema first, as the port does."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from ports import svcctl as sv
from ports.schema import SchemaError, validate
from ports.server import PENDING
from processes.services.rpcserver import SvcctlServer
from tests.unit.scm_fakes import Machine, service

SYSTEM = {
    "user": "SYSTEM",
    "sid": "S-1-5-18",
    "groups": ["S-1-5-32-544", "S-1-1-0", "S-1-5-11"],  # as the kernel's SYSTEM token
    "privileges": [],
}
# An interactive user's token: Users, INTERACTIVE, Authenticated Users.
USER = {
    "user": "alice",
    "sid": "S-1-5-21-1-1001",
    "groups": ["S-1-5-32-545", "S-1-5-4", "S-1-5-11"],
    "privileges": [],
}
APIS = sv.SVCCTL_PORT.by_name()


@dataclass
class Deferred:
    results: list = field(default_factory=list)

    def complete(self, status: int, body: dict | None = None) -> None:
        self.results.append((status, body))


@dataclass
class Caller:
    token: dict
    pid: int = 4242
    conn_id: int = 1
    deferred: Deferred = field(default_factory=Deferred)

    def defer(self) -> Deferred:
        return self.deferred


class Store:
    def __init__(self) -> None:
        self.written: list[str] = []
        self.deleted: list[str] = []

    def write_service(self, record) -> None:
        self.written.append(record.name)

    def delete_service(self, name: str) -> None:
        self.deleted.append(name)


def call(server: SvcctlServer, name: str, caller: Caller, **body) -> dict | object:
    api = APIS[name]
    message = validate(
        api.request, {k: v for k, v in body.items() if v is not None}
    )  # None: omitted
    result = getattr(server, name)(message, caller)
    if result is not PENDING:
        validate(api.reply, result)  # replies match their schema too
    return result


@pytest.fixture
def env():
    m = Machine(
        service("Spooler", display_name="Print Spooler"),
        service("Dep", depend_on_service=["Spooler"]),
    )
    m.core.store = Store()
    return m, SvcctlServer(m.core)


def open_service(server, caller, name="Spooler", access=sv.SERVICE_ALL_ACCESS):
    scm = call(
        server,
        "ROpenSCManagerW",
        caller,
        machine_name=None,
        database_name=None,
        desired_access=sv.SC_MANAGER_ALL_ACCESS
        if caller.token is SYSTEM
        else sv.SC_MANAGER_CONNECT,
    )
    assert scm["error"] == 0
    return scm["handle"], call(
        server,
        "ROpenServiceW",
        caller,
        scm_handle=scm["handle"],
        service_name=name,
        desired_access=access,
    )


def test_table_has_every_opnum(env):
    _, server = env
    assert sorted(server.table()) == sorted(a.number for a in sv.SVCCTL_APIS)
    assert sv.SVCCTL_PORT.by_name()["RNotifyBootConfigStatus"].number == 9


def test_open_start_query_round_trip(env):
    m, server = env
    caller = Caller(SYSTEM)
    _, opened = open_service(server, caller, "spooler")  # names are case-insensitive
    handle = opened["handle"]
    assert call(server, "RStartServiceW", caller, handle=handle, argv=[]) is PENDING
    pid, _ = m.connect()
    m.ack_all(pid)
    assert caller.deferred.results == [(0, {"error": 0})]
    status = call(server, "RQueryServiceStatusEx", caller, handle=handle, info_level=0)
    assert status["status"]["current_state"] == sv.SERVICE_START_PENDING
    assert status["status"]["process_id"] == pid
    # RSetServiceStatus only from the service's own process
    report = {**status["status"]}
    report.pop("process_id"), report.pop("service_flags")
    report["current_state"] = sv.SERVICE_RUNNING
    tag = m.db.get("Spooler").service_tag
    assert (
        call(server, "RSetServiceStatus", Caller(SYSTEM, pid=1), status_handle=tag, status=report)[
            "error"
        ]
        == 6
    )
    assert (
        call(
            server, "RSetServiceStatus", Caller(SYSTEM, pid=pid), status_handle=tag, status=report
        )["error"]
        == 0
    )
    assert m.state("Spooler") == sv.SERVICE_RUNNING


def test_unknown_service_and_foreign_handles(env):
    _, server = env
    caller = Caller(SYSTEM)
    _, missing = open_service(server, caller, "Nope")
    assert missing["error"] == 1060
    _, opened = open_service(server, caller)
    other = Caller(SYSTEM, conn_id=2)
    assert call(server, "RQueryServiceStatus", other, handle=opened["handle"])["error"] == 6
    server.client_gone(1)
    assert call(server, "RQueryServiceStatus", caller, handle=opened["handle"])["error"] == 6


def test_a_plain_user_may_query_but_not_control(env):
    _, server = env
    caller = Caller(USER)
    _, denied = open_service(server, caller, access=sv.SERVICE_STOP)
    assert denied["error"] == 5
    _, opened = open_service(server, caller, access=sv.SERVICE_QUERY_STATUS)
    assert opened["error"] == 0
    assert call(server, "RControlService", caller, handle=opened["handle"], control=1)["error"] == 5
    scm = call(
        server,
        "ROpenSCManagerW",
        caller,
        machine_name=None,
        database_name=None,
        desired_access=sv.SC_MANAGER_CREATE_SERVICE,
    )
    assert scm["error"] == 5
    assert (
        call(server, "RNotifyBootConfigStatus", caller, machine_name=None, boot_acceptable=1)[
            "error"
        ]
        == 5
    )


def test_control_replies_carry_status_and_errors(env):
    _, server = env
    caller = Caller(SYSTEM)
    _, opened = open_service(server, caller)
    assert call(server, "RControlService", caller, handle=opened["handle"], control=1) is PENDING
    assert caller.deferred.results[0][1]["error"] == 1062
    assert (
        call(server, "RControlService", caller, handle=opened["handle"], control=99)["error"] == 87
    )


def create(server, caller, scm, name, **kw):
    body = {
        "scm_handle": scm,
        "service_name": name,
        "display_name": kw.pop("display_name", None),
        "desired_access": sv.SERVICE_ALL_ACCESS,
        "service_type": kw.pop("service_type", 0x10),
        "start_type": kw.pop("start_type", 3),
        "error_control": 1,
        "binary_path_name": r"C:\x.exe",
        "load_order_group": None,
        "dependencies": kw.pop("dependencies", None),
        "service_start_name": None,
        "password": None,
    }
    return call(server, "RCreateServiceW", caller, **body)


def test_create_change_delete(env):
    m, server = env
    caller = Caller(SYSTEM)
    scm, _ = open_service(server, caller)
    made = create(
        server, caller, scm, "NewSvc", display_name="New Service", dependencies=["Spooler", "+TDI"]
    )
    assert made["error"] == 0
    assert m.core.reported[-1].message.startswith(
        "A service was installed in the system.\n\nService Name:  NewSvc\n"
    )
    assert create(server, caller, scm, "newsvc")["error"] == 1073
    assert create(server, caller, scm, "Other", display_name="Print Spooler")["error"] == 1078
    assert create(server, caller, scm, "Bad/Name")["error"] == 123
    assert (
        create(server, caller, scm, "Boot", start_type=0)["error"] == 87
    )  # Win32 cannot boot-start
    assert create(server, caller, scm, "Loop", dependencies=["Loop"])["error"] == 1059
    qc = call(server, "RQueryServiceConfigW", caller, handle=made["handle"])["config"]
    assert qc["dependencies"] == ["Spooler", "+TDI"] and qc["service_start_name"] == "LocalSystem"
    change = {
        "handle": made["handle"],
        "service_type": sv.SERVICE_NO_CHANGE,
        "start_type": 2,
        "error_control": sv.SERVICE_NO_CHANGE,
        "binary_path_name": None,
        "load_order_group": None,
        "dependencies": None,
        "service_start_name": None,
        "password": None,
        "display_name": None,
    }
    assert call(server, "RChangeServiceConfigW", caller, **change)["error"] == 0
    assert (
        m.core.reported[-1].message
        == "The start type of the New Service service was changed from demand start to auto start."
    )
    # Spooler -> NewSvc -> Spooler would be a cycle
    _, spooler = open_service(server, caller)
    assert (
        call(
            server,
            "RChangeServiceConfigW",
            caller,
            **{
                **change,
                "handle": spooler["handle"],
                "start_type": sv.SERVICE_NO_CHANGE,
                "dependencies": ["NewSvc"],
            },
        )["error"]
        == 1059
    )
    fa = {
        "reset_period": 86400,
        "actions": [{"type": 1, "delay": 60000}],
    }
    assert (
        call(
            server,
            "RChangeServiceConfig2W",
            caller,
            handle=made["handle"],
            info_level=2,
            info={"failure_actions": fa},
        )["error"]
        == 0
    )
    assert (
        call(
            server, "RChangeServiceConfig2W", caller, handle=made["handle"], info_level=1, info={}
        )["error"]
        == 87
    )
    got = call(server, "RQueryServiceConfig2W", caller, handle=made["handle"], info_level=2)["info"]
    assert got["failure_actions"] == fa
    assert call(server, "RDeleteService", caller, handle=made["handle"])["error"] == 0
    assert m.db.get("NewSvc") is None and m.core.store.deleted == ["NewSvc"]
    assert "NewSvc" in m.core.store.written


def test_delete_running_marks_it(env):
    m, server = env
    caller = Caller(SYSTEM)
    m.run("Spooler")
    _, opened = open_service(server, caller)
    assert call(server, "RDeleteService", caller, handle=opened["handle"])["error"] == 0
    assert call(server, "RDeleteService", caller, handle=opened["handle"])["error"] == 1072
    assert call(server, "RStartServiceW", caller, handle=opened["handle"], argv=[]) is PENDING
    assert caller.deferred.results[-1][1]["error"] in (1056, 1072)


def test_enumeration_pages_and_dependents(env):
    m, server = env
    for i in range(300):
        m.db.add(service(f"Extra{i:03d}", start=3))
    caller = Caller(SYSTEM)
    scm, opened = open_service(server, caller)
    first = call(
        server,
        "REnumServicesStatusExW",
        caller,
        scm_handle=scm,
        service_type=sv.SERVICE_WIN32,
        service_state=3,
        info_level=0,
    )
    assert first["error"] == 234 and first["more_data"] and len(first["services"]) == sv.ENUM_PAGE
    rest = call(
        server,
        "REnumServicesStatusExW",
        caller,
        scm_handle=scm,
        service_type=sv.SERVICE_WIN32,
        service_state=3,
        info_level=0,
        resume_index=first["resume_index"],
    )
    assert rest["error"] == 0 and len(first["services"]) + len(rest["services"]) == 302
    deps = call(server, "REnumDependentServicesW", caller, handle=opened["handle"], service_state=3)
    assert [d["service_name"] for d in deps["services"]] == ["Dep"]
    names = call(
        server, "RGetServiceKeyNameW", caller, scm_handle=scm, display_name="print spooler"
    )
    assert names == {"error": 0, "service_name": "Spooler"}
    bogus = call(server, "RGetServiceDisplayNameW", caller, scm_handle=0x7777, service_name="x")
    assert bogus["error"] == 6  # ERROR_INVALID_HANDLE: every routine checks its handle


def test_lock_and_boot_acceptance(env):
    m, server = env
    caller = Caller(SYSTEM)
    scm, opened = open_service(server, caller)
    assert call(server, "RLockServiceDatabase", caller, scm_handle=scm)["error"] == 0
    other = Caller(SYSTEM, conn_id=2)
    scm2, opened2 = open_service(server, other)
    assert call(server, "RLockServiceDatabase", other, scm_handle=scm2)["error"] == 1055
    assert call(server, "RStartServiceW", other, handle=opened2["handle"], argv=[])["error"] == 1055
    assert (
        call(server, "RNotifyBootConfigStatus", caller, machine_name=None, boot_acceptable=1)[
            "error"
        ]
        == 0
    )
    assert (
        call(server, "RNotifyBootConfigStatus", caller, machine_name=None, boot_acceptable=1)[
            "error"
        ]
        == 1076
    )
    assert m.kernel.boot_calls == [True]


def test_malformed_requests_are_refused_by_the_schema():
    api = APIS["RCreateServiceW"]
    with pytest.raises(SchemaError):
        validate(api.request, {"scm_handle": 1})
    with pytest.raises(SchemaError):
        validate(APIS["RStartServiceW"].request, {"handle": 1, "argv": ["x"] * (sv.MAX_ARGS + 1)})
    with pytest.raises(SchemaError):
        validate(
            APIS["ROpenServiceW"].request,
            {"scm_handle": 1, "service_name": "x" * 257, "desired_access": 1},
        )
