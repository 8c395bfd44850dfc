"""The csrss ApiPort protocol: API numbers, names and message schemas of every server DLL.

API numbers follow ``csrmsg.h``: ``CSR_CREATE_API_NUMBER(ServerId, ApiId) = (ServerId << 16)
| ApiId``; the ApiId is absolute (consrv's first API is 512, usersrv's 1024) and the
dispatcher indexes its table with ``ApiId - ApiBase``. Tables and indices are ReactOS's
(``basemsg.h``, ``conmsg.h``, ``winmsg.h``, ``csrmsg.h``; nt-spec.md §3.9), names are the
real ones: each entry carries the API enum name (``BasepGetTempFile``), the server routine
(``BaseSrvGetTempFile``) and the server's name-table string (``BaseGetTempFile``), so
``ntctl csr call`` accepts any of them, case-insensitively (``lookup_api``).

Request bodies are closed msgpack maps. APIs the model answers with STATUS_NOT_IMPLEMENTED
take an empty body. Schemas check types and sizes only; semantic checks (ranges that
depend on state) are the handlers' job, as ``CsrValidateMessageBuffer`` is in NT.
"""

from __future__ import annotations

from dataclasses import dataclass

from nt.status import NtStatus as S
from ports.schema import U32, Api, Bool, Dict, Int, List, OneOf, Protocol, Str, Value

# CsrLoadedServerDll[] slots. ReactOS (csrsrv/api.h) and Windows 5.0 to 6.0 have 4; Geoff
# Chappell (CSR_SERVER_DLL): 3.10 to 4.0 had 16, Windows 7 raised it to 5 for sxssrv and
# Windows 8 to 6. A profile the table does not name gets ReactOS's 4.
CSR_SERVER_DLL_MAX = 4
CSR_SERVER_DLL_MAX_BY_PROFILE: dict[str, int] = {"win7": 5, "win10": 6}
CSRSRV_SERVERDLL_INDEX, CSRSRV_FIRST_API_NUMBER = 0, 0
BASESRV_SERVERDLL_INDEX, BASESRV_FIRST_API_NUMBER = 1, 0
CONSRV_SERVERDLL_INDEX, CONSRV_FIRST_API_NUMBER = 2, 512
USERSRV_SERVERDLL_INDEX, USERSRV_FIRST_API_NUMBER = 3, 1024
# sxssrv (Windows 7+, ``ServerDll=sxssrv,4``) fills in no API table: ApiBase,
# HighestApiSupported, DispatchTable and ValidTable are all 0 (its ServerDllInitialization).
SXSSRV_SERVERDLL_INDEX, SXSSRV_FIRST_API_NUMBER, SXSSRV_HIGHEST_API_SUPPORTED = 4, 0, 0
CsrpMaxApiNumber = 5
BasepMaxApiNumber = 31
ConsolepMaxApiNumber = 599
UserpMaxApiNumber = 1034

API_PORT_NAME = "ApiPort"
WINDOWS_DIRECTORY = "\\Windows"  # ObjectDirectory= on csrss's command line
# CSR_CSRSS_SECTION_SIZE: the client's port view, where NT puts capture buffers.
MAX_MESSAGE_LENGTH = 65536


def csr_server_dll_max(profile: str | None) -> int:
    """The number of CsrLoadedServerDll slots for a machine profile."""
    return CSR_SERVER_DLL_MAX_BY_PROFILE.get(profile or "", CSR_SERVER_DLL_MAX)


def object_directory(session: int | None, base: str = WINDOWS_DIRECTORY) -> str:
    """Where csrss of ``session`` keeps its ports: ``base`` in session 0, else under
    ``\\Sessions\\<n>`` (Windows; ReactOS does not, nt-spec §2.6 quirk, which would make
    session 1 collide with session 0's ports). kernel32 finds its ApiPort the same way."""
    return base if not session else f"\\Sessions\\{session}{base}"


def csr_api_number(server_id: int, api_id: int) -> int:
    """CSR_CREATE_API_NUMBER (a.k.a. CSR_MAKE_API_NUMBER)."""
    return ((server_id << 16) | api_id) & 0xFFFFFFFF


