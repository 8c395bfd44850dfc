"""The ApiPort, SbApiPort and SmApiPort tables: numbers, names, schemas."""

from __future__ import annotations

import pytest

from ports import csr, sb, sm
from ports.schema import Bin, Dict, Field, List, Map, OneOf, SchemaError, Str, validate

BASESRV_NAMES = [
    "CreateProcess", "CreateThread", "GetTempFile", "ExitProcess", "DebugProcess", "CheckVDM",
    "UpdateVDMEntry", "GetNextVDMCommand", "ExitVDM", "IsFirstVDM", "GetVDMExitCode",
    "SetReenterCount", "SetProcessShutdownParam", "GetProcessShutdownParam", "NlsSetUserInfo",
    "NlsSetMultipleUserInfo", "NlsCreateSection", "SetVDMCurDirs", "GetVDMCurDirs",
    "BatNotification", "RegisterWowExec", "SoundSentryNotification", "RefreshIniFileMapping",
    "DefineDosDevice", "SetTermsrvAppInstallMode", "NlsUpdateCacheCount",
    "SetTermsrvClientTimeZone", "SxsCreateActivationContext", "DebugProcessStop",
    "RegisterThread", "NlsGetUserInfo",
]  # fmt: skip
CONSRV_FIRST_20 = [
    "OpenConsole", "GetConsoleInput", "WriteConsoleInput", "ReadConsoleOutput",
    "WriteConsoleOutput", "ReadConsoleOutputString", "WriteConsoleOutputString",
    "FillConsoleOutput", "GetMode", "GetNumberOfFonts", "GetNumberOfInputEvents",
    "GetScreenBufferInfo", "GetCursorInfo", "GetMouseInfo", "GetFontInfo", "GetFontSize",
    "GetCurrentFont", "SetMode", "SetActiveScreenBuffer", "FlushInputBuffer",
]  # fmt: skip
CONSRV_NAMED = {
    29: "ReadConsole", 30: "WriteConsole", 34: "CloseHandle", 36: "Alloc", 37: "Free",
    38: "GetTitle", 39: "SetTitle", 40: "CreateScreenBuffer", 68: "GenerateCtrlEvent",
    82: "Attach", 84: "GetProcessList", 85: "GetHistory", 86: "SetHistory",
}  # fmt: skip
USERSRV_NAMES = [
    "ExitWindowsEx", "EndTask", "Logon", "RegisterServicesProcess", "ActivateDebugger",
    "GetThreadConsoleDesktop", "DeviceEvent", "RegisterLogonProcess", "CreateSystemThreads",
    "RecordShutdownReason",
]  # fmt: skip


def test_api_number_encoding_matches_csrmsg_h():
    assert csr.csr_api_number(0, 0) == 0x00000000
    assert csr.csr_api_number(1, 0) == 0x00010000
    assert csr.csr_api_number(2, 512) == 0x00020200
    assert csr.csr_api_number(3, 1024) == 0x00030400
    assert csr.csr_api_number(3, 1031) == 0x00030407
    assert csr.CSR_CREATE_API_NUMBER is csr.csr_api_number


def test_api_number_decoding():
    assert csr.api_number_to_server_id(0x00030407) == 3
    assert csr.api_number_to_api_id(0x00030407) == 0x407
    assert csr.api_number_to_server_id(0xFFFF0000) == 0xFFFF
    assert csr.api_number_to_server_id(-1) == 0xFFFF  # ULONG arithmetic
    for n in (0, 0x10000, 0x20256, 0x30409, 0x7FFF1234):
        assert csr.csr_api_number(csr.api_number_to_server_id(n), csr.api_number_to_api_id(n)) == n


def test_real_examples_from_the_spec():
    assert csr.lookup_api("CsrpClientConnect").number == 0x00000000
    assert csr.lookup_api("BasepCreateProcess").number == 0x00010000
    assert csr.lookup_api("ConsolepOpenConsole").number == 0x00020200
    assert csr.lookup_api("UserpExitWindowsEx").number == 0x00030400
    assert csr.lookup_api("UserpRegisterLogonProcess").number == 0x00030407


