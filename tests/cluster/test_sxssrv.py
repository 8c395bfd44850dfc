"""A real Windows 10 SubSystems key boots (issue 7): csrss loads sxssrv into slot 4 of its
six, and the activation contexts it creates are reached through basesrv. The win7 profile
has five slots, so a sixth server DLL stops the machine as Windows 7 would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cluster.conftest import Machine

pytestmark = pytest.mark.cluster

KEY = r"HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Control\Session Manager\SubSystems"
# The values as a Windows 10 22H2 SYSTEM hive holds them (reg export).
WIN10_WINDOWS = (
    r"%SystemRoot%\system32\csrss.exe ObjectDirectory=\Windows SharedSection=1024,20480,768 "
    r"Windows=On SubSystemType=Windows ServerDll=basesrv,1 "
    r"ServerDll=winsrv:UserServerDllInitialization,3 ServerDll=sxssrv,4 "
    r"ProfileControl=Off MaxRequestThreads=16"
)
WIN10_KMODE = r"\SystemRoot\System32\win32k.sys"
STATUS_TOO_MANY_NAMES = 0xC00000CD


def _hex(data: bytes) -> str:
    return ",".join(f"{b:02x}" for b in data)


def expand_sz(text: str) -> str:
    return "hex(2):" + _hex((text + "\0").encode("utf-16-le"))


def multi_sz(*items: str) -> str:
    return "hex(7):" + _hex("".join(i + "\0" for i in items).encode("utf-16-le") + b"\0\0")


def subsystems_reg(path: Path, windows: str) -> Path:
    """The whole SubSystems key as regedit exports it: Debug, Kmode, Optional, Required,
    Windows."""
    path.write_text(
        "Windows Registry Editor Version 5.00\n\n"
        f"[{KEY}]\n"
        f'"Debug"={expand_sz("")}\n'
        f'"Kmode"={expand_sz(WIN10_KMODE)}\n'
        f'"Optional"={multi_sz()}\n'
        f'"Required"={multi_sz("Debug", "Windows")}\n'
        f'"Windows"={expand_sz(windows)}\n'
    )
    return path


def test_the_windows_10_subsystems_key_boots_with_sxssrv(machine_factory, tmp_path) -> None:
    m: Machine = machine_factory()
    r = m.boot("--reg", str(subsystems_reg(tmp_path / "subsystems.reg", WIN10_WINDOWS)))
    assert r.returncode == 0, f"boot failed:\n{r.stdout}\n{r.stderr}"
    m.wait_event("logon.ready", session=1)
    for session in (0, 1):
        loaded = m.events(event="csr.server_dll_loaded", session=session)
        assert [(e["dll"], e["server_id"]) for e in loaded] == [
            ("CSRSS", 0),
            ("basesrv", 1),
            ("winsrv", 3),
            ("sxssrv", 4),
        ]
        (ready,) = m.events(event="csr.ready", session=session)
        assert ready["server_dlls"] == ["CSRSS", "basesrv", None, "winsrv", "sxssrv", None]
    assert m.events(event="divergence", image="csrss.exe", session=1)
    manifest = r"manifest_path=C:\Windows\System32\notepad.exe"
    first = json.loads(
        m.ntctl("csr", "call", "BasepSxsCreateActivationContext", manifest, "--json").stdout
    )
    again = json.loads(
        m.ntctl("csr", "call", "BasepSxsCreateActivationContext", manifest, "--json").stdout
    )
    assert first["status_name"] == again["status_name"] == "STATUS_SUCCESS"
    assert first["reply"] == {"activation_context": 1, "cached": False}
    assert again["reply"] == {"activation_context": 1, "cached": True}
    # server 4 has no API table: its numbers are refused, and csrss carries on
    refused = m.ntctl("csr", "call", "0x00040000", "--json", check=False)
    assert json.loads(refused.stdout)["status_name"] == "STATUS_ILLEGAL_FUNCTION"
    assert not m.events(event="bugcheck")


def test_win7_has_five_slots_so_server_dll_5_stops_the_machine(machine_factory, tmp_path) -> None:
    windows = WIN10_WINDOWS.replace("ServerDll=sxssrv,4", "ServerDll=sxssrv,5")
    m: Machine = machine_factory()
    r = m.boot("--profile", "win7", "--reg", str(subsystems_reg(tmp_path / "s.reg", windows)))
    assert r.returncode != 0
    m.wait_stopped()
    (refused,) = m.events(event="csr.too_many_server_dlls", session=0)
    assert (refused["dll"], refused["server_id"], refused["slots"]) == ("sxssrv", 5, 5)
    dump = m.latest_dump()
    assert dump["bugcheck_code"] == 0xC000021A
    assert dump["parameters"][1] == STATUS_TOO_MANY_NAMES
