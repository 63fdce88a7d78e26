"""Build-wide duplicate removal: exact (normalised text) and near (MinHash LSH over word n-grams).

Questions are read twice as a stream, in build order (shard by shard), and only their hashes are
held: memory grows with the number of questions by a few hundred bytes each, never with their text.

- Pass 1 samples up to BOILERPLATE_SAMPLE questions of each group (same source and task) and
  marks as boilerplate the n-grams found in at least `boilerplate_share` of them. A procedural
  task repeats its template in every question ("How many 1 bits are there in the binary
  representation of..."), so without this step all questions of such a task would look alike.
- Pass 2 keeps the first of each set of duplicates. A question is dropped when its normalised
  text was seen before (exact_duplicate); when an LSH finds an earlier question whose estimated
  Jaccard similarity on non-boilerplate word n-grams reaches `threshold` (near_duplicate); or,
  for free-text sources only, when a second LSH finds one whose estimated Jaccard on sets of
  words reaches `paraphrase_threshold` (paraphrase). Word order is what tells two procedural
  questions apart ("5 - 3" from "3 - 5"), so reasoning-gym questions are not compared as bags of
  words; reworded prose is, since rewording breaks most n-grams but keeps most words.
  Questions of earlier builds are indexed first: a repeat of one is seen_in_earlier_build.
  An evolved question is never a duplicate of the question it was evolved from (same family).
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from datasketch import MinHash, MinHashLSH

from raspberry.config import NearDuplicateConfig
from raspberry.questions.text import ngrams, text_key, words

BOILERPLATE_SAMPLE = 500
MIN_GROUP = 8  # a group smaller than this has no boilerplate: too few questions to tell


@dataclass(frozen=True)
class Doc:
    key: tuple[int, int]  # (shard, row) in build order
    ref: str  # what a report names: the question id (with its build, for earlier builds)
    group: str  # source/task: questions of one template
    text: str
    family: str = ""  # the id of the question an evolved one descends from (or its own)
    prose: bool = False  # free text (written, evolved, from files): also compared as words
    earlier: bool = False  # from an earlier build: indexed, never dropped

    def reference(self) -> Doc:
        """The fields an index keeps: all but the text."""
        return Doc(self.key, self.ref, "", "", self.family, self.prose, self.earlier)


Docs = Callable[[], Iterable[Doc]]  # called once per pass


def boilerplate(docs: Iterable[Doc], n: int, share: float) -> dict[str, set[str]]:
    """Per group, the n-grams (and words) in at least `share` of its first sampled questions."""
    counts: dict[str, Counter[str]] = {}
    sizes: Counter[str] = Counter()
    for doc in docs:
        if sizes[doc.group] >= BOILERPLATE_SAMPLE:
            continue
        sizes[doc.group] += 1
        tokens = words(doc.text)
        counts.setdefault(doc.group, Counter()).update(ngrams(tokens, n) | set(tokens))
    return {
        group: {g for g, c in counter.items() if c >= share * sizes[group]}
        for group, counter in counts.items()
        if sizes[group] >= MIN_GROUP
    }


def shingles(text: str, n: int, common: set[str]) -> set[str]:
    """The n-grams that identify a question: its own, without its template's boilerplate."""
    grams = ngrams(words(text), n)
    # A question that is nothing but boilerplate is compared on all of its text.
    return (grams - common) or grams


# The LSH looks for candidates this far below the threshold, so that pairs near it are not
# missed by chance; each candidate is then measured exactly.
RECALL_MARGIN = 0.15


@dataclass(frozen=True)
class Signed:
    minhash: MinHash
    hashes: np.ndarray  # the sorted, distinct 32-bit hashes of the question's shingles


class Index:
    """An LSH index of MinHash signatures; each candidate it returns is confirmed on the exact
    Jaccard similarity of the two questions' shingle hashes (kept, 4 bytes per shingle)."""

    def __init__(self, threshold: float, num_perm: int):
        self._threshold, self._num_perm = threshold, num_perm
        self._lsh = MinHashLSH(threshold=max(0.3, threshold - RECALL_MARGIN), num_perm=num_perm)
        self._permutations = MinHash(num_perm=num_perm, scheme="affine32").permutations
        self._hashes: list[np.ndarray] = []
        self._docs: list[Doc] = []

    def sign(self, grams: set[str]) -> Signed:
        hashes = np.unique(np.fromiter((zlib.crc32(g.encode()) for g in grams), np.uint32))
        m = MinHash(
            num_perm=self._num_perm,
            permutations=self._permutations,
            scheme="affine32",
            hashfunc=int,  # the shingles come already hashed
        )
        m.update_batch(hashes.tolist())
        return Signed(m, hashes)

    def match(self, doc: Doc, signed: Signed) -> tuple[Doc, float] | None:
        """The earliest indexed question of another family at least `threshold` similar."""
        best: tuple[int, float] | None = None
        for index in self._lsh.query(signed.minhash):
            if doc.family and self._docs[index].family == doc.family:
                continue
            other = self._hashes[index]
            shared = len(np.intersect1d(other, signed.hashes, assume_unique=True))
            similarity = shared / (len(other) + len(signed.hashes) - shared)
            if similarity >= self._threshold and (best is None or index < best[0]):
                best = (index, similarity)
        return (self._docs[best[0]], best[1]) if best else None

    def add(self, doc: Doc, signed: Signed) -> None:
        self._lsh.insert(len(self._docs), signed.minhash, check_duplication=False)
        self._hashes.append(signed.hashes)
        self._docs.append(doc.reference())


def _reason(first: Doc, repeat: str) -> str:
    return "seen_in_earlier_build" if first.earlier else repeat


def find_duplicates(
    docs: Docs, cfg: NearDuplicateConfig, earlier: Docs | None = None
) -> Iterator[tuple[tuple[int, int], str, str]]:
    """(key, reason, detail) of every question to drop, in build order."""
    common = boilerplate(docs(), cfg.ngram, cfg.boilerplate_share) if cfg.enabled else {}
    seen: dict[str, Doc] = {}  # normalised-text hash -> the first question with it
    near = Index(cfg.threshold, cfg.num_perm) if cfg.enabled else None
    para = (
        Index(cfg.paraphrase_threshold, cfg.num_perm)
        if cfg.enabled and cfg.paraphrase_threshold
        else None
    )
    for stream in (earlier() if earlier else (), docs()):
        for doc in stream:
            key = text_key(doc.text)
            if key in seen:
                if not doc.earlier:
                    first = seen[key]
                    yield doc.key, _reason(first, "exact_duplicate"), f"same text as {first.ref}"
                continue
            seen[key] = doc.reference()
            if near is None:
                continue
            group_common = common.get(doc.group, set())
            checks = [(near, shingles(doc.text, cfg.ngram, group_common), "near_duplicate")]
            if para and doc.prose:
                checks.append((para, shingles(doc.text, 1, group_common), "paraphrase"))
            signed = [(index, index.sign(grams), reason) for index, grams, reason in checks]
            hit = None
            for index, sig, reason in signed if not doc.earlier else ():
                if found := index.match(doc, sig):
                    first, similarity = found
                    detail = f"similar to {first.ref} (Jaccard {similarity:.2f})"
                    hit = (_reason(first, reason), detail)
                    break
            if hit:
                yield doc.key, *hit
                continue
            for index, sig, _ in signed:
                index.add(doc, sig)
