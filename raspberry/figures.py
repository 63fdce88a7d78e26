"""What a build report shows, apart from how it is drawn: how shard reports add up, bar charts,
tables, notes and sample rows. build_report.py draws them as an HTML page and as the Markdown of
a Prefect artifact."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


def drop_counts(rejections: Iterable[list[str]]) -> dict[str, int]:
    """Rejections per category: the part before ':' of each rejection's first reason."""
    return dict(
        Counter(reasons[0].split(":")[0] if reasons else "unknown" for reasons in rejections)
    )


def merge(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum additive reports key by key (numbers add, lists join, nested dicts merge)."""
    out: dict[str, Any] = {}
    for report in reports:
        for key, value in report.items():
            if isinstance(value, dict):
                out[key] = merge([out.get(key, {}), value])
            elif isinstance(value, int | float):
                out[key] = out.get(key, 0) + value
            elif isinstance(value, list):
                out[key] = out.get(key, []) + value
    return out


def median_bucket(hist: dict[str, int]) -> float | None:
    total = sum(hist.values())
    seen = 0
    for bucket in sorted(hist, key=float):
        seen += hist[bucket]
        if 2 * seen >= total:
            return float(bucket)
    return None


def tally(counts: dict[str, Any], label: str = "{}") -> str:
    """Counts as a reader wants them: "passed 388, failed 1", most first; "none" when empty.
    label formats each key (e.g. "turn {}")."""
    if not counts:
        return "none"
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
    return ", ".join(f"{label.format(key)} {count:,}" for key, count in ordered)


@dataclass(frozen=True)
class Chart:
    """Horizontal bars, one per label."""

    title: str
    labels: list[str]
    values: list[float]
    unit: str = ""


@dataclass(frozen=True)
class Sample:
    """One exported row with the dialogue it came from."""

    title: str
    question: str
    response: str
    dialogue: list[tuple[str, str]]  # (role, text) per turn


Table = list[dict[str, Any]]
# A section's content: charts, tables, samples, and notes (plain text).
Block = Chart | Sample | Table | str


def histogram(values: list[float], title: str, bins: int = 12) -> Chart | str:
    """Counts of values in equal-width bins; a note when there are none."""
    if not values:
        return f"{title}: no rows."
    low, high = min(values), max(values)
    step = (high - low) / bins or 1
    counts = [0] * bins
    for v in values:
        counts[min(int((v - low) / step), bins - 1)] += 1
    labels = [f"{low + i * step:,.0f} – {low + (i + 1) * step:,.0f}" for i in range(bins)]
    return Chart(f"{title}, n = {len(values):,}", labels, [float(c) for c in counts])


def shown(value: float) -> str:
    """A chart's value as it is printed: whole numbers as they are, others to 4 digits."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.4g}"
