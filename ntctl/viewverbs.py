"""The verbs of the views built on the logs and the kernel's records: blame,
critical-chain, plot (ntctl/bootchart.py, bootplot.py) and top (ntctl/top.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from ntctl.cli import Arg, Opt, fail
from ntctl.verbkit import BOOT, JSON, ROOT, app, boot_dir, display, emit


# -- boot analysis ------------------------------------------------------------------
@app.verb("blame", ROOT, JSON, BOOT)
def blame(root: Path, as_json: bool, boot_: str) -> None:
    """Each process (and driver, service) by the time it took to become ready."""
    from ntctl import bootchart

    chart = bootchart.load(boot_dir(root, boot_))
    emit(bootchart.blame_json(chart)) if as_json else display(bootchart.render_blame(chart))


@app.verb(
    "critical-chain",
    Arg("unit", optional=True, help="e.g. winlogon.exe, csrss.exe@1 (default: the last ready)"),
    ROOT,
    JSON,
    BOOT,
)
def critical_chain(unit: str | None, root: Path, as_json: bool, boot_: str) -> None:
    """The chain of waits that decided when UNIT was ready, with the time each link added."""
    from ntctl import bootchart

    chart = bootchart.load(boot_dir(root, boot_))
    try:
        chain = bootchart.critical_chain(chart, unit)
    except LookupError as exc:
        fail(str(exc), 2, "`ntctl blame` lists the units of this boot")
    emit(bootchart.chain_json(chart, chain)) if as_json else display(
        bootchart.render_chain(chart, chain)
    )


@app.verb("plot", ROOT, JSON, BOOT)
def plot(root: Path, as_json: bool, boot_: str) -> None:
    """A boot timeline as SVG (ntctl plot > boot.svg), like systemd-analyze plot."""
    from ntctl import bootchart, bootplot

    chart = bootchart.load(boot_dir(root, boot_))
    if as_json:
        emit(bootchart.plot_json(chart))
    else:
        sys.stdout.write(bootplot.svg(chart))


# -- live views -----------------------------------------------------------------------
@app.verb(
    "top",
    ROOT,
    Opt("--interval", type=float, default=0.5, help="seconds between refreshes"),
    Opt("--plain", flag=True, help="print snapshots as text instead of the full-screen view"),
)
def top(root: Path, interval: float, plain: bool) -> int:
    """A live Process Explorer: the NT process tree, refreshed from the kernel's records."""
    from ntctl import top as topview

    return topview.run(root, interval, plain)
