r"""The kernel's system-service port ``\KiSystemService`` and the debugger attach port.

Native NT enters the kernel through ``KiSystemService`` with a service number; here a
process sends the service number as the API number of an LPC request on this port.
Service names are the Nt* names of the real system calls; ``Cm*`` entries are model
extensions for ``reg import/export`` (marked so in PROTOCOL.md).
"""

from __future__ import annotations

from nt.regwire import MAX_BLOB
from nt.status import NtStatus as S
from ports.schema import (
    U32,
    Api,
    Bin,
    Bool,
    Dict,
    Int,
    List,
    Map,
    Nullable,
    Protocol,
    Str,
    Tuple,
    Value,
)

SYSTEM_SERVICE_PORT = "\\KiSystemService"
ATTACH_PORT = "\\KdAttachPort"
# The three fixed endpoints, inside the boot's runtime directory (machine.json names it);
# every other port's endpoint comes from NtOpenPort.
SYSTEM_SERVICE_ENDPOINT = "k"
ATTACH_ENDPOINT = "attach"
EVENTS_ENDPOINT = "ev"
KEY_FILE = "key"  # 32 bytes, mode 0600
MACHINE_STATE = "machine.json"  # in the data root: boot_id, kernel_pid, runtime, profile


def endpoint(runtime: object, name: str) -> str:
    """``ipc://<runtime>/<name>`` for one of the fixed endpoints above."""
    return f"ipc://{runtime}/{name}"


PATH = Str(max_len=4096)
NAME = Str(max_len=16383)
OPT_PID = Int(lo=0, hi=2**31 - 1, optional=True, default=0)
MAX_WINSTA_NAME = 256  # a window station or desktop name (no backslash)

# Hard-error response options (sdk/include/ndk/extypes.h).
OPTION_OK = 1
OPTION_SHUTDOWN_SYSTEM = 6

# NtShutdownSystem actions (SHUTDOWN_ACTION).
SHUTDOWN_NO_REBOOT = 0
SHUTDOWN_REBOOT = 1
SHUTDOWN_POWER_OFF = 2

# Bulk registry transfer (reg import/export at the size of a real hive, 10-25 MB): no
# message holds a whole file. An import is staged in chunks and applied at commit in one
# transaction per hive; an export is a snapshot read back in chunks. A chunk is one
# msgpack blob whose inside both ends check (nt/regwire.py documents its layout).
REG_CHUNK = Bin(max_len=MAX_BLOB)

# NtInitializeRegistry flags.
CM_BOOT_FLAG_SMSS = 0x0000
CM_BOOT_FLAG_ACCEPTED = 0x0002


# The kernel's process record (NtQueryInformationProcess, SystemProcessInformation).
PROCESS_RECORD = Map(
    fields={
        "pid": U32(),
        "image": Str(max_len=260),
        "command_line": Str(max_len=32767),
        "parent_pid": U32(),
        "session": Nullable(U32()),
        "state": Str(max_len=16, doc="suspended, running, exited or attached"),
        "critical": Bool(),
        "create_time": Str(max_len=64),
        "exit_time": Nullable(Str(max_len=64)),
        "exit_status": Nullable(Int(lo=-(2**31), hi=2**32 - 1)),
        "signal": Nullable(Int(lo=0, hi=255)),
        "user": Str(max_len=256),
        "token": Dict(value=Value(max_len=256), max_len=16),
        "standin": Bool(doc="the generic service host, running under a missing image's name"),
    }
)
# One loaded driver (SystemModuleInformation), driverquery's columns and why it loaded there.
MODULE_RECORD = Map(
    fields={
        "order": U32(),
        "name": Str(max_len=256),
        "display_name": Str(max_len=512),
        "driver_type": Str(max_len=32, doc="Kernel or File System"),
        "image": Str(max_len=4096),
        "start": U32(),
        "group": Str(max_len=256),
        "tag": Nullable(U32()),
        "object_name": Str(max_len=512),
        "load_time": Str(max_len=64),
        "reason": Str(max_len=1024),
    }
)
# (name, object type, link target or nil), WinObj's columns.
DIRECTORY_ENTRY = Tuple(items=(Str(max_len=512), Str(max_len=64), Nullable(Str(max_len=4096))))
# (value name, REG_* type, data).
VALUE_ENTRY = Tuple(items=(NAME, U32(), Value()))


