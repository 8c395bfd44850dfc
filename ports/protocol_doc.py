"""Generate ``ports/PROTOCOL.md`` from the tables in code.

``python -m ports.protocol_doc`` writes the file; ``python -m ports.protocol_doc --check``
exits 1 (with the start of a diff) when the committed file no longer matches the code.
Everything in the document comes from ``ports.wire``, ``ports.server``, ``ports.schema``
and the protocol modules, so an implementer in another language reads what the Python
side actually does, including a signed test vector to check an HMAC implementation.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Iterable
from pathlib import Path

from nt.status import NtStatus, hexstatus
from ports import (
    csr,
    epmap,
    eventlog,
    events,
    kernel,
    logonui,
    lsa,
    lsarpc,
    lsm,
    protocol_guide,
    samr,
    sb,
    sm,
    spoolss,
    svcctl,
    winlogon,
    wire,
)
from ports.contract import CONNECT_SCHEMA, CONNECT_VERSION
from ports.schema import Api, Protocol, describe

PATH = Path(__file__).with_name("PROTOCOL.md")
MAXMSGSIZE_SLACK = 4096  # PortServer.start: ZMQ_MAXMSGSIZE = max_message_length + 4096

# The worked example: fixed, so that other implementations can reproduce the MAC.
VECTOR_KEY = protocol_guide.VECTOR_KEY
VECTOR_REQUEST = (wire.LPC_REQUEST, 1, 2, 7, kernel.SERVICE["NtOpenPort"])
VECTOR_BODY = {"name": "\\Windows\\ApiPort"}

HEADER_FIELDS = (  # (name, struct code, meaning), in wire.HEADER order
    ("version", "B", f"protocol version, {wire.PROTOCOL_VERSION}"),
    ("type", "B", "LPC message type (below)"),
    ("flags", "H", "0; reserved"),
    ("conn", "I", "connection id the server gave at CONNECT; 0 before"),
    ("seq", "Q", "the sender's message number on this connection (definition below)"),
    ("msg_id", "Q", "request id chosen by the client; a reply carries the request's"),
    ("code", "I", "request: the API number; reply: the NTSTATUS"),
)
SIZES = {"B": ("u8", 1), "H": ("u16", 2), "I": ("u32", 4), "Q": ("u64", 8)}

TYPE_USE = {
    wire.LPC_REQUEST: "client → server; answered by exactly one LPC_REPLY",
    wire.LPC_REPLY: "server → client; `code` is the NTSTATUS, body the reply fields",
    wire.LPC_DATAGRAM: "client → server; no reply (also the kernel's exit events)",
    wire.LPC_PORT_CLOSED: "client → server; the client closes its connection",
    wire.LPC_CLIENT_DIED: "reserved: client deaths come from the kernel's exit events",
    wire.LPC_ERROR_EVENT: "kernel → the hard-error port (csrss's ApiPort): a HARDERROR_MSG; "
    "answered by one LPC_REPLY with the response",
    wire.LPC_CONNECTION_REQUEST: "client → server; CONNECT, the first message of a connection",
}

PORT_STATUSES = (
    (NtStatus.STATUS_SUCCESS, "the call succeeded (reply body: the API's reply fields)"),
    (NtStatus.STATUS_INVALID_PARAMETER, "body not decodable within the limits, or not the schema"),
    (NtStatus.STATUS_PORT_MESSAGE_TOO_LONG, "body longer than the port's message length"),
    (NtStatus.STATUS_ILLEGAL_FUNCTION, "request before CONNECT / on another connection id"),
    (NtStatus.STATUS_NOT_IMPLEMENTED, "API number not in the port's table"),
    (NtStatus.STATUS_INSUFFICIENT_RESOURCES, "in-flight bound or request queue full"),
    (NtStatus.STATUS_INTERNAL_ERROR, "the handler failed; the server carries on"),
    (NtStatus.STATUS_PORT_CONNECTION_REFUSED, "CONNECT refused by the port's accept callback"),
    (NtStatus.STATUS_REVISION_MISMATCH, "CONNECT with another `proto`"),
    (NtStatus.STATUS_OBJECT_NAME_NOT_FOUND, "CONNECT naming another port"),
    (NtStatus.STATUS_IO_TIMEOUT, "client side: no reply before the call's deadline"),
    (NtStatus.STATUS_PORT_DISCONNECTED, "client side: the server process is gone"),
)


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ") or "—"


def _text(text: str) -> str:
    """Plain text for markdown: ``<ObjectDirectory>`` must not read as an HTML tag."""
    return text.replace("<", "&lt;")


def _table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> list[str]:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _fields(schema: dict) -> str:
    if not schema:
        return "{} (empty map)"
    return "<br>".join(f"`{name}`: {kind}" for name, kind in describe(schema))


def _status(status: int) -> str:
    return f"{hexstatus(status)} {NtStatus(status).name}"


# -- sections -----------------------------------------------------------------------------
def frames_section() -> list[str]:
    lines = [
        "## 1. Frames",
        "",
        "Every message is one ZeroMQ multipart message of three frames "
        "`[header, body, mac]` (a ROUTER server sees the peer's routing id in front). "
        "Clients use DEALER sockets, servers ROUTER sockets; never REQ/REP.",
        "",
        f"**header**: {wire.HEADER.size} bytes, little endian, no padding "
        f"(struct `{wire.HEADER.format}`):",
        "",
    ]
    rows, offset = [], 0
    for name, code, meaning in HEADER_FIELDS:
        kind, size = SIZES[code]
        rows.append((offset, size, f"`{name}`", kind, meaning))
        offset += size
    if wire.HEADER.format != "<" + "".join(code for _, code, _ in HEADER_FIELDS):
        raise RuntimeError(f"HEADER_FIELDS no longer describe {wire.HEADER.format}")
    lines += _table(("offset", "size", "field", "type", "meaning"), rows)
    lines += protocol_guide.seq_text()
    lines += [
        "**body**: a msgpack map (an empty body is `0x80`, the empty map). Strings are "
        "msgpack str (UTF-8), byte strings msgpack bin.",
        "",
        f"**mac**: {wire.MAC_SIZE} bytes, `HMAC-SHA256(key, header || body)`.",
        "",
        "### LPC message types",
        "",
    ]
    lines += _table(
        ("type", "name", "use"),
        ((t, f"`{n}`", TYPE_USE[t]) for t, n in sorted(wire.MESSAGE_TYPES.items())),
    )
    return lines


def signing_section() -> list[str]:
    return [
        "## 2. Signing and verifying",
        "",
        "The kernel makes a 32-byte key per boot and hands it to every process through an "
        "inherited pipe (or the 0600 file `<runtime>/key` in the 0700 runtime directory); "
        "never argv or the environment.",
        "",
        "```",
        "mac = HMAC-SHA256(key, header || body)          # || is concatenation",
        "frames = [header, body, mac]",
        "```",
        "",
        "A receiver, in this order, before unpacking anything:",
        "",
        f"1. exactly 3 frames, header {wire.HEADER.size} bytes, mac {wire.MAC_SIZE} bytes, "
        "else drop (`bad_frame`);",
        "2. recompute the MAC and compare in constant time, else drop (`bad_mac`);",
        f"3. `version` must be {wire.PROTOCOL_VERSION}, else drop (`bad_version`);",
        "4. replay rule (section 5), else drop (`replay`);",
        "5. only then unpack the body with the limits of section 4.",
        "",
        "Dropped frames get no reply (the sender is not authenticated); the server counts "
        "and logs them (`port.bad_mac`, `port.bad_frame`, `port.replay`, rate-limited).",
        "",
    ]


def connect_section() -> list[str]:
    lines = [
        "## 3. CONNECT",
        "",
        "The first message of a connection is an `LPC_CONNECTION_REQUEST` with `conn` 0, "
        "`code` 0 and this body:",
        "",
    ]
    lines += _table(("field", "type"), ((f"`{k}`", v) for k, v in describe(CONNECT_SCHEMA)))
    lines += [
        f"`proto` is {CONNECT_VERSION}; `port` is the port's name (case-insensitive); "
        "`info` is the port's connection information (its schema is given per port below).",
        "",
        "The reply is an `LPC_REPLY` with the CONNECT's `msg_id`. On STATUS_SUCCESS its body "
        "is `{conn: u32, info: map}`: `conn` goes into the header of every later message of "
        "this connection, `info` is what the server's accept callback returned. Otherwise "
        "the code says why (STATUS_PORT_CONNECTION_REFUSED, STATUS_REVISION_MISMATCH, "
        "STATUS_OBJECT_NAME_NOT_FOUND, STATUS_INVALID_PARAMETER).",
        "",
        "`port` is the port's full object name, the one NtOpenPort was given "
        "(`\\Sessions\\1\\Windows\\ApiPort` for session 1's csrss, not "
        "`\\Windows\\ApiPort`).",
        "",
        "A request before CONNECT, or with a `conn` the server did not give this peer, is "
        "answered STATUS_ILLEGAL_FUNCTION. `LPC_PORT_CLOSED` ends the connection; a server "
        "also closes every connection of a process the kernel reports dead.",
        "",
        *protocol_guide.refused_text(),
    ]
    return lines


def limits_section() -> list[str]:
    lines = [
        "## 4. Limits and statuses",
        "",
        f"- A body longer than the port's max message length (tables below) is answered "
        f"STATUS_PORT_MESSAGE_TOO_LONG; client stubs refuse it without sending. Frames longer "
        f"than max message length + {MAXMSGSIZE_SLACK} bytes make libzmq drop the peer "
        "(ZMQ_MAXMSGSIZE).",
        "- msgpack decoding: no ext types at all (Timestamp included), map keys str only, "
        f"arrays ≤ {wire.MAX_ARRAY} items, maps ≤ {wire.MAX_MAP} entries, str/bin ≤ the "
        "message length, no trailing bytes.",
        "- Schemas are closed: unknown keys, missing required keys and wrong types "
        "(a bool is not an int, bin is not str) are STATUS_INVALID_PARAMETER; nesting is "
        "limited to 8 levels.",
        "- Each connection has a bound on requests in flight; beyond it, and when the "
        "port's queue is full, requests are answered STATUS_INSUFFICIENT_RESOURCES at once.",
        "- Replies: `conn` as in the request, `msg_id` the request's, `code` the NTSTATUS, "
        "`seq` as defined in section 1.",
        "- A successful reply's body matches the API's reply schema in section 9 exactly: "
        "the server checks it against the same table before sending (a mismatch is "
        "STATUS_INTERNAL_ERROR). Replies with another status are not described; the model "
        "sends them with an empty map, and clients must not rely on their body.",
        "",
        "Statuses a client can get from the port layer itself, on every port (section 9 "
        "lists what each port's server answers besides):",
        "",
    ]
    lines += _table(("NTSTATUS", "when"), ((_status(s), why) for s, why in PORT_STATUSES))
    return lines


def replay_identity_section() -> list[str]:
    return [
        "## 5. Replay rule",
        "",
        "Per peer (ZeroMQ routing id) the server keeps the last accepted `seq`. A verified "
        "frame whose `seq` is not greater is a replay: dropped, no reply, counted. Clients "
        "start at 1 on CONNECT and add 1 for every message they send (requests, datagrams, "
        "PORT_CLOSED); a stub that rejects a message locally does not use up a number.",
        "",
        "## 6. Identity (ZAP)",
        "",
        "Identity comes from the operating system, never from a message body:",
        "",
        "- every server socket sets `ZMQ_ZAP_DOMAIN` to its port name, mechanism NULL;",
        "- libzmq passes the ZAP handler the peer's `localhost:uid:gid:pid` from "
        "SO_PEERCRED; the connection is allowed only for the same uid and a pid that the "
        "kernel's process table lists as a live process of this boot (and on the port's "
        "allow-list). The handler answers 200 with `User-Id` = the pid, or 400;",
        "- a peer that sets its own routing id (`ZMQ_ROUTING_ID`) is refused, so routing "
        "ids cannot stand in for another process;",
        "- a refused client sees `ZMQ_EVENT_HANDSHAKE_FAILED_AUTH`; stubs report "
        "STATUS_PORT_CONNECTION_REFUSED. The server logs `port.connect_refused`;",
        "- handlers get the caller's pid, image, session and token from the kernel's "
        "record of that pid; an API that names another process checks it against the "
        "caller (STATUS_ACCESS_DENIED).",
        "",
        "## 7. Process-exit events",
        "",
        "The kernel publishes every process exit on a PUB socket (`<runtime>/ev`): the "
        f"topic frame `{events.TOPIC.decode()}` followed by the three signed frames of an "
        "`LPC_DATAGRAM` with body `{pid: u32, status: u32, image: str}` and increasing "
        "`seq`. Clients fail calls to a dead server with STATUS_PORT_DISCONNECTED; servers "
        "close the dead client's connections.",
        "",
    ]


def vector_section() -> list[str]:
    mtype, conn, seq, msg_id, code = VECTOR_REQUEST
    header, body, tag = wire.encode(VECTOR_KEY, mtype, conn, seq, msg_id, code, VECTOR_BODY)
    fields = wire.Header._make(wire.HEADER.unpack(header))
    return [
        "## 8. Worked example (test vector)",
        "",
        f"`NtOpenPort` (service {code}) on `{kernel.SYSTEM_SERVICE_PORT}`, connection {conn}, "
        f'sequence {seq}, message id {msg_id}, body `{{"name": "\\\\Windows\\\\ApiPort"}}`, '
        "with the key 00 01 02 … 1f:",
        "",
        "```",
        f"key:    {VECTOR_KEY.hex()}",
        f"header: {header.hex()}",
        f"body:   {body.hex()}",
        f"mac:    {tag.hex()}",
        "```",
        "",
        "The header bytes are "
        + ", ".join(f"`{name}` {getattr(fields, name)}" for name, _, _ in HEADER_FIELDS)
        + "; `mac` is HMAC-SHA256(key, header || body).",
        "",
        *protocol_guide.vectors(),
    ]


def _api_rows(apis: Iterable[Api]) -> list[tuple]:
    return [
        (
            f"{api.number} (0x{api.number:X})",
            f"`{api.name}`",
            _fields(api.request),
            _fields(api.reply),
            _text(api.doc),
        )
        for api in apis
    ]


def _csr_rows(apis: Iterable[csr.CsrApi]) -> list[tuple]:
    return [
        (
            f"0x{api.number:08X}",
            f"{api.api_id} / {api.index}",
            f"`{api.name}`<br>{api.routine}<br>{api.short_name}",
            _fields(api.request),
            _fields(api.reply),
            "yes" if api.valid_from_server else "no",
        )
        for api in apis
    ]


def _port_intro(name: str, protocol: Protocol) -> list[str]:
    lines = [f"**Port** `{name}` · max message length {protocol.max_message_length} bytes"]
    if protocol.doc:
        lines[0] += f" · {_text(protocol.doc)}"
    lines.append("")
    if protocol.connect_info:
        lines.append(f"CONNECT `info`: {_fields(protocol.connect_info)}")
        lines.append("")
    if protocol.statuses:
        lines.append("Statuses this port's server answers besides the port layer's:")
        lines.append("")
        lines += _table(("NTSTATUS", "when"), ((_status(st), w) for st, w in protocol.statuses))
    return lines


def ports_section() -> list[str]:
    columns = ("API number", "name", "request", "reply", "doc")
    lines = ["## 9. Ports and their APIs", ""]
    for number, name, protocol in (
        ("9.1", kernel.SYSTEM_SERVICE_PORT, kernel.SYSTEM_SERVICES),
        ("9.2", kernel.ATTACH_PORT, kernel.ATTACH),
        ("9.3", sm.SM_PORT_NAME, sm.SM_API_PORT),
        ("9.4", f"<ObjectDirectory>\\{sb.SB_PORT_NAME}", sb.SB_API_PORT),
    ):
        lines += [f"### {number} {_text(protocol.title)}", ""] + _port_intro(name, protocol)
        lines += _table(columns, _api_rows(protocol.apis))
    lines += [
        f"### 9.5 {_text(csr.API_PORT.title)}",
        "",
        *_port_intro(f"<ObjectDirectory>\\{csr.API_PORT_NAME}", csr.API_PORT),
        "API number = `(ServerId << 16) | ApiId`. An unknown server id or an ApiId outside "
        "the server's table is STATUS_ILLEGAL_FUNCTION, as is any call from a process csrss "
        "does not know (smss registers processes; CONNECT from others is refused). A server "
        "DLL's connection info goes in `CsrpClientConnect`:",
        "",
    ]
    lines += _table(
        ("server", "connection_info"),
        (
            ("BASESRV (1)", _fields(csr.BASESRV_CONNECT_INFO)),
            ("CONSRV (2)", _fields(csr.CONSRV_CONNECT_INFO)),
            ("USERSRV (3)", _fields(csr.USERSRV_CONNECT_INFO)),
        ),
    )
    lines += [
        "Per server DLL: the API number, ApiId / index in the DLL's dispatch table, the "
        "names (enum, server routine, name-table string; `ntctl csr call` takes any), the "
        "request and reply fields, and whether csrss may call it on itself "
        "(CsrCallServerFromServer's valid table).",
        "",
    ]
    columns = ("API number", "ApiId / index", "names", "request", "reply", "from server")
    for server_id, protocol in enumerate(csr.SERVER_PROTOCOLS):
        if not protocol.apis:  # sxssrv: a loaded server with no table of its own
            lines += [
                f"#### ServerId {server_id}: {protocol.title} (no APIs)",
                "",
                "Loaded from Windows 7 on (`ServerDll=sxssrv,4`); every API number of this "
                "server is STATUS_ILLEGAL_FUNCTION. Its routines are reached through "
                "BASESRV (`BasepSxsCreateActivationContext`).",
                "",
            ]
            continue
        base = min(api.api_id for api in protocol.apis)
        lines += [f"#### ServerId {server_id}: {protocol.title} (ApiId base {base})", ""]
        lines += _table(columns, _csr_rows(protocol.apis))
    lines += [
        "CsrLoadedServerDll has "
        + ", ".join(f"{n} slots in `{p}`" for p, n in csr.CSR_SERVER_DLL_MAX_BY_PROFILE.items())
        + f" ({csr.CSR_SERVER_DLL_MAX} in ReactOS): a ServerId past them is "
        "STATUS_ILLEGAL_FUNCTION in a call and STATUS_TOO_MANY_NAMES in CsrpClientConnect.",
        "",
    ]
    columns = ("API number", "name", "request", "reply", "doc")
    for number, name, protocol in (
        ("9.6", svcctl.SVCCTL_PORT_NAME, svcctl.SVCCTL_PORT),
        ("9.7", svcctl.CONTROL_PORT_NAME, svcctl.CONTROL_PORT),
        ("9.8", eventlog.EVENTLOG_PORT_NAME, eventlog.EVENTLOG_PORT),
        ("9.9", epmap.EPMAP_PORT_NAME, epmap.EPMAP_PORT),
        ("9.10", spoolss.SPOOLSS_PORT_NAME, spoolss.SPOOLSS_PORT),
        ("9.11", lsa.LSA_PORT_NAME, lsa.LSA_AUTH_PORT),
        ("9.12", samr.SAMR_PORT_NAME, samr.SAMR_PORT),
        ("9.13", lsarpc.LSARPC_PORT_NAME, lsarpc.LSARPC_PORT),
    ):
        lines += [f"### {number} {_text(protocol.title)}", ""] + _port_intro(name, protocol)
        lines += _table(columns, _api_rows(protocol.apis))
    return lines


def session_ports_section() -> list[str]:
    """LSM and winlogon (issue 9): RPC-like ports whose replies carry a win32 `error`."""
    columns = ("API number", "name", "request", "reply", "doc")
    lines = ["## 10. Session and shutdown ports", ""]
    for number, name, protocol in (
        ("10.1", lsm.LSM_PORT_NAME, lsm.LSM_API_PORT),
        ("10.2", winlogon.INIT_SHUTDOWN_PORT_NAME, winlogon.INIT_SHUTDOWN_PORT),
        ("10.3", winlogon.wmsg_port_name(1).replace("1", "<N>"), winlogon.WMSG_PORT),
        ("10.4", logonui.logonui_port_name(1).replace("1", "<N>"), logonui.LOGONUI_PORT),
    ):
        lines += [f"### {number} {_text(protocol.title)}", ""] + _port_intro(name, protocol)
        lines += _table(columns, _api_rows(protocol.apis))
    return lines


def render() -> str:
    lines = [
        "# ntmodel port protocol",
        "",
        "<!-- Generated by `python -m ports.protocol_doc` from the tables in ports/; "
        "do not edit by hand. -->",
        "",
        "LPC over ZeroMQ for implementers in other languages: how to reach a running "
        "machine, how a message is framed and signed, how a connection starts, the limits, "
        "and every port's API table with its request and reply schemas and statuses. "
        "`tests/cluster/test_conformance.py` drives a live machine using only this "
        "document (pyzmq, msgpack and hmac; none of the project's code).",
        "",
    ]
    for section in (
        protocol_guide.machine_section,
        frames_section,
        signing_section,
        connect_section,
        limits_section,
        replay_identity_section,
        vector_section,
        ports_section,
        session_ports_section,
    ):
        lines += section()
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ports.protocol_doc", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if PROTOCOL.md is stale")
    parser.add_argument("--output", type=Path, default=PATH, help="where to write")
    args = parser.parse_args(argv)
    text = render()
    if not args.check:
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
        return 0
    try:
        current = args.output.read_text(encoding="utf-8")
    except OSError:
        current = ""
    if current == text:
        return 0
    diff = difflib.unified_diff(
        current.splitlines(), text.splitlines(), "committed", "generated", lineterm="", n=1
    )
    sys.stderr.write("\n".join(list(diff)[:40]) + "\n")
    sys.stderr.write(f"{args.output} is stale: regenerate it with `python -m ports.protocol_doc`\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
