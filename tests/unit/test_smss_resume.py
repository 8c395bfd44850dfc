"""smss's NtResumeThread of a process it just created (csrss, a session instance): one
killed while still suspended is blamed with its own exit status, not the resume step.
A window ``ntctl chaos`` found (csrss killed 0.2 ms after its creation)."""

from __future__ import annotations

import pytest

from nt.status import NtStatus
from nt.syscalls import NtError
from processes.smss.smss import resume_or_blame
from processes.smss.smwatch import INITIALIZATION_NAME, SmpFailure


class DeadOnResume:
    def resume(self, pid: int) -> None:
        raise NtError(NtStatus.STATUS_PROCESS_IS_TERMINATING, "resume")


class Proc:
    nt = DeadOnResume()


class Exits:
    def __init__(self, status: int | None) -> None:
        self.status = status

    def wait(self, pid: int, timeout: float | None = None) -> int | None:
        return self.status


def test_a_process_killed_while_suspended_is_the_culprit() -> None:
    with pytest.raises(SmpFailure) as failure:
        resume_or_blame(Proc(), 42, Exits(1))  # type: ignore[arg-type]
    assert (failure.value.what, failure.value.status, failure.value.culprit) == (
        INITIALIZATION_NAME,
        1,
        42,
    )


def test_a_resume_that_fails_for_another_reason_keeps_its_status() -> None:
    with pytest.raises(SmpFailure) as failure:
        resume_or_blame(Proc(), 42, Exits(None))  # type: ignore[arg-type]
    assert failure.value.status == NtStatus.STATUS_PROCESS_IS_TERMINATING
