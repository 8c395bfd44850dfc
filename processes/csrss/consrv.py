"""CONSRV, winsrv's Console server (win32ss/user/winsrv/consrv; nt-spec.md §3.9).

Server 2, API base 512, ``ConsolepMaxApiNumber`` 599 (87 APIs). A console per client:
allocated at connect time for a console application (or by AllocConsole), shared with the
children that inherit it, destroyed with its last process. The APIs a console program
needs are implemented on the objects in ``console.py``; fonts, palettes, aliases, command
history editing, VDM/OS2/IME hooks and the rest answer STATUS_NOT_IMPLEMENTED.

A caller without a console, or with a handle that is not in its table or of the wrong
kind, gets STATUS_INVALID_HANDLE. Titles are length-capped by the schema and stored as
data, never formatted (MS07-021). A ReadConsole with no complete line (raw: no character)
is parked on the console's read wait queue and replied to when WriteConsoleInput brings
one (CsrReplyPending / CsrNotifyWait); it ends with STATUS_INVALID_HANDLE when its process
leaves the console. Ctrl events are recorded on
the target processes (``ConsoleProcessData.ctrl_events``) and logged: the model has no
channel to start a client's CtrlRoutine.
"""

from __future__ import annotations

import threading

from nt.log import get_logger
from nt.status import NtStatus
from ports.contract import NOT_IMPLEMENTED, ClientContext, Reply
from ports.csr import (
    CONSRV_APIS,
    CONSRV_CONNECT_INFO,
    CONSRV_FIRST_API_NUMBER,
    ConsolepMaxApiNumber,
)
from ports.schema import SchemaError, validate
from processes.csrss import console as con
from processes.csrss.api import ServerDll, ShutdownResult, install_tables
from processes.csrss.conio import io_handlers
from processes.csrss.console import Console, ConsoleIoHandle, ConsoleProcessData
from processes.csrss.process import CsrProcess, CsrProcessFlags, CsrShutdownFlags

log = get_logger()

INVALID_HANDLE = NtStatus.STATUS_INVALID_HANDLE
CONSOLES_MAX = 256
CONTEXT_FLAGS = CsrShutdownFlags.CsrShutdownSystem | CsrShutdownFlags.CsrShutdownOther
EWX_SHUTDOWN = 0x1


