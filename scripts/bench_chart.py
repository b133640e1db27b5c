#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""SVG chart of msg/s by concurrency per mode (2 KB, inet) from milter-load's CSV.

Usage: bench_chart.py performance.csv performance.svg   (scripts/bench.py calls svg() itself)
Plain SVG written by hand: no plotting library, no network. The y axis is logarithmic because
the load generator's ceiling is an order of magnitude above the milter's rates.
"""
from __future__ import annotations

import csv
import math
import re
import sys
from xml.sax.saxutils import escape

SERIES = [("sign-rsa", "#d62728"), ("sign-ecdsa", "#1f77b4"), ("verify", "#2ca02c"),
          ("pass-through", "#9467bd"), ("ceiling", "#7f7f7f")]


def points(rows: list[dict], mode: str) -> list[tuple[int, float]]:
    out = []
    for r in rows:
        label = r["label"]
        pattern = r"ceiling-2K-c\d+" if mode == "ceiling" else re.escape(mode) + r"-2K-inet-c\d+"
        if not re.fullmatch(pattern, label):
            continue
        out.append((int(r["concurrency"]), float(r["msg_per_s"])))
    return sorted(out)


def svg(rows: list[dict]) -> str:
    W, H, left, right, top, bottom = 760, 440, 80, 190, 40, 60
    pw, ph = W - left - right, H - top - bottom
    data = {m: points(rows, m) for m, _ in SERIES}
    values = [v for pts in data.values() for _, v in pts if v > 0]
    concs = sorted({c for pts in data.values() for c, _ in pts}) or [1]
    lo = 10 ** math.floor(math.log10(min(values))) if values else 1
    hi = 10 ** math.ceil(math.log10(max(values))) if values else 10
    if hi <= lo:
        hi = lo * 10

    def x(c: int) -> float:
        i = concs.index(c)
        return left + (pw * i / (len(concs) - 1) if len(concs) > 1 else pw / 2)

    def y(v: float) -> float:
        return top + ph * (1 - (math.log10(max(v, lo)) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)))

    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
         'font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{left}" y="22" font-size="15">milter-load: msg/s by concurrency, 2 KB messages, inet socket</text>']
    d = lo
    while d <= hi * 1.0001:
        for k in (1, 2, 5):
            v = d * k
            if v > hi * 1.0001:
                break
            yy = y(v)
            s.append(f'<line x1="{left}" x2="{left + pw}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#ddd"/>')
            s.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{v:g}</text>')
        d *= 10
    for c in concs:
        s.append(f'<line x1="{x(c):.1f}" x2="{x(c):.1f}" y1="{top}" y2="{top + ph}" stroke="#eee"/>')
        s.append(f'<text x="{x(c):.1f}" y="{top + ph + 18}" text-anchor="middle">{c}</text>')
    s.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    s.append(f'<text x="{left + pw / 2}" y="{H - 15}" text-anchor="middle">concurrent sessions</text>')
    s.append(f'<text x="18" y="{top + ph / 2}" text-anchor="middle" transform="rotate(-90 18 {top + ph / 2})">'
             'messages per second (log scale)</text>')
    ly = top + 10
    for mode, colour in SERIES:
        pts = data[mode]
        if not pts:
            continue
        dash = ' stroke-dasharray="6 4"' if mode == "ceiling" else ""
        path = " ".join(f"{x(c):.1f},{y(v):.1f}" for c, v in pts)
        s.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        for c, v in pts:
            s.append(f'<circle cx="{x(c):.1f}" cy="{y(v):.1f}" r="3.5" fill="{colour}"><title>{escape(mode)} '
                     f'c={c}: {v:g} msg/s</title></circle>')
        name = "ceiling (accept-all)" if mode == "ceiling" else mode
        s.append(f'<line x1="{left + pw + 15}" x2="{left + pw + 40}" y1="{ly}" y2="{ly}" stroke="{colour}" '
                 f'stroke-width="2"{dash}/>')
        s.append(f'<text x="{left + pw + 46}" y="{ly + 4}">{escape(name)}</text>')
        ly += 20
    s.append("</svg>")
    return "\n".join(s) + "\n"


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        rows = list(csv.DictReader(f))
    with open(sys.argv[2], "w") as f:
        f.write(svg(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
