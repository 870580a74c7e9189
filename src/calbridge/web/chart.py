"""A bar chart of sync runs and errors per day, drawn server-side as SVG (no script, no CDN:
the service works offline). Only numbers and dates go into the markup; labels are escaped
anyway."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from html import escape


@dataclass(frozen=True)
class Day:
    day: date
    runs: int
    errors: int


WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 220, 40, 30, 12


def runs_chart(days: list[Day]) -> str:
    """``<svg>`` with one pair of bars (runs, errors) per day, an axis and a text summary."""
    peak = max([d.runs for d in days] + [1])
    plot_h = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT - 10) / max(len(days), 1)
    bar = max(slot * 0.38, 1.0)
    total_runs = sum(d.runs for d in days)
    total_errors = sum(d.errors for d in days)
    title = (
        f"Sync runs per day: {total_runs} runs, {total_errors} with errors, last {len(days)} days"
    )
    parts = [
        '<svg class="chart" role="img" aria-labelledby="chart-title" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="chart-title">{escape(title)}</title>',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - 5}" y2="{TOP + plot_h}" '
        'stroke="#4a4a4a"/>',
        f'<text x="{LEFT - 6}" y="{TOP + 10}" text-anchor="end" font-size="11">{peak}</text>',
        f'<text x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end" font-size="11">0</text>',
    ]
    for i, d in enumerate(days):
        x = LEFT + i * slot + slot * 0.1
        for j, (value, colour) in enumerate(((d.runs, "#0b57d0"), (d.errors, "#a50e0e"))):
            h = plot_h * value / peak
            parts.append(
                f'<rect x="{x + j * bar:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{escape(d.day.isoformat())}: '
                f"{value} {'runs' if j == 0 else 'errors'}</title></rect>"
            )
        if len(days) <= 16 or i % 2 == 0:
            parts.append(
                f'<text x="{x + bar:.1f}" y="{HEIGHT - 10}" text-anchor="middle" font-size="10">'
                f"{escape(d.day.strftime('%m-%d'))}</text>"
            )
    parts.append(
        f'<rect x="{WIDTH - 150}" y="2" width="10" height="10" fill="#0b57d0"/>'
        f'<text x="{WIDTH - 136}" y="11" font-size="11">runs</text>'
        f'<rect x="{WIDTH - 90}" y="2" width="10" height="10" fill="#a50e0e"/>'
        f'<text x="{WIDTH - 76}" y="11" font-size="11">errors</text>'
    )
    parts.append("</svg>")
    return "".join(parts)
