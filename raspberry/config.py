"""BuildConfig: every knob of a build, loaded from one YAML file.

Unknown keys and wrong types are errors naming the key and the file. Secrets never come from the
YAML: a provider names the environment variable that holds its key.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from raspberry.errors import ConfigError
from raspberry.sim.config import SimConfig

Role = Literal[
    "teacher", "user_standin", "judge", "second_judge", "rewriter", "question_writer", "student"
]
ROLES: tuple[str, ...] = Role.__args__  # type: ignore[attr-defined]
SIM_BASE_URL = "sim"  # a provider with this base_url talks to the build's own simulated server

DEFAULT_KEY_ENV = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}
SECRET_KEYS = {"api_key", "apikey", "key", "secret", "token", "password"}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LimitConfig(Strict):
    """A provider's published limits for one model, per minute; the response headers update them."""

    rpm: int | None = Field(None, gt=0)
    tpm: int | None = Field(None, gt=0)  # input and output tokens together (OpenAI)
    input_tpm: int | None = Field(None, gt=0)  # Anthropic limits input and output separately
    output_tpm: int | None = Field(None, gt=0)

    def per_minute(self) -> dict[str, int | None]:
        return {
            "requests": self.rpm,
            "tokens": self.tpm,
            "input_tokens": self.input_tpm,
            "output_tokens": self.output_tpm,
        }


class ProviderConfig(Strict):
    kind: Literal["anthropic", "openai", "openai_compatible"]
    # None: the SDK's default endpoint; "sim": the simulated server the build starts.
    base_url: str | None = None
    # Name of the environment variable holding the key; defaults per kind (see DEFAULT_KEY_ENV).
    api_key_env: str | None = None
    timeout_s: float = Field(120.0, gt=0)
    # Per model name; "*" applies to every model of this provider without its own entry.
    limits: dict[str, LimitConfig] = Field(default_factory=dict)

    def limits_for(self, model: str) -> LimitConfig | None:
        return self.limits.get(model) or self.limits.get("*")

    def key_env(self) -> str | None:
        return self.api_key_env or DEFAULT_KEY_ENV.get(self.kind)

    def needs_key(self) -> bool:
        # Local OpenAI-compatible servers (vLLM, Ollama) and the simulator usually take any key.
        if self.base_url == SIM_BASE_URL:
            return False
        return self.kind != "openai_compatible" or self.api_key_env is not None


class ModelConfig(Strict):
    provider: str
    model: str
    # None: not sent, the provider's default applies (some models reject sampling parameters).
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int = Field(4096, gt=0)
    top_p: float | None = Field(None, gt=0, le=1)

    def params(self) -> dict[str, Any]:
        """Generation parameters, as they enter the request cache key."""
        out: dict[str, Any] = {"max_tokens": self.max_tokens}
        for name in ("temperature", "top_p"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out


class PriceConfig(Strict):
    """US dollars per million tokens."""

    input_per_mtok: float = Field(0.0, ge=0)
    output_per_mtok: float = Field(0.0, ge=0)
    # Input tokens read from the provider's prompt cache; None: charged as ordinary input.
    cached_input_per_mtok: float | None = Field(None, ge=0)
    # Share taken off every price for requests sent through a batch API.
    batch_discount: float = Field(0.5, ge=0, le=1)


class GatewayConfig(Strict):
    # Requests in flight per (provider, model) in each shard task; cut on 429, regrown slowly.
    max_concurrency: int = Field(64, ge=1)
    max_retries: int = Field(6, ge=0)
    backoff_base_s: float = Field(0.5, ge=0)
    backoff_max_s: float = Field(30.0, ge=0)
    # Longest a request may wait for a rate-limit slot before the gateway gives up on it.
    max_wait_s: float = Field(600.0, gt=0)
    # Failures in a row (429s not counted) that open a provider's circuit breaker, and how long
    # it stays open before one request is let through to probe.
    breaker_failures: int = Field(10, ge=1)
    breaker_cooldown_s: float = Field(30.0, ge=0)
    # Shared by every build; relative paths are relative to the working directory.
    cache_path: str = "data/cache/requests.sqlite"
    # Batch transport: how often a submitted batch is polled, how many requests one batch holds,
    # how long to gather requests before submitting, and how often missing answers are resent.
    batch_poll_s: float = Field(30.0, gt=0)
    batch_max_requests: int = Field(10000, ge=1)
    batch_linger_s: float = Field(1.0, ge=0)
    batch_max_rounds: int = Field(3, ge=1)


class BudgetConfig(Strict):
    # Dollars a build id may spend in all (every run of it counted); None: no limit.
    max_usd: float | None = Field(None, ge=0)


class ReasoningGymTask(Strict):
    task: str
    count: int = Field(gt=0)
    # Passed to reasoning_gym.create_dataset as the task's config (difficulty settings).
    params: dict[str, Any] = Field(default_factory=dict)


# What the question writer is asked for in each style; a config may replace or add styles.
DEFAULT_STYLES = {
    "word_problem": "a multi-step word problem whose answer is a single number",
    "trick_mcq": (
        "a SimpleBench-style trick question about spatial, temporal or social reasoning: a "
        "realistic scene with one distracting detail, where common sense (not arithmetic) "
        "decides; six options labelled A) to F), exactly one right; the answer is its letter"
    ),
    "constraint_puzzle": (
        "a writing puzzle whose answers can be checked by a rule, such as 'a 7-word sentence "
        "whose n-th word has n letters'; give the rules and one answer that satisfies them"
    ),
}


class TaxonomyConfig(Strict):
    """The cells questions are written for: domain x subtopic x persona x style x difficulty."""

    domains: dict[str, list[str]] = Field(min_length=1)  # domain -> its subtopics
    personas: list[str] = Field(default_factory=lambda: ["a curious student"], min_length=1)
    styles: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_STYLES), min_length=1)
    difficulties: list[str] = Field(default_factory=lambda: ["hard"], min_length=1)

    @model_validator(mode="after")
    def _subtopics(self) -> TaxonomyConfig:
        empty = [d for d, subtopics in self.domains.items() if not subtopics]
        if empty:
            raise ValueError(f"domains {empty} have no subtopics")
        return self


