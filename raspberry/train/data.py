"""What a training reads from a build: its conversational export (train and validation splits),
its preference pairs, and the lineage of both (which shards and rows)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from raspberry.build_files.store import BuildStore
from raspberry.errors import RaspberryError

Message = dict[str, str]


@dataclass
class Example:
    id: str
    prompt: list[Message]
    completion: list[Message]


@dataclass
class Pair:
    question_id: str
    prompt: list[Message]
    chosen: list[Message]
    rejected: list[Message]


@dataclass
class TrainingData:
    train: list[Example]
    validation: list[Example]
    pairs: list[Pair]
    lineage: dict[str, Any]


def _lines(store: BuildStore, rel: str) -> list[dict[str, Any]]:
    folder = store.exports()
    if not folder.exists(rel):
        return []
    return [json.loads(line) for line in folder.read_text(rel).splitlines() if line.strip()]


def _examples(store: BuildStore, split: str) -> list[Example]:
    return [
        Example(row["metadata"]["id"], row["prompt"], row["completion"])
        for row in _lines(store, f"{split}/trl_prompt_completion.jsonl")
    ]


def training_data(store: BuildStore, exported_by: str) -> TrainingData:
    """The build's exported rows (those of the stage `exported_by`), and their lineage; a build
    without complete exports is refused in one line."""
    if not store.exports().exists("README.md"):
        raise RaspberryError(
            f"build '{store.build_id}' has no complete exports to train on (it is not built, "
            f"or it has only exports-partial/): finish it with `raspberry rerun {store.build_id}`"
        )
    train, validation = _examples(store, "train"), _examples(store, "validation")
    if not train:
        raise RaspberryError(
            f"build '{store.build_id}' exported no train/trl_prompt_completion.jsonl rows; "
            "add trl_prompt_completion to sft.export.formats and export it again"
        )
    pairs = [
        Pair(
            p["question_id"],
            [{"role": "user", "content": p["prompt"]}],
            [{"role": "assistant", "content": p["chosen"]}],
            [{"role": "assistant", "content": p["rejected"]}],
        )
        for p in _lines(store, "train/preference_pairs.jsonl")
    ]
    stage = exported_by
    shards = {
        f"{stage}/{name}": entry["fingerprint"]
        for name, entry in sorted(store.manifest()["stages"].get(stage, {}).items())
        if entry["state"] == "done"
    }
    lineage = {
        "build_id": store.build_id,
        "shards": shards,
        "train_rows": [e.id for e in train],
        "validation_rows": [e.id for e in validation],
        "preference_pairs": len(pairs),
    }
    return TrainingData(train, validation, pairs, lineage)
