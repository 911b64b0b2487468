"""Server-rendered SVG charts for the board dashboard: estimates with 95% interval whiskers.

No JavaScript and no inline styles (colours come from classes in `hub/static/hub.css`, so the
strict CSP holds). Every chart has a `<title>` and an `aria-label` that reads out each
estimate with its interval, and every label is escaped.

- `interval_series`: one point per month on a line, a vertical whisker for its 95% interval,
  a few horizontal grid lines with their values; months with no report are gaps.
- `interval_rows`: one row per group (a "forest plot"): a dot for the rate and a whisker for
  its interval on a 0-100% axis, the figure written at the right.

Figures passed in are the display figures (rounded, clamped at zero); the charts never
compute statistics.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

__all__ = ["Point", "interval_rows", "interval_series", "nice_top"]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Point:
    label: str
    estimate: float | None  # None: nothing to show (no report, or undefined rate)
    low: float = 0.0
    high: float = 0.0


def nice_top(value: float) -> float:
    """A round axis maximum at or above `value` (1, 2, 2.5, 5 x 10^k)."""
    if value <= 0:
        return 1.0
    exp = math.floor(math.log10(value))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        top = float(m * 10.0**exp)
        if top >= value:
            return top
    return float(10.0 ** (exp + 1))


def _month_label(label: str) -> str:
    if len(label) == 7 and label[4] == "-" and label[5:].isdigit():
        return _MONTHS[int(label[5:]) - 1]
    return label


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 1 or v == 0 else f"{v:.2g}"


def _svg_open(width: int, height: int, title: str, summary: str, css: str) -> list[str]:
    return [
        f'<svg class="chart {css}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}. {escape(summary)}" preserveAspectRatio="xMidYMid meet">',
        f"<title>{escape(title)}</title>",
    ]


def interval_series(points: Sequence[Point], title: str, *, width: int = 360,
                    height: int = 180, top: float | None = None) -> Markup:
    """Estimates over months with 95% whiskers; `top` fixes the y axis (shared scales)."""
    pad_l, pad_r, pad_t, pad_b = 40, 8, 12, 24
    shown = [p for p in points if p.estimate is not None]
    ymax = top if top is not None else nice_top(max((p.high for p in shown), default=0))
    inner_w, inner_h = width - pad_l - pad_r, height - pad_t - pad_b
    n = max(len(points), 1)
    step = inner_w / n

    def y(v: float) -> float:
        return pad_t + inner_h * (1 - min(max(v, 0.0), ymax) / ymax)

    summary = "; ".join(
        f"{p.label}: {_fmt(p.estimate)} (95% interval {_fmt(p.low)} to {_fmt(p.high)})"
        if p.estimate is not None else f"{p.label}: no report"
        for p in points
    )
    parts = _svg_open(width, height, title, summary, "series")
    for frac in (0.0, 0.5, 1.0):
        gy = y(ymax * frac)
        parts.append(f'<line class="grid" x1="{pad_l}" x2="{width - pad_r}" y1="{gy:.1f}" '
                     f'y2="{gy:.1f}"></line>')
        parts.append(f'<text class="axis" x="{pad_l - 6}" y="{gy + 4:.1f}" '
                     f'text-anchor="end">{escape(_fmt(ymax * frac))}</text>')
    every = 1 if n <= 12 else math.ceil(n / 12)
    path: list[str] = []
    for i, p in enumerate(points):
        cx = pad_l + step * (i + 0.5)
        if i % every == 0 or i == n - 1:
            parts.append(f'<text class="axis" x="{cx:.1f}" y="{height - 7}" '
                         f'text-anchor="middle">{escape(_month_label(p.label))}</text>')
        if p.estimate is None:
            path.append("")
            continue
        path.append(f"{cx:.1f},{y(p.estimate):.1f}")
    segments: list[list[str]] = [[]]
    for xy in path:
        if xy:
            segments[-1].append(xy)
        elif segments[-1]:
            segments.append([])
    for seg in segments:
        if len(seg) > 1:
            parts.append(f'<polyline class="line" points="{" ".join(seg)}"></polyline>')
    cap = min(step * 0.22, 6.0)
    for i, p in enumerate(points):
        if p.estimate is None:
            continue
        cx = pad_l + step * (i + 0.5)
        lo, hi = y(p.low), y(p.high)
        parts.append(f'<line class="whisker" x1="{cx:.1f}" x2="{cx:.1f}" y1="{hi:.1f}" '
                     f'y2="{lo:.1f}"></line>')
        for wy in (lo, hi):
            parts.append(f'<line class="whisker" x1="{cx - cap:.1f}" x2="{cx + cap:.1f}" '
                         f'y1="{wy:.1f}" y2="{wy:.1f}"></line>')
        parts.append(f'<circle class="point" cx="{cx:.1f}" cy="{y(p.estimate):.1f}" '
                     f'r="3.2"></circle>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every label is escaped above


def interval_rows(rows: Sequence[Point], title: str, *, width: int = 360) -> Markup:
    """Rates (0..1) per group with 95% whiskers on a 0-100% axis."""
    label_w, value_w, row_h, pad_t, pad_b = 112, 48, 30, 6, 22
    height = pad_t + row_h * max(len(rows), 1) + pad_b
    x0, x1 = label_w, width - value_w

    def x(v: float) -> float:
        return x0 + (x1 - x0) * min(max(v, 0.0), 1.0)

    summary = "; ".join(
        f"{r.label}: {r.estimate:.0%} (95% interval {r.low:.0%} to {r.high:.0%})"
        if r.estimate is not None else f"{r.label}: not enough data"
        for r in rows
    )
    parts = _svg_open(width, height, title, summary, "rows")
    axis_y = pad_t + row_h * len(rows)
    for frac in (0.0, 0.5, 1.0):
        gx = x(frac)
        parts.append(f'<line class="grid" x1="{gx:.1f}" x2="{gx:.1f}" y1="{pad_t}" '
                     f'y2="{axis_y}"></line>')
        parts.append(f'<text class="axis" x="{gx:.1f}" y="{axis_y + 15}" '
                     f'text-anchor="middle">{frac:.0%}</text>')
    for i, r in enumerate(rows):
        cy = pad_t + row_h * i + row_h / 2
        parts.append(f'<text class="lab" x="0" y="{cy + 4:.1f}">{escape(r.label)}</text>')
        if r.estimate is None:
            parts.append(f'<text class="na" x="{x0 + 4}" y="{cy + 4:.1f}">no data</text>')
            continue
        lo, hi = x(r.low), x(r.high)
        parts.append(f'<rect class="band" x="{lo:.1f}" y="{cy - 6:.1f}" '
                     f'width="{max(hi - lo, 1.0):.1f}" height="12" rx="3"></rect>')
        parts.append(f'<line class="whisker" x1="{lo:.1f}" x2="{hi:.1f}" y1="{cy:.1f}" '
                     f'y2="{cy:.1f}"></line>')
        for wx in (lo, hi):
            parts.append(f'<line class="whisker" x1="{wx:.1f}" x2="{wx:.1f}" '
                         f'y1="{cy - 5:.1f}" y2="{cy + 5:.1f}"></line>')
        parts.append(f'<circle class="point" cx="{x(r.estimate):.1f}" cy="{cy:.1f}" '
                     f'r="4"></circle>')
        parts.append(f'<text class="val" x="{width}" y="{cy + 4:.1f}" '
                     f'text-anchor="end">{r.estimate:.0%}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every label is escaped above
