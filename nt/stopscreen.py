"""The STOP screen ("blue screen") shown when the kernel bugchecks.

It shows both generations people recognise: the classic ``*** STOP: 0x000000EF (...)``
line with four parameters (NT 4 to Windows 7) and the Windows 8+ ``Stop code:
CRITICAL_PROCESS_DIED`` line, plus what the model knows and Windows does not print:
which process failed and how, and where the dump went.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nt import bugcodes
from nt.dump import how_died

if TYPE_CHECKING:  # Rich is imported by render_stop alone: the launcher's daemon has no use
    from rich.console import RenderableType

STOP_STYLE = "bright_white on blue"

_INTRO = (
    "A problem has been detected and Windows has been shut down to prevent damage to your computer."
)
_ADVICE = (
    "If this is the first time you've seen this Stop error screen, restart your "
    "computer. If this screen appears again, run `ntctl analyze` on the dump below "
    "and look at the last events of the process that failed."
)


def stop_line(record: Mapping[str, Any]) -> str:
    """``*** STOP: 0x000000EF (0xFFFFA00000123000, 0x0000000000000000, ...)``."""
    params = ", ".join(bugcodes.format_param(p) for p in _params(record))
    return f"*** STOP: {bugcodes.format_code(record['bugcheck_code'])} ({params})"


def _params(record: Mapping[str, Any]) -> list[int]:
    params = [int(p) for p in record.get("parameters", [])][:4]
    return params + [0] * (4 - len(params))


def _name(record: Mapping[str, Any]) -> str:
    return str(record.get("bugcheck_name") or bugcodes.describe(record["bugcheck_code"]).name)


def what_failed(record: Mapping[str, Any]) -> str | None:
    """``csrss.exe (pid 1234), killed by SIGKILL``, or None when no process is to blame."""
    fault = record.get("faulting_process")
    if not fault:
        return None
    text = f"{fault.get('image', '?')} (pid {fault.get('pid', '?')})"
    if fault.get("session") is not None:
        text += f" in session {fault['session']}"
    return f"{text}, {how_died(fault)}"


def _dump_lines(record: Mapping[str, Any], dump_path: Path | str | None) -> list[str]:
    config = record.get("config") or {}
    if config.get("CrashDumpEnabled", 7) == 0:
        lines = ["Crash dump disabled (CrashDumpEnabled=0); nothing was written."]
    else:
        lines = ["Collecting data for crash dump ...", "Initializing disk for crash dump ..."]
        path = dump_path or record.get("dump_path")
        if path:
            lines += ["Dump of the machine state complete.", f"Dump written to {path}"]
        else:
            lines.append("Writing the dump ...")
    if config.get("AutoReboot", 1):
        lines.append("The system will restart automatically (AutoReboot=1).")
    else:
        lines.append("The system is halted (AutoReboot=0).")
    return lines


def stop_lines(record: Mapping[str, Any], dump_path: Path | str | None = None) -> list[str]:
    """The screen's text, one string per line (blank strings between paragraphs)."""
    code = int(record["bugcheck_code"])
    name = _name(record)
    lines = [_INTRO, "", name, ""]
    message = (record.get("decoded") or {}).get("message")
    if message:
        lines += [message, ""]
    failed = what_failed(record)
    if failed:
        lines += [f"What failed: {failed}", ""]
    lines += [_ADVICE, "", "Technical information:", "", stop_line(record), ""]
    lines += [f"Stop code: {name} ({bugcodes.format_code(code)})", ""]
    lines += _dump_lines(record, dump_path)
    return lines


def render_stop_text(record: Mapping[str, Any], dump_path: Path | str | None = None) -> str:
    """The STOP screen as plain text (for logs, a dumb terminal, or tests)."""
    return "\n".join(stop_lines(record, dump_path)) + "\n"


def render_stop(record: Mapping[str, Any], dump_path: Path | str | None = None) -> RenderableType:
    """The STOP screen as a Rich renderable: white on blue, name and STOP line bold.

    Print it with ``soft_wrap=False``: each paragraph then wraps inside the panel (and an
    unbreakable path folds) instead of being cut at the panel's edge."""
    from rich.console import Group
    from rich.padding import Padding
    from rich.panel import Panel
    from rich.text import Text

    name = _name(record)
    stop = stop_line(record)
    parts: list[RenderableType] = []
    for line in stop_lines(record, dump_path):
        if line in (name, stop) or line.startswith(("Stop code:", "What failed:")):
            parts.append(Text(line, style="bold", overflow="fold"))
        else:
            parts.append(Text(line, overflow="fold"))
    return Panel(
        Padding(Group(*parts), (1, 2)),
        style=STOP_STYLE,
        border_style=STOP_STYLE,
        expand=True,
    )
