"""The report's drawing functions: bars in proportion, every value in a bin."""

import re

from raspberry.build_report import bar_chart, histogram


def _bars(svg: str) -> list[float]:
    return [float(w) for w in re.findall(r'<rect x="\d+" y="\d+" width="([\d.]+)"', svg)]


def test_bars_are_in_proportion_and_labelled():
    svg = bar_chart(["a", "b", "c"], [10.0, 5.0, 0.0], "rows")
    widths = _bars(svg)
    assert widths[0] == 2 * widths[1] and widths[2] == 0
    assert ">a</text>" in svg and ">10</text>" in svg


def test_histogram_counts_every_value_once():
    values = [1, 2, 2, 3, 50, 99, 100]
    svg = histogram(values, "lengths", bins=4)
    counts = [int(c) for c in re.findall(r">(\d+)</text>", svg)]
    assert sum(counts) == len(values) and counts[0] == 4  # 1–25.75 holds 1, 2, 2, 3
    assert "n = 7" in svg
    assert "no rows" in histogram([], "lengths")
    assert sum(int(c) for c in re.findall(r">(\d+)</text>", histogram([5, 5, 5], "x"))) == 3