class ConsoleServer:
    """consrv's globals for one csrss (the console list), and its API routines."""

    def __init__(self, server_dll: ServerDll) -> None:
        assert server_dll.csr is not None
        self.dll = server_dll
        self.csr = server_dll.csr
        self.consoles: dict[int, Console] = {}
        self._next_handle = 1
        # Lock order is process lock -> console lock (NewProcessCallback runs under the
        # process lock), so under this lock consrv finds processes in its own map only.
        self.lock = threading.RLock()
        self.by_pid: dict[int, ConsoleProcessData] = {}

    # --- lookups -------------------------------------------------------------------------

    def data(self, process: CsrProcess | None) -> ConsoleProcessData | None:
        return process.server_data[self.dll.server_id] if process else None

    def client_data(self, client: ClientContext) -> ConsoleProcessData | None:
        with self.lock:
            return self.by_pid.get(client.pid)

    def console_of(self, client: ClientContext) -> tuple[ConsoleProcessData, Console] | int:
        data = self.client_data(client)
        if data is None or data.console is None:
            return INVALID_HANDLE
        return data, data.console

    def io_handle(
        self, client: ClientContext, handle: int, kind: int | None = None
    ) -> ConsoleIoHandle | int:
        data = self.client_data(client)
        io = data.handles.get(handle) if data and data.console else None
        if io is None or io.console is not data.console or (kind and io.kind != kind):
            return INVALID_HANDLE
        return io

    # --- console lifetime ----------------------------------------------------------------

    def _attach(self, data: ConsoleProcessData, console: Console, std: bool) -> dict | int:
        if std:
            handles = data.std_handles(console)
            if handles is None:
                return NtStatus.STATUS_INSUFFICIENT_RESOURCES
        else:
            handles = {"console_handle": console.handle}
        data.console = console
        console.processes.insert(0, data.pid)
        return handles

    def _new_console(self, title: str) -> Console | None:
        if len(self.consoles) >= CONSOLES_MAX:
            return None
        console = Console(self._next_handle, title=title, original_title=title)
        self.consoles[console.handle] = console
        self._next_handle += 1
        log.info("csr.console_create", console=console.handle)
        return console

    def _detach(self, data: ConsoleProcessData) -> None:
        console = data.console
        data.handles.clear()
        data.console = None
        if console is None:
            return
        # its parked reads end with its handles (ReactOS: the wait is killed with the
        # handle; the reply is STATUS_INVALID_HANDLE, if anyone still waits for it)
        for wait in console.drop_reads(data.pid):
            wait.reply.complete(INVALID_HANDLE)
        if data.pid in console.processes:
            console.processes.remove(data.pid)
        if not console.processes:
            self.consoles.pop(console.handle, None)
            log.info("csr.console_destroy", console=console.handle)

    def alloc(self, message: dict, client: ClientContext) -> dict | int:
        """SrvAllocConsole: a new console for a process that has none."""
        with self.lock:
            data = self.client_data(client)
            if data is None or data.console is not None:
                return NtStatus.STATUS_ACCESS_DENIED
            console = self._new_console(message["title"] or message["app_name"])
            if console is None:
                return NtStatus.STATUS_INSUFFICIENT_RESOURCES
            return self._attach(data, console, std=True)

    def free(self, message: dict, client: ClientContext) -> int:
        with self.lock:
            data = self.client_data(client)
            if data is None or data.console is None:
                return INVALID_HANDLE
            self._detach(data)
        return NtStatus.STATUS_SUCCESS

    def attach(self, message: dict, client: ClientContext) -> dict | int:
        """SrvAttachConsole: join another process's console (-1: the parent's)."""
        process = self.csr.client_process(client)
        pid = message["process_id"]
        if pid == con.ATTACH_PARENT_PROCESS:
            pid = process.parent_pid if process else 0
        with self.lock:
            data = self.by_pid.get(client.pid)
            if data is None or data.console is not None:
                return NtStatus.STATUS_ACCESS_DENIED
            target = self.by_pid.get(pid)
            if target is None or target.console is None:
                return INVALID_HANDLE
            return self._attach(data, target.console, std=True)

    # --- titles and lists ----------------------------------------------------------------

    def get_title(self, message: dict, client: ClientContext) -> dict | int:
        with self.lock:
            found = self.console_of(client)
            if isinstance(found, int):
                return found
            title = found[1].title
        return {"title": title[: message["max_length"]], "length": len(title)}

    def set_title(self, message: dict, client: ClientContext) -> int:
        with self.lock:
            found = self.console_of(client)
            if isinstance(found, int):
                return found
            found[1].title = message["title"]
        return NtStatus.STATUS_SUCCESS

    def get_process_list(self, message: dict, client: ClientContext) -> dict | int:
        """GetConsoleProcessList: the ids when they fit, and always the count."""
        with self.lock:
            found = self.console_of(client)
            if isinstance(found, int):
                return found
            pids = list(found[1].processes)
        fits = len(pids) <= message["max_count"]
        return {"process_ids": pids if fits else [], "count": len(pids)}

    def generate_ctrl_event(self, message: dict, client: ClientContext) -> int:
        """SrvGenerateConsoleCtrlEvent: CTRL_C or CTRL_BREAK to a group (0: everyone)."""
        event, group = message["ctrl_event"], message["process_group_id"]
        if event not in (con.CTRL_C_EVENT, con.CTRL_BREAK_EVENT):
            return NtStatus.STATUS_INVALID_PARAMETER
        with self.lock:
            found = self.console_of(client)
            if isinstance(found, int):
                return found
            self.send_ctrl_event(found[1], event, group)
        return NtStatus.STATUS_SUCCESS

    def send_ctrl_event(self, console: Console, event: int, group: int) -> None:
        for pid in list(console.processes):
            target = self.by_pid.get(pid)
            if target is not None and (group == 0 or target.process_group_id == group):
                target.ctrl_events.append(event)
                log.info(
                    "csr.console_ctrl_event",
                    console=console.handle,
                    target_pid=pid,
                    ctrl_event=event,
                )

    def get_history(self, message: dict, client: ClientContext) -> dict | int:
        with self.lock:
            found = self.console_of(client)
            if isinstance(found, int):
                return found
            c = found[1]
            return {
                "history_buffer_size": c.history_buffer_size,
                "number_of_history_buffers": c.number_of_history_buffers,
                "flags": c.history_flags,
            }

    def set_history(self, message: dict, client: ClientContext) -> int:
        with self.lock:
            found = self.console_of(client)
            if isinstance(found, int):
                return found
            c = found[1]
            c.history_buffer_size = message["history_buffer_size"]
            c.number_of_history_buffers = message["number_of_history_buffers"]
            c.history_flags = message["flags"]
        return NtStatus.STATUS_SUCCESS

    def get_cp(self, message: dict, client: ClientContext) -> dict | int:
        with self.lock:
            found = self.console_of(client)
            if isinstance(found, int):
                return found
            c = found[1]
            return {"code_page": c.output_cp if message["output"] else c.input_cp}

    def set_cp(self, message: dict, client: ClientContext) -> int:
        if message["code_page"] not in con.CODE_PAGES:
            return NtStatus.STATUS_INVALID_PARAMETER
        with self.lock:
            found = self.console_of(client)
            if isinstance(found, int):
                return found
            if message["output"]:
                found[1].output_cp = message["code_page"]
            else:
                found[1].input_cp = message["code_page"]
        return NtStatus.STATUS_SUCCESS

    # --- callbacks -----------------------------------------------------------------------

    def new_process(self, parent: CsrProcess | None, process: CsrProcess) -> int:
        """ConSrvNewProcess: a console child inherits its parent's inheritable handles."""
        data = ConsoleProcessData(process.pid)
        process.server_data[self.dll.server_id] = data
        with self.lock:
            self.by_pid[process.pid] = data
        source = self.data(parent)
        if process.flags & CsrProcessFlags.CsrProcessCreateNewGroup or source is None:
            data.process_group_id = process.pid
        else:
            data.process_group_id = source.process_group_id
        if source and source.console and process.flags & CsrProcessFlags.CsrProcessIsConsoleApp:
            with self.lock:
                data.inherited_console = source.console
                data.handles = {
                    h: ConsoleIoHandle(
                        io.kind, io.console, io.buffer, io.access, io.share, io.flags
                    )
                    for h, io in source.handles.items()
                    if io.flags & con.HANDLE_FLAG_INHERIT
                }
        return NtStatus.STATUS_SUCCESS

    def connect(self, process: CsrProcess, info: dict) -> Reply:
        """ConSrvConnect: a console application gets a new console or its parent's."""
        try:
            body = validate(CONSRV_CONNECT_INFO, info)
        except SchemaError:
            return Reply(NtStatus.STATUS_UNSUCCESSFUL)
        data = self.data(process)
        if data is None or not body["is_console_app"]:
            return Reply(NtStatus.STATUS_SUCCESS)
        with self.lock:
            if data.console is not None:
                return Reply(
                    NtStatus.STATUS_SUCCESS,
                    {"connection_info": {"console_handle": data.console.handle}},
                )
            if body["console_handle"] == 0:
                data.handles.clear()
                console = self._new_console(body["title"] or body["app_name"])
                if console is None:
                    return Reply(NtStatus.STATUS_INSUFFICIENT_RESOURCES)
                result = self._attach(data, console, std=True)
            elif data.inherited_console and data.inherited_console.handle == body["console_handle"]:
                if data.inherited_console.handle not in self.consoles:
                    return Reply(INVALID_HANDLE)
                result = self._attach(data, data.inherited_console, std=False)
            else:
                return Reply(INVALID_HANDLE)
        if isinstance(result, int):
            return Reply(result)
        return Reply(NtStatus.STATUS_SUCCESS, {"connection_info": result})

    def disconnect(self, process: CsrProcess) -> None:
        """ConSrvDisconnect: the last process of a console takes it away."""
        data = self.data(process)
        if data is not None:
            with self.lock:
                self._detach(data)
                if self.by_pid.get(process.pid) is data:
                    del self.by_pid[process.pid]

    def client_shutdown(self, process: CsrProcess, flags: int, first_phase: bool) -> int:
        """ConsoleClientShutdown."""
        data = self.data(process)
        logoff = flags & EWX_SHUTDOWN == 0
        if logoff and process.shutdown_flags & CONTEXT_FLAGS:
            return ShutdownResult.CsrShutdownNonCsrProcess
        if data is not None and data.console is not None:
            event = con.CTRL_LOGOFF_EVENT if logoff else con.CTRL_SHUTDOWN_EVENT
            data.ctrl_events.append(event)
            log.info("csr.console_ctrl_event", target_pid=process.pid, ctrl_event=event)
        elif first_phase:
            return ShutdownResult.CsrShutdownNonCsrProcess
        self.csr.terminate(process.pid, 0)
        return ShutdownResult.CsrShutdownCsrProcess


