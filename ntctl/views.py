"""The records behind ntctl's views, and their Rich renderings (one record, two views)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nt import regpath
from nt.status import hexstatus, status_name
from ntctl.term import Styled

if TYPE_CHECKING:
    from nt.syscalls import SystemServices

# The types `reg add` takes, by name (the numbers live in nt/regpath.py).
REG_TYPES = {
    regpath.TYPE_NAMES[t]: t
    for t in (
        regpath.REG_NONE,
        regpath.REG_SZ,
        regpath.REG_EXPAND_SZ,
        regpath.REG_BINARY,
        regpath.REG_DWORD,
        regpath.REG_MULTI_SZ,
        regpath.REG_QWORD,
    )
}
REG_NAMES = {v: k for k, v in REG_TYPES.items()}


# -- processes ------------------------------------------------------------------------
def process_rows(procs: list[dict], include_exited: bool = False) -> list[dict]:
    rows = []
    for p in procs:
        if p["state"] == "exited" and not include_exited:
            continue
        row = {
            k: p.get(k)
            for k in (
                "pid",
                "image",
                "parent_pid",
                "session",
                "critical",
                "state",
                "create_time",
                "exit_status",
                "command_line",
                "user",
                "standin",
            )
        }
        row["uss_mib"] = _uss(p["pid"]) if p["state"] != "exited" else None
        rows.append(row)
    return rows


def _uss(pid: int) -> float | None:
    """Unique set size in MiB: what psutil's ``memory_full_info().uss`` sums (private
    clean + private dirty + private hugetlb), read from /proc without importing psutil."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    kib = 0
    for line in data.splitlines():
        if line.startswith((b"Private_Clean:", b"Private_Dirty:", b"Private_Hugetlb:")):
            kib += int(line.split()[1])
    return round(kib / 1024, 1)


TREE_TITLE = "NT process tree  (image  pid  session  flags  state  started  USS)"


def tree_lines(
    rows: list[dict], label: Any, key: str = "pid", parent: str = "parent_pid"
) -> list[Styled]:
    """Rows drawn as a tree with ``├──`` guides, children in ``create_time`` order."""
    by_key = {r[key]: r for r in rows}
    children: dict[Any, list[dict]] = {}
    roots = []
    for r in sorted(rows, key=lambda r: r.get("create_time") or ""):
        if r.get(parent) in by_key and r.get(parent) != r[key]:
            children.setdefault(r[parent], []).append(r)
        else:
            roots.append(r)
    out: list[Styled] = []

    def add(row: dict, prefix: str, last: bool, top: bool) -> None:
        guide = "" if top else prefix + ("└── " if last else "├── ")
        out.append(Styled(guide, "dim").extend(label(row)))
        kids = children.get(row[key], [])
        inner = "" if top else prefix + ("    " if last else "│   ")
        for i, child in enumerate(kids):
            add(child, inner, i == len(kids) - 1, False)

    for r in roots:
        add(r, "", True, True)
    return out


def process_tree(rows: list[dict]) -> list[Styled]:
    by_pid = {r["pid"]: r for r in rows}

    def label(r: dict) -> Styled:
        text = _label(r, r["parent_pid"] not in by_pid and r["parent_pid"] != 0)
        parent = by_pid.get(r["parent_pid"])
        if parent is not None and parent["image"] == "services.exe":
            text.extend(_service_process(r))
        elif r.get("user") and r["user"] != "NT AUTHORITY\\SYSTEM":
            text.append(f"  {r['user']}", "dim")  # a user's process (her token)
        return text

    return [Styled(TREE_TITLE, "bold"), *tree_lines(rows, label)]


def _service_process(row: dict) -> Styled:
    """A service process's host arguments (``-k netsvcs``), account, and stand-in mark."""
    text = Styled("")
    args = (row.get("command_line") or "").split(" ", 1)
    if row["image"] == "svchost.exe" and len(args) > 1:
        text.append(f"  {args[1]}", "cyan")
    text.append(f"  {row.get('user', '')}", "dim")
    if row.get("standin"):
        text.append("  (stand-in)", "yellow")
    return text


