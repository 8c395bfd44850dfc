"""`ntctl console PID`: another process's console, seen and typed into through csrss.

The way a Windows tool does it: AttachConsole(PID) (ConsolepAttach on the ApiPort of the
csrss of PID's session) gives ntctl handles to the same console; ReadConsoleOutputCharacter
(ConsolepReadConsoleOutputString) reads its screen buffer, WriteConsoleInput types into its
input buffer, FreeConsole leaves it. Nothing here reads csrss's memory or the program's
logs: what is shown is what the console holds (its buffer keeps the last 300 rows).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from nt.status import NtStatus

READ_CHUNK = 8192  # ReadConsoleOutputString's bound per call
INPUT_CHUNK = 1024  # WriteConsoleInput's bound per call


class ConsoleError(Exception):
    """What the user is told, with the status that said it."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AttachedConsole:
    """ntctl attached to the console of ``pid`` (a CsrClient of that session's csrss)."""

    def __init__(self, csr: Any, pid: int, image: str) -> None:
        self.csr, self.pid = csr, pid
        reply = csr.call("ConsolepAttach", {"process_id": pid})
        if reply.status == NtStatus.STATUS_INVALID_HANDLE:
            raise ConsoleError(f"process {pid} ({image}) has no console", reply.status)
        if not reply.ok:
            raise ConsoleError(f"AttachConsole({pid}) failed", reply.status)
        self.stdin = reply.body["input_handle"]
        self.stdout = reply.body["output_handle"]

    def _call(self, api: str, body: dict) -> dict:
        reply = self.csr.call(api, body)
        if not reply.ok:
            raise ConsoleError(f"{api} failed", reply.status)
        return reply.body

    def title(self) -> str:
        return self._call("ConsolepGetTitle", {})["title"]

    def screen(self) -> tuple[list[str], int]:
        """The rows from the top of the buffer to the cursor's row, and the cursor row."""
        info = self._call("ConsolepGetScreenBufferInfo", {"handle": self.stdout})
        width, rows = info["size_x"], info["cursor_y"] + 1
        per_call = max(1, READ_CHUNK // width)
        text = ""
        for y in range(0, rows, per_call):
            count = min(per_call, rows - y) * width
            body = {"handle": self.stdout, "x": 0, "y": y, "count": count}
            text += self._call("ConsolepReadConsoleOutputString", body)["text"]
        lines = [text[i : i + width].rstrip() for i in range(0, len(text), width)]
        return lines, info["cursor_y"]

    def send(self, text: str) -> int:
        """Type ``text`` and Enter (a console line ends with CR)."""
        keys = list(text.replace("\r\n", "\r").replace("\n", "\r"))
        if not keys or keys[-1] != "\r":
            keys.append("\r")
        written = 0
        for i in range(0, len(keys), INPUT_CHUNK):
            body = {"handle": self.stdin, "records": keys[i : i + INPUT_CHUNK]}
            written += self._call("ConsolepWriteConsoleInput", body)["written"]
        return written

    def pending_input(self) -> int:
        return self._call("ConsolepGetNumberOfInputEvents", {"handle": self.stdin})["count"]

    def others_attached(self) -> bool:
        """Whether a process besides ntctl still uses the console (the program is alive)."""
        return self._call("ConsolepGetProcessList", {"max_count": 16})["count"] > 1

    def close(self) -> None:
        self.csr.call("ConsolepFree", {}, timeout=2.0)

    def settle(self, timeout: float = 3.0, quiet: float = 0.2) -> None:
        """After typing: until the program took the input and the screen stopped changing."""
        deadline = time.monotonic() + timeout
        last, still_since = None, time.monotonic()
        while time.monotonic() < deadline:
            snap = self.screen()
            now = time.monotonic()
            if snap != last:
                last, still_since = snap, now
            elif self.pending_input() == 0 and now - still_since >= quiet:
                return
            time.sleep(0.05)


def new_lines(old: list[str], new: list[str]) -> list[str]:
    """The complete rows of ``new`` that ``old`` did not show, allowing for the rows the
    buffer scrolled away at its top since (the smallest shift that lines them up)."""
    for shift in range(len(old) + 1):
        kept = len(old) - shift
        if new[:kept] == old[shift:]:
            return new[kept:]
    return new


def follow(
    console: AttachedConsole,
    out: Callable[[str], None],
    interval: float = 0.25,
    stop: Callable[[], bool] = lambda: False,
) -> str:
    """Print complete rows as they appear until the program leaves, or until ``stop()``
    (called before each look at the screen) says the user is done."""
    shown: list[str] = []
    while True:
        done = stop()  # may type lines first; True once there is nothing more to do
        lines, cursor = console.screen()
        complete = lines[:cursor]
        for line in new_lines(shown, complete):
            out(line)
        shown = complete
        if not console.others_attached():
            return "exited"
        if done:
            return "stopped"
        time.sleep(interval)
