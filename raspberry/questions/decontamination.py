"""Decontamination: a question sharing a word n-gram with any benchmark question is dropped, so
no benchmark a model is later measured on leaks into its training data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from raspberry.benchmark_files import read_benchmark
from raspberry.questions.text import ngrams, words


@dataclass
class BenchmarkNgrams:
    n: int
    # n-gram -> "file question id"; the n-grams are kept as text, so a hit is never a hash clash.
    grams: dict[str, str] = field(default_factory=dict)
    # Benchmark questions shorter than n words: found as a run of words anywhere in a question.
    short: dict[str, str] = field(default_factory=dict)

    def hit(self, text: str) -> str | None:
        """What the question shares with a benchmark, or None."""
        tokens = words(text)
        for gram in ngrams(tokens, self.n) if len(tokens) >= self.n else ():
            if gram in self.grams:
                return f"{self.n}-gram {gram!r} of {self.grams[gram]}"
        joined = f" {' '.join(tokens)} "
        for run, where in self.short.items():
            if f" {run} " in joined:
                return f"all of {where} ({run!r})"
        return None


def load_benchmarks(paths: list[Path], n: int) -> BenchmarkNgrams:
    index = BenchmarkNgrams(n)
    for path in paths:
        for item in read_benchmark(path):
            tokens = words(item.prompt)
            where = f"{path.name} question {item.id}"
            if len(tokens) < n:
                index.short.setdefault(" ".join(tokens), where)
            for gram in ngrams(tokens, n) if len(tokens) >= n else ():
                index.grams.setdefault(gram, where)
    return index
