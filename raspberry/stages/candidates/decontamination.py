"""Decontamination: a question sharing a word n-gram with any benchmark question is dropped, so
no benchmark a model is later measured on leaks into its training data; so is a free-text
question that is a benchmark question reworded: the same answer, all of its numbers (a
rewording may add a distractor), and much of its content, names aside (a rewording renames
people), (questions/semantic.py), or, with an
embedder role, the same answer and an embedding close to the benchmark question's
(`reworded_by_embedding`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from raspberry.benchmark_files import read_benchmark
from raspberry.stages.candidates.semantic import SemanticIndex, answer_tag, signature
from raspberry.stages.candidates.text import ngrams, words


@dataclass
class BenchmarkNgrams:
    n: int
    # n-gram -> "file question id"; the n-grams are kept as text, so a hit is never a hash clash.
    grams: dict[str, str] = field(default_factory=dict)
    # Benchmark questions shorter than n words: found as a run of words anywhere in a question.
    short: dict[str, str] = field(default_factory=dict)
    reworded: SemanticIndex[str] | None = None  # benchmark questions, owned by their "where"
    # (where, prompt, answer tag) of every benchmark question, for the embedding test
    questions: list[tuple[str, str, str]] = field(default_factory=list)

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
        if prose and self.reworded and (sig := signature(text, answer, with_names=False)):
            if found := self.reworded.match(sig):
                return f"{found[0]} reworded ({found[2]})"
        return None


def load_benchmarks(paths: list[Path], n: int, overlap: float | None = None) -> BenchmarkNgrams:
    reworded = SemanticIndex[str](overlap, contained=True) if overlap else None
    index = BenchmarkNgrams(n, reworded=reworded)
    for path in paths:
        for item in read_benchmark(path):
            tokens = words(item.prompt)
            where = f"{path.name} question {item.id}"
            index.questions.append((where, item.prompt, answer_tag(item.answer)))
            if index.reworded and (sig := signature(item.prompt, item.answer, with_names=False)):
                index.reworded.add(sig, where)
            if len(tokens) < n:
                index.short.setdefault(" ".join(tokens), where)
            for gram in ngrams(tokens, n) if len(tokens) >= n else ():
                index.grams.setdefault(gram, where)
    return index


async def reworded_by_embedding(
    embed: Callable[[list[str]], Awaitable[list[np.ndarray]]],
    index: BenchmarkNgrams,
    questions: list[tuple[str, str]],
    threshold: float,
) -> list[str | None]:
    """For each (prompt, reference answer) of a prose question: the benchmark question with the
    same answer whose embedding is at least `threshold` close, as a drop detail, or None."""
    if not questions or not index.questions:
        return [None] * len(questions)
    bench = np.stack(await embed([prompt for _, prompt, _ in index.questions]))
    found: list[str | None] = []
    for (_, answer), vector in zip(questions, await embed([p for p, _ in questions]), strict=True):
        cosines = bench @ vector
        tag = answer_tag(answer)
        hits = [
            (float(cosines[j]), where)
            for j, (where, _, other) in enumerate(index.questions)
            if cosines[j] >= threshold and other == tag
        ]
        best = max(hits, default=None)
        found.append(f"{best[1]} reworded (embedding cosine {best[0]:.2f})" if best else None)
    return found
