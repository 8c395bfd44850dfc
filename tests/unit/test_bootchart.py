"""ntctl/bootchart.py and bootplot.py: units, readiness, blame, critical chain, SVG rows."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from ntctl import bootchart, bootplot

T0 = datetime(2026, 12, 2, 6, 30, 0, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"


def ev(ms: float, pid: int, image: str, event: str, session: int | None = None, **fields) -> dict:
    ts = (T0 + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    base = {"ts": ts, "boot_id": "b1", "pid": pid, "image": image, "session": session}
    return {**base, "level": fields.pop("level", "info"), "event": event, **fields}


def create(ms: float, child: int, image: str, session: int | None, parent: int) -> dict:
    return ev(
        ms, 1, "System", "proc.create", child_pid=child, child_image=image, child_session=session,
        parent_pid=parent,
    )  # fmt: skip


def exited(ms: float, child: int, image: str, status: str = "0x00000000") -> dict:
    name = "STATUS_SUCCESS" if status == "0x00000000" else "STATUS_ACCESS_VIOLATION"
    return ev(
        ms, 1, "System", "proc.exit", child_pid=child, child_image=image, status=status,
        status_name=name,
    )  # fmt: skip


def boot_events(crash_at: float | None = None) -> list[dict]:
    """A boot like the real one (times in ms since boot.start)."""
    evs = [
        ev(0, 1, "System", "boot.start", profile="win10", options=[], sos=False),
        create(160, 10, "smss.exe", None, 1),
        ev(166, 1, "System", "proc.resume", child_pid=10, child_image="smss.exe"),
        create(200, 11, "autochk.exe", 0, 10),
        ev(220, 11, "autochk.exe", "proc.exit_self", 0),
        exited(225, 11, "autochk.exe"),
        ev(236, 10, "smss.exe", "smss.init_done"),
        create(240, 12, "smss.exe", 0, 10),
        create(245, 13, "smss.exe", 1, 10),
        create(270, 20, "csrss.exe", 0, 12),
        create(287, 21, "csrss.exe", 1, 13),
        ev(320, 20, "csrss.exe", "csr.sm_connected", 0),
        create(324, 30, "wininit.exe", 0, 12),
        ev(326, 20, "csrss.exe", "csr.ready", 0),
        ev(330, 12, "smss.exe", "smss.session_ready", 0),
        exited(333, 12, "smss.exe"),
        ev(340, 30, "wininit.exe", "wininit.ready", 0),
        ev(346, 21, "csrss.exe", "csr.sm_connected", 1),
        create(350, 31, "winlogon.exe", 1, 13),
        ev(352, 21, "csrss.exe", "csr.ready", 1),
        ev(355, 13, "smss.exe", "smss.session_ready", 1),
        ev(369, 31, "winlogon.exe", "logon.ready", 1),
    ]
    if crash_at is not None:
        evs = [e for e in evs if e["ts"] < ev(crash_at, 0, "", "")["ts"]]
        evs.append(ev(crash_at, 1, "System", "bugcheck", level="critical", code="0xC000021A"))
    return evs


def test_units_start_at_creation_and_are_ready_at_their_images_event() -> None:
    chart = bootchart.build(boot_events())
    units = {u.name: u for u in chart.units}
    assert set(units) == {
        "System", "smss.exe", "autochk.exe", "smss.exe@0", "smss.exe@1", "csrss.exe@0",
        "csrss.exe@1", "wininit.exe", "winlogon.exe",
    }  # fmt: skip
    assert units["System"].ready == pytest.approx(0.166)
    assert units["csrss.exe@1"].start == pytest.approx(0.287)
    assert units["csrss.exe@1"].ready_event == "csr.ready"
    assert units["winlogon.exe"].took == pytest.approx(0.019)
    assert units["autochk.exe"].end == pytest.approx(0.225)


def test_blame_is_slowest_first_and_has_a_json_twin() -> None:
    chart = bootchart.build(boot_events())
    order = [u.name for u in bootchart.blame_units(chart)]
    assert order[0] == "System"
    took = [u.took for u in bootchart.blame_units(chart)]
    assert took == sorted(took, reverse=True)
    data = bootchart.blame_json(chart)
    assert [u["unit"] for u in data["units"]] == order
    lines = [line.plain for line in bootchart.render_blame(chart)]
    assert lines[0].split() == ["166ms", "System"]


def test_critical_chain_follows_the_waits_and_the_links_add_up() -> None:
    chart = bootchart.build(boot_events())
    chain = bootchart.critical_chain(chart)  # default: the unit that logged logon.ready
    names = [link.unit.name for link in chain]
    assert names == ["System", "smss.exe", "smss.exe@1", "csrss.exe@1", "winlogon.exe"]
    assert chain[-1].at == pytest.approx(0.369)
    assert sum(link.added for link in chain) == pytest.approx(0.369)
    hows = [link.how for link in chain]
    assert hows == ["created smss.exe", "ready", "created csrss.exe@1", "csr.sm_connected", "ready"]
    text = [line.plain for line in bootchart.render_chain(chart, chain)]
    assert text[3].startswith("winlogon.exe @369ms +23ms")


def test_critical_chain_takes_csrss_connect_from_smss_when_csrss_logs_it_late() -> None:
    """csrss writes csr.sm_connected after SmConnectToSm returns, which can be after smss
    has started winlogon; smss's own line (written before it goes on) orders the wait."""
    evs = [e for e in boot_events() if not (e["event"] == "csr.sm_connected" and e["pid"] == 21)]
    at = next(i for i, e in enumerate(evs) if e["event"] == "proc.create" and e["child_pid"] == 31)
    evs.insert(at, ev(348, 13, "smss.exe", "smss.subsystem_connected", 1, subsystem_pid=21))
    evs.insert(at + 2, ev(351, 21, "csrss.exe", "csr.sm_connected", 1))  # after winlogon's start
    chain = bootchart.critical_chain(bootchart.build(evs))
    names = [link.unit.name for link in chain]
    assert names == ["System", "smss.exe", "smss.exe@1", "csrss.exe@1", "winlogon.exe"]
    assert chain[3].at == pytest.approx(0.348) and chain[4].how == "ready"


