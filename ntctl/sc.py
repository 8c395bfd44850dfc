"""``sc`` output, as sc.exe prints it: pure functions from the SCM's reply records to text.

The records are the svcctl reply bodies (ports/svcctl.py): SERVICE_STATUS(_PROCESS),
QUERY_SERVICE_CONFIG, the RQueryServiceConfig2W info, ENUM_SERVICE_STATUS. ``--json`` prints
those same records. Layouts follow sc.exe: tab stops expanded to 8 spaces, the type and
state lines' trailing blanks, the accepted-controls line only for a service that is not
STOPPED, and failures as ``[SC] <Routine> FAILED <code>:`` with the system message.
Nothing heavy is imported here: the CLI loads it for every ``sc`` verb.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from nt.win32 import error_message
from nt.winsvc import (
    ACTION_NAMES,
    ERROR_CONTROL_NAMES,
    SERVICE_INTERACTIVE_PROCESS,
    SERVICE_RUNS_IN_SYSTEM_PROCESS,
    START_NAMES,
    STATE_NAMES,
    TYPE_NAMES,
)

Record = Mapping[str, object]
IND = " " * 8
CONT = " " * 32  # the accepted-controls line's indent
DEP_CONT = " " * 27  # continuation of a multi-line qc field
FA_CONT = " " * 39  # continuation of FAILURE_ACTIONS


def _int(record: Record, key: str) -> int:
    value = record.get(key, 0)
    return value if isinstance(value, int) else 0


def type_text(service_type: int) -> str:
    name = TYPE_NAMES.get(service_type & ~SERVICE_INTERACTIVE_PROCESS, "")
    if service_type & SERVICE_INTERACTIVE_PROCESS:
        name += " (interactive)"
    return name


def controls_text(accepted: int) -> str:
    return "({}, {}, {})".format(
        "STOPPABLE" if accepted & 0x1 else "NOT_STOPPABLE",
        "PAUSABLE" if accepted & 0x2 else "NOT_PAUSABLE",
        "ACCEPTS_SHUTDOWN" if accepted & 0x4 else "IGNORES_SHUTDOWN",
    )


def status_lines(status: Record, *, ex: bool = False) -> list[str]:
    """The SERVICE_STATUS block (``sc query``); with ``ex`` the PID and FLAGS lines."""
    state = _int(status, "current_state")
    win32, specific = _int(status, "win32_exit_code"), _int(status, "service_specific_exit_code")
    lines = [
        f"{IND}TYPE               : {_int(status, 'service_type'):x}  {type_text(_int(status, 'service_type'))}  ",
        f"{IND}STATE              : {state}  {STATE_NAMES.get(state, '')} ",
    ]
    if state != 1:
        lines.append(CONT + controls_text(_int(status, "controls_accepted")))
    lines += [
        f"{IND}WIN32_EXIT_CODE    : {win32}  (0x{win32:x})",
        f"{IND}SERVICE_EXIT_CODE  : {specific}  (0x{specific:x})",
        f"{IND}CHECKPOINT         : 0x{_int(status, 'check_point'):x}",
        f"{IND}WAIT_HINT          : 0x{_int(status, 'wait_hint'):x}",
    ]
    if ex:
        flags = (
            "RUNS_IN_SYSTEM_PROCESS"
            if _int(status, "service_flags") & SERVICE_RUNS_IN_SYSTEM_PROCESS
            else ""
        )
        lines += [
            f"{IND}PID                : {_int(status, 'process_id')}",
            f"{IND}FLAGS              : {flags}",
        ]
    return lines


def query(name: str, status: Record, *, ex: bool = False) -> str:
    """``sc query NAME`` / ``sc queryex NAME`` (also what ``sc start`` prints, with ex)."""
    return "\n".join(["", f"SERVICE_NAME: {name}", *status_lines(status, ex=ex)]) + "\n"


def enum(entries: Iterable[Record], *, ex: bool = False) -> str:
    """``sc query`` without a name: each entry with its DISPLAY_NAME."""
    out: list[str] = []
    for entry in entries:
        status = entry.get("status")
        out += [
            "",
            f"SERVICE_NAME: {entry.get('service_name', '')}",
            f"DISPLAY_NAME: {entry.get('display_name', '')}",
            *status_lines(status if isinstance(status, Mapping) else {}, ex=ex),
        ]
    return "\n".join(out) + "\n"


def enumdepend(entries: Sequence[Record]) -> str:
    """``sc enumdepend NAME``: the count, then each dependent as ``sc query`` lists them."""
    return f"Enum: entriesRead = {len(entries)}\n" + enum(entries)


def qc(name: str, config: Record, *, delayed: bool = False, standin: bool = False) -> str:
    """``sc qc NAME`` (QUERY_SERVICE_CONFIG)."""
    start, ec = _int(config, "start_type"), _int(config, "error_control")
    start_text = START_NAMES.get(start, "") + ("  (DELAYED)" if delayed and start == 2 else "")
    deps = config.get("dependencies") or []
    dep_list = [str(d) for d in deps] if isinstance(deps, list) else []
    lines = [
        "[SC] QueryServiceConfig SUCCESS",
        "",
        f"SERVICE_NAME: {name}",
        f"{IND}TYPE               : {_int(config, 'service_type'):x}  {type_text(_int(config, 'service_type'))} ",
        f"{IND}START_TYPE         : {start}   {start_text}",
        f"{IND}ERROR_CONTROL      : {ec}   {ERROR_CONTROL_NAMES.get(ec, '')}",
        f"{IND}BINARY_PATH_NAME   : {config.get('binary_path_name', '')}",
        f"{IND}LOAD_ORDER_GROUP   : {config.get('load_order_group', '')}",
        f"{IND}TAG                : {_int(config, 'tag_id')}",
        f"{IND}DISPLAY_NAME       : {config.get('display_name', '')}",
        f"{IND}DEPENDENCIES       : {dep_list[0] if dep_list else ''}",
        *(f"{DEP_CONT}: {d}" for d in dep_list[1:]),
        f"{IND}SERVICE_START_NAME : {config.get('service_start_name', '')}",
    ]
    if standin:  # not sc.exe's: the model says where it stands in for Windows
        lines.append(f"{IND}(stand-in: the model does not implement this image; a generic")
        lines.append(f"{IND} host answers the service protocol. ServiceStandins=0 turns it off)")
    return "\n".join(lines) + "\n"


def qdescription(name: str, description: str | None) -> str:
    """``sc qdescription NAME``."""
    return (
        "\n".join(
            [
                "[SC] QueryServiceConfig2 SUCCESS",
                "",
                f"SERVICE_NAME: {name}",
                f"DESCRIPTION:  {description or ''}",
            ]
        )
        + "\n"
    )


def qfailure(name: str, failure: Record | None) -> str:
    """``sc qfailure NAME`` (SERVICE_FAILURE_ACTIONS)."""
    lines = ["[SC] QueryServiceConfig2 SUCCESS", "", f"SERVICE_NAME: {name}"]
    fa = failure or {}
    lines += [
        f"{IND}RESET_PERIOD (in seconds)    : {_int(fa, 'reset_period')}",
        f"{IND}REBOOT_MESSAGE               : {fa.get('reboot_msg') or ''}",
        f"{IND}COMMAND_LINE                 : {fa.get('command') or ''}",
    ]
    actions = fa.get("actions") or []
    for i, action in enumerate(actions if isinstance(actions, list) else []):
        text = f"{ACTION_NAMES.get(_int(action, 'type'), '')} -- Delay = {_int(action, 'delay')} milliseconds."
        lines.append((f"{IND}FAILURE_ACTIONS              : " if i == 0 else FA_CONT) + text)
    return "\n".join(lines) + "\n"


def failed(routine: str, error: int) -> str:
    """``[SC] OpenService FAILED 1060:`` + the message (sc.exe's failure form)."""
    return f"[SC] {routine} FAILED {error}:\n\n{error_message(error)}\n\n"


def success(routine: str) -> str:
    return f"[SC] {routine} SUCCESS\n"


def order(
    sequence: Sequence[str],
    reasons: Mapping[str, object],
    errors: Mapping[str, object] | None = None,
) -> str:
    """``sc order`` (the model's own verb): each auto-start position and why."""
    width = max((len(n) for n in sequence), default=12)
    lines = [f"AUTO-START ORDER ({len(sequence)} services)", ""]
    for i, name in enumerate(sequence, start=1):
        why = reasons.get(name, "")
        lines.append(f"{i:4}  {name:<{width}}  {getattr(why, 'text', why)}")
    for name, err in (errors or {}).items():
        code = getattr(err, "code", err)
        lines.append(f"   -  {name:<{width}}  not started: {code} {error_message(int(str(code)))}")
    return "\n".join(lines) + "\n"
