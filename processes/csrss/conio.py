"""CONSRV's handle-based APIs: console handles, input and screen buffers (consrv/coninput.c,
conoutput.c, handle.c), on the objects of ``console.py``.

Every routine runs under the console server's lock, finds the caller's handle (the wrong
kind is STATUS_INVALID_HANDLE, as ``ConSrvGetObject`` answers) and checks every number
against server-side limits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nt.status import NtStatus
from ports.contract import PENDING, ClientContext, Handler, HandlerResult
from processes.csrss import console as con
from processes.csrss.console import ConsoleIoHandle, ScreenBuffer

if TYPE_CHECKING:
    from processes.csrss.consrv import ConsoleServer

INVALID = NtStatus.STATUS_INVALID_PARAMETER
CODE_ATTRIBUTE = (
    3  # CONSOLE_READOUTPUTCODE CodeType: CODE_ASCII 1, CODE_UNICODE 2, CODE_ATTRIBUTE 3
)


class ConsoleIo:
    def __init__(self, server: ConsoleServer) -> None:
        self.server = server

    def _io(
        self, client: ClientContext, handle: int, kind: int | None = None
    ) -> ConsoleIoHandle | int:
        return self.server.io_handle(client, handle, kind)

    # --- handles -------------------------------------------------------------------------

    def open_console(self, message: dict, client: ClientContext) -> dict | int:
        """SrvOpenConsole: CONIN$ / CONOUT$."""
        with self.server.lock:
            found = self.server.console_of(client)
            if isinstance(found, int):
                return found
            data, console = found
            kind = message["handle_type"]
            buffer = console.active if kind == con.HANDLE_OUTPUT else None
            flags = con.HANDLE_FLAG_INHERIT if message["inherit"] else 0
            io = ConsoleIoHandle(
                kind, console, buffer, message["desired_access"], message["share_mode"], flags
            )
            handle = data.insert(io)
        return {"handle": handle} if handle is not None else NtStatus.STATUS_INSUFFICIENT_RESOURCES

    def duplicate_handle(self, message: dict, client: ClientContext) -> dict | int:
        with self.server.lock:
            io = self._io(client, message["source_handle"])
            if isinstance(io, int):
                return io
            data = self.server.client_data(client)
            assert data is not None
            options = message["options"]
            access = io.access if options & con.DUPLICATE_SAME_ACCESS else message["desired_access"]
            flags = con.HANDLE_FLAG_INHERIT if message["inherit"] else 0
            handle = data.insert(
                ConsoleIoHandle(io.kind, io.console, io.buffer, access, io.share, flags)
            )
            if handle is None:
                return NtStatus.STATUS_INSUFFICIENT_RESOURCES
            if options & con.DUPLICATE_CLOSE_SOURCE:
                del data.handles[message["source_handle"]]
        return {"handle": handle}

    def get_handle_information(self, message: dict, client: ClientContext) -> dict | int:
        with self.server.lock:
            io = self._io(client, message["handle"])
            return io if isinstance(io, int) else {"flags": io.flags}

    def set_handle_information(self, message: dict, client: ClientContext) -> int:
        mask = message["mask"] & (con.HANDLE_FLAG_INHERIT | con.HANDLE_FLAG_PROTECT_FROM_CLOSE)
        with self.server.lock:
            io = self._io(client, message["handle"])
            if isinstance(io, int):
                return io
            io.flags = (io.flags & ~mask) | (message["flags"] & mask)
        return NtStatus.STATUS_SUCCESS

    def close_handle(self, message: dict, client: ClientContext) -> int:
        with self.server.lock:
            io = self._io(client, message["handle"])
            if isinstance(io, int):
                return io
            data = self.server.client_data(client)
            assert data is not None
            del data.handles[message["handle"]]
        return NtStatus.STATUS_SUCCESS

    def verify_io_handle(self, message: dict, client: ClientContext) -> dict:
        with self.server.lock:
            return {"valid": not isinstance(self._io(client, message["handle"]), int)}

    # --- modes ---------------------------------------------------------------------------

    def get_mode(self, message: dict, client: ClientContext) -> dict | int:
        with self.server.lock:
            io = self._io(client, message["handle"])
            if isinstance(io, int):
                return io
            mode = io.console.input_mode if io.kind == con.HANDLE_INPUT else io.buffer.mode
        return {"mode": mode}

    def set_mode(self, message: dict, client: ClientContext) -> int:
        mode = message["mode"]
        with self.server.lock:
            io = self._io(client, message["handle"])
            if isinstance(io, int):
                return io
            if io.kind == con.HANDLE_INPUT:
                if mode & ~con.VALID_INPUT_MODES:
                    return INVALID
                io.console.input_mode = mode
            else:
                if mode & ~con.VALID_OUTPUT_MODES:
                    return INVALID
                io.buffer.mode = mode
        return NtStatus.STATUS_SUCCESS

    # --- input ---------------------------------------------------------------------------

    def write_console_input(self, message: dict, client: ClientContext) -> dict | int:
        """SrvWriteConsoleInput; with processed input, ^C becomes CTRL_C_EVENT."""
        with self.server.lock:
            io = self._io(client, message["handle"], con.HANDLE_INPUT)
            if isinstance(io, int):
                return io
            console, written = io.console, 0
            for record in message["records"]:
                if record == "\x03" and console.input_mode & con.ENABLE_PROCESSED_INPUT:
                    self.server.send_ctrl_event(console, con.CTRL_C_EVENT, 0)
                elif len(console.input) >= con.INPUT_BUFFER_MAX:
                    break
                else:
                    console.input.append(record)
                written += 1
            done = console.satisfy_reads()
        for wait, text in done:
            wait.reply.complete(NtStatus.STATUS_SUCCESS, {"text": text})
        return {"written": written}

    def get_console_input(self, message: dict, client: ClientContext) -> dict | int:
        """ReadConsoleInput / PeekConsoleInput, without waiting."""
        with self.server.lock:
            io = self._io(client, message["handle"], con.HANDLE_INPUT)
            if isinstance(io, int):
                return io
            queue = io.console.input
            count = min(message["count"], len(queue))
            records = (
                list(queue)[:count] if message["peek"] else [queue.popleft() for _ in range(count)]
            )
        return {"records": records}

    def read_console(self, message: dict, client: ClientContext) -> HandlerResult:
        """SrvReadConsole: what is there, or the request waits (CsrReplyPending) until
        WriteConsoleInput brings a line, the caller leaves the console, or it exits."""
        with self.server.lock:
            io = self._io(client, message["handle"], con.HANDLE_INPUT)
            if isinstance(io, int):
                return io
            text = io.console.read_input(message["max_chars"])
            if text:
                return {"text": text}
            wait = con.ReadWait(client.pid, message["max_chars"], client.defer())
            io.console.read_waits.append(wait)
            return PENDING

    def get_number_of_input_events(self, message: dict, client: ClientContext) -> dict | int:
        with self.server.lock:
            io = self._io(client, message["handle"], con.HANDLE_INPUT)
            return io if isinstance(io, int) else {"count": len(io.console.input)}

    def flush_input_buffer(self, message: dict, client: ClientContext) -> int:
        with self.server.lock:
            io = self._io(client, message["handle"], con.HANDLE_INPUT)
            if isinstance(io, int):
                return io
            io.console.input.clear()
        return NtStatus.STATUS_SUCCESS

    # --- output --------------------------------------------------------------------------

    def write_console(self, message: dict, client: ClientContext) -> dict | int:
        with self.server.lock:
            io = self._io(client, message["handle"], con.HANDLE_OUTPUT)
            if isinstance(io, int):
                return io
            return {"written": io.buffer.write(message["text"])}

    def read_console_output_string(self, message: dict, client: ClientContext) -> dict | int:
        """SrvReadConsoleOutputString: characters (CODE_ASCII/CODE_UNICODE) from a cell on;
        attributes (CODE_ATTRIBUTE) are not kept by the model's buffers."""
        if message["code_type"] == CODE_ATTRIBUTE:
            return NtStatus.STATUS_NOT_SUPPORTED
        with self.server.lock:
            io = self._io(client, message["handle"], con.HANDLE_OUTPUT)
            if isinstance(io, int):
                return io
            b = io.buffer
            if message["x"] >= b.size_x or message["y"] >= b.size_y:
                return INVALID
            text = b.read_chars(message["x"], message["y"], message["count"])
        return {"text": text, "count": len(text)}

    def get_screen_buffer_info(self, message: dict, client: ClientContext) -> dict | int:
        with self.server.lock:
            io = self._io(client, message["handle"], con.HANDLE_OUTPUT)
            if isinstance(io, int):
                return io
            b = io.buffer
            left, top, right, bottom = b.window()
            return {
                "size_x": b.size_x,
                "size_y": b.size_y,
                "cursor_x": b.cursor_x,
                "cursor_y": b.cursor_y,
                "attributes": b.attributes,
                "window_left": left,
                "window_top": top,
                "window_right": right,
                "window_bottom": bottom,
                "max_window_x": min(b.size_x, con.DEFAULT_WINDOW[0]),
                "max_window_y": min(b.size_y, con.DEFAULT_WINDOW[1]),
            }

    def get_cursor_info(self, message: dict, client: ClientContext) -> dict | int:
        with self.server.lock:
            io = self._io(client, message["handle"], con.HANDLE_OUTPUT)
            if isinstance(io, int):
                return io
            return {"size": io.buffer.cursor_size, "visible": io.buffer.cursor_visible}

    def set_cursor_info(self, message: dict, client: ClientContext) -> int:
        if not 1 <= message["size"] <= 100:
            return INVALID
        with self.server.lock:
            io = self._io(client, message["handle"], con.HANDLE_OUTPUT)
            if isinstance(io, int):
                return io
            io.buffer.cursor_size, io.buffer.cursor_visible = message["size"], message["visible"]
        return NtStatus.STATUS_SUCCESS

    def set_cursor_position(self, message: dict, client: ClientContext) -> int:
        with self.server.lock:
            io = self._io(client, message["handle"], con.HANDLE_OUTPUT)
            if isinstance(io, int):
                return io
            if message["x"] >= io.buffer.size_x or message["y"] >= io.buffer.size_y:
                return INVALID
            io.buffer.cursor_x, io.buffer.cursor_y = message["x"], message["y"]
        return NtStatus.STATUS_SUCCESS

    def set_text_attribute(self, message: dict, client: ClientContext) -> int:
        with self.server.lock:
            io = self._io(client, message["handle"], con.HANDLE_OUTPUT)
            if isinstance(io, int):
                return io
            io.buffer.attributes = message["attributes"]
        return NtStatus.STATUS_SUCCESS

    def set_screen_buffer_size(self, message: dict, client: ClientContext) -> int:
        """The new size must hold the window and stay under the server's cap."""
        x, y = message["size_x"], message["size_y"]
        if not (
            con.DEFAULT_WINDOW[0] <= x <= con.MAX_SIZE[0]
            and con.DEFAULT_WINDOW[1] <= y <= con.MAX_SIZE[1]
        ):
            return INVALID
        with self.server.lock:
            io = self._io(client, message["handle"], con.HANDLE_OUTPUT)
            if isinstance(io, int):
                return io
            io.buffer.resize(x, y)
        return NtStatus.STATUS_SUCCESS

    def create_screen_buffer(self, message: dict, client: ClientContext) -> dict | int:
        if message["buffer_type"] != con.CONSOLE_TEXTMODE_BUFFER:
            return NtStatus.STATUS_NOT_SUPPORTED  # graphics buffers are NTVDM's
        with self.server.lock:
            found = self.server.console_of(client)
            if isinstance(found, int):
                return found
            data, console = found
            if len(console.buffers) >= con.SCREEN_BUFFERS_PER_CONSOLE_MAX:
                return NtStatus.STATUS_INSUFFICIENT_RESOURCES
            buffer = ScreenBuffer()
            flags = con.HANDLE_FLAG_INHERIT if message["inherit"] else 0
            io = ConsoleIoHandle(
                con.HANDLE_OUTPUT,
                console,
                buffer,
                message["desired_access"],
                message["share_mode"],
                flags,
            )
            handle = data.insert(io)
            if handle is None:
                return NtStatus.STATUS_INSUFFICIENT_RESOURCES
            console.buffers.append(buffer)
        return {"handle": handle}

    def set_active_screen_buffer(self, message: dict, client: ClientContext) -> int:
        with self.server.lock:
            io = self._io(client, message["handle"], con.HANDLE_OUTPUT)
            if isinstance(io, int):
                return io
            io.console.active = io.buffer
        return NtStatus.STATUS_SUCCESS


