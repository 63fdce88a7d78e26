"""The dataset card (README.md of the export folder): what is in it and how it was made."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData

from raspberry.records import Lineage, SftRow

LICENCES = {"reasoning_gym": "Apache-2.0 (reasoning-gym generators)"}


def _histogram(values: list[int], buckets: int = 8) -> str:
    if not values:
        return "(no rows)"
    low, high = min(values), max(values)
    width = max(1, -(-(high - low + 1) // buckets))
    counts = Counter((v - low) // width for v in values)
    top = max(counts.values())
    lines = []
    for b in range(buckets):
        start = low + b * width
        if start > high:
            break
        bar = "#" * round(40 * counts.get(b, 0) / top)
        lines.append(f"{start:>7}–{start + width - 1:<7} {counts.get(b, 0):>6}  {bar}")
    return "\n".join(lines)


@dataclass
class Made:
    """What the card tells of the build: its id, funnel and state (given by the caller, which
    reads the whole build: report.build_facts), and the summed reports of the stages it names."""

    build_id: str
    funnel: str
    complete: bool
    failed_shards: int
    failed_rows: int
    dialogues: dict[str, Any]
    verdicts: dict[str, Any]
    sft: dict[str, Any]


def _partial_note(made: Made) -> str:
    if made.complete:
        return ""
    return (
        f"\n**PARTIAL BUILD**: {made.failed_shards} shard(s) and {made.failed_rows} row(s) "
        f"failed, so rows are missing. `raspberry rerun {made.build_id}` completes it.\n"
    )


def _size_category(n: int) -> str:
    """The Hub's size bucket for n rows."""
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < limit:
            return name
    return "100K<n<1M" if n < 1_000_000 else "n>1M"


def _configs(files: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """The formats that are dataset configs: every JSONL one. `datasets` reads every config of a
    folder with the builder it infers for the default one, so the Parquet copy is not a config
    (the card says how to load it)."""
    return {fmt: by_split for fmt, by_split in files.items() if fmt != "parquet"}


def card_data(
    configs: dict[str, dict[str, str]], rows: int, licence: str | None, build_id: str
) -> DatasetCardData:
    """The card's YAML metadata: a config per format mapping each split to its file (the first,
    prompt_response where written, is the default), the licence, task and size categories."""
    return DatasetCardData(
        license=licence or "other",
        task_categories=["text-generation"],
        size_categories=[_size_category(rows)],
        tags=["reasoning", "self-correction", "synthetic", "raspberry"],
        pretty_name=f"{build_id}: self-correcting reasoning SFT data",
        configs=[
            {
                "config_name": fmt,
                **({"default": True} if i == 0 else {}),
                "data_files": [{"split": split, "path": path} for split, path in splits.items()],
            }
            for i, (fmt, splits) in enumerate(configs.items())
        ],
    )


def dataset_card(
    rows: list[SftRow],
    report: dict[str, Any],
    lineages: list[Lineage],
    made: Made,
    files: dict[str, dict[str, str]],
    licence: str | None = None,
) -> str:
    """The README.md of an export folder: Hub metadata (huggingface_hub's DatasetCard), then
    what is in it and how it was made. lineages: of all the build's rows, naming models and
    prompts; files: format -> split -> path, as written."""
    configs = _configs(files)
    data = card_data(configs, len(rows), licence, made.build_id)
    sources = Counter(r.source for r in rows)
    models = sorted({m for lineage in lineages for m in lineage.models})
    prompts = sorted({p for lineage in lineages for p in lineage.prompts})
    dialogues, verdicts, sft = made.dialogues, made.verdicts, made.sft
    solved_at = json.dumps(dialogues.get("solved_at_turn", {}))
    rejected = json.dumps(verdicts.get("drops", {}))
    rewrite_drops = json.dumps(sft.get("drops", {}))
    mix = report["mix"]
    source_lines = "\n".join(
        f"| {s} | {n} | {LICENCES.get(s, 'see the source')} |" for s, n in sorted(sources.items())
    )
    return str(
        DatasetCard(f"""---
{data.to_yaml()}
---
# {made.build_id}: self-correcting reasoning SFT data
{_partial_note(made)}
Built by Raspberry. Each row is a question and one monologue that reasons step by step, makes
mistakes, notices them and corrects itself, ending with a verified final answer.

## Contents

| | |
|---|---|
| rows | {len(rows)} |
| solved at the first try | {mix["first_try"]} |
| self-corrected | {mix["self_corrected"]} |
| splits | {json.dumps(report["splits"])} |
| reasoning wrapper | {report["reasoning_wrapper"]} |
| dropped over the token limit | {report["dropped_over_token_limit"]} |
| preference pairs | {report.get("preference_pairs", "not exported")} |

Load it with `datasets.load_dataset("<this folder or repo>")` (the default config,
{next(iter(configs), "none")}) or `load_dataset(..., "<config>")`; the configs:
{", ".join(configs) or "none"}. The same rows in Parquet:
`load_dataset("parquet", data_files={{"train": "parquet/train.parquet", ...}})`.
Each JSONL format also holds all rows at the top level (line i is the same row in each);
`export_report.json` has the counts. A format without rows is not written.

Licence: {licence or 'not stated ("other"): the licences of the sources below apply'}.

## Sources and licences

| source | rows | licence |
|---|---|---|
{source_lines}

## How it was made

- Funnel: {made.funnel}.
- Dialogues: {solved_at} solved at turn n; give-up rate {dialogues.get("give_up_rate")}.
- Verification: each final answer passed the question's programmatic verifier (reasoning-gym
  scorer at 1.0), then an LLM judge's rubric. Rejected: {rejected}.
- Rewrite: multi-turn dialogues were rewritten into one monologue and kept only if it retained
  the reasoning (median retention {sft.get("median_retention")}), leaked no nudge,
  kept a self-correction per wrong attempt, and still passed the verifier. Dropped: {rewrite_drops}.
- Models: {", ".join(models) or "none recorded"}.
- Prompts: {", ".join(prompts) or "none recorded"}.

## Response lengths (characters)

```
{_histogram([len(r.response) for r in rows])}
```
""")
    )
