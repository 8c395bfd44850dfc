"""Console objects of CONSRV: consoles, their input and screen buffers, handle tables.

A headless model of ``win32ss/user/winsrv/consrv/condrv``: a screen buffer is a bounded
grid of rows (what WriteConsole leaves behind, scrolled like a real console), the input
buffer a bounded queue of characters (one INPUT_RECORD key event each). Every size is
capped server-side (reliability-security.md, MS10-069/MS11-056: quotas and server-side
bounds, never the client's sizes).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

ENABLE_PROCESSED_INPUT = 0x1
ENABLE_LINE_INPUT = 0x2
ENABLE_ECHO_INPUT = 0x4
ENABLE_MOUSE_INPUT = 0x10
VALID_INPUT_MODES = 0x1FF  # ... | INSERT_MODE | QUICK_EDIT | EXTENDED_FLAGS | AUTO_POSITION
DEFAULT_INPUT_MODE = (
    ENABLE_PROCESSED_INPUT | ENABLE_LINE_INPUT | ENABLE_ECHO_INPUT | ENABLE_MOUSE_INPUT
)
ENABLE_PROCESSED_OUTPUT = 0x1
ENABLE_WRAP_AT_EOL_OUTPUT = 0x2
# Windows 10 adds VIRTUAL_TERMINAL_PROCESSING 0x4, DISABLE_NEWLINE_AUTO_RETURN 0x8 and
# LVB_GRID_WORLDWIDE 0x10 (ReactOS accepts only 0x3); the model stores them.
VALID_OUTPUT_MODES = 0x1F
DEFAULT_OUTPUT_MODE = ENABLE_PROCESSED_OUTPUT | ENABLE_WRAP_AT_EOL_OUTPUT

CONSOLE_TEXTMODE_BUFFER = 1
CONSOLE_GRAPHICS_BUFFER = 2
HANDLE_INPUT, HANDLE_OUTPUT = 1, 2
HANDLE_FLAG_INHERIT = 0x1
HANDLE_FLAG_PROTECT_FROM_CLOSE = 0x2
DUPLICATE_CLOSE_SOURCE = 0x1
DUPLICATE_SAME_ACCESS = 0x2
CTRL_C_EVENT, CTRL_BREAK_EVENT, CTRL_CLOSE_EVENT = 0, 1, 2
CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT = 5, 6
ATTACH_PARENT_PROCESS = 0xFFFFFFFF

DEFAULT_SIZE = (80, 300)
DEFAULT_WINDOW = (80, 25)
MAX_SIZE = (512, 3000)
INPUT_BUFFER_MAX = 4096
HANDLES_PER_PROCESS_MAX = 256
SCREEN_BUFFERS_PER_CONSOLE_MAX = 16
CTRL_EVENTS_KEPT = 64
CODE_PAGES = frozenset(
    {
        437,
        737,
        775,
        850,
        852,
        855,
        857,
        862,
        866,
        874,
        932,
        936,
        949,
        950,
        1250,
        1251,
        1252,
        1253,
        1254,
        1255,
        1256,
        1257,
        1258,
        20127,
        65001,
    }
)
DEFAULT_CODE_PAGE = 437  # the OEM code page of en-US


@dataclass(eq=False)
class ScreenBuffer:
    size_x: int = DEFAULT_SIZE[0]
    size_y: int = DEFAULT_SIZE[1]
    cursor_x: int = 0
    cursor_y: int = 0
    attributes: int = 0x07
    mode: int = DEFAULT_OUTPUT_MODE
    cursor_size: int = 25
    cursor_visible: bool = True
    rows: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rows = [""] * self.size_y

    def write(self, text: str) -> int:
        """WriteConsole: processed output interprets CR, LF, BS, TAB and BEL."""
        processed = self.mode & ENABLE_PROCESSED_OUTPUT
        for ch in text:
            if processed and ch in "\r\n\b\t\a":
                self._control(ch)
            else:
                self._put(ch)
        return len(text)

    def _control(self, ch: str) -> None:
        if ch == "\n":
            self._newline()
        elif ch == "\r":
            self.cursor_x = 0
        elif ch == "\b":
            self.cursor_x = max(0, self.cursor_x - 1)
        elif ch == "\t":
            for _ in range(8 - self.cursor_x % 8):
                if self.cursor_x >= self.size_x:
                    break
                self._put(" ")

    def _put(self, ch: str) -> None:
        if self.cursor_x >= self.size_x:
            if self.mode & ENABLE_WRAP_AT_EOL_OUTPUT:
                self._newline()
            else:
                self.cursor_x = self.size_x - 1
        row = self.rows[self.cursor_y]
        if len(row) < self.cursor_x:
            row += " " * (self.cursor_x - len(row))
        self.rows[self.cursor_y] = row[: self.cursor_x] + ch + row[self.cursor_x + 1 :]
        self.cursor_x += 1

    def _newline(self) -> None:
        self.cursor_x = 0
        if self.cursor_y + 1 < self.size_y:
            self.cursor_y += 1
        else:
            self.rows.pop(0)
            self.rows.append("")

    def resize(self, size_x: int, size_y: int) -> None:
        rows = (
            [row[:size_x] for row in self.rows[-size_y:]] if size_y <= len(self.rows) else self.rows
        )
        self.rows = rows + [""] * (size_y - len(rows))
        self.size_x, self.size_y = size_x, size_y
        self.cursor_x = min(self.cursor_x, size_x - 1)
        self.cursor_y = min(self.cursor_y, size_y - 1)

    def lines(self) -> list[str]:
        """The text written so far, trailing blank rows dropped."""
        last = max((i for i, row in enumerate(self.rows) if row), default=-1)
        return [row.rstrip() for row in self.rows[: last + 1]]

    def read_chars(self, x: int, y: int, count: int) -> str:
        """ReadConsoleOutputCharacter: ``count`` cells from (x, y), row after row, blank
        cells as spaces; stops at the end of the buffer."""
        out: list[str] = []
        while count > 0 and y < self.size_y:
            row = self.rows[y].ljust(self.size_x)[x:]
            out.append(row[:count])
            count -= len(row[:count])
            x, y = 0, y + 1
        return "".join(out)

    def window(self) -> tuple[int, int, int, int]:
        width = min(DEFAULT_WINDOW[0], self.size_x)
        height = min(DEFAULT_WINDOW[1], self.size_y)
        top = max(0, min(self.cursor_y - height + 1, self.size_y - height))
        return 0, top, width - 1, top + height - 1


@dataclass(eq=False)
class ReadWait:
    """A ReadConsole parked until input can satisfy it (CsrCreateWait on the console's
    ReadWaitQueue): the caller's reply is sent when a line (or, raw, a character) arrives."""

    pid: int
    max_chars: int
    reply: Any  # ports.contract.Deferred