def test_table_sizes_are_highest_minus_base():
    assert len(csr.CSRSRV_APIS) == csr.CsrpMaxApiNumber - csr.CSRSRV_FIRST_API_NUMBER == 5
    assert len(csr.BASESRV_APIS) == csr.BasepMaxApiNumber - csr.BASESRV_FIRST_API_NUMBER == 31
    assert len(csr.CONSRV_APIS) == csr.ConsolepMaxApiNumber - csr.CONSRV_FIRST_API_NUMBER == 87
    assert len(csr.USERSRV_APIS) == csr.UserpMaxApiNumber - csr.USERSRV_FIRST_API_NUMBER == 10


def test_basesrv_indices_and_names():
    for api, name in zip(csr.BASESRV_APIS, BASESRV_NAMES, strict=True):
        assert api.name == "Basep" + name
        assert api.number == 0x00010000 + api.index
    assert csr.BASESRV_APIS[2].routine == "BaseSrvGetTempFile"
    assert csr.BASESRV_APIS[2].short_name == "BaseGetTempFile"
    assert csr.BASESRV_APIS[28].routine == "BaseSrvDebugProcess"


def test_consrv_indices_and_names():
    for api, name in zip(csr.CONSRV_APIS, CONSRV_FIRST_20, strict=False):
        assert api.name == "Consolep" + name
    for index, name in CONSRV_NAMED.items():
        api = csr.CONSRV_APIS[index]
        assert api.name == "Consolep" + name
        assert api.api_id == 512 + index and api.number == 0x00020000 + 512 + index
    assert csr.CONSRV_APIS[38].routine == "SrvGetConsoleTitle"
    assert csr.CONSRV_APIS[-1].api_id == 598


def test_usersrv_indices_and_names():
    for api, name in zip(csr.USERSRV_APIS, USERSRV_NAMES, strict=True):
        assert api.name == "Userp" + name
        assert api.routine == "Srv" + name
        assert api.number == 0x00030400 + api.index


def test_csrsrv_table():
    names = [a.short_name for a in csr.CSRSRV_APIS]
    assert names == [
        "ClientConnect",
        "ThreadConnect",
        "ProfileControl",
        "IdentifyAlertableThread",
        "SetPriorityClass",
    ]
    assert csr.CSRSRV_APIS[0].routine == "CsrSrvClientConnect"


def test_valid_tables():
    assert [a.valid_from_server for a in csr.CSRSRV_APIS] == [True, False, False, False, False]
    invalid = {a.index for a in csr.BASESRV_APIS if not a.valid_from_server}
    assert invalid == {3, 4, 28}
    assert {a.index for a in csr.CONSRV_APIS if a.valid_from_server} == {51}
    assert {a.index for a in csr.USERSRV_APIS if a.valid_from_server} == {5}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("BaseSrvGetTempFile", "BasepGetTempFile"),
        ("basepgettempfile", "BasepGetTempFile"),
        ("BaseGetTempFile", "BasepGetTempFile"),
        ("CsrSrvClientConnect", "CsrpClientConnect"),
        ("SrvExitWindowsEx", "UserpExitWindowsEx"),
        ("SRVREGISTERLOGONPROCESS", "UserpRegisterLogonProcess"),
        ("UserpRegisterLogonProcess", "UserpRegisterLogonProcess"),
        ("SrvGetConsoleTitle", "ConsolepGetTitle"),
        ("ConsolepGetTitle", "ConsolepGetTitle"),
        ("GetConsoleTitle", "ConsolepGetTitle"),
        ("BaseSrvDebugProcess", "BasepDebugProcess"),  # both 4 and 28: the first wins
        ("BaseSrvDebugProcessStop", "BasepDebugProcessStop"),
    ],
)
def test_lookup_by_any_name_case_insensitive(name, expected):
    assert csr.lookup_api(name).name == expected


def test_lookup_misses():
    assert csr.lookup_api("NtCreateFile") is None
    assert csr.api_by_number(0x0003040A) is None
    assert csr.api_by_number(0x00030409).name == "UserpRecordShutdownReason"


def test_api_numbers_are_unique():
    numbers = [a.number for a in csr.API_PORT.apis]
    assert len(numbers) == len(set(numbers)) == 5 + 31 + 87 + 10


