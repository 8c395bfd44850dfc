"""ntctl chaos without a machine: the draw, the fault table (and the README made from
it), the oracle's reading of records, the report's merge, and the CLI's refusals."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest

from nt import faulttable as ft
from nt.bugcodes import BugCode
from ntctl import chaosoracle as oracle
from ntctl import chaosplan as plan
from ntctl import chaosreport as rep

REPO = Path(__file__).resolve().parents[2]
ALL = plan.VICTIMS
PHASES = plan.PHASES
# tests/cluster/test_chaos.py's logon campaign
LOGON_SEED, LOGON_VICTIMS = 2659, "winlogon,lsass,logonui,userinit,explorer"
LOGON_DRAWS = [
    ("logonui", 198.01, plan.TERMINATE),
    ("lsass", 35.19, plan.SIGKILL),
    ("logonui", 0.13, plan.SIGKILL),
    ("userinit", 0.22, plan.SIGKILL),
]


# -- the draw --------------------------------------------------------------------------
def test_a_trial_is_a_pure_function_of_seed_and_index() -> None:
    forward = [plan.draw(7, i, ALL, PHASES) for i in range(50)]
    backward = [plan.draw(7, i, ALL, PHASES) for i in reversed(range(50))][::-1]
    assert forward == backward
    assert plan.draw(7, 41, ALL, PHASES) == forward[41]
    assert plan.draw(8, 41, ALL, PHASES) != forward[41]
    assert len({(d.victim, d.phase, d.moment_ms, d.method) for d in forward}) == 50


def test_the_draw_is_pinned_so_reports_of_other_versions_merge() -> None:
    """The algorithm is part of the report format (ntmodel-chaos/1): changing it
    changes every trial of every campaign, so it is pinned here."""
    d = plan.draw(7, 0, ALL, PHASES)
    assert (d.victim, d.phase, d.moment_ms, d.method, d.status) == (
        "autochk",
        "boot",
        19.44,  # System at 16.32 before the logon phase and its victims (logonui, ...)
        "NtTerminateProcess",
        1,
    )
    # A campaign that names its victims and phases keeps its draws when the table grows
    # (these are the draws of tests/cluster/test_chaos.py, from before the shutdown phase).
    named = plan.select_victims("System,winlogon,csrss")
    draws = [plan.draw(12, i, named, ("boot", "idle")) for i in range(4)]
    assert [(d.victim, d.phase, d.moment_ms) for d in draws] == [
        ("System", "idle", 47.32),
        ("winlogon", "idle", 8.08),
        ("winlogon", "boot", 0.38),
        ("csrss@1", "boot", 42.46),
    ]


def test_the_draw_stays_inside_the_campaign_choices() -> None:
    victims = plan.select_victims("csrss,autochk")
    draws = [plan.draw(3, i, victims, PHASES) for i in range(200)]
    assert {d.victim for d in draws} == {"csrss@0", "csrss@1", "autochk"}
    assert all(d.phase == "boot" for d in draws if d.victim == "autochk")  # boot only
    assert {d.phase for d in draws} == {"boot", "idle", "logon", "shutdown"}
    assert {d.method for d in draws} == {plan.SIGKILL, plan.TERMINATE}
    for d in draws:
        v = plan.BY_NAME[d.victim]
        tops = {
            "boot": v.boot_ms,
            "idle": plan.IDLE_MS,
            "logon": v.logon_ms or plan.LOGON_MS,
            "shutdown": plan.SHUTDOWN_MS,
        }
        top = tops[d.phase]
        assert 0 <= d.moment_ms <= top
        assert (d.status is None) == (d.method == plan.SIGKILL)
    system = [plan.draw(3, i, plan.select_victims("System"), PHASES) for i in range(20)]
    assert {d.method for d in system} == {plan.SIGKILL}  # NtTerminateProcess(System) fails


def test_victim_names() -> None:
    assert [v.name for v in plan.select_victims("csrss.exe")] == ["csrss@0", "csrss@1"]
    assert [v.name for v in plan.select_victims("SMSS")] == ["smss"]
    assert [v.name for v in plan.select_victims("winlogon,smss@1")] == ["smss@1", "winlogon"]
    assert [v.name for v in plan.select_victims("lsass,svchost.exe")] == ["svchost", "lsass"]
    assert [v.name for v in plan.select_victims("explorer.exe,LogonUI")] == ["logonui", "explorer"]
    with pytest.raises(plan.PlanError, match="no victim named 'notepad'.*csrss@0"):
        plan.select_victims("csrss,notepad")


def test_phases_are_chosen_by_name_in_their_order() -> None:
    assert plan.select_phases("idle,boot") == ("boot", "idle")
    assert plan.select_phases("shutdown,boot") == ("boot", "shutdown")
    assert plan.select_phases("shutdown,logon") == ("logon", "shutdown")
    with pytest.raises(plan.PlanError, match="no phase 'lunch'"):
        plan.select_phases("lunch")


@pytest.mark.parametrize(
    ("seed", "trials", "message"),
    [(-1, 5, "out of range"), (2**32, 5, "out of range"), (0, 0, "at least one trial")],
)
def test_bad_campaigns(seed: int, trials: int, message: str) -> None:
    with pytest.raises(plan.PlanError, match=message):
        plan.check_campaign(ALL, PHASES, seed, trials)
    plan.check_campaign(ALL, PHASES, plan.SEED_MAX, 1)


def test_transient_victims_have_no_idle_phase() -> None:
    with pytest.raises(plan.PlanError, match="only during boot"):
        plan.check_campaign(plan.select_victims("autochk"), ("idle",), 1, 1)


# -- the table and the README ------------------------------------------------------------
def test_the_readme_table_is_generated_from_the_fault_table() -> None:
    readme = (REPO / "README.md").read_text()
    assert f"{ft.BEGIN}\n{ft.readme_table()}\n{ft.END}" in readme, (
        "README's fault table is stale: run python -m nt.faulttable --write"
    )


def test_every_victim_has_a_row_for_every_state_it_can_die_in() -> None:
    for v in ALL:
        keys = ft.state_keys(v.role)
        for values in itertools.product((False, True), repeat=len(keys)):
            state = dict(zip(keys, values, strict=True))
            if v.role == ft.MASTER and not state["critical"] and not state["in_window"]:
                continue  # smss makes itself critical first thing: it cannot be reached
            assert ft.predict(v.role, state), (v.name, state)


@pytest.mark.parametrize(
    ("role", "state", "expected"),
    [
        (ft.SUBSYSTEM, {"critical": False, "connected": True}, [(0xC000021A, "Windows SubSystem")]),
        (
            ft.SUBSYSTEM,
            {"critical": False, "connected": False},
            [(0xC000021A, "Session Manager Initialization")],
        ),
        (ft.SUBSYSTEM, {"critical": True, "connected": True}, [(0xEF, "")]),
        (ft.MASTER, {"critical": True, "in_window": True}, [(0x71, "")]),
        (ft.MASTER, {"critical": True, "in_window": True, "terminated": True}, [(0xEF, "")]),
        (ft.MASTER, {"critical": True, "in_window": False}, [(0xEF, "")]),
        (ft.INITIAL_COMMAND, {"resumed": False}, [(0xC000021A, "Windows Logon Process")]),
        (ft.INSTANCE, {"session_ready": True}, [(None, "")]),
        (ft.BOOT_EXECUTE, {}, [(None, "")]),
        (ft.KERNEL, {}, [(None, "")]),
        # the records cannot order the connection and the death: both are accepted
        (
            ft.SUBSYSTEM,
            {"critical": False, "connected": None},
            [(0xC000021A, "Session Manager Initialization"), (0xC000021A, "Windows SubSystem")],
        ),
    ],
)
def test_predictions(role: str, state: dict, expected: list) -> None:
    got = [(o.code, o.p1_text) for o in ft.predict(role, state)]
    assert got == expected


def test_the_profile_decides_the_critical_code() -> None:
    (o,) = ft.predict(ft.SUBSYSTEM, {"critical": True}, "win7")
    assert o.code == BugCode.CRITICAL_OBJECT_TERMINATION
    (o,) = ft.predict(ft.KERNEL, {})
    assert o.machine_stops and o.next_boot_events == (6008, 41)


# -- the oracle reading records ----------------------------------------------------------
def _ev(ts: float, event: str, image: str = "System", **fields) -> dict:
    from datetime import UTC, datetime

    stamp = datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
    return {"ts": stamp, "event": event, "image": image, **fields}


def _csrss_records(connected_at: float) -> oracle.Records:
    return oracle.Records(
        [
            _ev(100.0, "proc.create", child_pid=42, child_image="csrss.exe", child_session=1),
            _ev(100.001, "proc.resume", child_pid=42),
            _ev(connected_at, "smss.subsystem_connected", "smss.exe", subsystem_pid=42),
            _ev(100.5, "proc.exit", child_pid=42, status="0x00000001", signal=9, critical=False),
        ]
    )


@pytest.mark.parametrize(
    ("connected_at", "connected"),
    [(100.2, True), (100.49, None), (100.9, False)],
    ids=["before-the-kill", "inside-the-bracket", "after-the-exit"],
)
def test_state_is_read_from_the_records_and_bracketed_by_the_kill(
    connected_at: float, connected: bool | None
) -> None:
    records = _csrss_records(connected_at)
    victim = plan.BY_NAME["csrss@1"]
    death = oracle.death_of(records, victim, 42)
    assert (death.status, death.signal, death.critical) == (1, 9, False)
    state = oracle.victim_state(records, victim, death, t_kill=100.48, method=plan.SIGKILL)
    assert state == {
        "terminated": False,
        "critical": False,
        "connected": connected,
        "shutdown": False,
        "stopping": False,
    }


def _dump(code: int, pid: int, p1_text: str = "", params=(0, 1, 0, 0), by="smss.exe") -> dict:
    return {
        "bugcheck_code": code,
        "parameters": list(params),
        "decoded": {"p1_text": p1_text} if p1_text else {},
        "faulting_process": {"pid": pid},
        "detected_by": {"image": by},
    }


def test_judge_agrees_and_names_each_difference() -> None:
    death = oracle.Death(42, 100.0, 100.5, 1, 9, False)
    state = {"critical": False, "connected": True}
    good = oracle.Observed(1, [_dump(0xC000021A, 42, "Windows SubSystem")], stopped_by_itself=True)
    _, outcome, anomalies = oracle.judge(ft.SUBSYSTEM, state, good, death, "win10")
    assert outcome is not None and anomalies == []
    bad = oracle.Observed(
        2,
        [_dump(0xC000021A, 7, "Session Manager Initialization", (0, 5, 0, 0))],
        stopped_by_itself=True,
    )
    _, outcome, anomalies = oracle.judge(ft.SUBSYSTEM, state, bad, death, "win10")
    assert outcome is None
    assert any("2 bugcheck events" in a for a in anomalies)
    assert any("P1 'Session Manager Initialization'" in a for a in anomalies)
    assert any("blames pid 7" in a for a in anomalies)
    assert any("P2 = 0x5" in a for a in anomalies)
    quiet = oracle.Observed(0, [], stopped_by_itself=False)
    _, _, anomalies = oracle.judge(ft.SUBSYSTEM, state, quiet, death, "win10")
    assert "0 dumps (expected exactly one)" in anomalies


def _logon_records(submit_at: float, end: str, step: str, end_at: float, status: str):
    """A logon as the boot's logs show it: LogonUI (pid 50) passes the credentials on at
    ``submit_at``, lsass (pid 60) dies at 100.2, winlogon answers at ``end_at``."""
    return oracle.Records(
        [
            _ev(90.0, "proc.create", child_pid=60, child_image="lsass.exe", child_session=0),
            _ev(100.0, "proc.create", child_pid=50, child_image="logonui.exe", child_session=1),
            _ev(submit_at, "logonui.submit", "logonui.exe", pid=50),
            _ev(100.2, "proc.exit", child_pid=60, status="0x00000001", signal=9, critical=False),
            _ev(end_at, end, "winlogon.exe", step=step, status=status),
            _ev(100.31, "wininit.critical_process_died", "wininit.exe"),
        ]
    )


GONE, DENIED = "0xC0000037", "0xC0000022"  # STATUS_PORT_DISCONNECTED, STATUS_ACCESS_DENIED


@pytest.mark.parametrize(
    ("submit_at", "end", "step", "end_at", "status", "in_flight"),
    [
        (100.05, "logon.failure", "lsa_logon", 100.3, GONE, True),
        (100.195, "logon.failure", "lsa_logon", 100.3, GONE, None),  # submit in the bracket
        (100.25, "logon.failure", "lsa_logon", 100.3, GONE, False),  # lsass gone before
        (100.05, "logon.failure", "lsa_connect", 100.3, GONE, False),  # never reached the LSA
        (100.05, "logon.success", "", 100.3, "", True),  # answered after the exit
        (100.05, "logon.success", "", 100.0, "", False),  # answered before the kill
        # winlogon's answer inside the bracket: its status says which side it ended on
        (100.05, "logon.failure", "lsa_logon", 100.21, GONE, True),
        (100.05, "logon.failure", "lsa_logon", 100.21, DENIED, False),
    ],
)
def test_lsass_in_logonuser_is_read_from_logonui_and_winlogon_records(
    submit_at: float, end: str, step: str, end_at: float, status: str, in_flight: bool | None
) -> None:
    records = _logon_records(submit_at, end, step, end_at, status)
    lsass = plan.BY_NAME["lsass"]
    death = oracle.death_of(records, lsass, 60)
    state = oracle.victim_state(records, lsass, death, t_kill=100.19, method=plan.SIGKILL)
    assert state["lsa_logon"] is in_flight
    follows = oracle.expected_follows(records, lsass, 60, 100.19, plan.SIGKILL, "win10")
    assert follows and all(f == {"wininit.critical_process_died"} for f in follows)


def test_what_follows_a_logon_death_is_judged() -> None:
    death = oracle.Death(60, 90.0, 100.2, 1, 9, False)
    state = {"critical": False, "lsa_logon": True}
    port_gone = "ntctl: The Local Security Authority cannot be contacted (0xC0000037 STATUS_PORT_DISCONNECTED)"
    good = oracle.Observed(0, [], after={"wininit.critical_process_died"}, logon_exit=1)
    good.logon_text = port_gone
    _, outcome, anomalies = oracle.judge(ft.LSA, state, good, death, "win10")
    assert outcome is not None and outcome.logon == "fails" and anomalies == []
    silent = oracle.Observed(0, [], logon_exit=0)
    _, _, anomalies = oracle.judge(ft.LSA, state, silent, death, "win10")
    assert anomalies == [
        "no wininit.critical_process_died was logged after the kill",
        "ntctl logon succeeded",
    ]
    # LogonUI before the submit: the SAS must work again; after it, the logon goes on
    (early,) = ft.predict(ft.LOGON_UI, {"resumed": False})
    assert early.follows == ("winlogon.logonui_failed",)
    (starting,) = ft.predict(ft.LOGON_UI, {"resumed": True, "ready": False})
    assert starting.follows == ("winlogon.logonui_exit",)  # no restart loop
    (notice,) = ft.predict(ft.LOGON_UI, {"resumed": True, "ready": True, "submitted": False})
    assert notice.follows == ("winlogon.logonui_restart",) and not notice.machine_stops
    (after,) = ft.predict(ft.LOGON_UI, {"resumed": True, "ready": True, "submitted": True})
    assert after.logon == "" and not after.machine_stops
    (shell,) = ft.predict(ft.SHELL, {})
    assert shell.follows == ("winlogon.shell_restart",)
    (suspended,) = ft.predict(ft.USERINIT, {"resumed": False})
    assert suspended.logon == "fails" and "logon.ready" in suspended.follows


def test_a_named_logon_campaign_draws_the_same_trials() -> None:
    """The draws of tests/cluster/test_chaos.py's logon campaign."""
    named = plan.select_victims(LOGON_VICTIMS)
    draws = [plan.draw(LOGON_SEED, i, named, ("idle", "logon")) for i in range(4)]
    assert [(d.victim, d.moment_ms, d.method) for d in draws] == LOGON_DRAWS


