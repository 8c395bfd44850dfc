"""Bugcheck codes with their names, descriptions and parameter meanings.

One table for the kernel (which raises them), the dump writer (which records what the
parameters mean), the STOP screen and ``ntctl analyze`` (which explain them). Wording is
paraphrased from Microsoft's "Bug Check 0x.." reference pages; the call sites and the
parameter values follow reliability-security.md §1.2 and nt-spec.md §1.9 / §6.2.

Real parameters are kernel addresses. The model has none, so object parameters are
synthetic addresses (:func:`eprocess_address`) and string parameters are fake string
pointers (:func:`string_pointer`); the decoded strings travel next to them in the dump
(``decoded["p1_text"]`` ...), so a reader never has to dereference anything.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import IntEnum

from nt.status import NtStatus, hexstatus, status_name


class BugCode(IntEnum):
    """The bugcheck codes the model raises or explains (bugcodes.mc names)."""

    FATAL_UNHANDLED_HARD_ERROR = 0x4C
    CRITICAL_SERVICE_FAILED = 0x5A
    PROCESS1_INITIALIZATION_FAILED = 0x6B
    SESSION1_INITIALIZATION_FAILED = 0x6D
    SESSION2_INITIALIZATION_FAILED = 0x6E
    SESSION3_INITIALIZATION_FAILED = 0x6F
    SESSION4_INITIALIZATION_FAILED = 0x70
    SESSION5_INITIALIZATION_FAILED = 0x71
    BAD_SYSTEM_CONFIG_INFO = 0x74
    MANUALLY_INITIATED_CRASH = 0xE2
    CRITICAL_PROCESS_DIED = 0xEF
    CRITICAL_OBJECT_TERMINATION = 0xF4
    STATUS_SYSTEM_PROCESS_TERMINATED = 0xC000021A


# Object header types (ketypes.h) used as P1 of 0xF4.
OBJECT_TYPE_PROCESS = 3
OBJECT_TYPE_THREAD = 6

# Parameter kinds: they tell a reader how to explain a value for one particular dump.
RESERVED = "reserved"  # reserved / always 0
STATUS = "status"  # an NTSTATUS value
PROCESS = "process"  # a process (or thread) object address
STRING = "string"  # a pointer to a string; the text is decoded["pN_text"]
OBJECT_TYPE = "object_type"  # 3 = process, 6 = thread
THREAD_FLAG = "thread_flag"  # 0 = a process died, 1 = a thread died
VALUE = "value"  # a plain number


@dataclass(frozen=True)
class ParamSpec:
    """What one of the four parameters means in general."""

    meaning: str
    kind: str = VALUE


@dataclass(frozen=True)
class BugcheckInfo:
    """A bugcheck as ``!analyze -show`` explains it."""

    code: int
    name: str
    description: str
    params: tuple[ParamSpec, ParamSpec, ParamSpec, ParamSpec]
    known: bool = True

    @property
    def parameter_meanings(self) -> list[str]:
        return [p.meaning for p in self.params]


_R = ParamSpec("Reserved", RESERVED)
_ZERO = ParamSpec("0", RESERVED)
_INIT_FAILED = (
    "The initialization of the Windows operating system failed. The kernel raises this "
    "in Phase 1 when it cannot start the first user-mode process, the Session Manager "
    "(smss.exe)."
)


def _session(n: int, when: str) -> BugcheckInfo:
    code = BugCode[f"SESSION{n}_INITIALIZATION_FAILED"]
    return BugcheckInfo(
        code,
        code.name,
        f"{_INIT_FAILED} In this model: {when}",
        (
            ParamSpec(
                "The NT status code that made the kernel conclude that initialization failed",
                STATUS,
            ),
            _ZERO,
            _ZERO,
            _ZERO,
        ),
    )


_TABLE: dict[int, BugcheckInfo] = {
    info.code: info
    for info in (
        BugcheckInfo(
            BugCode.FATAL_UNHANDLED_HARD_ERROR,
            "FATAL_UNHANDLED_HARD_ERROR",
            "A hard error (NtRaiseHardError with OptionShutdownSystem) could not be handled. "
            "It is the kernel's internal carrier for fatal hard errors: KeBugCheckEx rewrites "
            "it so that the displayed code is the hard error's own status, which is why it "
            "appears very rarely on a STOP screen.",
            (
                ParamSpec("The hard error's NTSTATUS", STATUS),
                ParamSpec("Pointer to the hard error's parameters", VALUE),
                ParamSpec("Caption string", STRING),
                ParamSpec("Message string", STRING),
            ),
        ),
        BugcheckInfo(
            BugCode.CRITICAL_SERVICE_FAILED,
            "CRITICAL_SERVICE_FAILED",
            "A service whose ErrorControl is Critical failed to start while the system was "
            "already booting the LastKnownGood control set, so there was nothing left to "
            "fall back to. It appears very rarely.",
            (ParamSpec("Reserved (the model records the service name)", STRING), _R, _R, _R),
        ),
        BugcheckInfo(
            BugCode.PROCESS1_INITIALIZATION_FAILED,
            "PROCESS1_INITIALIZATION_FAILED",
            "The initialization of the Windows operating system failed: Phase 1 could not "
            "initialize the process manager (PsInitSystem) or the security reference monitor "
            "(SeRmInitPhase1). On real hardware a disk or a missing boot file is the usual "
            "cause.",
            (ParamSpec("The NT status code that caused the failure", STATUS), _R, _R, _R),
        ),
        _session(1, "the process parameters for smss could not be built."),
        BugcheckInfo(
            BugCode.SESSION2_INITIALIZATION_FAILED,
            "SESSION2_INITIALIZATION_FAILED",
            f"{_INIT_FAILED} In this model: the environment for smss could not be built, or "
            "the initial-process buffer has the wrong type or length.",
            (
                ParamSpec(
                    "The NT status code (STATUS_INVALID_PARAMETER for a bad initial-process "
                    "buffer)",
                    STATUS,
                ),
                ParamSpec("0, or the registry type of the initial-process buffer", VALUE),
                ParamSpec("0, or the length of the initial-process buffer", VALUE),
                ParamSpec("0, or 256 (the size of the buffer)", VALUE),
            ),
        ),
        _session(3, "the kernel could not create the smss process (RtlCreateUserProcess)."),
        _session(4, "the kernel could not resume smss's initial thread (ZwResumeThread)."),
        _session(5, "smss exited within the kernel's 5-second wait after its creation."),
        BugcheckInfo(
            BugCode.BAD_SYSTEM_CONFIG_INFO,
            "BAD_SYSTEM_CONFIG_INFO",
            "There is an error in the registry: the SYSTEM hive is corrupt and could not be "
            "recovered, or critical keys and values are missing (for example after a manual "
            "edit). Parameter 4, the NTSTATUS, tells which.",
            (_R, _R, _R, ParamSpec("The NT status value, if it is available", STATUS)),
        ),
        BugcheckInfo(
            BugCode.MANUALLY_INITIATED_CRASH,
            "MANUALLY_INITIATED_CRASH",
            "The user deliberately crashed the system to get a dump, from the kernel debugger "
            "or the keyboard (CrashOnCtrlScroll). In this model: the `crash` command.",
            (_R, _R, _R, _R),
        ),
        BugcheckInfo(
            BugCode.CRITICAL_PROCESS_DIED,
            "CRITICAL_PROCESS_DIED",
            "A critical system process died. A critical process is one whose termination "
            "forces a bugcheck, because Windows cannot run, or vouch for its integrity, "
            "without it: csrss.exe, wininit.exe, logonui.exe, smss.exe, services.exe, "
            "conhost.exe and winlogon.exe are the built-in ones.",
            (
                ParamSpec("The process object", PROCESS),
                ParamSpec("0 if a process died, 1 if a thread died", THREAD_FLAG),
                _R,
                _R,
            ),
        ),
        BugcheckInfo(
            BugCode.CRITICAL_OBJECT_TERMINATION,
            "CRITICAL_OBJECT_TERMINATION",
            "A process or thread crucial to system operation has unexpectedly exited or been "
            "terminated. Several processes and threads are necessary for the system to work; "
            "when one of them ends for any reason, the system can no longer function.",
            (
                ParamSpec("The terminating object type: 3 = process, 6 = thread", OBJECT_TYPE),
                ParamSpec("The terminating object", PROCESS),
                ParamSpec("The process image file name", STRING),
                ParamSpec("Pointer to an ASCII string with an explanatory message", STRING),
            ),
        ),
        BugcheckInfo(
            BugCode.STATUS_SYSTEM_PROCESS_TERMINATED,
            "STATUS_SYSTEM_PROCESS_TERMINATED",
            "An error occurred in a crucial user-mode subsystem, such as winlogon or the "
            "Client/Server Runtime Subsystem (csrss), and security can no longer be "
            "guaranteed. Windows cannot run without them, so this is one of the few cases "
            "where a user-mode failure shuts the system down. smss raises it when it sees "
            "csrss or winlogon end before they became critical.",
            (
                ParamSpec("A string that identifies the problem", STRING),
                ParamSpec("The error code", STATUS),
                ParamSpec("Reserved (exception address for smss's own exception)", VALUE),
                ParamSpec("Reserved (exception context for smss's own exception)", VALUE),
            ),
        ),
        BugcheckInfo(
            NtStatus.STATUS_DLL_NOT_FOUND,
            "STATUS_DLL_NOT_FOUND",
            "A hard error raised before the system was ready to display hard errors "
            "(ExReadyForErrors is FALSE) becomes a bugcheck whose code is the error's own "
            "status. Here csrss could not load one of its server DLLs (ServerDll=) while "
            "starting, before its hard-error port existed.",
            (
                ParamSpec("The name of the DLL that could not be found", STRING),
                ParamSpec('The search path that was used ("Default Load Path")', STRING),
                _R,
                _R,
            ),
        ),
    )
}

_HARD_ERROR_PARAMS = (
    ParamSpec("Hard-error parameter 1 (a string when the message says so)", VALUE),
    ParamSpec("Hard-error parameter 2", VALUE),
    ParamSpec("Hard-error parameter 3", VALUE),
    ParamSpec("Hard-error parameter 4", VALUE),
)


def is_ntstatus_shaped(code: int) -> bool:
    """True when ``code`` has NTSTATUS severity bits (a hard error used as a bugcheck)."""
    return (code & 0xFFFFFFFF) >> 30 != 0


def describe(code: int) -> BugcheckInfo:
    """The table entry for ``code``; unknown codes get a generic but honest entry."""
    code &= 0xFFFFFFFF
    info = _TABLE.get(code)
    if info is not None:
        return info
    if is_ntstatus_shaped(code):
        name = status_name(code)
        if name.startswith("0x"):
            name = f"STATUS_{code:08X}"
        return BugcheckInfo(
            code,
            name,
            f"A hard error with status {hexstatus(code)} ({name}) was raised before the "
            "system was ready to display hard errors, so the kernel stopped with the error "
            "status itself as the bugcheck code.",
            _HARD_ERROR_PARAMS,
            known=False,
        )
    return BugcheckInfo(
        code,
        f"BUGCHECK_0x{code:X}",
        f"Unknown bugcheck code 0x{code:X}: it is not in the model's table.",
        (
            ParamSpec("Parameter 1"),
            ParamSpec("Parameter 2"),
            ParamSpec("Parameter 3"),
            ParamSpec("Parameter 4"),
        ),
        known=False,
    )


def lookup(text: str) -> int:
    """A bugcheck code from a name or a hex number ("ef", "0xEF", "CRITICAL_PROCESS_DIED").

    Bare digits are hex, as in WinDbg's ``!analyze -show``. Raises ValueError when the
    text is neither a known name nor a number.
    """
    t = text.strip()
    key = t.upper()
    for info in _TABLE.values():
        if info.name == key:
            return info.code
    try:
        return NtStatus[key]
    except KeyError:
        pass
    try:
        return int(t, 16) & 0xFFFFFFFF
    except ValueError:
        raise ValueError(f"unknown bugcheck code or name: {text!r}") from None


# --- synthetic addresses --------------------------------------------------------------

_EPROCESS_BASE = 0xFFFF_A000_0000_0000
_STRING_BASE = 0xFFFF_B000_0000_0000


def eprocess_address(pid: int) -> int:
    """The synthetic EPROCESS address of ``pid`` (reliability-security §1.2)."""
    return _EPROCESS_BASE | (pid << 12)


def string_pointer(text: str) -> int:
    """A deterministic fake pointer standing in for a string parameter.

    Stable across processes and runs (no hash randomisation), 16-byte aligned like a
    pool allocation, and in its own region so it is never mistaken for an EPROCESS.
    """
    digest = hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=5).digest()
    return _STRING_BASE | (int.from_bytes(digest, "big") << 4)


def format_code(code: int) -> str:
    """``0x000000EF``: the code as the STOP line prints it."""
    return f"0x{code & 0xFFFFFFFF:08X}"


def format_param(value: int) -> str:
    """``0xFFFFA00000123000``: a parameter as a 64-bit STOP line prints it."""
    return f"0x{value & 0xFFFFFFFFFFFFFFFF:016X}"


def bugcheck_str(code: int) -> str:
    """``0xEF`` / ``0xC000021A``: WinDbg's BUGCHECK_STR and bucket prefix."""
    return f"0x{code & 0xFFFFFFFF:X}"


