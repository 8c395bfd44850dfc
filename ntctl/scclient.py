"""``ntctl sc VERB ...`` (the verbs' bodies; ntctl/scverbs.py registers them): sc.exe against
the machine's SCM (``\\RPC Control\\ntsvcs``).

Arguments are sc.exe's: ``sc config NAME start= demand depend= A/B``, ``sc failure NAME
reset= 86400 actions= restart/60000/run/1000``, ``sc create NAME binPath= ...`` (``key=
value`` or ``key=value``). Each verb calls the svcctl stubs named after the MS-SCMR routines
(ports/svcctl.py) and prints sc.exe's layout (ntctl/sc.py); a failure is sc.exe's
``[SC] OpenService FAILED 1060:`` with the system message, and the exit status is 1.
``--json`` prints the reply records (or ``{"routine", "error", "message"}``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from nt.svcorder import compute_order, entry_from_values, parse_tag_vector
from nt.syscalls import NtError
from nt.win32 import error_message
from ntctl import sc as layout
from ntctl.cli import Exit, UsageError
from ntctl.machine import MachineError, QuickMachine
from ports import svcctl as sv
from ports.client import Connection, PortError

START_WORDS = {"boot": 0, "system": 1, "auto": 2, "demand": 3, "disabled": 4, "delayed-auto": 2}
TYPE_WORDS = {"own": 0x10, "share": 0x20, "kernel": 0x1, "filesys": 0x2, "rec": 0x8}
ERROR_WORDS = {"ignore": 0, "normal": 1, "severe": 2, "critical": 3}
ACTION_WORDS = {"": 0, "none": 0, "restart": 1, "reboot": 2, "run": 3}
ERROR_INVALID_PARAMETER = 87
RPC_S_CALL_FAILED = 1726
# The RPC layer's failures as the caller sees them (the port's NTSTATUS → win32).
RPC_ERRORS = {
    0xC000000D: ERROR_INVALID_PARAMETER,
    0xC0000022: 5,
    0xC000002F: 1783,
    0xC0000037: 1722,
}
CONTROLS = {"stop": 1, "pause": 2, "continue": 3, "interrogate": 4}


class ScFailed(Exception):
    def __init__(self, routine: str, error: int) -> None:
        super().__init__(routine)
        self.routine, self.error = routine, error


def options(args: Sequence[str]) -> dict[str, str]:
    """sc.exe's ``key= value`` pairs (also ``key=value``), keys lower-cased."""
    out: dict[str, str] = {}
    items = list(args)
    i = 0
    while i < len(items):
        word = items[i]
        if "=" not in word:
            raise ScFailed("Parse", ERROR_INVALID_PARAMETER)
        key, _, value = word.partition("=")
        if not value and i + 1 < len(items):
            value, i = items[i + 1], i + 1
        out[key.lower()] = value
        i += 1
    return out


def word(table: dict[str, int], text: str | None, routine: str) -> int:
    if text is None:
        return sv.SERVICE_NO_CHANGE
    if text.lower() not in table:
        raise ScFailed(routine, ERROR_INVALID_PARAMETER)
    return table[text.lower()]


def checked(routine: str, reply: object) -> dict:
    """The reply body, or ScFailed with the routine's win32 error (or the RPC status)."""
    ok = getattr(reply, "ok", False)
    body = getattr(reply, "body", {}) or {}
    if not ok:
        status = int(getattr(reply, "status", 0))
        raise ScFailed(routine, RPC_ERRORS.get(status, RPC_S_CALL_FAILED))
    if body.get("error"):
        raise ScFailed(routine, int(body["error"]))
    return body


class Sc:
    """One svcctl binding with the SC manager handle open."""

    def __init__(self, m: QuickMachine, access: int = sv.SC_MANAGER_CONNECT) -> None:
        self.conn: Connection = sv.ScConnectToScm(m.lpc)
        self.scm = checked("OpenSCManager", sv.ROpenSCManagerW(self.conn, access))["handle"]

    def open(self, name: str, access: int) -> int:
        return checked("OpenService", sv.ROpenServiceW(self.conn, self.scm, name, access))["handle"]