def ConServerDllInitialization(server_dll: ServerDll) -> int:  # noqa: N802 - export name
    server = ConsoleServer(server_dll)
    handlers = {api.name: NOT_IMPLEMENTED for api in CONSRV_APIS}
    handlers.update(
        ConsolepAlloc=server.alloc,
        ConsolepFree=server.free,
        ConsolepAttach=server.attach,
        ConsolepGetTitle=server.get_title,
        ConsolepSetTitle=server.set_title,
        ConsolepGetProcessList=server.get_process_list,
        ConsolepGenerateCtrlEvent=server.generate_ctrl_event,
        ConsolepGetHistory=server.get_history,
        ConsolepSetHistory=server.set_history,
        ConsolepGetCP=server.get_cp,
        ConsolepSetCP=server.set_cp,
        **io_handlers(server),
    )
    install_tables(server_dll, CONSRV_APIS, handlers, CONSRV_FIRST_API_NUMBER, ConsolepMaxApiNumber)
    server_dll.state = server
    server_dll.size_of_process_data = 1  # one CONSOLE_PROCESS_DATA per process
    server_dll.connect_callback = server.connect
    server_dll.disconnect_callback = server.disconnect
    server_dll.new_process_callback = server.new_process
    server_dll.shutdown_process_callback = server.client_shutdown
    return NtStatus.STATUS_SUCCESS
