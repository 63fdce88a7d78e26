"""The build report: what it paid, the funnel, turns to correct, sample rows, lengths, cost per
stage. Drawn twice from the same sections (figures.py): a self-contained HTML page beside the
build (inline SVG: no script, stylesheet or font is fetched) and Markdown for a Prefect artifact,
which any browser that reaches the Prefect UI can read.
"""

from __future__ import annotations

import datetime as dt
import html
import json

import pyarrow as pa
import pyarrow.compute as pc

from raspberry.build_files.manifest import Manifest
from raspberry.build_files.store import BuildStore
from raspberry.figures import Block, Chart, Sample, histogram, shown
from raspberry.llm.cost import money
from raspberry.report.browse import items
from raspberry.report.browse_page import BROWSER_NAME, write_browser
from raspberry.report.summary import UNCONFIRMED, recorded_paid
from raspberry.report.tables import (
    cost_rows,
    funnel_rows,
    run_lines,
    stage_reports,
    stage_specs,
    stage_totals,
)
from raspberry.train.report import loss_charts

REPORT_NAME = "report.html"
BAR_COLOUR = "#c2185b"  # raspberry


def bar_chart(chart: Chart) -> str:
    """A horizontal bar chart as an SVG element, each bar labelled with its value."""
    row, left, width = 26, 170, 380
    height = 40 + row * len(chart.labels)
    top = max(chart.values, default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 120}" '
        f'height="{height}" role="img" aria-label="{html.escape(chart.title)}">',
        f'<text x="0" y="18" font-weight="bold">{html.escape(chart.title)}</text>',
    ]
    for i, (label, value) in enumerate(zip(chart.labels, chart.values, strict=True)):
        y = 32 + i * row
        w = width * value / top
        parts += [
            f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{html.escape(label)}</text>',
            f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{row - 6}" fill="{BAR_COLOUR}"/>',
            f'<text x="{left + w + 6:.1f}" y="{y + 15}">{shown(value)}{chart.unit}</text>',
        ]
    parts.append("</svg>")
    return "\n".join(parts)


def text_chart(chart: Chart, width: int = 30) -> str:
    """The same chart in characters, for Markdown (a code block keeps the bars aligned)."""
    top = max(chart.values, default=0) or 1
    pad = max((len(label) for label in chart.labels), default=0)
    bars = [
        f"{label:<{pad}} {'█' * round(width * value / top):<{width}} {shown(value)}{chart.unit}"
        for label, value in zip(chart.labels, chart.values, strict=True)
    ]
    return f"**{chart.title}**\n\n```\n" + "\n".join(bars) + "\n```"


def lengths(store: BuildStore, manifest: Manifest) -> dict[str, list]:
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


def sections(store: BuildStore, manifest: Manifest) -> list[tuple[str, list[Block]]]:
    """The report's sections, (heading, blocks), from the build's records and shards."""
    totals, reports = stage_totals(manifest), stage_reports(manifest)
    specs = stage_specs()
    runs = manifest.get("runs") or [None]
    bill = recorded_paid(manifest)
    paid: list[Block] = [
        f"Paid for this build over {len(manifest.get('runs') or [])} run(s), interrupted ones "
        f"included: {money(bill.usd)} (the request ledger)."
    ]
    if bill.unconfirmed_usd:
        paid.append(UNCONFIRMED.format(money(bill.unconfirmed_usd)).capitalize() + ".")
    exported = totals[specs[-1].name]["rows_out"]
    if bill.usd and exported:
        paid.append(f"Cost per exported row: {money(bill.usd / exported)} ({exported} rows).")
    funnel = Chart(
        "rows", [s.funnel or s.name for s in specs], [totals[s.name]["rows_out"] for s in specs]
    )
    cost = Chart("cost", [s.name for s in specs], [totals[s.name]["cost_usd"] for s in specs], " $")
    lengths_ = [histogram(v, title) for title, v in lengths(store, manifest).items()]
    return [
        ("Paid", paid),
        ("Stage funnel", [funnel, funnel_rows(manifest)]),
        *((title, blocks) for s in specs for title, blocks in s.charts(reports[s.name])),
        (
            "Sample rows",
            [sample for s in specs if s.samples for sample in s.samples(store, manifest)],
        ),
        ("Length distributions", lengths_),
        ("Cost per stage", [cost, cost_rows(manifest, runs[-1])]),
        ("Training", list(loss_charts(store))),
        ("Evaluation", evaluation_blocks(store)),
        ("Runs", run_lines(manifest)),
    ]


