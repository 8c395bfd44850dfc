"""UserServerHardError's message box: the caption and text a user sees for a hard error
(win32ss/user/winsrv/usersrv/harderror.c: UserpFormatMessages, UserpGetClientFileName).

The text is the status's message-table entry with the HARDERROR_MSG parameters inserted
(``%hs``/``%ws`` strings, ``0x%08x`` numbers). A caption in braces at the start of the
entry ("{Fatal System Error}") becomes the box's caption; otherwise the caption is chosen
by the status's severity ("System Error", "System Warning", "System Information"). The
caption is prefixed by the raiser's image name (``condemo.exe - System Error``), or by
"Windows" when a system process raised it. Parameters are data: they are inserted with
``str.format`` on a fixed template and never used as a format string (MS07-021).

The model has no desktop: the box is logged (``csr.hard_error_box``, a warning the boot
console shows), reported as System event 26 ("Application popup: <caption> : <text>"),
and answered with the default button of its response option.
"""

from __future__ import annotations

from nt.evtmsg import report_event
from nt.log import get_logger
from nt.status import NtStatus, status_name

log = get_logger()

# status -> the English message-table text (Windows 10), parameters as {0}..{3}.
MESSAGES: dict[int, str] = {
    NtStatus.STATUS_DLL_NOT_FOUND: (
        "The code execution cannot proceed because {0} was not found. "
        "Reinstalling the program may fix this problem."
    ),
    NtStatus.STATUS_SYSTEM_PROCESS_TERMINATED: (
        "{{Fatal System Error}}\nThe {0} system process terminated unexpectedly with a status "
        "of {1} ({2} {3}).\nThe system has been shut down."
    ),
    NtStatus.STATUS_IO_PRIVILEGE_FAILED: (
        "{{Privilege Failed}}\nThe I/O permissions for the process could not be changed."
    ),
}
SEVERITY_CAPTIONS = {3: "System Error", 2: "System Warning", 1: "System Information"}
BOX_TEXT_MAX = 1024


def _param(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"0x{value & 0xFFFFFFFF:08x}"
    return str(value)


def format_box(message: dict) -> tuple[str, str]:
    """(caption, text) of the box for one validated HARDERROR_MSG."""
    status = message["status"] & 0xFFFFFFFF
    params = [_param(p) for p in message["parameters"]] + ["0x00000000"] * 4
    template = MESSAGES.get(status)
    if template is None:
        # No message-table text in the model: name the status, as !error would.
        text = f"{status_name(status)} (0x{status:08X})"
        extra = [p for p in params[: len(message["parameters"])]]
        if extra:
            text += ": " + ", ".join(extra)
    else:
        text = template.format(*params)
    caption = SEVERITY_CAPTIONS.get(status >> 30, "System Error")
    if text.startswith("{") and "}" in text:
        caption, _, text = text[1:].partition("}")
        text = text.lstrip("\r\n")
    app = "Windows" if message.get("system") or not message.get("image") else message["image"]
    return f"{app} - {caption}", text[:BOX_TEXT_MAX]


def show_box(message: dict, response: int) -> tuple[str, str]:
    """The box nobody can click: logged for the console and reported as event 26."""
    caption, text = format_box(message)
    popup = text.replace("\n", " ")  # event 26 and the boot console show it on one line
    log.warning(
        "csr.hard_error_box",
        error_status=message["status"],
        caption=caption,
        text=text,
        popup=popup,
        parameters=[p if isinstance(p, int | str) else repr(p) for p in message["parameters"]],
        raiser_pid=message.get("process_id", 0),
        raiser_image=message.get("image", ""),
        response=response,
    )
    report_event(log, 26, (caption, popup))
    return caption, text
