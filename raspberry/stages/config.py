"""BuildConfig: every knob of a build, loaded from one YAML file. It composes the sections that
their owners define beside them: each stage's (stages/<stage>/config.py: `questions:`,
`dialogues:`, `verdicts:`, `sft:`), the gateway's (llm/config.py) and training's
(train/config.py); the build's own (eval, schedule, run, estimate) are defined here. The
simulator reads its own `sim:` section (sim/config.py).

Unknown keys and wrong types are errors naming the key and the file. Secrets never come from the
YAML: a provider names the environment variable that holds its key.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import Field, JsonValue, ValidationError, field_validator, model_validator

from raspberry.build_files.store import plain_name
from raspberry.errors import ConfigError
from raspberry.llm.config import (
    SIM_BASE_URL,
    BudgetConfig,
    GatewayConfig,
    LlmSettings,
    ModelConfig,
    PriceConfig,
    ProviderConfig,
)
from raspberry.section import Section
from raspberry.stages.candidates.config import QuestionsConfig
from raspberry.stages.dialogues.config import DialoguesConfig
from raspberry.stages.sft.config import SftConfig
from raspberry.stages.verdicts.config import VerdictsConfig
from raspberry.train.config import TrainConfig

Role = Literal[
    "teacher",
    "user_standin",
    "judge",
    "second_judge",
    "rewriter",
    "question_writer",
    "student",
    "embedder",
]
ROLES: tuple[str, ...] = Role.__args__  # type: ignore[attr-defined]
SECRET_KEYS = {"api_key", "apikey", "key", "secret", "token", "password"}


class EvalConfig(Section):
    # Extra models to evaluate by name, beside the roles (e.g. a base and a fine-tuned model).
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    prompt: str = "eval_system"
    bootstrap_resamples: int = Field(2000, ge=100)


CRON_ALIASES = {"@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"}


class ScheduleConfig(Section):
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


class RunConfig(Section):
    # Shards of one stage that run at once: threads of the flow's process (local), or of each
    # Dask worker (dask).
    parallel_shards: int = Field(2, ge=1)
    # Where shard tasks run: threads of the build's process, or the workers of a Dask cluster
    # (flows/executor.py): the scheduler at dask_address, or a local cluster of `workers`
    # processes started for the build.
    executor: Literal["local", "dask"] = "local"
    dask_address: str | None = None
    workers: int = Field(3, ge=1)
    # A stage that drops more than this share of the rows it reads (or keeps none) ends the
    # build with exit 1 and a line naming it, and `push` refuses the build.
    max_drop_share: float = Field(0.95, gt=0, le=1)

    def overridden(self, executor: str | None, workers: int | None) -> RunConfig:
        """With the CLI's --executor (local, dask or dask://HOST:PORT) and --workers."""
        if workers is not None and workers < 1:
            raise ConfigError(f"--workers {workers}: a local Dask cluster needs 1 or more")
        changes: dict[str, Any] = {} if workers is None else {"workers": workers}
        if executor:
            kind, _, address = executor.partition("://")
            if kind not in ("local", "dask") or (address and kind != "dask"):
                raise ConfigError(
                    f"--executor {executor!r}: use local, dask (a local cluster of --workers "
                    "processes) or dask://HOST:PORT (a running scheduler)"
                )
            changes |= {"executor": kind, "dask_address": f"tcp://{address}" if address else None}
        return self.model_copy(update=changes)


# The `estimate:` section: what a dry run assumes where the config cannot say. A pilot
# (`raspberry estimate --pilot N`) measures each of these on N real questions and prints them,
# ready to paste here.
# Output tokens per request of each role, for a frontier teacher that thinks at length.
DEFAULT_OUTPUT_TOKENS = {
    "teacher": 1500,
    "student": 1500,
    "user_standin": 80,
    "judge": 300,
    "second_judge": 300,
    "question_writer": 400,
}


class EstimateConfig(Section):
    # Share of dialogues the teacher solves at its first attempt, and the share of the rest it
    # solves at each later attempt after a nudge.
    solved_first_turn: float = Field(0.5, ge=0, le=1)
    solved_later_turn: float = Field(0.5, ge=0, le=1)
    # Share of written questions whose reference answer the teacher's solutions confirm.
    written_kept: float = Field(0.6, ge=0, le=1)
    # Output tokens per request, by role; the rewriter's is derived from the dialogue it rewrites.
    output_tokens: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_OUTPUT_TOKENS))
    # Rewrite length over the dialogue's assistant text (the rewrite keeps every step).
    rewrite_ratio: float = Field(1.1, gt=0)
    # Share of questions in a near-duplicate pair too close to call, which the judge settles.
    unsure_share: float = Field(0.02, ge=0, le=1)