def api_number_to_server_id(api_number: int) -> int:
    """CSR_API_NUMBER_TO_SERVER_ID."""
    return (api_number & 0xFFFFFFFF) >> 16


def api_number_to_api_id(api_number: int) -> int:
    """CSR_API_NUMBER_TO_API_ID."""
    return api_number & 0xFFFF


CSR_CREATE_API_NUMBER = csr_api_number
CSR_API_NUMBER_TO_SERVER_ID = api_number_to_server_id
CSR_API_NUMBER_TO_API_ID = api_number_to_api_id


@dataclass(frozen=True)
class CsrApi(Api):
    """An ApiPort entry: ``name`` is the enum name, ``number`` the full API number."""

    server_id: int = 0
    api_id: int = 0
    index: int = 0
    routine: str = ""
    short_name: str = ""
    valid_from_server: bool = False

    def names(self) -> tuple[str, ...]:
        return (self.name, self.routine, self.short_name)


HANDLE = U32
TITLE_MAX = 1024  # characters; far below what a capture buffer could carry, on purpose
CONNECT_INFO = Dict(value=OneOf(choices=(Bool(), Value(max_len=1024))), max_len=32, key_len=64)


def _table(
    server_id: int, base: int, rows: list[tuple], valid: frozenset[int] = frozenset()
) -> tuple[CsrApi, ...]:
    """rows: (enum, routine, request, reply[, name-table string])."""
    apis = []
    for index, (enum, routine, request, reply, *short) in enumerate(rows):
        apis.append(
            CsrApi(
                number=csr_api_number(server_id, base + index),
                name=enum,
                request=request or {},
                reply=reply or {},
                server_id=server_id,
                api_id=base + index,
                index=index,
                routine=routine,
                short_name=short[0] if short else _short_name(routine),
                valid_from_server=index in valid,
            )
        )
    return tuple(apis)


def _short_name(routine: str) -> str:
    """The name-table string: BaseSrvGetTempFile -> BaseGetTempFile, SrvEndTask -> EndTask."""
    return routine[3:] if routine.startswith("Srv") else routine.replace("Srv", "", 1)


def _ni(enum: str, routine: str, short: str | None = None) -> tuple:
    """An API the model answers with a fixed status (STATUS_NOT_IMPLEMENTED mostly)."""
    return (enum, routine, None, None) + ((short,) if short else ())


# --- CSRSRV (server 0; csrsrv/server.c) ---------------------------------------------------

CSRSRV_APIS = _table(
    CSRSRV_SERVERDLL_INDEX,
    CSRSRV_FIRST_API_NUMBER,
    [
        (
            "CsrpClientConnect",
            "CsrSrvClientConnect",
            {"server_id": U32(), "connection_info": CONNECT_INFO},
            {"connection_info": Dict(value=Value(max_len=1024), max_len=32, optional=True)},
            "ClientConnect",
        ),
        # CsrServerApiDispatchTable points all four at CsrSrvUnusedFunction.
        _ni("CsrpThreadConnect", "CsrSrvUnusedFunction", "ThreadConnect"),
        _ni("CsrpProfileControl", "CsrSrvUnusedFunction", "ProfileControl"),
        _ni("CsrpIdentifyAlertableThread", "CsrSrvUnusedFunction", "IdentifyAlertableThread"),
        _ni("CsrpSetPriorityClass", "CsrSrvUnusedFunction", "SetPriorityClass"),
    ],
    valid=frozenset({0}),
)

# --- BASESRV (server 1; basesrv/init.c) ---------------------------------------------------

