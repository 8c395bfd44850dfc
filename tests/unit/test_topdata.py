"""ntctl/topdata.py without a machine: the tree, the filter, highlights, kill predictions."""

from __future__ import annotations

from ntctl import topdata
from ntctl.topdata import Row


def row(pid: int, image: str, parent: int, t: str, critical: bool = False, **kw) -> Row:
    return Row(
        pid, image, parent, kw.pop("session", None), "NT AUTHORITY\\SYSTEM", critical,
        kw.pop("state", "running"), kw.pop("command_line", image), f"2026-12-02T06:00:{t}Z", None,
        **kw,
    )  # fmt: skip


ROWS = [
    row(4, "System", 0, "00"),
    row(10, "smss.exe", 4, "01", critical=True),
    row(20, "csrss.exe", 11, "02", critical=True, session=0),  # NT parent (an smss copy) gone
    row(30, "winlogon.exe", 12, "03", critical=True, session=1),
    row(40, "LogonUI.exe", 30, "04", session=1, command_line="LogonUI.exe /flags:0x0"),
]


def test_tree_order_puts_children_under_parents_and_orphans_at_the_top() -> None:
    order = [(r.image, depth) for r, depth in topdata.tree_order(ROWS)]
    assert order == [
        ("System", 0),
        ("smss.exe", 1),
        ("csrss.exe", 0),
        ("winlogon.exe", 0),
        ("LogonUI.exe", 1),
    ]


def test_filter_keeps_the_ancestors_of_what_matches() -> None:
    ordered = topdata.tree_order(ROWS)
    assert [r.image for r, _ in topdata.filter_tree(ordered, "logonui")] == [
        "winlogon.exe",
        "LogonUI.exe",
    ]
    assert [r.image for r, _ in topdata.filter_tree(ordered, "flags:0x0")] == [
        "winlogon.exe",
        "LogonUI.exe",
    ]
    assert [r.image for r, _ in topdata.filter_tree(ordered, "10")] == ["System", "smss.exe"]
    assert topdata.filter_tree(ordered, "") == ordered


def test_new_rows_are_green_and_exited_rows_red_for_a_while() -> None:
    r = row(50, "userinit.exe", 30, "05", first_seen=100.0)
    assert topdata.highlight(r, 101.0) == "new"
    assert topdata.highlight(r, 100.0 + topdata.HIGHLIGHT_S) == ""
    r.gone_at = 110.0
    assert topdata.highlight(r, 111.0) == "gone"


def test_kill_says_which_bugcheck_a_kill_raises() -> None:
    code, text = topdata.kill_consequence(ROWS[2], "win10")
    assert code == 0xEF and "0x000000EF CRITICAL_PROCESS_DIED" in text
    code, text = topdata.kill_consequence(ROWS[2], "win7")
    assert code == 0xF4 and "CRITICAL_OBJECT_TERMINATION" in text
    not_yet = row(60, "winlogon.exe", 12, "06", session=1)
    code, text = topdata.kill_consequence(not_yet, "win10")
    assert code == 0xC000021A and "smss watches it" in text
    code, text = topdata.kill_consequence(ROWS[4], "win10")
    assert code is None and "keeps running" in text