def io_handlers(server: ConsoleServer) -> dict[str, Handler]:
    io = ConsoleIo(server)
    return {
        "ConsolepOpenConsole": io.open_console,
        "ConsolepGetConsoleInput": io.get_console_input,
        "ConsolepWriteConsoleInput": io.write_console_input,
        "ConsolepGetMode": io.get_mode,
        "ConsolepGetNumberOfInputEvents": io.get_number_of_input_events,
        "ConsolepGetScreenBufferInfo": io.get_screen_buffer_info,
        "ConsolepReadConsoleOutputString": io.read_console_output_string,
        "ConsolepGetCursorInfo": io.get_cursor_info,
        "ConsolepSetMode": io.set_mode,
        "ConsolepSetActiveScreenBuffer": io.set_active_screen_buffer,
        "ConsolepFlushInputBuffer": io.flush_input_buffer,
        "ConsolepSetScreenBufferSize": io.set_screen_buffer_size,
        "ConsolepSetCursorPosition": io.set_cursor_position,
        "ConsolepSetCursorInfo": io.set_cursor_info,
        "ConsolepSetTextAttribute": io.set_text_attribute,
        "ConsolepReadConsole": io.read_console,
        "ConsolepWriteConsole": io.write_console,
        "ConsolepDuplicateHandle": io.duplicate_handle,
        "ConsolepGetHandleInformation": io.get_handle_information,
        "ConsolepSetHandleInformation": io.set_handle_information,
        "ConsolepCloseHandle": io.close_handle,
        "ConsolepVerifyIoHandle": io.verify_io_handle,
        "ConsolepCreateScreenBuffer": io.create_screen_buffer,
    }
