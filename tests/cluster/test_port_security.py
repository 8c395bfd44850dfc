"""Port security on a booted machine (reliability-security.md §6.1 W3/W10/W11/W13, §6.2 C1/C7).

Clients run in their own short-lived processes: an *outsider* that read the boot key but
never attached (the kernel's process table does not know it), and an *attached* CSR client
(``ntctl.machine.Machine`` + SmExecPgm, as ``ntctl csr call`` does). Each prints one JSON
line and exits; the conftest's leak check sees them through NTMODEL_TEST_ROOT.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nt.status import NtStatus as S
from ntctl.machine import Machine as AttachedMachine
from ports.csr import BasepMaxApiNumber, csr_api_number
from tests.cluster.conftest import REPO, Machine

pytestmark = pytest.mark.cluster

CLIENT_TIMEOUT = 30
SESSION1_API_PORT = "\\Sessions\\1\\Windows\\ApiPort"

# Reads the key file like any same-uid process could; never attaches to the machine.
OUTSIDER = """
import json, sys, time, zmq
from ports.client import Connection, PortError
key = open(sys.argv[1], "rb").read()
ctx = zmq.Context()
results = []
for name, endpoint, limit in json.loads(sys.argv[2]):
    conn = Connection(ctx, port=name, endpoint=endpoint, key=key, max_message_length=limit)
    try:
        conn.connect(timeout=5)
        results.append({"port": name, "status": 0})
    except PortError as exc:
        results.append({"port": name, "status": exc.status})
    conn.close()
print(json.dumps(results), flush=True)
ctx.destroy(linger=0)
"""

# An attached CSR client of session 1's csrss; the scenario is argv[2].
ATTACHED = """
import json, os, sys, zmq
from ntctl.machine import Machine
from ports import csr, wire
root, scenario, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
out = {"pid": os.getpid()}
with Machine(root) as m:
    client = m.csr_client()
    call = lambda api, body=None: client.call(api, body or {}, 10).status
    if scenario == "claims":
        winlogon, csrss = args["winlogon"], args["csrss"]
        out["register_as_winlogon"] = call("SrvRegisterLogonProcess",
                                           {"process_id": winlogon, "register": True})
        out["unregister_winlogon"] = call("SrvRegisterLogonProcess",
                                          {"process_id": winlogon, "register": False})
        out["register_self"] = call("SrvRegisterLogonProcess",
                                    {"process_id": os.getpid(), "register": True})
        out["end_task_csrss"] = call("SrvEndTask", {"process_id": csrss})
        out["end_task_winlogon"] = call("SrvEndTask", {"process_id": winlogon})
    elif scenario == "bad_api":
        for label, number in args.items():
            out[label] = call(number)
    elif scenario == "garbage":
        endpoint = m.lpc.namespace.open_port(args["port"])[0]
        temp_file = csr.lookup_api("BaseSrvGetTempFile").number
        key = m.lpc.key
        raw = m.lpc.ctx.socket(zmq.DEALER)
        raw.linger = 0
        raw.connect(endpoint)
        seq = iter(range(1, 10**6))
        def signed(mtype, conn, msg_id, code, body):
            return wire.encode(key, mtype, conn, next(seq), msg_id, code, body)
        def reply():
            if not raw.poll(5000):
                return None
            header, body = wire.verify(key, raw.recv_multipart())
            return [header.msg_id, header.code, wire.unpack_body(body, 1 << 20)]
        for frames in ([os.urandom(500)], [b""], [os.urandom(28), os.urandom(9), os.urandom(32)],
                       signed(wire.LPC_REQUEST, 0, 1, temp_file, {})[:2]):
            raw.send_multipart(frames)  # unauthenticated: dropped without a reply
        raw.send_multipart(signed(wire.LPC_REQUEST, 0, 2, temp_file, {}))  # before CONNECT
        out["before_connect"] = reply()[1]
        raw.send_multipart(signed(wire.LPC_CONNECTION_REQUEST, 0, 3, 0,
                                  {"port": args["port"], "info": {}, "proto": 1}))
        connected = reply()
        out["connect"], conn = connected[1], connected[2].get("conn", 0)
        bodies = {"nesting": b"\\x91" * 60000 + b"\\x01", "ext": b"\\xd4\\x2a\\x00",
                  "truncated": b"\\x82\\xa1a", "c1": b"\\xc1", "not_a_map": b"\\x93\\x01\\x02\\x03"}
        for msg_id, (label, body) in enumerate(bodies.items(), start=10):
            raw.send_multipart(signed(wire.LPC_REQUEST, conn, msg_id, temp_file, body))
            got = reply()
            out[label] = got[1] if got and got[0] == msg_id else None
        last = signed(wire.LPC_REQUEST, conn, 20, temp_file, {})
        raw.send_multipart(last)
        out["valid_on_raw"] = reply()[1]
        raw.send_multipart(last)  # replayed
        raw.send_multipart(signed(wire.LPC_REQUEST, conn, 21, temp_file, {}))
        out["after_replay"] = reply()[:2]
        raw.close(linger=0)
    out["get_temp_file"] = call("BaseSrvGetTempFile")
    client.close()