def run(
    root: Path,
    as_json: bool,
    fn: Callable[[Sc, QuickMachine], tuple[object, str]],
    access: int = sv.SC_MANAGER_CONNECT,
) -> None:
    try:
        with QuickMachine(root, session=0) as m:
            try:
                data, text = fn(Sc(m, access), m)
            except ScFailed as exc:
                if as_json:
                    out = {
                        "routine": exc.routine,
                        "error": exc.error,
                        "message": error_message(exc.error),
                    }
                    sys.stdout.write(json.dumps(out, indent=2) + "\n")
                else:
                    sys.stdout.write(layout.failed(exc.routine, exc.error))
                raise Exit(1) from exc
    except (MachineError, PortError) as exc:
        sys.stderr.write(f"ntctl: {exc}\n")
        raise Exit(1) from exc
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n" if as_json else text)


def _name(args: list[str] | None) -> tuple[str, list[str]]:
    if not args:
        raise UsageError("Missing argument 'NAME' (the service).")
    return args[0], args[1:]


# --- status ------------------------------------------------------------------------------


def query(args: list[str], root: Path, as_json: bool) -> None:
    """sc query [NAME] [type= driver|service|all] [state= all|inactive]"""
    _query(args or [], root, as_json, ex=False)


def queryex(args: list[str], root: Path, as_json: bool) -> None:
    """sc queryex [NAME]: with PID and FLAGS."""
    _query(args or [], root, as_json, ex=True)


def _query(args: list[str], root: Path, as_json: bool, *, ex: bool) -> None:
    if args and "=" not in args[0]:
        name = args[0]

        def one(s: Sc, m: QuickMachine) -> tuple[object, str]:
            h = s.open(name, sv.SERVICE_QUERY_STATUS)
            st = checked("QueryService", sv.RQueryServiceStatusEx(s.conn, h))["status"]
            return st, layout.query(name, st, ex=ex)

        return run(root, as_json, one)
    opts = options(args)
    kinds = {"driver": sv.SERVICE_DRIVER, "service": sv.SERVICE_WIN32, "all": 0x3B}
    states = {"active": 1, "inactive": 2, "all": 3}

    def every(s: Sc, m: QuickMachine) -> tuple[object, str]:
        rows: list[dict] = []
        resume = 0
        while True:
            reply = sv.REnumServicesStatusExW(
                s.conn,
                s.scm,
                kinds.get(opts.get("type", "service").lower(), sv.SERVICE_WIN32),
                states.get(opts.get("state", "active").lower(), 1),
                resume,
                opts.get("group"),
            )
            if not reply.ok:
                raise ScFailed(
                    "EnumQueryServicesStatus:OpenService",
                    RPC_ERRORS.get(reply.status, RPC_S_CALL_FAILED),
                )
            rows += reply.body["services"]
            if not reply.body["more_data"]:
                break
            resume = reply.body["resume_index"]
        return rows, layout.enum(rows, ex=ex)

    return run(root, as_json, every, sv.SC_MANAGER_ENUMERATE_SERVICE)


def qc(args: list[str], root: Path, as_json: bool) -> None:
    """sc qc NAME: the service's configuration."""
    name, _ = _name(args)

    def fn(s: Sc, m: QuickMachine) -> tuple[object, str]:
        h = s.open(name, sv.SERVICE_QUERY_CONFIG)
        reply = checked("QueryServiceConfig", sv.RQueryServiceConfigW(s.conn, h))
        config, standin = reply["config"], bool(reply.get("standin"))
        info = checked(
            "QueryServiceConfig2",
            sv.RQueryServiceConfig2W(s.conn, h, sv.SERVICE_CONFIG_DELAYED_AUTO_START_INFO),
        )["info"]
        delayed = bool(info.get("delayed_auto_start"))
        text = layout.qc(name, config, delayed=delayed, standin=standin)
        return {**config, "delayed_auto_start": delayed, "standin": standin}, text

    run(root, as_json, fn)


