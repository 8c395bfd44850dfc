"""nt/svcorder.py: the start order of services and drivers (nt-spec §4.4–4.7)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nt.svcorder import (
    ERROR_CIRCULAR_DEPENDENCY,
    ERROR_SERVICE_DEPENDENCY_DELETED,
    ERROR_SERVICE_DEPENDENCY_FAIL,
    Order,
    ServiceEntry,
    compute_order,
    entry_from_values,
    parse_tag_vector,
    tag_vector_bytes,
)

E = ServiceEntry
GROUPS = ["Event Log", "COM Infrastructure", "MS_WindowsLocalValidation", "NetBIOSGroup"]


def order(entries: list[ServiceEntry], groups=GROUPS, tags=None, **kw) -> Order:
    return compute_order(entries, groups, tags or {}, **kw)


# -- groups and tags ---------------------------------------------------------------------
def test_groups_start_in_list_order_then_unlisted_then_ungrouped() -> None:
    o = order(
        [
            E("Zeta"),
            E("Wmi", group="WMI"),
            E("Samss", group="MS_WindowsLocalValidation"),
            E("EventLog", group="Event Log"),
            E("RpcSs", group="COM Infrastructure"),
        ]
    )
    assert o.sequence == ("EventLog", "RpcSs", "Samss", "Wmi", "Zeta")
    assert [o.reasons[n].kind for n in o.sequence] == [
        "group",
        "group",
        "group",
        "unlisted-group",
        "ungrouped",
    ]
    assert o.reasons["EventLog"].text == "group 1 of 4 (Event Log), no tag order"


def test_group_names_compare_case_insensitively() -> None:
    o = order([E("B", group="com infrastructure"), E("A", group="EVENT LOG")])
    assert o.sequence == ("A", "B")
    assert o.reasons["B"].group_index == 2


def test_tags_follow_the_group_order_list_vector_untagged_after() -> None:
    entries = [
        E("a", group="Base", tag=1),
        E("b", group="Base", tag=2),
        E("c", group="Base", tag=9),  # not in the vector
        E("d", group="Base"),  # no tag at all
        E("e", group="Base", tag=3),
    ]
    o = order(entries, ["Base"], {"base": tag_vector_bytes([3, 2, 1])})
    assert o.sequence == ("e", "b", "a", "c", "d")
    assert o.reasons["e"].text == "group 1 of 1 (Base), tag 3 (1 of 3 in GroupOrderList)"
    assert "tag 9 not in GroupOrderList" in o.reasons["c"].text


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"\x02\x00",  # shorter than the count DWORD
        tag_vector_bytes([3, 2, 1])[:-4],  # count says 3, two tags present
        None,
    ],
)
def test_short_or_missing_tag_vector_gives_no_tags(value) -> None:
    assert parse_tag_vector(value) == ()
    entries = [E("a", group="Base", tag=1), E("b", group="Base", tag=2)]
    tags = {} if value is None else {"Base": value}
    assert order(entries, ["Base"], tags).sequence == ("a", "b")


def test_tag_vector_longer_than_its_count_uses_the_count() -> None:
    assert parse_tag_vector(tag_vector_bytes([5, 6]) + b"\x07\x00\x00\x00") == (5, 6)


def test_input_order_does_not_matter_enumeration_is_case_insensitive_by_name() -> None:
    entries = [E("b"), E("A"), E("c"), E("D")]
    assert order(entries).sequence == ("A", "b", "c", "D")
    assert order(entries[::-1]).sequence == ("A", "b", "c", "D")


def test_two_entries_differing_only_in_case_are_refused() -> None:
    with pytest.raises(ValueError, match="case-insensitive"):
        order([E("Spooler"), E("spooler")])


# -- dependencies ------------------------------------------------------------------------
def test_dependency_in_a_later_group_is_pulled_forward() -> None:
    # nt-spec §4.5: ReactOS starts Browser before LanmanServer; Windows starts it first.
    o = order(
        [
            E("Browser", group="NetworkProvider", depend_on_service=("LanmanServer",)),
            E("LanmanServer"),
        ],
        ["NetworkProvider"],
    )
    assert o.sequence == ("LanmanServer", "Browser")
    r = o.reasons["LanmanServer"]
    assert r.kind == "dependency" and r.pulled_by == "Browser"
    assert r.text.startswith("pulled forward as a dependency of Browser (DependOnService)")


def test_dependencies_are_started_depth_first() -> None:
    o = order(
        [
            E("A", depend_on_service=("B", "C")),
            E("B", depend_on_service=("D",)),
            E("C"),
            E("D"),
        ]
    )
    assert o.sequence == ("D", "B", "C", "A")
    assert o.reasons["D"].pulled_by == "B"


def test_demand_start_dependency_is_started_disabled_one_fails_the_dependent() -> None:
    o = order(
        [
            E("Netlogon", depend_on_service=("LanmanWorkstation", "Disabled")),
            E("Lmhosts", depend_on_service=("LanmanWorkstation",)),
            E("LanmanWorkstation", start=3),
            E("Disabled", start=4),
        ]
    )
    assert o.sequence == ("LanmanWorkstation", "Lmhosts")
    assert "started although DEMAND_START" in o.reasons["LanmanWorkstation"].text
    assert o.errors["Netlogon"].code == ERROR_SERVICE_DEPENDENCY_FAIL
    assert o.errors["Netlogon"].dependency == "Disabled"


def test_depend_on_group_pulls_the_members_that_will_start() -> None:
    o = order(
        [
            E("RemoteAccess", depend_on_service=("RpcSs",), depend_on_group=("NetBIOSGroup",)),
            E("RpcSs", group="COM Infrastructure"),
            E("NetBT", group="NetBIOSGroup", start=3),  # demand-start member: not pulled
            E("Smb", group="NetBIOSGroup", tag=2),
            E("Nb", group="NetBIOSGroup", tag=1),
        ],
        ["NetBIOSGroup", "COM Infrastructure"],
        {"NetBIOSGroup": [1, 2]},
    )
    assert o.sequence == ("Nb", "Smb", "RpcSs", "RemoteAccess")
    assert "NetBT" not in o.reasons


def test_depend_on_group_pulled_member_names_the_group() -> None:
    o = order(
        [E("A", group="First", depend_on_group=("Later",)), E("M", group="Later")],
        ["First", "Later"],
    )
    assert o.sequence == ("M", "A")
    assert o.reasons["M"].via_group == "Later"
    assert "a member of group Later, which A depends on (DependOnGroup)" in o.reasons["M"].text


def test_depend_on_group_is_met_by_one_running_member() -> None:
    o = order(
        [E("Svc", depend_on_group=("NDIS",)), E("ndis", group="NDIS", start=0, type=1)],
        running={"NDIS"},
    )
    assert o.sequence == ("Svc",) and not o.errors


def test_depend_on_group_with_no_member_that_will_start_fails_with_1068() -> None:
    o = order([E("Svc", depend_on_group=("Tdi",)), E("tcp", group="TDI", start=3)])
    assert o.errors["Svc"].code == ERROR_SERVICE_DEPENDENCY_FAIL
    assert o.errors["Svc"].dependency == "+Tdi"


def test_running_dependency_is_met_and_never_in_the_sequence() -> None:
    o = order(
        [E("Svc", depend_on_service=("Tcpip",)), E("Tcpip", start=1, type=1)], running={"tcpip"}
    )
    assert o.sequence == ("Svc",)


# -- failures ----------------------------------------------------------------------------
def test_cycle_gets_1059_for_its_members_and_the_rest_still_start() -> None:
    o = order(
        [
            E("A", depend_on_service=("B",)),
            E("B", depend_on_service=("C",)),
            E("C", depend_on_service=("A",)),
            E("Other"),
            E("User", depend_on_service=("B",)),
        ]
    )
    assert o.sequence == ("Other",)
    for name in "ABC":
        err = o.errors[name]
        assert err.code == ERROR_CIRCULAR_DEPENDENCY and err.error == "ERROR_CIRCULAR_DEPENDENCY"
        assert set(err.cycle) == {"A", "B", "C"}
    assert o.errors["A"].detail.endswith("A -> B -> C -> A")
    assert o.errors["User"].code == ERROR_SERVICE_DEPENDENCY_FAIL


def test_cycle_through_a_group_dependency_is_a_cycle() -> None:
    o = order([E("A", group="G", depend_on_service=("B",)), E("B", depend_on_group=("G",))], ["G"])
    assert {o.errors[n].code for n in "AB"} == {ERROR_CIRCULAR_DEPENDENCY}


def test_service_depending_on_itself_is_a_cycle() -> None:
    o = order([E("Self", depend_on_service=("self",)), E("Other")])
    assert o.sequence == ("Other",)
    assert o.errors["Self"].cycle == ("Self",)
    assert o.errors["Self"].code == ERROR_CIRCULAR_DEPENDENCY


def test_plus_prefixed_dependency_is_a_group_as_in_lpdependencies() -> None:
    o = order([E("A", depend_on_service=("+Later",)), E("M", group="Later", start=3)], ["Later"])
    assert o.errors["A"].dependency == "+Later"
    o = order([E("A", depend_on_service=("+Later",)), E("M", group="Later")], ["Later"])
    assert o.sequence == ("M", "A")


def test_dependency_on_own_group_does_not_wait_for_itself() -> None:
    o = order([E("A", group="G", depend_on_group=("G",)), E("B", group="G")], ["G"])
    assert o.sequence == ("B", "A")


def test_dangling_dependency_gets_1075_for_that_service_only() -> None:
    o = order(
        [
            E("Broken", depend_on_service=("Deleted",), depend_on_group=("NoSuchGroup",)),
            E("Fine", depend_on_service=("Dep",)),
            E("Dep"),
        ]
    )
    assert o.sequence == ("Dep", "Fine")
    err = o.errors["Broken"]
    assert err.code == ERROR_SERVICE_DEPENDENCY_DELETED
    assert err.missing == ("Deleted", "+NoSuchGroup")


# -- delayed auto-start ------------------------------------------------------------------
def test_delayed_start_after_every_auto_start_service() -> None:
    o = order([E("Aaa", delayed=True), E("Zzz"), E("Log", group="Event Log")])
    assert o.sequence == ("Log", "Zzz", "Aaa")
    assert o.reasons["Aaa"].delayed and o.reasons["Aaa"].kind == "delayed"
    assert not o.reasons["Zzz"].delayed


def test_delayed_service_needed_by_an_auto_start_one_is_pulled_forward() -> None:
    o = order([E("BITS", delayed=True), E("Early", group="Event Log", depend_on_service=("bits",))])
    assert o.sequence == ("BITS", "Early")
    assert o.reasons["BITS"].pulled_by == "Early" and not o.reasons["BITS"].delayed


def test_delayed_flag_of_a_grouped_service_is_ignored() -> None:
    o = order([E("G", group="Event Log", delayed=True), E("U")])
    assert o.sequence == ("G", "U")
    assert "DelayedAutostart ignored" in o.reasons["G"].text


# -- the driver loader's mode ------------------------------------------------------------
def test_loader_orders_one_phase_and_ignores_dependencies_outside_it() -> None:
    drivers = [
        E("disk", start=0, type=1, group="SCSI Class", depend_on_service=("partmgr", "Gone")),
        E("partmgr", start=0, type=1, group="System Bus Extender"),
        E("Ntfs", start=1, type=2, group="Boot File System"),
        E("volsnap", start=0, type=1, group="Filter", depend_on_service=("Ntfs",)),
    ]
    groups = ["System Bus Extender", "SCSI Class", "Filter", "Boot File System"]
    boot = order(drivers, groups, start_types={0}, pull_dependencies=False)
    assert boot.sequence == ("partmgr", "disk", "volsnap") and not boot.errors
    system = order(drivers, groups, start_types={1}, running=boot.sequence, pull_dependencies=False)
    assert system.sequence == ("Ntfs",)


# -- registry values ---------------------------------------------------------------------
def test_entry_from_values_reads_a_services_key_case_insensitively() -> None:
    e = entry_from_values(
        "RemoteAccess",
        {
            "type": 0x20,
            "Start": 2,
            "ErrorControl": 1,
            "DependOnService": ["RpcSS"],
            "DependOnGroup": ["NetBIOSGroup"],
            "Group": "",
            "DelayedAutostart": 1,
            "Tag": 4,
        },
    )
    assert e == ServiceEntry(
        "RemoteAccess", 2, 0x20, "", 4, ("RpcSS",), ("NetBIOSGroup",), delayed=True
    )


@pytest.mark.parametrize("missing", ["Type", "Start", "ErrorControl"])
def test_key_without_type_start_or_error_control_is_skipped(missing: str) -> None:
    values = {"Type": 16, "Start": 2, "ErrorControl": 1}
    del values[missing]
    assert entry_from_values("X", values) is None


def test_order_serialises_for_sc_order_json() -> None:
    o = order([E("A", depend_on_service=("Gone",)), E("B")])
    d = o.as_dict()
    assert d["sequence"] == ["B"] and d["reasons"][0]["kind"] == "ungrouped"
    assert d["errors"][0]["error"] == "ERROR_SERVICE_DEPENDENCY_DELETED"
    assert o.explain("a").endswith("which does not exist")


# -- invariants (Hypothesis) -------------------------------------------------------------
NAMES = [f"S{i}" for i in range(14)]
GROUP_POOL = [*GROUPS, "Unlisted", ""]


@st.composite
def configurations(draw):
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=14, unique=True))
    dep_names = st.sampled_from([*names, "Ghost"])
    entries = [
        E(
            name,
            start=draw(st.sampled_from([0, 1, 2, 2, 2, 3, 4])),
            group=draw(st.sampled_from(GROUP_POOL)),
            tag=draw(st.one_of(st.none(), st.integers(1, 4))),
            depend_on_service=tuple(draw(st.lists(dep_names, max_size=3, unique=True))),
            depend_on_group=tuple(
                draw(st.lists(st.sampled_from([*GROUPS, "Unlisted"]), max_size=1))
            ),
            delayed=draw(st.booleans()),
        )
        for name in names
    ]
    tags = {g: draw(st.lists(st.integers(1, 4), max_size=4, unique=True)) for g in GROUPS}
    running = set(draw(st.lists(st.sampled_from(names), max_size=3)))
    return entries, tags, running


@settings(max_examples=200, deadline=None)
@given(configurations())
def test_invariants_hold_for_every_computed_order(config) -> None:
    entries, tags, running = config
    by_name = {e.name: e for e in entries}
    o = compute_order(entries, GROUPS, tags, running=running)
    seq = o.sequence
    pos = {n: i for i, n in enumerate(seq)}
    # Each entry at most once; an entry is started or in error, never both.
    assert len(set(seq)) == len(seq)
    assert not set(seq) & set(o.errors)
    assert [o.reasons[n].position for n in seq] == list(range(1, len(seq) + 1))
    # Every auto-start entry not running is started or explained by an error.
    for e in entries:
        if e.start == 2 and e.name not in running:
            assert e.name in pos or e.name in o.errors
        if e.name in running:
            assert e.name not in pos
    # Each dependency starts before its dependent (or is already running).
    for name in seq:
        for dep in by_name[name].depend_on_service:
            assert dep in by_name, f"{name} starts although {dep} does not exist"
            assert dep in running or pos[dep] < pos[name], (name, dep)
        # DependOnGroup: one member running, or every member that starts is before it.
        for group in by_name[name].depend_on_group:
            members = [m for m in by_name.values() if m.group == group and m.name != name]
            started = [m.name for m in members if m.name in pos]
            assert any(m.name in running for m in members) or started
            if not any(m.name in running for m in members):
                assert any(pos[m] < pos[name] for m in started)

    # Groups in list order, tags within a group, delayed last, except pulled forward.
    def key(name: str) -> tuple:
        e = by_name[name]
        r = o.reasons[name]
        bucket = 2 if not e.group else (0 if r.group_index else 1)
        tag = r.tag_index if r.tag_index is not None else r.tag_count + 1
        return (r.delayed, bucket, r.group_index or 0, tag if bucket == 0 else 0)

    natural = [key(n) for n in seq if o.reasons[n].pulled_by is None]
    assert natural == sorted(natural)
    # Cycles: each member reported with 1059, and the cycle really exists.
    for err in o.errors.values():
        if err.code == ERROR_CIRCULAR_DEPENDENCY:
            assert err.name == err.cycle[0]
    # Deterministic whatever the input order.
    shuffled = entries[:]
    random.Random(len(entries)).shuffle(shuffled)
    assert compute_order(shuffled, GROUPS, tags, running=running) == o


def test_750_services_order_without_recursion_limits() -> None:
    # A chain 750 deep: each depends on the next.
    entries = [E(f"S{i:03d}", depend_on_service=(f"S{i + 1:03d}",)) for i in range(749)]
    entries.append(E("S749"))
    o = compute_order(entries, [], {})
    assert o.sequence == tuple(f"S{i:03d}" for i in range(749, -1, -1))


@settings(max_examples=100, deadline=None)
@given(configurations(), st.sampled_from([0, 1]))
def test_loader_mode_orders_only_its_phase_and_reports_only_cycles(config, phase) -> None:
    entries, tags, _ = config
    o = compute_order(entries, GROUPS, tags, start_types={phase}, pull_dependencies=False)
    by_name = {e.name: e for e in entries}
    assert all(by_name[n].start == phase for n in o.sequence)
    assert {e.code for e in o.errors.values()} <= {ERROR_CIRCULAR_DEPENDENCY}
    pos = {n: i for i, n in enumerate(o.sequence)}
    for name in o.sequence:
        for dep in by_name[name].depend_on_service:
            if dep in pos:
                assert pos[dep] < pos[name]