def test_critical_chain_names_units_by_image_session_or_pid() -> None:
    chart = bootchart.build(boot_events())
    assert bootchart.critical_chain(chart, "wininit")[-1].unit.name == "wininit.exe"
    assert bootchart.critical_chain(chart, "CSRSS.EXE@0")[-1].unit.pid == 20
    assert bootchart.critical_chain(chart, "21")[-1].unit.name == "csrss.exe@1"
    with pytest.raises(LookupError, match="names 2 units"):
        bootchart.critical_chain(chart, "csrss")
    with pytest.raises(LookupError, match="no unit 'explorer'"):
        bootchart.critical_chain(chart, "explorer")


def test_a_boot_that_crashed_half_way_shows_what_happened_up_to_the_crash() -> None:
    chart = bootchart.build(boot_events(crash_at=348))
    units = {u.name: u for u in chart.units}
    assert "winlogon.exe" not in units  # never created
    assert units["csrss.exe@1"].ready is None and units["csrss.exe@0"].ready is not None
    assert chart.end == pytest.approx(0.348)
    blame = [line.plain for line in bootchart.render_blame(chart)]
    assert any("never csrss.exe@1  (stopped by the bugcheck)" in line for line in blame)
    assert "bugcheck at 348ms: 0xC000021A" in blame[-1]
    chain = bootchart.critical_chain(chart, "csrss.exe@1")
    assert chain[-1].how == "not ready" and chain[-1].at == pytest.approx(0.348)


def test_services_and_drivers_become_units_from_their_events() -> None:
    evs = boot_events() + [
        ev(400, 40, "services.exe", "svc.state", 0, service="EventLog", state=2),
        ev(450, 40, "services.exe", "svc.state", 0, service="EventLog", state=4),
        ev(385, 1, "System", "io.driver_loaded", driver="disk", phase="boot"),
    ]
    evs.sort(key=lambda e: e["ts"])
    units = {u.name: u for u in bootchart.build(evs).units}
    assert units["EventLog"].kind == "service" and units["EventLog"].took == pytest.approx(0.05)
    assert units["disk"].kind == "driver" and units["disk"].ready == pytest.approx(0.385)


def rows(svg: str) -> dict[str, dict[str, tuple[float, float]]]:
    """{unit: {bar class: (x, width)}} from the SVG."""
    root = ET.fromstring(svg)
    out = {}
    for g in root.iter(f"{SVG}g"):
        if g.get("class") == "unit":
            out[g.get("data-unit")] = {
                r.get("class"): (float(r.get("x")), float(r.get("width")))
                for r in g.iter(f"{SVG}rect")
            }
    return out


def test_plot_has_one_row_per_unit_with_start_to_ready_spans() -> None:
    chart = bootchart.build(boot_events())
    bars = rows(bootplot.svg(chart))
    assert len(bars) == len(chart.units)
    x, width = bars["winlogon.exe"]["activating"]
    assert x == pytest.approx(bootplot.LEFT + 350) and width == pytest.approx(19)
    assert "active" in bars["autochk.exe"]  # ready, then ran until its exit
    order = list(bars)
    assert order.index("System") < order.index("smss.exe") < order.index("winlogon.exe")


def test_plot_of_a_crashed_boot_marks_units_never_ready_and_the_bugcheck() -> None:
    svg = bootplot.svg(bootchart.build(boot_events(crash_at=348)))
    bars = rows(svg)
    x, width = bars["csrss.exe@1"]["never"]
    assert x + width == pytest.approx(bootplot.LEFT + 348, abs=0.2)
    root = ET.fromstring(svg)
    assert [ln for ln in root.iter(f"{SVG}line") if ln.get("class") == "bugcheck"]


def test_an_empty_boot_gives_an_empty_chart() -> None:
    chart = bootchart.build([])
    assert chart.units == [] and bootchart.render_blame(chart) == []
    with pytest.raises(LookupError):
        bootchart.critical_chain(chart)