def qdescription(args: list[str], root: Path, as_json: bool) -> None:
    """sc qdescription NAME"""
    name, _ = _name(args)

    def fn(s: Sc, m: QuickMachine) -> tuple[object, str]:
        h = s.open(name, sv.SERVICE_QUERY_CONFIG)
        info = checked(
            "QueryServiceConfig2",
            sv.RQueryServiceConfig2W(s.conn, h, sv.SERVICE_CONFIG_DESCRIPTION),
        )["info"]
        return info, layout.qdescription(name, info.get("description"))

    run(root, as_json, fn)


def qfailure(args: list[str], root: Path, as_json: bool) -> None:
    """sc qfailure NAME"""
    name, _ = _name(args)

    def fn(s: Sc, m: QuickMachine) -> tuple[object, str]:
        h = s.open(name, sv.SERVICE_QUERY_CONFIG)
        info = checked(
            "QueryServiceConfig2",
            sv.RQueryServiceConfig2W(s.conn, h, sv.SERVICE_CONFIG_FAILURE_ACTIONS),
        )["info"]
        return info, layout.qfailure(name, info.get("failure_actions"))

    run(root, as_json, fn)


def enumdepend(args: list[str], root: Path, as_json: bool) -> None:
    """sc enumdepend NAME: the services that depend on NAME."""
    name, _ = _name(args)

    def fn(s: Sc, m: QuickMachine) -> tuple[object, str]:
        h = s.open(name, sv.SERVICE_ENUMERATE_DEPENDENTS)
        rows = checked("EnumDependentServices", sv.REnumDependentServicesW(s.conn, h))["services"]
        return rows, layout.enumdepend(rows)

    run(root, as_json, fn)


# --- control -----------------------------------------------------------------------------


def start(args: list[str], root: Path, as_json: bool) -> None:
    """sc start NAME [ARGS...]"""
    name, argv = _name(args)

    def fn(s: Sc, m: QuickMachine) -> tuple[object, str]:
        h = s.open(name, sv.SERVICE_START | sv.SERVICE_QUERY_STATUS)
        checked("StartService", sv.RStartServiceW(s.conn, h, argv))
        st = checked("QueryService", sv.RQueryServiceStatusEx(s.conn, h))["status"]
        return st, layout.query(name, st, ex=True)

    run(root, as_json, fn)


def _control(verb: str, args: list[str] | None, root: Path, as_json: bool) -> None:
    name, _ = _name(args)
    code = CONTROLS[verb]
    need = {1: sv.SERVICE_STOP, 4: sv.SERVICE_INTERROGATE}.get(code, sv.SERVICE_PAUSE_CONTINUE)

    def fn(s: Sc, m: QuickMachine) -> tuple[object, str]:
        h = s.open(name, need)
        st = checked("ControlService", sv.RControlService(s.conn, h, code))["status"]
        return st, layout.query(name, st)

    run(root, as_json, fn)


def stop(args: list[str], root: Path, as_json: bool) -> None:
    """sc stop NAME"""
    _control("stop", args, root, as_json)


def pause(args: list[str], root: Path, as_json: bool) -> None:
    """sc pause NAME"""
    _control("pause", args, root, as_json)


def continue_(args: list[str], root: Path, as_json: bool) -> None:
    """sc continue NAME"""
    _control("continue", args, root, as_json)


def interrogate(args: list[str], root: Path, as_json: bool) -> None:
    """sc interrogate NAME"""
    _control("interrogate", args, root, as_json)


# --- configuration -----------------------------------------------------------------------


def _config_fields(opts: dict[str, str], routine: str) -> dict[str, object]:
    deps = opts.get("depend")
    return {
        "service_type": word(TYPE_WORDS, opts.get("type"), routine),
        "start_type": word(START_WORDS, opts.get("start"), routine),
        "error_control": word(ERROR_WORDS, opts.get("error"), routine),
        "binary_path_name": opts.get("binpath"),
        "load_order_group": opts.get("group"),
        "dependencies": None if deps is None else [d for d in deps.split("/") if d],
        "service_start_name": opts.get("obj"),
        "display_name": opts.get("displayname"),
    }


