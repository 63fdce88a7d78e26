"""The build's estimate, per stage and role and in all (the figures `raspberry estimate` prints):
each registered stage's estimate hook, under the point, low and high assumptions, priced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from raspberry.stages.candidates.screening import questions_of
from raspberry.stages.config import BuildConfig, EstimateConfig
from raspberry.stages.estimate import Assumptions, Line, Questions, cases, context
from raspberry.stages.registry import names, stages

FIGURES = ("requests", "tokens_in", "tokens_cache_read", "tokens_cache_write", "tokens_out")
MONEY = ("cost_usd", "low_usd", "high_usd")


def lines(config: BuildConfig, qs: Questions, a: Assumptions) -> list[Line]:
    """Every stage's requests by role under one set of assumptions, each from its stage's
    estimate hook."""
    ctx = context(config, qs, a)
    return [line for spec in stages() for line in spec.estimate(ctx)]


def estimate(config: BuildConfig, assumptions: EstimateConfig | None = None) -> dict[str, Any]:
    """Per stage and role: requests, tokens and dollars, with a low-high range; and the totals.
    `assumptions`: a pilot's measurements, in place of the config's `estimate:` section."""
    qs = questions_of(config.questions, Path(config.source).parent)
    by_case = {
        name: lines(config, qs, a) for name, a in cases(assumptions or config.estimate).items()
    }
    stages: dict[str, Any] = {name: _totals(roles={}) for name in names()}
    for point, low, high in zip(by_case["point"], by_case["low"], by_case["high"], strict=True):
        model = config.models[point.role].model
        price = config.prices.get(model)
        stage = stages.setdefault(point.stage, _totals(roles={}))
        role = stage["roles"].setdefault(point.role, _totals(model=model, batch=point.batch))
        for field in FIGURES:
            tokens = round(getattr(point, field))
            role[field] += tokens
            stage[field] += tokens
        for key, line in zip(MONEY, (point, low, high), strict=True):
            dollars = line.cost(price)
            role[key] += dollars
            stage[key] += dollars
    if config.train and config.train.backend == "openai":
        stages["train"] = _fine_tuning(config, by_case)
    for stage in stages.values():
        for entry in (stage, *stage["roles"].values()):
            for key in MONEY:
                entry[key] = round(entry[key], 4)
    return {
        "questions": {"free": qs.free, "written": qs.written},
        "estimate_usd": round(sum(s["cost_usd"] for s in stages.values()), 4),
        "estimate_low_usd": round(sum(s["low_usd"] for s in stages.values()), 4),
        "estimate_high_usd": round(sum(s["high_usd"] for s in stages.values()), 4),
        "stages": stages,
    }


def _fine_tuning(config: BuildConfig, by_case: dict[str, list[Any]]) -> dict[str, Any]:
    """A fine-tuning job on the build (train.backend openai): it trains on the monologues the
    rewriter writes, and the questions they answer, once per epoch."""
    train = config.train
    assert train is not None
    price = config.prices.get(train.base_model)
    per_token = (price.training_per_mtok or 0.0) / 1e6 if price else 0.0
    epochs = max(1, round(train.epochs))
    tokens = {
        case: epochs * sum(line.tokens_out for line in lines if line.role == "rewriter")
        for case, lines in by_case.items()
    }
    role = _totals(model=train.base_model, batch=False)
    role["tokens_in"] = round(tokens["point"])
    for key, case in zip(MONEY, ("point", "low", "high"), strict=True):
        role[key] = tokens[case] * per_token
    stage = _totals(roles={"trainer": role})
    stage.update({k: role[k] for k in (*FIGURES, *MONEY)})
    return stage


def _totals(**fields: Any) -> dict[str, Any]:
    """A stage's or a role's figures, all at zero."""
    return {**fields, **dict.fromkeys(MONEY, 0.0), **dict.fromkeys(FIGURES, 0)}
