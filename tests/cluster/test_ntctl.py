"""ntctl against a running machine: ps, kill, logs, reg, obj, csr call, boot options."""

from __future__ import annotations

import json

import pytest

from tests.cluster.conftest import Machine

pytestmark = pytest.mark.cluster

SESSION_MANAGER = r"HKLM\SYSTEM\CurrentControlSet\Control\Session Manager"


def test_ps_json_and_tree_show_the_same_processes(machine: Machine) -> None:
    rows = machine.processes()
    tree = machine.ntctl("ps").stdout
    for row in rows:
        if row["image"] != "ntctl.exe":
            assert f"{row['image']}  {row['pid']}" in tree
    keys = {"pid", "image", "parent_pid", "session", "critical", "state", "create_time"}
    assert all(keys <= row.keys() for row in rows)
    exited = {
        r["pid"]
        for r in json.loads(machine.ntctl("ps", "--all", "--json").stdout)
        if r["state"] == "exited"
    }
    assert exited, "--all keeps exited processes (the smss instances, autochk) as tombstones"


def test_kill_refuses_an_unknown_process(machine: Machine) -> None:
    r = machine.ntctl("kill", "nosuch", check=False)
    assert r.returncode == 2 and "no such process" in r.stderr
    r = machine.ntctl("kill", "csrss", check=False)  # two sessions: ambiguous
    assert r.returncode == 2 and "give a pid" in r.stderr


def test_reg_query_reads_the_session_manager_key(machine: Machine) -> None:
    data = json.loads(machine.ntctl("reg", "query", SESSION_MANAGER, "--json").stdout)
    values = {v["name"]: v for v in data["values"]}
    assert values["BootExecute"]["type"] == "REG_MULTI_SZ"
    assert values["BootExecute"]["data"] == ["autocheck autochk *"]
    assert "SubSystems" in data["subkeys"] and "Environment" in data["subkeys"]
    text = machine.ntctl("reg", "query", SESSION_MANAGER + r"\SubSystems", "/v", "Windows").stdout
    assert "REG_EXPAND_SZ" in text and "csrss.exe ObjectDirectory=\\Windows" in text


def test_smss_wrote_the_dynamic_environment_values(machine: Machine) -> None:
    env = json.loads(
        machine.ntctl("reg", "query", SESSION_MANAGER + r"\Environment", "--json").stdout
    )
    names = {v["name"]: v["data"] for v in env["values"]}
    assert names["OS"] == "Windows_NT" and names["NUMBER_OF_PROCESSORS"].isdigit()


def test_reg_add_query_delete_round_trip(machine: Machine) -> None:
    key = r"HKLM\SOFTWARE\ntmodel-test"
    machine.ntctl("reg", "add", key, "/v", "Answer", "/t", "REG_DWORD", "/d", "0x2a")
    data = json.loads(machine.ntctl("reg", "query", key, "/v", "Answer", "--json").stdout)
    assert data["values"][0]["data"] == 42
    machine.ntctl("reg", "delete", key)
    r = machine.ntctl("reg", "query", key, check=False)
    assert r.returncode != 0 and "STATUS_OBJECT_NAME_NOT_FOUND" in r.stderr


def test_reg_add_refuses_bad_data_with_a_clear_message(machine: Machine) -> None:
    r = machine.ntctl(
        "reg", "add", r"HKLM\SOFTWARE\x", "/v", "v", "/t", "REG_DWORD", "/d", "nope", check=False
    )
    assert r.returncode == 2 and "not valid REG_DWORD" in r.stderr


def test_reg_import_export_round_trip_in_utf16(machine: Machine, tmp_path) -> None:
    src = tmp_path / "in.reg"
    src.write_bytes(
        b"\xff\xfe"
        + (
            "Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\Imported]\r\n"
            '"Name"="value"\r\n"Count"=dword:00000007\r\n'
            '"Multi"=hex(7):61,00,00,00,62,00,00,00,00,00\r\n'
        ).encode("utf-16-le")
    )
    machine.ntctl("reg", "import", str(src))
    out = tmp_path / "out.reg"
    machine.ntctl("reg", "export", r"HKLM\SOFTWARE\Imported", str(out))
    raw = out.read_bytes()
    assert raw.startswith(b"\xff\xfe")
    text = raw[2:].decode("utf-16-le")
    assert '"Name"="value"' in text and '"Count"=dword:00000007' in text and "hex(7):" in text


def test_reg_import_of_a_malformed_file_names_the_line_and_imports_nothing(
    machine: Machine, tmp_path
) -> None:
    bad = tmp_path / "bad.reg"
    bad.write_text(
        "Windows Registry Editor Version 5.00\n\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\Half]\n"
        '"ok"="fine"\n"broken"=dword:zz\n'
    )
    r = machine.ntctl("reg", "import", str(bad), check=False)
    assert r.returncode == 2 and "line 5" in r.stderr
    q = machine.ntctl("reg", "query", r"HKLM\SOFTWARE\Half", check=False)
    assert q.returncode != 0, "nothing of a failed import may be applied"


