"""A server-rendered SVG bar chart with 95% interval whiskers (one bar per month).

Same habits as `hub.dashboard.charts`: no JavaScript, no inline styles (classes from
hub.css), a `<title>` and an `aria-label` reading out every figure, every label escaped.
A month with nothing reported is a gap, not a zero bar.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from hub.dashboard.charts import Point, nice_top

__all__ = ["interval_bars"]


def _fmt(v: float) -> str:
    return f"{v:,.0f}"


def interval_bars(points: Sequence[Point], title: str, *, width: int = 360,
                  height: int = 180) -> Markup:
    pad_l, pad_r, pad_t, pad_b = 44, 8, 12, 24
    shown = [p for p in points if p.estimate is not None]
    ymax = nice_top(max((p.high for p in shown), default=0))
    inner_w, inner_h = width - pad_l - pad_r, height - pad_t - pad_b
    step = inner_w / max(len(points), 1)

    def y(v: float) -> float:
        return pad_t + inner_h * (1 - min(max(v, 0.0), ymax) / ymax)

    summary = "; ".join(
        f"{p.label}: {_fmt(p.estimate)} (95% interval {_fmt(p.low)} to {_fmt(p.high)})"
        if p.estimate is not None else f"{p.label}: no state reported" for p in points)
    parts = [f'<svg class="chart bars" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(title)}. {escape(summary)}" '
             f'preserveAspectRatio="xMidYMid meet">', f"<title>{escape(title)}</title>"]
    for frac in (0.0, 0.5, 1.0):
        gy = y(ymax * frac)
        parts.append(f'<line class="grid" x1="{pad_l}" x2="{width - pad_r}" y1="{gy:.1f}" '
                     f'y2="{gy:.1f}"></line>')
        parts.append(f'<text class="axis" x="{pad_l - 6}" y="{gy + 4:.1f}" '
                     f'text-anchor="end">{escape(_fmt(ymax * frac))}</text>')
    for i, p in enumerate(points):
        cx = pad_l + step * (i + 0.5)
        parts.append(f'<text class="axis" x="{cx:.1f}" y="{height - 7}" text-anchor="middle">'
                     f'{escape(p.label[5:] if len(p.label) == 7 else p.label)}</text>')
        if p.estimate is None:
            continue
        bw = step * 0.6
        top = y(p.estimate)
        parts.append(f'<rect class="band" x="{cx - bw / 2:.1f}" y="{top:.1f}" '
                     f'width="{bw:.1f}" height="{max(y(0) - top, 0.5):.1f}"></rect>')
        lo, hi = y(p.low), y(p.high)
        parts.append(f'<line class="whisker" x1="{cx:.1f}" x2="{cx:.1f}" y1="{hi:.1f}" '
                     f'y2="{lo:.1f}"></line>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every label is escaped above
