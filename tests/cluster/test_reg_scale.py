"""The registry at the scale of a real hive, through the running machine: ntctl reg
import/export/query of a control-set export (chunked on the kernel port, byte for byte),
an import failing at commit that leaves nothing, and booting from a binary SYSTEM hive
(--system-hive) or refusing a damaged one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nt import regsnap
from tests.bench.bench_reg import records_of
from tests.cluster.conftest import Machine
from tests.regfwriter import Key, build_hive, log_entry, log_file, set_seq
from tests.regscale import control_set, count, with_config

pytestmark = pytest.mark.cluster

CS5 = "HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet005"


def test_control_set_export_round_trips_through_the_machine(
    machine: Machine, tmp_path: Path
) -> None:
    cs = control_set(Key("ROOT"), services=150, devices=200)  # ~2.4 MB: several chunks
    data = b"\xff\xfe" + regsnap.dumps(records_of(cs, CS5)).encode("utf-16-le")
    src = tmp_path / "cs.reg"
    src.write_bytes(data)
    keys, values = count(cs)
    r = machine.ntctl("reg", "import", str(src), timeout=60)
    assert f"({keys} keys, {values} values)" in r.stdout
    out = tmp_path / "out.reg"
    machine.ntctl("reg", "export", CS5, str(out), timeout=60)
    assert out.read_bytes() == data
    tree = json.loads(machine.ntctl("reg", "query", CS5 + r"\Services", "/s", "--json").stdout)
    assert len(tree["subkeys"]) == 150 and len(tree["children"]) == 150
    first = tree["children"][0]
    assert first["key"] == CS5 + r"\Services\Svc0000" and first["subkeys"][0] == "Enum"
    text = machine.ntctl("reg", "query", CS5 + r"\Services\Svc0000", "/s").stdout
    assert text.splitlines()[0] == CS5 + r"\Services\Svc0000"


def test_an_import_failing_at_commit_applies_none_of_its_chunks(
    machine: Machine, tmp_path: Path
) -> None:
    cs = control_set(Key("ROOT"), services=100, devices=100)
    records = records_of(cs, CS5)
    # Well-formed to the end; the kernel refuses the last line (a hive root cannot be
    # deleted) only when it applies the staged chunks.
    good = regsnap.dumps(records)
    text = good + "[-HKEY_LOCAL_MACHINE\\SYSTEM]\r\n"
    src = tmp_path / "bad.reg"
    src.write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))
    assert src.stat().st_size > 2 * (1 << 20)  # more than one chunk
    r = machine.ntctl("reg", "import", str(src), check=False, timeout=60)
    assert r.returncode == 1 and "STATUS_ACCESS_DENIED" in r.stderr
    assert f"line {good.count(chr(10)) + 1}: nothing was imported" in r.stderr
    q = machine.ntctl("reg", "query", CS5, check=False)
    assert q.returncode == 1 and "STATUS_OBJECT_NAME_NOT_FOUND" in q.stderr


def bulk_hive(tmp_path: Path, services: int, devices: int) -> tuple[Path, int]:
    root = with_config()
    control_set(root, services, devices, name="ControlSet002")  # not the set in use
    root.add("Model").values.append(("Prop", 0xFFFF0012, bytes(range(40))))
    keys, _ = count(root)
    path = tmp_path / "SYSTEM"
    path.write_bytes(build_hive(root))
    return path, keys


def test_boot_from_a_binary_system_hive(machine_factory, tmp_path: Path) -> None:
    # Mid-size (the real-scale hive is read and imported in tests/unit/test_cm_bulk.py).
    hive, keys = bulk_hive(tmp_path, services=120, devices=60)
    m = machine_factory()
    r = m.boot("--system-hive", str(hive))
    assert r.returncode == 0, f"boot failed:\n{r.stdout}\n{r.stderr}"
    prop = json.loads(m.ntctl("reg", "query", r"HKLM\SYSTEM\Model", "--json").stdout)
    assert prop["values"] == [
        {"name": "Prop", "type": "REG_4294901778", "data": bytes(range(40)).hex()}
    ]
    services = json.loads(
        m.ntctl("reg", "query", r"HKLM\SYSTEM\ControlSet002\Services", "--json").stdout
    )
    assert len(services["subkeys"]) == 120
    event = m.wait_event("cm.system_hive_read")
    assert event["keys"] == keys


def test_a_system_hive_whose_log_has_a_bad_hash_refuses_the_boot(
    machine_factory, tmp_path: Path
) -> None:
    good = build_hive(with_config())
    primary = set_seq(good, 3, 2)
    pages = [(0, good[4096 : 4096 + 4096])]
    log = bytearray(log_file(primary, [log_entry(2, len(good) - 4096, pages)]))
    log[512 + 4096] ^= 0xFF  # a byte of the dirty page: Hash-1 no longer matches
    (tmp_path / "SYSTEM").write_bytes(primary)
    (tmp_path / "SYSTEM.LOG1").write_bytes(bytes(log))
    m = machine_factory()
    r = m.boot("--system-hive", str(tmp_path / "SYSTEM"))
    assert r.returncode == 2
    assert "Hash-1" in r.stderr and "SYSTEM.LOG1" in r.stderr and "sequence number 2" in r.stderr
    assert not (m.root / "C" / "Windows" / "System32" / "config" / "SYSTEM").exists()
