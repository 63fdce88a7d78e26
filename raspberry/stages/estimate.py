"""What a build will ask and pay, per stage and role, before anything is sent.

Counts come from the config (sources, samples, turns, confirmations); input lengths from the
real prompts and the real questions of the free sources (reasoning-gym, files), counted with an
OpenAI encoding; what the config cannot say (output lengths, how often the teacher is right)
from the `estimate:` section, or a pilot's measurements of them. Each figure is worked out three
times: the point estimate, a low case (outputs half as long, the teacher right more often) and
a high one (outputs 1.75x, right less often). The `estimate:` section (stages/config.py)
holds those assumptions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from raspberry.llm.config import SIM_BASE_URL, PriceConfig
from raspberry.llm.cost import OPENAI_CACHE_STEP, request_cost
from raspberry.llm.tokens import count_text
from raspberry.llm.types import STOP, Completion
from raspberry.prompts import load_prompt
from raspberry.stages.config import DEFAULT_OUTPUT_TOKENS, BuildConfig, EstimateConfig

ENCODING = "o200k_base"
SAMPLE = 200  # questions of each free source whose prompts are counted


def count(text: str) -> int:
    return count_text(text, ENCODING)


@dataclass(frozen=True)
class Assumptions:
    solved_first: float
    solved_later: float
    written_kept: float
    out_scale: float
    output_tokens: dict[str, int]
    rewrite_ratio: float
    unsure_share: float

    def out(self, role: str) -> float:
        base = self.output_tokens.get(role, DEFAULT_OUTPUT_TOKENS.get(role, 300))
        return base * self.out_scale


def cases(cfg: EstimateConfig) -> dict[str, Assumptions]:
    point = Assumptions(
        cfg.solved_first_turn,
        cfg.solved_later_turn,
        cfg.written_kept,
        1.0,
        cfg.output_tokens,
        cfg.rewrite_ratio,
        cfg.unsure_share,
    )

    def shift(p: float, by: float) -> float:
        return min(1.0, max(0.0, p + by))

    return {
        "point": point,
        "low": replace(point, solved_first=shift(point.solved_first, 0.15),
                       solved_later=shift(point.solved_later, 0.15), out_scale=0.5),
        "high": replace(point, solved_first=shift(point.solved_first, -0.15),
                        solved_later=shift(point.solved_later, -0.15), out_scale=1.75),
    }  # fmt: skip


@dataclass
class Line:
    """One role's requests in one stage."""

    stage: str
    role: str
    requests: float = 0.0
    tokens_in: float = 0.0
    tokens_cache_read: float = 0.0
    tokens_cache_write: float = 0.0
    tokens_out: float = 0.0
    batch: bool = False

    def cost(self, price: PriceConfig | None) -> float:
        """Priced as the gateway prices an answer with these totals (llm/cost.py)."""
        totals = Completion(
            text="",
            stop_reason=STOP,
            model="",
            tokens_in=round(self.tokens_in),
            tokens_cache_read=round(self.tokens_cache_read),
            tokens_cache_write=round(self.tokens_cache_write),
            tokens_out=round(self.tokens_out),
            batch=self.batch,
        )
        return request_cost(price, totals)


def line(stage: str, role: str, n: float, tokens_in: float, tokens_out: float, batch: bool) -> Line:
    """n requests of tokens_in and tokens_out each."""
    return Line(stage, role, n, n * tokens_in, tokens_out=n * tokens_out, batch=batch)


@dataclass(frozen=True)
class Questions:
    """What the dry run knows of the build's questions before any is written."""

    free: int  # from reasoning-gym and files
    free_tokens: float  # their mean prompt length
    free_unverified: int  # of them, those only the critic can check
    written: int  # by the question writer
    confirmed_files: int  # file questions whose answers the teacher confirms
    benchmark_items: int  # in the benchmark files decontamination reads


def _prompt_tokens(config: BuildConfig, name: str) -> int:
    """A prompt file's own tokens, its placeholders left empty."""
    text = load_prompt(config.prompts_path(), name).text
    return count(re.sub(r"\{[a-z_]+\}", "", text))


