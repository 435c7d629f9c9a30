"""A boot chart: the stages of a boot as bars on a time axis, as an SVG file
(docs/architecture.md "Boot-time gate"). People look at boot charts; they do
not read timeline JSON."""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

ROW = 22  # pixels per bar
LABEL_WIDTH = 190  # pixels for the bar names
PLOT_WIDTH = 560  # pixels for the time axis
TOP = 34  # pixels above the first bar (the title)
AXIS = 30  # pixels below the last bar (the ticks)
COLOURS = {"kernel": "#9aa5b1", "ok": "#3b82f6", "failed": "#dc2626", "open": "#f59e0b"}


@dataclass(frozen=True)
class Bar:
    label: str
    start: float  # seconds after the boot's first console byte
    duration: float
    kind: str = "ok"  # a key of COLOURS


def tick_step(span: float) -> float:
    """A round tick interval giving 4 to 10 ticks over `span` seconds."""
    raw = max(span, 0.001) / 8
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


def chart_svg(title: str, bars: list[Bar]) -> str:
    """The SVG text of a boot chart: one labelled bar per row, seconds below."""
    span = max((b.start + b.duration for b in bars), default=1.0) or 1.0
    step = tick_step(span)
    end = math.ceil(span / step) * step
    scale = PLOT_WIDTH / end
    width = LABEL_WIDTH + PLOT_WIDTH + 60  # room for the last bar's seconds
    height = TOP + ROW * len(bars) + AXIS
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="8" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    for i, bar in enumerate(bars):
        y = TOP + i * ROW
        x = LABEL_WIDTH + bar.start * scale
        w = max(bar.duration * scale, 1.0)
        out.append(f'<text x="8" y="{y + 15}">{escape(bar.label)}</text>')
        out.append(
            f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{ROW - 6}" '
            f'fill="{COLOURS[bar.kind]}"><title>{escape(bar.label)}: '
            f"{bar.start:.2f}s + {bar.duration:.2f}s</title></rect>"
        )
        out.append(f'<text x="{x + w + 4:.1f}" y="{y + 15}" fill="#333">{bar.duration:.2f}s</text>')
    axis_y = TOP + ROW * len(bars) + 4
    out.append(
        f'<line x1="{LABEL_WIDTH}" y1="{axis_y}" x2="{LABEL_WIDTH + PLOT_WIDTH}" '
        f'y2="{axis_y}" stroke="#333"/>'
    )
    for k in range(round(end / step) + 1):
        x = LABEL_WIDTH + k * step * scale
        out.append(
            f'<line x1="{x:.1f}" y1="{axis_y}" x2="{x:.1f}" y2="{axis_y + 5}" stroke="#333"/>'
        )
        out.append(f'<text x="{x:.1f}" y="{axis_y + 18}" text-anchor="middle">{k * step:g}s</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
