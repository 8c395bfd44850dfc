"""A lean command dispatcher for ntctl: verbs as data, parsed with the standard library only.

Why not Typer: importing Typer costs 40-60 ms here (its vendored click, plus the
signature inspection that builds every command on each call), a third of the 150 ms a
read-only verb may take in all. So the verb table is declared with :class:`Opt` and
:class:`Arg` (Typer's vocabulary: options, flags, arguments, groups), this module
parses it, and each verb's function imports what it needs when it runs. Help and errors
follow Typer's layout (``Usage:`` / ``Try 'ntctl ps --help' for help.`` / ``Error: ...``,
exit 2, "Did you mean ...?").

Adding a verb: one decorated function in ``ntctl/main.py`` (or a group's module), whose
body imports its own dependencies::

    @app.verb("drivers", ROOT, JSON)
    def drivers(root: Path, as_json: bool) -> None:
        \"\"\"The loaded drivers, in load order.\"\"\"
        from ntctl import drivers as view   # heavy imports live here, never at the top
        ...
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

USAGE_ERROR = 2


class Exit(Exception):
    """Leave the verb with an exit code (after printing what went wrong)."""

    def __init__(self, code: int = 0) -> None:
        super().__init__(code)
        self.code = code


class UsageError(Exception):
    """A mistake on the command line: reported with the verb's usage, exit 2."""


def _colour(stream: Any) -> bool:
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return bool(os.environ.get("FORCE_COLOR")) or (hasattr(stream, "isatty") and stream.isatty())


def fail(message: str, code: int = 1, hint: str = "") -> NoReturn:
    """Print ``ntctl: message`` (and how to fix it) on stderr and leave with ``code``."""
    text = f"ntctl: {message}" + (f"\n  {hint}" if hint else "")
    if _colour(sys.stderr):
        text = f"\x1b[31m{text}\x1b[0m"
    sys.stderr.write(text + "\n")
    raise Exit(code)


class Opt:
    """An option: ``Opt("--json", flag=True)``, ``Opt("--pid", type=int)``,
    ``Opt("--reg", multiple=True)``. The destination is the first long name without
    dashes (``--as-json`` → ``as_json``) unless ``dest`` says otherwise."""

    def __init__(
        self,
        *names: str,
        dest: str | None = None,
        flag: bool = False,
        type: Callable[[str], Any] = str,
        default: Any = None,
        multiple: bool = False,
        metavar: str | None = None,
        help: str = "",
    ) -> None:
        self.names = names
        longs = [n for n in names if n.startswith("--")] or list(names)
        self.dest = dest or longs[0].lstrip("-/").replace("-", "_")
        self.flag, self.type, self.multiple, self.help = flag, type, multiple, help
        self.default = False if flag and default is None else default
        self.metavar = metavar or ("" if flag else self.dest.upper())

    def initial(self) -> Any:
        return [] if self.multiple else self.default


class Arg:
    """A positional argument; ``optional`` ones may be left out, ``many`` takes the rest."""

    def __init__(
        self,
        name: str,
        *,
        dest: str | None = None,
        type: Callable[[str], Any] = str,
        optional: bool = False,
        many: bool = False,
        default: Any = None,
        help: str = "",
    ) -> None:
        self.name, self.dest = name, dest or name.replace("-", "_")
        self.type, self.optional, self.many, self.help = type, optional or many, many, help
        self.default = [] if many and default is None else default


class Verb:
    def __init__(self, name: str, func: Callable[..., Any], params: Sequence[Opt | Arg]) -> None:
        self.name, self.func = name, func
        self.opts = [p for p in params if isinstance(p, Opt)]
        self.args = [p for p in params if isinstance(p, Arg)]
        doc = (func.__doc__ or "").strip()
        self.help = doc.splitlines()[0] if doc else ""
        self.description = doc

    # -- parsing ------------------------------------------------------------------
    def parse(self, argv: Sequence[str]) -> dict[str, Any]:
        values: dict[str, Any] = {o.dest: o.initial() for o in self.opts}
        values.update({a.dest: a.default for a in self.args})
        by_name = {n: o for o in self.opts for n in o.names}
        positional: list[str] = []
        i, rest = 0, False
        while i < len(argv):
            token = argv[i]
            i += 1
            if rest or token == "-" or not (token.startswith("-") or token in by_name):
                positional.append(token)
                continue
            if token == "--":
                rest = True
                continue
            name, eq, inline = token.partition("=")
            opt = by_name.get(name if eq else token)
            if opt is None and token.startswith("-") and len(token) > 2 and token[1] != "-":
                opt = by_name.get(token[:2])  # -n20, as click takes it
                if opt is not None and not opt.flag:
                    name, eq, inline = token[:2], "=", token[2:]
                else:
                    opt = None
            if opt is None:
                if token.startswith("-") and token[1:2].isdigit() and self.args:
                    positional.append(token)  # a negative number where an argument goes
                    continue
                raise UsageError(f"No such option: {name}{_suggest(name, by_name)}")
            if opt.flag:
                if eq:
                    raise UsageError(f"Option '{name}' does not take a value.")
                values[opt.dest] = True
                continue
            if not eq:
                if i >= len(argv):
                    raise UsageError(f"Option '{token}' requires an argument.")
                inline = argv[i]
                i += 1
            value = _convert(opt.type, inline, f"option '{opt.names[0]}'")
            if opt.multiple:
                values[opt.dest].append(value)
            else:
                values[opt.dest] = value
        self._bind(positional, values)
        return values

    def _bind(self, positional: list[str], values: dict[str, Any]) -> None:
        for arg in self.args:
            if arg.many:
                values[arg.dest] = [_convert(arg.type, v, arg.name) for v in positional]
                positional = []
            elif positional:
                values[arg.dest] = _convert(arg.type, positional.pop(0), arg.name)
            elif not arg.optional:
                raise UsageError(f"Missing argument '{arg.name.upper()}'.")
        if positional:
            raise UsageError(f"Got unexpected extra argument ({' '.join(positional)})")

    # -- help ---------------------------------------------------------------------
    def usage(self, prog: str) -> str:
        parts = [f"Usage: {prog}", "[OPTIONS]" if self.opts else ""]
        for a in self.args:
            shown = a.name.upper() + ("..." if a.many else "")
            parts.append(f"[{shown}]" if a.optional else shown)
        return " ".join(p for p in parts if p)

    def render_help(self, prog: str) -> str:
        lines = [self.usage(prog), ""]
        lines += ["  " + ln if ln else "" for ln in self.description.splitlines()]
        if self.args:
            lines += ["", "Arguments:"]
            lines += _table((a.name.upper(), a.help) for a in self.args)
        lines += ["", "Options:"]
        rows = [
            (", ".join(o.names) + (f" {o.metavar}" if o.metavar else ""), _opt_help(o))
            for o in self.opts
        ]
        lines += _table([*rows, ("--help", "Show this message and exit.")])
        return "\n".join(lines) + "\n"