def _set_delayed(s: Sc, h: int, opts: dict[str, str], routine: str) -> None:
    if "start" in opts:
        info = {"delayed_auto_start": opts["start"].lower() == "delayed-auto"}
        checked(
            routine,
            sv.RChangeServiceConfig2W(s.conn, h, sv.SERVICE_CONFIG_DELAYED_AUTO_START_INFO, info),
        )


def account_password(args: list[str], from_stdin: bool) -> bytes | None:
    """The obj= account's password: never from argv (sc.exe's ``password=`` would leave it in
    the process list; the model refuses it), from stdin or a prompt for a user account."""
    from ntctl.cli import fail

    try:
        opts = options(args[1:])
    except ScFailed:
        return None
    if "password" in opts:
        fail(
            "sc: password= is not taken on the command line (it would show in the process "
            "list); give it on stdin with --password-stdin, or at the prompt",
            2,
        )
    obj = opts.get("obj", "")
    builtin = {"", "localsystem", ".\\localsystem", "nt authority\\localservice",
               "nt authority\\networkservice", "nt authority\\system"}  # fmt: skip
    if not from_stdin and (obj.lower() in builtin or not sys.stdin.isatty()):
        return None
    from ntctl.users import read_password

    return read_password(from_stdin, f"Password for {obj}: ")


def config(args: list[str], root: Path, as_json: bool, password: bytes | None = None) -> None:
    """sc config NAME [type= ] [start= ] [error= ] [binPath= ] [group= ] [depend= ] [obj= ] [DisplayName= ]"""
    name, rest = _name(args)

    def fn(s: Sc, m: QuickMachine) -> tuple[object, str]:
        opts = options(rest)
        fields = _config_fields(opts, "ChangeServiceConfig")
        fields["password"] = password
        h = s.open(name, sv.SERVICE_CHANGE_CONFIG)
        body = checked("ChangeServiceConfig", sv.RChangeServiceConfigW(s.conn, h, **fields))
        _set_delayed(s, h, opts, "ChangeServiceConfig2")
        return body, layout.success("ChangeServiceConfig")

    run(root, as_json, fn)


def create(args: list[str], root: Path, as_json: bool, password: bytes | None = None) -> None:
    """sc create NAME binPath= PATH [type= own] [start= demand] [error= normal] [group= ] [depend= ] [obj= ] [DisplayName= ]"""
    name, rest = _name(args)

    def fn(s: Sc, m: QuickMachine) -> tuple[object, str]:
        opts = options(rest)
        if "binpath" not in opts:
            raise ScFailed("CreateService", ERROR_INVALID_PARAMETER)
        fields = _config_fields(opts, "CreateService")
        config = {k: v for k, v in fields.items() if v != sv.SERVICE_NO_CHANGE}
        path = str(config.pop("binary_path_name"))
        config["password"] = password
        body = checked("CreateService", sv.RCreateServiceW(s.conn, s.scm, name, path, **config))
        _set_delayed(s, body["handle"], opts, "ChangeServiceConfig2")
        return body, layout.success("CreateService")

    run(root, as_json, fn, sv.SC_MANAGER_CREATE_SERVICE)


def delete(args: list[str], root: Path, as_json: bool) -> None:
    """sc delete NAME (marked for delete until it stops)"""
    name, _ = _name(args)

    def fn(s: Sc, m: QuickMachine) -> tuple[object, str]:
        h = s.open(name, sv.DELETE)
        return checked("DeleteService", sv.RDeleteService(s.conn, h)), layout.success(
            "DeleteService"
        )

    run(root, as_json, fn)


def description(args: list[str], root: Path, as_json: bool) -> None:
    """sc description NAME TEXT"""
    name, rest = _name(args)

    def fn(s: Sc, m: QuickMachine) -> tuple[object, str]:
        h = s.open(name, sv.SERVICE_CHANGE_CONFIG)
        info = {"description": " ".join(rest)}
        checked(
            "ChangeServiceConfig2",
            sv.RChangeServiceConfig2W(s.conn, h, sv.SERVICE_CONFIG_DESCRIPTION, info),
        )
        return {"error": 0}, layout.success("ChangeServiceConfig2")

    run(root, as_json, fn)