def test_the_next_boot_must_log_what_the_table_says() -> None:
    (o,) = ft.predict(ft.KERNEL, {})
    events = [{"event": "event.report", "event_id": 6008}]
    assert oracle.next_boot_anomalies(o, events) == ["the next boot did not log event 41"]


# -- reports -----------------------------------------------------------------------------
def _report(indices: range, seed: int = 7) -> dict:
    r = rep.new_report(seed, [v.name for v in ALL], PHASES, "win10")
    for i in indices:
        d = plan.draw(seed, i, ALL, PHASES)
        r["trials"].append(
            {"index": i, "draw": d.public(), "verdict": "ok", "outcome": "0xEF", "anomalies": []}
        )
    return r


def test_split_campaigns_merge_into_the_whole(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    rep.write(_report(range(0, 6)), a)
    rep.write(_report(range(4, 10)), b)  # overlapping trials are the same trials
    merged = rep.merge([rep.read(a), rep.read(b)])
    whole = _report(range(0, 10))
    assert merged["trials"] == whole["trials"]
    assert rep.summary(merged)["trials"] == 10
    with pytest.raises(rep.ReportError, match="different campaigns"):
        rep.merge([_report(range(2)), _report(range(2), seed=8)])
    forged = _report(range(1))
    forged["trials"][0]["draw"]["victim"] = "smss"
    with pytest.raises(rep.ReportError, match="drawn differently"):
        rep.merge([_report(range(1)), forged])


def test_the_matrix_and_the_repro_command() -> None:
    r = _report(range(8))
    r["trials"][3].update(verdict="anomaly", anomalies=["x"])
    cells = rep.matrix(r["trials"])
    assert sum(c["0xEF"] for c in cells.values()) == 8
    assert sum(c["!anomaly"] for c in cells.values()) == 1
    assert rep.repro(r, 41) == "ntctl chaos --seed 7 --trial 41"
    r["filtered"]["victims"] = True
    r["victims"] = ["csrss@0", "csrss@1"]
    assert rep.repro(r, 3) == "ntctl chaos --seed 7 --trial 3 --victims csrss@0,csrss@1"


# -- the CLI's refusals (no machine is booted) --------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--victims", "csrss,notepad"], "no victim named 'notepad'"),
        (["--trials", "0"], "at least one trial"),
        (["--seed", "4294967296"], "out of range"),
        (["--seed", "-1"], "out of range"),
        (["--phase", "lunch"], "no phase 'lunch'"),
        (["--victims", "logonui", "--phase", "boot"], "only during a logon"),
        (["--jobs", "0"], "--jobs 0"),
        (["--report", "/nonexistent/r.json"], "no directory /nonexistent"),
    ],
)
def test_bad_input_is_a_usage_error(args: list[str], message: str, tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "ntctl", "chaos", *args, "--scratch", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert not list(tmp_path.iterdir()), "nothing may be booted for a bad command line"


def test_merge_through_the_cli(tmp_path: Path) -> None:
    a, b, out = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "all.json"
    rep.write(_report(range(0, 3)), a)
    rep.write(_report(range(3, 5)), b)
    r = subprocess.run(
        [sys.executable, "-m", "ntctl", "chaos", "--merge", str(a), "--merge", str(b)]
        + ["--report", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    assert [t["index"] for t in rep.read(out)["trials"]] == [0, 1, 2, 3, 4]
    assert "5 trials: 5 as the table predicts" in r.stdout
    b.write_text("{}")
    r = subprocess.run(
        [sys.executable, "-m", "ntctl", "chaos", "--merge", str(a), "--merge", str(b)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2 and "not an ntctl chaos report" in r.stderr