SHUTDOWN_PARAMS = {"level": U32(), "flags": U32()}
# BASE_SXS_CREATE_ACTIVATION_CONTEXT_MSG, reduced to what the model uses: the manifest
# (ACTCTX lpSource), the processor architecture and language it is for, and the
# assembly directory (ACTCTX_FLAG_ASSEMBLY_DIRECTORY_VALID).
SXS_CREATE_ACTIVATION_CONTEXT = {
    "manifest_path": Str(max_len=1024),
    "flags": U32(optional=True, default=0),
    "processor_architecture": Int(lo=0, hi=0xFFFF, optional=True, default=9),
    "lang_id": Int(lo=0, hi=0xFFFF, optional=True, default=0),
    "assembly_directory": Str(max_len=1024, optional=True, default=""),
}
BASESRV_APIS = _table(
    BASESRV_SERVERDLL_INDEX,
    BASESRV_FIRST_API_NUMBER,
    [
        (
            "BasepCreateProcess",
            "BaseSrvCreateProcess",
            {
                "process_id": U32(),
                "thread_id": U32(optional=True, default=0),
                "creation_flags": U32(optional=True, default=0),
                "gui": Bool(optional=True, default=False),
            },
            None,
        ),
        (
            "BasepCreateThread",
            "BaseSrvCreateThread",
            {"process_id": U32(), "thread_id": U32()},
            None,
        ),
        ("BasepGetTempFile", "BaseSrvGetTempFile", None, {"unique_id": U32()}),
        ("BasepExitProcess", "BaseSrvExitProcess", {"exit_code": U32()}, None),
        _ni("BasepDebugProcess", "BaseSrvDebugProcess"),
        _ni("BasepCheckVDM", "BaseSrvCheckVDM"),
        _ni("BasepUpdateVDMEntry", "BaseSrvUpdateVDMEntry"),
        _ni("BasepGetNextVDMCommand", "BaseSrvGetNextVDMCommand"),
        _ni("BasepExitVDM", "BaseSrvExitVDM"),
        ("BasepIsFirstVDM", "BaseSrvIsFirstVDM", None, {"first_vdm": Bool()}),
        _ni("BasepGetVDMExitCode", "BaseSrvGetVDMExitCode"),
        _ni("BasepSetReenterCount", "BaseSrvSetReenterCount"),
        ("BasepSetProcessShutdownParam", "BaseSrvSetProcessShutdownParam", SHUTDOWN_PARAMS, None),
        ("BasepGetProcessShutdownParam", "BaseSrvGetProcessShutdownParam", None, SHUTDOWN_PARAMS),
        (
            "BasepNlsSetUserInfo",
            "BaseSrvNlsSetUserInfo",
            {"lc_type": U32(), "data": Str(max_len=80)},
            None,
        ),
        _ni("BasepNlsSetMultipleUserInfo", "BaseSrvNlsSetMultipleUserInfo"),
        _ni("BasepNlsCreateSection", "BaseSrvNlsCreateSection"),
        _ni("BasepSetVDMCurDirs", "BaseSrvSetVDMCurDirs"),
        _ni("BasepGetVDMCurDirs", "BaseSrvGetVDMCurDirs"),
        _ni("BasepBatNotification", "BaseSrvBatNotification"),
        _ni("BasepRegisterWowExec", "BaseSrvRegisterWowExec"),
        _ni("BasepSoundSentryNotification", "BaseSrvSoundSentryNotification"),
        _ni("BasepRefreshIniFileMapping", "BaseSrvRefreshIniFileMapping"),
        (
            "BasepDefineDosDevice",
            "BaseSrvDefineDosDevice",
            {
                "flags": U32(),
                "device_name": Str(max_len=260),
                "target_path": Str(max_len=1024, optional=True, default=""),
            },
            None,
        ),
        _ni("BasepSetTermsrvAppInstallMode", "BaseSrvSetTermsrvAppInstallMode"),
        _ni("BasepNlsUpdateCacheCount", "BaseSrvNlsUpdateCacheCount"),
        _ni("BasepSetTermsrvClientTimeZone", "BaseSrvSetTermsrvClientTimeZone"),
        (
            "BasepSxsCreateActivationContext",
            "BaseSrvSxsCreateActivationContext",
            SXS_CREATE_ACTIVATION_CONTEXT,
            {"activation_context": U32(), "cached": Bool()},
        ),
        _ni("BasepDebugProcessStop", "BaseSrvDebugProcess", "BaseSrvDebugProcessStop"),
        ("BasepRegisterThread", "BaseSrvRegisterThread", {"thread_id": U32()}, None),
        (
            "BasepNlsGetUserInfo",
            "BaseSrvNlsGetUserInfo",
            None,
            {
                "locale_id": U32(),
                "cache_update_count": U32(),
                "values": Dict(value=Str(max_len=80), max_len=64),
            },
        ),
    ],
    # BaseServerApiServerValidTable: everything but ExitProcess and the two DebugProcess.
    valid=frozenset(set(range(BasepMaxApiNumber)) - {3, 4, 28}),
)

