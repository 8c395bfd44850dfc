"""The parts of ``ports/PROTOCOL.md`` that say how to reach a running machine: where its
runtime directory, key and fixed endpoints are, how an outside process attaches, how it
gets registered with csrss, what ``seq`` is, what a client does when a handshake is
refused, and the CONNECT and reply test vectors. Every name and number comes from the
protocol modules (``ports.kernel``, ``ports.sm``, ``ports.csr``, ``ports.contract``).
"""

from __future__ import annotations

import json

from nt.status import NtStatus, hexstatus
from ports import client, contract, csr, kernel, sm, wire

VECTOR_KEY = bytes(range(32))
# (type, conn, seq, msg_id, code, body): a CONNECT and the reply to an NtOpenPort.
CONNECT_VECTOR = (
    wire.LPC_CONNECTION_REQUEST,
    0,
    1,
    1,
    0,
    {"port": kernel.SYSTEM_SERVICE_PORT, "info": {}, "proto": contract.CONNECT_VERSION},
)
REPLY_VECTOR = (
    wire.LPC_REPLY,
    1,
    1,
    7,
    NtStatus.STATUS_SUCCESS,
    {
        "endpoint": "ipc:///run/user/1000/ntm-1000-a1b2c3d4/p/3",
        "max_message_length": 65536,
        "server_pid": 4242,
    },
)


def _k(name: str) -> str:
    return f"`<runtime>/{name}`"


def machine_section() -> list[str]:
    services = kernel.SYSTEM_SERVICES.by_name()
    attach = kernel.ATTACH.by_name()["KdAttachProcess"]
    execpgm = sm.SM_APIS[sm.SmpExecPgmApi]
    connect = csr.lookup_api("CsrpClientConnect")
    assert connect is not None
    return [
        "## 0. Reaching a running machine",
        "",
        "### 0.1 Runtime directory and key",
        "",
        f"The launcher's data root (`var/` in the checkout unless `--root` says otherwise) "
        f"holds `{kernel.MACHINE_STATE}` while a machine runs: a JSON object with `boot_id` "
        "(str), `kernel_pid` (int), `runtime` (str, the runtime directory), `profile` (str) "
        "and `started` (Unix time). The runtime directory is private to the user (mode 0700; "
        "`$XDG_RUNTIME_DIR` or the temp directory, `ntm-<uid>-<random>`). In it, "
        f"{_k(kernel.KEY_FILE)} (mode 0600) is the boot's key: exactly 32 raw bytes, no "
        "encoding.",
        "",
        "### 0.2 Endpoints",
        "",
        "| endpoint | what |",
        "| --- | --- |",
        f"| `ipc://<runtime>/{kernel.SYSTEM_SERVICE_ENDPOINT}` | `{kernel.SYSTEM_SERVICE_PORT}`"
        " (section 9.1): the kernel's system services, a port like any other |",
        f"| `ipc://<runtime>/{kernel.ATTACH_ENDPOINT}` | `{kernel.ATTACH_PORT}` (section 9.2):"
        " the only port that admits a process the kernel does not know yet |",
        f"| `ipc://<runtime>/{kernel.EVENTS_ENDPOINT}` | the kernel's process-exit events, a "
        "PUB socket (section 7) |",
        "| `ipc://<runtime>/p/<n>` | every other port; ask `NtOpenPort` on "
        f"`{kernel.SYSTEM_SERVICE_PORT}` (service {services['NtOpenPort'].number}) for its "
        "`endpoint`, `max_message_length` and `server_pid` |",
        "",
        "### 0.3 Attaching",
        "",
        "A process the machine did not create must attach before any other port admits it: "
        "every port but the attach port checks at the ZAP handshake (section 6) that the "
        "peer's pid is a live process in the kernel's table.",
        "",
        f"1. Open a DEALER to the attach endpoint; CONNECT with `port` "
        f"`{kernel.ATTACH_PORT}` and `info` `{{}}`.",
        f"2. Call `{attach.name}` (API {attach.number}) with `image` (the name to appear "
        "under, e.g. `ntctl.exe`) and `session` (int or nil). The reply carries "
        "`kernel_pid`. The kernel records the caller (pid from SO_PEERCRED) with state "
        "`attached`, parent 0, and watches it: the record lives until the process exits, "
        "so the attach connection may be closed at once (the Python runtime does).",
        "3. Only now open the sockets for other ports. The identity check runs once, at "
        "each socket's handshake: a socket opened before step 2 stays refused (its "
        "handshake already failed), so close it and open a new one.",
        "",
        "### 0.4 Becoming a client of csrss",
        "",
        "csrss's ApiPort accepts CONNECT only from processes csrss knows (CSR processes). "
        "smss registers processes with csrss; an attached process asks it to:",
        "",
        f"1. CONNECT to `{sm.SM_PORT_NAME}` with `info` `{{subsystem_type: "
        f"{sm.IMAGE_SUBSYSTEM_UNKNOWN}}}` (a plain client: no SbApiPort).",
        f"2. Call `{execpgm.name}` (API {execpgm.number}) with `process` = `{{pid: <own pid>, "
        f"session: <session>, subsystem_type: {sm.IMAGE_SUBSYSTEM_WINDOWS_CUI}}}`. smss "
        "sends SbpCreateSession to that session's csrss, which registers the process.",
        "   SmExecPgm hands smss a process *the caller created* (suspended): smss refuses "
        "(STATUS_ACCESS_DENIED) any pid whose kernel record does not name the caller as "
        "its parent, except that an attached process (state `attached`, which has no NT "
        "parent to register it) may name itself.",
        f"3. CONNECT to the session's ApiPort. `port` is the full object name: "
        f"`{csr.object_directory(0)}\\{csr.API_PORT_NAME}` in session 0, "
        f"`{csr.object_directory(1)}\\{csr.API_PORT_NAME}` in session 1 (`\\Sessions\\<n>` "
        "before the directory for any session but 0). Get its endpoint with NtOpenPort "
        "of that name.",
        f"4. Call `{connect.name}` (API 0x{connect.number:08X}) once per server DLL with "
        "`server_id` and that DLL's `connection_info` (section 9.5).",
        "",
    ]


