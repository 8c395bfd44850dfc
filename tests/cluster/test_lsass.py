"""lsass on a booted machine: accounts through ntctl, logons through the LSA port, the
SAM hive closed to everyone else, secrets hygiene, floods and hostile messages, and
``kill -9 lsass`` (reliability-security §6.6 L1-L11).

Argon2id runs with cheap parameters here (a ``Control\\Lsa\\Argon2`` overlay the production
configuration does not have); the benchmark reports the production cost.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import argon2
import pytest

from nt.hive import Registry
from nt.status import NtStatus as S
from processes.lsass.sam import USERS
from tests.cluster.conftest import BOOT_TIMEOUT, REPO, Machine, machine_processes

pytestmark = pytest.mark.cluster

CHEAP_REG = """Windows Registry Editor Version 5.00

[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\Lsa\\Argon2]
"TimeCost"=dword:00000001
"MemoryCost"=dword:{memory:08x}
"Parallelism"=dword:00000001
"""
PASSWORDS = {"alice": "Al1ce-Tr0ub4dor&3", "bob": "B0b-correct horse"}

# An attached client (ntctl's way in) that runs one LSA scenario and prints JSON.
CLIENT = """
import json, os, sys, time
from ntctl.machine import Machine
from ports import lsa
from ports.client import PortError
root, scenario, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
out = {}
with Machine(root) as m:
    conn = lsa.LsaConnectUntrusted(m.lpc)
    pw = args.get("password", "").encode()
    if scenario == "flood":
        body = {"origin": "", "logon_type": 3, "auth_package": 0, "domain": "",
                "user": args["user"], "password": pw, "source": "User32  ", "session": 0}
        out["statuses"] = [r.status for r in conn.call_batch([(2, body)] * args["n"], 60)]
    elif scenario == "hostile":
        out["max_api"] = conn.call(lsa.LSASS_REQUEST_MAXIMUM, {}).status
        out["far_api"] = conn.call(0x12345, {}).status
        out["bad_type"] = conn.call(2, {"user": 5}).status
        out["extra_key"] = conn.call(3, {"package_name": "x", "evil": 1}).status
        out["mib_password"] = lsa.LsaLogonUser(conn, args["user"], b"x" * (1 << 20), 3).status
        conn.max_message_length = 1 << 23  # past the client's own check: the server's answers
        big = {"logon_type": 3, "auth_package": 0, "user": args["user"],
               "password": b"x" * lsa.MAX_MESSAGE_LENGTH}
        out["oversized"] = conn.call(2, big).status
        out["not_msgpack_map"] = conn.call(2, [1, 2, 3]).status
        conn.max_message_length = lsa.MAX_MESSAGE_LENGTH
        out["interactive"] = lsa.LsaLogonUser(conn, args["user"], pw, 2).status
        try:
            lsa.LsaRegisterLogonProcess(m.lpc, "Evil").close()
            out["register"] = 0
        except PortError as exc:
            out["register"] = exc.status
        out["alive"] = lsa.LsaLookupAuthenticationPackage(conn, lsa.MSV1_0_PACKAGE_NAME).status
    elif scenario == "logons":
        out["statuses"] = [lsa.LsaLogonUser(conn, u, p.encode(), 3).status for u, p in args["tries"]]
    elif scenario == "pending":
        print(json.dumps({"sent": True}), flush=True)
        r = lsa.LsaLogonUser(conn, args["user"], pw, 3, timeout=60)
        out["status"], out["done"] = r.status, time.time()
    elif scenario == "change":
        print(json.dumps({"sent": True}), flush=True)
        new = args["new_password"].encode()
        r = lsa.LsaCallAuthenticationPackage(conn, args["user"], pw, new)
        out["status"], out["done"] = r.status, time.time()
    conn.close()
