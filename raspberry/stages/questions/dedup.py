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
  for free-text sources only (paraphrase): with a reference answer, when semantic.py finds the
  same problem reworded (the same answer and numbers, and enough content words in common);
  without one, when a second LSH finds an earlier question whose estimated Jaccard on sets of
  words reaches `paraphrase_threshold`. Word order is what tells two procedural questions apart
  ("5 - 3" from "3 - 5"), so reasoning-gym questions are never compared as bags of words.
  With embeddings (an embedder role), a free-text question whose vector is close enough to an
  earlier one with the same answer is a paraphrase too (neighbours.py). Pairs that are close but
  not surely one problem are yielded as UNSURE, for the judge (same_problem.py).
  Questions with different reference answers are never duplicates of each other.
  Questions of earlier builds are indexed first: a repeat of one is seen_in_earlier_build.
  An evolved question is never a duplicate of the question it was evolved from (same family).
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from datasketch import MinHash

from raspberry.stages.candidates.config import NearDuplicateConfig
from raspberry.stages.candidates.semantic import SemanticIndex, Signature, answer_tag, signature
from raspberry.stages.candidates.text import ngrams, text_key, words
from raspberry.stages.questions.neighbours import VectorIndex

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
    answer: str = ""  # the reference answer (kept as its answer_tag once read)
    vector: np.ndarray | None = field(default=None, compare=False)  # its embedding, unit length

    def reference(self) -> Doc:
        """The fields the pass keeps after reading a question: all but its text and vector."""
        tag = answer_tag(self.answer)
        return Doc(self.key, self.ref, "", "", self.family, self.prose, self.earlier, tag)


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
PENDING = 1024  # keys held unsorted before they are merged into the sorted table


@dataclass(frozen=True)
class Signed:
    minhash: MinHash
    hashes: np.ndarray  # the sorted, distinct 32-bit hashes of the question's shingles