@dataclass(frozen=True)
class PromptCache:
    """How the teacher's provider caches a dialogue's prompts."""

    minimum: int  # the shortest prefix it keeps
    breakpoints: bool  # Anthropic: only up to cache_control marks; OpenAI: every prefix
    step: int = OPENAI_CACHE_STEP

    def turn(self, k: int, system: float, prompt: float, before: float) -> tuple[float, float]:
        """(tokens read, tokens written at the cache-write price) of turn k's prompt, whose
        system prompt (the same in every dialogue) is `system` tokens long and whose previous
        turn's prompt, a prefix of it, was `before`."""
        shared = system if system >= self.minimum else 0.0
        if not self.breakpoints:  # the longest step of an earlier prompt; writes are free
            seen = before if k > 1 else system
            if seen < self.minimum:
                return 0.0, 0.0
            return self.minimum + (seen - self.minimum) // self.step * self.step, 0.0
        if k == 1:  # only the system prompt is marked: written once for the whole build
            return shared, 0.0
        # From turn 2 the last message is marked too; turn 1 marked only the system prompt.
        read = before if k > 2 and before >= self.minimum else shared
        return read, (prompt - read if prompt >= self.minimum else 0.0)


def prompt_cache(config: BuildConfig) -> PromptCache:
    """The teacher's provider's caching: the simulator's minimum, or the real APIs' 1,024
    tokens; an Anthropic provider with prompt_cache off keeps nothing."""
    provider = config.providers[config.models["teacher"].provider]
    anthropic = provider.kind == "anthropic"
    if anthropic and not provider.prompt_cache:
        return PromptCache(10**9, True)
    if provider.base_url == SIM_BASE_URL and config.sim is not None:
        # The simulator's own minimum (its sim: section's cache_min_tokens, 1,024 unless set).
        minimum = config.sim.get("cache_min_tokens", 1024)
        return PromptCache(minimum if isinstance(minimum, int) else 1024, anthropic)
    return PromptCache(1024, anthropic)


def turn_odds(a: Assumptions, max_turns: int) -> list[float]:
    """P(the dialogue reaches turn k), k = 1..max_turns."""
    return [1.0] + [(1 - a.solved_first) * (1 - a.solved_later) ** (k - 2)
                    for k in range(2, max_turns + 1)]  # fmt: skip


@dataclass(frozen=True)
class Context:
    """What each stage's estimate (its `Stage.estimate` hook) works from, under one set of
    assumptions: the config, the questions, and the figures several stages share."""

    config: BuildConfig
    qs: Questions
    a: Assumptions
    batched: dict[str, bool]  # stage -> whether its requests go through a batch API
    system: int  # the teacher's system prompt, tokens
    written_q: float  # a written question (the writer's output), tokens
    kept: float  # questions kept for dialogues
    mean_q: float  # a kept question, tokens
    dialogues: float
    reach: list[float]  # P(a dialogue reaches turn k), k = 1..max_turns
    step: float  # one attempt and its nudge, tokens
    solved: float  # P(a dialogue ends solved)
    reference: int = 8  # a reference answer, tokens

    def prompt(self, name: str) -> int:
        return _prompt_tokens(self.config, name)


def context(config: BuildConfig, qs: Questions, a: Assumptions) -> Context:
    d = config.dialogues
    batched = {
        name: config.gateway.transport == "auto" and name != "dialogues"
        for name in ("candidates", "questions", "verdicts", "sft")
    }
    if config.verdicts.transport:
        batched["verdicts"] = config.verdicts.transport == "batch"
    if config.sft.transport:
        batched["sft"] = config.sft.transport == "batch"
    written_q = a.out("question_writer")  # a written question is the writer's output
    kept = qs.free + qs.written * a.written_kept
    mean_q = (
        (qs.free * qs.free_tokens + qs.written * a.written_kept * written_q) / kept if kept else 0
    )
    return Context(
        config=config,
        qs=qs,
        a=a,
        batched=batched,
        system=_prompt_tokens(config, d.teacher_prompt),
        written_q=written_q,
        kept=kept,
        mean_q=mean_q,
        dialogues=kept * d.samples_per_question,
        reach=turn_odds(a, d.max_turns),
        step=a.out("teacher") + a.out("user_standin"),
        solved=1 - (1 - a.solved_first) * (1 - a.solved_later) ** (d.max_turns - 1),
    )
