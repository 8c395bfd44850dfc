"""``ntctl chaos``: seeded fault campaigns checked against the fault table's oracle.

Only the standard library and ntctl's cheap modules at the top: the campaign's modules
(psutil, Rich, the oracle) are imported when the verb runs.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from ntctl.cli import Opt, fail
from ntctl.verbkit import app

EXIT_ANOMALIES, EXIT_INTERRUPTED = 1, 130


@app.verb(
    "chaos",
    Opt("--seed", type=int, default=0, help="the campaign's seed (0 to 4294967295)"),
    Opt("--trials", type=int, default=20, help="how many trials"),
    Opt("--first", type=int, default=0, help="index of the first trial (to split a campaign)"),
    Opt("--trial", type=int, default=None, help="run trial N alone (to reproduce it)"),
    Opt("--victims", default=None, metavar="NAMES", help="e.g. csrss,smss,winlogon"),
    Opt("--phase", default=None, metavar="PHASES", help="boot, idle, logon and/or shutdown"),
    Opt("--jobs", type=int, default=1, help="machines at once"),
    Opt("--report", type=Path, default=None, metavar="FILE", help="write the report (JSON)"),
    Opt("--merge", type=Path, multiple=True, metavar="FILE", help="merge reports, run nothing"),
    Opt("--profile", default="win10", help="win10 or win7"),
    Opt("--scratch", type=Path, default=None, metavar="DIR", help="where the data roots go"),
    Opt("--keep", flag=True, help="keep every trial's data root (anomalies' are always kept)"),
)
def chaos(
    seed: int,
    trials: int,
    first: int,
    trial: int | None,
    victims: str | None,
    phase: str | None,
    jobs: int,
    report: Path | None,
    merge: list[Path],
    profile: str,
    scratch: Path | None,
    keep: bool,
) -> int:
    """Seeded fault campaigns: kill drawn processes at drawn moments, check the fault table."""
    from ntctl import chaosplan as plan
    from ntctl import chaosreport as rep

    if merge:
        return _merge(merge, report)
    try:
        chosen = plan.select_victims(victims)
        phases = plan.select_phases(phase)
        plan.check_campaign(chosen, phases, seed, 1 if trial is not None else trials)
    except plan.PlanError as exc:
        fail(str(exc), 2, "`ntctl chaos --help` lists the options")
    if profile not in ("win10", "win7"):
        fail(f"no profile {profile!r}; profiles: win10, win7", 2)
    if not 1 <= jobs <= 16:
        fail(f"--jobs {jobs}: between 1 and 16 machines at once", 2)
    if (trial is not None and trial < 0) or first < 0:
        fail("trial indices start at 0", 2)
    if report is not None and not report.parent.is_dir():
        fail(f"--report {report}: no directory {report.parent}", 2)
    indices = [trial] if trial is not None else list(range(first, first + trials))
    draws = [plan.draw(seed, i, chosen, phases) for i in indices]
    result = rep.new_report(seed, [v.name for v in chosen], phases, profile)
    result["filtered"] = {"victims": bool(victims), "phases": bool(phase)}
    return _run(result, draws, jobs, report, scratch, profile, keep)


def _merge(paths: list[Path], out: Path | None) -> int:
    from ntctl import chaosreport as rep

    try:
        merged = rep.merge(rep.read(p) for p in paths)
    except rep.ReportError as exc:
        fail(str(exc), 2)
        raise
    if out is not None:
        rep.write(merged, out)
    _show(merged)
    return EXIT_ANOMALIES if rep.summary(merged)["anomalies"] else 0


def _show(result: dict) -> None:
    from rich.console import Console

    from ntctl import chaosreport as rep

    console = Console(highlight=False, soft_wrap=True)
    for renderable in rep.render(result):
        console.print(renderable)


def _run(
    result: dict,
    draws: list[Any],
    jobs: int,
    report: Path | None,
    scratch: Path | None,
    profile: str,
    keep: bool,
) -> int:
    import shutil
    import tempfile

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from ntctl import chaoscampaign as camp
    from ntctl import chaosreport as rep
    from ntctl.chaosrun import BootFailed, Lab, become_subreaper

    made = scratch is None
    root = Path(tempfile.mkdtemp(prefix=f"ntchaos-{result['seed']}-")) if made else scratch
    root.mkdir(parents=True, exist_ok=True)
    lab = Lab(root, profile, keep)
    become_subreaper()  # the launcher daemons and any orphan come back to us
    # SIGTERM is a Ctrl+C: stop the machines, write what was found
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    console = Console(stderr=True)
    interrupted = False
    with Progress(
        TextColumn("[bold]chaos[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[anomalies]} anomalies"),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("booting the template machine", total=len(draws), anomalies=0)
        try:
            # A template costs one boot and shutdown, then saves each trial the first
            # boot's configuration import: worth it once a job runs two trials or more.
            if len(draws) > jobs:
                lab.template = camp.make_template(lab)
        except BootFailed as exc:
            progress.stop()
            fail(str(exc))
        except KeyboardInterrupt:
            interrupted = True
        progress.update(task, description=f"seed {result['seed']}")
        found = 0

        def done(r: dict) -> None:
            nonlocal found
            found += r["verdict"] == "anomaly"
            progress.update(task, advance=1, anomalies=found)
            result["trials"].append(r)
            if report is not None:  # after each trial: a crash of the runner loses nothing
                rep.write(result, report)

        if not interrupted:
            _, not_run = camp.run_campaign(lab, draws, jobs, done)
            result["not_run"] = not_run
            interrupted = bool(not_run) or lab.stop.is_set()
        else:
            result["not_run"] = [d.index for d in draws]
    result["interrupted"] = interrupted
    if report is not None:
        rep.write(result, report)
    _show(result)
    if made and not any(t.get("root") for t in result["trials"]):
        shutil.rmtree(root, ignore_errors=True)
    elif lab.template is not None and not keep:
        shutil.rmtree(lab.template, ignore_errors=True)
    if interrupted:
        console.print(f"Interrupted: machines stopped; report: {report or 'not written'}.")
        return EXIT_INTERRUPTED
    return EXIT_ANOMALIES if rep.summary(result)["anomalies"] else 0