class ConfirmConfig(Strict):
    # A written reference answer is kept only when enough of `solutions` independent teacher
    # solutions reach it: all of them, or a strict majority.
    solutions: int = Field(3, ge=1)
    rule: Literal["all", "majority"] = "all"


class SynthesisConfig(Strict):
    count: int = Field(gt=0)
    taxonomy: TaxonomyConfig
    prompt: str = "question_writer"
    # Tries per question when the writer's JSON is invalid (the error is sent back each time).
    max_attempts: int = Field(3, ge=1)


EvolveOperation = Literal["add_constraints", "add_steps", "make_concrete", "complicate_input"]


class EvolutionConfig(Strict):
    rounds: int = Field(1, ge=1)
    # Share of the eligible questions evolved in each round (chosen by seed), and which sources
    # are eligible; each round deepens the previous round's successful evolutions.
    share: float = Field(1.0, gt=0, le=1)
    sources: list[str] = Field(default_factory=lambda: ["synthesis", "files"], min_length=1)
    operations: list[EvolveOperation] = Field(
        default_factory=lambda: [
            "add_constraints",
            "add_steps",
            "make_concrete",
            "complicate_input",
        ],
        min_length=1,
    )
    prompt: str = "evolver"
    max_attempts: int = Field(3, ge=1)


class FileColumns(Strict):
    prompt: str = "question"
    answer: str | None = "answer"
    id: str | None = None
    # A column holding a verification spec as JSON (docs/verification.md); wins over answer_type.
    verification: str | None = None
    domain: str | None = None


class QuestionFile(Strict):
    path: str  # relative to the config file's folder
    format: Literal["auto", "jsonl", "parquet", "csv"] = "auto"
    columns: FileColumns = FileColumns()
    # How the answer column is checked when no verification column is given.
    answer_type: Literal["exact", "numeric", "mcq", "math", "judge"] = "exact"
    # Ask the teacher to confirm the file's answers, as for written questions.
    confirm: bool = False


class NearDuplicateConfig(Strict):
    enabled: bool = True
    # Jaccard similarity of word n-gram sets at or above which two questions are near-duplicates.
    threshold: float = Field(0.8, gt=0, le=1)
    ngram: int = Field(5, ge=1)
    num_perm: int = Field(128, ge=16)
    # Written, evolved and file questions are also compared as sets of words, which catches
    # rewordings; None turns that off (see docs/questions.md).
    paraphrase_threshold: float | None = Field(0.75, gt=0, le=1)
    # An n-gram in at least this share of a group's questions (same source and task, 8 or more
    # questions) is boilerplate of a template and does not count (see docs/questions.md).
    boilerplate_share: float = Field(0.5, gt=0, le=1)
    # Build ids (under output_dir) whose kept questions new ones must not repeat.
    earlier_builds: list[str] = Field(default_factory=list)


class DecontaminationConfig(Strict):
    # Benchmark files (SimpleBench JSON, JSONL or Parquet), relative to the config's folder.
    benchmarks: list[str] = Field(default_factory=list)
    ngram: int = Field(13, ge=1)


