"""The gateway's config sections: providers, models, limits, prices, budget, transport."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from raspberry.errors import ConfigError, ProviderError
from raspberry.section import Section

SIM_BASE_URL = "sim"  # a provider with this base_url talks to the build's own simulated server
DEFAULT_KEY_ENV = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}
# How a stage's requests travel: "direct" (each its own HTTP request) or "batch" (a provider's
# batch API: half the price, answers within hours). None: as gateway.transport says.
Transport = Literal["direct", "batch"]


class LimitConfig(Section):
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


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _looks_like_key(name: str) -> bool:
    """A long run of letters and digits in both cases, as tokens are; variable names are words."""
    return len(name) >= 24 and "_" not in name and name != name.upper()


class ProviderConfig(Section):
    # local: a model on this machine run in-process by transformers (llm/local.py); its models'
    # `model` is a model folder or a .gguf file, relative to the config's folder.
    kind: Literal["anthropic", "openai", "openai_compatible", "local"]
    # None: the SDK's default endpoint; "sim": the simulated server the build starts; a list:
    # a fleet of servers of one model (llm/fleet.py), each request to the least busy.
    base_url: str | list[str] | None = None
    # Name of the environment variable holding the key; defaults per kind (see DEFAULT_KEY_ENV).
    api_key_env: str | None = None
    timeout_s: float = Field(120.0, gt=0)
    # Anthropic: mark the system prompt and the dialogue so far as cacheable (cache_control), so
    # each turn reads the earlier turns at the cache-read price. OpenAI caches by itself.
    prompt_cache: bool = True
    # Per model name; "*" applies to every model of this provider without its own entry.
    limits: dict[str, LimitConfig] = Field(default_factory=dict)
    # local: how many requests one generation call answers together.
    batch_size: int = Field(8, ge=1)

    @field_validator("api_key_env")
    @classmethod
    def _a_variable_name(cls, value: str | None) -> str | None:
        # A key pasted here would be printed by every message that names the variable.
        if value is None or (_ENV_NAME.fullmatch(value) and not _looks_like_key(value)):
            return value
        raise ValueError(
            f"'{value[:4]}…' looks like a key, not the name of an environment variable: put "
            "the key in an environment variable (export MY_KEY=...) and give its name here"
        )

    @field_validator("base_url")
    @classmethod
    def _a_fleet_of_servers(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list):
            if not value:
                raise ValueError("base_url: an empty list; give one URL or several")
            if SIM_BASE_URL in value:
                raise ValueError("base_url: 'sim' stands alone, not in a list of servers")
            if len(set(value)) != len(value):
                raise ValueError("base_url: a server is listed twice")
        return value

    def endpoints(self) -> list[str | None]:
        return list(self.base_url) if isinstance(self.base_url, list) else [self.base_url]

    def endpoints_at(self, name: str, sim_url: str | None) -> list[str | None]:
        """Its endpoints, the simulator's placeholder as the running simulator's URL."""
        if SIM_BASE_URL in self.endpoints() and not sim_url:
            raise ProviderError(f"provider '{name}' uses the simulator, but none is running")
        return [sim_url if url == SIM_BASE_URL else url for url in self.endpoints()]

    def cache_url(self) -> str | None:
        """What keys the request cache: the base_url, or a fleet's URLs in order (a fleet of
        other servers may serve other weights, so it starts a cache of its own)."""
        if isinstance(self.base_url, list):
            return ",".join(sorted(self.base_url))
        return self.base_url

    def limits_for(self, model: str) -> LimitConfig | None:
        return self.limits.get(model) or self.limits.get("*")

    def key_env(self) -> str | None:
        return self.api_key_env or DEFAULT_KEY_ENV.get(self.kind)

    def needs_key(self) -> bool:
        # Local OpenAI-compatible servers (vLLM, Ollama) and the simulator usually take any key.
        if self.base_url == SIM_BASE_URL or self.kind == "local":
            return False
        return self.kind != "openai_compatible" or self.api_key_env is not None


class ModelConfig(Section):
    provider: str
    model: str
    # None: not sent, the provider's default applies (some models reject sampling parameters).
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int = Field(4096, gt=0)
    top_p: float | None = Field(None, gt=0, le=1)
    # Ask for the model's own thinking, kept beside its answer: Anthropic's extended thinking
    # with this budget of tokens (at least 1,024, under max_tokens); on an OpenAI-compatible
    # server (vLLM, SGLang) the chat template's enable_thinking, returned as reasoning_content.
    thinking: int | None = Field(None, ge=1024)
    # OpenAI reasoning models (o-series, GPT-5): how hard to think; the reasoning stays hidden
    # and its tokens are billed as output.
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None

    @model_validator(mode="after")
    def _thinking_fits(self) -> ModelConfig:
        if self.thinking is not None and self.thinking >= self.max_tokens:
            raise ValueError(
                f"thinking ({self.thinking} tokens) must be under max_tokens ({self.max_tokens}): "
                "the answer comes out of the same allowance"
            )
        return self

    def params(self) -> dict[str, Any]:
        """Generation parameters, as they enter the request cache key."""
        out: dict[str, Any] = {"max_tokens": self.max_tokens}
        for name in ("temperature", "top_p", "thinking", "reasoning_effort"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out


class PriceConfig(Section):
    """US dollars per million tokens. `prices: {model: 0}` marks a model free (self-hosted)."""

    @model_validator(mode="before")
    @classmethod
    def _free(cls, value: Any) -> Any:
        return (
            {}
            if isinstance(value, int | float) and not isinstance(value, bool) and value == 0
            else value
        )

    input_per_mtok: float = Field(0.0, ge=0)
    output_per_mtok: float = Field(0.0, ge=0)
    # Input tokens read from / written to the provider's prompt cache; None: charged as
    # ordinary input (Anthropic: reads 0.1x, 5-minute writes 1.25x; OpenAI: reads 0.25-0.5x).
    cache_read_per_mtok: float | None = Field(None, ge=0)
    cache_write_per_mtok: float | None = Field(None, ge=0)
    # Share taken off every price for requests sent through a batch API.
    batch_discount: float = Field(0.5, ge=0, le=1)
    # Fine-tuning this model (train.backend openai): per million tokens trained, that is the
    # training file's tokens times the epochs.
    training_per_mtok: float | None = Field(None, ge=0)


class GatewayConfig(Section):
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
    # Where the request cache, the ledger, the budgets and the rate limits live, shared by
    # every process using it (llm/state.py): unset, the SQLite file at cache_path; a
    # postgresql:// URL (no password in it: PGPASSWORD) for processes on many machines.
    state_url: str | None = None
    # "auto": the stages whose requests wait on no earlier answer of theirs (written
    # questions, confirmation, verdicts, rewrites) go through the batch APIs, dialogues turn by
    # turn direct; "direct": every request direct. A stage's own `transport` overrides this.
    transport: Literal["direct", "auto"] = "direct"
    # Batch transport: how often a submitted batch is polled, how many requests one batch holds,
    # how long to gather requests before submitting, and how often missing answers are resent.
    batch_poll_s: float = Field(30.0, gt=0)
    batch_max_requests: int = Field(10000, ge=1)
    batch_linger_s: float = Field(1.0, ge=0)
    batch_max_rounds: int = Field(3, ge=1)

    def state(self) -> str:
        """The gateway state's location: the environment's RASPBERRY_STATE_URL (a deployment's
        own, e.g. docker compose's Postgres), state_url, or the SQLite path cache_path."""
        return os.environ.get("RASPBERRY_STATE_URL") or self.state_url or self.cache_path


class BudgetConfig(Section):
    # Dollars a build id may spend in all (every run of it counted); None: no limit.
    max_usd: float | None = Field(None, ge=0)


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


@dataclass(frozen=True)
class LlmSettings:
    """What the gateway reads of a build's config, and nothing else (`BuildConfig.llm`)."""

    providers: dict[str, ProviderConfig]
    models: dict[str, ModelConfig]  # every role and every eval model, by name
    prices: dict[str, PriceConfig]
    gateway: GatewayConfig
    budget: BudgetConfig
