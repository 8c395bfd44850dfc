"""``ntctl plot > boot.svg``: the boot as a timeline, like ``systemd-analyze plot``.

Written by hand with the standard library, as systemd's analyze-plot.c writes its SVG
with printf: a time grid, then one row per unit (process, service, driver) in start
order. Each row is a ``<g class="unit">`` carrying ``data-unit``, ``data-kind`` and
``data-pid``, with up to three bars: ``activating`` (start to ready), ``active`` (ready
to its exit, or to the end of the boot) and ``never`` (started, never ready: up to its
exit or the bugcheck), and a ``<title>`` tooltip. The classes are the contract the tests
parse; CSS colours them.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from ntctl.bootchart import Chart, Unit, _dur

ROW = 20  # px per unit row
LEFT = 10
TOP = 70  # below the title and the time axis
LABEL_GAP = 6
PX_PER_S = 1000  # 1 px per millisecond: boots here take about a second
MAX_PLOT = 3000  # px: a longer timeline is scaled down to this
MIN_WIDTH = 800

STYLE = """
  rect.background { fill: #ffffff; }
  rect.activating { fill: #f2a0a0; }
  rect.active { fill: #c8e0f8; }
  rect.never { fill: #e05050; }
  line.grid { stroke: #d0d0d0; stroke-width: 1; }
  line.bugcheck { stroke: #0000c0; stroke-width: 2; }
  text { font-family: Verdana, Helvetica, sans-serif; font-size: 11px; fill: #202020; }
  text.title { font-size: 16px; font-weight: bold; }
  text.sec { font-size: 10px; fill: #707070; }
  text.stop { fill: #0000c0; font-weight: bold; }
"""


class Scale:
    """Seconds to pixels: 1 px per ms, squeezed so the timeline fits ``MAX_PLOT`` px."""

    def __init__(self, span: float) -> None:
        self.px_per_s = min(float(PX_PER_S), MAX_PLOT / span)

    def x(self, seconds: float) -> float:
        return LEFT + seconds * self.px_per_s

    def bar(self, kind: str, start: float, end: float, y: int) -> str:
        width = max((end - start) * self.px_per_s, 1.0)
        return (
            f'<rect class="{kind}" x="{self.x(start):.1f}" y="{y + 2}" width="{width:.1f}"'
            f' height="{ROW - 4}"/>'
        )


def span_of(chart: Chart) -> float:
    """Where the timeline ends: the last unit's start or ready moment, or the bugcheck
    (later events, such as ntctl attaching, do not stretch it)."""
    moments = [m for u in chart.units for m in (u.start, u.ready) if m is not None]
    if chart.bugcheck is not None:
        moments.append(chart.end)
    return max(moments, default=0.0) * 1.05 + 0.01


def _row(unit: Unit, y: int, chart: Chart, span: float, scale: Scale) -> list[str]:
    end = min(unit.end if unit.end is not None else chart.end, span)
    attrs = (
        f'class="unit" data-unit={quoteattr(unit.name)} data-kind={quoteattr(unit.kind)}'
        f" data-pid={quoteattr(str(unit.pid or ''))}"
    )
    tip = f"{unit.name} ({unit.kind}, pid {unit.pid}) started @{_dur(unit.start)}"
    out = [f"<g {attrs}>"]
    if unit.ready is not None:
        tip += f", ready @{_dur(unit.ready)} (+{_dur(unit.ready - unit.start)}, {unit.ready_event})"
        out.append(scale.bar("activating", unit.start, unit.ready, y))
        if end > unit.ready:
            out.append(scale.bar("active", unit.ready, end, y))
    else:
        tip += ", never ready"
        out.append(scale.bar("never", unit.start, max(end, unit.start), y))
    if unit.end is not None:
        tip += (
            f", exited @{_dur(unit.end)} {unit.exit_status or ''} {unit.exit_name or ''}".rstrip()
        )
    label = unit.name + (
        f" ({_dur(unit.ready - unit.start)})" if unit.ready is not None else " (never ready)"
    )
    label_x = scale.x(unit.ready if unit.ready is not None else max(end, unit.start)) + LABEL_GAP
    out.append(f'<text x="{label_x:.1f}" y="{y + 14}">{escape(label)}</text>')
    out.append(f"<title>{escape(tip)}</title></g>")
    return out


def svg(chart: Chart) -> str:
    """The whole SVG document of ``chart``."""
    units = sorted(chart.units, key=lambda u: u.start)
    span = span_of(chart)
    scale = Scale(span)
    width = max(MIN_WIDTH, int(scale.x(span)) + 260)
    height = TOP + ROW * len(units) + 30
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}">',
        f"<style>{STYLE}</style>",
        f'<rect class="background" width="{width}" height="{height}"/>',
        f'<text class="title" x="{LEFT}" y="22">Boot {escape(chart.boot_id)}</text>',
        f'<text x="{LEFT}" y="40">started {escape(chart.started)}; {len(units)} units</text>',
    ]
    step = next(s for s in (0.1, 0.5, 1, 5, 10, 60, 300, 3600, 86400) if span / s <= 40)
    ticks = int(span / step) + 1
    for i in range(ticks + 1):
        x = scale.x(i * step)
        out.append(
            f'<line class="grid" x1="{x:.1f}" y1="{TOP - 10}" x2="{x:.1f}" y2="{height - 20}"/>'
        )
        out.append(f'<text class="sec" x="{x + 2:.1f}" y="{TOP - 12}">{i * step:.1f}s</text>')
    for i, unit in enumerate(units):
        out += _row(unit, TOP + i * ROW, chart, span, scale)
    if chart.bugcheck is not None:
        x = scale.x(chart.end)
        code = chart.bugcheck.get("bugcheck_code") or chart.bugcheck.get("code") or ""
        out.append(
            f'<line class="bugcheck" x1="{x:.1f}" y1="{TOP - 10}" x2="{x:.1f}" y2="{height - 20}"/>'
        )
        out.append(
            f'<text class="stop" x="{x + 4:.1f}" y="{height - 6}">bugcheck {escape(str(code))}</text>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"