class FiltersConfig(Strict):
    min_chars: int = Field(10, ge=0)
    max_chars: int = Field(20000, gt=0)
    drop_figure_references: bool = True
    drop_multi_part: bool = True
    near_duplicates: NearDuplicateConfig = NearDuplicateConfig()
    decontamination: DecontaminationConfig = DecontaminationConfig()


class DifficultyConfig(Strict):
    # Pass rate of the student role over `samples` tries; questions outside the band are dropped.
    samples: int = Field(4, ge=1)
    min_pass_rate: float = Field(0.0, ge=0, le=1)
    max_pass_rate: float = Field(0.75, ge=0, le=1)


class QuestionsConfig(Strict):
    seed: int = 0
    shards: int = Field(1, ge=1)
    reasoning_gym: list[ReasoningGymTask] = Field(default_factory=list)
    synthesis: SynthesisConfig | None = None
    evolution: EvolutionConfig | None = None
    files: list[QuestionFile] = Field(default_factory=list)
    # For written and evolved questions, and files marked `confirm`.
    confirm: ConfirmConfig = ConfirmConfig()
    filters: FiltersConfig = FiltersConfig()
    difficulty: DifficultyConfig | None = None

    @model_validator(mode="after")
    def _some_source(self) -> QuestionsConfig:
        if not (self.reasoning_gym or self.synthesis or self.files):
            raise ValueError("no question source: give reasoning_gym, synthesis or files")
        d = self.difficulty
        if d and d.min_pass_rate > d.max_pass_rate:
            raise ValueError("difficulty: min_pass_rate is above max_pass_rate")
        return self


class DialoguesConfig(Strict):
    samples_per_question: int = Field(1, ge=1)
    max_turns: int = Field(4, ge=1)
    teacher_prompt: str = "teacher_system"
    user_standin_prompt: str = "user_standin"
    # How often a nudge that gives the answer away is regenerated before a generic one is used.
    max_nudge_attempts: int = Field(3, ge=1)
    # Questions without a programmatic verifier are checked by the judge role with this prompt;
    # an attempt counts as solved when its correctness score reaches the minimum.
    critic_prompt: str = "judge"
    critic_min_correctness: float = Field(7.0, ge=0, le=10)
    max_critic_attempts: int = Field(3, ge=1)


Transport = Literal["direct", "batch"]


class VerdictsConfig(Strict):
    judge: bool = True
    # batch: judge requests go through the provider's batch API (cheaper, slower).
    transport: Transport = "direct"
    # A second judge (role second_judge, best from another provider) grades the same answers;
    # "both": each must reach judge_min_score; "mean": the mean of the two must.
    second_judge: bool = False
    judge_policy: Literal["both", "mean"] = "both"
    judge_prompt: str = "judge"
    judge_min_score: float = Field(7.0, ge=0, le=10)
    max_judge_attempts: int = Field(3, ge=1)


class ExportConfig(Strict):
    # none: the response as written; think: reasoning in <think>...</think> before the answer;
    # fields: separate `reasoning` and `answer` fields where the format has room for them.
    reasoning_wrapper: Literal["none", "think", "fields"] = "none"
    validation_share: float = Field(0.05, ge=0, lt=1)
    # Share of self-corrected rows (solved after a nudge) among exported rows; None keeps all.
    self_corrected_share: float | None = Field(None, ge=0, le=1)
    # Token counting for the OpenAI fine-tuning checks (tiktoken-compatible encodings).
    encoding: Literal["o200k_base", "cl100k_base"] = "o200k_base"
    max_tokens_per_example: int = Field(65536, gt=0)


class SftConfig(Strict):
    rewriter_prompt: str = "rewriter"
    transport: Transport = "direct"
    min_length_retention: float = Field(0.85, ge=0, le=1)
    max_rewrite_attempts: int = Field(3, ge=1)
    export: ExportConfig = ExportConfig()


class EvalConfig(Strict):
    # Extra models to evaluate by name, beside the roles (e.g. a base and a fine-tuned model).
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    prompt: str = "eval_system"
    bootstrap_resamples: int = Field(2000, ge=100)


CRON_ALIASES = {"@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"}


class ScheduleConfig(Strict):
    """When the nightly deployment runs (prefect.yaml and `raspberry serve` read it from here)."""

    cron: str = "0 2 * * *"
    timezone: str = "UTC"

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        # Prefect checks the expression fully when it deploys; this catches the usual slips
        # (a missing field, a stray word) while the config is read, before anything runs.
        fields = value.split()
        if value.strip() in CRON_ALIASES or (
            len(fields) == 5 and all(re.fullmatch(r"[0-9A-Za-z*/,?#LW-]+", f) for f in fields)
        ):
            return value.strip()
        raise ValueError(f"'{value}' is not a cron expression of 5 fields, e.g. '0 2 * * *'")

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown timezone '{value}'; use an IANA name such as 'Europe/Paris'"
            ) from None
        return value