def parse_actions(text: str) -> list[dict[str, int]]:
    """``restart/60000/run/1000/none/0`` → SC_ACTIONs (sc failure's actions= syntax)."""
    parts = text.split("/") if text else []
    if len(parts) % 2:
        raise ScFailed("ChangeServiceConfig2", ERROR_INVALID_PARAMETER)
    out = []
    for kind, delay in zip(parts[::2], parts[1::2], strict=True):
        if kind.lower() not in ACTION_WORDS or not delay.isdigit():
            raise ScFailed("ChangeServiceConfig2", ERROR_INVALID_PARAMETER)
        out.append({"type": ACTION_WORDS[kind.lower()], "delay": int(delay)})
    return out


def failure(args: list[str], root: Path, as_json: bool) -> None:
    """sc failure NAME reset= SECONDS actions= restart/MS/run/MS/reboot/MS [reboot= MSG] [command= CMD]"""
    name, rest = _name(args)

    def fn(s: Sc, m: QuickMachine) -> tuple[object, str]:
        opts = options(rest)
        if "reset" not in opts or not opts["reset"].isdigit():
            raise ScFailed("ChangeServiceConfig2", ERROR_INVALID_PARAMETER)
        info = {
            "failure_actions": {
                "reset_period": int(opts["reset"]),
                "reboot_msg": opts.get("reboot"),
                "command": opts.get("command"),
                "actions": parse_actions(opts.get("actions", "")),
            }
        }
        h = s.open(name, sv.SERVICE_CHANGE_CONFIG | sv.SERVICE_START)
        checked(
            "ChangeServiceConfig2",
            sv.RChangeServiceConfig2W(s.conn, h, sv.SERVICE_CONFIG_FAILURE_ACTIONS, info),
        )
        return {"error": 0}, layout.success("ChangeServiceConfig2")

    run(root, as_json, fn)


def order(args: list[str], root: Path, as_json: bool) -> None:
    """The auto-start order the SCM computes (nt/svcorder) and why, position by position."""

    def fn(s: Sc, m: QuickMachine) -> tuple[object, str]:
        base = r"HKLM\SYSTEM\CurrentControlSet"
        services = base + r"\Services"
        entries = []
        for key in m.nt.enum_keys(services):
            values = {n: d for n, _t, d in m.nt.enum_values(f"{services}\\{key}")}  # type: ignore[misc]
            entry = entry_from_values(key, values)
            if entry is not None:
                entries.append(entry)
        try:
            group_list = m.nt.query_value(base + r"\Control\ServiceGroupOrder", "List")[1]
        except NtError:
            group_list = []
        tags = {}
        for gname, _t, data in m.nt.enum_values(base + r"\Control\GroupOrderList"):  # type: ignore[misc]
            tags[str(gname).lower()] = list(parse_tag_vector(data))
        loaded = [mod["name"] for mod in m.nt.modules()]
        result = compute_order(entries, list(group_list or []), tags, running=loaded)
        return result.as_dict(), layout.order(result.sequence, result.reasons, result.errors)

    run(root, as_json, fn)


def boot(args: list[str], root: Path, as_json: bool) -> None:
    """sc boot ok|bad: NotifyBootConfigStatus (ok saves LastKnownGood, bad restarts into it)"""
    if not args or len(args) != 1 or args[0].lower() not in ("ok", "bad"):
        raise UsageError("sc boot takes one argument: ok or bad.")
    good = args[0].lower() == "ok"

    def fn(s: Sc, m: QuickMachine) -> tuple[object, str]:
        body = checked("NotifyBootConfigStatus", sv.RNotifyBootConfigStatus(s.conn, good))
        return body, layout.success("NotifyBootConfigStatus")

    run(root, as_json, fn)
