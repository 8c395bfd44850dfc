"""What csrss needs from outside itself, injected so the server logic stays testable.

``KernelServices`` is implemented over the real ports by csrss's ``__main__`` (the kernel's
system-service port, the object manager, winlogon's notification path). Unit tests use an
in-memory fake. Every method returns an NTSTATUS (an ``int``) or a value plus one.
"""

from __future__ import annotations

from typing import Protocol


class KernelServices(Protocol):
    def create_symbolic_link(self, name: str, target: str) -> int:
        """NtCreateSymbolicLinkObject: STATUS_OBJECT_NAME_COLLISION if ``name`` exists."""
        ...

    def delete_symbolic_link(self, name: str) -> int:
        """Make the link temporary and close it: STATUS_OBJECT_NAME_NOT_FOUND if absent."""
        ...

    def query_symbolic_link(self, name: str) -> tuple[int, str | None]:
        """NtQuerySymbolicLinkObject: (status, target)."""
        ...

    def query_process(self, pid: int) -> dict | None:
        """The kernel's record of ``pid`` (keys: pid, image, session, critical, parent_pid,
        state), or None when no such process exists in this boot."""
        ...

    def terminate_process(self, pid: int, exit_status: int) -> int:
        """NtTerminateProcess."""
        ...

    def resume_process(self, pid: int) -> int:
        """NtResumeThread on the process's initial thread."""
        ...

    def notify_winlogon(self, session: int, flags: int) -> int:
        """Post WM_LOGONNOTIFY/LN_LOGOFF with the EWX flags to ``session``'s winlogon."""
        ...