def bands_for(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) with the fewest false negatives at `threshold` among the choices
    that still leave pairs of Jaccard 0.3 unlikely to collide (probability <= 0.1)."""
    best = (1, num_perm)
    best_miss = 1.0
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        miss = (1 - threshold**rows) ** bands
        if 1 - (1 - 0.3**rows) ** bands <= 0.1 and miss < best_miss:
            best, best_miss = (bands, rows), miss
    return best


class Index:
    """MinHash LSH over datasketch signatures, in compact arrays: each question's band keys
    (one 64-bit hash per band) sit in one sorted table that is searched with numpy. Each
    candidate is confirmed on the exact Jaccard of the two questions' shingle hashes.

    Why not datasketch's MinHashLSH: its in-memory storage keeps a Python set per bucket, about
    5 KB per question at 128 permutations; this table takes 12 bytes per band."""

    def __init__(self, threshold: float, num_perm: int):
        # Imported here: datasketch brings scipy, a second of start-up for every command.
        from datasketch import MinHash

        self._minhash = MinHash
        self._threshold, self._num_perm = threshold, num_perm
        self._bands, self._rows = bands_for(max(0.3, threshold - RECALL_MARGIN), num_perm)
        self._permutations = MinHash(num_perm=num_perm, scheme="affine32").permutations
        rng = np.random.default_rng(0)
        # Odd multipliers combine a band's rows into one key; the band number is mixed in, so
        # all bands share one table.
        self._mix = rng.integers(1, 2**63, size=self._rows, dtype=np.uint64) | np.uint64(1)
        self._salt = rng.integers(1, 2**63, size=self._bands, dtype=np.uint64)
        self._keys = np.empty(0, np.uint64)  # sorted
        self._owners = np.empty(0, np.int32)  # the question of each key
        # Band keys of the questions added since the last merge, one row each.
        self._pending = np.empty((PENDING, self._bands), np.uint64)
        self._n_pending = 0
        self._hashes: list[np.ndarray] = []
        self._docs: list[Doc] = []

    def sign(self, grams: set[str]) -> Signed:
        hashes = np.unique(np.fromiter((zlib.crc32(g.encode()) for g in grams), np.uint32))
        m = self._minhash(
            num_perm=self._num_perm,
            permutations=self._permutations,
            scheme="affine32",
            hashfunc=int,  # the shingles come already hashed
        )
        m.update_batch(hashes.tolist())
        return Signed(m, hashes)

    def _band_keys(self, m: MinHash) -> np.ndarray:
        used = self._bands * self._rows
        rows = m.hashvalues[:used].astype(np.uint64).reshape(self._bands, self._rows)
        with np.errstate(over="ignore"):  # wrapping multiplication is the point
            return (rows * self._mix).sum(axis=1) ^ self._salt

    def _candidates(self, keys: np.ndarray) -> set[int]:
        found: set[int] = set()
        lo = np.searchsorted(self._keys, keys, "left")
        hi = np.searchsorted(self._keys, keys, "right")
        for a, b in zip(lo.tolist(), hi.tolist(), strict=True):
            found.update(self._owners[a:b].tolist())
        if self._n_pending:
            hits = np.nonzero((self._pending[: self._n_pending] == keys).any(axis=1))[0]
            found.update((hits + len(self._docs) - self._n_pending).tolist())
        return found

    def match(self, ref: Doc, signed: Signed) -> tuple[Doc, float] | None:
        """The earliest indexed question of another family at least `threshold` similar, and
        with the same reference answer where both have one (a different answer is a different
        problem however alike the words: "gives 4, buys 7" and "gives 7, buys 4"). ref: the
        question as `Doc.reference` keeps it (its answer as a tag)."""
        best: tuple[int, float] | None = None
        for index in sorted(self._candidates(self._band_keys(signed.minhash))):
            indexed = self._docs[index]
            if ref.family and indexed.family == ref.family:
                continue
            if ref.answer and indexed.answer and indexed.answer != ref.answer:
                continue
            other = self._hashes[index]
            shared = len(np.intersect1d(other, signed.hashes, assume_unique=True))
            similarity = shared / (len(other) + len(signed.hashes) - shared)
            if similarity >= self._threshold:
                best = (index, similarity)
                break
        return (self._docs[best[0]], best[1]) if best else None

    def add(self, doc: Doc, signed: Signed) -> None:
        self._pending[self._n_pending] = self._band_keys(signed.minhash)
        self._n_pending += 1
        self._hashes.append(signed.hashes)
        self._docs.append(doc)
        if self._n_pending == PENDING:
            self._merge()

    def _merge(self) -> None:
        first = len(self._docs) - self._n_pending
        keys = self._pending[: self._n_pending].reshape(-1)
        owners = np.repeat(np.arange(first, len(self._docs), dtype=np.int32), self._bands)
        order = np.argsort(keys, kind="stable")
        keys, owners = keys[order], owners[order]
        at = np.searchsorted(self._keys, keys, "right")
        self._keys = np.insert(self._keys, at, keys)
        self._owners = np.insert(self._owners, at, owners)
        self._n_pending = 0


def _reason(first: Doc, repeat: str) -> str:
    return "seen_in_earlier_build" if first.earlier else repeat


def _first_hit(ref: Doc, signed: list[tuple[Index, Signed, str]]) -> tuple[str, str] | None:
    """(reason, detail) of the first index that finds an earlier question like this one."""
    for index, sig, reason in signed:
        if found := index.match(ref, sig):
            first, similarity = found
            return _reason(first, reason), f"similar to {first.ref} (Jaccard {similarity:.2f})"
    return None


UNSURE = "unsure_duplicate"  # not a drop: a pair the judge settles in the questions stage


class Finding(NamedTuple):
    key: tuple[int, int]
    reason: str  # a drop reason, or UNSURE
    detail: str
    # For UNSURE: the earlier question, as (from an earlier build, shard, row).
    other: tuple[bool, int, int] | None = None


# (prose questions) -> a unit vector each, from the embedder role
Vectors = Callable[[list[Doc]], list[np.ndarray]]
VECTOR_BATCH = 256  # questions embedded per call, as the stream goes by


def _with_vectors(docs: Iterable[Doc], vectors: Vectors) -> Iterator[Doc]:
    batch: list[Doc] = []
    for doc in _and_end(docs):
        if doc is not None:
            batch.append(doc)
        if batch and (doc is None or len(batch) == VECTOR_BATCH):
            found = iter(vectors([d for d in batch if d.prose]))
            yield from (replace(d, vector=next(found)) if d.prose else d for d in batch)
            batch = []


def _and_end(docs: Iterable[Doc]) -> Iterator[Doc | None]:
    yield from docs
    yield None


def find_duplicates(
    docs: Docs,
    cfg: NearDuplicateConfig,
    earlier: Docs | None = None,
    vectors: Vectors | None = None,
    unsure: bool = False,
) -> Iterator[Finding]:
    """Every question to drop, in build order, and (when `unsure`) every pair a judge must
    settle. vectors: embeds prose questions, for the nearest-neighbour pass."""
    common = boilerplate(docs(), cfg.ngram, cfg.boilerplate_share) if cfg.enabled else {}
    seen: dict[str, Doc] = {}  # normalised-text hash -> the first question with it
    near = Index(cfg.threshold, cfg.num_perm) if cfg.enabled else None
    para = (
        Index(cfg.paraphrase_threshold, cfg.num_perm)
        if cfg.enabled and cfg.paraphrase_threshold
        else None
    )
    same: SemanticIndex[Doc] | None = (
        SemanticIndex(cfg.semantic_overlap, cfg.unsure_overlap if unsure else None)
        if cfg.enabled and cfg.semantic_overlap
        else None
    )
    close: VectorIndex[Doc] = VectorIndex()
    for stream in (earlier() if earlier else (), docs()):
        for doc in _with_vectors(stream, vectors) if vectors and cfg.enabled else stream:
            key = text_key(doc.text)
            if key in seen:
                if not doc.earlier:
                    first = seen[key]
                    yield Finding(
                        doc.key, _reason(first, "exact_duplicate"), f"same text as {first.ref}"
                    )
                continue
            ref = doc.reference()
            seen[key] = ref
            if near is None:
                continue
            group_common = common.get(doc.group, set())
            checks = [(near, shingles(doc.text, cfg.ngram, group_common), "near_duplicate")]
            problem = signature(doc.text, doc.answer, group_common) if same and doc.prose else None
            # Prose with a reference answer is compared as the same problem (semantic.py); as a
            # bag of words only without one.
            if para and doc.prose and problem is None:
                checks.append((para, shingles(doc.text, 1, group_common), "paraphrase"))
            signed = [(index, index.sign(grams), reason) for index, grams, reason in checks]
            if not doc.earlier:
                hit, maybe = _same_problem(doc, ref, signed, problem, same, close, cfg)
                if hit:
                    yield Finding(doc.key, *hit)
                    continue
                if maybe and unsure:
                    first, evidence = maybe
                    yield Finding(
                        doc.key,
                        UNSURE,
                        f"maybe the same problem as {first.ref} ({evidence})",
                        (first.earlier, *first.key),
                    )
            for index, sig, _ in signed:
                index.add(ref, sig)
            if problem:
                same.add(problem, ref, doc.family)  # type: ignore[union-attr]
            if doc.vector is not None:
                close.add(doc.vector, ref.answer, ref, doc.family)


def _same_problem(
    doc: Doc,
    ref: Doc,
    signed: list[tuple[Index, Signed, str]],
    problem: Signature | None,
    same: SemanticIndex[Doc] | None,
    close: VectorIndex[Doc],
    cfg: NearDuplicateConfig,
) -> tuple[tuple[str, str] | None, tuple[Doc, str] | None]:
    """(reason, detail) when an earlier question is surely the same problem, else the closest
    unsure one with the evidence for it."""
    if hit := _first_hit(ref, signed):
        return hit, None
    maybe: tuple[Doc, str] | None = None
    if problem and same and (found := same.match(problem, doc.family)):
        first, similarity, evidence = found
        if similarity >= (cfg.semantic_overlap or 1.0):
            return (
                _reason(first, "paraphrase"),
                f"the same problem as {first.ref} ({evidence})",
            ), None
        maybe = (first, evidence)
    if doc.vector is not None and (found_v := close.nearest(doc.vector, ref.answer, doc.family)):
        first, cosine = found_v
        evidence = f"embedding cosine {cosine:.2f}"
        if cosine >= cfg.embedding_similarity:
            return (
                _reason(first, "paraphrase"),
                f"the same problem as {first.ref} ({evidence})",
            ), None
        if cosine >= cfg.unsure_embedding and maybe is None:
            maybe = (first, evidence)
    return None, maybe
