r"""LogonUI's keyboard: ``\RPC Control\LogonUI<N>`` (the model's port).

LogonUI.exe, started by winlogon whenever nobody is logged on (it draws the "Press
Ctrl+Alt+Del" notice, then the tiles after the secure attention sequence), loads the
credential providers and waits for what is typed on its tiles. The model has no screen or keyboard:
the machine's operator (``ntctl logon``) types through this port. The chosen provider
(by CLSID) serializes the credentials, LogonUI hands them to winlogon
(``WlxReportCredentials`` on ``WMsgKRpc<N>``), and the reply carries the status and the
text LogonUI shows for it. A secret travels only in request bodies, never in a log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from nt.status import NtStatus as S
from ports.client import Connection, call_api
from ports.contract import Reply
from ports.schema import U32, Api, Bin, Protocol, Str

if TYPE_CHECKING:
    from ports.runtime import LpcRuntime

MAX_MESSAGE_LENGTH: Final = 8192
MAX_SECRET: Final = 1024

# The real CLSIDs of the in-box providers (authui.dll's password provider, the NGC PIN one).
PASSWORD_PROVIDER: Final = "{60b78e88-ead8-445c-9cfd-0b87f74ea6cd}"
PIN_PROVIDER: Final = "{D6886603-9D2F-4EB2-B667-1971041FA96B}"

OP_CredUISubmit: Final = 0

# What LogonUI shows for a failed logon (the message box texts of Windows 10).
LOGON_MESSAGES: Final = {
    S.STATUS_SUCCESS: "Welcome",
    S.STATUS_LOGON_FAILURE: "The user name or password is incorrect.",
    S.STATUS_WRONG_PASSWORD: "The user name or password is incorrect.",
    S.STATUS_ACCOUNT_LOCKED_OUT: (
        "The referenced account is currently locked out and may not be logged on to."
    ),
    S.STATUS_ACCOUNT_DISABLED: "Your account has been disabled. Please see your system administrator.",
    S.STATUS_ACCOUNT_EXPIRED: "Your account has expired. Please see your system administrator.",
    S.STATUS_PASSWORD_MUST_CHANGE: "The user's password must be changed before signing in.",
    S.STATUS_PASSWORD_EXPIRED: "The user's password must be changed before signing in.",
    S.STATUS_SHUTDOWN_IN_PROGRESS: "The system is shutting down.",
    S.STATUS_PORT_DISCONNECTED: (
        "The Local Security Authority cannot be contacted (it ended during the logon)."
    ),
    S.STATUS_NO_SUCH_PACKAGE: "The credential provider is not available.",
}
PIN_INCORRECT: Final = "The PIN is incorrect. Try again."


def logon_message(status: int, pin: bool = False) -> str:
    """The text LogonUI shows for a logon's status."""
    if pin and status == S.STATUS_LOGON_FAILURE:
        return PIN_INCORRECT
    text = LOGON_MESSAGES.get(status)
    if text is not None:
        return text
    try:
        name = S(status).name
    except ValueError:
        name = f"0x{status & 0xFFFFFFFF:08X}"
    return f"The logon failed: {name}."


LOGONUI_APIS = (
    Api(
        OP_CredUISubmit,
        "CredUISubmit",
        {
            "provider": Str(max_len=64),
            "user": Str(max_len=256),
            "secret": Bin(max_len=MAX_SECRET, doc="secret: never logged"),
        },
        {"status": U32(), "message": Str(max_len=512), "user": Str(max_len=256)},
        "What was typed on a provider's tile (`provider`: its CLSID). LogonUI has the "
        "provider serialize it, hands it to winlogon, and answers with the NTSTATUS and "
        "the text it shows. After a failure it stays up (the notice again: the next SAS "
        "reaches the same LogonUI); after a success it exits once this connection closes.",
    ),
)

LOGONUI_PORT = Protocol(
    title="\\RPC Control\\LogonUI<N> (LogonUI.exe of session N, while nobody is logged on)",
    max_message_length=MAX_MESSAGE_LENGTH,
    apis=LOGONUI_APIS,
    connect_info={},
    doc="The keyboard of the logon screen; served only while LogonUI runs. A connection "
    "closed without a submission tells winlogon the tiles were left (WlxReportSasAction).",
    statuses=(
        (S.STATUS_NO_SUCH_PACKAGE, "no credential provider with that CLSID is registered"),
        (S.STATUS_INVALID_DEVICE_STATE, "another submission is under way, or a logon succeeded"),
    ),
)


def logonui_port_name(session: int) -> str:
    return f"\\RPC Control\\LogonUI{session}"


def LogonUIConnect(lpc: LpcRuntime, port: str) -> Connection:
    return lpc.connect_port(port, {})


def CredUISubmit(
    conn: Connection, provider: str, user: str, secret: bytes, timeout: float = 60.0
) -> Reply:
    body = {"provider": provider, "user": user, "secret": bytes(secret)}
    return call_api(conn, LOGONUI_APIS[OP_CredUISubmit], body, timeout=timeout)
