"""``ntctl analyze``: read a crash dump the way WinDbg's ``!analyze -v`` does.

Users of ``!analyze -v`` look for the banner, ``NAME (code)`` with each argument
explained, then ``KEY:  value`` sections (BUGCHECK_STR, PROCESS_NAME, the bucket ids)
they can paste into a search box. A model dump knows more than a real one (how the
culprit died, who noticed, the last log events), so those come as extra sections.

Every view has a JSON twin built from the same facts (:func:`analyze_json`), and the
text is rendered from that dict, so the two can never disagree.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nt import bugcodes
from nt.dump import how_died
from nt.status import hexstatus, status_name
from ntctl.logview import format_value, short_time
from ntctl.term import Styled

if TYPE_CHECKING:  # Rich is imported where a view is drawn: `analyze --show` does without
    from rich.console import RenderableType
    from rich.text import Text

BANNER = "\n".join(
    [
        "*" * 79,
        "*" + " " * 77 + "*",
        "*" + "Bugcheck Analysis".center(77) + "*",
        "*" + " " * 77 + "*",
        "*" * 79,
    ]
)

_OBJECT_TYPES = {bugcodes.OBJECT_TYPE_PROCESS: "process", bugcodes.OBJECT_TYPE_THREAD: "thread"}
_EVENT_HIDDEN = {"ts", "boot_id", "pid", "image", "session", "level", "event", "status_name"}


# --- facts ----------------------------------------------------------------------------


def _processes(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    procs = [p for p in record.get("process_table") or [] if isinstance(p, Mapping)]
    fault = record.get("faulting_process")
    return [fault, *procs] if fault else procs


def _process_at(record: Mapping[str, Any], address: int) -> Mapping[str, Any] | None:
    for proc in _processes(record):
        pid = proc.get("pid")
        if isinstance(pid, int) and bugcodes.eprocess_address(pid) == address:
            return proc
    return None


def argument_meaning(
    spec: bugcodes.ParamSpec, index: int, value: int, record: Mapping[str, Any] | None = None
) -> str:
    """What parameter ``index`` (1..4) with ``value`` means in this dump."""
    record = record or {}
    decoded = record.get("decoded") or {}
    kind = spec.kind
    if kind == bugcodes.PROCESS:
        proc = _process_at(record, value)
        if proc is None:
            return spec.meaning
        code = record.get("bugcheck_code")
        params = list(record.get("parameters") or [0, 0, 0, 0])
        thread = (code == bugcodes.BugCode.CRITICAL_PROCESS_DIED and params[1:2] == [1]) or (
            code == bugcodes.BugCode.CRITICAL_OBJECT_TERMINATION
            and params[:1] == [bugcodes.OBJECT_TYPE_THREAD]
        )
        what = "a thread of the critical process" if thread else "the critical process"
        verb = "was terminated" if code == bugcodes.BugCode.CRITICAL_OBJECT_TERMINATION else "died"
        return f"{spec.meaning}: {what} that {verb} ({proc.get('image')}, pid {proc.get('pid')})"
    if kind == bugcodes.STATUS:
        text = f"{spec.meaning}: {hexstatus(value)} {status_name(value)}"
        fault = record.get("faulting_process") or {}
        if fault.get("exit_status") is not None and fault["exit_status"] & 0xFFFFFFFF == value:
            text += f" (exit status of {fault.get('image')}, pid {fault.get('pid')})"
        return text
    if kind == bugcodes.STRING:
        s = decoded.get(f"p{index}_text")
        return f'{spec.meaning}: "{s}"' if s is not None else spec.meaning
    if kind == bugcodes.OBJECT_TYPE:
        return f"Terminating object type: {value} = {_OBJECT_TYPES.get(value, 'unknown type')}"
    if kind == bugcodes.THREAD_FLAG:
        return {0: "0: a process died (1 would mean a thread)", 1: "1: a thread died"}.get(
            value, f"{value}: unexpected (0 = process, 1 = thread)"
        )
    if kind == bugcodes.RESERVED and value:
        return f"{spec.meaning} (nonzero: {value:#x})"
    return spec.meaning


def _uptime(ms: int | None) -> str:
    """WinDbg's ``System Uptime`` form: ``0 days 0:03:12.234``."""
    if ms is None:
        return "unknown"
    seconds, milli = divmod(int(ms), 1000)
    minutes, sec = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    days, hour = divmod(hours, 24)
    return f"{days} days {hour}:{minute:02d}:{sec:02d}.{milli:03d}"


def _cause(fault: Mapping[str, Any] | None) -> str | None:
    if not fault:
        return None
    if fault.get("signal"):
        return fault.get("signal_name") or f"SIG{fault['signal']}"
    if fault.get("exit_status") is not None:
        return fault.get("exit_status_name") or hexstatus(fault["exit_status"])
    return None


def _bucket_token(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)


