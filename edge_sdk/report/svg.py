"""Plots as inline SVG text: a line chart (ROC, PR) and a histogram of two groups with marked
values (threshold, review band). Inline SVG keeps the report one self-contained file that needs no
plotting library to write and no network to show."""

from __future__ import annotations

from html import escape

import numpy as np

W, H = 420, 300
LEFT, RIGHT, TOP, BOTTOM = 52, 14, 28, 44
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def _fmt(v: float) -> str:
    return f"{v:.3g}"


class _Axes:
    def __init__(self, x0: float, x1: float, y0: float, y1: float):
        if not x1 > x0:
            x0, x1 = x0 - 0.5, x0 + 0.5
        if not y1 > y0:
            y0, y1 = y0 - 0.5, y0 + 0.5
        self.x0, self.x1, self.y0, self.y1 = x0, x1, y0, y1

    def x(self, v) -> np.ndarray:
        return LEFT + (np.asarray(v, np.float64) - self.x0) / (self.x1 - self.x0) * (W - LEFT - RIGHT)

    def y(self, v) -> np.ndarray:
        return H - BOTTOM - (np.asarray(v, np.float64) - self.y0) / (self.y1 - self.y0) * (H - TOP - BOTTOM)

    def frame(self, title: str, xlabel: str, ylabel: str, ticks: int = 5) -> list[str]:
        out = [f'<rect x="{LEFT}" y="{TOP}" width="{W - LEFT - RIGHT}" height="{H - TOP - BOTTOM}" '
               'fill="none" stroke="#333"/>',
               f'<text x="{W / 2}" y="16" text-anchor="middle" font-weight="bold">{escape(title)}</text>',
               f'<text x="{(LEFT + W - RIGHT) / 2}" y="{H - 8}" text-anchor="middle">{escape(xlabel)}</text>',
               f'<text transform="translate(13,{(TOP + H - BOTTOM) / 2}) rotate(-90)" text-anchor="middle">'
               f'{escape(ylabel)}</text>']
        for v in np.linspace(self.x0, self.x1, ticks):
            px = float(self.x(v))
            out.append(f'<line x1="{px:.1f}" y1="{H - BOTTOM}" x2="{px:.1f}" y2="{H - BOTTOM + 4}" stroke="#333"/>'
                       f'<text x="{px:.1f}" y="{H - BOTTOM + 16}" text-anchor="middle">{_fmt(v)}</text>')
        for v in np.linspace(self.y0, self.y1, ticks):
            py = float(self.y(v))
            out.append(f'<line x1="{LEFT - 4}" y1="{py:.1f}" x2="{LEFT}" y2="{py:.1f}" stroke="#333"/>'
                       f'<text x="{LEFT - 6}" y="{py + 4:.1f}" text-anchor="end">{_fmt(v)}</text>')
        return out


def _svg(parts: list[str], label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(label)}" '
            f'viewBox="0 0 {W} {H}" width="{W}" height="{H}" font-family="sans-serif" font-size="11">'
            + "".join(parts) + "</svg>")


def _legend(names: list[str], x: float, y: float) -> list[str]:
    out = []
    for k, name in enumerate(names):
        c = COLOURS[k % len(COLOURS)]
        out.append(f'<rect x="{x}" y="{y + 14 * k - 8}" width="10" height="10" fill="{c}"/>'
                   f'<text x="{x + 14}" y="{y + 14 * k + 1}">{escape(name)}</text>')
    return out


def line_chart(series: list[tuple[str, np.ndarray, np.ndarray]], *, title: str, xlabel: str, ylabel: str,
               diagonal: bool = False, marks: list[tuple[float, float, str]] = ()) -> str:
    """Curves in the unit square: ``series`` of (name, x, y); ``diagonal`` draws the chance line;
    ``marks`` (x, y, label) are points drawn on top (the operating point at the threshold)."""
    ax = _Axes(0.0, 1.0, 0.0, 1.0)
    parts = ax.frame(title, xlabel, ylabel)
    if diagonal:
        parts.append(f'<line x1="{ax.x(0):.1f}" y1="{ax.y(0):.1f}" x2="{ax.x(1):.1f}" y2="{ax.y(1):.1f}" '
                     'stroke="#aaa" stroke-dasharray="4 3"/>')
    for k, (_, xs, ys) in enumerate(series):
        pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(ax.x(xs), ax.y(ys)))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{COLOURS[k % len(COLOURS)]}" stroke-width="2"/>')
    for mx, my, label in marks:
        px, py = float(ax.x(mx)), float(ax.y(my))
        right = px > W - RIGHT - 80  # near the right edge the label goes to the left of the point
        parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="5" fill="none" stroke="#000" stroke-width="2"/>'
                     f'<text x="{px - 8 if right else px + 8:.1f}" y="{py + 16:.1f}" '
                     f'text-anchor="{"end" if right else "start"}">{escape(label)}</text>')
    parts += _legend([name for name, _, _ in series], LEFT + 150, H - BOTTOM - 14 * len(series))
    return _svg(parts, title)


def histogram(groups: list[tuple[str, np.ndarray]], *, title: str, xlabel: str, bins: int = 30,
              lines: list[tuple[float, str]] = (), band: tuple[float, float] | None = None) -> str:
    """Overlaid histograms of ``groups`` (name, values) over common bins; ``lines`` (value, label)
    are vertical markers (the threshold), ``band`` a shaded interval (the review band)."""
    finite = [np.asarray(v, np.float64)[np.isfinite(v)] for _, v in groups]
    every = np.concatenate([v for v in finite if v.size] + [np.array([x for x, _ in lines], np.float64)])
    lo, hi = (float(every.min()), float(every.max())) if every.size else (0.0, 1.0)
    if band is not None:
        lo, hi = min(lo, band[0]), max(hi, band[1])
    pad = 0.02 * (hi - lo or 1.0)
    edges = np.linspace(lo - pad, hi + pad, bins + 1)
    counts = [np.histogram(v, edges)[0] for v in finite]
    top = max([int(c.max()) for c in counts if c.size] + [1])
    ax = _Axes(float(edges[0]), float(edges[-1]), 0.0, float(top))
    parts = ax.frame(title, xlabel, "images")
    if band is not None:
        x0, x1 = float(ax.x(band[0])), float(ax.x(band[1]))
        parts.append(f'<rect x="{x0:.1f}" y="{TOP}" width="{max(x1 - x0, 1):.1f}" height="{H - TOP - BOTTOM}" '
                     'fill="#ffd54f" fill-opacity="0.35"><title>review band</title></rect>')
    for k, c in enumerate(counts):
        colour = COLOURS[k % len(COLOURS)]
        for i, n in enumerate(c):
            if n:
                x0, x1 = float(ax.x(edges[i])), float(ax.x(edges[i + 1]))
                y = float(ax.y(n))
                parts.append(f'<rect x="{x0:.1f}" y="{y:.1f}" width="{x1 - x0:.1f}" height="{H - BOTTOM - y:.1f}" '
                             f'fill="{colour}" fill-opacity="0.5" stroke="{colour}"/>')
    for value, label in lines:
        px = float(ax.x(value))
        parts.append(f'<line x1="{px:.1f}" y1="{TOP}" x2="{px:.1f}" y2="{H - BOTTOM}" stroke="#000" '
                     f'stroke-width="2" stroke-dasharray="6 3"/><text x="{px + 4:.1f}" y="{TOP + 12}">'
                     f'{escape(label)}</text>')
    parts += _legend([name for name, _ in groups], W - RIGHT - 110, TOP + 14)
    return _svg(parts, title)