@dataclass(eq=False)
class Console:
    handle: int
    title: str = ""
    original_title: str = ""
    input: deque[str] = field(default_factory=deque)
    input_mode: int = DEFAULT_INPUT_MODE
    active: ScreenBuffer = field(default_factory=ScreenBuffer)
    buffers: list[ScreenBuffer] = field(default_factory=list)
    processes: list[int] = field(default_factory=list)  # newest first, like ProcessList
    input_cp: int = DEFAULT_CODE_PAGE
    output_cp: int = DEFAULT_CODE_PAGE
    history_buffer_size: int = 50
    number_of_history_buffers: int = 4
    history_flags: int = 0
    read_waits: list[ReadWait] = field(default_factory=list)  # oldest first

    def __post_init__(self) -> None:
        self.buffers.append(self.active)

    def satisfy_reads(self) -> list[tuple[ReadWait, str]]:
        """CsrNotifyWait after new input: the parked reads it completes, in their order."""
        done: list[tuple[ReadWait, str]] = []
        while self.read_waits:
            text = self.read_input(self.read_waits[0].max_chars)
            if not text:
                break
            done.append((self.read_waits.pop(0), text))
        return done

    def drop_reads(self, pid: int | None = None) -> list[ReadWait]:
        """The parked reads of ``pid`` (every one when None), taken off the queue."""
        gone = [w for w in self.read_waits if pid is None or w.pid == pid]
        self.read_waits = [w for w in self.read_waits if w not in gone]
        return gone

    def read_input(self, max_chars: int) -> str:
        """What a ReadConsole takes now: a whole line in line mode, else what is there ("" when
        it must wait)."""
        if self.input_mode & ENABLE_LINE_INPUT:
            try:
                end = list(self.input).index("\r")
            except ValueError:
                return ""
            count = min(end + 1, max_chars)
            text = "".join(self.input.popleft() for _ in range(count))
            if text.endswith("\r") and count < max_chars:
                text += "\n"
            if self.input_mode & ENABLE_ECHO_INPUT:
                self.active.write(text)
            return text
        count = min(len(self.input), max_chars)
        return "".join(self.input.popleft() for _ in range(count))


@dataclass(eq=False)
class ConsoleIoHandle:
    kind: int  # HANDLE_INPUT or HANDLE_OUTPUT
    console: Console
    buffer: ScreenBuffer | None  # the screen buffer of an output handle
    access: int = 0xC0000000
    share: int = 3
    flags: int = 0  # HANDLE_FLAG_*


@dataclass(eq=False)
class ConsoleProcessData:
    """CONSOLE_PROCESS_DATA: the process's console, handle table and ctrl events."""

    pid: int
    console: Console | None = None
    inherited_console: Console | None = None
    handles: dict[int, ConsoleIoHandle] = field(default_factory=dict)
    process_group_id: int = 0
    ctrl_events: deque[int] = field(default_factory=lambda: deque(maxlen=CTRL_EVENTS_KEPT))

    def insert(self, io: ConsoleIoHandle) -> int | None:
        """ConSrvInsertObject: the first free slot i gives handle (i << 2) | 3."""
        for i in range(HANDLES_PER_PROCESS_MAX):
            handle = (i << 2) | 0x3
            if handle not in self.handles:
                self.handles[handle] = io
                return handle
        return None

    def std_handles(self, console: Console) -> dict[str, int] | None:
        """The three standard handles of a process that just got a console."""
        handles = [
            self.insert(ConsoleIoHandle(HANDLE_INPUT, console, None, flags=HANDLE_FLAG_INHERIT)),
            self.insert(
                ConsoleIoHandle(HANDLE_OUTPUT, console, console.active, flags=HANDLE_FLAG_INHERIT)
            ),
            self.insert(
                ConsoleIoHandle(HANDLE_OUTPUT, console, console.active, flags=HANDLE_FLAG_INHERIT)
            ),
        ]
        if None in handles:
            return None
        return {
            "console_handle": console.handle,
            "input_handle": handles[0],
            "output_handle": handles[1],
            "error_handle": handles[2],
        }
