"""condemo.exe: the small console program users can play with (issue 9).

A Win32 console application the way kernel32 makes one: CsrClientConnectToServer to its
session's csrss, AllocConsole (ConsolepAlloc: a console of its own, with the three
standard handles), then WriteConsole and ReadConsole on it. It prints a banner, one
``tick`` line every ``/tick SECONDS`` (at most ``/ticks N`` of them, so an idle machine
does not fill its logs), and answers a tiny prompt:

    C:\\> time      The current time is: 10:41:07.12
    C:\\> echo X    X
    C:\\> help      the commands
    C:\\> exit      the program ends (exit code 0); ``exit N`` with code N

Anything else gets cmd.exe's answer ("'x' is not recognized as an internal or external
command, ..."). ``ntctl console PID`` shows its screen and types into it.

ReadConsole waits for a line (consrv parks the request, as NT does), so a reader thread
sits in it while the main thread writes the ticks. The reader has a connection of its
own to the ApiPort: NT's LPC port takes requests from every thread of the process at
once, the model's connection one at a time.
"""

from __future__ import annotations

import queue
import threading
import time
from datetime import datetime

from nt import csrclient
from nt.bootstrap import Process
from ports.client import PortError

VERSION = "ConDemo 1.0 (ntmodel console demo) [Version 10.0.19045]"
PROMPT = "C:\\> "
DEFAULT_TICK_S = 5.0
DEFAULT_TICKS = 120
HELP = (
    "time      Displays the current time.\n"
    "echo X    Displays X.\n"
    "ver       Displays the program's version.\n"
    "exit [N]  Ends the program (exit code N, default 0).\n"
)


def parse_args(command_line: str) -> tuple[float, int]:
    """``condemo.exe [/tick SECONDS] [/ticks N]``; bad values keep the defaults."""
    words = command_line.split()[1:]
    tick, ticks = DEFAULT_TICK_S, DEFAULT_TICKS
    for flag, value in zip(words, words[1:], strict=False):
        try:
            if flag.lower() == "/tick":
                tick = min(max(float(value), 0.1), 3600.0)
            elif flag.lower() == "/ticks":
                ticks = min(max(int(value), 0), 100000)
        except ValueError:
            continue
    return tick, ticks


def answer(line: str) -> tuple[str, int | None]:
    """One command line → (what to print, exit code or None to go on)."""
    verb, _, rest = line.strip().partition(" ")
    match verb.lower():
        case "":
            return "", None
        case "time":
            now = datetime.now()
            return f"The current time is: {now:%H:%M:%S}.{now.microsecond // 10000:02}\n", None
        case "echo":
            return (rest + "\n" if rest else "ECHO is on.\n"), None
        case "ver":
            return f"\n{VERSION}\n", None
        case "help":
            return HELP, None
        case "exit":
            try:
                return "", int(rest.strip() or "0", 0)
            except ValueError:
                return "", 0
    return (
        f"'{verb}' is not recognized as an internal or external command,\n"
        "operable program or batch file.\n"
    ), None


class ConsoleProgram:
    def __init__(self, proc: Process, csr: csrclient.CsrClient, handles: dict) -> None:
        self.proc, self.csr = proc, csr
        self.stdin, self.stdout = handles["input_handle"], handles["output_handle"]
        # one line read per answer, as a program reading on its one thread: type-ahead
        # stays in the input buffer (not echoed) until the prompt is back
        self.want_line = threading.Semaphore(1)

    def write(self, text: str) -> None:
        for i in range(0, len(text), 8192):  # WriteConsole's bound per call
            reply = self.csr.call(
                "ConsolepWriteConsole", {"handle": self.stdout, "text": text[i : i + 8192]}
            )
            if not reply.ok:
                raise PortError(reply.status, "WriteConsole")

    def read_lines(self, lines: queue.Queue[str | PortError]) -> None:
        """The reader thread: ReadConsole, parked in csrss until a line is typed."""
        try:
            conn = csrclient.connect(self.proc.lpc, self.proc.session, servers=())
        except PortError as exc:
            lines.put(exc)
            return
        try:
            while True:
                self.want_line.acquire()  # the previous line was answered: read the next
                body = {"handle": self.stdin, "max_chars": 1024}
                reply = conn.call("ConsolepReadConsole", body, timeout=None)
                if not reply.ok:
                    lines.put(PortError(reply.status, "ReadConsole"))
                    return
                lines.put(reply.body["text"].rstrip("\r\n"))
        finally:
            conn.close()

    def run(self, tick_s: float, ticks: int) -> int:
        self.write(f"{VERSION}\n(c) ntmodel. Type 'help' for the commands.\n\n{PROMPT}")
        lines: queue.Queue[str | PortError] = queue.Queue()
        threading.Thread(target=self.read_lines, args=(lines,), daemon=True).start()
        next_tick, done_ticks = time.monotonic() + tick_s, 0
        while True:
            wait = max(0.0, next_tick - time.monotonic()) if done_ticks < ticks else None
            try:
                line = lines.get(timeout=wait)
            except queue.Empty:
                done_ticks += 1
                next_tick = time.monotonic() + tick_s
                self.write(f"\r[{datetime.now():%H:%M:%S}] tick {done_ticks}\n{PROMPT}")
                continue
            if isinstance(line, PortError):
                raise line
            text, code = answer(line)
            self.proc.log.info("condemo.command", command=line.split(" ", 1)[0][:32])
            if code is not None:
                return code
            self.write(text + PROMPT)
            self.want_line.release()


def main(proc: Process) -> int:
    try:
        csr = csrclient.connect(proc.lpc, proc.session)
    except PortError as exc:
        proc.log.error("condemo.csr_connect_failed", status=exc.status)
        return exc.status
    reply = csr.call("ConsolepAlloc", {"title": "condemo.exe", "app_name": "condemo.exe"})
    if not reply.ok:
        proc.log.error("condemo.alloc_console_failed", status=reply.status)
        return reply.status
    tick_s, ticks = parse_args(proc.command_line)
    proc.log.info("condemo.ready", console=reply.body["console_handle"], tick_s=tick_s, ticks=ticks)
    try:
        return ConsoleProgram(proc, csr, reply.body).run(tick_s, ticks)
    except PortError as exc:
        proc.log.error("condemo.console_lost", status=exc.status)
        return exc.status
    finally:
        csr.call("ConsolepFree", {}, timeout=2.0)
        csr.close()
