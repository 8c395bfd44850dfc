"""The Textual app behind ``ntctl top`` (see ntctl/top.py for what it shows and why)."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Input, Static

from ntctl import topdata
from ntctl.logview import format_event

COLUMNS = (
    "Process",
    "PID",
    "Session",
    "User",
    "CPU %",
    "USS MiB",
    "Critical",
    "Description",
    "Services",
)
SERVICE_COLUMNS = ("Name", "Display name", "State", "Start type", "PID")
ROW_STYLE = {"new": "on dark_green", "gone": "on dark_red", "": ""}


class ConfirmKill(ModalScreen[bool]):
    """Kill? Says what the kill will do (a bugcheck, or nothing) before it is done."""

    BINDINGS = [Binding("y", "yes", "Kill"), Binding("n,escape", "no", "Cancel")]
    DEFAULT_CSS = """
    ConfirmKill { align: center middle; }
    #question { width: 70; height: auto; padding: 1 2; border: thick $error; background: $surface; }
    """

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        yield Static(self.text + "\n\nKill it?  y = yes, n = no", id="question")

    def action_yes(self) -> None:
        self.dismiss(True)

    def action_no(self) -> None:
        self.dismiss(False)


class StopScreen(ModalScreen[None]):
    """The STOP screen of the bugcheck that ended the machine (from its dump)."""

    BINDINGS = [
        Binding("escape,enter", "close", "Back to the last state"),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self, renderable: Any) -> None:
        super().__init__()
        self.renderable = renderable

    def compose(self) -> ComposeResult:
        yield Static(self.renderable, id="stop")

    def action_close(self) -> None:
        self.dismiss(None)


class TopApp(App[None]):
    CSS = """
    #status { height: 1; background: $boost; }
    #table { height: 1fr; }
    #table.hidden { display: none; }
    #services { height: 1fr; display: none; }
    #services.visible { display: block; }
    #detail { height: 13; border-top: solid $accent; }
    #filter { display: none; }
    #filter.visible { display: block; }
    """
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("k", "kill", "Kill"),
        Binding("l", "follow", "Follow log"),
        Binding("slash", "filter", "Filter"),
        Binding("s", "services", "Services"),
    ]
    TITLE = "ntctl top"

    def __init__(self, poller: topdata.Poller, interval: float) -> None:
        super().__init__()
        self.poller = poller
        self.interval = interval
        self.filter_text = ""
        self.follow = False
        self.show_services = False
        self.stopped: str | None = None  # why the machine is gone, once it is
        self.stop_record: dict | None = None
        self.shown: list[int] = []  # pids in table order
        self.cells: dict[int, tuple] = {}  # what the table shows, to redraw only changes
        self.selected: int | None = None
        self._ports: tuple[int | None, list[str], list[str]] = (None, [], [])
        self._status_text = ""
        self.service_cells: list[tuple] = []  # what the services view shows
        self._detail_text = ""

    # -- layout ----------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static("", id="status")
        yield DataTable(id="table", cursor_type="row", zebra_stripes=False)
        yield DataTable(id="services", cursor_type="row", zebra_stripes=False)
        yield Static("", id="detail")
        yield Input(
            placeholder="filter: image, pid or command line (Enter to apply, Esc to clear)",
            id="filter",
        )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#table", DataTable).add_columns(*COLUMNS)
        self.query_one("#services", DataTable).add_columns(*SERVICE_COLUMNS)
        self.tick()
        self.set_interval(self.interval, self.tick)

    # -- refresh ---------------------------------------------------------------------
    def tick(self) -> None:
        if self.stopped is not None:
            if self.stop_record is None and self.stopped.startswith("bugcheck"):
                self._look_for_dump()
            return
        try:
            if not self.poller.alive():
                raise ConnectionError("the kernel is gone")
            before = {p for p, r in self.poller.rows.items() if r.critical and r.gone_at is None}
            rows = self.poller.poll()
        except self.poller.failures():  # the machine ended (a bug would crash: not hidden)
            self._machine_stopped()
            return
        if any(rows[p].gone_at is not None for p in before) and self._bugchecked():
            self._machine_stopped()  # a critical process died: the kernel is bugchecking
        self.render_table()
        if self.show_services:
            self.render_services()
        elif self.follow:
            self.render_detail()

    def render_table(self) -> None:
        table = self.query_one("#table", DataTable)
        now = time.monotonic()
        ordered = topdata.filter_tree(
            topdata.tree_order(self.poller.visible(now)), self.filter_text
        )
        pids = [row.pid for row, _ in ordered]
        cells = {row.pid: self._cells(row, depth, now) for row, depth in ordered}
        if pids != self.shown:
            keep = self.selected
            table.clear()
            for pid in pids:
                table.add_row(*cells[pid], key=str(pid))
            self.shown = pids
            if keep in pids:
                table.move_cursor(row=pids.index(keep))
        else:  # an idle machine changes few cells: redraw only those
            for pid in pids:
                old = self.cells.get(pid, ())
                for i, (column, value) in enumerate(zip(table.columns, cells[pid], strict=True)):
                    if i >= len(old) or old[i] != value:
                        table.update_cell(str(pid), column, value)
        self.cells = cells
        self._status()

    def _cells(self, row: topdata.Row, depth: int, now: float) -> tuple:
        style = ROW_STYLE[topdata.highlight(row, now)]
        colour = "magenta" if row.critical else "cyan"
        name = Text("  " * depth + row.image, style=f"bold {colour} {style}".strip())
        session = "-" if row.session is None else str(row.session)
        cpu = "" if row.cpu is None else f"{row.cpu:5.1f}"
        uss = "" if row.uss_mib is None else f"{row.uss_mib:6.1f}"
        values = (
            str(row.pid),
            session,
            row.user,
            cpu,
            uss,
            "yes" if row.critical else "",
            row.description,
            ", ".join(row.services),
        )
        return (name, *(Text(v, style=style) for v in values))

    def _status(self) -> None:
        state = self.poller.state
        live = sum(1 for r in self.poller.rows.values() if r.gone_at is None)
        text = Text(f" boot {state.boot_id}  {live} processes  every {self.interval:g} s")
        if self.filter_text:
            text.append(f"  filter: {self.filter_text}", style="yellow")
        if self.follow:
            text.append("  following the log", style="green")
        if self.stopped is not None:
            text.append(f"  {self.stopped_message()}", style="bold red")
        if text.plain != self._status_text:
            self._status_text = text.plain
            self.query_one("#status", Static).update(text)

    def stopped_message(self) -> str:
        if self.stop_record is not None:
            code = self.stop_record.get("bugcheck_code", 0)
            name = self.stop_record.get("bugcheck_name", "")
            return f"The machine bugchecked (0x{code:08X} {name}); last state kept. q quits."
        if self.stopped and self.stopped.startswith("bugcheck"):
            return "The machine is bugchecking; last state kept. q quits."
        return "The machine was shut down; last state kept. q quits."

    # -- the detail pane ---------------------------------------------------------------
    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id != "table":
            return
        if event.row_key is not None and event.row_key.value is not None:
            self.selected = int(event.row_key.value)
            self.render_detail()

    def render_detail(self) -> None:
        """On a new selection, and every refresh while following the log (l)."""
        pane = self.query_one("#detail", Static)
        if self.show_services:
            text = self._services_text()
            if text.plain != self._detail_text:  # refreshed every tick: draw only changes
                self._detail_text = text.plain
                pane.update(text)
            return
        self._detail_text = ""
        row = self.poller.rows.get(self.selected) if self.selected is not None else None
        if row is None:
            pane.update("Select a process (arrow keys) for its command line, ports and log.")
            return
        if self._ports[0] != row.pid:  # the ports change rarely: read them per selection
            self._ports = (row.pid, *topdata.ports_of(self.poller.log_dir, row.pid))
        _, served, connected = self._ports
        text = Text()
        text.append(f"{row.image} (pid {row.pid})", style="bold")
        text.append(f"  {row.description}  NT parent {row.parent_pid}  state {row.state}\n")
        text.append("Command line: ", style="dim").append(row.command_line + "\n")
        text.append("User: ", style="dim").append(
            f"{row.user or '?'}  (token: the kernel's record)\n"
        )
        text.append("Ports served: ", style="dim").append(", ".join(served) or "none")
        text.append("   connected to: ", style="dim").append(", ".join(connected) or "none")
        text.append("\n")
        for ev in topdata.last_events(self.poller.log_dir, row.pid, 7):
            text.append_text(format_event(ev).truncate(max(self.size.width - 2, 40)).to_rich())
            text.append("\n")
        pane.update(text)

    def render_services(self) -> None:
        """The services view (s): every service in the SCM's records, redrawn when they change."""
        services = sorted(self.poller.scm.services.values(), key=lambda s: s.name.lower())
        cells = [
            (svc.name, svc.display_name, svc.state_name, svc.start_name, str(svc.pid or ""))
            for svc in services
        ]
        if cells != self.service_cells:
            table = self.query_one("#services", DataTable)
            row = table.cursor_row
            table.clear()
            for values in cells:
                style = "green" if values[2] == "RUNNING" else ""
                table.add_row(*(Text(v, style=style) for v in values), key=values[0])
            if cells:
                table.move_cursor(row=min(row, len(cells) - 1))
            self.service_cells = cells
        self.render_detail()

    def _services_text(self) -> Text:
        services = self.poller.scm.services
        if not services:
            return Text(
                "No service records: the service control manager (services.exe) is not "
                "serving \\RPC Control\\ntsvcs on this machine (yet).",
                style="dim",
            )
        running = sum(1 for s in services.values() if s.state == 4)
        text = Text(f"{len(services)} services, {running} running (the SCM's records)\n")
        text.append("Service hosts:\n", style="bold")
        for r in sorted(self.poller.rows.values(), key=lambda r: r.pid):
            if r.services and r.gone_at is None:
                text.append(f"  {r.image} (pid {r.pid}, {r.user}): {', '.join(r.services)}\n")
        return text

    # -- keys ------------------------------------------------------------------------
    def action_follow(self) -> None:
        self.follow = not self.follow
        self._ports = (None, [], [])
        self.render_detail()
        self._status()

    def action_services(self) -> None:
        """Toggle the services view in place of the process tree."""
        self.show_services = not self.show_services
        self.query_one("#table", DataTable).set_class(self.show_services, "hidden")
        services = self.query_one("#services", DataTable)
        services.set_class(self.show_services, "visible")
        if self.show_services:
            self.service_cells = []
            self.render_services()
            services.focus()
        else:
            self.query_one("#table", DataTable).focus()
            self.render_detail()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("visible")
        box.value = self.filter_text
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.filter_text = event.value.strip()
        event.input.remove_class("visible")
        self.query_one("#table", DataTable).focus()
        self.render_table()

    def on_key(self, event: Any) -> None:
        box = self.query_one("#filter", Input)
        if event.key == "escape" and box.has_focus:
            self.filter_text = ""
            box.remove_class("visible")
            self.query_one("#table", DataTable).focus()
            self.render_table()

    def action_kill(self) -> None:
        row = self.poller.rows.get(self.selected) if self.selected is not None else None
        if row is None or row.gone_at is not None or self.stopped is not None:
            self.notify("Nothing to kill: select a running process.", severity="warning")
            return
        _, sentence = topdata.kill_consequence(row, self.poller.state.profile)
        self.push_screen(
            ConfirmKill(f"NtTerminateProcess {row.image} (pid {row.pid}).\n{sentence}"),
            lambda yes: self._kill(row) if yes else None,
        )

    def _kill(self, row: topdata.Row) -> None:
        try:
            self.poller.machine.nt.terminate(row.pid, 1)
        except Exception as exc:  # NtError / PortError: say it; a bugcheck shows on the next tick
            self.notify(f"{row.image}: {exc}", severity="error")
            return
        self.notify(f"Terminated {row.image} (pid {row.pid}).")

    # -- the end of the machine ----------------------------------------------------------
    def _bugchecked(self) -> bool:
        from nt.logquery import iter_events

        return any(True for _ in iter_events(self.poller.log_dir, event="bugcheck"))

    def _machine_stopped(self) -> None:
        self.stopped = "bugcheck" if self._bugchecked() else "shutdown"
        if self.stopped == "bugcheck":
            self._look_for_dump()
        self._status()

    def _look_for_dump(self) -> None:
        record, path = topdata.bugcheck_of(self.poller.root, self.poller.state.boot_id)
        if record is None:
            return  # the kernel writes it after stopping every process: next tick
        from nt.stopscreen import render_stop

        self.stop_record = record
        self._status()
        self.push_screen(StopScreen(render_stop(record, path)))
