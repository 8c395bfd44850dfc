"""Phase 1 executive initialisation as data: the steps, their progress and their bugchecks.

Source: ReactOS ``ntoskrnl/ex/init.c``, ``Phase1InitializationDiscard`` (read at
reactos/reactos commit 8cd4a8b428eb; the step order and the InbvUpdateProgressBar calls
5, 10, 15, 20, 25, 80, 90, 100 are the same at 0a524c28893c). Bugcheck values are from
``sdk/include/reactos/mc/bugcodes.mc``. No process is started here: the kernel walks
``PHASE1_STEPS`` and does the model's work for each one.

ReactOS calls InbvUpdateProgressBar after groups of steps, so most steps carry no
percentage of their own. IoInitSystem runs inside InbvSetProgressBarSubset(25, 75): the
drivers it loads move the bar up to 75 before the subset is reset to 0..100.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum

from nt.status import NtStatus


class BugCheck(IntEnum):
    """The bugchecks Phase 1 raises (bugcodes.mc MessageIds)."""

    PHASE1_INITIALIZATION_FAILED = 0x32
    HAL1_INITIALIZATION_FAILED = 0x61
    OBJECT1_INITIALIZATION_FAILED = 0x62
    SECURITY1_INITIALIZATION_FAILED = 0x63
    SYMBOLIC_INITIALIZATION_FAILED = 0x64
    MEMORY1_INITIALIZATION_FAILED = 0x65
    CACHE_INITIALIZATION_FAILED = 0x66
    CONFIG_INITIALIZATION_FAILED = 0x67
    FILE_INITIALIZATION_FAILED = 0x68
    IO1_INITIALIZATION_FAILED = 0x69
    LPC_INITIALIZATION_FAILED = 0x6A
    PROCESS1_INITIALIZATION_FAILED = 0x6B
    SESSION3_INITIALIZATION_FAILED = 0x6F
    SESSION5_INITIALIZATION_FAILED = 0x71
    PP1_INITIALIZATION_FAILED = 0x90
    INTERNAL_POWER_ERROR = 0xA0


# Marks the parameter slot that carries the NTSTATUS of the failed call.
STATUS = None


@dataclass(frozen=True)
class Phase1Step:
    name: str
    description: str
    bugcheck: BugCheck | None = None
    # KeBugCheckEx parameters; STATUS (None) stands for the failing call's NTSTATUS.
    parameters: tuple[int | None, int, int, int] = (0, 0, 0, 0)
    # The InbvUpdateProgressBar value ReactOS passes right after this step, if any.
    progress: int | None = None
    progress_subset: tuple[int, int] | None = None

    @property
    def bugcheck_name(self) -> str | None:
        return None if self.bugcheck is None else self.bugcheck.name

    def bugcheck_parameters(self, status: int = 0) -> tuple[int, int, int, int]:
        """The four KeBugCheckEx parameters for a failure of this step with ``status``."""
        p1, p2, p3, p4 = self.parameters
        return (status if p1 is STATUS else p1, p2, p3, p4)


PHASE1_STEPS: tuple[Phase1Step, ...] = (
    Phase1Step(
        "ExAllocatePoolWithTag(INIT_BUFFER)",
        "Allocate the Phase 1 init buffer (version strings, initial process information).",
        BugCheck.PHASE1_INITIALIZATION_FAILED,
        (NtStatus.STATUS_NO_MEMORY, 8, 0, 0),
    ),
    Phase1Step(
        "HalInitSystem(1)",
        "HAL phase 1; then the load options are upper-cased and NOGUIBOOT, SOS, MININT read.",
        BugCheck.HAL1_INITIALIZATION_FAILED,
    ),
    Phase1Step(
        "InbvDriverInitialize",
        "Boot video: the boot logo unless NOGUIBOOT; status strings only with SOS.",
    ),
    Phase1Step("PoInitSystem(0)", "Power manager, phase 0.", BugCheck.INTERNAL_POWER_ERROR),
    Phase1Step(
        "HalQueryRealTimeClock",
        "Read the CMOS clock, apply the time-zone bias and set KeBootTime.",
    ),
    Phase1Step(
        "HalAllProcessorsStarted",
        "Start the application processors; show the processor count and memory size.",
        BugCheck.HAL1_INITIALIZATION_FAILED,
        progress=5,
    ),
    Phase1Step(
        "ObInitSystem",
        "Object manager, second pass: the namespace (\\ObjectTypes, \\GLOBAL??, \\??).",
        BugCheck.OBJECT1_INITIALIZATION_FAILED,
    ),
    Phase1Step(
        "ExInitSystem",
        "Executive objects and worker threads.",
        BugCheck.PHASE1_INITIALIZATION_FAILED,
        (0, 0, 1, 0),
    ),
    Phase1Step(
        "KeInitSystem",
        "Later kernel initialisation.",
        BugCheck.PHASE1_INITIALIZATION_FAILED,
        (0, 0, 2, 0),
    ),
    Phase1Step(
        "KdInitSystem(1)",
        "Kernel debugger providers, phase 1.",
        BugCheck.PHASE1_INITIALIZATION_FAILED,
        (0, 0, 3, 0),
    ),
    Phase1Step(
        "SeInitSystem",
        "Security reference monitor, phase 1.",
        BugCheck.SECURITY1_INITIALIZATION_FAILED,
        progress=10,
    ),
    Phase1Step(
        "ExpCreateSystemRootLink",
        "Create \\ArcName and the \\SystemRoot symbolic link to the boot path.",
        BugCheck.SYMBOLIC_INITIALIZATION_FAILED,
        (STATUS, 0, 0, 0),
    ),
    Phase1Step(
        "MmInitSystem(1)",
        "Memory manager phase 1: region maps, sections, the paging file.",
        BugCheck.MEMORY1_INITIALIZATION_FAILED,
    ),
    Phase1Step(
        "ExpInitNls",
        "Map the NLS tables into a section (P2 is 1, 2, 3 or 5 by the failing call).",
        BugCheck.PHASE1_INITIALIZATION_FAILED,
        (STATUS, 1, 0, 0),
    ),
    Phase1Step("CcInitializeCacheManager", "Cache manager.", BugCheck.CACHE_INITIALIZATION_FAILED),
    Phase1Step(
        "CmInitSystem1",
        "Configuration manager: load the hives, write SystemStartOptions and SystemBootDevice.",
        BugCheck.CONFIG_INITIALIZATION_FAILED,
    ),
    Phase1Step("CcPfInitializePrefetcher", "Prefetcher.", progress=15),
    Phase1Step(
        "ExRefreshTimeZoneInformation",
        "Read the time zone from the registry and correct the boot time.",
    ),
    Phase1Step(
        "FsRtlInitSystem", "File system runtime library.", BugCheck.FILE_INITIALIZATION_FAILED
    ),
    Phase1Step(
        "PpInitSystem",
        "Plug and Play manager, phase 1.",
        BugCheck.PP1_INITIALIZATION_FAILED,
        progress=20,
    ),
    Phase1Step(
        "LpcInitSystem",
        "LPC ports; then SAFEBOOT:… and BOOTLOG are read from the load options.",
        BugCheck.LPC_INITIALIZATION_FAILED,
        progress=25,
    ),
    Phase1Step(
        "IoInitSystem",
        "I/O manager: boot and system drivers, \\Device objects, drive letters.",
        BugCheck.IO1_INITIALIZATION_FAILED,
        progress_subset=(25, 75),
    ),
    Phase1Step(
        "SafeBoot\\Option",
        "In safe mode: the volatile key Control\\SafeBoot\\Option with OptionValue "
        "(and UseAlternateShell); failures here are ignored.",
    ),
    Phase1Step("MmArmInitSystem(2)", "Memory manager, phase 2.", progress=80),
    Phase1Step(
        "PoInitSystem(1)", "Power manager, phase 1.", BugCheck.INTERNAL_POWER_ERROR, progress=90
    ),
    Phase1Step(
        "PsInitSystem",
        "Process manager, phase 1; the loader block is freed after it.",
        BugCheck.PROCESS1_INITIALIZATION_FAILED,
    ),
    Phase1Step(
        "SeRmInitPhase1",
        "Security reference monitor command server.",
        BugCheck.PROCESS1_INITIALIZATION_FAILED,
        progress=100,
    ),
    Phase1Step(
        "ExpLoadInitialProcess",
        "Create smss.exe from \\SystemRoot\\System32\\smss.exe and resume it (parameter, "
        "environment and resume failures raise 0x6D, 0x6E and 0x70).",
        BugCheck.SESSION3_INITIALIZATION_FAILED,
        (STATUS, 0, 0, 0),
    ),
    Phase1Step(
        "ZwWaitForSingleObject(smss, 5 s)",
        "Wait 5 seconds on smss: if it has exited by then, SESSION5 with no parameters.",
        BugCheck.SESSION5_INITIALIZATION_FAILED,
    ),
)


def progress_steps(
    steps: tuple[Phase1Step, ...] = PHASE1_STEPS,
) -> Iterator[tuple[Phase1Step, int]]:
    """Each step with the boot progress bar's value once it has finished; ends at 100."""
    percent = 0
    for step in steps:
        if step.progress is not None:
            percent = step.progress
        elif step.progress_subset is not None:
            percent = step.progress_subset[1]
        yield step, percent


def find_step(name: str) -> Phase1Step:
    """The step called ``name`` (exact match, as listed in PHASE1_STEPS)."""
    for step in PHASE1_STEPS:
        if step.name == name:
            return step
    raise KeyError(name)
