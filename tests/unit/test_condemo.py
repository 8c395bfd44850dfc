"""condemo.exe's prompt and arguments, and ntctl console's view of a scrolling screen."""

from __future__ import annotations

from ntctl.conattach import new_lines
from processes.condemo.condemo import DEFAULT_TICK_S, DEFAULT_TICKS, answer, parse_args


def test_the_prompt_answers_like_cmd():
    assert answer("echo hello  world") == ("hello  world\n", None)
    assert answer("echo") == ("ECHO is on.\n", None)
    assert answer("TIME")[0].startswith("The current time is: ")
    assert answer("exit") == ("", 0) and answer("exit 7") == ("", 7)
    assert answer("exit x") == ("", 0)
    assert answer("") == ("", None)
    text, code = answer("format c:")
    assert code is None and text.startswith("'format' is not recognized as an internal")


def test_arguments_are_bounded_and_bad_ones_ignored():
    assert parse_args("C:\\Windows\\System32\\condemo.exe") == (DEFAULT_TICK_S, DEFAULT_TICKS)
    assert parse_args("condemo.exe /tick 0.5 /ticks 3") == (0.5, 3)
    assert parse_args("condemo.exe /tick 0 /ticks -4") == (0.1, 0)
    assert parse_args("condemo.exe /tick soon /ticks 1e9") == (DEFAULT_TICK_S, DEFAULT_TICKS)


def test_follow_shows_only_rows_it_did_not_show_even_after_a_scroll():
    assert new_lines([], ["a", "b"]) == ["a", "b"]
    assert new_lines(["a", "b"], ["a", "b", "c"]) == ["c"]
    assert new_lines(["a", "b", "c"], ["b", "c", "d", "e"]) == ["d", "e"]  # "a" scrolled away
    assert new_lines(["a", "b"], ["a", "b"]) == []
    assert new_lines(["a"], ["x", "y"]) == ["x", "y"]  # nothing in common: all new
