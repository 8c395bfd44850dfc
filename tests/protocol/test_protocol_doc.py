"""ports/PROTOCOL.md is generated from the code and its test vector is a real signed frame."""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

import pytest

from nt.status import NtStatus, hexstatus
from ports import (
    contract,
    csr,
    epmap,
    eventlog,
    kernel,
    lsa,
    lsarpc,
    protocol_doc,
    samr,
    sb,
    sm,
    spoolss,
    svcctl,
    wire,
)

COMMITTED = Path(protocol_doc.__file__).with_name("PROTOCOL.md")


def committed_text() -> str:
    return COMMITTED.read_text(encoding="utf-8")


def test_committed_protocol_md_matches_the_code() -> None:
    assert committed_text() == protocol_doc.render(), (
        "ports/PROTOCOL.md is stale: run `python -m ports.protocol_doc`"
    )


def test_check_flags_a_stale_file_with_a_diff_and_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    current = tmp_path / "PROTOCOL.md"
    current.write_text(protocol_doc.render(), encoding="utf-8")
    assert protocol_doc.main(["--check", "--output", str(current)]) == 0
    current.write_text(protocol_doc.render().replace("HMAC-SHA256", "HMAC-MD5", 1))
    assert protocol_doc.main(["--check", "--output", str(current)]) == 1
    err = capsys.readouterr().err
    assert "-" in err and "+" in err and "HMAC-MD5" in err
    assert "python -m ports.protocol_doc" in err


def _vector() -> dict[str, bytes]:
    block = re.search(r"```\nkey:.*?```", committed_text(), re.S)
    assert block, "no test vector block in PROTOCOL.md"
    found = dict(re.findall(r"^(key|header|body|mac):\s+([0-9a-f]+)$", block.group(0), re.M))
    assert set(found) == {"key", "header", "body", "mac"}
    return {name: bytes.fromhex(value) for name, value in found.items()}


def test_the_test_vector_verifies_with_wire_verify() -> None:
    v = _vector()
    header, body = wire.verify(v["key"], [v["header"], v["body"], v["mac"]])
    assert header.type == wire.LPC_REQUEST
    assert header.code == kernel.SERVICE["NtOpenPort"]
    assert wire.unpack_body(body, 4096) == {"name": "\\Windows\\ApiPort"}


def test_the_test_vector_follows_the_documented_recipe() -> None:
    v = _vector()  # what another language does: HMAC-SHA256(key, header || body)
    assert hmac.new(v["key"], v["header"] + v["body"], hashlib.sha256).digest() == v["mac"]
    with pytest.raises(wire.WireError):
        wire.verify(bytes(32), [v["header"], v["body"], v["mac"]])


def test_every_api_of_every_port_is_documented() -> None:
    text = committed_text()
    for protocol in (kernel.SYSTEM_SERVICES, kernel.ATTACH, sm.SM_API_PORT, sb.SB_API_PORT):
        for api in protocol.apis:
            assert f"| {api.number} (0x{api.number:X}) | `{api.name}` |" in text, api.name
    for api in csr.API_PORT.apis:
        assert f"| 0x{api.number:08X} | {api.api_id} / {api.index} | `{api.name}`" in text


def _blocks() -> list[dict[str, bytes]]:
    """Every ``header/body/mac`` block after the first (the CONNECT and reply vectors)."""
    text = committed_text()
    found = re.findall(
        r"```\nheader:\s+([0-9a-f]+)\nbody:\s+([0-9a-f]+)\nmac:\s+([0-9a-f]+)\n```", text
    )
    return [dict(zip(("header", "body", "mac"), map(bytes.fromhex, b), strict=True)) for b in found]


