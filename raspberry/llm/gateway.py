"""The one door to every model: routes a role to its provider, caches, limits and retries.

A request names a role (teacher, user_standin, judge, rewriter, question_writer); the config maps
the role to provider + model + parameters. Counters are honest: requests_sent counts HTTP
requests that really left this process, cache_hits the answers served from the durable cache.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import asdict, dataclass
from typing import Any

from raspberry.config import SIM_BASE_URL, BuildConfig, resolve_api_key
from raspberry.errors import ProviderError
from raspberry.llm.cache import RequestCache, request_key
from raspberry.llm.providers import Provider
from raspberry.llm.types import Completion, RetryableError


@dataclass
class GatewayStats:
    requests_sent: int = 0
    cache_hits: int = 0
    retries: int = 0
    rate_limited: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Gateway:
    """Use as `async with Gateway(config, sim_url) as gw: await gw.chat(...)`."""

    def __init__(self, config: BuildConfig, sim_url: str | None = None):
        self._config = config
        self._sim_url = sim_url
        self._providers: dict[str, Provider] = {}
        self._cache = RequestCache(config.gateway.cache_path)
        self._slots = asyncio.Semaphore(config.gateway.max_concurrency)
        self.stats = GatewayStats()

    async def __aenter__(self) -> Gateway:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for provider in self._providers.values():
            await provider.close()
        self._cache.close()

    def has_role(self, role: str) -> bool:
        return role in self._config.models or role in self._config.eval.models

    def model_ref(self, role: str) -> str:
        model = self._config.model_for(role)
        return f"{model.provider}/{model.model}"

    def _provider(self, name: str) -> Provider:
        if name not in self._providers:
            pc = self._config.providers[name]
            base_url = pc.base_url
            if base_url == SIM_BASE_URL:
                if not self._sim_url:
                    raise ProviderError(
                        f"provider '{name}' uses the simulator, but none is running"
                    )
                base_url = self._sim_url
            self._providers[name] = Provider(
                name,
                pc.kind,
                base_url,
                resolve_api_key(name, pc),
                pc.timeout_s,
                max_connections=self._config.gateway.max_concurrency,
            )
        return self._providers[name]

    async def chat(
        self,
        role: str,
        messages: list[dict[str, str]],
        *,
        system: str | None = None,
        prompt_ref: str,
        sample_index: int = 0,
    ) -> Completion:
        """One model call for `role`, from the cache when this exact request was answered before."""
        mc = self._config.model_for(role)
        pc = self._config.providers[mc.provider]
        params = mc.params()
        # The configured base_url (not the resolved one) keys the cache, so the simulator's
        # random port does not defeat it.
        key = request_key(
            provider=pc.kind,
            base_url=pc.base_url,
            model=mc.model,
            system=system,
            messages=messages,
            params=params,
            prompt=prompt_ref,
            sample_index=sample_index,
        )
        hit = self._cache.get(key)
        if hit is not None:
            self.stats.cache_hits += 1
            return hit.model_copy(update={"cached": True})
        completion = await self._send(mc.provider, mc.model, system, messages, params, sample_index)
        completion.cost_usd = self._cost(mc.model, completion)
        self._cache.put(key, completion)
        self.stats.tokens_in += completion.tokens_in
        self.stats.tokens_out += completion.tokens_out
        self.stats.cost_usd += completion.cost_usd
        return completion

    async def _send(
        self,
        provider_name: str,
        model: str,
        system: str | None,
        messages: list[dict[str, str]],
        params: dict[str, Any],
        sample_index: int,
    ) -> Completion:
        provider = self._provider(provider_name)
        gw = self._config.gateway
        for attempt in range(gw.max_retries + 1):
            async with self._slots:
                self.stats.requests_sent += 1
                try:
                    return await provider.complete(model, system, messages, params, sample_index)
                except RetryableError as exc:
                    error = exc
            if error.status == 429:
                self.stats.rate_limited += 1
            if attempt == gw.max_retries:
                break
            self.stats.retries += 1
            backoff = min(gw.backoff_max_s, gw.backoff_base_s * 2**attempt) * random.uniform(0.5, 1)
            await asyncio.sleep(max(backoff, error.retry_after or 0.0))
        raise ProviderError(f"gave up after {gw.max_retries + 1} attempts: {error}")

    def _cost(self, model: str, completion: Completion) -> float:
        price = self._config.prices.get(model)
        if price is None:
            return 0.0
        return (
            completion.tokens_in * price.input_per_mtok
            + completion.tokens_out * price.output_per_mtok
        ) / 1e6
