"""One self-contained HTML page per build: the funnel, turns to correct, lengths, cost per stage.

The plots are inline SVG drawn here, so the file opens anywhere (no script, stylesheet or font is
fetched) and nothing beyond the standard library is needed to draw it.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from raspberry.report import (
    cost_rows,
    funnel_rows,
    run_lines,
    stage_reports,
    stage_specs,
    stage_totals,
)
from raspberry.store import BuildStore

REPORT_NAME = "report.html"
BAR_COLOUR = "#c2185b"  # raspberry


def bar_chart(labels: list[str], values: list[float], title: str, unit: str = "") -> str:
    """A horizontal bar chart as an SVG element, each bar labelled with its value."""
    row, left, width = 26, 170, 380
    height = 40 + row * len(labels)
    top = max(values, default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 120}" '
        f'height="{height}" role="img" aria-label="{html.escape(title)}">',
        f'<text x="0" y="18" font-weight="bold">{html.escape(title)}</text>',
    ]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = 32 + i * row
        w = width * value / top
        shown = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.4f}"
        parts += [
            f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{html.escape(label)}</text>',
            f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{row - 6}" fill="{BAR_COLOUR}"/>',
            f'<text x="{left + w + 6:.1f}" y="{y + 15}">{shown}{unit}</text>',
        ]
    parts.append("</svg>")
    return "\n".join(parts)


def histogram(values: list[float], title: str, bins: int = 12) -> str:
    """Counts of values in equal-width bins, drawn with bar_chart; a note when there are none."""
    if not values:
        return f"<p><b>{html.escape(title)}</b>: no rows.</p>"
    low, high = min(values), max(values)
    step = (high - low) / bins or 1
    counts = [0] * bins
    for v in values:
        counts[min(int((v - low) / step), bins - 1)] += 1
    labels = [f"{low + i * step:,.0f} – {low + (i + 1) * step:,.0f}" for i in range(bins)]
    return bar_chart(labels, [float(c) for c in counts], f"{title}, n = {len(values):,}")


def lengths(store: BuildStore, manifest: dict[str, Any]) -> dict[str, list]:
    """Per plotted measure, the values over the build's done shards (read column by column)."""
    out: dict[str, list] = {}
    for spec in stage_specs():
        if spec.length is None:
            continue
        column, title, accepted_only = spec.length
        keep = spec.accepted if accepted_only else None
        values: list[float] = []
        for entry in manifest["stages"].get(spec.name, {}).values():
            if entry["state"] != "done":
                continue
            columns = [column] + ([keep[0]] if keep else [])
            table = store.read_columns(entry["path"], spec.row_type, columns)
            if keep:
                table = table.filter(pc.equal(table[keep[0]], keep[1]))
            col = table[column]
            if pa.types.is_string(col.type):
                col = pc.utf8_length(col)
            values += col.to_pylist()
        out[title] = values
    return out


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>none</p>"
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r.values()) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render(store: BuildStore, manifest: dict[str, Any]) -> str:
    """The report page for a build, from its manifest and shards."""
    totals, reports = stage_totals(manifest), stage_reports(manifest)
    specs = stage_specs()
    sections = [
        "<h2>Stage funnel</h2>",
        bar_chart(
            [s.funnel or s.name for s in specs], [totals[s.name]["rows_out"] for s in specs], "rows"
        ),
        _table(funnel_rows(manifest)),
        *(chart for s in specs for chart in s.charts(reports[s.name])),
        "<h2>Length distributions</h2>",
        *(histogram(v, title) for title, v in lengths(store, manifest).items()),
        "<h2>Cost per stage</h2>",
        bar_chart(
            [s.name for s in specs], [totals[s.name]["cost_usd"] for s in specs], "cost", " $"
        ),
        _table(cost_rows(manifest, (manifest.get("runs") or [None])[-1])),
        "<h2>Runs</h2>",
        "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in run_lines(manifest)) + "</ul>",
    ]
    made = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>Raspberry build {html.escape(store.build_id)}</title><style>"
        "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
        "svg{font:12px sans-serif;display:block;margin:1em 0}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px}"
        "</style></head><body>"
        f"<h1>Raspberry build {html.escape(store.build_id)}</h1><p>written {made}</p>"
        + "\n".join(sections)
        + "</body></html>\n"
    )


def write_report(store: BuildStore, manifest: dict[str, Any]) -> str:
    """Write <build>/report.html whole; return its URL."""
    store.files.write_text(REPORT_NAME, render(store, manifest))
    return store.files.url(REPORT_NAME)
