r"""First-boot setup: the first administrator account, as Windows' out-of-box experience
asks for one. Nothing in the repository holds a password, so a fresh machine has none
enabled (the built-in Administrator is disabled, as since Vista):

- ``./run.sh`` in a terminal, on a first boot (no SAM hive yet), asks for a name and a
  password before the machine starts and creates the account once lsass is up;
- a detached or scripted boot takes ``--setup-user NAME --password-stdin`` (or prompts
  for the password when stdin is a terminal), or creates none: ``ntctl user add`` then
  works as the machine's operator.

The account is made through lsass's SAM server like ``ntctl user add --admin``; the
password goes to it in one port message (to a child ``ntctl`` through a pipe, never argv
or the environment).
"""

from __future__ import annotations

import getpass
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ntctl.machine import REPO

SAM_HIVE = Path("C") / "Windows" / "System32" / "config" / "SAM"


@dataclass
class FirstAccount:
    name: str
    password: bytes


def first_boot(root: Path) -> bool:
    return not (root / SAM_HIVE).exists()


def prompt_first_account(ask: Callable[[str], str] = input) -> FirstAccount | None:
    """Ask on the terminal; an empty name skips the setup."""
    print("Set up the first account of this machine (an administrator).")
    name = ask("User name (empty: none): ").strip()
    if not name:
        return None
    while True:
        first = getpass.getpass("Password: ")
        if getpass.getpass("Retype the password to confirm: ") == first:
            return FirstAccount(name, first.encode("utf-8"))
        print("The passwords do not match. Try again.")


def create_account(root: Path, account: FirstAccount, timeout: float = 60.0) -> tuple[bool, str]:
    """``ntctl user add NAME --admin --password-stdin`` once lsass's SAM server answers."""
    deadline = time.monotonic() + timeout
    while True:
        r = subprocess.run(
            [sys.executable, "-m", "ntctl", "user", "add", account.name, "--admin"]
            + ["--password-stdin", "--root", str(root)],
            cwd=REPO,
            input=account.password + b"\n",
            capture_output=True,
            timeout=timeout,
        )
        out = (r.stdout + r.stderr).decode(errors="replace").strip()
        # lsass may still be starting (no port yet): try again until the deadline.
        if r.returncode == 0 or "OBJECT_NAME_NOT_FOUND" not in out or time.monotonic() > deadline:
            return r.returncode == 0, out
        time.sleep(0.2)