# --- CONSRV (server 2, base 512; winsrv/consrv/init.c) ------------------------------------

H = {"handle": HANDLE()}
SCREEN_INFO = {
    "size_x": U32(),
    "size_y": U32(),
    "cursor_x": U32(),
    "cursor_y": U32(),
    "attributes": U32(),
    "window_left": U32(),
    "window_top": U32(),
    "window_right": U32(),
    "window_bottom": U32(),
    "max_window_x": U32(),
    "max_window_y": U32(),
}
CONSOLE_HANDLES = {
    "console_handle": HANDLE(),
    "input_handle": HANDLE(),
    "output_handle": HANDLE(),
    "error_handle": HANDLE(),
}
HISTORY = {
    "history_buffer_size": Int(lo=0, hi=999),
    "number_of_history_buffers": Int(lo=0, hi=999),
    "flags": U32(),
}
OPEN = {
    "desired_access": U32(optional=True, default=0xC0000000),
    "inherit": Bool(optional=True, default=False),
    "share_mode": U32(optional=True, default=3),
}
CONSRV_APIS = _table(
    CONSRV_SERVERDLL_INDEX,
    CONSRV_FIRST_API_NUMBER,
    [
        ("ConsolepOpenConsole", "SrvOpenConsole", {"handle_type": Int(lo=1, hi=2), **OPEN}, H),
        (
            "ConsolepGetConsoleInput",
            "SrvGetConsoleInput",
            {**H, "count": Int(lo=1, hi=1024), "peek": Bool(optional=True, default=False)},
            {"records": List(item=Str(max_len=1), max_len=1024)},
        ),
        (
            "ConsolepWriteConsoleInput",
            "SrvWriteConsoleInput",
            {**H, "records": List(item=Str(max_len=1), max_len=1024)},
            {"written": U32()},
        ),
        _ni("ConsolepReadConsoleOutput", "SrvReadConsoleOutput"),
        _ni("ConsolepWriteConsoleOutput", "SrvWriteConsoleOutput"),
        (
            "ConsolepReadConsoleOutputString",
            "SrvReadConsoleOutputString",
            {
                **H,
                "x": U32(),
                "y": U32(),
                "count": Int(lo=1, hi=8192),
                "code_type": Int(lo=1, hi=3, optional=True, default=2),  # CODE_UNICODE
            },
            {"text": Str(max_len=8192), "count": U32()},
        ),
        _ni("ConsolepWriteConsoleOutputString", "SrvWriteConsoleOutputString"),
        _ni("ConsolepFillConsoleOutput", "SrvFillConsoleOutput"),
        ("ConsolepGetMode", "SrvGetConsoleMode", H, {"mode": U32()}),
        _ni("ConsolepGetNumberOfFonts", "SrvGetConsoleNumberOfFonts"),
        ("ConsolepGetNumberOfInputEvents", "SrvGetConsoleNumberOfInputEvents", H, {"count": U32()}),
        ("ConsolepGetScreenBufferInfo", "SrvGetConsoleScreenBufferInfo", H, SCREEN_INFO),
        ("ConsolepGetCursorInfo", "SrvGetConsoleCursorInfo", H, {"size": U32(), "visible": Bool()}),
        _ni("ConsolepGetMouseInfo", "SrvGetConsoleMouseInfo"),
        _ni("ConsolepGetFontInfo", "SrvGetConsoleFontInfo"),
        _ni("ConsolepGetFontSize", "SrvGetConsoleFontSize"),
        _ni("ConsolepGetCurrentFont", "SrvGetConsoleCurrentFont"),
        ("ConsolepSetMode", "SrvSetConsoleMode", {**H, "mode": U32()}, None),
        ("ConsolepSetActiveScreenBuffer", "SrvSetConsoleActiveScreenBuffer", H, None),
        ("ConsolepFlushInputBuffer", "SrvFlushConsoleInputBuffer", H, None),
        _ni("ConsolepGetLargestWindowSize", "SrvGetLargestConsoleWindowSize"),
        (
            "ConsolepSetScreenBufferSize",
            "SrvSetConsoleScreenBufferSize",
            {**H, "size_x": U32(), "size_y": U32()},
            None,
        ),
        (
            "ConsolepSetCursorPosition",
            "SrvSetConsoleCursorPosition",
            {**H, "x": U32(), "y": U32()},
            None,
        ),
        (
            "ConsolepSetCursorInfo",
            "SrvSetConsoleCursorInfo",
            {**H, "size": U32(), "visible": Bool()},
            None,
        ),
        _ni("ConsolepSetWindowInfo", "SrvSetConsoleWindowInfo"),
        _ni("ConsolepScrollScreenBuffer", "SrvScrollConsoleScreenBuffer"),
        (
            "ConsolepSetTextAttribute",
            "SrvSetConsoleTextAttribute",
            {**H, "attributes": Int(lo=0, hi=0xFFFF)},
            None,
        ),
        _ni("ConsolepSetFont", "SrvSetConsoleFont"),
        _ni("ConsolepSetIcon", "SrvSetConsoleIcon"),
        (
            "ConsolepReadConsole",
            "SrvReadConsole",
            {**H, "max_chars": Int(lo=1, hi=8192)},
            {"text": Str(max_len=8192)},
        ),
        (
            "ConsolepWriteConsole",
            "SrvWriteConsole",
            {**H, "text": Str(max_len=8192)},
            {"written": U32()},
        ),
        (
            "ConsolepDuplicateHandle",
            "SrvDuplicateHandle",
            {
                "source_handle": HANDLE(),
                "desired_access": U32(optional=True, default=0),
                "inherit": Bool(optional=True, default=False),
                "options": U32(optional=True, default=0),
            },
            H,
        ),
        ("ConsolepGetHandleInformation", "SrvGetHandleInformation", H, {"flags": U32()}),
        (
            "ConsolepSetHandleInformation",
            "SrvSetHandleInformation",
            {**H, "mask": U32(), "flags": U32()},
            None,
        ),
        ("ConsolepCloseHandle", "SrvCloseHandle", H, None),
        ("ConsolepVerifyIoHandle", "SrvVerifyConsoleIoHandle", H, {"valid": Bool()}),
        (
            "ConsolepAlloc",
            "SrvAllocConsole",
            {
                "title": Str(max_len=TITLE_MAX, optional=True, default=""),
                "desktop": Str(max_len=260, optional=True, default=""),
                "app_name": Str(max_len=260, optional=True, default=""),
                "cur_dir": Str(max_len=260, optional=True, default=""),
            },
            CONSOLE_HANDLES,
        ),
        ("ConsolepFree", "SrvFreeConsole", None, None),
        (
            "ConsolepGetTitle",
            "SrvGetConsoleTitle",
            {"max_length": Int(lo=0, hi=TITLE_MAX, optional=True, default=TITLE_MAX)},
            {"title": Str(max_len=TITLE_MAX), "length": U32()},
        ),
        ("ConsolepSetTitle", "SrvSetConsoleTitle", {"title": Str(max_len=TITLE_MAX)}, None),
        (
            "ConsolepCreateScreenBuffer",
            "SrvCreateConsoleScreenBuffer",
            {**OPEN, "buffer_type": Int(lo=1, hi=2, optional=True, default=1)},
            H,
        ),
        _ni("ConsolepInvalidateBitMapRect", "SrvInvalidateBitMapRect"),
        _ni("ConsolepVDMOperation", "SrvVDMConsoleOperation"),
        _ni("ConsolepSetCursor", "SrvSetConsoleCursor"),
        _ni("ConsolepShowCursor", "SrvShowConsoleCursor"),
        _ni("ConsolepMenuControl", "SrvConsoleMenuControl"),
        _ni("ConsolepSetPalette", "SrvSetConsolePalette"),
        _ni("ConsolepSetDisplayMode", "SrvSetConsoleDisplayMode"),
        _ni("ConsolepRegisterVDM", "SrvRegisterConsoleVDM"),
        _ni("ConsolepGetHardwareState", "SrvGetConsoleHardwareState"),
        _ni("ConsolepSetHardwareState", "SrvSetConsoleHardwareState"),
        _ni("ConsolepGetDisplayMode", "SrvGetConsoleDisplayMode"),
        _ni("ConsolepAddAlias", "SrvAddConsoleAlias"),
        _ni("ConsolepGetAlias", "SrvGetConsoleAlias"),
        _ni("ConsolepGetAliasesLength", "SrvGetConsoleAliasesLength"),
        _ni("ConsolepGetAliasExesLength", "SrvGetConsoleAliasExesLength"),
        _ni("ConsolepGetAliases", "SrvGetConsoleAliases"),
        _ni("ConsolepGetAliasExes", "SrvGetConsoleAliasExes"),
        _ni("ConsolepExpungeCommandHistory", "SrvExpungeConsoleCommandHistory"),
        _ni("ConsolepSetNumberOfCommands", "SrvSetConsoleNumberOfCommands"),
        _ni("ConsolepGetCommandHistoryLength", "SrvGetConsoleCommandHistoryLength"),
        _ni("ConsolepGetCommandHistory", "SrvGetConsoleCommandHistory"),
        _ni("ConsolepSetCommandHistoryMode", "SrvSetConsoleCommandHistoryMode"),
        ("ConsolepGetCP", "SrvGetConsoleCP", {"output": Bool()}, {"code_page": U32()}),
        ("ConsolepSetCP", "SrvSetConsoleCP", {"output": Bool(), "code_page": U32()}, None),
        _ni("ConsolepSetKeyShortcuts", "SrvSetConsoleKeyShortcuts"),
        _ni("ConsolepSetMenuClose", "SrvSetConsoleMenuClose"),
        _ni("ConsolepNotifyLastClose", "SrvConsoleNotifyLastClose"),
        (
            "ConsolepGenerateCtrlEvent",
            "SrvGenerateConsoleCtrlEvent",
            {"ctrl_event": U32(), "process_group_id": U32()},
            None,
        ),
        _ni("ConsolepGetKeyboardLayoutName", "SrvGetConsoleKeyboardLayoutName"),
        _ni("ConsolepGetConsoleWindow", "SrvGetConsoleWindow"),
        _ni("ConsolepCharType", "SrvGetConsoleCharType"),
        _ni("ConsolepSetLocalEUDC", "SrvSetConsoleLocalEUDC"),
        _ni("ConsolepSetCursorMode", "SrvSetConsoleCursorMode"),
        _ni("ConsolepGetCursorMode", "SrvGetConsoleCursorMode"),
        _ni("ConsolepRegisterOS2", "SrvRegisterConsoleOS2"),
        _ni("ConsolepSetOS2OemFormat", "SrvSetConsoleOS2OemFormat"),
        _ni("ConsolepGetNlsMode", "SrvGetConsoleNlsMode"),
        _ni("ConsolepSetNlsMode", "SrvSetConsoleNlsMode"),
        _ni("ConsolepRegisterConsoleIME", "SrvRegisterConsoleIME"),
        _ni("ConsolepUnregisterConsoleIME", "SrvUnregisterConsoleIME"),
        _ni("ConsolepGetLangId", "SrvGetConsoleLangId"),
        ("ConsolepAttach", "SrvAttachConsole", {"process_id": U32()}, CONSOLE_HANDLES),
        _ni("ConsolepGetSelectionInfo", "SrvGetConsoleSelectionInfo"),
        (
            "ConsolepGetProcessList",
            "SrvGetConsoleProcessList",
            {"max_count": Int(lo=0, hi=1024, optional=True, default=64)},
            {"process_ids": List(item=U32(), max_len=1024), "count": U32()},
        ),
        ("ConsolepGetHistory", "SrvGetConsoleHistory", None, HISTORY),
        ("ConsolepSetHistory", "SrvSetConsoleHistory", HISTORY, None),
    ],
    valid=frozenset({51}),  # only SrvGetConsoleDisplayMode
)

