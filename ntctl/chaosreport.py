"""A chaos campaign's report: the JSON file, merging split campaigns, the matrix.

A report names its campaign (seed, victims, phases, profile) and holds one record per
trial, keyed by index. Because a trial is a pure function of the campaign and its
index, reports of the same campaign over different index ranges merge into the report
of the whole range: ``ntctl chaos --merge a.json --merge b.json --report all.json``. Merging
reports of different campaigns, or two different records of one trial, is refused.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

FORMAT = "ntmodel-chaos/1"
CAMPAIGN_KEYS = ("seed", "victims", "phases", "profile")


class ReportError(ValueError):
    pass


def new_report(seed: int, victims: Sequence[str], phases: Sequence[str], profile: str) -> dict:
    return {
        "format": FORMAT,
        "seed": seed,
        "victims": list(victims),
        "phases": list(phases),
        "profile": profile,
        "filtered": {"victims": False, "phases": False},
        "trials": [],
        "interrupted": False,
        "not_run": [],
    }


def summary(report: dict) -> dict:
    trials = report["trials"]
    verdicts = Counter(t["verdict"] for t in trials)
    return {
        "trials": len(trials),
        "ok": verdicts.get("ok", 0),
        "missed": verdicts.get("missed", 0),
        "anomalies": verdicts.get("anomaly", 0),
        "boundary": sum(1 for t in trials if t.get("boundary")),
    }


def write(report: dict, path: Path) -> None:
    """Atomically: a Ctrl+C while writing leaves the old report or the new one."""
    report = dict(report, trials=sorted(report["trials"], key=lambda t: t["index"]))
    report["summary"] = summary(report)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    os.replace(tmp, path)


def read(path: Path) -> dict:
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ReportError(f"cannot read the report {path}: {exc}") from exc
    if not isinstance(report, dict) or report.get("format") != FORMAT:
        raise ReportError(f"{path} is not an ntctl chaos report ({FORMAT})")
    return report


def merge(reports: Iterable[dict]) -> dict:
    """The union of reports of one campaign (its trials by index)."""
    reports = list(reports)
    if not reports:
        raise ReportError("nothing to merge")
    first = reports[0]
    key = {k: first[k] for k in CAMPAIGN_KEYS}
    merged = new_report(first["seed"], first["victims"], first["phases"], first["profile"])
    merged["filtered"] = first.get("filtered", merged["filtered"])
    by_index: dict[int, dict] = {}
    for r in reports:
        other = {k: r[k] for k in CAMPAIGN_KEYS}
        if other != key:
            raise ReportError(f"reports of different campaigns: {key} and {other}")
        for t in r["trials"]:
            seen = by_index.get(t["index"])
            if seen is not None and seen["draw"] != t["draw"]:
                raise ReportError(f"trial {t['index']} was drawn differently in two reports")
            by_index.setdefault(t["index"], t)
        merged["interrupted"] = merged["interrupted"] or r.get("interrupted", False)
        merged["not_run"] += r.get("not_run", [])
    merged["trials"] = [by_index[i] for i in sorted(by_index)]
    merged["not_run"] = sorted(set(merged["not_run"]) - set(by_index))
    return merged


def repro(report: dict, index: int) -> str:
    """The one command that runs trial ``index`` again, alone."""
    cmd = f"ntctl chaos --seed {report['seed']} --trial {index}"
    if report.get("filtered", {}).get("victims"):
        cmd += " --victims " + ",".join(report["victims"])
    if report.get("filtered", {}).get("phases"):
        cmd += " --phase " + ",".join(report["phases"])
    if report["profile"] != "win10":
        cmd += f" --profile {report['profile']}"
    return cmd


def matrix(trials: Iterable[dict]) -> dict[tuple[str, str], Counter]:
    """(victim, phase) → outcome → count; anomalies counted under ``!anomaly`` too."""
    cells: dict[tuple[str, str], Counter] = {}
    for t in trials:
        cell = cells.setdefault((t["draw"]["victim"], t["draw"]["phase"]), Counter())
        cell[t.get("outcome", "?")] += 1
        if t["verdict"] == "anomaly":
            cell["!anomaly"] += 1
    return cells


def render(report: dict) -> list[Any]:
    """Rich renderables: the matrix, the summary, each anomaly with its command."""
    from rich.table import Table
    from rich.text import Text

    from ntctl.chaosplan import VICTIMS

    cells = matrix(report["trials"])
    phases = [p for p in report["phases"] if any(ph == p for _, ph in cells)]
    table = Table(title=f"ntctl chaos --seed {report['seed']}: outcomes", show_lines=False)
    table.add_column("victim")
    for phase in phases:
        table.add_column(phase)
    for v in VICTIMS:
        if not any((v.name, p) in cells for p in phases):
            continue
        row = [v.name]
        for p in phases:
            counts = cells.get((v.name, p), Counter())
            parts = [f"{n}× {what}" for what, n in sorted(counts.items()) if what != "!anomaly"]
            text = Text("\n".join(parts))
            if counts.get("!anomaly"):
                text.append(f"\n{counts['!anomaly']} anomalous", style="bold red")
            row.append(text)
        table.add_row(*row)
    s = summary(report)
    line = Text(
        f"{s['trials']} trials: {s['ok']} as the table predicts, {s['missed']} missed "
        f"(the victim was gone before the moment), {s['anomalies']} anomalies"
        + (f"; {s['boundary']} on a boundary the records cannot order" if s["boundary"] else "")
    )
    out: list[Any] = [table, line]
    if report.get("interrupted"):
        out.append(Text(f"Interrupted: {len(report['not_run'])} trials not run.", style="yellow"))
    for t in report["trials"]:
        if t["verdict"] != "anomaly":
            continue
        d = t["draw"]
        out.append(
            Text(
                f"trial {t['index']}: {d['victim']} in {d['phase']} at {d['moment_ms']} ms "
                f"by {d['method']}: " + "; ".join(t["anomalies"]),
                style="red",
            )
        )
        out.append(Text(f"  reproduce: {repro(report, t['index'])}" + _kept(t)))
    return out


def _kept(t: dict) -> str:
    return f"  (data root kept: {t['root']})" if t.get("root") else ""
