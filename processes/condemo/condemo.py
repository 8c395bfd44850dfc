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

ReadConsole in the model does not wait (consrv.py), so the program polls its input:
every 50 ms after a key, backing off to every 500 ms when nobody types.
"""

from __future__ import annotations

import time
from datetime import datetime

from nt import csrclient
from nt.bootstrap import Process
from ports.client import PortError

VERSION = "ConDemo 1.0 (ntmodel console demo) [Version 10.0.19045]"
PROMPT = "C:\\> "
DEFAULT_TICK_S = 5.0
DEFAULT_TICKS = 120
POLL_MIN_S, POLL_MAX_S = 0.05, 0.5
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

    def write(self, text: str) -> None:
        for i in range(0, len(text), 8192):  # WriteConsole's bound per call
            reply = self.csr.call(
                "ConsolepWriteConsole", {"handle": self.stdout, "text": text[i : i + 8192]}
            )
            if not reply.ok:
                raise PortError(reply.status, "WriteConsole")

    def read_line(self) -> str | None:
        """ReadConsole: a whole line (without CR/LF), or None when none was typed yet."""
        reply = self.csr.call("ConsolepReadConsole", {"handle": self.stdin, "max_chars": 1024})
        if not reply.ok:
            raise PortError(reply.status, "ReadConsole")
        text = reply.body["text"]
        return text.rstrip("\r\n") if text else None

    def run(self, tick_s: float, ticks: int) -> int:
        self.write(f"{VERSION}\n(c) ntmodel. Type 'help' for the commands.\n\n{PROMPT}")
        next_tick, done_ticks, poll = time.monotonic() + tick_s, 0, POLL_MIN_S
        while True:
            line = self.read_line()
            if line is not None:
                poll = POLL_MIN_S
                text, code = answer(line)
                self.proc.log.info("condemo.command", command=line.split(" ", 1)[0][:32])
                if code is not None:
                    return code
                self.write(text + PROMPT)
            else:
                poll = min(poll * 2, POLL_MAX_S)
            now = time.monotonic()
            if done_ticks < ticks and now >= next_tick:
                done_ticks += 1
                next_tick = now + tick_s
                self.write(f"\r[{datetime.now():%H:%M:%S}] tick {done_ticks}\n{PROMPT}")
            time.sleep(poll)


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