# --- USERSRV (server 3, base 1024; winsrv/usersrv/init.c) ---------------------------------

USERSRV_APIS = _table(
    USERSRV_SERVERDLL_INDEX,
    USERSRV_FIRST_API_NUMBER,
    [
        (
            "UserpExitWindowsEx",
            "SrvExitWindowsEx",
            # logon_id: the user winlogon impersonates for a logoff (her token's SID);
            # honoured from winlogon alone.
            {"flags": U32(), "logon_id": Str(max_len=200, optional=True, default="")},
            None,
        ),
        (
            "UserpEndTask",
            "SrvEndTask",
            {"process_id": U32(), "force": Bool(optional=True, default=False)},
            {"success": Bool()},
        ),
        ("UserpLogon", "SrvLogon", {"logon": Bool()}, None),
        ("UserpRegisterServicesProcess", "SrvRegisterServicesProcess", {"process_id": U32()}, None),
        _ni("UserpActivateDebugger", "SrvActivateDebugger"),
        (
            "UserpGetThreadConsoleDesktop",
            "SrvGetThreadConsoleDesktop",
            {"thread_id": U32(optional=True, default=0)},
            {"console_desktop": U32()},
        ),
        _ni("UserpDeviceEvent", "SrvDeviceEvent"),
        (
            "UserpRegisterLogonProcess",
            "SrvRegisterLogonProcess",
            {"process_id": U32(), "register": Bool()},
            None,
        ),
        ("UserpCreateSystemThreads", "SrvCreateSystemThreads", None, None),
        _ni("UserpRecordShutdownReason", "SrvRecordShutdownReason"),
    ],
    valid=frozenset({5}),  # only SrvGetThreadConsoleDesktop
)

