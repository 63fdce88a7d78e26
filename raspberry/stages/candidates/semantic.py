"""The answer-aware pass over free-text questions: the same problem reworded.

A rewording keeps the problem and its answer and changes the surface: numbers written as words
("four", "thrice"), a question turned into an instruction ("Find x such that" for "What is x
if"), clauses reordered, synonyms swapped. Word n-grams and word sets miss many of these (their
Jaccard is often 0.4-0.7), so this pass compares what a rewording keeps:

- the signature: the reference answer and the numbers (number words read as digits), both
  normalised. Two questions with different answers are never the same problem, which keeps "has
  12, gives 4, buys 7" apart from "has 12, gives 7, buys 4";
- the content words, names included (without question framing and stop words, crudely
  stemmed), which must still overlap by `min_overlap`: the same answer and numbers alone do not
  make two problems one.

Per question only the signature's hash and its content words' hashes are kept, never its text
(about 1.3 KB a free-text question with Python's overheads: benchmarks/dedup_throughput.py).
Procedural items (reasoning-gym) never come here: for them word order is the problem.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen".split()
)
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
NUMBER_WORDS = {
    **{w: i for i, w in enumerate(_ONES)},
    **{w: 10 * (i + 2) for i, w in enumerate(_TENS)},
    "twice": 2, "double": 2, "thrice": 3, "triple": 3, "dozen": 12,
}  # fmt: skip
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
# Question framing and function words: what a rewording changes freely.
STOP = frozenset(
    "a an the of to in on at by for with from into onto and or but if then than so such that this "
    "these those it its is are was were be been being do does did has have had having will would "
    "can could should may might must what which who whom whose how many much when where why "
    "find determine compute calculate work out give state name tell value number total "
    "answer question there their them they he she his her him we you your i me my our us "
    "each every apiece per after before now then all as some any "
    "x y n".split()
)
T = TypeVar("T")
_TOKEN = re.compile(r"-?\d+(?:\.\d+)?|[A-Za-z]+")


def _numbers_as_digits(tokens: list[str]) -> list[str]:
    """Number words to digits: "twenty five" -> "25", "one thousand two hundred" -> "1200";
    "five six" stays two numbers."""
    out: list[str] = []
    total: int | None = None  # the number being read, without its last group
    group, last = 0, ""  # the last group's value; "ones", "tens" or "scale"

    def flush() -> None:
        nonlocal total
        if total is not None:
            out.append(str(total + group))
            total = None

    for token in tokens:
        low = token.lower()
        if (n := NUMBER_WORDS.get(low)) is not None:
            kind = "tens" if low in _TENS else "ones"
            if total is not None and (last == "scale" or (last == "tens" and n < 10)):
                group, last = group + n, kind
                continue
            flush()
            total, group, last = 0, n, kind
        elif low in _SCALES and total is not None:
            if _SCALES[low] == 100:
                group *= 100
            else:
                total, group = total + group * _SCALES[low], 0
            last = "scale"
        else:
            flush()
            out.append(token)
    flush()
    return out


def tokens(text: str) -> list[str]:
    """Words and numbers, number words as digits; '3x' is '3' and 'x'; hyphens split."""
    return _numbers_as_digits(_TOKEN.findall(text.replace("-", " ")))


def _is_number(token: str) -> bool:
    return bool(re.fullmatch(r"-?\d+(?:\.\d+)?", token))


# A few verbs and adjectives word problems swap freely; a rewording that swaps others still
# keeps most of its content words.
SYNONYMS = {
    "purchase": "buy", "hand": "give", "receive": "get", "obtain": "get", "acquire": "get",
    "cover": "travel", "drive": "travel", "remain": "left", "greatest": "largest",
    "biggest": "largest", "smallest": "least", "spend": "pay", "cost": "price", "add": "sum",
    "old": "age",
}  # fmt: skip


def stem(word: str) -> str:
    """A crude stem: plural and verb endings off ("purchases" -> "purchase", "boxes" -> "box";
    "ran" stays "ran"), then a synonym's common form."""
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 4 and re.search(r"(?:ss|x|z|ch|sh)es$", word):
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    elif len(word) > 5 and word.endswith("ing"):
        word = word[:-3]
    elif len(word) > 4 and word.endswith("ed"):
        word = word[:-1] if word.endswith("ced") or word.endswith("sed") else word[:-2]
    return SYNONYMS.get(word, word)


def answer_key(answer: str) -> str:
    found = tokens(answer)
    return " ".join(t.lower() for t in found)


