"""Server-rendered SVG charts for the leadership page (no JavaScript, no inline styles:
colours come from classes in style.css, so the strict CSP holds).

Each function returns SVG markup (`markupsafe.Markup`) with a `<title>` and an `aria-label`
summarising the numbers, and every label is escaped. Parts are joined as plain `str` (with
`str(escape(...))`): adding a `str` to a `Markup` would escape the `str` side.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

__all__ = ["hbars", "month_bars"]


def month_bars(points: Sequence[tuple[str, int]], title: str, width: int = 340,
               height: int = 160) -> Markup:
    """Vertical bars, one per month (label `YYYY-MM` shown as `MM`)."""
    n = max(len(points), 1)
    top = max((v for _, v in points), default=0) or 1
    pad_l, pad_b, pad_t = 6, 22, 16
    inner_h = height - pad_b - pad_t
    step = (width - pad_l * 2) / n
    bar_w = max(step * 0.7, 2)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}: '
        + str(escape(", ".join(f"{k} {v}" for k, v in points))) + '">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, value) in enumerate(points):
        h = inner_h * value / top
        x = pad_l + i * step + (step - bar_w) / 2
        y = pad_t + inner_h - h
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                     f'height="{h:.1f}" rx="2"></rect>')
        parts.append(f'<text class="val" x="{x + bar_w / 2:.1f}" y="{y - 3:.1f}" '
                     f'text-anchor="middle">{value}</text>')
        parts.append(f'<text class="lab" x="{x + bar_w / 2:.1f}" y="{height - 6}" '
                     f'text-anchor="middle">{escape(label[5:] or label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every label is escaped above


def hbars(items: Sequence[tuple[str, int]], title: str, width: int = 340) -> Markup:
    """Horizontal bars with a label and the count on each row."""
    row_h, label_w = 26, 130
    height = row_h * max(len(items), 1) + 4
    top = max((v for _, v in items), default=0) or 1
    bar_max = width - label_w - 40
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}: '
        + str(escape(", ".join(f"{k} {v}" for k, v in items))) + '">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, value) in enumerate(items):
        y = i * row_h + 4
        w = bar_max * value / top
        parts.append(f'<text class="lab" x="0" y="{y + 15}">{escape(label)}</text>')
        parts.append(f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{w:.1f}" '
                     f'height="{row_h - 10}" rx="2"></rect>')
        parts.append(f'<text class="val" x="{label_w + w + 4:.1f}" y="{y + 15}">{value}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every label is escaped above
