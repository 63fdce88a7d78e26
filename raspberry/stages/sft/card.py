"""The dataset card (README.md of the export folder): what is in it and how it was made."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData

from raspberry.build_files.records import Lineage, SftRow

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


FIELDS = {
    "id": "the row's id",
    "question_id": "the question's id (a hash of its text)",
    "source": "where the question came from (reasoning_gym, synthesis, evolution, files)",
    "turns": "the teacher's attempt that was right (1: the first)",
    "rewritten": "whether a multi-turn dialogue was rewritten into this monologue",
    "prompt": "the question",
    "response": "the monologue, ending with its final answer",
    "reasoning": "the monologue up to its final answer",
    "answer": "the final answer line",
}


def _schema_rows(fmt: str, wrapper: str) -> str:
    if fmt != "prompt_response":
        return "| (see the format's own documentation) | |"
    body = ("reasoning", "answer") if wrapper == "fields" else ("response",)
    names = ("id", "question_id", "source", "turns", "rewritten", "prompt", *body)
    return "\n".join(f"| `{n}` | {FIELDS[n]} |" for n in names)


def _split_rows(splits: dict[str, dict[str, int]]) -> str:
    return "\n".join(
        f"| {split} | {sum(by.values())} | "
        f"{', '.join(f'{s} {n}' for s, n in sorted(by.items())) or '-'} |"
        for split, by in splits.items()
    )


def _funnel_rows(funnel: str) -> str:
    """'candidates 411 → questions 383 → ...' as table rows."""
    steps = [step.rsplit(" ", 1) for step in funnel.split(" → ") if " " in step]
    return "\n".join(f"| {name} | {count} |" for name, count in steps)


def _counts(counts: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in counts.items()) or "none"


def _sample(rows: list[SftRow], limit: int = 1200) -> str:
    if not rows:
        return "(no rows)"
    row = next((r for r in rows if r.rewritten), rows[0])
    response = row.response if len(row.response) <= limit else row.response[:limit] + "\n…"
    return f"**prompt**\n\n> {row.prompt}\n\n**response**\n\n```text\n{response}\n```"


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
    mix = report["mix"]
    default = next(iter(configs), "prompt_response")
    source_lines = "\n".join(
        f"| {s} | {n} | {LICENCES.get(s, 'see the source')} |" for s, n in sorted(sources.items())
    )
    return str(
        DatasetCard(f"""---
{data.to_yaml()}
---
# {made.build_id}: self-correcting reasoning SFT data
{_partial_note(made)}
{len(rows)} questions, each with one answer written as a monologue that reasons step by step,
makes mistakes, notices them and corrects itself, and ends with a final answer that passed the
question's own check. It is meant for supervised fine-tuning of a model that should learn to
catch its own errors. {mix["self_corrected"]} rows correct themselves at least once;
{mix["first_try"]} are right at the first try. Built by Raspberry: a teacher model answered each
question, a user stand-in nudged it without giving the answer away until it got it right,
programmatic checks and an LLM judge accepted the result, and the dialogue was rewritten into
one monologue.

## Load it

```python
from datasets import load_dataset

rows = load_dataset("<this repo or folder>")  # the default config, {default}
chat = load_dataset("<this repo or folder>", "openai_chat")  # another format
```

Configs (one per format; line i is the same row in each): {", ".join(configs) or "none"}. The
same rows in Parquet: `load_dataset("parquet", data_files={{"train": "parquet/train.parquet"}})`.
`export_report.json` has the counts; `recipe/` holds the config and prompts that made it.

## Splits

| split | rows | by source |
|---|---|---|
{_split_rows(report["splits"])}

## Fields ({default})

| field | meaning |
|---|---|
{_schema_rows(default, report["reasoning_wrapper"])}

## A row

{_sample(rows)}

## How it was made

| stage | rows |
|---|---|
{_funnel_rows(made.funnel)}

- Dialogues: solved at turn {_counts(dialogues.get("solved_at_turn", {}))}; give-up rate
  {dialogues.get("give_up_rate")}.
- Verification: each final answer passed the question's programmatic verifier (where it has
  one), then an LLM judge's rubric. Rejected: {_counts(verdicts.get("drops", {}))}.
- Rewrite: multi-turn dialogues were rewritten into one monologue and kept only if it retained
  the reasoning (median retention {sft.get("median_retention")}), leaked no nudge, kept a
  self-correction per wrong attempt, and still passed the verifier. Dropped:
  {_counts(sft.get("drops", {}))}.
- Reasoning wrapper: {report["reasoning_wrapper"]}; dropped over the token limit:
  {report["dropped_over_token_limit"]}; preference pairs: {report.get("preference_pairs", 0)}.
- Models: {", ".join(models) or "none recorded"}.
- Prompts: {", ".join(prompts) or "none recorded"}.

## Sources and licences

Licence: {licence or 'not stated ("other"): the licences of the sources below apply'}.

| source | rows | licence |
|---|---|---|
{source_lines}

## Response lengths (characters)

```
{_histogram([len(r.response) for r in rows])}
```
""")
    )