CSRSRV_PROTOCOL = Protocol("CSRSRV", MAX_MESSAGE_LENGTH, CSRSRV_APIS)
BASESRV_PROTOCOL = Protocol("BASESRV", MAX_MESSAGE_LENGTH, BASESRV_APIS)
CONSRV_PROTOCOL = Protocol("CONSRV", MAX_MESSAGE_LENGTH, CONSRV_APIS)
USERSRV_PROTOCOL = Protocol("USERSRV", MAX_MESSAGE_LENGTH, USERSRV_APIS)
# --- SXSSRV (server 4, Windows 7+): no API of its own ------------------------------------
# Its routines (BaseSrvSxsCreateActivationContext, BaseSrvSxsCreateProcess) are reached
# through basesrv's table: sxssrv hands them to basesrv with BaseSrvRegisterSxS.
SXSSRV_APIS: tuple[CsrApi, ...] = ()
SXSSRV_PROTOCOL = Protocol("SXSSRV", MAX_MESSAGE_LENGTH, SXSSRV_APIS)
SERVER_PROTOCOLS = (
    CSRSRV_PROTOCOL,
    BASESRV_PROTOCOL,
    CONSRV_PROTOCOL,
    USERSRV_PROTOCOL,
    SXSSRV_PROTOCOL,
)