def evaluation_blocks(store: BuildStore) -> list[Block]:
    """Each evaluation recorded with the build (<build>/evals/*.json, by `raspberry eval
    --build`): accuracy per model as a chart, and the paired comparisons as a table."""
    blocks: list[Block] = []
    for rel in sorted(store.files.glob("evals/*.json")):
        summary = json.loads(store.files.read_text(rel))
        models = summary["models"]
        blocks.append(
            Chart(f"accuracy ({summary['eval_id']})", list(models),
                  [m["mean"] for m in models.values()])
        )  # fmt: skip
        if pairs := summary.get("comparisons"):
            blocks.append([
                {"comparison": pair, "questions": c["questions"], "difference": c["difference"],
                 "95% CI": c["difference_ci95"], "format difference": c["format_difference"]}
                for pair, c in pairs.items()
            ])  # fmt: skip
    return blocks


def _html(block: Block) -> str:
    if isinstance(block, Chart):
        return bar_chart(block)
    if isinstance(block, Sample):
        turns = "".join(
            f"<p><b>{html.escape(role)}</b></p><pre>{html.escape(text)}</pre>"
            for role, text in block.dialogue
        )
        return (
            f"<h3>{html.escape(block.title)}</h3><p><b>question</b></p><pre>"
            f"{html.escape(block.question)}</pre><p><b>exported response</b></p><pre>"
            f"{html.escape(block.response)}</pre><details><summary>the dialogue it came from "
            f"({len(block.dialogue)} turns)</summary>{turns}</details>"
        )
    if isinstance(block, list):
        if not block:
            return "<p>none</p>"
        head = "".join(f"<th>{html.escape(str(k))}</th>" for k in block[0])
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r.values()) + "</tr>"
            for r in block
        )
        return f"<table><tr>{head}</tr>{body}</table>"
    return f"<p>{html.escape(block)}</p>"


def _markdown(block: Block) -> str:
    if isinstance(block, Chart):
        return text_chart(block)
    if isinstance(block, Sample):
        turns = "\n\n".join(f"**{role}**\n\n{_fenced(text, 400)}" for role, text in block.dialogue)
        return (
            f"### {block.title}\n\n**question**\n\n{_fenced(block.question, 600)}\n\n"
            f"**exported response**\n\n{_fenced(block.response, 1200)}\n\n"
            f"the dialogue it came from ({len(block.dialogue)} turns):\n\n{turns}"
        )
    if isinstance(block, list):
        if not block:
            return "none"
        cells = [list(block[0]), ["---"] * len(block[0])] + [
            [str(v) for v in r.values()] for r in block
        ]
        return "\n".join("| " + " | ".join(_cell(c) for c in row) + " |" for row in cells)
    return _cut(block, 2000)


def _fenced(text: str, limit: int) -> str:
    """A text in a fenced block, its line breaks kept, cut at `limit` characters."""
    text = text if len(text) <= limit else text[:limit] + " …"
    fence = "````" if "```" in text else "```"
    return f"{fence}text\n{text}\n{fence}"


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())  # one line: Markdown lists and tables hold no line breaks
    return text if len(text) <= limit else text[:limit] + " …"


def _cell(value: str) -> str:
    return _cut(value, 300).replace("|", "\\|")


def render_html(build_id: str, parts: list[tuple[str, list[Block]]]) -> str:
    """The report page: self-contained HTML."""
    made = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = "\n".join(
        f"<h2>{html.escape(title)}</h2>" + "\n".join(_html(b) for b in blocks)
        for title, blocks in parts
        if blocks
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>Raspberry build {html.escape(build_id)}</title><style>"
        "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
        "svg{font:12px sans-serif;display:block;margin:1em 0}"
        "pre{white-space:pre-wrap;background:#f6f6f6;padding:6px}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px}"
        "</style></head><body>"
        f"<h1>Raspberry build {html.escape(build_id)}</h1><p>written {made}; every row, "
        f"searchable and filterable: <a href='{BROWSER_NAME}'>{BROWSER_NAME}</a></p>"
        + body
        + "</body></html>\n"
    )


def render_markdown(build_id: str, parts: list[tuple[str, list[Block]]], page: str) -> str:
    """The same report as Markdown (a Prefect artifact, readable from any browser)."""
    body = "\n\n".join(
        f"## {title}\n\n" + "\n\n".join(_markdown(b) for b in blocks)
        for title, blocks in parts
        if blocks
    )
    return f"# Raspberry build {build_id}\n\nThe HTML page: `{page}`\n\n{body}\n"


def write_report(store: BuildStore, manifest: Manifest) -> tuple[str, str]:
    """Write <build>/report.html whole; return its URL and the report as Markdown."""
    parts = sections(store, manifest)
    write_browser(store, items(store, manifest))
    store.files.write_text(REPORT_NAME, render_html(store.build_id, parts))
    url = store.files.url(REPORT_NAME)
    return url, render_markdown(store.build_id, parts, url)