def test_issue5_connect_and_reply_vectors_verify_and_decode() -> None:
    key = _vector()["key"]
    (connect, reply) = _blocks()
    header, body = wire.verify(key, [connect["header"], connect["body"], connect["mac"]])
    assert header.type == wire.LPC_CONNECTION_REQUEST and (header.conn, header.seq) == (0, 1)
    assert wire.unpack_body(body, 4096) == {
        "port": kernel.SYSTEM_SERVICE_PORT,
        "info": {},
        "proto": contract.CONNECT_VERSION,
    }
    header, body = wire.verify(key, [reply["header"], reply["body"], reply["mac"]])
    assert header.type == wire.LPC_REPLY and header.code == 0 and header.msg_id == 7
    # the reply vector is a body the server would send: it matches NtOpenPort's reply schema
    contract.check_reply(
        kernel.SYSTEM_SERVICES.by_name()["NtOpenPort"], wire.unpack_body(body, 4096)
    )


# The modules whose handlers answer each port, and the statuses they use that never reach a
# client of that port (server DLL loading at start-up; csrss calling itself).
SERVERS = {
    kernel.SYSTEM_SERVICES.title: (
        kernel.SYSTEM_SERVICES,
        [
            "processes/kernel/services.py",
            "processes/kernel/ob.py",
            "processes/kernel/cm.py",
            "processes/kernel/ps.py",
            "nt/hive.py",
            "nt/regpath.py",
        ],
    ),
    sm.SM_API_PORT.title: (sm.SM_API_PORT, ["processes/smss/smloop.py"]),
    lsa.LSA_AUTH_PORT.title: (
        lsa.LSA_AUTH_PORT,
        ["processes/lsass/lsasrv.py", "processes/lsass/msv1_0.py"],
    ),
    samr.SAMR_PORT.title: (
        samr.SAMR_PORT,
        ["processes/lsass/samsrv.py", "processes/lsass/sam.py"],
    ),
    lsarpc.LSARPC_PORT.title: (lsarpc.LSARPC_PORT, ["processes/lsass/lsapolicy.py"]),
    sb.SB_API_PORT.title: (sb.SB_API_PORT, ["processes/csrss/session.py"]),
    csr.API_PORT.title: (
        csr.API_PORT,
        [
            f"processes/csrss/{m}.py"
            for m in (
                "api",
                "basesrv",
                "usersrv",
                "consrv",
                "conio",
                "console",
                "server",
                "process",
                "shutdown",
                "csrsrv",
            )
        ],
    ),
    svcctl.SVCCTL_PORT.title: (
        svcctl.SVCCTL_PORT,
        ["processes/services/rpcserver.py", "processes/services/services.py"],
    ),
    svcctl.CONTROL_PORT.title: (svcctl.CONTROL_PORT, ["processes/services/controlpipe.py"]),
    eventlog.EVENTLOG_PORT.title: (eventlog.EVENTLOG_PORT, ["processes/svchost/dll/wevtsvc.py"]),
    epmap.EPMAP_PORT.title: (epmap.EPMAP_PORT, ["processes/svchost/dll/rpcepmap.py"]),
    spoolss.SPOOLSS_PORT.title: (spoolss.SPOOLSS_PORT, ["processes/spoolsv/spooler.py"]),
}
NOT_ON_THE_WIRE = {
    "STATUS_SUCCESS",
    "STATUS_DLL_NOT_FOUND",
    "STATUS_PROCEDURE_NOT_FOUND",
    "STATUS_ACCESS_VIOLATION",
}


@pytest.mark.parametrize("title", list(SERVERS))
def test_issue5_every_status_a_server_uses_is_documented(title: str) -> None:
    protocol, modules = SERVERS[title]
    repo = COMMITTED.parents[1]
    used = set()
    for module in modules:
        used |= set(re.findall(r"\bSTATUS_[A-Z0-9_]+", (repo / module).read_text()))
    documented = {NtStatus(s).name for s, _ in protocol.statuses + protocol_doc.PORT_STATUSES}
    assert used - documented - NOT_ON_THE_WIRE == set()
    for status, _ in protocol.statuses:
        assert f"{hexstatus(status)} {NtStatus(status).name}" in committed_text()