def test_obj_lists_the_namespace_like_winobj(machine: Machine) -> None:
    root = json.loads(machine.ntctl("obj", "\\", "--json").stdout)
    names = {e["name"]: e for e in root["entries"]}
    assert names["SmApiPort"]["type"] == "Port" and names["Windows"]["type"] == "Directory"
    assert names["??"]["type"] == "SymbolicLink"
    windows = json.loads(machine.ntctl("obj", "\\Windows", "--json").stdout)
    assert {"ApiPort", "SbApiPort"} <= {e["name"] for e in windows["entries"]}
    dos = json.loads(machine.ntctl("obj", "\\??", "--json").stdout)
    links = {e["name"]: e.get("target") for e in dos["entries"]}
    assert links["NUL"] == "\\Device\\Null" and links["C:"] == "\\Device\\HarddiskVolume1"
    session1 = json.loads(machine.ntctl("obj", "\\Sessions\\1\\Windows", "--json").stdout)
    assert "ApiPort" in {e["name"] for e in session1["entries"]}


def test_csr_call_get_temp_file_counts_up(machine: Machine) -> None:
    first = json.loads(machine.ntctl("csr", "call", "BaseSrvGetTempFile", "--json").stdout)
    second = json.loads(machine.ntctl("csr", "call", "BasepGetTempFile", "--json").stdout)
    assert first["status_name"] == "STATUS_SUCCESS" and first["api_number"] == "0x00010002"
    assert second["reply"]["unique_id"] > first["reply"]["unique_id"]


def test_csr_call_define_dos_device_creates_a_link(machine: Machine) -> None:
    machine.ntctl(
        "csr",
        "call",
        "BaseSrvDefineDosDevice",
        "flags=1",
        "device_name=Q:",
        "target_path=\\Device\\HarddiskVolume1",
    )
    dos = json.loads(machine.ntctl("obj", "\\Sessions\\1\\DosDevices", "--json").stdout)
    dos_global = json.loads(machine.ntctl("obj", "\\??", "--json").stdout)
    targets = {e["name"]: e.get("target") for e in dos["entries"] + dos_global["entries"]}
    assert targets.get("Q:") == "\\Device\\HarddiskVolume1"


def test_csr_call_refuses_to_end_a_critical_process(machine: Machine) -> None:
    csrss = machine.pid_of("csrss.exe", 1)
    r = machine.ntctl("csr", "call", "SrvEndTask", f"process_id={csrss}", "--json", check=False)
    assert r.returncode == 1
    assert json.loads(r.stdout)["status_name"] == "STATUS_ACCESS_DENIED"
    assert machine.pid_of("csrss.exe", 1) == csrss and not machine.events(event="bugcheck")


def test_csr_call_with_an_unknown_api_explains(machine: Machine) -> None:
    r = machine.ntctl("csr", "call", "NoSuchApi", check=False)
    assert r.returncode == 2 and "BaseSrvGetTempFile" in r.stderr


def test_logs_filter_by_image_event_and_json(machine: Machine) -> None:
    out = machine.ntctl("logs", "--image", "csrss.exe", "--event", "csr.ready", "--json").stdout
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(events) == 2 and {e["session"] for e in events} == {0, 1}
    text = machine.ntctl("logs", "--event", "proc.start", "--session", "1").stdout
    assert "winlogon.exe" in text and "csrss.exe" in text and "wininit.exe" not in text
    r = machine.ntctl("logs", "--boot", "nosuchboot", check=False)
    assert r.returncode == 2


def test_boot_options_sos_safeboot_and_bootlog(machine_factory) -> None:
    m = machine_factory()
    assert m.boot("--boot", "/SOS /SAFEBOOT:MINIMAL /BOOTLOG").returncode == 0
    start = m.events(event="boot.start")[0]
    assert start["sos"] is True
    option = json.loads(
        m.ntctl(
            "reg",
            "query",
            r"HKLM\SYSTEM\CurrentControlSet\Control\SafeBoot\Option",
            "/v",
            "OptionValue",
            "--json",
        ).stdout
    )
    assert option["values"][0]["data"] == 1
    opts = json.loads(
        m.ntctl(
            "reg",
            "query",
            r"HKLM\SYSTEM\CurrentControlSet\Control",
            "/v",
            "SystemStartOptions",
            "--json",
        ).stdout
    )
    assert "SAFEBOOT:MINIMAL" in opts["values"][0]["data"] and "SOS" in opts["values"][0]["data"]
    assert (m.root / "C" / "Windows" / "ntbtlog.txt").exists()
    env = json.loads(m.ntctl("reg", "query", SESSION_MANAGER + r"\Environment", "--json").stdout)
    assert {v["name"]: v["data"] for v in env["values"]}["SAFEBOOT_OPTION"] == "MINIMAL"


def test_bad_boot_option_is_refused_with_a_fix(machine_factory) -> None:
    m = machine_factory()
    r = m.boot("--boot", "/SAFEBOOT:BOGUS")
    assert r.returncode != 0
    log = (m.root / "logs" / "console.log").read_text()
    assert "SAFEBOOT" in log
