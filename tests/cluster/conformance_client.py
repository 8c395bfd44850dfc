"""A client written from ports/PROTOCOL.md alone: pyzmq, msgpack and hmac, nothing of ntmodel.

Run as a script by tests/cluster/test_conformance.py: ``conformance_client.py ROOT APIS``
where APIS is a JSON map of API name -> number that the test read from the document's
tables. Prints one JSON object of results; the test judges them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import struct
import sys
from pathlib import Path

import msgpack
import zmq

HEADER = struct.Struct("<BBHIQQI")  # §1: version type flags conn seq msg_id code
LPC_REQUEST, LPC_REPLY, LPC_PORT_CLOSED, LPC_CONNECTION_REQUEST = 1, 2, 5, 10
SUCCESS = 0
DEADLINE_MS = 10_000


class Port:
    """One connection: a DEALER, its own seq from 1 (§1), msg ids of our choosing."""

    def __init__(self, ctx: zmq.Context, key: bytes, endpoint: str, name: str, info: dict):
        self.key, self.name = key, name
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        self.sock.connect(endpoint)
        self.seq = 0
        self.msg_id = 0
        self.conn = 0
        status, body = self.send(
            LPC_CONNECTION_REQUEST, 0, {"port": name, "info": info, "proto": 1}
        )
        self.connect_status = status
        if status == SUCCESS:
            self.conn = body["conn"]

    def frames(self, mtype: int, code: int, body: dict) -> list[bytes]:
        self.seq += 1
        self.msg_id += 1
        header = HEADER.pack(1, mtype, 0, self.conn, self.seq, self.msg_id, code)
        packed = msgpack.packb(body, use_bin_type=True)
        mac = hmac.new(self.key, header + packed, hashlib.sha256).digest()  # §2
        return [header, packed, mac]

    def send(self, mtype: int, code: int, body: dict) -> tuple[int, dict]:
        self.sock.send_multipart(self.frames(mtype, code, body))
        while True:
            if not self.sock.poll(DEADLINE_MS):  # §3: a refused handshake is never answered
                return -1, {}
            header, packed, mac = self.sock.recv_multipart()
            expected = hmac.new(self.key, header + packed, hashlib.sha256).digest()
            if not hmac.compare_digest(mac, expected):
                raise SystemExit("reply with a bad MAC")
            _, rtype, _, _, _, msg_id, code = HEADER.unpack(header)
            if rtype == LPC_REPLY and msg_id == self.msg_id:
                return code, msgpack.unpackb(packed, raw=False)

    def call(self, api: int, body: dict) -> tuple[int, dict]:
        return self.send(LPC_REQUEST, api, body)

    def close(self) -> None:
        if self.conn:
            self.sock.send_multipart(self.frames(LPC_PORT_CLOSED, 0, {}), flags=zmq.NOBLOCK)
        self.sock.close(linger=0)


def main() -> None:
    root, apis = Path(sys.argv[1]), json.loads(sys.argv[2])
    state = json.loads((root / "machine.json").read_text())  # §0.1
    runtime = Path(state["runtime"])
    key = (runtime / "key").read_bytes()
    ctx = zmq.Context()
    out: dict = {"pid": os.getpid(), "key_len": len(key)}

    attach = Port(ctx, key, f"ipc://{runtime}/attach", "\\KdAttachPort", {})  # §0.3
    out["attach_connect"] = attach.connect_status
    status, body = attach.call(apis["KdAttachProcess"], {"image": "conform.exe", "session": 1})
    out["attach"], out["attach_kernel_pid"] = status, body.get("kernel_pid")
    attach.close()

    k = Port(ctx, key, f"ipc://{runtime}/k", "\\KiSystemService", {})  # §0.2
    out["kernel_connect"] = k.connect_status
    status, body = k.call(
        apis["NtQuerySystemInformation"], {"info_class": "SystemProcessInformation"}
    )
    out["processes_status"] = status
    out["processes"] = body.get("processes", [])
    status, body = k.call(apis["NtQueryDirectoryObject"], {"name": "\\"})
    out["root_status"], out["root_entries"] = status, body.get("entries", [])

    def open_port(name: str, info: dict) -> Port:
        status, body = k.call(apis["NtOpenPort"], {"name": name})
        out[f"open {name}"] = status
        return Port(ctx, key, body["endpoint"], name, info)

    sm = open_port("\\SmApiPort", {"subsystem_type": 0})  # §0.4
    out["sm_connect"] = sm.connect_status
    process = {"pid": state["kernel_pid"], "session": 1, "subsystem_type": 3}
    out["exec_pgm_other"], _ = sm.call(apis["SmpExecPgmApi"], {"process": process})
    process = {"pid": os.getpid(), "session": 1, "subsystem_type": 3}
    out["exec_pgm_self"], _ = sm.call(apis["SmpExecPgmApi"], {"process": process})
    sm.close()

    csr = open_port("\\Sessions\\1\\Windows\\ApiPort", {})
    out["csr_connect"] = csr.connect_status
    body = {"server_id": 1, "connection_info": {"debug_flags": 0}}
    out["client_connect"], _ = csr.call(apis["CsrpClientConnect"], body)
    out["temp_file"], out["temp_file_body"] = csr.call(apis["BasepGetTempFile"], {})
    out["bad_body"], _ = csr.call(apis["BasepGetTempFile"], {"unknown": 1})
    out["after_bad_body"], _ = csr.call(apis["BasepGetTempFile"], {})
    csr.close()
    k.close()
    ctx.destroy(linger=0)
    out["project_modules"] = sorted(
        m for m in sys.modules if m.split(".")[0] in ("nt", "ports", "processes", "ntctl")
    )
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
