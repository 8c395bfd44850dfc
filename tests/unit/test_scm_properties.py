"""Invariants of the SCM core over random dependency graphs (Hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ports.svcctl import SERVICE_RUNNING, SERVICE_START_PENDING, SERVICE_STOPPED
from processes.services.scm import ScmSettings
from tests.unit.scm_fakes import FakeChannel, Machine, service


@st.composite
def graphs(draw):
    n = draw(st.integers(min_value=1, max_value=7))
    names = [f"S{i}" for i in range(n)]
    deps = {name: draw(st.lists(st.sampled_from(names), max_size=3, unique=True)) for name in names}
    missing = draw(st.sets(st.sampled_from(names), max_size=2))
    demand = draw(st.sets(st.sampled_from(names), max_size=3))
    return names, deps, missing, demand


def pump(m: Machine, channels: dict[int, FakeChannel], began: dict[str, set[str]]) -> None:
    progress = True
    while progress:
        progress = False
        for image in list(m.core.images.values()):
            if not image.connected:
                channels[image.pid] = FakeChannel()
                m.core.control_connect(image.service_current, image.pid, channels[image.pid])
                progress = True
        for pid, ch in list(channels.items()):
            packets, ch.packets = ch.packets, []
            for p in packets:
                progress = True
                if p.service_name:
                    began[p.service_name] = {
                        s.name
                        for s in m.db.services.values()
                        if s.status.current_state == SERVICE_RUNNING
                    }
                m.core.control_reply(pid, p.sequence, 0)
                svc = m.db.get(p.service_name) if p.service_name else None
                if svc is not None and svc.status.current_state == SERVICE_START_PENDING:
                    m.report(svc.name, SERVICE_RUNNING)


@settings(max_examples=150, deadline=None)
@given(graphs(), st.booleans(), st.sampled_from([1, 4]))
def test_dependencies_run_before_dependents_and_nothing_is_left_waiting(graph, auto, window):
    names, deps, missing, demand = graph
    m = Machine(
        *(service(n, depend_on_service=deps[n], start=3 if n in demand else 2) for n in names),
        settings=ScmSettings(standins=False, auto_start_window=window),
    )
    m.kernel.missing.update(f"{n.lower()}.exe" for n in missing)
    channels: dict[int, FakeChannel] = {}
    began: dict[str, set[str]] = {}
    if auto:
        m.core.auto_start()
    else:
        for n in names:
            m.start(n)
    pump(m, channels, began)
    assert m.core.starting == set() and m.core.waiters == []
    assert not auto or m.core.auto.complete  # SC_AutoStartComplete once all settled
    for svc in m.db.services.values():
        assert svc.status.current_state in (SERVICE_RUNNING, SERVICE_STOPPED)
        if svc.status.current_state == SERVICE_RUNNING:
            assert svc.name not in missing
            assert set(svc.depend_on_service) <= began[svc.name]  # each dependency ran first
        elif not auto or svc.start == 2:
            assert svc.status.win32_exit_code != 0  # a service that did not run says why
