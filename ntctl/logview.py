"""Log events for people: one coloured line per event (``ntctl logs``, the boot console).

``HH:MM:SS.mmm image[pid] s<session> LEVEL event key=value ...``. Colour carries the two
things a reader scans for: severity (level) and what kind of thing happened (the event
family: ``bugcheck`` red, ``proc.*`` cyan, ``port.*`` blue ...).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TextIO

from nt.logfields import FIXED_KEYS
from ntctl.term import Styled, colour_enabled

LEVEL_STYLES = {
    "debug": "dim",
    "info": "green",
    "warning": "yellow",
    "error": "bold red",
    "critical": "bold white on red",
}
LEVEL_LABELS = {
    "debug": "DEBUG",
    "info": "INFO ",
    "warning": "WARN ",
    "error": "ERROR",
    "critical": "CRIT ",
}

# Longest prefix wins; "bugcheck" and "boot.bugcheck" both match "bugcheck".
FAMILY_STYLES = {
    "bugcheck": "bold red",
    "proc.": "cyan",
    "port.": "blue",
    "csr.": "magenta",
    "sm.": "bright_magenta",
    "boot.": "green",
    "svc.": "yellow",
    "logon.": "bright_green",
    "logoff.": "bright_green",
    "lsa.": "bright_cyan",
    "reg.": "bright_blue",
    "shutdown": "bold yellow",
    "component.": "bright_red",
}

_HIDDEN = set(FIXED_KEYS) | {"status_name"}


def event_style(event: str) -> str:
    """The colour of an event name by its family."""
    if "bugcheck" in event:
        return FAMILY_STYLES["bugcheck"]
    best = ""
    for prefix in FAMILY_STYLES:
        if event.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return FAMILY_STYLES.get(best, "white")


def short_time(ts: str, *, local: bool = False) -> str:
    """``HH:MM:SS.mmm`` from the log's ISO ``ts`` (UTC unless ``local``)."""
    if not ts:
        return "??:??:??.???"
    try:
        dt = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return ts[:12]
    if local:
        dt = dt.astimezone()
    return dt.strftime("%H:%M:%S.") + f"{dt.microsecond // 1000:03d}"


MAX_CONSOLE_VALUE = 160


def format_value(value: Any) -> str:
    """A field value as ``key=value`` wants it: bare when simple, quoted when spaced."""
    if isinstance(value, str):
        if value == "" or any(c in value for c in " =\"'\n\t"):
            return json.dumps(value, ensure_ascii=False)
        return value
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
        # A console line stays readable; `ntctl logs --json` has the whole value.
        return text if len(text) <= MAX_CONSOLE_VALUE else text[: MAX_CONSOLE_VALUE - 1] + "…"
    return str(value)


def _session_label(session: Any) -> str:
    return "s-" if session is None else f"s{session}"


def format_event(ev: Mapping[str, Any], *, local: bool = False) -> Styled:
    """One event as a styled line; fields after the fixed ones, ``status`` with its name."""
    level = str(ev.get("level", "info")).lower()
    event = str(ev.get("event", ""))
    line = Styled()
    line.append(short_time(str(ev.get("ts", "")), local=local), style="dim")
    line.append(" ")
    line.append(str(ev.get("image", "?")), style="bold")
    line.append(f"[{ev.get('pid', '?')}]", style="dim")
    line.append(" ")
    line.append(_session_label(ev.get("session")), style="dim")
    line.append(" ")
    line.append(
        LEVEL_LABELS.get(level, level.upper()[:5].ljust(5)), style=LEVEL_STYLES.get(level, "")
    )
    line.append(" ")
    line.append(event, style=event_style(event))
    exception = None
    for key, value in ev.items():
        if key in _HIDDEN:
            continue
        if key == "exception" and isinstance(value, str):
            exception = value
            continue
        line.append(" ")
        line.append(f"{key}=", style="dim")
        if key == "status" and ev.get("status_name"):
            style = "red" if str(value).upper().startswith("0XC") else ""
            line.append(f"{format_value(value)}({ev['status_name']})", style=style)
        else:
            line.append(format_value(value))
    if exception:
        indented = "\n".join("    " + ln for ln in exception.rstrip().splitlines())
        line.append("\n" + indented, style="red")
    return line


def format_event_plain(ev: Mapping[str, Any], *, local: bool = False) -> str:
    """The same line without colour (for pipes and tests)."""
    return format_event(ev, local=local).plain


def print_events(
    events: Iterable[Mapping[str, Any]],
    stream: TextIO | None = None,
    *,
    as_json: bool = False,
    local: bool = False,
) -> int:
    """Print events one per line (or as raw JSON lines); returns how many."""
    stream = stream or sys.stdout
    colour = colour_enabled(stream)
    count = 0
    for ev in events:
        if as_json:
            stream.write(json.dumps(ev, ensure_ascii=False, default=str) + "\n")
        else:
            stream.write(format_event(ev, local=local).render(colour) + "\n")
        count += 1
    return count