class BuildConfig(Section):
    name: str
    output_dir: str = "data/builds"
    # Relative to the config file's folder.
    prompts_dir: str = "../prompts"
    providers: dict[str, ProviderConfig]
    models: dict[Role, ModelConfig]
    prices: dict[str, PriceConfig] = Field(default_factory=dict)
    gateway: GatewayConfig = GatewayConfig()
    budget: BudgetConfig = BudgetConfig()
    # The simulated provider's settings (providers with base_url 'sim'): the simulator, a
    # package beside the core (raspberry_sim), reads and checks them when it starts.
    sim: dict[str, JsonValue] | None = None
    questions: QuestionsConfig
    dialogues: DialoguesConfig = DialoguesConfig()
    verdicts: VerdictsConfig = VerdictsConfig()
    sft: SftConfig = SftConfig()
    eval: EvalConfig = EvalConfig()
    train: TrainConfig | None = None
    estimate: EstimateConfig = EstimateConfig()
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
            kind = self.providers[model.provider].kind
            if model.thinking and kind == "openai":
                raise ValueError(
                    f"models.{role}: OpenAI's reasoning models take reasoning_effort, not "
                    "thinking (their reasoning stays hidden)"
                )
            if model.reasoning_effort and kind == "anthropic":
                raise ValueError(
                    f"models.{role}: Anthropic takes thinking (a budget of tokens), not "
                    "reasoning_effort"
                )
            if model.thinking and kind == "anthropic" and model.temperature not in (None, 1):
                raise ValueError(
                    f"models.{role}: with thinking, Anthropic takes temperature 1 or none; "
                    f"remove temperature {model.temperature}"
                )
        embedder = self.models.get("embedder")
        if embedder and self.providers[embedder.provider].kind == "anthropic":
            raise ValueError(
                f"models.embedder: provider '{embedder.provider}' is Anthropic, which has no "
                "embeddings API; use an openai or openai_compatible provider"
            )
        if self.train and self.train.backend == "openai":
            name = self.train.provider
            if name not in self.providers or self.providers[name].kind == "anthropic":
                raise ValueError(
                    f"train.provider {name!r}: the openai backend needs one of providers "
                    f"{sorted(self.providers)} of kind openai or openai_compatible"
                )
        uses_sim = any(p.base_url == SIM_BASE_URL for p in self.providers.values())
        if uses_sim and self.sim is None:
            raise ValueError("a provider has base_url 'sim' but there is no 'sim:' section")
        return self

    @property
    def shards(self) -> int:
        """Shards of every stage: shard i of a stage reads shard i of the stages it reads, so
        each has as many as the questions are written in (questions.shards)."""
        return self.questions.shards

    @property
    def llm(self) -> LlmSettings:
        """The sections the gateway reads (role and eval model names never clash); a local
        provider's model paths made absolute from the config's folder."""
        folder = Path(self.source).parent
        models = {
            name: model.model_copy(update={"model": str((folder / model.model).resolve())})
            if self.providers[model.provider].kind == "local"
            else model
            for name, model in {**self.eval.models, **self.models}.items()
        }
        return LlmSettings(self.providers, models, self.prices, self.gateway, self.budget)

    def model_for(self, name: str) -> ModelConfig:
        """A role's model, or an eval model by name; KeyError when neither exists."""
        if name in self.models:
            return self.models[name]  # type: ignore[index]
        return self.eval.models[name]

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        # The name starts every default build id, which names a folder in output_dir.
        if not plain_name(name, longest=101):
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


# A config is settings; data (questions, benchmarks) lives in the files it names. Bounded, so a
# stray multi-megabyte file is refused at once rather than parsed for seconds by every task.
MAX_CONFIG_BYTES = 1 << 20
# Parsed YAML by (path, size, mtime): every shard task of a process loads the same config.
_PARSED: dict[tuple[str, int, int], Any] = {}


def _parsed(p: Path) -> Any:
    try:
        stat = p.stat()
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror}") from None
    if stat.st_size > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{p} is {stat.st_size / 2**20:.1f} MiB; a config is at most "
            f"{MAX_CONFIG_BYTES // 2**20} MiB of settings: keep questions and other data in the "
            "files it names (questions.files)"
        )
    seen = (str(p.resolve()), stat.st_size, stat.st_mtime_ns)
    if seen in _PARSED:
        return _PARSED[seen]
    try:
        text = p.read_text(encoding="utf-8")
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
    _PARSED[seen] = data
    return data


def load_config(path: str | os.PathLike[str]) -> BuildConfig:
    """Read and validate a build config; every failure is a one-line ConfigError. The YAML is
    parsed once per process while the file is unchanged."""
    p = Path(path)
    data = copy.deepcopy(_parsed(p))  # validation must not see another caller's changes
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the config must be a YAML mapping of keys to values")
    if "source" in data:
        raise ConfigError(f"{p}: unknown key 'source' (check its spelling)")
    try:
        return BuildConfig.model_validate({**data, "source": str(p.resolve())})
    except ValidationError as exc:
        raise ConfigError(_first_error(exc, str(p))) from None