# --- parameter builders for the call sites ---------------------------------------------


@dataclass(frozen=True)
class BugcheckParams:
    """What KeBugCheckEx gets: the code, four values, and the decoded facts for the dump."""

    code: int
    parameters: tuple[int, int, int, int]
    decoded: dict = field(default_factory=dict)


def critical_process_died(pid: int, *, thread: bool = False) -> BugcheckParams:
    """0xEF for a critical process (or critical thread) of ``pid`` that ended."""
    return BugcheckParams(
        BugCode.CRITICAL_PROCESS_DIED,
        (eprocess_address(pid), 1 if thread else 0, 0, 0),
        {"pid": pid},
    )


def critical_message(pid: int, image: str, *, thread: bool = False, external: bool = True) -> str:
    """The PspCatchCriticalBreak message (ReactOS ``ps/kill.c``) for a critical object."""
    kind = "thread" if thread else "process"
    address = f"0x{eprocess_address(pid):016X}"
    if external:
        return f"Terminating critical {kind} {address} ({image})"
    return f"Critical {kind} {address} (in {image}) exited"


def critical_object_termination(
    pid: int, image: str, *, thread: bool = False, external: bool = True
) -> BugcheckParams:
    """0xF4: (object type, object, image-name pointer, message pointer)."""
    message = critical_message(pid, image, thread=thread, external=external)
    image16 = image[:15]  # EPROCESS.ImageFileName holds 15 characters and a NUL
    return BugcheckParams(
        BugCode.CRITICAL_OBJECT_TERMINATION,
        (
            OBJECT_TYPE_THREAD if thread else OBJECT_TYPE_PROCESS,
            eprocess_address(pid),
            string_pointer(image16),
            string_pointer(message),
        ),
        {"pid": pid, "p3_text": image16, "p4_text": message},
    )


