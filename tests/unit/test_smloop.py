"""SmExecPgm's caller check (processes/smss/smloop.py)."""

from __future__ import annotations

from processes.smss.smloop import created_by

SMSS, CHILD, TOOL = 300, 310, 900


def record(pid: int, parent: int, state: str = "suspended") -> dict:
    return {"pid": pid, "parent_pid": parent, "state": state}


def test_issue5_smexecpgm_accepts_a_process_the_caller_created() -> None:
    assert created_by(record(CHILD, SMSS), SMSS)


def test_issue5_smexecpgm_refuses_a_process_the_caller_did_not_create() -> None:
    assert not created_by(record(CHILD, SMSS), TOOL)
    assert not created_by(record(SMSS, 4, "running"), TOOL)


def test_issue5_an_attached_tool_may_name_itself_and_no_one_else() -> None:
    assert created_by(record(TOOL, 0, "attached"), TOOL)
    assert not created_by(record(TOOL, 0, "attached"), CHILD)
    assert not created_by(record(TOOL, 0, "running"), TOOL)  # only while attached
