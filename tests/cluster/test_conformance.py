"""ports/PROTOCOL.md is enough to write a client: a script that knows only the document
(tests/cluster/conformance_client.py: pyzmq, msgpack, hmac; no ntmodel module) attaches
to a booted machine, registers with csrss and calls it. API numbers come from the
document's tables, read here; the script's results are checked against the document's
reply schemas and statuses.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.cluster.conftest import REPO, Machine

pytestmark = pytest.mark.cluster

DOC = REPO / "ports" / "PROTOCOL.md"
WANTED = (
    "KdAttachProcess",
    "NtQuerySystemInformation",
    "NtQueryDirectoryObject",
    "NtOpenPort",
    "SmpExecPgmApi",
    "CsrpClientConnect",
    "BasepGetTempFile",
)


def documented_api_numbers() -> dict[str, int]:
    """API name -> number from the document's table rows (decimal or 0x-hex first cell)."""
    numbers: dict[str, int] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not re.match(r"^(0x[0-9A-F]+|\d+)", cells[0]):
            continue
        names = re.findall(r"`(\w+)`", " ".join(cells[1:3]))
        if names:
            numbers.setdefault(names[0], int(cells[0].split()[0], 0))
    return {name: numbers[name] for name in WANTED}


def documented_status(name: str) -> int:
    found = re.search(rf"(0x[0-9A-F]{{8}}) {name}\b", DOC.read_text(encoding="utf-8"))
    assert found, f"{name} is not in PROTOCOL.md"
    return int(found.group(1), 16)


def test_issue5_a_client_written_from_protocol_md_alone_works(machine: Machine) -> None:
    apis = documented_api_numbers()
    r = subprocess.run(
        [
            sys.executable,
            "-I",
            str(REPO / "tests" / "cluster" / "conformance_client.py"),
            str(machine.root),
            json.dumps(apis),
        ],
        cwd=REPO / "tests",
        env=machine.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["project_modules"] == []  # nothing of ntmodel was imported
    assert out["key_len"] == 32
    assert (out["attach_connect"], out["attach"], out["kernel_connect"]) == (0, 0, 0)
    assert out["attach_kernel_pid"] == machine.kernel_pid()
    # exact reply shapes (§9.1): process records are maps, directory entries triples
    assert out["processes_status"] == 0
    me = next(p for p in out["processes"] if p["pid"] == out["pid"])
    assert (me["image"], me["state"], me["parent_pid"]) == ("conform.exe", "attached", 0)
    assert out["root_status"] == 0
    assert ["Sessions", "Directory", None] in out["root_entries"]
    # §0.4: registration through smss; a pid the caller did not create is refused
    assert out["sm_connect"] == 0
    assert out["exec_pgm_other"] == documented_status("STATUS_ACCESS_DENIED")
    assert out["exec_pgm_self"] == 0
    assert (out["csr_connect"], out["client_connect"], out["temp_file"]) == (0, 0, 0)
    assert set(out["temp_file_body"]) == {"unique_id"}
    assert out["bad_body"] == documented_status("STATUS_INVALID_PARAMETER")
    assert out["after_bad_body"] == 0
    refused = machine.events(event="smss.exec_pgm_refused", peer_pid=out["pid"])
    assert [e["child_pid"] for e in refused] == [machine.kernel_pid()]