def answer_of(reference: str, verification: str) -> tuple[str, bool]:
    """What two questions must share to be one problem, and whether the question is free text
    to compare as a problem reworded. A rule puzzle's reference is one answer among many: its
    rules are what it asks, and like a procedural item it is compared by its words in order
    only ("7 words about siblings" is not "7 words about warehouses")."""
    try:
        spec = json.loads(verification or "{}")
    except json.JSONDecodeError:
        spec = {}
    if isinstance(spec, dict) and spec.get("kind") == "constraint":
        return json.dumps(spec.get("rules"), sort_keys=True), False
    return reference, True


def answer_tag(answer: str) -> str:
    """A short stand-in for a normalised answer ("" for none): what the passes keep of it."""
    key = answer_key(answer)
    return f"{zlib.crc32(key.encode()):08x}" if key else ""


@dataclass(frozen=True)
class Signature:
    key: int  # a hash of (answer, numbers)
    evidence: str  # what they are, for the report
    content: np.ndarray  # the sorted, distinct 32-bit hashes of the content words
    answer: int  # a hash of the answer alone
    numbers: frozenset[str]


_NAME = re.compile(r"(?<![.?!:]\s)(?<!^)\b[A-Z][a-z]+\b")


def names(text: str) -> set[str]:
    """Capitalised words inside a sentence: the people and places a rewording may rename."""
    return {m.lower() for m in _NAME.findall(text.strip())}


def signature(
    text: str,
    answer: str,
    common: frozenset[str] | set[str] = frozenset(),
    with_names: bool = True,
) -> Signature | None:
    """What a rewording of this question keeps; None when it has no reference answer. common:
    its template's boilerplate words (dedup.boilerplate), which say nothing of the problem.
    with_names False: names are not content (a benchmark question reworded often renames)."""
    found = tokens(text)
    if not with_names:
        common = {*common, *names(text)}
    answer_norm = answer_key(answer)
    if not answer_norm:
        return None
    # A set: "the two" in "the larger of the two" repeats a number without adding one.
    numbers = sorted({t for t in found if _is_number(t)}, key=float)
    evidence = f"answer {answer_norm!r}, numbers {numbers}"
    content = {
        stem(t.lower())
        for t in found
        if not _is_number(t) and t.lower() not in STOP and t.lower() not in common and len(t) > 1
    }
    hashes = np.unique(np.fromiter((zlib.crc32(w.encode()) for w in content), np.uint32))
    return Signature(
        zlib.crc32(evidence.encode()),
        evidence,
        hashes,
        zlib.crc32(answer_norm.encode()),
        frozenset(numbers),
    )


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two sets of content hashes."""
    if not len(a) and not len(b):
        return 1.0
    shared = len(np.intersect1d(a, b, assume_unique=True))
    return shared / (len(a) + len(b) - shared)


class SemanticIndex(Generic[T]):
    """Questions by signature; a match is an earlier question with the same signature whose
    content words overlap by at least min_overlap, or else the closest one at or above `floor`
    (an unsure pair, for a judge to settle). Each question is kept as its owner (whatever the
    caller names it by), its family and its content hashes.

    `contained`: a match needs the same answer and all of the indexed question's numbers, not
    the same numbers: a rewording may add a distractor ("Before 6, a baker makes 120 rolls").
    For a small index (the benchmark questions), where comparing every question of one answer
    costs little."""

    def __init__(self, min_overlap: float, floor: float | None = None, contained: bool = False):
        self._min = min_overlap
        self._floor = min_overlap if floor is None else min(floor, min_overlap)
        self._contained = contained
        self._by_key: dict[int, list[int]] = {}
        self._content: list[np.ndarray] = []
        self._numbers: list[frozenset[str]] = []
        self._owners: list[tuple[T, str]] = []  # (owner, family)

    def match(self, sig: Signature, family: str = "") -> tuple[T, float, str] | None:
        """(the earlier question's owner, the overlap, the evidence), or None. Questions of one
        family (an evolved question and its root) never match each other."""
        best: tuple[T, float] | None = None
        for index in self._by_key.get(sig.answer if self._contained else sig.key, []):
            owner, other_family = self._owners[index]
            if family and family == other_family:
                continue
            if self._contained and not self._numbers[index] <= sig.numbers:
                continue
            similarity = overlap(self._content[index], sig.content)
            if similarity >= self._min:
                best = (owner, similarity)
                break
            if similarity >= self._floor and (best is None or similarity > best[1]):
                best = (owner, similarity)
        if best is None:
            return None
        return *best, f"{sig.evidence}; content words overlap {best[1]:.2f}"

    def add(self, sig: Signature, owner: T, family: str = "") -> None:
        key = sig.answer if self._contained else sig.key
        self._by_key.setdefault(key, []).append(len(self._owners))
        self._content.append(sig.content)
        self._numbers.append(sig.numbers)
        self._owners.append((owner, family))