def _apis(*entries: tuple) -> tuple[Api, ...]:
    return tuple(Api(i, name, req, rep, doc) for i, (name, req, rep, doc) in enumerate(entries))


SYSTEM_SERVICES = Protocol(
    title="System services (\\KiSystemService)",
    max_message_length=2 << 20,
    doc="Every process's way into the kernel: processes, objects, registry, errors, shutdown.",
    statuses=(
        (S.STATUS_OBJECT_NAME_NOT_FOUND, "no object, key or value of that name"),
        (S.STATUS_OBJECT_PATH_NOT_FOUND, "a directory on the way does not exist"),
        (S.STATUS_OBJECT_NAME_COLLISION, "the name exists (ports, links, keys)"),
        (S.STATUS_OBJECT_NAME_INVALID, "an empty or malformed name component"),
        (S.STATUS_OBJECT_PATH_SYNTAX_BAD, "a path that does not start at the root"),
        (S.STATUS_OBJECT_TYPE_MISMATCH, "the object is not of the type the service wants"),
        (S.STATUS_NAME_TOO_LONG, "a name or endpoint longer than its limit"),
        (S.STATUS_CANNOT_DELETE, "a permanent object or a key with subkeys"),
        (S.STATUS_INVALID_CID, "no process with that pid"),
        (S.STATUS_INVALID_HANDLE, "the named process or object is gone"),
        (S.STATUS_INVALID_INFO_CLASS, "an information class the kernel does not serve"),
        (S.STATUS_INVALID_PARAMETER, "a value the service refuses (beyond the schema)"),
        (
            S.STATUS_ACCESS_DENIED,
            "acting on another process where only the caller (or SYSTEM) may; a user "
            "process in session 0 (session 0 isolation)",
        ),
        (S.STATUS_PRIVILEGE_NOT_HELD, "the caller's token lacks the privilege"),
        (S.STATUS_IMAGE_ALREADY_LOADED, "NtLoadDriver: the driver is loaded"),
        (S.STATUS_PROCESS_IS_TERMINATING, "the process is exiting"),
        (S.STATUS_SHUTDOWN_IN_PROGRESS, "the machine is shutting down"),
        (S.STATUS_TIMEOUT, "NtWaitForSingleObject: the wait timed out"),
        (S.STATUS_INSUFFICIENT_RESOURCES, "a table is full"),
        (S.STATUS_REGISTRY_CORRUPT, "a hive failed its integrity check"),
        (S.STATUS_REGISTRY_IO_FAILED, "a hive write failed"),
    ),
    apis=_apis(
        (
            "NtCreateUserProcess",
            {
                "image": PATH,
                "command_line": Str(max_len=32767),
                "environment": Dict(value=Str(max_len=32767)),
                "session": Int(lo=0, hi=255, optional=True),
                "suspended": Bool(optional=True, default=True),
                "current_directory": Str(max_len=4096, optional=True, default=""),
                # The SCM's CreateProcessAsUser: the service account's token (needs
                # SeAssignPrimaryTokenPrivilege), and a stand-in for an image the model lacks.
                "account": Str(max_len=256, optional=True, default=""),
                "standin": Bool(optional=True, default=False),
            },
            {"pid": U32(), "create_time": Str()},
            "Create a process of a known image (or, with standin, the generic service host "
            "under the image's name); its NT parent is the caller. Suspended until NtResumeThread.",
        ),
        ("NtResumeThread", {"pid": U32()}, {}, "Resume the initial thread of a suspended process."),
        (
            "NtTerminateProcess",
            {"pid": OPT_PID, "exit_status": U32()},
            {},
            "Terminate a process (0 = the caller). Terminating a critical process raises the profile's bugcheck.",
        ),
        (
            "NtSetInformationProcess",
            {"pid": OPT_PID, "info_class": Str(max_len=64), "value": Value(max_len=256)},
            {},
            "ProcessBreakOnTermination (RtlSetProcessIsCritical) and ProcessBasePriority, for the caller.",
        ),
        (
            "NtQueryInformationProcess",
            {"pid": U32()},
            {"process": PROCESS_RECORD},
            "One process record, exited ones included.",
        ),
        (
            "NtQuerySystemInformation",
            {"info_class": Str(max_len=64)},
            {
                "processes": List(item=PROCESS_RECORD, max_len=65536, optional=True),
                "modules": List(item=MODULE_RECORD, max_len=4096, optional=True),
            },
            "SystemProcessInformation: the process table; SystemModuleInformation: the loaded "
            "drivers in load order.",
        ),
        (
            "NtCreatePort",
            {"name": PATH, "max_message_length": U32()},
            {"endpoint": Str()},
            "Create a named port; a second creator gets STATUS_OBJECT_NAME_COLLISION.",
        ),
        (
            "NtOpenPort",
            {"name": PATH},
            {"endpoint": Str(), "max_message_length": U32(), "server_pid": U32()},
            "Look a port up by name (symbolic links followed).",
        ),
        (
            "NtCreateDirectoryObject",
            {"name": PATH, "permanent": Bool(optional=True, default=False)},
            {},
            "Create an object directory (OPENIF).",
        ),
        (
            "NtCreateSymbolicLinkObject",
            {"name": PATH, "target": PATH, "permanent": Bool(optional=True, default=False)},
            {},
            "Create a symbolic link object.",
        ),
        ("NtQuerySymbolicLinkObject", {"name": PATH}, {"target": Str()}, "Read a link's target."),
        ("NtMakeTemporaryObject", {"name": PATH}, {}, "Delete a named object (directory entry)."),
        (
            "NtQueryDirectoryObject",
            {"name": PATH},
            {"entries": List(item=DIRECTORY_ENTRY, max_len=65536)},
            "List a directory like WinObj.",
        ),
        (
            "NtCreateEvent",
            {
                "name": PATH,
                "manual_reset": Bool(optional=True, default=True),
                "initial_state": Bool(optional=True, default=False),
            },
            {},
            "Create or open a named event.",
        ),
        ("NtSetEvent", {"name": PATH}, {}, "Signal a named event."),
        (
            "NtWaitForSingleObject",
            {"name": PATH, "timeout_ms": Int(lo=0, hi=2**31, optional=True)},
            {},
            "Wait for a named event; STATUS_TIMEOUT at the deadline. The reply is deferred, no thread blocks.",
        ),
        (
            "NtRaiseHardError",
            {
                "status": U32(),
                "parameters": List(item=Value(max_len=1024), max_len=4),
                "unicode_mask": U32(optional=True, default=0),
                "response_option": U32(),
            },
            {"response": U32()},
            "Raise a hard error; OptionShutdownSystem from a system process bugchecks with the status.",
        ),
        ("NtSetDefaultHardErrorPort", {}, {}, "csrss: hard errors go to its ApiPort from now on."),
        (
            "NtShutdownSystem",
            {"action": U32()},
            {},
            "Orderly shutdown: stop every process, close the hives.",
        ),
        ("NtDisplayString", {"text": Str(max_len=4096)}, {}, "Print on the boot screen (autochk)."),
        (
            "NtLoadDriver",
            {"service_key": PATH},
            {},
            "Load the driver of a Services key (the SCM's auto- and demand-start drivers); "
            "SYSTEM only.",
        ),
        (
            "NtCreateKey",
            {"path": PATH, "volatile": Bool(optional=True, default=False)},
            {"created": Bool()},
            "Create (or open) a registry key.",
        ),
        ("NtOpenKey", {"path": PATH}, {}, "STATUS_SUCCESS when the key exists."),
        (
            "NtDeleteKey",
            {"path": PATH, "tree": Bool(optional=True, default=False)},
            {},
            "Delete a key (with tree: and everything below it).",
        ),
        (
            "NtSetValueKey",
            {"path": PATH, "name": NAME, "type": U32(), "data": Value()},
            {},
            "Write a value; acknowledged only once committed to the hive.",
        ),
        (
            "NtQueryValueKey",
            {"path": PATH, "name": NAME},
            {"type": U32(), "data": Value()},
            "Read a value.",
        ),
        ("NtDeleteValueKey", {"path": PATH, "name": NAME}, {}, "Delete a value."),
        ("NtEnumerateKey", {"path": PATH}, {"keys": List(max_len=65536)}, "Subkey names."),
        (
            "NtEnumerateValueKey",
            {"path": PATH},
            {"values": List(item=VALUE_ENTRY, max_len=65536)},
            "Values as [name, type, data].",
        ),
        (
            "NtQueryKey",
            {"path": PATH},
            {"info": Dict(value=Value())},
            "Subkey and value counts, last write time.",
        ),
        (
            "NtInitializeRegistry",
            {"flags": U32()},
            {},
            "CM_BOOT_FLAG_SMSS makes the registry writable; CM_BOOT_FLAG_ACCEPTED saves LastKnownGood.",
        ),
        (
            "CmImportRegFile",
            {"text": Str(max_len=(2 << 20) - 1024)},
            {"keys": U32(), "values": U32()},
            "Model extension: import .reg text atomically (reg import).",
        ),
        (
            "CmExportKey",
            {"path": PATH},
            {"text": Str()},
            "Model extension: export a key as .reg text.",
        ),
        (
            "CmImportBegin",
            {},
            {"handle": U32()},
            "Model extension: start a staged import (reg import of a large file).",
        ),
        (
            "CmImportOps",
            {"handle": U32(), "ops": REG_CHUNK},
            {"staged": U32()},
            "Model extension: stage one chunk of operations, msgpack [[kind 0-3, path, name, "
            "type, data bytes], ...] (nt/regwire.py); nothing is applied yet.",
        ),
        (
            "CmImportCommit",
            {"handle": U32()},
            {"keys": U32(), "values": U32()},
            "Model extension: apply every staged operation, all or nothing (one transaction per hive).",
        ),
        ("CmImportAbort", {"handle": U32()}, {}, "Model extension: drop a staged import."),
        (
            "CmExportBegin",
            {"path": PATH},
            {"handle": U32(), "keys": U32()},
            "Model extension: snapshot a subtree for reg export / reg query /s.",
        ),
        (
            "CmExportRead",
            {"handle": U32()},
            {"records": REG_CHUNK, "done": Bool()},
            "Model extension: the next chunk of the snapshot, msgpack [[path, [[name, type, "
            "data bytes], ...]], ...] in export order (nt/regwire.py).",
        ),
        (
            "NtCreateToken",
            {"pid": U32(), "token": Dict(value=Value(max_len=256), max_len=16)},
            {},
            "lsass only (SeCreateTokenPrivilege): a logon's token becomes the primary token of "
            "`pid`, a process not yet in the table (it takes it when it attaches): "
            "NtCreateToken and NtSetInformationProcess(ProcessAccessToken) in one.",
        ),
        (
            "NtUserCreateWindowStation",
            {"name": Str(max_len=MAX_WINSTA_NAME)},
            {"path": PATH},
            "win32k: create the caller's session's window station (`\\Windows\\WindowStations"
            "\\<name>` in session 0, `\\Sessions\\<n>\\Windows\\WindowStations\\<name>` "
            "in a user session); SYSTEM only; it goes when its creator exits.",
        ),
        (
            "NtUserCreateDesktop",
            {"window_station": Str(max_len=MAX_WINSTA_NAME), "name": Str(max_len=MAX_WINSTA_NAME)},
            {},
            "win32k: a desktop of one of the caller's session's window stations (Default, "
            "Winlogon, Screen-saver); SYSTEM only.",
        ),
    ),
)

ATTACH = Protocol(
    title="Debugger attach (\\KdAttachPort)",
    max_message_length=4096,
    doc="ntctl attaches here (same user, holding the boot key) and becomes a process of the machine.",
    apis=_apis(
        (
            "KdAttachProcess",
            {"image": Str(max_len=64), "session": Int(lo=0, hi=255, optional=True)},
            {"kernel_pid": U32()},
            "Record the caller (pid from the OS) in the process table as an attached process.",
        ),
    ),
)

SERVICE = {api.name: api.number for api in SYSTEM_SERVICES.apis}
