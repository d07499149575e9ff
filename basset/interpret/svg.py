"""Inline SVG drawings (sequence logos, mutagenesis heat maps) and the self-contained HTML page
around them: no plotting library, no network."""

from __future__ import annotations

import html

import numpy as np

BASES = "ACGT"
COLOURS = {"A": "#109648", "C": "#255C99", "G": "#F7B32B", "T": "#D62839", "N": "#888888"}
# Letters are glyphs 100 units wide and cap-height (~72 units of a 100-unit bold sans font) tall,
# defined once per page (GLYPHS) and placed with <use>, scaled to each stack's box.
_CAP = 72.0
GLYPHS = (
    '<svg width="0" height="0" style="position:absolute"><defs>'
    + "".join(
        f'<text id="glyph-{letter}" x="0" y="0" font-size="100" '
        'font-family="Arial,Helvetica,sans-serif" '
        'font-weight="bold" textLength="100" lengthAdjust="spacingAndGlyphs" '
        f'fill="{COLOURS[letter]}">'
        f"{letter}</text>"
        for letter in BASES
    )
    + "</defs></svg>"
)


def _letter(letter: str, x: float, bottom: float, width: float, height: float) -> str:
    return (
        f'<use href="#glyph-{letter}" transform="translate({x:.1f},{bottom:.1f}) '
        f'scale({width / 100:.3f},{height / _CAP:.3f})"/>'
    )


def information(pwm: np.ndarray) -> np.ndarray:
    """Information content of each column of a (4, w) probability matrix, in bits."""
    p = np.clip(pwm, 1e-12, 1.0)
    return 2.0 + (pwm * np.log2(p)).sum(axis=0)


def logo_svg(pwm: np.ndarray, *, column_width: float = 14, height: float = 60) -> str:
    """A sequence logo: letter heights = probability x column information (0..2 bits).
    Its letters are GLYPHS, which the page must hold (html_page does)."""
    ic = information(pwm)
    width = pwm.shape[1] * column_width
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height + 2:.0f}">'
    ]
    for col in range(pwm.shape[1]):
        bottom = height
        for base in np.argsort(pwm[:, col]):  # smallest at the bottom, the consensus on top
            h = pwm[base, col] * ic[col] / 2.0 * height
            if h >= 0.5:
                parts.append(_letter(BASES[base], col * column_width, bottom, column_width, h))
            bottom -= h
    parts.append(
        f'<line x1="0" y1="{height + 1}" x2="{width}" y2="{height + 1}" stroke="#999" '
        'stroke-width="1"/>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _diverging(value: float, scale: float) -> str:
    """White at 0, red for gains, blue for losses, saturating at |value| = scale."""
    t = 0.0 if scale <= 0 else max(-1.0, min(1.0, value / scale))
    fade = int(round(255 * (1 - abs(t))))
    return f"rgb(255,{fade},{fade})" if t > 0 else f"rgb({fade},{fade},255)"


def heatmap_svg(delta: np.ndarray, sequence: str, *, start: int = 1, cell: float = 8) -> str:
    """(4, W) prediction changes as a heat map (rows A,C,G,T), the sequence underneath.

    Colours saturate at the largest |change| of this map; hover a cell for its value.
    """
    width = delta.shape[1]
    scale = float(np.abs(delta).max())
    label = 14
    x0 = label
    top = 0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{x0 + width * cell:.0f}" '
        f'height="{top + 6 * cell + 14:.0f}" font-family="monospace" font-size="{cell + 2:.0f}">'
    ]
    for row, base in enumerate(BASES):
        y = top + row * cell
        parts.append(f'<text x="0" y="{y + cell:.1f}" fill="{COLOURS[base]}">{base}</text>')
        for col in range(width):
            value = float(delta[row, col])
            parts.append(
                f'<rect x="{x0 + col * cell:.1f}" y="{y:.1f}" width="{cell}" height="{cell}" '
                f'fill="{_diverging(value, scale)}"><title>{start + col} {base}: '
                f'{value:+.4f}</title></rect>'
            )
    y = top + 5 * cell + 2
    for col, letter in enumerate(sequence):
        parts.append(
            f'<text x="{x0 + col * cell:.1f}" y="{y:.1f}" '
            f'fill="{COLOURS.get(letter, "#888")}">{letter}</text>'
        )
    for col in range(0, width, 10):
        parts.append(
            f'<text x="{x0 + col * cell:.1f}" y="{y + 12:.1f}" fill="#666">{start + col}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def html_page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
        "td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:middle}"
        "td.mono{font-family:monospace}"
        f"</style></head><body>{GLYPHS}<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )
