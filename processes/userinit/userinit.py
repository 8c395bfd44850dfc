r"""userinit.exe: the user's first process (nt-spec §1.7; seed 004's logon phase).

winlogon starts it with the user's token once her profile is loaded. It runs, in order:

1. the shell from ``Winlogon\Shell`` (``explorer.exe``) first: in Windows the Run keys and
   the Startup folder are processed once the shell is up (by explorer), so their programs
   start after it, as here;
2. ``HKLM\...\CurrentVersion\Run`` and ``RunOnce`` (RunOnce values are deleted before
   their command runs, as Windows does unless the name starts with ``!``, which deletes
   it after), then the same two keys of HKCU (her NTUSER.DAT);
3. the Startup folders: all users' ``C:\ProgramData\Microsoft\Windows\Start Menu\Programs\
   Startup`` and hers under ``AppData\Roaming``. A shortcut cannot be a .lnk here: an item
   is a ``.cmd`` file whose first non-blank line (not ``@``/``rem``/``::``) is a command
   line (a divergence, logged);

then it exits.

A command whose image the model does not have is logged (``userinit.run_failed``; Windows
would show "Windows cannot find ..."), and the next one runs.
"""

from __future__ import annotations

from pathlib import Path

from nt import csrclient
from nt.bootstrap import Process
from nt.dospath import host_path
from nt.syscalls import NtError
from ports.client import PortError

RUN_KEYS = (
    r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Run",
    r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\RunOnce",
    r"HKCU\SOFTWARE\Microsoft\Windows\CurrentVersion\Run",
    r"HKCU\SOFTWARE\Microsoft\Windows\CurrentVersion\RunOnce",
)
WINLOGON_KEY = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon"
COMMON_STARTUP = r"C:\ProgramData\Microsoft\Windows\Start Menu\Programs\Startup"
USER_STARTUP = r"AppData\Roaming\Microsoft\Windows\Start Menu\Programs\Startup"
DIVERGENCE = "Startup folder items are .cmd files holding a command line, not .lnk shortcuts"


def image_of(command_line: str) -> str:
    """The program of a command line ("C:\\Program Files\\x.exe" /a → its path)."""
    text = command_line.strip()
    if text.startswith('"'):
        return text[1:].split('"', 1)[0]
    return text.split(" ", 1)[0]


def startup_command(path: Path) -> str | None:
    """The command line of a Startup item (.cmd): its first line that is not a comment."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        text = line.strip().lstrip("@").strip()
        low = text.lower()
        if not text or low.startswith(("rem ", "::")) or low in ("rem", "echo off"):
            continue
        return text
    return None


class Userinit:
    def __init__(self, proc: Process, csr: csrclient.CsrClient) -> None:
        self.proc = proc
        self.csr = csr
        self.started: list[int] = []

    def run(self, command_line: str, source: str) -> int:
        """CreateProcess of a command line in this session (her token is inherited)."""
        env = self.proc.environment
        try:
            pid = self.proc.nt.create_process(
                image_of(command_line), command_line, env, self.proc.session, suspended=True
            )
            reply = self.csr.call("BasepCreateProcess", {"process_id": pid})
            if not reply.ok:
                self.proc.nt.terminate(pid, reply.status)
                raise NtError(reply.status, "BasepCreateProcess")
            self.proc.nt.resume(pid)
        except NtError as exc:
            self.proc.log.warning(
                "userinit.run_failed", source=source, command=command_line[:512], status=exc.status
            )
            return 0
        self.proc.log.info("userinit.run", source=source, command=command_line[:512], child_pid=pid)
        self.started.append(pid)
        return pid

    def run_key(self, key: str) -> None:
        try:
            values = self.proc.nt.enum_values(key)
        except NtError:
            return  # no such key: nothing to run
        once = key.endswith("RunOnce")
        for name, _type, data in values:
            if not isinstance(data, str) or not data.strip():
                continue
            if once and not name.startswith("!"):
                self._delete(key, name)  # deleted before it runs
            self.run(data, f"{key}\\{name}")
            if once and name.startswith("!"):
                self._delete(key, name)  # "!": deleted once it ran

    def _delete(self, key: str, name: str) -> None:
        try:
            self.proc.nt.delete_value(key, name)
        except NtError as exc:
            self.proc.log.warning("userinit.runonce_delete_failed", value=name, status=exc.status)

    def startup_folders(self) -> None:
        profile = self.proc.environment.get("USERPROFILE", "")
        folders = [COMMON_STARTUP] + ([f"{profile}\\{USER_STARTUP}"] if profile else [])
        for folder in folders:
            path = host_path(self.proc.root, folder)
            if not path.is_dir():
                continue
            for item in sorted(path.iterdir()):
                if item.suffix.lower() not in (".cmd", ".bat"):
                    self.proc.log.info("userinit.startup_skipped", item=item.name)
                    continue
                command = startup_command(item)
                if command:
                    self.run(command, f"{folder}\\{item.name}")

    def shell(self) -> int:
        try:
            shell = str(self.proc.nt.query_value(WINLOGON_KEY, "Shell")[1]).strip()
        except NtError:
            shell = ""
        return self.run(shell or "explorer.exe", "Winlogon\\Shell")


def main(proc: Process) -> int:
    try:
        csr = csrclient.connect(proc.lpc, proc.session)
    except PortError as exc:
        proc.log.error("userinit.csr_connect_failed", status=exc.status)
        return exc.status
    if proc.fault("stall"):  # tests: a userinit still running when it is killed
        import time

        time.sleep(float(proc.fault("stall") or 0))
    init = Userinit(proc, csr)
    shell = init.shell()
    proc.log.info("divergence", what=DIVERGENCE)
    for key in RUN_KEYS:
        init.run_key(key)
    init.startup_folders()
    proc.log.info("userinit.done", started=len(init.started), shell_pid=shell)
    csr.close()
    return 0
