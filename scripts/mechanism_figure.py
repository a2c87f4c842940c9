#!/usr/bin/env python3
"""The mechanism figure of docs/mechanism.md from scripts/mechanism_study.sh's mechanism.csv.

Two panels (test mean F1, all-pairs worst-group F1): for every pretraining recipe, the paired
difference bn-recal - frozen (circles) and bn-stats - frozen (squares) with its 95% interval,
under the trained head (filled) and the converged head (open), against the standardised distance
of the backbone's BatchNorm statistics from the clean data's (mean over layers of |dmean| / sd):
one column per recipe, in order of that distance, which is printed under the recipe's name.
The paper's mechanism predicts that the differences grow with the distance.

Usage: scripts/mechanism_figure.py MECHANISM_CSV OUT_SVG
"""
import csv
import sys
from xml.sax.saxutils import escape

rows = list(csv.DictReader(open(sys.argv[1])))
width, height = 960, 440
panel_w, panel_h = 380, 300
left, top = 70, 50
gap = 90
order = sorted({r["row"]: float(r["distance_mean"]) for r in rows}.items(), key=lambda item: item[1])
column = {name: i for i, (name, _) in enumerate(order)}
short = {"crop-0.08-blur": "8%+blur", "crop-0.3-blur": "30%+blur", "crop-0.7-blur": "70%+blur", "crop-0.08": "8%", "planted-shift": "shifted"}
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
       f'<rect width="{width}" height="{height}" fill="white"/>']
for p, (metric, title) in enumerate([("mean_f1", "test mean F1"), ("all_worst", "all worst-group F1")]):
    x0 = left + p * (panel_w + gap)
    values = [float(r[metric + s]) for r in rows for s in ("_low", "_high")]
    y_lo, y_hi = min(values + [0]) * 1.1, max(values + [0]) * 1.1
    if y_hi - y_lo < 1e-9:
        y_hi = y_lo + 0.01
    fx = lambda name: x0 + (column[name] + 0.5) / len(order) * panel_w
    fy = lambda v: top + (y_hi - v) / (y_hi - y_lo) * panel_h
    out.append(f'<text x="{x0 + panel_w / 2}" y="{top - 20}" text-anchor="middle" font-size="14">{escape(title)}: strategy - frozen</text>')
    out.append(f'<rect x="{x0}" y="{top}" width="{panel_w}" height="{panel_h}" fill="none" stroke="#444"/>')
    out.append(f'<line x1="{x0}" x2="{x0 + panel_w}" y1="{fy(0):.1f}" y2="{fy(0):.1f}" stroke="#999" stroke-dasharray="4 3"/>')
    for i in range(5):
        v = y_lo + (y_hi - y_lo) * i / 4
        out.append(f'<text x="{x0 - 6}" y="{fy(v) + 4:.1f}" text-anchor="end">{v:+.3f}</text>')
    for name, distance in order:
        out.append(f'<text x="{fx(name):.1f}" y="{top + panel_h + 16}" text-anchor="middle">{escape(short.get(name, name))}</text>')
        out.append(f'<text x="{fx(name):.1f}" y="{top + panel_h + 31}" text-anchor="middle" fill="#555">{distance:.3f}</text>')
    out.append(f'<text x="{x0 + panel_w / 2}" y="{top + panel_h + 52}" text-anchor="middle">recipe; its statistics to the data (mean |Δmean| / sd over layers)</text>')
    for r in rows:
        offset = {("bn-recal", "trained"): -18, ("bn-recal", "converged"): -6, ("bn-stats", "trained"): 6, ("bn-stats", "converged"): 18}[(r["comparison"], r["head"])]
        cx = fx(r["row"]) + offset
        color = "#1f5fa8" if r["comparison"] == "bn-recal" else "#c0552b"
        fill = color if r["head"] == "trained" else "white"
        out.append(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{fy(float(r[metric + "_low"])):.1f}" y2="{fy(float(r[metric + "_high"])):.1f}" stroke="{color}"/>')
        cy = fy(float(r[metric]))
        if r["comparison"] == "bn-recal":
            out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3.5" fill="{fill}" stroke="{color}"/>')
        else:
            out.append(f'<rect x="{cx - 3.5:.1f}" y="{cy - 3.5:.1f}" width="7" height="7" fill="{fill}" stroke="{color}"/>')
legend_y = height - 16
items = [("circle", "#1f5fa8", True, "bn-recal, trained head"), ("circle", "#1f5fa8", False, "bn-recal, converged head"),
         ("rect", "#c0552b", True, "bn-stats, trained head"), ("rect", "#c0552b", False, "bn-stats, converged head")]
for i, (shape, color, filled, label) in enumerate(items):
    x = left + i * 200
    fill = color if filled else "white"
    if shape == "circle":
        out.append(f'<circle cx="{x}" cy="{legend_y}" r="4" fill="{fill}" stroke="{color}"/>')
    else:
        out.append(f'<rect x="{x - 4}" y="{legend_y - 4}" width="8" height="8" fill="{fill}" stroke="{color}"/>')
    out.append(f'<text x="{x + 10}" y="{legend_y + 4}">{escape(label)}</text>')
out.append("</svg>")
open(sys.argv[2], "w").write("\n".join(out) + "\n")
