"""Phase 1 initialisation data (processes/kernel/phase1.py)."""

from __future__ import annotations

from nt.status import NtStatus
from processes.kernel.phase1 import PHASE1_STEPS, BugCheck, find_step, progress_steps


def names() -> list[str]:
    return [step.name for step in PHASE1_STEPS]


def test_steps_follow_phase1initializationdiscard_order():
    order = [
        "HalInitSystem(1)",
        "PoInitSystem(0)",
        "ObInitSystem",
        "ExInitSystem",
        "KeInitSystem",
        "SeInitSystem",
        "MmInitSystem(1)",
        "CmInitSystem1",
        "LpcInitSystem",
        "IoInitSystem",
        "PoInitSystem(1)",
        "PsInitSystem",
        "SeRmInitPhase1",
        "ExpLoadInitialProcess",
    ]
    positions = [names().index(name) for name in order]
    assert positions == sorted(positions)
    assert len(set(names())) == len(names())


def test_progress_is_non_decreasing_and_ends_at_100():
    percents = [percent for _, percent in progress_steps()]
    assert percents == sorted(percents)
    assert percents[-1] == 100
    assert len(percents) == len(PHASE1_STEPS)


def test_progress_values_are_the_ones_reactos_passes():
    explicit = [(step.name, step.progress) for step in PHASE1_STEPS if step.progress is not None]
    assert [value for _, value in explicit] == [5, 10, 15, 20, 25, 80, 90, 100]
    assert dict(explicit)["SeInitSystem"] == 10
    assert dict(explicit)["SeRmInitPhase1"] == 100


def test_io_init_runs_inside_the_25_to_75_subset():
    step = find_step("IoInitSystem")
    assert step.progress_subset == (25, 75)
    percent = dict((s.name, p) for s, p in progress_steps())["IoInitSystem"]
    assert percent == 75


def test_failure_codes_match_bugcodes_mc():
    expected = {
        "HalInitSystem(1)": 0x61,
        "ObInitSystem": 0x62,
        "SeInitSystem": 0x63,
        "ExpCreateSystemRootLink": 0x64,
        "MmInitSystem(1)": 0x65,
        "CcInitializeCacheManager": 0x66,
        "CmInitSystem1": 0x67,
        "FsRtlInitSystem": 0x68,
        "IoInitSystem": 0x69,
        "LpcInitSystem": 0x6A,
        "PsInitSystem": 0x6B,
        "SeRmInitPhase1": 0x6B,
        "PpInitSystem": 0x90,
        "PoInitSystem(0)": 0xA0,
        "PoInitSystem(1)": 0xA0,
        "ExpLoadInitialProcess": 0x6F,
        "ZwWaitForSingleObject(smss, 5 s)": 0x71,
    }
    for name, code in expected.items():
        assert find_step(name).bugcheck == code, name
    assert find_step("CmInitSystem1").bugcheck_name == "CONFIG_INITIALIZATION_FAILED"
    assert find_step("PsInitSystem").bugcheck is BugCheck.PROCESS1_INITIALIZATION_FAILED


def test_bugcheck_parameters_carry_the_failing_status_where_reactos_passes_it():
    assert find_step("ExInitSystem").bugcheck_parameters() == (0, 0, 1, 0)
    assert find_step("KeInitSystem").bugcheck_parameters() == (0, 0, 2, 0)
    status = NtStatus.STATUS_OBJECT_NAME_NOT_FOUND
    assert find_step("ExpLoadInitialProcess").bugcheck_parameters(status) == (status, 0, 0, 0)
    assert find_step("ZwWaitForSingleObject(smss, 5 s)").bugcheck_parameters(5) == (0, 0, 0, 0)


def test_steps_without_a_bugcheck_have_no_name():
    step = find_step("CcPfInitializePrefetcher")
    assert step.bugcheck is None and step.bugcheck_name is None
