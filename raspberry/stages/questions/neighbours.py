"""Questions near each other in an embedding space, among those that may be the same problem.

Only questions with the same reference answer (or both without one) can be the same problem
(semantic.py), so vectors are kept per answer tag and a new question is compared with its own
tag's questions only: a matrix product over a few rows, not over the build. Vectors are kept as
float16 (2 bytes a dimension: 3 KB a question at 1,536 dimensions, 128 bytes at the simulator's
64).
"""

from __future__ import annotations

from typing import Generic, TypeVar

import numpy as np

T = TypeVar("T")


class _Bucket:
    def __init__(self, dims: int):
        self.vectors = np.empty((8, dims), np.float16)
        self.size = 0
        self.members: list[int] = []  # index into the owners

    def add(self, vector: np.ndarray, member: int) -> None:
        if self.size == len(self.vectors):
            self.vectors = np.concatenate([self.vectors, np.empty_like(self.vectors)])
        self.vectors[self.size] = vector
        self.size += 1
        self.members.append(member)


class VectorIndex(Generic[T]):
    """Unit vectors by answer tag; nearest() finds the closest earlier question of another
    family, with its cosine similarity."""

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}
        self._owners: list[tuple[T, str]] = []  # (owner, family)

    def nearest(self, vector: np.ndarray, tag: str, family: str = "") -> tuple[T, float] | None:
        bucket = self._buckets.get(tag)
        if bucket is None or not bucket.size:
            return None
        cosines = bucket.vectors[: bucket.size].astype(np.float32) @ vector.astype(np.float32)
        for position in np.argsort(-cosines, kind="stable").tolist():
            owner, other_family = self._owners[bucket.members[position]]
            if not (family and family == other_family):
                return owner, float(cosines[position])
        return None

    def add(self, vector: np.ndarray, tag: str, owner: T, family: str = "") -> None:
        bucket = self._buckets.setdefault(tag, _Bucket(len(vector)))
        bucket.add(vector, len(self._owners))
        self._owners.append((owner, family))
