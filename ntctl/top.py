"""``ntctl top``: a live Process Explorer for the machine, in the terminal (Textual).

The NT process tree with PID, Session, User, CPU %, USS, the critical flag, the image's
description and, for service hosts, the services they hold; new processes green and
exited ones red for a few seconds (Process Explorer's colours); a detail pane with the
selected process's command line, user, ports and last log events. Keys: k kill (the
confirmation says when the kill will bugcheck the machine, and then the STOP screen
shows), l follow the selected process's log, / filter, s services, q quit.

It refreshes from the kernel's records (ntctl/topdata.py) every ``--interval`` seconds.
When the machine bugchecks or shuts down it says so, keeps the last state on screen, and
``q`` leaves with exit code 0. Without a terminal (or in one too small) it prints one
plain snapshot instead.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from ntctl import topdata

MIN_COLUMNS, MIN_LINES = 80, 20


def plain_snapshot(poller: topdata.Poller, out: Any = None) -> None:
    """The table as text, once (a pipe, a dumb or too small terminal)."""
    out = out or sys.stdout
    poller.poll()
    time.sleep(0.2)  # a second sample for CPU %
    rows = poller.poll()
    head = f"{'Process':32} {'PID':>7} {'Sess':>4} {'CPU%':>5} {'USS':>6}  {'Crit':4}  Description"
    out.write(head + "\n")
    for row, depth in topdata.tree_order(r for r in rows.values() if r.state != "exited"):
        name = ("  " * depth + row.image)[:32]
        sess = "-" if row.session is None else str(row.session)
        cpu = "" if row.cpu is None else f"{row.cpu:.1f}"
        uss = "" if row.uss_mib is None else f"{row.uss_mib:.1f}"
        crit = "yes" if row.critical else ""
        held = f"  [{', '.join(row.services)}]" if row.services else ""  # the SCM's records
        out.write(
            f"{name:32} {row.pid:>7} {sess:>4} {cpu:>5} {uss:>6}  {crit:4}  {row.description}{held}\n"
        )


def run(root: Path, interval: float, plain: bool) -> int:
    """The verb: checks first (machine, terminal), then the app; the exit code."""
    from ntctl.cli import fail

    if interval < 0.05:
        fail(f"--interval {interval}: give at least 0.05 seconds", 2)
    poller = topdata.Poller(root)  # MachineError (no machine) reaches main(): exit 1
    try:
        size = os.get_terminal_size(sys.stdout.fileno()) if sys.stdout.isatty() else None
        if plain or size is None or size.columns < MIN_COLUMNS or size.lines < MIN_LINES:
            if not plain:
                why = (
                    "not a terminal"
                    if size is None
                    else f"the terminal is {size.columns}x{size.lines}, top needs "
                    f"{MIN_COLUMNS}x{MIN_LINES}"
                )
                sys.stderr.write(f"ntctl top: {why}; printing one snapshot (--plain).\n")
            plain_snapshot(poller)
            return 0
        app = make_app(poller, interval)
        app.run()
        return app.return_code or 0
    finally:
        poller.close()


def make_app(poller: topdata.Poller, interval: float) -> Any:
    """The Textual app (imported here: only `ntctl top` pays for Textual)."""
    from ntctl import topapp

    return topapp.TopApp(poller, interval)