print(json.dumps(out), flush=True)
"""


def run_client(machine: Machine, script: str, *args: str) -> object:
    r = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=REPO,
        env=machine.env,
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
    )
    assert r.returncode == 0, f"client failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return json.loads(r.stdout.strip().splitlines()[-1])


def assert_csrss_unharmed(machine: Machine, csrss: int) -> None:
    assert machine.pid_of("csrss.exe", 1) == csrss, "csrss is the same process"
    assert not machine.events(event="bugcheck"), "no bugcheck"


def test_process_outside_the_machine_is_refused_at_connect(machine: Machine) -> None:
    names = ["\\Windows\\ApiPort", "\\KiSystemService", SESSION1_API_PORT]
    # The boot is "up" at session 1's logon.ready; session 0 starts beside it, so wait for
    # its csrss's port (wininit is ready only after connecting to it).
    machine.wait_event("wininit.ready")
    with AttachedMachine(machine.root) as m:
        ports = [[name, *m.lpc.namespace.open_port(name)[:2]] for name in names]
        key_file = m.state.runtime / "key"
    outsider = subprocess.Popen(
        [sys.executable, "-c", OUTSIDER, str(key_file), json.dumps(ports)],
        cwd=REPO,
        env=machine.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = outsider.communicate(timeout=CLIENT_TIMEOUT)
    finally:
        if outsider.poll() is None:
            outsider.kill()
            outsider.wait(5)
    assert outsider.returncode == 0, stderr
    refused = S.STATUS_PORT_CONNECTION_REFUSED
    assert json.loads(stdout) == [{"port": name, "status": refused} for name in names]
    for name in names:
        event = machine.wait_event(
            "port.connect_refused", timeout=5, port=name, peer_pid=outsider.pid
        )
        assert event["reason"] == "not a process of this machine"
    assert not machine.events(event="port.connect", peer_pid=outsider.pid)


def test_body_claiming_another_process_is_denied_and_changes_nothing(machine: Machine) -> None:
    csrss, winlogon = machine.pid_of("csrss.exe", 1), machine.pid_of("winlogon.exe", 1)
    out = run_client(
        machine,
        ATTACHED,
        str(machine.root),
        "claims",
        json.dumps({"csrss": csrss, "winlogon": winlogon}),
    )
    assert out["register_as_winlogon"] == S.STATUS_ACCESS_DENIED
    assert out["unregister_winlogon"] == S.STATUS_NOT_LOGON_PROCESS
    # winlogon is still the registered logon process: a second one is refused
    assert out["register_self"] == S.STATUS_LOGON_SESSION_EXISTS
    assert out["end_task_csrss"] == S.STATUS_ACCESS_DENIED
    assert out["end_task_winlogon"] == S.STATUS_ACCESS_DENIED
    assert out["get_temp_file"] == S.STATUS_SUCCESS
    assert_csrss_unharmed(machine, csrss)
    assert machine.pid_of("winlogon.exe", 1) == winlogon
    refusals = machine.events(event="csr.end_task_refused", caller_pid=out["pid"])
    assert {e["reason"] for e in refusals} == {"csrss", "critical"}


def test_unknown_api_number_and_server_id_are_illegal_functions(machine: Machine) -> None:
    csrss = machine.pid_of("csrss.exe", 1)
    numbers = {
        "basesrv_past_its_table": csr_api_number(1, BasepMaxApiNumber),
        "server_id_7": csr_api_number(7, 0),
        "server_id_0xffff": csr_api_number(0xFFFF, 0xFFFF),
        "usersrv_below_its_base": csr_api_number(3, 5),
    }
    out = run_client(machine, ATTACHED, str(machine.root), "bad_api", json.dumps(numbers))
    illegal = S.STATUS_ILLEGAL_FUNCTION
    assert {label: out[label] for label in numbers} == dict.fromkeys(numbers, illegal)
    assert out["get_temp_file"] == S.STATUS_SUCCESS
    bad = machine.events(event="csr.bad_api", caller_pid=out["pid"])
    assert {int(e["api_number"], 16) for e in bad} == set(numbers.values())
    assert_csrss_unharmed(machine, csrss)


def test_garbage_frames_do_not_kill_csrss(machine: Machine) -> None:
    csrss = machine.pid_of("csrss.exe", 1)
    out = run_client(
        machine, ATTACHED, str(machine.root), "garbage", json.dumps({"port": SESSION1_API_PORT})
    )
    invalid = S.STATUS_INVALID_PARAMETER
    assert out["before_connect"] == S.STATUS_ILLEGAL_FUNCTION
    assert out["connect"] == S.STATUS_SUCCESS
    for label in ("nesting", "ext", "truncated", "c1", "not_a_map"):
        assert out[label] == invalid, label
    assert out["valid_on_raw"] == S.STATUS_SUCCESS
    assert out["after_replay"] == [21, S.STATUS_SUCCESS], "the replayed frame got no reply"
    assert out["get_temp_file"] == S.STATUS_SUCCESS
    assert_csrss_unharmed(machine, csrss)
    drops = {
        e["event"]
        for e in machine.events(image="csrss.exe", pid=csrss)
        if e["event"] in ("port.bad_mac", "port.bad_frame", "port.replay")
    }
    assert drops == {"port.bad_mac", "port.bad_frame", "port.replay"}
