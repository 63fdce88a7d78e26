"""The report's drawing functions: bars in proportion, every value in a bin, the same sections
drawn as HTML and as Markdown."""

import re

from raspberry.figures import Chart, Sample, histogram
from raspberry.report.page import bar_chart, render_html, render_markdown, text_chart


def _bars(svg: str) -> list[float]:
    return [float(w) for w in re.findall(r'<rect x="\d+" y="\d+" width="([\d.]+)"', svg)]


def test_bars_are_in_proportion_and_labelled():
    chart = Chart("rows", ["a", "b", "c"], [10.0, 5.0, 0.0])
    svg = bar_chart(chart)
    widths = _bars(svg)
    assert widths[0] == 2 * widths[1] and widths[2] == 0
    assert ">a</text>" in svg and ">10</text>" in svg
    text = text_chart(chart, width=10)
    assert "a ██████████ 10" in text and "b █████      5" in text and "c            0" in text


def test_histogram_counts_every_value_once():
    values = [1, 2, 2, 3, 50, 99, 100]
    chart = histogram(values, "lengths", bins=4)
    assert isinstance(chart, Chart) and chart.title == "lengths, n = 7"
    assert sum(chart.values) == len(values) and chart.values[0] == 4  # 1–25.75 holds 1, 2, 2, 3
    assert histogram([], "lengths") == "lengths: no rows."
    assert sum(histogram([5, 5, 5], "x").values) == 3


def test_the_same_sections_as_html_and_markdown():
    sample = Sample("Self-corrected", "What is 2+2?", "Wait, 5?\nNo: 4.", [("user", "2+2?"),
                    ("assistant", "5"), ("user", "not quite"), ("assistant", "4")])  # fmt: skip
    parts = [
        ("Paid", ["Paid for this build over 2 run(s): $3.14"]),
        ("Stage funnel", [Chart("rows", ["in", "out"], [4.0, 3.0]), [{"stage": "a|b", "rows": 3}]]),
        ("Sample rows", [sample]),
        ("Empty", []),
    ]
    page = render_html("b1", parts)
    assert (
        page.count("<svg") == 1 and "<details><summary>the dialogue it came from (4 turns)" in page
    )
    assert "Empty" not in page and "$3.14" in page
    markdown = render_markdown("b1", parts, "/x/report.html")
    assert markdown.startswith("# Raspberry build b1") and "`/x/report.html`" in markdown
    assert "| stage | rows |\n| --- | --- |\n| a\\|b | 3 |" in markdown
    assert "### Self-corrected" in markdown and "**assistant**\n\n```text\n5\n```" in markdown
    assert "```text\nWait, 5?\nNo: 4.\n```" in markdown  # its line breaks kept
    assert "in  ██████████████████████████████ 4" in markdown and "## Empty" not in markdown


def test_counts_read_as_words_not_dicts():
    from raspberry.figures import tally

    assert tally({"failed": 1, "passed": 388}) == "passed 388, failed 1"
    assert tally({"1": 226, "2": 125}, "turn {}:") == "turn 1: 226, turn 2: 125"
    assert tally({}) == "none"
