"""ntctl top against a real machine, driven with Textual's pilot (App.run_test)."""

from __future__ import annotations

import asyncio
import fcntl
import io
import os
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable

import pytest

from tests.cluster.conftest import REPO, Machine

pytestmark = pytest.mark.cluster
SIZE = (160, 45)


async def until(pilot, condition: Callable[[], bool], timeout: float = 15.0) -> None:
    """Let the app run until ``condition`` holds (events, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the app never got there"
        await pilot.pause(0.05)


def images(app) -> list[str]:
    from textual.widgets import DataTable

    table = app.query_one("#table", DataTable)
    return [str(table.get_row_at(i)[0]).strip() for i in range(table.row_count)]


def cells(app, table_id: str) -> list[list[str]]:
    from textual.widgets import DataTable

    table = app.query_one(table_id, DataTable)
    return [[str(c).strip() for c in table.get_row_at(i)] for i in range(table.row_count)]


def host_of(app, service: str) -> list[str] | None:
    """The process table's row whose Services column holds ``service``."""
    return next((r for r in cells(app, "#table") if service in r[-1].split(", ")), None)


def text_of(widget) -> str:
    return str(widget.render())


def rendered(renderable) -> str:
    from rich.console import Console

    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(renderable)
    return console.file.getvalue()


def test_top_shows_the_tree_filters_and_a_kill_that_bugchecks(machine: Machine) -> None:
    from ntctl import topdata
    from ntctl.topapp import ConfirmKill, StopScreen, TopApp

    async def scenario() -> int | None:
        poller = topdata.Poller(machine.root)
        app = TopApp(poller, 0.1)
        try:
            async with app.run_test(size=SIZE) as pilot:
                await until(pilot, lambda: "winlogon.exe" in images(app))
                assert {"System", "smss.exe", "csrss.exe", "wininit.exe"} <= set(images(app))
                assert images(app).count("csrss.exe") == 2  # one per session
                assert "Client Server Runtime Process" in str(app.query_one("#table").get_row_at(2))

                # services: the SCM's records, in the process table and in the view (s)
                await until(pilot, lambda: host_of(app, "EventLog") is not None)
                host = host_of(app, "EventLog")
                assert host[0] == "svchost.exe" and host[3] == "NT AUTHORITY\\LOCAL SERVICE"
                done = machine.wait_event("scm.auto_start_complete", image="services.exe")
                assert done["running"] == done["services"] > 0  # the console's n/m
                await pilot.press("s")
                await until(pilot, lambda: any(r[0] == "EventLog" for r in cells(app, "#services")))
                eventlog = next(r for r in cells(app, "#services") if r[0] == "EventLog")
                assert eventlog == [
                    "EventLog",
                    "Windows Event Log",
                    "RUNNING",
                    "AUTO_START",
                    host[1],
                ]
                assert "svchost.exe (pid " + host[1] in text_of(app.query_one("#detail"))
                await pilot.press("s")

                await pilot.press("slash", *"smss", "enter")
                await until(pilot, lambda: images(app) == ["System", "smss.exe"])
                await pilot.press("slash", *"winlogon", "enter")
                await until(pilot, lambda: images(app) == ["winlogon.exe"])
                detail = app.query_one("#detail")
                await until(pilot, lambda: "Command line: winlogon.exe" in text_of(detail))
                assert "Sessions\\1\\Windows\\ApiPort" in text_of(detail)  # connected to its csrss

                await pilot.press("k")
                await until(pilot, lambda: isinstance(app.screen, ConfirmKill))
                question = app.screen.text
                assert (
                    "critical process" in question
                    and "0x000000EF CRITICAL_PROCESS_DIED" in question
                )
                await pilot.press("y")
                await until(pilot, lambda: isinstance(app.screen, StopScreen))
                assert "CRITICAL_PROCESS_DIED" in rendered(app.screen.renderable)
                await pilot.press("escape")  # back to the last state
                assert images(app) == ["winlogon.exe"]
                assert "The machine bugchecked (0x000000EF" in text_of(app.query_one("#status"))
                await pilot.press("q")
            return app.return_code
        finally:
            poller.close()

    assert asyncio.run(scenario()) in (0, None)
    machine.wait_stopped()
    assert machine.latest_dump()["faulting_process"]["image"] == "winlogon.exe"


def test_top_without_a_terminal_then_watching_a_shutdown(machine: Machine, tmp_path) -> None:
    """No machine: a clear message. A pipe or a 50x10 terminal: one plain snapshot. Then
    the full app while the machine shuts down: it says so and keeps the last state."""
    from ntctl import topdata
    from ntctl.topapp import TopApp

    r = subprocess.run(
        [sys.executable, "-m", "ntctl", "top", "--root", str(tmp_path / "none")],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1 and "the machine is not running" in r.stderr

    piped = machine.ntctl("top")  # stdout is a pipe
    assert "not a terminal" in piped.stderr
    assert "winlogon.exe" in piped.stdout and "Windows Logon Application" in piped.stdout

    master, slave = os.openpty()  # a terminal, but 50x10
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 10, 50, 0, 0))
    try:
        r = subprocess.run(
            [sys.executable, "-m", "ntctl", "top", "--root", str(machine.root)],
            cwd=REPO,
            env=machine.env,
            stdout=slave,
            stderr=subprocess.PIPE,
            text=True,
            timeout=30,
        )
    finally:
        os.close(slave)
        out = os.read(master, 65536).decode(errors="replace")
        os.close(master)
    assert r.returncode == 0
    assert "the terminal is 50x10, top needs 80x20" in r.stderr and "winlogon.exe" in out

    async def scenario() -> int | None:
        poller = topdata.Poller(machine.root)
        app = TopApp(poller, 0.1)
        try:
            async with app.run_test(size=SIZE) as pilot:
                await until(pilot, lambda: "winlogon.exe" in images(app))
                await asyncio.to_thread(machine.ntctl, "shutdown")
                await until(pilot, lambda: app.stopped is not None)
                status = text_of(app.query_one("#status"))
                assert "The machine was shut down; last state kept" in status
                assert "winlogon.exe" in images(app)  # the last state stays on screen
                await pilot.press("q")
            return app.return_code
        finally:
            poller.close()

    assert asyncio.run(scenario()) in (0, None)