def analyze_json(record: Mapping[str, Any]) -> dict[str, Any]:
    """Every fact ``analyze`` shows, as plain JSON-able data (``ntctl analyze --json``)."""
    code = int(record["bugcheck_code"])
    info = bugcodes.describe(code)
    name = record.get("bugcheck_name") or info.name
    params = [int(p) for p in (record.get("parameters") or [])][:4]
    params += [0] * (4 - len(params))
    decoded = record.get("decoded") or {}
    fault = record.get("faulting_process") or None
    detector = record.get("detected_by") or None
    last = record.get("last_events") or {}
    bstr = bugcodes.bugcheck_str(code)
    process_name = (fault or {}).get("image") or decoded.get("process_name")
    subject = process_name or decoded.get("p1_text")
    bucket = [bstr] + [_bucket_token(t) for t in (subject, _cause(fault)) if t]
    culprit = None
    if fault:
        culprit = {**fault, "how": how_died(fault)}
    return {
        "bugcheck_code": code,
        "bugcheck_code_hex": bugcodes.format_code(code),
        "bugcheck_name": name,
        "description": info.description,
        "arguments": [
            {
                "index": i + 1,
                "value": v,
                "hex": f"{v & 0xFFFFFFFFFFFFFFFF:016x}",
                "meaning": argument_meaning(info.params[i], i + 1, v, record),
            }
            for i, v in enumerate(params)
        ],
        "decoded": dict(decoded),
        "bugcheck_str": bstr,
        "process_name": process_name or (detector or {}).get("image") or "System",
        "culprit": culprit,
        "detected_by": dict(detector) if detector else None,
        "default_bucket_id": f"{str(record.get('profile') or 'NT').upper()}_{name}",
        "failure_bucket_id": "_".join(bucket),
        "profile": record.get("profile"),
        "boot_id": record.get("boot_id"),
        "uptime_ms": record.get("uptime_ms"),
        "uptime": _uptime(record.get("uptime_ms")),
        "timestamp": record.get("timestamp"),
        "dump_file": record.get("dump_file"),
        "last_events_culprit": list(last.get(str((fault or {}).get("pid")), [])),
        "last_events_detector": list(last.get(str((detector or {}).get("pid")), [])),
        "consequences": list(record.get("consequences") or []),
        "config": dict(record.get("config") or {}),
    }


# --- rendering ------------------------------------------------------------------------


def _kv(key: str, value: Any, style: str = "") -> Text:
    from rich.text import Text

    text = Text(f"{key}:  ", style="bold")
    text.append("" if value is None else str(value), style=style)
    return text


def _who(p: Mapping[str, Any] | None) -> str:
    if not p:
        return "unknown"
    return f"{p.get('image', '?')} (pid {p.get('pid', '?')})"


def _fields(ev: Mapping[str, Any]) -> str:
    parts = []
    for key, value in ev.items():
        if key in _EVENT_HIDDEN:
            continue
        if key == "status" and ev.get("status_name"):
            parts.append(f"status={value}({ev['status_name']})")
        else:
            parts.append(f"{key}={format_value(value)}")
    return " ".join(parts)


def events_table(events: Sequence[Mapping[str, Any]], title: str) -> RenderableType:
    """The last events of one process: time, level, event, key fields."""
    from rich.table import Table
    from rich.text import Text

    if not events:
        return Text(f"{title}: no events in the dump", style="dim")
    table = Table(title=title, title_justify="left", box=None, pad_edge=False, show_edge=False)
    table.add_column("ts (UTC)", style="dim", no_wrap=True)
    table.add_column("level", no_wrap=True)
    table.add_column("event", style="cyan", no_wrap=True)
    table.add_column("fields", overflow="fold")
    for ev in events:
        level = str(ev.get("level", ""))
        style = {"error": "red", "critical": "bold red", "warning": "yellow"}.get(level, "")
        table.add_row(
            short_time(str(ev.get("ts", ""))),
            Text(level, style=style),
            str(ev.get("event", "")),
            _fields(ev),
        )
    return table


def _header(name: str, code: int, description: str) -> list[RenderableType]:
    from rich.text import Text

    return [
        Text(BANNER),
        Text(""),
        Text(f"{name} ({code:x})", style="bold red"),
        Text(description),
    ]


def _consequence_line(c: Mapping[str, Any]) -> str:
    parts = [str(c["ts"])] if c.get("ts") else []
    parts.append(_who(c))
    if c.get("signal") or c.get("exit_status") is not None:
        parts.append(how_died(c))
    rest = {
        k: v
        for k, v in c.items()
        if k
        not in {
            "ts",
            "pid",
            "image",
            "signal",
            "signal_name",
            "exit_status",
            "exit_status_name",
            "command_line",
            "session",
            "critical",
        }
        and v is not None
    }
    parts += [f"{k}={format_value(v)}" for k, v in rest.items()]
    return "  " + "  ".join(parts)