print(json.dumps(out), flush=True)
"""

# A process that attaches under lsass's name and asks the kernel for the SAM hive.
IMPOSTOR = """
import json, sys
from nt.log import get_logger
from nt.syscalls import NtError, SystemServices
from ntctl.machine import read_state
from ports import kernel
from ports.runtime import LpcRuntime
from pathlib import Path
state = read_state(Path(sys.argv[1]))
rt = state.runtime
lpc = LpcRuntime(key=(rt / kernel.KEY_FILE).read_bytes(),
                 kernel_endpoint=kernel.endpoint(rt, kernel.SYSTEM_SERVICE_ENDPOINT),
                 events_endpoint=kernel.endpoint(rt, kernel.EVENTS_ENDPOINT), log=get_logger(),
                 attach={"endpoint": kernel.endpoint(rt, kernel.ATTACH_ENDPOINT),
                         "image": "lsass.exe", "session": 0})
lpc.kernel.server_pid = state.kernel_pid
nt = SystemServices(lpc.kernel)
out = {}
for name, call in {
    "query": lambda: nt.enum_keys(r"HKLM\\SAM\\SAM\\Domains\\Account\\Users"),
    "security": lambda: nt.enum_keys(r"\\Registry\\Machine\\SECURITY"),
    "write": lambda: nt.set_value(r"HKLM\\SAM\\SAM", "x", 4, 1),
    "export": lambda: nt.export_key("HKLM"),
    "import": lambda: nt.import_reg("Windows Registry Editor Version 5.00\\r\\n\\r\\n[HKLM\\\\SAM\\\\X]\\r\\n"),
    "system": lambda: nt.enum_keys(r"HKLM\\SYSTEM"),
}.items():
    try:
        call()
        out[name] = 0
    except NtError as exc:
        out[name] = exc.status