API_PORT = Protocol(
    title="\\Windows\\ApiPort (csrss)",
    max_message_length=MAX_MESSAGE_LENGTH,
    apis=CSRSRV_APIS + BASESRV_APIS + CONSRV_APIS + USERSRV_APIS,
    connect_info={},
    doc="CSR_API_MESSAGE; numbers are CSR_CREATE_API_NUMBER(ServerId, ApiId).",
    statuses=(
        (S.STATUS_PORT_CONNECTION_REFUSED, "CONNECT from a process csrss does not know"),
        (
            S.STATUS_ILLEGAL_FUNCTION,
            "unknown server id or ApiId, or the caller is not a CSR process",
        ),
        (S.STATUS_NOT_IMPLEMENTED, "an API ReactOS leaves unimplemented"),
        (S.STATUS_INVALID_PARAMETER, "a value the API refuses (beyond the schema)"),
        (S.STATUS_INVALID_CID, "no such process"),
        (S.STATUS_INVALID_HANDLE, "no such console or handle"),
        (S.STATUS_ACCESS_DENIED, "the caller may not act on that process"),
        (S.STATUS_PRIVILEGE_NOT_HELD, "the caller's token lacks the privilege"),
        (S.STATUS_NOT_LOGON_PROCESS, "a logon-process API from another process"),
        (S.STATUS_LOGON_SESSION_EXISTS, "a second logon process registers"),
        (S.STATUS_OBJECT_NAME_COLLISION, "the process, session or DOS device exists"),
        (S.STATUS_OBJECT_NAME_NOT_FOUND, "no such DOS device"),
        (S.STATUS_TOO_MANY_NAMES, "CsrpClientConnect: server id past the profile's slots"),
        (S.STATUS_OBJECT_PATH_SYNTAX_BAD, "an activation context's manifest path is not absolute"),
        (S.STATUS_PROCESS_IS_TERMINATING, "the caller is exiting"),
        (S.STATUS_THREAD_IS_TERMINATING, "BasepCreateProcess from a dying parent"),
        (S.STATUS_INSUFFICIENT_RESOURCES, "a per-process table is full"),
        (S.STATUS_CANCELLED, "ExitWindowsEx cancelled by a process"),
        (S.STATUS_NOT_SUPPORTED, "a console mode or request the model does not support"),
        (S.STATUS_PENDING, "ExitWindowsEx: winlogon will finish it (a final status)"),
        (S.STATUS_UNSUCCESSFUL, "the kernel refused the operation the API asked of it"),
    ),
)