def analyze(record: Mapping[str, Any]) -> RenderableType:
    """``!analyze -v`` for a model dump, as a Rich renderable."""
    from rich.console import Group
    from rich.text import Text

    f = analyze_json(record)
    out: list[RenderableType] = _header(f["bugcheck_name"], f["bugcheck_code"], f["description"])
    out.append(Text("Arguments:"))
    out += [Text(f"Arg{a['index']}: {a['hex']}, {a['meaning']}") for a in f["arguments"]]
    out += [Text(""), Text("Debugging Details:"), Text("------------------"), Text("")]
    out.append(_kv("BUGCHECK_CODE", f"{f['bugcheck_code']:x}"))
    out += [_kv(f"BUGCHECK_P{a['index']}", f"{a['value']:x}") for a in f["arguments"]]
    out.append(_kv("PROCESS_NAME", f["process_name"], "bold"))
    culprit = f["culprit"]
    if culprit:
        out.append(_kv("IMAGE_NAME", culprit.get("image")))
        session = culprit.get("session")
        out.append(
            _kv(
                "PROCESS_ID",
                f"{culprit.get('pid')}" + (f" (session {session})" if session is not None else ""),
            )
        )
        if culprit.get("command_line"):
            out.append(_kv("COMMAND_LINE", culprit["command_line"]))
        if culprit.get("exit_status") is not None:
            hx, nm = hexstatus(culprit["exit_status"]), culprit.get("exit_status_name")
            out.append(_kv("EXIT_STATUS", hx if nm in (None, hx) else f"{hx} ({nm})"))
        if culprit.get("signal"):
            out.append(_kv("SIGNAL", f"{culprit.get('signal_name')} ({culprit['signal']})"))
        out.append(_kv("HOW_IT_DIED", culprit["how"], "red"))
        out.append(_kv("CRITICAL", "yes" if culprit.get("critical") else "no"))
    message = f["decoded"].get("message")
    if message:
        out.append(_kv("MESSAGE", message))
    out.append(_kv("DETECTED_BY", _who(f["detected_by"])))
    out.append(_kv("BUGCHECK_STR", f["bugcheck_str"]))
    out.append(_kv("DEFAULT_BUCKET_ID", f["default_bucket_id"]))
    out.append(_kv("FAILURE_BUCKET_ID", f["failure_bucket_id"], "bold"))
    out.append(_kv("PROFILE", f["profile"]))
    out.append(_kv("BOOT_ID", f["boot_id"]))
    out.append(_kv("UPTIME", f["uptime"]))
    out.append(_kv("CRASH_TIME", f["timestamp"]))
    if f["dump_file"]:
        out.append(_kv("DUMP_FILE", f["dump_file"]))
    out.append(Text(""))
    out.append(
        events_table(f["last_events_culprit"], f"Last events of the culprit: {_who(culprit)}")
    )
    out.append(Text(""))
    out.append(
        events_table(
            f["last_events_detector"],
            f"Last events of the detecting process: {_who(f['detected_by'])}",
        )
    )
    out.append(Text(""))
    out.append(Text("CONSEQUENCES:", style="bold"))
    if f["consequences"]:
        out += [Text(_consequence_line(c)) for c in f["consequences"]]
    else:
        out.append(Text("  none (no other process ended after the bugcheck)", style="dim"))
    return Group(*out)


def show_json(code: int | str, parameters: Sequence[int] | None = None) -> dict[str, Any]:
    """``!analyze -show`` facts for a code (int, hex text or name), without a dump."""
    value = bugcodes.lookup(code) if isinstance(code, str) else code
    info = bugcodes.describe(value)
    params = list(parameters or [])[:4]
    return {
        "bugcheck_code": info.code,
        "bugcheck_code_hex": bugcodes.format_code(info.code),
        "bugcheck_name": info.name,
        "known": info.known,
        "description": info.description,
        "arguments": [
            {
                "index": i + 1,
                "meaning": (
                    argument_meaning(spec, i + 1, params[i]) if i < len(params) else spec.meaning
                ),
                **({"value": params[i]} if i < len(params) else {}),
            }
            for i, spec in enumerate(info.params)
        ],
    }


def show_lines(code: int | str, parameters: Sequence[int] | None = None) -> list[Styled]:
    """``!analyze -show <code> [params]``: explain a bugcheck code with no dump at hand."""
    f = show_json(code, parameters)
    out = [
        Styled(BANNER),
        Styled(""),
        Styled(f"{f['bugcheck_name']} ({f['bugcheck_code']:x})", "bold red"),
        Styled(f["description"]),
        Styled("Arguments:"),
    ]
    for a in f["arguments"]:
        value = f"{a['value'] & 0xFFFFFFFFFFFFFFFF:016x}, " if "value" in a else ""
        out.append(Styled(f"Arg{a['index']}: {value}{a['meaning']}"))
    return out


def show(code: int | str, parameters: Sequence[int] | None = None) -> RenderableType:
    """:func:`show_lines` as a Rich renderable."""
    from rich.console import Group

    return Group(*(line.to_rich() for line in show_lines(code, parameters)))


def to_text(renderable: RenderableType, width: int = 120) -> str:
    """Render without colour (for ``--no-color``, pipes and tests)."""
    from rich.console import Console

    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None, force_terminal=False, highlight=False).print(
        renderable
    )
    return buf.getvalue()


def print_text(renderable: RenderableType) -> None:
    """Print to stdout (colour on a terminal; lines are never reflowed for copying)."""
    from rich.console import Console

    Console(soft_wrap=True, highlight=False).print(renderable)