def _walk(fld: Field):
    yield fld
    if isinstance(fld, Map):
        for sub in fld.fields.values():
            yield from _walk(sub)
    elif isinstance(fld, List):
        yield from _walk(fld.item)
    elif isinstance(fld, Dict):
        yield from _walk(fld.value)
    elif isinstance(fld, OneOf):
        for choice in fld.choices:
            yield from _walk(choice)


ALL_APIS = csr.API_PORT.apis + sb.SB_APIS + sm.SM_APIS


@pytest.mark.parametrize("api", ALL_APIS, ids=lambda a: a.name)
def test_every_schema_is_closed_and_bounded(api):
    with pytest.raises(SchemaError):
        validate(api.request, {"not_a_field": 1})
    for schema in (api.request, api.reply):
        for fld in schema.values():
            for part in _walk(fld):
                if isinstance(part, Str | Bin | List | Dict):
                    assert 0 < part.max_len <= 1 << 16


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("BasepDefineDosDevice", {"flags": "1", "device_name": "X:"}),
        ("BasepDefineDosDevice", {"flags": True, "device_name": "X:"}),
        ("BasepDefineDosDevice", {"flags": 1}),
        ("BasepDefineDosDevice", {"flags": 1, "device_name": b"X:"}),
        ("BasepDefineDosDevice", {"flags": -1, "device_name": "X:"}),
        ("BasepDefineDosDevice", {"flags": 1, "device_name": "X" * 261}),
        ("ConsolepWriteConsole", {"handle": 7, "text": "a" * 8193}),
        ("ConsolepWriteConsole", {"handle": 7, "text": "a\x00b"}),
        ("ConsolepWriteConsole", {"handle": 7, "text": "\ud800"}),
        ("ConsolepSetTitle", {"title": "t" * 1025}),
        ("UserpExitWindowsEx", {"flags": 1.0}),
        ("UserpExitWindowsEx", {"flags": 2**32}),
        ("UserpEndTask", {"process_id": 4, "force": 1}),
        ("BasepGetTempFile", {"unique_id": 1}),
        ("CsrpClientConnect", {"server_id": 1, "connection_info": {"x": {"nested": 1}}}),
        ("CsrpClientConnect", {"server_id": 1}),
    ],
)
def test_schemas_reject_wrong_types(name, body):
    with pytest.raises(SchemaError):
        validate(csr.lookup_api(name).request, body)


def test_schemas_accept_good_bodies_and_fill_defaults():
    body = validate(
        csr.lookup_api("BaseSrvDefineDosDevice").request, {"flags": 1, "device_name": "X:"}
    )
    assert body == {"flags": 1, "device_name": "X:", "target_path": ""}
    assert validate(csr.lookup_api("SrvExitWindowsEx").request, {"flags": 0x204}) == {
        "flags": 0x204,
        "logon_id": "",
    }


def test_sb_protocol():
    assert [a.number for a in sb.SB_APIS] == [0, 1, 2, 3]
    assert sb.SbpMaxApiNumber == 4
    create = sb.SB_APIS[sb.SbpCreateSession].request
    body = validate(create, {"session_id": 1, "process": {"pid": 42}})
    assert body["process"]["pid"] == 42 and body["process"]["tid"] == 0
    with pytest.raises(SchemaError):
        validate(create, {"session_id": 1, "process": {"pid": 42, "handle": 8}})


def test_sm_protocol_and_connect_info():
    assert [a.name for a in sm.SM_APIS][0] == "SmpCreateForeignSessionApi"
    assert [a.number for a in sm.SM_APIS] == list(range(sm.SmpMaxApiNumber))
    info = validate(sm.CONNECT_INFO, {"subsystem_type": 2, "sb_port": "\\Windows\\SbApiPort"})
    assert info["subsystem_type"] == sm.IMAGE_SUBSYSTEM_WINDOWS_GUI
    assert validate(sm.CONNECT_INFO, {"subsystem_type": 0}) == {"subsystem_type": 0, "sb_port": ""}
    with pytest.raises(SchemaError):
        validate(sm.CONNECT_INFO, {"subsystem_type": 2, "sb_port": "x" * 120})
    assert sm.SM_API_PORT.connect_info is sm.CONNECT_INFO