print(json.dumps(out), flush=True)
lpc.close()
"""


def run_client(m: Machine, script: str, *args: str, timeout: float = 60) -> dict:
    r = subprocess.run(
        [sys.executable, "-c", script, str(m.root), *args],
        cwd=REPO,
        env=m.env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def ntctl_pw(m: Machine, password: str, *args: str, check: bool = True):
    """ntctl with the password on stdin (``--as`` reads it there when stdin is no tty)."""
    flag = [] if "--as" in args else ["--password-stdin"]
    return m.ntctl(*args, *flag, input=password + "\n", check=check, timeout=60)


def boot(
    root: Path, memory_kib: int = 64, faults: str = "", setup: tuple[str, str] | None = None
) -> Machine:
    """Boot detached with cheap hashes; ``setup`` = the first account (name, password)."""
    env = dict(os.environ, NTMODEL_TEST_ROOT=str(root), NTMODEL_FAULTS=faults)
    m = Machine(root, env)
    root.mkdir(parents=True, exist_ok=True)
    overlay = root.parent / f"{root.name}-argon2.reg"
    overlay.write_text(CHEAP_REG.format(memory=memory_kib))
    args = ["boot", "--detach", "--reg", str(overlay)]
    if setup:
        args += ["--setup-user", setup[0], "--password-stdin"]
    r = subprocess.run(
        [sys.executable, "-m", "ntctl", *args, "--root", str(root)],
        cwd=REPO,
        env=env,
        input=(setup[1] + "\n") if setup else "",
        capture_output=True,
        text=True,
        timeout=BOOT_TIMEOUT + 10,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    m.wait_event("lsa.ready", image="lsass.exe")
    return m


@pytest.fixture(scope="module")
def lsa_machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machine]:
    m = boot(tmp_path_factory.mktemp("lsa") / "m")
    ntctl_pw(m, PASSWORDS["alice"], "user", "add", "alice", "--admin")
    ntctl_pw(m, PASSWORDS["bob"], "user", "add", "bob")
    yield m
    m.stop()
    assert not machine_processes(str(m.root))


def security_events(m: Machine, event_id: int) -> list[dict]:
    return m.events(event="event.report", image="lsass.exe", event_id=event_id)


def test_accounts_and_logons_through_ntctl(lsa_machine: Machine) -> None:
    m = lsa_machine
    users = {u["name"]: u for u in json.loads(m.ntctl("user", "list", "--json").stdout)}
    assert users["Administrator"]["rid"] == 500 and not users["Administrator"]["enabled"]
    assert users["alice"]["rid"] == 1000 and users["alice"]["admin"]
    assert users["bob"]["rid"] == 1001 and not users["bob"]["admin"]
    ok = json.loads(ntctl_pw(m, PASSWORDS["bob"], "logon-test", "bob", "--json").stdout)
    assert ok["status_name"] == "STATUS_SUCCESS"
    assert ok["token"]["sid"] == users["bob"]["sid"] and "S-1-5-2" in ok["token"]["groups"]
    bad = ntctl_pw(m, "wrong", "logon-test", "bob", check=False)
    assert bad.returncode == 1 and "1326" in bad.stdout and "STATUS_LOGON_FAILURE" in bad.stdout
    nobody = ntctl_pw(m, "wrong", "logon-test", "nobody", check=False)
    assert "STATUS_LOGON_FAILURE" in nobody.stdout
    assert [e["event_id"] for e in security_events(m, 4720)] == [4720, 4720]
    assert security_events(m, 4624) and len(security_events(m, 4625)) >= 2
    show = json.loads(m.ntctl("user", "show", "bob", "--json").stdout)
    assert show["logon_count"] >= 1 and show["bad_password_count"] >= 1


def test_lockout_then_admin_unlock(lsa_machine: Machine) -> None:
    m = lsa_machine
    ntctl_pw(m, "T3mp-pass", "user", "add", "carol")
    policy = json.loads(m.ntctl("accounts", "--lockout-threshold", "2", "--json").stdout)
    assert (policy["lockout_threshold"], policy["lockout_duration"]) == (2, 10)
    tries = [["carol", "guess"], ["carol", "guess"], ["carol", "T3mp-pass"]]
    statuses = run_client(m, CLIENT, "logons", json.dumps({"tries": tries}))["statuses"]
    assert statuses == [S.STATUS_LOGON_FAILURE] * 2 + [S.STATUS_ACCOUNT_LOCKED_OUT]
    assert any(e["strings"][0] == "carol" for e in security_events(m, 4740))
    assert json.loads(m.ntctl("user", "show", "carol", "--json").stdout)["locked"]
    m.ntctl("user", "unlock", "carol")
    assert security_events(m, 4767)
    assert "Logon succeeded" in ntctl_pw(m, "T3mp-pass", "logon-test", "carol").stdout


def test_hostile_lsa_messages_and_untrusted_callers(lsa_machine: Machine) -> None:
    args = json.dumps({"user": "bob", "password": PASSWORDS["bob"]})
    out = run_client(lsa_machine, CLIENT, "hostile", args)
    assert out["max_api"] == out["far_api"] == S.STATUS_INVALID_SYSTEM_SERVICE
    assert out["bad_type"] == out["extra_key"] == S.STATUS_INVALID_PARAMETER
    assert out["mib_password"] == S.STATUS_LOGON_FAILURE
    assert out["oversized"] == S.STATUS_PORT_MESSAGE_TOO_LONG
    assert out["not_msgpack_map"] == S.STATUS_INVALID_PARAMETER
    assert out["interactive"] == S.STATUS_NOT_LOGON_PROCESS
    assert out["register"] == S.STATUS_PORT_CONNECTION_REFUSED
    assert out["alive"] == S.STATUS_SUCCESS


def test_a_flood_of_200_logons_is_answered_and_bounded(lsa_machine: Machine) -> None:
    args = json.dumps({"user": "bob", "password": PASSWORDS["bob"], "n": 200})
    statuses = run_client(lsa_machine, CLIENT, "flood", args)["statuses"]
    assert len(statuses) == 200
    assert set(statuses) <= {S.STATUS_SUCCESS, S.STATUS_INSUFFICIENT_RESOURCES}
    assert statuses.count(S.STATUS_SUCCESS) > 0
    assert lsa_machine.pid_of("lsass.exe", 0)  # lsass survived


def test_only_lsass_reads_the_sam_and_security_hives(lsa_machine: Machine) -> None:
    m = lsa_machine
    r = m.ntctl("reg", "query", "HKLM\\SAM\\SAM", check=False)
    assert r.returncode != 0 and "STATUS_ACCESS_DENIED" in r.stderr
    out = run_client(m, IMPOSTOR)  # attached under the name lsass.exe: still refused
    assert {k: v for k, v in out.items() if k != "system"} == dict.fromkeys(
        ("query", "security", "write", "export", "import"), S.STATUS_ACCESS_DENIED
    )
    assert out["system"] == 0
    assert m.events(event="cm.access_denied", image="System")


def test_as_runs_a_verb_with_the_users_token_and_the_doors_close(lsa_machine: Machine) -> None:
    m = lsa_machine
    assert ntctl_pw(m, PASSWORDS["bob"], "--as", "bob", "whoami").stdout.strip() == "ntmodel\\bob"
    r = ntctl_pw(m, PASSWORDS["bob"], "--as", "bob", "reg", "add", "HKLM\\SOFTWARE\\X", check=False)
    assert r.returncode == 1 and "STATUS_ACCESS_DENIED" in r.stderr
    lsass = str(m.pid_of("lsass.exe", 0))
    r = ntctl_pw(m, PASSWORDS["bob"], "--as", "bob", "kill", lsass, check=False)
    assert r.returncode == 1 and "STATUS_ACCESS_DENIED" in r.stderr
    r = ntctl_pw(m, "wrong", "--as", "bob", "whoami", check=False)
    assert r.returncode == 1 and "STATUS_LOGON_FAILURE" in r.stderr
    assert m.pid_of("lsass.exe", 0) == int(lsass)


def test_scm_doors_close_for_a_user_and_sdset_opens_them(lsa_machine: Machine) -> None:
    m = lsa_machine
    r = ntctl_pw(m, PASSWORDS["bob"], "--as", "bob", "sc", "stop", "EventLog", check=False)
    assert r.returncode == 1
    assert r.stdout == "[SC] OpenService FAILED 5:\n\nAccess is denied.\n\n"
    denied = m.events(event="event.report", image="services.exe", event_id=4656)
    assert any(e["strings"][6] == "EventLog" and e["strings"][1] == "bob" for e in denied)
    assert m.ntctl("sc", "sdshow", "scmanager").stdout == (
        "\nD:(A;;CC;;;AU)(A;;CCLCRPRC;;;IU)(A;;CCLCRPRC;;;SU)(A;;CCLCRPWPRC;;;SY)(A;;KA;;;BA)"
        "(A;;CC;;;AC)\n"
    )
    before = m.ntctl("sc", "sdshow", "W32Time").stdout.strip()
    assert before.startswith("D:(A;;CCLCSWRPWPDTLOCRRC;;;SY)")
    sddl = before + "(A;;LCRPLO;;;NU)"  # network users may now query, start and interrogate
    assert m.ntctl("sc", "sdset", "W32Time", sddl).stdout == (
        "[SC] SetServiceObjectSecurity SUCCESS\n"
    )
    assert m.ntctl("sc", "sdshow", "W32Time").stdout.strip() == sddl
    stored = m.ntctl(
        "reg", "query", r"HKLM\SYSTEM\CurrentControlSet\Services\W32Time\Security", "--json"
    ).stdout
    assert "REG_BINARY" in stored or '"type": 3' in stored
    r = ntctl_pw(m, PASSWORDS["bob"], "--as", "bob", "sc", "query", "W32Time", check=False)
    assert "SERVICE_NAME: W32Time" in r.stdout, r.stdout + r.stderr
    bad = m.ntctl("sc", "sdset", "W32Time", "D:(A;;GA;;;SY", check=False)
    assert bad.returncode == 1 and "FAILED 1336" in bad.stdout


def test_a_service_runs_as_a_local_user_once_granted_seservicelogonright(
    lsa_machine: Machine,
) -> None:
    m = lsa_machine
    svc = "BobSvc"
    ntctl_pw(
        m, PASSWORDS["bob"], "sc", "create", svc,
        "binPath=", "C:\\Program Files\\Vendor\\bobsvc.exe", "obj=", ".\\bob",
    )  # fmt: skip
    r = m.ntctl("sc", "start", svc, check=False)  # bob lacks SeServiceLogonRight
    assert r.stdout.startswith("[SC] StartService FAILED 1069:"), r.stdout
    why = m.wait_event("event.report", image="services.exe", event_id=7038)
    assert why["strings"][1] == ".\\bob" and "not been granted" in why["strings"][2]
    assert any(
        "logon failure" in e["message"]
        for e in m.events(event="event.report", image="services.exe", event_id=7000)
    )
    assert security_events(m, 4625)[-1]["strings"][7] == "0xC000015B"
    out = m.ntctl("user", "rights", "bob", "--grant", "SeServiceLogonRight").stdout
    assert "Granting SeServiceLogonRight to bob ... successful" in out
    assert "SeServiceLogonRight" in out
    assert "SERVICE_NAME: BobSvc" in m.ntctl("sc", "start", svc).stdout
    m.wait_event("svc.state", service=svc, state=4)
    pid = json.loads(m.ntctl("sc", "queryex", svc, "--json").stdout)["process_id"]
    proc = next(p for p in m.processes() if p["pid"] == pid)
    assert proc["user"].lower() == "ntmodel\\bob" and proc["session"] == 0
    m.ntctl("sc", "stop", svc)
    m.wait_event("proc.exit", child_pid=pid)
    # a wrong password stored: 1069 again, and 7038 quotes 1326
    ntctl_pw(m, "not-" + PASSWORDS["bob"], "sc", "config", svc, "obj=", ".\\bob")
    r = m.ntctl("sc", "start", svc, check=False)
    assert r.stdout.startswith("[SC] StartService FAILED 1069:"), r.stdout
    texts = [e["strings"][2] for e in m.events(event="event.report", event_id=7038)]
    assert any("user name or password is incorrect" in t for t in texts)
    argv = m.ntctl("sc", "config", svc, "obj=", ".\\bob", "password=", "x", check=False)
    assert argv.returncode == 2 and "--password-stdin" in argv.stderr


def test_shutdown_needs_seshutdownprivilege_which_the_policy_can_take_away(
    lsa_machine: Machine,
) -> None:
    m = lsa_machine
    m.ntctl("user", "rights", "Users", "--revoke", "SeShutdownPrivilege")
    try:
        who = ntctl_pw(m, PASSWORDS["bob"], "--as", "bob", "whoami", "/all", "--json")
        assert "SeShutdownPrivilege" not in json.loads(who.stdout)["privileges"]
        r = ntctl_pw(m, PASSWORDS["bob"], "--as", "bob", "shutdown", "-t", "600", check=False)
        assert r.returncode == 1 and "STATUS_PRIVILEGE_NOT_HELD" in r.stderr, r.stderr
        denied = m.events(event="event.report", image="winlogon.exe", event_id=4656)
        assert any(e["strings"][9] == "SeShutdownPrivilege" for e in denied)
    finally:
        m.ntctl("user", "rights", "Users", "--grant", "SeShutdownPrivilege")
        m.ntctl("shutdown", "-a", check=False)  # had the check failed open


def test_a_deleted_users_running_service_keeps_its_token_but_new_logons_fail(
    lsa_machine: Machine,
) -> None:
    m = lsa_machine
    ntctl_pw(m, "D4n-service-pw", "user", "add", "dan")
    m.ntctl("user", "rights", "dan", "--grant", "SeServiceLogonRight")
    ntctl_pw(
        m, "D4n-service-pw", "sc", "create", "DanSvc",
        "binPath=", "C:\\Program Files\\Vendor\\dansvc.exe", "obj=", ".\\dan",
    )  # fmt: skip
    m.ntctl("sc", "start", "DanSvc")
    m.wait_event("svc.state", service="DanSvc", state=4)
    pid = json.loads(m.ntctl("sc", "queryex", "DanSvc", "--json").stdout)["process_id"]
    m.ntctl("user", "delete", "dan")
    assert security_events(m, 4726)
    proc = next(p for p in m.processes() if p["pid"] == pid)  # still running, still dan
    assert proc["user"].lower() == "ntmodel\\dan" and proc["state"] == "running"
    r = ntctl_pw(m, "D4n-service-pw", "logon-test", "dan", check=False)
    assert r.returncode == 1 and "STATUS_LOGON_FAILURE" in r.stdout
    m.ntctl("sc", "stop", "DanSvc")  # the SCM still controls it
    m.wait_event("proc.exit", child_pid=pid)
    r = m.ntctl("sc", "start", "DanSvc", check=False)  # a new logon: the account is gone
    assert r.stdout.startswith("[SC] StartService FAILED 1069:"), r.stdout
    m.ntctl("sc", "delete", "DanSvc")


def test_no_password_in_anything_the_machine_wrote(lsa_machine: Machine) -> None:
    m = lsa_machine
    ntctl_pw(m, "N3w-" + PASSWORDS["bob"], "user", "passwd", "bob")
    # The interactive path too: ntctl → LogonUI → winlogon → lsass, then a logoff.
    ntctl_pw(m, PASSWORDS["alice"], "logon", "alice")
    m.ntctl("logoff")
    secrets = [p.encode() for p in PASSWORDS.values()] + [("N3w-" + PASSWORDS["bob"]).encode()]
    secrets += [s.decode().encode("utf-16-le") for s in list(secrets)]
    hits = []
    for path in m.root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits += [str(path) for s in secrets if s in data]
    assert hits == []
    hashes = [p for p in m.root.rglob("SAM*") if p.is_file()]
    marks = (b"$argon2id$", "$argon2id$".encode("utf-16-le"))
    assert any(mark in p.read_bytes() for p in hashes for mark in marks)


def test_kill_lsass_mid_logon_and_mid_password_change_keeps_old_or_new_hash_no_bugcheck(
    tmp_path: Path,
) -> None:
    # The first account from the scripted first-boot setup; a logon that stays in flight.
    # ...and a password change stalled between its two writes (the hash, then the F value).
    faults = "lsass.exe:stall_logon=30,lsass.exe:stall_password_change=30"
    m = boot(tmp_path / "k", faults=faults, setup=("dave", "S1ow-pass"))
    try:
        _kill_mid_logon(m)
    finally:
        m.stop()
    # The account survives on disk (read offline, as a restarted lsass would read it) with
    # the old or the new hash, never neither: here the new one, written before the kill.
    hives = Registry(m.root / "C" / "Windows" / "System32" / "config")
    try:
        phc = hives.query_value(rf"{USERS}\{1000:08X}", "PasswordHash")[1]
    finally:
        hives.close()
    verifies = {}
    for pw in ("S1ow-pass", "N3w-S1ow-pass"):
        try:
            verifies[pw] = argon2.PasswordHasher().verify(phc, pw)
        except argon2.exceptions.VerifyMismatchError:
            verifies[pw] = False
    assert verifies == {"S1ow-pass": False, "N3w-S1ow-pass": True}


def _kill_mid_logon(m: Machine) -> None:
    groups = json.loads(m.ntctl("user", "show", "dave", "--json").stdout)["groups"]
    assert set(groups) == {"S-1-5-32-545", "S-1-5-32-544"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CLIENT,
            str(m.root),
            "pending",
            json.dumps({"user": "dave", "password": "S1ow-pass"}),
        ],
        cwd=REPO,
        env=m.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert json.loads(proc.stdout.readline())["sent"]
    m.wait_event("fault.stall_logon", image="lsass.exe")
    change = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CLIENT,
            str(m.root),
            "change",
            json.dumps({"user": "dave", "password": "S1ow-pass", "new_password": "N3w-S1ow-pass"}),
        ],
        cwd=REPO,
        env=m.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert change.stdout is not None
    assert json.loads(change.stdout.readline())["sent"]
    m.wait_event("fault.stall_password_change", image="lsass.exe")
    killed = time.time()
    os.kill(m.pid_of("lsass.exe", 0), signal.SIGKILL)
    out = json.loads(proc.stdout.readline())
    changed = json.loads(change.stdout.readline())
    proc.wait(10)
    change.wait(10)
    assert out["status"] == changed["status"] == S.STATUS_PORT_DISCONNECTED
    assert out["done"] - killed < 3 and changed["done"] - killed < 3
    exit_event = m.wait_event("proc.exit", image="System", child_image="lsass.exe")
    assert exit_event["signal"] == signal.SIGKILL
    assert not m.events(event="bugcheck")
