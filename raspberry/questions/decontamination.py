"""Decontamination: a question sharing a word n-gram with any benchmark question is dropped, so
no benchmark a model is later measured on leaks into its training data; so is a free-text
question that is a benchmark question reworded (the same answer and numbers, and much of its
content: questions/semantic.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from raspberry.benchmark_files import read_benchmark
from raspberry.questions.semantic import SemanticIndex, signature
from raspberry.questions.text import ngrams, words


@dataclass
class BenchmarkNgrams:
    n: int
    # n-gram -> "file question id"; the n-grams are kept as text, so a hit is never a hash clash.
    grams: dict[str, str] = field(default_factory=dict)
    # Benchmark questions shorter than n words: found as a run of words anywhere in a question.
    short: dict[str, str] = field(default_factory=dict)
    reworded: SemanticIndex[str] | None = None  # benchmark questions, owned by their "where"

    def hit(self, text: str, answer: str = "", prose: bool = False) -> str | None:
        """What the question shares with a benchmark, or None. A prose question (written,
        evolved, from a file) with a reference answer is also looked up reworded."""
        tokens = words(text)
        for gram in ngrams(tokens, self.n) if len(tokens) >= self.n else ():
            if gram in self.grams:
                return f"{self.n}-gram {gram!r} of {self.grams[gram]}"
        joined = f" {' '.join(tokens)} "
        for run, where in self.short.items():
            if f" {run} " in joined:
                return f"all of {where} ({run!r})"
        if prose and self.reworded and (sig := signature(text, answer)):
            if found := self.reworded.match(sig):
                return f"{found[0]} reworded ({found[1]})"
        return None


def load_benchmarks(paths: list[Path], n: int, overlap: float | None = None) -> BenchmarkNgrams:
    index = BenchmarkNgrams(n, reworded=SemanticIndex(overlap) if overlap else None)
    for path in paths:
        for item in read_benchmark(path):
            tokens = words(item.prompt)
            where = f"{path.name} question {item.id}"
            if index.reworded and (sig := signature(item.prompt, item.answer)):
                index.reworded.add(sig, where)
            if len(tokens) < n:
                index.short.setdefault(" ".join(tokens), where)
            for gram in ngrams(tokens, n) if len(tokens) >= n else ():
                index.grams.setdefault(gram, where)
    return index
