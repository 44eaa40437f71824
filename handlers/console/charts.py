"""Server-side SVG charts: print well, need no script and no network; every chart has a title and a
text description for screen readers (the numbers are also in tables next to it)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from xml.sax.saxutils import escape

from markupsafe import Markup

FONT = "font-family=\"system-ui, 'Segoe UI', Roboto, Arial, sans-serif\""
INK = "#1f2933"
GRID = "#d5dbe1"
COLORS = {"answer": "#2e7d32", "choices": "#f0a30a", "fallback": "#c62828", "helpful": "#2e7d32",
          "unhelpful": "#c62828", "bar": "#1f5f99", "line": "#1f5f99"}


def _e(text: object) -> str:
    return escape(str(text), {'"': "&quot;"})


def nice_max(value: float) -> tuple[float, float]:
    """A round axis maximum and tick step for ``value``."""
    if value <= 0:
        return 1.0, 1.0
    exp = 10 ** math.floor(math.log10(value))
    for m, parts in ((1, 5), (2, 4), (4, 4), (5, 5), (10, 5)):
        if m * exp >= value:
            return m * exp, m * exp / parts
    return 10 * exp, 2 * exp


def _fmt(v: float) -> str:
    if abs(v - round(v)) < 1e-9:
        return f"{int(round(v)):,}".replace(",", ".")
    return f"{v:,.1f}".replace(",", " ").replace(".", ",").replace(" ", ".")


def _open(width: int, height: int, title: str, desc: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="{_e(title)}" class="chart" {FONT} font-size="12" fill="{INK}">',
        f"<title>{_e(title)}</title><desc>{_e(desc)}</desc>",
        f'<text x="0" y="16" font-size="15" font-weight="600">{_e(title)}</text>',
    ]


def stacked_bars(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float], str]], title: str,
                 *, width: int = 760, height: int = 280, desc: str = "") -> Markup:
    """Vertical stacked bars, one per label (e.g. per day), with a legend."""
    n = max(1, len(labels))
    totals = [sum(s[1][i] for s in series) for i in range(len(labels))]
    top, step = nice_max(max(totals or [0]))
    left, right, top_pad, bottom = 48, 10, 48, 44
    pw, ph = width - left - right, height - top_pad - bottom
    out = _open(width, height, title, desc or f"{title}: tổng {_fmt(sum(totals))}.")
    # legend
    x = left
    for name, _vals, color in series:
        out.append(f'<rect x="{x}" y="26" width="12" height="12" fill="{color}"/>'
                   f'<text x="{x + 16}" y="36">{_e(name)}</text>')
        x += 22 + 7 * len(name)
    # grid
    ticks = int(round(top / step))
    for t in range(ticks + 1):
        v = t * step
        y = top_pad + ph - ph * v / top
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(v)}</text>')
    bw = pw / n
    every = max(1, math.ceil(n / 15))
    for i, label in enumerate(labels):
        x0 = left + i * bw + bw * 0.12
        y = top_pad + ph
        for name, vals, color in series:
            v = vals[i]
            if v <= 0:
                continue
            h = ph * v / top
            y -= h
            out.append(f'<rect x="{x0:.1f}" y="{y:.1f}" width="{bw * 0.76:.1f}" height="{h:.1f}" '
                       f'fill="{color}"><title>{_e(label)} – {_e(name)}: {_fmt(v)}</title></rect>')
        if i % every == 0:
            out.append(f'<text x="{x0 + bw * 0.38:.1f}" y="{top_pad + ph + 16}" text-anchor="middle">'
                       f"{_e(label)}</text>")
    out.append(f'<line x1="{left}" x2="{width - right}" y1="{top_pad + ph}" y2="{top_pad + ph}" stroke="{INK}"/>')
    out.append("</svg>")
    return Markup("".join(out))


def share_bar(parts: Sequence[tuple[str, float, str]], title: str, *, width: int = 760) -> Markup:
    """One 100% bar split into shares, each labelled with its percentage."""
    total = sum(p[1] for p in parts)
    height = 96
    desc = "; ".join(f"{name}: {(v / total * 100 if total else 0):.1f}%" for name, v, _c in parts)
    out = _open(width, height, title, desc)
    x = 0.0
    y, h = 28, 30
    if total <= 0:
        out.append(f'<rect x="0" y="{y}" width="{width}" height="{h}" fill="{GRID}"/>'
                   f'<text x="8" y="{y + 20}">Chưa có dữ liệu</text>')
    for name, v, color in parts:
        if total <= 0 or v <= 0:
            continue
        w = width * v / total
        out.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{h}" fill="{color}">'
                   f"<title>{_e(name)}: {_fmt(v)}</title></rect>")
        pct = v / total * 100
        if w > 44:
            out.append(f'<text x="{x + w / 2:.1f}" y="{y + 20}" text-anchor="middle" fill="#fff" '
                       f'font-weight="600">{pct:.0f}%</text>')
        x += w
    lx = 0
    for name, v, color in parts:
        pct = v / total * 100 if total else 0
        label = f"{name} {pct:.1f}% ({_fmt(v)})"
        out.append(f'<rect x="{lx}" y="{y + h + 12}" width="12" height="12" fill="{color}"/>'
                   f'<text x="{lx + 16}" y="{y + h + 22}">{_e(label)}</text>')
        lx += 30 + int(6.6 * len(label))
    out.append("</svg>")
    return Markup("".join(out))


def hbars(items: Sequence[tuple[str, float]], title: str, *, color: str = COLORS["bar"],
          width: int = 760, unit: str = "") -> Markup:
    """Horizontal bars with the label on the left and the value at the end of each bar."""
    row = 24
    label_w = 300
    height = 30 + row * max(1, len(items)) + 8
    top, _step = nice_max(max([v for _l, v in items] or [0]))
    desc = "; ".join(f"{label}: {_fmt(v)}{unit}" for label, v in items) or "Chưa có dữ liệu"
    out = _open(width, height, title, desc)
    pw = width - label_w - 70
    if not items:
        out.append('<text x="0" y="44">Chưa có dữ liệu</text>')
    for i, (label, v) in enumerate(items):
        y = 30 + i * row
        short = label if len(label) <= 46 else label[:44] + "…"
        w = pw * v / top if top else 0
        out.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end"><title>{_e(label)}</title>'
                   f"{_e(short)}</text>"
                   f'<rect x="{label_w}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row - 8}" fill="{color}"/>'
                   f'<text x="{label_w + w + 6:.1f}" y="{y + 15}">{_fmt(v)}{_e(unit)}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def line(labels: Sequence[str], values: Sequence[float | None], title: str, *, unit: str = "",
         width: int = 760, height: int = 220, color: str = COLORS["line"]) -> Markup:
    """A line over days (gaps where there is no value)."""
    present = [v for v in values if v is not None]
    top, step = nice_max(max(present or [0]))
    left, right, top_pad, bottom = 56, 10, 30, 40
    pw, ph = width - left - right, height - top_pad - bottom
    desc = f"{title}: trung bình {_fmt(sum(present) / len(present))}{unit}." if present else "Chưa có dữ liệu"
    out = _open(width, height, title, desc)
    ticks = int(round(top / step))
    for t in range(ticks + 1):
        v = t * step
        y = top_pad + ph - ph * v / top
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(v)}</text>')
    n = max(1, len(labels))
    bw = pw / n
    every = max(1, math.ceil(n / 15))
    pts: list[str] = []
    for i, (label, val) in enumerate(zip(labels, values, strict=True)):
        x = left + i * bw + bw / 2
        if val is None:
            if len(pts) > 1:
                out.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="{color}" stroke-width="2"/>')
            pts = []
        else:
            y = top_pad + ph - ph * val / top
            pts.append(f"{x:.1f},{y:.1f}")
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}">'
                       f"<title>{_e(label)}: {_fmt(val)}{_e(unit)}</title></circle>")
        if i % every == 0:
            out.append(f'<text x="{x:.1f}" y="{top_pad + ph + 16}" text-anchor="middle">{_e(label)}</text>')
    if len(pts) > 1:
        out.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="{color}" stroke-width="2"/>')
    out.append(f'<line x1="{left}" x2="{width - right}" y1="{top_pad + ph}" y2="{top_pad + ph}" stroke="{INK}"/>')
    out.append("</svg>")
    return Markup("".join(out))