def system_process_terminated(what: str, status: int) -> BugcheckParams:
    """0xC000021A raised by smss: P1 names the process ("Windows SubSystem"), P2 its status."""
    return BugcheckParams(
        BugCode.STATUS_SYSTEM_PROCESS_TERMINATED,
        (string_pointer(what), status & 0xFFFFFFFF, 0, 0),
        {"p1_text": what, "message": system_process_message(what, status)},
    )


def system_process_message(what: str, status: int) -> str:
    """The errcodes.mc text of 0xC000021A, as the STOP screen shows it."""
    return (
        f"The {what} system process terminated unexpectedly with a status of "
        f"0x{status & 0xFFFFFFFF:08x} (0x00000000 0x00000000). The system has been shut down."
    )


def hard_error(status: int, *strings: str) -> BugcheckParams:
    """A hard error raised too early: code = ``status``, string parameters as pointers.

    Example: csrss failing ``ServerDll=`` → ``hard_error(STATUS_DLL_NOT_FOUND, "winsrv",
    "Default Load Path")``.
    """
    if len(strings) > 4:
        raise ValueError("a hard error carries at most 4 parameters")
    values = [string_pointer(s) for s in strings] + [0] * (4 - len(strings))
    decoded = {f"p{i + 1}_text": s for i, s in enumerate(strings)}
    return BugcheckParams(status & 0xFFFFFFFF, tuple(values), decoded)  # type: ignore[arg-type]


def status_bugcheck(
    code: int, status: int, p2: int = 0, p3: int = 0, p4: int = 0
) -> BugcheckParams:
    """A Phase 1 bugcheck whose P1 is an NTSTATUS (0x6B, 0x6D..0x71)."""
    return BugcheckParams(code, (status & 0xFFFFFFFF, p2, p3, p4), {})


def bad_system_config_info(status: int) -> BugcheckParams:
    """0x74 with the NTSTATUS in P4 (e.g. STATUS_REGISTRY_CORRUPT)."""
    return BugcheckParams(BugCode.BAD_SYSTEM_CONFIG_INFO, (0, 0, 0, status & 0xFFFFFFFF), {})