# Connection info each server's ConnectCallback requires in CsrpClientConnect.
BASESRV_CONNECT_INFO = {"debug_flags": U32()}  # BASESRV_API_CONNECTINFO
USERSRV_CONNECT_INFO = {"version": U32()}  # USERCONNECT (ulVersion)
CONSRV_CONNECT_INFO = {  # CONSRV_API_CONNECTINFO
    "is_console_app": Bool(),
    "console_handle": HANDLE(optional=True, default=0),
    "is_window_visible": Bool(optional=True, default=True),
    "title": Str(max_len=TITLE_MAX, optional=True, default=""),
    "app_name": Str(max_len=260, optional=True, default=""),
    "cur_dir": Str(max_len=260, optional=True, default=""),
}

# HARDERROR_MSG as the kernel sends it (LPC_ERROR_EVENT). The parameters are data: they
# are length-capped here and never used as a format string (MS07-021).
HARD_ERROR_MESSAGE = {
    "status": U32(),
    "parameters": List(item=Value(max_len=512), max_len=4),
    "unicode_string_parameter_mask": U32(optional=True, default=0),
    "valid_response_options": Int(lo=0, hi=8, optional=True, default=1),
    # h.ClientId of the raiser, resolved by the kernel: the box's caption names its image
    "process_id": U32(optional=True, default=0),
    "image": Str(max_len=260, optional=True, default=""),
    "system": Bool(optional=True, default=False),
}

_BY_NUMBER: dict[int, CsrApi] = {a.number: a for a in API_PORT.apis}
_BY_NAME: dict[str, CsrApi] = {}
for _api in API_PORT.apis:
    for _n in _api.names():
        _BY_NAME.setdefault(_n.lower(), _api)  # first wins: BaseSrvDebugProcess is index 4


def api_by_number(api_number: int) -> CsrApi | None:
    return _BY_NUMBER.get(api_number & 0xFFFFFFFF)


def lookup_api(name: str) -> CsrApi | None:
    """An API by enum name, routine name or name-table string, case-insensitive."""
    return _BY_NAME.get(name.strip().lower())
