"""A pilot: the build run for real on a few questions, to measure what a dry run must assume.

The pilot's config is the build's with every source scaled down to about N questions in one
shard; it is built as build id `<name>-pilot-<N>` beside the build's own, through the same
gateway state, so the answers it paid for are served from the request cache when the full build
asks the same requests (a pilot rerun with the same N pays nothing). From it come how often the
teacher is right at each turn, the share of written answers confirmed, each role's mean output
length (from the ledger) and the rewrite ratio.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select

from raspberry.llm.state import LEDGER, RESPONSES, engine_for
from raspberry.stages.config import BuildConfig, EstimateConfig


def pilot_config(config: BuildConfig, n: int) -> dict[str, Any]:
    """The config of a pilot of about n questions, its relative paths made absolute."""
    data = config.model_dump(mode="json", exclude={"source"}, exclude_none=True)
    q = data["questions"]
    total = sum(t["count"] for t in q["reasoning_gym"]) + (
        q["synthesis"]["count"] if "synthesis" in q else 0
    )
    share = min(1.0, n / total) if total else 1.0
    for task in q["reasoning_gym"]:
        task["count"] = max(1, math.ceil(task["count"] * share))
    if "synthesis" in q:
        q["synthesis"]["count"] = max(1, math.ceil(q["synthesis"]["count"] * share))
    q["shards"] = 1
    folder = Path(config.source).parent
    data["prompts_dir"] = str(config.prompts_path())
    for f in q.get("files", []):
        f["path"] = str((folder / f["path"]).resolve())
    decon = q.get("filters", {}).get("decontamination", {})
    decon["benchmarks"] = [str((folder / b).resolve()) for b in decon.get("benchmarks", [])]
    data["gateway"]["cache_path"] = str((Path.cwd() / config.gateway.cache_path).resolve())
    data["output_dir"] = str(Path(config.output_dir).resolve())
    data["name"] = f"{config.name}-pilot"
    return data


def write_pilot_config(config: BuildConfig, n: int, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{config.name}-pilot-{n}.yaml"
    path.write_text(yaml.safe_dump(pilot_config(config, n), sort_keys=False))
    return path


def _turn_rates(solved_at: dict[str, int], dialogues: int) -> tuple[float, float] | None:
    if not dialogues:
        return None
    first = solved_at.get("1", 0) / dialogues
    reached, solved, left = 0, 0, dialogues - solved_at.get("1", 0)
    for turn in range(2, max(map(int, solved_at), default=1) + 1):
        reached += left
        solved += solved_at.get(str(turn), 0)
        left -= solved_at.get(str(turn), 0)
    return first, (solved / reached if reached else 0.5)


def measured(
    config: BuildConfig, pilot: BuildConfig, build_id: str, reports: dict[str, Any]
) -> tuple[EstimateConfig, dict[str, Any]]:
    """The pilot's measurements as the `estimate:` section they replace, and what was seen."""
    engine = engine_for(pilot.gateway.state())
    with engine.connect() as conn:
        per_model = {
            model: (float(mean or 0), n)
            for model, mean, n in conn.execute(
                select(RESPONSES.c.model, func.avg(RESPONSES.c.tokens_out), func.count())
                .join(LEDGER, LEDGER.c.key == RESPONSES.c.key)
                .where(LEDGER.c.build_id == build_id)
                .group_by(RESPONSES.c.model)
            )
        }
    base = config.estimate
    outputs = dict(base.output_tokens)
    for role, model in config.models.items():
        if role != "rewriter" and model.model in per_model:
            outputs[role] = round(per_model[model.model][0])
    d = reports.get("dialogues", {})
    rates = _turn_rates(d.get("solved_at_turn", {}), d.get("dialogues", 0))
    first, later = rates or (base.solved_first_turn, base.solved_later_turn)
    synth = reports.get("questions", {}).get("by_source", {}).get("synthesis", {})
    kept = synth["kept"] / synth["rows"] if synth.get("rows") else base.written_kept
    ratio = reports.get("sft", {}).get("median_retention") or base.rewrite_ratio
    cfg = EstimateConfig(
        solved_first_turn=round(first, 3),
        solved_later_turn=round(later, 3),
        written_kept=round(kept, 3),
        output_tokens=outputs,
        rewrite_ratio=round(ratio, 3),
    )
    seen = {"dialogues": d.get("dialogues", 0), "responses_by_model": per_model}
    return cfg, seen