def seq_text() -> list[str]:
    return [
        "**`seq`**: every sender numbers the messages it sends on one connection (one "
        "socket; a DEALER carries one connection), starting at 1 with the CONNECT and "
        "adding 1 per message (requests, datagrams, PORT_CLOSED). The server keeps the "
        "last `seq` it accepted from each peer socket and drops any frame whose `seq` is "
        "not greater (section 5). Replies are numbered by the server on the same rule "
        "(its own counter for that connection, from 1); a reply sent with no connection "
        "record (every CONNECT reply, and the refusals of section 4 the port thread sends "
        "at once) carries 0. Clients match replies by `msg_id` and need not check their "
        "`seq`.",
        "",
    ]


def refused_text() -> list[str]:
    return [
        "**A refused handshake.** When the ZAP handler refuses a peer (section 6), libzmq "
        "drops the connection and the CONNECT is never answered: there is no LPC_REPLY to "
        "wait for. A client detects it either from `ZMQ_EVENT_HANDSHAKE_FAILED_AUTH` on a "
        "socket monitor (the Python client does; it reports "
        "STATUS_PORT_CONNECTION_REFUSED) or by a deadline on the CONNECT reply (the Python "
        f"client gives up after {client.CONNECT_TIMEOUT:g} s with STATUS_IO_TIMEOUT). "
        "Either way it closes the socket: a DEALER left open reconnects and is refused "
        "again. Refusals after the handshake (the accept callback, a wrong `port`, a bad "
        "`proto`) are answered with an LPC_REPLY as described above.",
        "",
    ]


def _vector(name: str, spec: tuple) -> list[str]:
    mtype, conn, seq, msg_id, code, body = spec
    header, packed, tag = wire.encode(VECTOR_KEY, mtype, conn, seq, msg_id, code, body)
    return [
        f"{name}: type {wire.MESSAGE_TYPES[mtype]}, conn {conn}, seq {seq}, msg_id "
        f"{msg_id}, code {hexstatus(code) if mtype == wire.LPC_REPLY else code}, body "
        f"`{json.dumps(body)}` (JSON notation for the msgpack map), same key:",
        "",
        "```",
        f"header: {header.hex()}",
        f"body:   {packed.hex()}",
        f"mac:    {tag.hex()}",
        "```",
        "",
    ]


def vectors() -> list[str]:
    return _vector("CONNECT", CONNECT_VECTOR) + _vector("The reply to an NtOpenPort", REPLY_VECTOR)