def _opt_help(o: Opt) -> str:
    text = o.help
    if o.multiple:
        text += " (repeatable)"
    elif not o.flag and o.default not in (None, ""):
        text += f"  [default: {o.default}]"
    return text.strip()


def _table(rows: Any) -> list[str]:
    rows = list(rows)
    width = min(max((len(r[0]) for r in rows), default=0), 28)
    return [
        f"  {left:<{width}}  {right}"
        if len(left) <= width
        else f"  {left}\n  {'':<{width}}  {right}"
        for left, right in rows
    ]


def _convert(kind: Callable[[str], Any], text: str, what: str) -> Any:
    if kind is str:
        return text
    try:
        return kind(text)
    except (TypeError, ValueError):
        name = getattr(kind, "__name__", "value")
        raise UsageError(f"Invalid value for {what}: {text!r} is not a valid {name}.") from None


def _suggest(word: str, choices: Any) -> str:
    import difflib  # only on a mistake

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (Did you mean {close[0]}?)" if close else ""


class Group:
    """A set of verbs under one name (``ntctl reg query``); the app is the root group."""

    def __init__(self, name: str, help: str = "") -> None:
        self.name, self.help = name, help
        self.verbs: dict[str, Verb] = {}
        self.groups: dict[str, Group] = {}

    def verb(self, name: str, *params: Opt | Arg) -> Callable[[Callable], Callable]:
        def register(func: Callable) -> Callable:
            self.verbs[name] = Verb(name, func, params)
            return func

        return register

    def group(self, name: str, help: str) -> Group:
        sub = Group(name, help)
        self.groups[name] = sub
        return sub

    def render_help(self, prog: str) -> str:
        lines = [f"Usage: {prog} [OPTIONS] COMMAND [ARGS]...", "", f"  {self.help}", ""]
        lines += ["Options:"] + _table([("--help", "Show this message and exit.")])
        lines += ["", "Commands:"]
        rows = [(n, v.help) for n, v in self.verbs.items()]
        rows += [(n, g.help) for n, g in self.groups.items()]
        lines += _table(rows)
        lines += ["", f"Run '{prog} COMMAND --help' for a command's options."]
        return "\n".join(lines) + "\n"

    def _usage_error(self, prog: str, message: str, usage: str) -> int:
        sys.stderr.write(f"{usage}\nTry '{prog} --help' for help.\n\nError: {message}\n")
        return USAGE_ERROR

    def dispatch(self, argv: Sequence[str], prog: str) -> int:
        """Find the verb named by ``argv``, parse its options, run it; the exit code."""
        if not argv or argv[0] in ("--help", "-h"):
            sys.stdout.write(self.render_help(prog))
            return 0 if argv else USAGE_ERROR
        head, tail = argv[0], argv[1:]
        if head in self.groups:
            return self.groups[head].dispatch(tail, f"{prog} {head}")
        verb = self.verbs.get(head)
        if verb is None:
            names = [*self.verbs, *self.groups]
            what = "option" if head.startswith("-") else "command"
            return self._usage_error(
                prog,
                f"No such {what} '{head}'.{_suggest(head, names)}",
                f"Usage: {prog} [OPTIONS] COMMAND [ARGS]...",
            )
        name = f"{prog} {head}"
        if "--help" in tail or "-h" in tail:
            sys.stdout.write(verb.render_help(name))
            return 0
        try:
            kwargs = verb.parse(tail)
        except UsageError as exc:
            return self._usage_error(name, str(exc), verb.usage(name))
        try:
            result = verb.func(**kwargs)
        except Exit as exc:
            return exc.code
        except UsageError as exc:  # a verb that checks its own arguments (sc's NAME, ...)
            return self._usage_error(name, str(exc), verb.usage(name))
        except KeyboardInterrupt:
            return 130
        except BrokenPipeError:  # `ntctl logs | head`: the reader left; not an error
            _quiet_stdout()
            return 0
        return result if isinstance(result, int) else 0


def _quiet_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush is silent."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, sys.stdout.fileno())
