"""The logon path's parts without sockets: user hives in the registry (NtLoadKey's engine),
the credential provider loader, LogonUI's texts, userinit's command lines and Startup
items, PINs in SAM and MSV1_0."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from nt.hive import Registry, RegistryError
from nt.log import get_logger
from nt.regpath import REG_SZ
from nt.status import NtStatus as S
from ports import logonui as lui
from processes.logonui.credprov.loader import PROVIDERS_KEY, load_providers
from processes.userinit.userinit import image_of, startup_command
from processes.winlogon.wlx import dos_error
from tests.unit.lsass_fakes import ADMIN_TOKEN, Lsa, client

SID = "S-1-5-21-1-2-3-1000"


@pytest.fixture
def reg(tmp_path: Path):
    r = Registry(tmp_path / "config")
    yield r
    r.close()


def test_a_user_hive_is_made_from_default_loaded_at_hku_sid_and_flushed_on_unload(
    reg: Registry, tmp_path: Path
) -> None:
    reg.create_key(r"HKU\.DEFAULT\Control Panel\Desktop")
    reg.set_value(r"HKU\.DEFAULT\Control Panel\Desktop", "Wallpaper", REG_SZ, "bliss.bmp")
    ntuser = tmp_path / "Users" / "alice" / "NTUSER.DAT"
    assert reg.load_user_hive(SID, ntuser) is True
    assert reg.query_value(rf"HKU\{SID}\Control Panel\Desktop", "Wallpaper") == (
        REG_SZ,
        "bliss.bmp",
    )
    assert reg.enum_keys("HKU") == [".DEFAULT", SID]
    reg.create_key(rf"HKU\{SID}\Software\Mine")
    reg.set_value(rf"HKU\{SID}\Software\Mine", "x", REG_SZ, "hers")
    assert not reg.key_exists(r"HKU\.DEFAULT\Software\Mine")  # a copy, not the same hive
    with pytest.raises(RegistryError) as other:
        reg.load_user_hive(SID, tmp_path / "elsewhere.dat")
    assert other.value.status == S.STATUS_OBJECT_NAME_COLLISION
    assert reg.load_user_hive(SID, ntuser) is False  # her second session: counted
    reg.unload_user_hive(SID)
    assert reg.query_value(rf"HKU\{SID}\Software\Mine", "x") == (REG_SZ, "hers")  # in use
    reg.unload_user_hive(SID)
    with pytest.raises(RegistryError) as gone:
        reg.query_value(rf"HKU\{SID}\Software\Mine", "x")
    assert gone.value.status == S.STATUS_OBJECT_NAME_NOT_FOUND
    assert reg.load_user_hive(SID, ntuser) is False  # her file, as she left it
    assert reg.query_value(rf"HKU\{SID}\Software\Mine", "x") == (REG_SZ, "hers")


class FakeReg:
    def __init__(self, keys: dict[str, dict[str, str]]) -> None:
        self.keys = keys

    def enum_keys(self, path: str) -> list[str]:
        return [k for k in self.keys]

    def query_value(self, path: str, name: str) -> tuple[int, str]:
        clsid = path.rsplit("\\", 1)[1]
        return REG_SZ, self.keys[clsid][name]


def test_providers_load_by_clsid_and_a_bad_entry_is_skipped_not_imported() -> None:
    keys = {
        lui.PASSWORD_PROVIDER: {"PythonModule": "clsid_60b78e88_ead8_445c_9cfd_0b87f74ea6cd"},
        lui.PIN_PROVIDER: {"PythonModule": "clsid_d6886603_9d2f_4eb2_b667_1971041fa96b"},
        "{00000000-0000-0000-0000-000000000001}": {"PythonModule": "os"},  # not ours
        "{00000000-0000-0000-0000-000000000002}": {},
    }
    with capture_logs() as logs:
        found = load_providers(FakeReg(keys), get_logger())
    assert set(found) == {lui.PASSWORD_PROVIDER.casefold(), lui.PIN_PROVIDER.casefold()}
    pin = found[lui.PIN_PROVIDER.casefold()].get_serialization("NTMODEL\\bob", b"1234")
    assert pin == {"user": "bob", "domain": "NTMODEL", "secret": b"1234", "pin": True}
    skipped = [e["reason"] for e in logs if e["event"] == "logonui.provider_skipped"]
    assert sorted(skipped) == ["bad module name", "no PythonModule"]
    assert PROVIDERS_KEY.endswith("Authentication\\Credential Providers")


def test_logonui_shows_windows_texts_for_logon_failures() -> None:
    assert lui.logon_message(S.STATUS_LOGON_FAILURE) == "The user name or password is incorrect."
    assert lui.logon_message(S.STATUS_ACCOUNT_LOCKED_OUT).startswith(
        "The referenced account is currently locked out"
    )
    assert "disabled" in lui.logon_message(S.STATUS_ACCOUNT_DISABLED)
    assert lui.logon_message(S.STATUS_LOGON_FAILURE, pin=True) == lui.PIN_INCORRECT
    assert "STATUS_OBJECT_NAME_NOT_FOUND" in lui.logon_message(S.STATUS_OBJECT_NAME_NOT_FOUND)
    assert dos_error(S.STATUS_LOGON_FAILURE) == 1326 and dos_error(S.STATUS_SUCCESS) == 0


def test_userinit_reads_command_lines_and_startup_items(tmp_path: Path) -> None:
    assert image_of('"C:\\Program Files\\App\\app.exe" /tray') == "C:\\Program Files\\App\\app.exe"
    assert image_of("C:\\Windows\\System32\\condemo.exe -x") == "C:\\Windows\\System32\\condemo.exe"
    item = tmp_path / "tool.cmd"
    item.write_text(
        "@echo off\r\nrem started at logon\r\n:: too\r\n\r\n@C:\\Tools\\tray.exe /min\r\n"
    )
    assert startup_command(item) == "C:\\Tools\\tray.exe /min"
    (tmp_path / "empty.cmd").write_text("@echo off\r\n")
    assert startup_command(tmp_path / "empty.cmd") is None


def test_a_pin_is_set_by_an_administrator_and_checked_like_a_password() -> None:
    m = Lsa()
    body = {"name": "bob", "password": b"B0b-pass", "admin": False, "full_name": ""}
    assert isinstance(m.samsrv.SamrCreateUser2InDomain(body, client(ADMIN_TOKEN)), dict)
    assert m.msv.logon("bob", b"1234", pin=True).status == S.STATUS_LOGON_FAILURE  # none set
    change = {"name": "bob", "password": None, "enabled": -1, "admin": -1, "unlock": False}
    change["password_must_change"] = -1
    assert m.samsrv.SamrSetInformationUser2({**change, "pin": b"12a4"}, client(ADMIN_TOKEN)) == (
        S.STATUS_PASSWORD_RESTRICTION
    )
    assert m.samsrv.SamrSetInformationUser2({**change, "pin": b"1234"}, client(ADMIN_TOKEN)) == {}
    assert m.sam.lookup("bob").pin_hash.startswith("$argon2id$")
    assert m.msv.logon("bob", b"1234", pin=True).status == S.STATUS_SUCCESS
    assert m.msv.logon("bob", b"1234").status == S.STATUS_LOGON_FAILURE  # not the password
    assert m.msv.logon("bob", b"4321", pin=True).status == S.STATUS_LOGON_FAILURE
    assert m.sam.lookup("bob").bad_password_count == 2  # one lockout counter for both