def _label(row: dict, orphan: bool) -> Styled:
    colour = "red" if row["state"] == "exited" else ("magenta" if row["critical"] else "cyan")
    text = Styled(f"{row['image']}", f"bold {colour}")
    session = "-" if row["session"] is None else str(row["session"])
    text.append(f"  {row['pid']}  s{session}")
    if row["critical"]:
        text.append("  critical", "magenta")
    text.append(f"  {row['state']}", "red" if row["state"] == "exited" else "green")
    if row["create_time"]:
        text.append(f"  {row['create_time'][11:23]}", "dim")
    if row.get("uss_mib") is not None:
        text.append(f"  {row['uss_mib']} MiB", "dim")
    if row["state"] == "exited" and row.get("exit_status") is not None:
        text.append(
            f"  exit {hexstatus(row['exit_status'])} {status_name(row['exit_status'])}", "red"
        )
    if orphan:
        text.append(f"  (NT parent {row['parent_pid']} has exited)", "dim italic")
    return text


def match_processes(procs: list[dict], target: str) -> list[dict]:
    if target.isdigit():
        return [p for p in procs if p["pid"] == int(target)]
    name = target.lower()
    name = name if name.endswith(".exe") or name == "system" else name + ".exe"
    return [p for p in procs if p["image"].lower() == name]


# -- objects --------------------------------------------------------------------------
def object_tree(nt: SystemServices, path: str, recursive: bool) -> dict:
    entries = []
    for name, type_name, target in nt.query_directory(path):
        full = path.rstrip("\\") + "\\" + name
        entry = {"name": name, "type": type_name, "path": full}
        if target is not None:
            entry["target"] = target
        if recursive and type_name == "Directory":
            entry["entries"] = object_tree(nt, full, True)["entries"]
        entries.append(entry)
    return {"path": path, "entries": entries}


def render_object_tree(tree: dict) -> list[Styled]:
    lines = [Styled(tree["path"], "bold")]

    def add(entries: list[dict], prefix: str) -> None:
        for i, e in enumerate(entries):
            last = i == len(entries) - 1
            line = Styled(prefix + ("└── " if last else "├── "), "dim")
            line.append(e["name"], "bold blue" if e["type"] == "Directory" else "")
            line.append(f"  {e['type']}", "dim")
            if "target" in e:
                line.append(f"  -> {e['target']}", "yellow")
            lines.append(line)
            add(e.get("entries", []), prefix + ("    " if last else "│   "))

    add(tree["entries"], "")
    return lines


# -- registry -------------------------------------------------------------------------
def reg_query(nt: SystemServices, key: str, value: str | None, recursive: bool) -> dict:
    from nt.syscalls import NtError  # loaded already by the attach

    if value is not None:
        vtype, data = nt.query_value(key, value)
        return {"key": key, "values": [value_row(value, vtype, data)], "subkeys": []}
    if recursive:  # one chunked snapshot instead of two calls per key
        from ntctl.reg import query_tree

        return query_tree(nt, key)
    values = [value_row(*v) for v in nt.enum_values(key)]
    subkeys = nt.enum_keys(key)
    out: dict[str, Any] = {"key": key, "values": values, "subkeys": subkeys}
    if recursive:
        out["children"] = []
        for sub in subkeys:
            try:
                out["children"].append(reg_query(nt, f"{key}\\{sub}", None, True))
            except NtError:  # a subkey we may not read: skip it, as reg does
                continue
    return out


def value_row(name: str, vtype: int, data: Any) -> dict:
    shown = data.hex() if isinstance(data, bytes) else data
    return {"name": name, "type": REG_NAMES.get(vtype, f"REG_{vtype}"), "data": shown}


