"""winlogon's ports: the InitShutdown interface and the per-session WMsg interface.

``\\RPC Control\\InitShutdown`` stands for ncacn_np:\\pipe\\InitShutdown, the [MS-RSP]
interface ``InitiateSystemShutdownEx`` and ``AbortSystemShutdown`` reach
(``BaseInitiateShutdown`` opnum 0, ``BaseAbortShutdown`` 1, ``BaseInitiateShutdownEx`` 2).
In Windows wininit listens there and hands the work to winlogon of the console session;
the model's console winlogon listens itself (a divergence it logs).

``\\RPC Control\\WMsgKRpc<N>`` is each session's winlogon's ``WMsgMessageHandler`` endpoint
(Windows: ``WMsgKRpc`` + a suffix, used by csrss and LSM to ask winlogon for a logoff or
its part of a shutdown). The message codes are the model's.

Every reply carries the routine's return value as ``error`` (a win32 error).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ports.client import Connection, call_api
from ports.contract import Reply
from ports.schema import U32, Api, Bin, Bool, Int, Protocol, Str

if TYPE_CHECKING:
    from ports.runtime import LpcRuntime

INIT_SHUTDOWN_PORT_NAME = "\\RPC Control\\InitShutdown"
MAX_MESSAGE_LENGTH = 8192
MAX_SHUTDOWN_TIMEOUT = 315360000  # seconds: shutdown /t's upper bound (10 years)
MAX_COMMENT = 512  # shutdown /c: "Maximum of 512 characters allowed"

# SHTDN_REASON_* (reason.h): what shutdown.exe passes without /d.
SHTDN_REASON_MAJOR_OTHER = 0x00000000
SHTDN_REASON_MINOR_OTHER = 0x00000000
SHTDN_REASON_FLAG_PLANNED = 0x80000000

OP_BaseInitiateShutdown = 0
OP_BaseAbortShutdown = 1
OP_BaseInitiateShutdownEx = 2

SHUTDOWN_REQUEST = {
    "message": Str(max_len=MAX_COMMENT, optional=True, default=""),
    "timeout": Int(lo=0, hi=MAX_SHUTDOWN_TIMEOUT, optional=True, default=0),
    "force_apps_closed": Bool(optional=True, default=False),
    "reboot": Bool(optional=True, default=False),
}


def _api(number: int, name: str, request: dict, reply: dict | None = None, doc: str = "") -> Api:
    return Api(number, name, request, {"error": U32(), **(reply or {})}, doc)


INIT_SHUTDOWN_APIS = (
    _api(
        OP_BaseInitiateShutdown,
        "BaseInitiateShutdown",
        SHUTDOWN_REQUEST,
        {},
        "InitiateSystemShutdown: 1115 while another shutdown is pending or under way.",
    ),
    _api(OP_BaseAbortShutdown, "BaseAbortShutdown", {}, {}, "1116 when none is pending."),
    _api(
        OP_BaseInitiateShutdownEx,
        "BaseInitiateShutdownEx",
        {**SHUTDOWN_REQUEST, "reason": U32(optional=True, default=0)},
        {},
        "InitiateSystemShutdownEx: as BaseInitiateShutdown, with a SHTDN_REASON code.",
    ),
)

INIT_SHUTDOWN_PORT = Protocol(
    title="\\RPC Control\\InitShutdown (winlogon of the console session)",
    max_message_length=MAX_MESSAGE_LENGTH,
    apis=INIT_SHUTDOWN_APIS,
    connect_info={},
    doc="[MS-RSP] InitShutdown; win32 errors in `error`.",
)

# WMsgMessageHandler's messages (the model's codes).
WMSG_LOGOFF = 1  # log the session's user off (ExitWindowsEx(EWX_LOGOFF) in its csrss)
WMSG_SHUTDOWN = 2  # the session's part of a shutdown (ExitWindowsEx(EWX_SHUTDOWN))
OP_WMsgMessageHandler = 0
OP_WlxSasNotify = 1
OP_WlxLogonUIReady = 2
OP_WlxReportCredentials = 3
OP_WlxReportSasAction = 4

WLX_SAS_TYPE_CTRL_ALT_DEL = 1  # winwlx.h
WLX_SAS_ACTION_NONE = 2  # winwlx.h: back to the notice
MAX_SECRET = 1024  # lsass's own caps (256 characters, 1 KiB) refuse anything longer

WMSG_APIS = (
    _api(
        OP_WMsgMessageHandler,
        "WMsgMessageHandler",
        {"message": Int(lo=1, hi=2), "flags": U32(optional=True, default=0)},
        {"status": U32()},
        "1 = logoff, 2 = the session's part of a shutdown; `status` is ExitWindowsEx's. "
        "A logoff with no one logged on: 1312 ERROR_NO_SUCH_LOGON_SESSION.",
    ),
    _api(
        OP_WlxSasNotify,
        "WlxSasNotify",
        {"sas_type": U32(optional=True, default=WLX_SAS_TYPE_CTRL_ALT_DEL)},
        {"status": U32(), "logonui_pid": U32(), "port": Str(max_len=256)},
        "The secure attention sequence (the machine's operator: ntctl logon). Logged off: "
        "the LogonUI.exe showing the notice (started if none runs) shows its tiles; the "
        "reply, once it is ready, carries the port its credential providers read the "
        "keyboard on. Otherwise `status` says why not (a user is logged on, a logon is "
        "under way, a shutdown, LogonUI's exit status if it died before it was ready).",
    ),
    _api(
        OP_WlxLogonUIReady,
        "WlxLogonUIReady",
        {"port": Str(max_len=256)},
        {},
        "LogonUI (winlogon's own child only) has loaded its providers and serves `port`.",
    ),
    _api(
        OP_WlxReportCredentials,
        "WlxReportCredentials",
        {
            "user": Str(max_len=256),
            "domain": Str(max_len=256, optional=True, default=""),
            "secret": Bin(max_len=MAX_SECRET, doc="secret: never logged"),
            "pin": Bool(optional=True, default=False),
            "provider": Str(max_len=64, optional=True, default=""),
        },
        {"status": U32(), "user": Str(max_len=256)},
        "LogonUI's serialized credentials (winlogon's own LogonUI only): winlogon calls "
        "LsaLogonUser(Interactive), loads the profile and starts userinit; `status` is "
        "the NTSTATUS LogonUI shows. LogonUI stays up after a failure and exits after "
        "a success.",
    ),
    _api(
        OP_WlxReportSasAction,
        "WlxReportSasAction",
        {"action": Int(lo=WLX_SAS_ACTION_NONE, hi=WLX_SAS_ACTION_NONE)},
        {},
        "LogonUI (winlogon's own only): its tiles were left without credentials (the "
        "keyboard closed): WLX_SAS_ACTION_NONE (2), winlogon goes back to the notice.",
    ),
)

WMSG_PORT = Protocol(
    title="\\RPC Control\\WMsgKRpc<N> (winlogon of session N)",
    max_message_length=MAX_MESSAGE_LENGTH,
    apis=WMSG_APIS,
    connect_info={},
    doc="How LSM, the shutdown coordinator, the operator (the SAS) and LogonUI reach a "
    "session's winlogon.",
)


def wmsg_port_name(session: int) -> str:
    return f"\\RPC Control\\WMsgKRpc{session}"


# -- client stubs -------------------------------------------------------------------------
def InitShutdownConnect(lpc: LpcRuntime) -> Connection:
    return lpc.connect_port(INIT_SHUTDOWN_PORT_NAME, {})


def BaseInitiateShutdownEx(
    conn: Connection,
    message: str = "",
    timeout: int = 0,
    force_apps_closed: bool = False,
    reboot: bool = False,
    reason: int = SHTDN_REASON_MAJOR_OTHER | SHTDN_REASON_MINOR_OTHER,
) -> Reply:
    body = {
        "message": message,
        "timeout": timeout,
        "force_apps_closed": force_apps_closed,
        "reboot": reboot,
        "reason": reason,
    }
    return call_api(conn, INIT_SHUTDOWN_APIS[OP_BaseInitiateShutdownEx], body)


def BaseAbortShutdown(conn: Connection) -> Reply:
    return call_api(conn, INIT_SHUTDOWN_APIS[OP_BaseAbortShutdown], {})


def WMsgConnect(lpc: LpcRuntime, session: int) -> Connection:
    return lpc.connect_port(wmsg_port_name(session), {})


def WMsgMessageHandler(
    conn: Connection, message: int, flags: int = 0, timeout: float = 60.0
) -> Reply:
    body = {"message": message, "flags": flags}
    return call_api(conn, WMSG_APIS[OP_WMsgMessageHandler], body, timeout=timeout)


def WlxSasNotify(conn: Connection, timeout: float = 60.0) -> Reply:
    return call_api(conn, WMSG_APIS[OP_WlxSasNotify], {}, timeout=timeout)


def WlxLogonUIReady(conn: Connection, port: str) -> Reply:
    return call_api(conn, WMSG_APIS[OP_WlxLogonUIReady], {"port": port})


def WlxReportSasAction(conn: Connection, action: int = WLX_SAS_ACTION_NONE) -> Reply:
    return call_api(conn, WMSG_APIS[OP_WlxReportSasAction], {"action": action})


def WlxReportCredentials(
    conn: Connection,
    user: str,
    secret: bytes,
    *,
    domain: str = "",
    pin: bool = False,
    provider: str = "",
    timeout: float = 60.0,
) -> Reply:
    body = {
        "user": user,
        "domain": domain,
        "secret": bytes(secret),
        "pin": pin,
        "provider": provider,
    }
    return call_api(conn, WMSG_APIS[OP_WlxReportCredentials], body, timeout=timeout)
