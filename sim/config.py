"""The simulator's settings: one type for the build config's `sim:` section, the `raspberry sim
serve` flags (made from its fields) and the server itself."""

from __future__ import annotations

import argparse
import types
from collections.abc import Mapping
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from raspberry_sim.batches import BatchFaults
from raspberry_sim.roles import Behaviour

from raspberry.errors import ConfigError


class SimConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: float = Field(0.0, ge=0, description="added to every answer")
    jitter_ms: float = Field(0.0, ge=0, description="random extra latency, up to this")
    rpm: int | None = Field(None, gt=0, description="requests/min, enforced per second")
    limit_mode: Literal["fixed", "sliding", "bucket"] = Field(
        "sliding",
        description="how rpm is enforced: fixed or sliding one-second window, or token bucket",
    )
    error_rate: float = Field(0.0, ge=0, le=1, description="share of 500 answers")
    # Faults for reliability runs: shares of requests answered 429 with Retry-After, never
    # answered (the client's timeout must end them), answered with an empty completion, and of
    # judge answers whose JSON is cut in half.
    rate_limit_rate: float = Field(0.0, ge=0, le=1, description="share of 429 answers")
    hang_rate: float = Field(0.0, ge=0, le=1, description="share never answered")
    empty_rate: float = Field(0.0, ge=0, le=1, description="share of empty completions")
    malformed_judge_rate: float = Field(
        0.0, ge=0, le=1, description="share of judge JSON cut in half"
    )
    fail_containing: list[str] = Field(
        default_factory=list,
        description="answer 500 to every request whose messages contain this text (repeatable)",
    )
    wrong_first_prob: float = Field(
        0.4, ge=0, le=1, description="chance that the teacher's first attempt is wrong"
    )
    wrong_retry_prob: float = Field(
        0.2, ge=0, le=1, description="chance that a later attempt is wrong again"
    )
    batch_delay_s: float = Field(0.2, ge=0, description="seconds until a batch ends")
    batch_error_rate: float = Field(0.0, ge=0, le=1, description="share of batch requests erring")
    batch_expire_rate: float = Field(
        0.0, ge=0, le=1, description="share of batch requests expiring"
    )
    fine_tune_s: float = Field(2.0, ge=0, description="seconds a fine-tuning job runs")
    prompt_cache: bool = Field(True, description="report prompt-cache reads and writes")
    cache_min_tokens: int = Field(
        1024, ge=1, description="shortest prompt prefix the prompt cache keeps (tokens)"
    )
    seed: int = Field(0, description="seeds every simulated choice")

    def behaviour(self) -> Behaviour:
        return Behaviour(self.seed, self.wrong_first_prob, self.wrong_retry_prob)

    def batch(self) -> BatchFaults:
        return BatchFaults(self.batch_delay_s, self.batch_error_rate, self.batch_expire_rate)


def settings(section: Mapping[str, Any]) -> SimConfig:
    """A build config's `sim:` section, checked: a wrong key or value is one ConfigError line."""
    try:
        return SimConfig.model_validate(section)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(part) for part in ("sim", *err["loc"]))
        raise ConfigError(f"{where}: {err['msg']} (see `raspberry sim serve --help`)") from None


def add_flags(parser: argparse.ArgumentParser) -> None:
    """A flag per setting: --latency-ms for latency_ms, repeatable for a list, --no-X for a
    switch that is on."""
    for name, field in SimConfig.model_fields.items():
        flag = "--" + name.replace("_", "-")
        kind = field.annotation
        if get_origin(kind) in (Union, types.UnionType):
            kind = next(a for a in get_args(kind) if a is not type(None))
        if kind is bool:
            parser.add_argument(
                flag,
                action=argparse.BooleanOptionalAction,
                default=field.default,
                help=field.description,
            )
        elif get_origin(kind) is list:
            parser.add_argument(flag, action="append", default=[], help=field.description)
        elif get_origin(kind) is Literal:
            choices = get_args(kind)
            parser.add_argument(
                flag, choices=choices, default=field.default, help=field.description
            )
        else:
            parser.add_argument(flag, type=kind, default=field.default, help=field.description)


def from_flags(args: argparse.Namespace) -> SimConfig:
    values: dict[str, Any] = {name: getattr(args, name) for name in SimConfig.model_fields}
    return SimConfig.model_validate(values)
