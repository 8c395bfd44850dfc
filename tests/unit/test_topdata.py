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


def test_without_the_scm_port_the_services_are_empty_not_an_error() -> None:
    """Before services.exe serves \\RPC Control\\ntsvcs (or on a machine without it)."""
    from nt.status import NtStatus
    from ports.client import PortError

    class NoScm:
        calls = 0

        def connect_port(self, name: str, info: dict | None = None) -> None:
            self.calls += 1
            raise PortError(NtStatus.STATUS_OBJECT_NAME_NOT_FOUND, f"open port {name}")

    machine = NoScm()
    scm = topdata.ScmPoller(machine)  # type: ignore[arg-type]
    assert scm.poll(100.0) == {} and scm.by_pid() == {}
    assert scm.poll(100.5) == {} and machine.calls == 1  # at most once every SCM_EVERY_S
    assert scm.poll(100.0 + topdata.SCM_EVERY_S) == {} and machine.calls == 2


def test_hosts_hold_the_services_the_scm_says_run_in_them() -> None:
    scm = topdata.ScmPoller(None)  # type: ignore[arg-type]
    S = topdata.ServiceRow
    scm.services = {
        "RpcSs": S("RpcSs", "Remote Procedure Call (RPC)", 4, 70, 2),
        "EventLog": S("EventLog", "Windows Event Log", 4, 71, 2),
        "Dhcp": S("Dhcp", "DHCP Client", 2, 71, 2),  # START_PENDING in the same host
        "W32Time": S("W32Time", "Windows Time", 1, 0, 3),  # STOPPED: no pid
    }
    assert scm.by_pid() == {70: ["RpcSs"], 71: ["Dhcp", "EventLog"]}
    assert scm.services["W32Time"].start_name == "DEMAND_START"
    assert scm.services["Dhcp"].state_name == "START_PENDING"