class RunConfig(Strict):
    # Shards of one stage that run at once (threads of the Prefect task runner).
    parallel_shards: int = Field(2, ge=1)


class BuildConfig(Strict):
    name: str
    output_dir: str = "data/builds"
    # Relative to the config file's folder.
    prompts_dir: str = "../prompts"
    providers: dict[str, ProviderConfig]
    models: dict[Role, ModelConfig]
    prices: dict[str, PriceConfig] = Field(default_factory=dict)
    gateway: GatewayConfig = GatewayConfig()
    budget: BudgetConfig = BudgetConfig()
    sim: SimConfig | None = None
    questions: QuestionsConfig
    dialogues: DialoguesConfig = DialoguesConfig()
    verdicts: VerdictsConfig = VerdictsConfig()
    sft: SftConfig = SftConfig()
    eval: EvalConfig = EvalConfig()
    run: RunConfig = RunConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    # Set by load_config: where the YAML came from, to resolve relative paths.
    source: str = ""

    @model_validator(mode="after")
    def _check_references(self) -> BuildConfig:
        clash = sorted(set(self.eval.models) & set(ROLES))
        if clash:
            raise ValueError(f"eval.models: names {clash} are roles; name eval models otherwise")
        for role, model in {**self.models, **self.eval.models}.items():
            if model.provider not in self.providers:
                raise ValueError(
                    f"models.{role}.provider '{model.provider}' is not one of providers: "
                    f"{sorted(self.providers)}"
                )
        uses_sim = any(p.base_url == SIM_BASE_URL for p in self.providers.values())
        if uses_sim and self.sim is None:
            raise ValueError("a provider has base_url 'sim' but there is no 'sim:' section")
        return self

    def model_for(self, name: str) -> ModelConfig:
        """A role's model, or an eval model by name; KeyError when neither exists."""
        if name in self.models:
            return self.models[name]  # type: ignore[index]
        return self.eval.models[name]

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        # The name starts every default build id, which names a folder in output_dir.
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}", name) or ".." in name:
            raise ValueError("use letters, digits, '.', '_' and '-' only (no '/', no '..')")
        return name

    def build_id_for(self, when: dt.datetime) -> str:
        """The default build id: the config's name and the date `when` falls on in the schedule's
        timezone (a nightly run keeps its id when retried the next morning: `when` is the time
        it was scheduled for)."""
        return f"{self.name}-{when.astimezone(ZoneInfo(self.schedule.timezone)):%Y%m%d}"

    def prompts_path(self) -> Path:
        return (Path(self.source).parent / self.prompts_dir).resolve()


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "<top level>"


def _first_error(exc: ValidationError, path: str) -> str:
    # A misspelt key also makes the intended key "missing": the unknown one explains both.
    err = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]
    loc = _loc(err["loc"])
    leaf = str(err["loc"][-1]).lower() if err["loc"] else ""
    if err["type"] == "extra_forbidden":
        if leaf in SECRET_KEYS:
            return (
                f"{path}: key '{loc}' looks like a secret; keys are never read from YAML: "
                "remove it and put the key in the environment variable named by api_key_env"
            )
        return f"{path}: unknown key '{loc}' (check its spelling against docs/configuration.md)"
    more = f" (and {len(exc.errors()) - 1} more problems)" if len(exc.errors()) > 1 else ""
    return f"{path}: {loc}: {err['msg']}{more}"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key written twice in one mapping (PyYAML keeps the last one,
    silently: the first value, which the user may be reading, would be ignored)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}'", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | os.PathLike[str]) -> BuildConfig:
    """Read and validate a build config; every failure is a one-line ConfigError."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror}") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "malformed YAML"
        raise ConfigError(f"{p}: invalid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the config must be a YAML mapping of keys to values")
    if "source" in data:
        raise ConfigError(f"{p}: unknown key 'source' (check its spelling)")
    try:
        return BuildConfig.model_validate({**data, "source": str(p.resolve())})
    except ValidationError as exc:
        raise ConfigError(_first_error(exc, str(p))) from None


def resolve_api_key(name: str, provider: ProviderConfig) -> str | None:
    """The provider's key from the environment; a missing key is a ConfigError naming it."""
    env = provider.key_env()
    if not provider.needs_key():
        return os.environ.get(env) if env else None
    value = os.environ.get(env or "")
    if value is not None and not value.strip():
        raise ConfigError(
            f"provider '{name}': the environment variable {env} is set but empty; "
            "put the key in it, or unset it"
        )
    if not value:
        raise ConfigError(
            f"provider '{name}' needs an API key: set the environment variable {env} "
            "(keys are never read from the config file)"
        )
    return value
