"""ntctl/cli.py (the verb dispatcher), ntctl/term.py and the boot console's milestone table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ntctl import console
from ntctl.cli import Arg, Exit, Group, Opt, fail
from ntctl.main import app
from ntctl.term import Styled

REPO = Path(__file__).resolve().parents[2]


def make_app() -> tuple[Group, list[dict]]:
    calls: list[dict] = []
    root = Group("t", "a test tool")

    @root.verb(
        "get",
        Arg("key"),
        Arg("rest", many=True),
        Opt("--json", dest="as_json", flag=True),
        Opt("-n", "--lines", type=int),
        Opt("--reg", multiple=True),
        Opt("/v", "--value"),
    )
    def get(**kw: object) -> int:
        """Get a thing.

        More words."""
        calls.append(kw)
        return 3

    sub = root.group("sub", "a group")

    @sub.verb("run")
    def run() -> None:
        """Run it."""
        fail("it broke", 1, "fix it")

    return root, calls


def test_options_flags_values_and_arguments_are_parsed() -> None:
    root, calls = make_app()
    code = root.dispatch(
        ["get", "K", "a", "-n20", "--json", "--reg=x", "--reg", "y", "/v", "V", "b"], "t"
    )
    assert code == 3
    assert calls == [
        {
            "key": "K",
            "rest": ["a", "b"],
            "as_json": True,
            "lines": 20,
            "reg": ["x", "y"],
            "value": "V",
        }
    ]
    root.dispatch(["get", "K", "--", "--json"], "t")
    assert calls[-1]["rest"] == ["--json"] and calls[-1]["as_json"] is False


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["get", "K", "--jsn"], "No such option: --jsn (Did you mean --json?)"),
        (["get"], "Missing argument 'KEY'."),
        (["get", "K", "-n", "many"], "Invalid value for option '-n': 'many' is not a valid int."),
        (["get", "K", "--lines"], "Option '--lines' requires an argument."),
        (["get", "K", "--json=1"], "Option '--json' does not take a value."),
        (["gte"], "No such command 'gte'. (Did you mean get?)"),
    ],
)
def test_usage_errors_say_what_is_wrong_and_exit_2(capsys, argv, message) -> None:
    root, calls = make_app()
    assert root.dispatch(argv, "t") == 2
    err = capsys.readouterr().err
    assert f"Error: {message}" in err and "Usage: t" in err and "--help' for help." in err
    assert not calls


def test_help_lists_verbs_groups_options_and_the_docstring(capsys) -> None:
    root, _ = make_app()
    assert root.dispatch(["--help"], "t") == 0
    out = capsys.readouterr().out
    assert "get  Get a thing." in out and "sub  a group" in out
    assert root.dispatch(["get", "--help"], "t") == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: t get [OPTIONS] KEY [REST...]")
    assert "More words." in out and "-n, --lines LINES" in out and "(repeatable)" in out
    assert root.dispatch([], "t") == 2  # no verb: the help, as a usage error


def test_fail_prints_the_message_and_the_fix_and_exits(capsys) -> None:
    root, _ = make_app()
    assert root.dispatch(["sub", "run"], "t") == 1
    assert capsys.readouterr().err == "ntctl: it broke\n  fix it\n"
    with pytest.raises(Exit):
        fail("x")


def test_every_ntctl_verb_has_help() -> None:
    verbs = list(app.verbs.values()) + [v for g in app.groups.values() for v in g.verbs.values()]
    assert {"ps", "logs", "blame", "critical-chain", "plot", "top"} <= set(app.verbs)
    for verb in verbs:
        assert verb.help, f"{verb.name} has no docstring"
        assert "Usage: ntctl" in verb.render_help(f"ntctl {verb.name}")


def test_ntctl_help_imports_none_of_the_heavy_libraries() -> None:
    """`ntctl --help` and the verb table stay cheap: no Typer, Rich, zmq, structlog, psutil."""
    code = (
        "import sys; from ntctl.main import app; import io, contextlib\n"
        "with contextlib.redirect_stdout(io.StringIO()): app.dispatch(['--help'], 'ntctl')\n"
        "print(sorted(m for m in ('typer', 'rich', 'zmq', 'structlog', 'psutil') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_styled_text_renders_ansi_or_plain_and_truncates_without_wrapping() -> None:
    line = Styled("abc", "bold red").append("def").append("ghi", "on blue")
    assert line.render(False) == "abcdefghi"
    assert line.render(True) == "\x1b[1;31mabc\x1b[0mdef\x1b[44mghi\x1b[0m"
    assert line.truncate(9).plain == "abcdefghi"
    assert line.truncate(5).plain == "abcd…"
    assert line.truncate(6).plain == "abcde…"
    assert Styled("one\ntwo").truncate(80).plain == "one"


def test_milestones_and_alerts_make_the_default_console() -> None:
    def lines(ev: dict, sos: bool = False) -> list[str]:
        return [x.plain for x in console.console_lines(ev, sos=sos, verbose=False)]

    base = {"ts": "2026-12-02T06:30:00.000000Z", "pid": 5, "image": "csrss.exe", "level": "info"}
    assert lines({**base, "session": 1, "event": "csr.ready"}) == [
        "Windows subsystem ready in session 1"
    ]
    assert lines({**base, "session": 1, "event": "logon.ready"}) == [
        "Press Ctrl+Alt+Del to log on (session 1)"
    ]
    assert lines({**base, "event": "port.connect"}) == []  # not a milestone: hidden
    assert "WARN" in lines({**base, "event": "port.bad_event", "level": "warning"})[0]
    assert "divergence" in lines({**base, "event": "divergence", "what": "x"})[0]
    started = {**base, "event": "svc.state", "service": "EventLog", "state": 4}  # RUNNING
    assert lines(started) == [] and lines(started, sos=True) == ["  Started EventLog"]
    assert lines({**started, "state": 1}, sos=True) == []  # STOPPED
    banner = lines({**base, "event": "boot.start", "boot_id": "b1", "options": ["SOS"]})
    assert banner[0].startswith("ntmodel") and "/SOS" in banner[1]
    verbose = console.console_lines({**base, "event": "port.connect"}, sos=False, verbose=True)
    assert "port.connect" in verbose[0].plain


def test_the_stop_screen_wraps_its_paragraphs_and_never_clips_them() -> None:
    """On a narrow console (soft-wrapping, as the launcher's is) every word stays on screen."""
    import io

    from rich.console import Console

    from nt.stopscreen import _ADVICE, render_stop

    record = {
        "bugcheck_code": 0xEF,
        "parameters": [1, 0, 0, 0],
        "faulting_process": {"image": "csrss.exe", "pid": 5, "session": 1, "signal": 9},
    }
    buf = io.StringIO()
    narrow = Console(file=buf, width=60, soft_wrap=True, color_system=None)
    narrow.print(
        render_stop(
            record, "/a/very/long/data/root/that/does/not/fit/C/Windows/Minidump/Mini120226-01.json"
        ),
        soft_wrap=False,
    )
    lines = buf.getvalue().splitlines()
    assert all(len(line) <= 60 for line in lines)
    words = " ".join(line.strip("│ ") for line in lines).split()
    for word in _ADVICE.split():
        assert word in words, f"{word!r} was cut"


def test_the_console_counts_the_services_the_scm_started() -> None:
    """``scm.auto_start_complete`` carries the SCM's counts: running / attempted."""
    ev = {"ts": "2026-12-02T06:30:01.000000Z", "pid": 7, "image": "services.exe", "level": "info"}
    done = {**ev, "event": "scm.auto_start_complete", "services": 9, "running": 8}
    assert [x.plain for x in console.console_lines(done, sos=False, verbose=False)] == [
        "Services started 8/9"
    ]
    older = {**ev, "event": "scm.auto_start_complete", "services": 9}  # a log without the count
    assert console.console_lines(older, sos=False, verbose=False)[0].plain == "Services started ?/9"


def test_a_hard_error_box_is_one_console_line() -> None:
    """UserServerHardError's box (csr.hard_error_box) on the boot console: its session,
    caption and text on one line, whatever line breaks the text has."""
    box = {
        "ts": "2026-12-02T06:30:02.000000Z",
        "pid": 9,
        "image": "csrss.exe",
        "session": 1,
        "level": "warning",
        "event": "csr.hard_error_box",
        "caption": "Windows - Fatal System Error",
        "text": "The x system process terminated unexpectedly.\nThe system has been shut down.",
        "popup": "The x system process terminated unexpectedly. The system has been shut down.",
    }
    (line,) = console.console_lines(box, sos=False, verbose=False)
    assert line.plain == (
        "[session 1] Windows - Fatal System Error: The x system process terminated "
        "unexpectedly. The system has been shut down."
    )
