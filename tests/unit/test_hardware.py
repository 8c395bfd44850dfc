"""processes/kernel/hardware.py: the volatile HARDWARE hive built from the real machine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nt.hive import Registry
from processes.kernel.hardware import build_hardware, parse_cpuinfo, processor_identifier

CPU = r"HKLM\HARDWARE\DESCRIPTION\System\CentralProcessor"
MEM = r"HKLM\HARDWARE\RESOURCEMAP\System Resources\Physical Memory"


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[Registry]:
    r = Registry(tmp_path / "config")
    yield r
    r.close()


def test_one_central_processor_subkey_per_cpu_in_proc_cpuinfo(reg: Registry) -> None:
    text = Path("/proc/cpuinfo").read_text()
    expected = sum(1 for line in text.splitlines() if line.split(":")[0].strip() == "processor")
    assert expected > 0
    assert build_hardware(reg) == expected
    assert reg.enum_keys(CPU) == sorted((str(n) for n in range(expected)), key=str.casefold)
    names = {n for n, _, _ in reg.enum_values(CPU + r"\0")}
    assert {"Identifier", "~MHz", "ProcessorNameString"} <= names
    assert reg.query_value(r"HKLM\HARDWARE\DESCRIPTION\System", "Identifier") == (
        1,
        "AT/AT COMPATIBLE",
    )
    total = reg.query_value(MEM, "TotalPhysicalBytes")
    assert total[0] == 11 and total[1] > 0
    assert reg.key_exists(r"HKLM\HARDWARE\DEVICEMAP")


def test_fake_machine_with_three_cpus_and_full_dmi(reg: Registry, tmp_path: Path) -> None:
    proc, dmi = tmp_path / "proc", tmp_path / "dmi"
    proc.mkdir()
    dmi.mkdir()
    block = (
        "processor\t: {n}\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\n"
        "model name\t: Intel(R) Xeon(R) Gold 6230\nstepping\t: 7\ncpu MHz\t\t: 2100.000\n\n"
    )
    (proc / "cpuinfo").write_text("".join(block.format(n=n) for n in range(3)))
    (proc / "meminfo").write_text("MemTotal:       16384 kB\nMemFree: 1 kB\n")
    (dmi / "bios_version").write_text("1.2.3\n")
    (dmi / "bios_date").write_text("03/14/2024\n")
    (dmi / "sys_vendor").write_text("Dell Inc.\n")
    assert build_hardware(reg, proc=proc, dmi=dmi) == 3
    assert reg.enum_keys(CPU) == ["0", "1", "2"]
    assert reg.query_value(CPU + r"\2", "Identifier") == (1, "Intel64 Family 6 Model 85 Stepping 7")
    assert reg.query_value(CPU + r"\2", "~MHz") == (4, 2100)
    assert reg.query_value(CPU + r"\0", "VendorIdentifier") == (1, "GenuineIntel")
    assert reg.query_value(CPU + r"\0", "ProcessorNameString") == (1, "Intel(R) Xeon(R) Gold 6230")
    system = r"HKLM\HARDWARE\DESCRIPTION\System"
    assert reg.query_value(system, "SystemBiosVersion") == (7, ["1.2.3"])
    assert reg.query_value(system, "SystemBiosDate") == (1, "03/14/2024")
    assert reg.query_value(system + r"\BIOS", "SystemManufacturer") == (1, "Dell Inc.")
    assert reg.query_value(MEM, "TotalPhysicalBytes") == (11, 16384 * 1024)
    assert reg.enum_keys(system + r"\FloatingPointProcessor") == ["0", "1", "2"]


def test_missing_proc_files_and_fields_do_not_crash(reg: Registry, tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "cpuinfo").write_text("processor : 0\n\nprocessor : 1\ncpu MHz : fast\n")
    assert build_hardware(reg, proc=proc, dmi=tmp_path / "absent") == 2
    assert reg.query_value(CPU + r"\1", "~MHz") == (4, 0)
    assert reg.query_value(CPU + r"\0", "Identifier")[1].endswith("Family 0 Model 0 Stepping 0")
    assert not reg.enum_values(MEM)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert build_hardware(reg, proc=empty, dmi=empty) == 0


def test_hardware_is_rebuilt_each_boot(tmp_path: Path) -> None:
    config = tmp_path / "config"
    with Registry(config) as reg:
        build_hardware(reg)
    with Registry(config) as reg:
        assert reg.enum_keys(r"HKLM\HARDWARE") == []


def test_parse_cpuinfo_and_identifier_for_amd() -> None:
    cpus = parse_cpuinfo(
        "processor : 0\nvendor_id : AuthenticAMD\ncpu family : 25\nmodel : 17\nstepping : 1\n"
    )
    assert processor_identifier(cpus[0]) == "AMD64 Family 25 Model 17 Stepping 1"
