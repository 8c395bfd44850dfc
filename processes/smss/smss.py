"""smss.exe: the master Session Manager and its per-session instances (Vista+ model).

The master (started by the kernel, no session) does SmpInit: it becomes critical,
creates \\SmApiPort with two fixed threads, reads the Session Manager key, builds the
object directories and the DOS device links, runs BootExecute synchronously, creates the
paging files, lets the registry be written, writes the dynamic environment values, and
then creates session 0 and session 1 by starting a copy of itself in each. An instance
starts its session's csrss with the whole ``SubSystems\\Windows`` command line, waits for
csrss to connect back (SmpLoadSubSystem), starts the initial command suspended
(``wininit.exe`` for session 0, ``winlogon.exe`` for the others), has the master send
SbCreateSession (SmExecPgm), and exits. The master keeps watching csrss and the initial
commands: one that dies before it became critical is 0xC000021A.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any, NoReturn

from nt.bootstrap import Process
from nt.images import SYSTEM32
from nt.regpath import REG_SZ
from nt.status import NtStatus, nt_success
from nt.syscalls import NtError
from ports import sm
from ports.client import PortError
from ports.contract import Deferred
from ports.kernel import OPTION_SHUTDOWN_SYSTEM
from processes.smss import config as smconfig
from processes.smss import smstop
from processes.smss.cmdline import SMP_AUTOCHK_FLAG, SmCommandLineError, smp_parse_command_line
from processes.smss.images import expand_environment
from processes.smss.smloop import SmApi, subsystem_event
from processes.smss.smwatch import (
    EXECUTE_INITIAL_COMMAND_NAME,
    INITIAL_COMMAND_NAME,
    INITIALIZATION_NAME,
    SESSION_INSTANCE,
    SUBSYSTEM_NAME,
    Exits,
    SmpFailure,
    Watch,
)

SESSIONS = (0, 1)  # win10: services session 0, the console session 1
SUBSYSTEM_CONNECT_TIMEOUT_MS = 60_000  # sessions != 0 (smsubsys.c); session 0 waits forever
INITIAL_COMMAND_GRACE = 1.0  # s: how long a failed SmExecPgm waits to see its process die
ENVIRONMENT_KEY = smconfig.SESSION_MANAGER_KEY + r"\Environment"
PAGEFILE_DEFAULT_MB = 64


def terminate(proc: Process, failure: SmpFailure) -> NoReturn:
    """SmpTerminate: NtRaiseHardError(STATUS_SYSTEM_PROCESS_TERMINATED, OptionShutdownSystem).
    Called by the entry functions alone, with the failure a step raised."""
    proc.log.error(
        "smss.terminate", what=failure.what, status=failure.status, culprit_pid=failure.culprit
    )
    try:
        proc.nt.raise_hard_error(
            NtStatus.STATUS_SYSTEM_PROCESS_TERMINATED,
            [failure.what, failure.status, failure.culprit, 0],
            OPTION_SHUTDOWN_SYSTEM,
        )
    except (NtError, PortError):
        pass
    proc.exit(failure.status)


def fault_die(proc: Process, step: str) -> None:
    """``smss.exe@N:die_at=STEP``: the process is killed at that step (a test's window)."""
    if proc.fault("die_at") == step:
        proc.log.warning("fault.die", step=step)
        os.kill(os.getpid(), signal.SIGKILL)


# -- master --------------------------------------------------------------------
def master(proc: Process) -> int:
    try:
        return _master(proc)
    except SmpFailure as failure:
        terminate(proc, failure)


def _master(proc: Process) -> int:
    proc.set_critical()
    proc.nt.set_base_priority(11)
    exits = Exits(proc)
    watch = Watch(exits)  # listening before anything it watches can exist
    api = SmApi(proc, watch)
    proc.lpc.create_port(
        sm.SM_PORT_NAME,
        sm.SM_API_PORT,
        api.handlers(),
        accept=api.accept,
        threads=2,
        max_threads=2,
        allow=_system_or_admin,
    )
    try:
        cfg = load_data_from_registry(proc, exits)
    except (NtError, PortError, OSError, ValueError) as exc:
        status = getattr(exc, "status", NtStatus.STATUS_UNSUCCESSFUL)
        raise SmpFailure(INITIALIZATION_NAME, status) from exc
    proc.log.info("smss.init_done", sessions=list(SESSIONS), subsystems=list(cfg.subsystems))
    if proc.fault("exit_after_init"):
        return int(proc.fault("exit_after_init"), 0)
    api.sessions.update(SESSIONS)
    api.boot_sessions = frozenset(SESSIONS)
    for session in SESSIONS:
        watch.add(create_session(proc, cfg, session, exits), SESSION_INSTANCE, session)
    api.start_session = lambda session, reply: start_session(proc, cfg, api, session, reply)
    api.stop_session = lambda session, reply: smstop.stop_session(proc, api, exits, session, reply)
    wait_any(proc, watch)


def _system_or_admin(who: dict) -> bool:
    """\\SmApiPort's DACL: Administrators and SYSTEM GENERIC_ALL (sminit.c)."""
    token = who.get("token", {})
    return token.get("sid") == "S-1-5-18" or "S-1-5-32-544" in token.get("groups", [])


def load_data_from_registry(proc: Process, exits: Exits) -> smconfig.SessionManagerConfig:
    """SmpLoadDataFromRegistry, in its order (nt-spec §1.2 step 3.7)."""
    nt = proc.nt
    try:
        nt.delete_value(ENVIRONMENT_KEY, "SAFEBOOT_OPTION")
    except NtError:
        pass
    cfg = smconfig.load_session_manager_config(nt, proc.environment)
    for problem in cfg.problems:
        proc.log.warning("smss.config_problem", problem=problem)
    for directory in cfg.object_directories:
        nt.create_directory(directory, permanent=True)
    for name, target in cfg.dos_devices.items():
        nt.create_link(f"\\??\\{name}", target, permanent=True)
    nt.create_directory("\\Sessions", permanent=True)
    for command in cfg.boot_execute:
        execute_command(proc, cfg, command, exits)
    _known_dlls(proc, cfg)
    _paging_files(proc, cfg)
    nt.initialize_registry(0)  # CM_BOOT_FLAG_SMSS
    safeboot = proc.params["options"].get("safeboot")
    for name, value in smconfig.dynamic_environment(
        Path("/proc/cpuinfo").read_text(), safeboot, os.uname().machine
    ).items():
        nt.set_value(ENVIRONMENT_KEY, name, REG_SZ, value)
    return cfg


def execute_command(
    proc: Process, cfg: smconfig.SessionManagerConfig, command: str, exits: Exits
) -> None:
    """SmpExecuteCommand for BootExecute: native images, run synchronously, errors ignored."""
    try:
        parsed = smp_parse_command_line(command, cfg.environment, cfg.default_lib_path)
    except SmCommandLineError as exc:
        proc.log.warning("smss.boot_execute_failed", command=command, status=exc.status)
        return
    if parsed.package is None:
        what = (
            "program not found - skipping AUTOCHECK"
            if parsed.flags & SMP_AUTOCHK_FLAG
            else "image not found"
        )
        proc.log.warning(
            "smss.boot_execute_failed",
            command=command,
            reason=what,
            status=NtStatus.STATUS_OBJECT_NAME_NOT_FOUND,
        )
        return
    try:
        pid = proc.nt.create_process(parsed.image, parsed.command_line, cfg.environment, 0)
        proc.nt.resume(pid)
    except NtError as exc:  # e.g. killed while still suspended: errors are ignored here too
        proc.log.warning("smss.boot_execute_failed", command=command, status=exc.status)
        return
    status = exits.wait(pid)
    proc.log.info("smss.boot_execute", command=command, child_pid=pid, status=status)


def _known_dlls(proc: Process, cfg: smconfig.SessionManagerConfig) -> None:
    proc.nt.create_directory("\\KnownDlls", permanent=True)
    directory = cfg.known_dll_directory or SYSTEM32
    proc.nt.create_link(
        "\\KnownDlls\\KnownDllPath", "\\??\\" + directory.lstrip("\\?"), permanent=True
    )


def _paging_files(proc: Process, cfg: smconfig.SessionManagerConfig) -> None:
    """Create the paging files on the model's C: (sparse: size without disk use)."""
    for paging in cfg.paging_files or [smconfig.parse_paging_file("?:\\pagefile.sys")]:
        name = paging.path.split("\\")[-1] or "pagefile.sys"
        path = proc.root / "C" / name
        size_mb = paging.min_mb or PAGEFILE_DEFAULT_MB
        with open(path, "ab") as f:
            f.truncate(size_mb << 20)
        proc.log.info(
            "smss.paging_file",
            path=str(path),
            size_mb=size_mb,
            system_managed=paging.system_managed,
        )


def create_session(
    proc: Process, cfg: smconfig.SessionManagerConfig, session: int, exits: Exits
) -> int:
    """Start an smss instance for ``session`` (``smss.exe 0000000N 00000000``). The
    session's directory and SmSubSystemReady event are the master's: they outlive an
    instance that dies, so a healthy csrss connecting late is never refused for it."""
    command_line = f"\\SystemRoot\\System32\\smss.exe {session:08x} 00000000"
    try:
        proc.nt.create_directory(f"\\Sessions\\{session}", permanent=True)
        proc.nt.create_event(subsystem_event(session), manual_reset=True)
        pid = proc.nt.create_process(
            command_line.split()[0], command_line, cfg.environment, session
        )
    except NtError as exc:
        raise SmpFailure(INITIALIZATION_NAME, exc.status) from exc
    resume_or_blame(proc, pid, exits)
    proc.log.info("smss.session_create", target_session=session, instance_pid=pid)
    return pid


def start_session(
    proc: Process, cfg: smconfig.SessionManagerConfig, api: SmApi, session: int, reply: Deferred
) -> None:
    """SmpStartCsr's work for a session made on demand: an instance, watched like the
    boot's, whose end answers the request. One that dies before its session is ready
    fails the request, and what it had started in the session is stopped with it."""
    try:
        instance_pid = create_session(proc, cfg, session, api.watch.exits)
    except SmpFailure as failure:
        api.session_failed(session)
        reply.complete(failure.status)
        return

    def done(status: int, ready: bool) -> None:
        if ready:
            body = {
                "session_id": session,
                "csrss_pid": api.csrss_of(session),
                "initial_pid": api.initial_commands.get(session, 0),
            }
            reply.complete(NtStatus.STATUS_SUCCESS, body)
            return
        stopped, left = abandon_session(proc, instance_pid)
        failed = status if status and not nt_success(status) else NtStatus.STATUS_UNSUCCESSFUL
        proc.log.error(
            "smss.session_failed",
            target_session=session,
            instance_pid=instance_pid,
            status=failed,
            stopped=stopped,
            left_critical=left,
        )
        api.session_failed(session)
        reply.complete(failed)

    api.watch.add(instance_pid, SESSION_INSTANCE, session, on_end=done)


def abandon_session(proc: Process, instance_pid: int) -> tuple[list[int], list[int]]:
    """Stop what a failed instance started (a suspended csrss or initial command must not
    wait for ever). A process that already became critical cannot be stopped without a
    bugcheck; it is left running and named (pids stopped, pids left)."""
    stopped, left = [], []
    for p in proc.nt.processes():
        if p["parent_pid"] != instance_pid or p["state"] == "exited":
            continue
        if p["critical"]:
            left.append(p["pid"])
            continue
        try:
            proc.nt.terminate(p["pid"], NtStatus.STATUS_UNSUCCESSFUL)
            stopped.append(p["pid"])
        except NtError:
            pass  # it went by itself
    if left:
        proc.log.info(
            "divergence",
            what="a failed on-demand session's processes that already became critical are "
            "left running (stopping them would bugcheck the machine)",
            pids=left,
        )
    return stopped, left


def wait_any(proc: Process, watch: Watch) -> NoReturn:
    """NtWaitForMultipleObjects(WaitAny) on the session instances, csrss and the initial
    commands, woken by each exit event as it arrives. An instance that dies before its
    session is ready fails the boot ("Session Manager Initialization", naming it); csrss
    or an initial command that dies before it became critical is 0xC000021A."""
    pending = set(SESSIONS)
    while True:
        pid, status, watched, ready = watch.next_death()
        if watched.on_end is not None:  # an instance of a session made on demand
            watched.on_end(status, ready)
            continue
        if watched.session not in SESSIONS and not ready:
            # part of an on-demand session still being made: its instance fails the
            # request (SmpStartCsr), the machine stays up
            proc.log.warning(
                "smss.session_process_died", child_pid=pid, target_session=watched.session
            )
            continue
        if watched.what == SESSION_INSTANCE:
            if not ready:
                proc.log.error(
                    "smss.session_instance_died",
                    instance_pid=pid,
                    target_session=watched.session,
                    status=status,
                )
                raise SmpFailure(INITIALIZATION_NAME, status or NtStatus.STATUS_UNSUCCESSFUL, pid)
            pending.discard(watched.session)
            if not pending:
                proc.log.info("smss.sessions_created", sessions=list(SESSIONS))
            continue
        record = proc.nt.query_process(pid)
        if record.get("critical"):
            continue  # the kernel already raised the critical-process bugcheck
        raise SmpFailure(
            watched.what, record.get("exit_status") or status or NtStatus.STATUS_UNSUCCESSFUL, pid
        )


# -- instance ------------------------------------------------------------------
def instance(proc: Process, session: int) -> int:
    try:
        return _instance(proc, session)
    except SmpFailure as failure:
        if session not in SESSIONS:  # made on demand: the master fails the request
            proc.log.error(
                "smss.session_failed",
                what=failure.what,
                status=failure.status,
                culprit_pid=failure.culprit,
            )
            proc.exit(failure.status)
        terminate(proc, failure)


def _instance(proc: Process, session: int) -> int:
    exits = Exits(proc)
    try:
        cfg = smconfig.load_session_manager_config(proc.nt, proc.environment)
    except (NtError, PortError, ValueError) as exc:
        status = getattr(exc, "status", NtStatus.STATUS_UNSUCCESSFUL)
        raise SmpFailure(INITIALIZATION_NAME, status) from exc
    csrss = load_subsystem(proc, cfg, cfg.subsystem("Windows"), session, exits)
    initial = "wininit.exe" if session == 0 else "winlogon.exe"
    if session != 0 and cfg.execute:
        # SmpLoadSubSystemsForMuSession: the last Execute entry replaces the initial
        # command, after a 5-second sleep (smsubsys.c's "why??!"; nt-spec §7 #8).
        initial = cfg.execute[-1]
        proc.log.info("smss.execute_override", command=initial, delay_s=5)
        time.sleep(5)
    execute_initial_command(proc, cfg, initial, session, csrss, exits)
    proc.log.info("smss.session_ready", target_session=session, csrss_pid=csrss)
    return 0


def resume_or_blame(proc: Process, pid: int, exits: Exits) -> None:
    """NtResumeThread of a process smss just created. One killed while still suspended
    makes the resume fail; the death is its own, so it is blamed with its exit status
    ("Session Manager Initialization"), never the resume step (as for the initial
    command, nt-spec §1.9)."""
    try:
        proc.nt.resume(pid)
    except NtError as exc:
        dead = exits.wait(pid, INITIAL_COMMAND_GRACE)
        raise SmpFailure(INITIALIZATION_NAME, dead or exc.status, pid) from exc


def load_subsystem(proc: Process, cfg: Any, command: str | None, session: int, exits: Exits) -> int:
    """SmpLoadSubSystem: start csrss with the whole command line; wait for it to connect."""
    if not command:
        raise SmpFailure(INITIALIZATION_NAME, NtStatus.STATUS_OBJECT_NAME_NOT_FOUND)
    command_line = expand_environment(command, cfg.environment)
    image = command_line.split()[0]
    try:
        pid = proc.nt.create_process(image, command_line, cfg.environment, session)
    except NtError as exc:
        raise SmpFailure(INITIALIZATION_NAME, exc.status) from exc
    resume_or_blame(proc, pid, exits)
    proc.log.info(
        "smss.subsystem_start", subsystem_pid=pid, target_session=session, command_line=command_line
    )
    fault_die(proc, "subsystem_started")
    deadline = None if session == 0 else time.monotonic() + SUBSYSTEM_CONNECT_TIMEOUT_MS / 1000
    while proc.nt.wait_event(subsystem_event(session), 100) == NtStatus.STATUS_TIMEOUT:
        status = exits.exited(pid)
        if status is not None:
            # ReactOS would hang here for ever in session 0 (nt-spec §7 #3); the model
            # fails the initialisation instead, as the reliability notes (S5) expect.
            proc.log.error(
                "smss.subsystem_died_before_connect",
                subsystem_pid=pid,
                status=status,
                divergence="ReactOS hangs; Windows-like failure used",
            )
            raise SmpFailure(INITIALIZATION_NAME, status, pid)
        if deadline is not None and time.monotonic() > deadline:
            proc.nt.terminate(pid, NtStatus.STATUS_TIMEOUT)
            raise SmpFailure(INITIALIZATION_NAME, NtStatus.STATUS_TIMEOUT, pid)
    # smss's side of csrss's SmConnectToSm, before it goes on (csrss's own line may be
    # written after smss has already started the initial command)
    proc.log.info("smss.subsystem_connected", subsystem_pid=pid, target_session=session)
    return pid


def execute_initial_command(
    proc: Process, cfg: Any, command: str, session: int, csrss: int, exits: Exits
) -> int:
    """SmpExecuteInitialCommand: create it suspended, then SmExecPgm to the master, whose
    SbCreateSession has csrss register and resume it. A death of the process itself at
    any moment before that is blamed on it ("Windows Logon Process"), never on the step."""
    what = EXECUTE_INITIAL_COMMAND_NAME
    try:
        parsed = smp_parse_command_line(command, cfg.environment, cfg.default_lib_path)
        if parsed.package is None:
            raise NtError(NtStatus.STATUS_OBJECT_NAME_NOT_FOUND, command)
        pid = proc.nt.create_process(parsed.image, parsed.command_line, cfg.environment, session)
    except (NtError, SmCommandLineError) as exc:
        raise SmpFailure(what, exc.status) from exc
    fault_die(proc, "initial_command_created")
    if proc.fault("kill_initial_command") == "before_exec_pgm":
        proc.log.warning("fault.kill_initial_command", child_pid=pid)
        os.kill(pid, signal.SIGKILL)  # the window between its creation and SmExecPgm
    status = sm_exec_pgm(proc, pid, session)
    if status != NtStatus.STATUS_SUCCESS:
        dead = exits.exited(csrss)
        if dead is not None:  # csrss died before it became critical: the real cause
            raise SmpFailure(SUBSYSTEM_NAME, dead, csrss)
        dead = exits.wait(pid, INITIAL_COMMAND_GRACE)
        if dead is not None:  # killed while suspended: csrss could not resume it
            raise SmpFailure(INITIAL_COMMAND_NAME, dead or NtStatus.STATUS_UNSUCCESSFUL, pid)
        raise SmpFailure(what, status)
    proc.log.info("smss.initial_command", command=command, child_pid=pid, target_session=session)
    return pid


def sm_exec_pgm(proc: Process, pid: int, session: int) -> int:
    """SmExecPgm on \\SmApiPort as a plain client: the status of SbCreateSession."""
    try:
        conn = sm.SmConnectToSm(proc.lpc)
    except PortError as exc:
        return exc.status
    try:
        return sm.SmExecPgm(conn, pid, session=session).status
    except PortError as exc:
        return exc.status
    finally:
        conn.close()


def main(proc: Process) -> int:
    args = proc.command_line.split()
    if len(args) >= 2:
        return instance(proc, int(args[1], 16))
    return master(proc)


__all__ = ["main"]
