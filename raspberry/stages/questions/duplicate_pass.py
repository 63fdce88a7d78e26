"""The duplicate pass, once per build over every candidate shard (and earlier builds' questions):
the shards read in batches as documents for dedup.py, and its finds as the table each shard of
the questions stage applies."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from raspberry.stages.candidates import reasoning_gym_source
from raspberry.stages.candidates.config import QuestionsConfig
from raspberry.stages.candidates.semantic import answer_of
from raspberry.stages.questions.dedup import Doc, find_duplicates


def _batches(url: str, columns: list[str]) -> Iterator[pa.RecordBatch]:
    with fsspec.open(url, "rb") as fh:
        yield from pq.ParquetFile(fh).iter_batches(batch_size=4096, columns=columns)


def _rows(urls: list[str], columns: list[str]) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """(shard, row, record) of every row of shard files (by URL), read in batches."""
    for shard, url in enumerate(urls):
        row = 0
        for batch in _batches(url, columns):
            for rec in batch.to_pylist():
                yield shard, row, rec
                row += 1


def _docs(urls: list[str], earlier: bool = False) -> Iterator[Doc]:
    """The kept rows of shard files (by URL) as documents, read in batches (never a whole
    build)."""
    columns = [
        "id", "root_id", "source", "task", "prompt", "reference_answer", "verification",
        "drop_reason",
    ]  # fmt: skip
    for shard, row, rec in _rows(urls, columns):
        if rec["drop_reason"]:
            continue
        answer, free_text = answer_of(rec["reference_answer"] or "", rec["verification"])
        build = posixpath.basename(posixpath.dirname(posixpath.dirname(urls[shard])))
        yield Doc(
            key=(shard, row),
            ref=f"{build}/{rec['id']}" if earlier else rec["id"],
            group=f"{rec['source']}/{rec['task']}",
            text=rec["prompt"],
            family=rec["root_id"] or rec["id"],
            prose=free_text and rec["source"] != reasoning_gym_source.SOURCE,
            answer=answer,
            earlier=earlier,
        )


Embed = Callable[[list[str]], list[np.ndarray]]  # texts -> unit vectors (the embedder role)


def duplicates(
    cfg: QuestionsConfig,
    shards: list[str],
    earlier: list[str],
    embed: Embed | None = None,
    unsure: bool = False,
) -> list[dict[str, Any]]:
    """Every candidate to drop as a duplicate, and (when `unsure`) every unsure pair with the
    earlier question's text and answer for the judge: {shard, row, reason, detail, other_*},
    in build order."""
    found = list(
        find_duplicates(
            lambda: _docs(shards),
            cfg.filters.near_duplicates,
            (lambda: _docs(earlier, earlier=True)) if earlier else None,
            (lambda docs: embed([d.text for d in docs])) if embed else None,
            unsure,
        )
    )
    # The judge needs the earlier question's words, which the pass did not keep: one more read,
    # of the rows named only.
    wanted = {f.other for f in found if f.other}
    texts: dict[tuple[bool, int, int], dict[str, Any]] = {}
    for is_earlier, urls in ((True, earlier), (False, shards)):
        if any(w[0] == is_earlier for w in wanted):
            for shard, row, rec in _rows(urls, ["id", "prompt", "reference_answer"]):
                if (is_earlier, shard, row) in wanted:
                    texts[(is_earlier, shard, row)] = rec
    rows = []
    for f in found:
        other = texts.get(f.other) if f.other else None
        rows.append(
            {
                "shard": f.key[0],
                "row": f.key[1],
                "reason": f.reason,
                "detail": f.detail,
                "other_id": other["id"] if other else None,
                "other_prompt": other["prompt"] if other else None,
                "other_answer": other["reference_answer"] if other else None,
            }
        )
    return rows