def render_reg(data: dict) -> str:
    lines = [data["key"]]
    for v in data["values"]:
        shown = v["data"]
        if isinstance(shown, list):
            shown = "\\0".join(shown)
        elif isinstance(shown, int) and v["type"] in ("REG_DWORD", "REG_QWORD"):
            shown = hex(shown)
        lines.append(f"    {v['name'] or '(Default)'}    {v['type']}    {shown}")
    lines.append("")
    for sub in data["subkeys"] if "children" not in data else []:
        lines.append(f"{data['key']}\\{sub}")
    for child in data.get("children", []):
        lines.append(render_reg(child))
    return "\n".join(lines)


def parse_reg_data(vtype: str, data: str) -> tuple[int, Any]:
    """reg add's /t and /d: the type name and the text form of the data."""
    name = vtype.upper()
    if name not in REG_TYPES:
        raise ValueError(f"unknown type {vtype!r}; use one of {', '.join(REG_TYPES)}")
    number = REG_TYPES[name]
    try:
        if number in (4, 11):
            value = int(data, 0)
            if not 0 <= value < (1 << (32 if number == 4 else 64)):
                raise ValueError
            return number, value
        if number == 7:
            return number, data.split("\\0") if data else []
        if number in (0, 3):
            return number, bytes.fromhex(data)
    except ValueError as exc:
        raise ValueError(f"{data!r} is not valid {name} data") from exc
    return number, data


def parse_call_args(args: list[str]) -> dict:
    """name=value pairs: integers (0x.. allowed), true/false, else strings."""
    body: dict[str, Any] = {}
    for arg in args:
        name, sep, text = arg.partition("=")
        if not sep or not name:
            raise ValueError(f"argument {arg!r} is not name=value")
        if text.lower() in ("true", "false"):
            body[name] = text.lower() == "true"
        else:
            try:
                body[name] = int(text, 0)
            except ValueError:
                body[name] = text
    return body


# -- drivers (driverquery) ------------------------------------------------------------
DRIVERQUERY_COLUMNS = (
    ("Module Name", 12),
    ("Display Name", 22),
    ("Driver Type", 13),
    ("Link Date", 22),
)


def driver_rows(modules: list[dict]) -> list[dict]:
    """The loaded drivers in load order; "Link Date" is the load time (the model has no
    image files to carry a link time)."""
    return [
        {
            "module_name": m["name"],
            "display_name": m["display_name"],
            "driver_type": m["driver_type"],
            "link_date": _windows_time(m["load_time"]),
            **{
                k: m[k]
                for k in (
                    "order",
                    "image",
                    "start",
                    "group",
                    "tag",
                    "object_name",
                    "load_time",
                    "reason",
                )
            },
        }
        for m in modules
    ]


def _windows_time(iso: str) -> str:
    """``12/2/2026 6:30:01 AM``: how driverquery prints a date (en-US)."""
    from datetime import datetime

    try:
        t = datetime.fromisoformat(iso).astimezone()
    except ValueError:
        return iso
    hour = t.hour % 12 or 12
    return f"{t.month}/{t.day}/{t.year} {hour}:{t:%M:%S} {'AM' if t.hour < 12 else 'PM'}"


def driverquery_table(rows: list[dict]) -> str:
    """driverquery's default table: fixed columns, values cut to the column width."""
    keys = ("module_name", "display_name", "driver_type", "link_date")
    widths = [w for _, w in DRIVERQUERY_COLUMNS]
    lines = [
        " ".join(f"{h:<{w}}" for h, w in DRIVERQUERY_COLUMNS).rstrip(),
        " ".join("=" * w for w in widths),
    ]
    for r in rows:
        lines.append(
            " ".join(f"{str(r[k])[:w]:<{w}}" for k, w in zip(keys, widths, strict=True)).rstrip()
        )
    return "\n".join(lines)
