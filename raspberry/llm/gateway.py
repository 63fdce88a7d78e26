"""The one door to every model: routes a role to its provider, caches, limits, retries, pays.

A request names a role (teacher, user_standin, judge, rewriter, question_writer); the config maps
the role to provider + model + parameters. Before anything is sent the durable cache is asked;
then the provider's circuit breaker, its concurrency gate (shared by its models, served by
priority) and the model's rate-limit buckets (process-wide, see limits.py) each get a say, and
last the books (books.py): the request is written down as sent, within the budget, or awaited
when another call has it in flight. Counters are honest: requests_sent counts HTTP requests that
really left this process, cache_hits the answers served from the durable cache (awaited ones
included).
"""

from __future__ import annotations

import asyncio
import base64
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import numpy as np

from raspberry.errors import ProviderError
from raspberry.llm.batch import Batcher
from raspberry.llm.books import Books, HeldElsewhere
from raspberry.llm.cache import RequestCache, cache_model, is_answer, request_key
from raspberry.llm.config import (
    LlmSettings,
    ModelConfig,
    PriceConfig,
    Transport,
    resolve_api_key,
)
from raspberry.llm.cost import most_cost, request_cost
from raspberry.llm.fleet import Fleet
from raspberry.llm.gates import CircuitBreaker, Gate
from raspberry.llm.local import LocalProvider
from raspberry.llm.progress import BOARD
from raspberry.llm.providers import Provider
from raspberry.llm.rate_headers import RateLimitInfo
from raspberry.llm.shared_limits import limits_for
from raspberry.llm.types import Completion, GatewayStats, Request, RetryableError

T = TypeVar("T")
EMBED_BATCH = 64  # texts per embeddings request


def _unit(vector: str) -> np.ndarray:
    v = np.frombuffer(base64.b64decode(vector), "<f4").astype(np.float32)
    norm = float(np.linalg.norm(v))
    return v / norm if norm else v


class Gateway:
    """Use as `async with Gateway(config.llm, sim_url) as gw: await gw.chat(...)`.

    build_id: whose budget and ledger pay (None: the budget applies to this gateway alone).
    transport: "batch" sends every uncached request through the provider's batch API.
    """

    def __init__(
        self,
        config: LlmSettings,
        sim_url: str | None = None,
        *,
        build_id: str | None = None,
        transport: Transport = "direct",
    ):
        self._config = config
        self._sim_url = sim_url
        self._fleets: dict[str, Fleet] = {}
        self._gates: dict[str, Gate] = {}
        self._breakers: dict[str, CircuitBreaker] = {}
        state = config.gateway.state()
        self._cache = RequestCache(state)
        self._limits = limits_for(state)
        self._build_id = build_id
        self._books = Books(state, build_id, config.budget.max_usd)
        self._batcher = (
            Batcher(config.gateway, self._provider, state) if transport == "batch" else None
        )
        self.stats = GatewayStats()
        BOARD.attach(self.stats)

    async def __aenter__(self) -> Gateway:
        return self

    async def __aexit__(self, *exc: object) -> None:
        BOARD.detach(self.stats)
        if self._batcher:
            await self._batcher.close()
        for fleet in self._fleets.values():
            await fleet.close()
        self._cache.close()

    def has_role(self, role: str) -> bool:
        return role in self._config.models

    def model_ref(self, role: str) -> str:
        model = self._config.models[role]
        return f"{model.provider}/{model.model}"

    def _provider(self, name: str) -> Provider:
        """The provider's (first) endpoint, for calls outside the request path (batch APIs)."""
        return self._fleet(name).first

    def _fleet(self, name: str) -> Fleet:
        if name not in self._fleets:
            pc = self._config.providers[name]
            key = resolve_api_key(name, pc)
            endpoints: list[Any] = []
            if pc.kind == "local":  # in this process: the request names the model's path
                endpoints.append(LocalProvider(name, pc.batch_size))
            for base_url in pc.endpoints_at(name, self._sim_url) if pc.kind != "local" else []:
                endpoints.append(
                    Provider(
                        name,
                        pc.kind,
                        base_url,
                        key,
                        pc.timeout_s,
                        max_connections=self._config.gateway.max_concurrency,
                        prompt_cache=pc.prompt_cache,
                    )
                )
            self._fleets[name] = Fleet(endpoints, self._config.gateway.breaker_cooldown_s)
        return self._fleets[name]

    async def chat(
        self,
        role: str,
        messages: list[dict[str, str]],
        *,
        system: str | None = None,
        prompt_ref: str,
        sample_index: int = 0,
        priority: int = 0,
    ) -> Completion:
        """One model call for `role`, from the cache when this exact request was answered before.

        When the provider's slots are all taken, lower `priority` numbers are sent first (a
        dialogue passes how many calls it has made: see dialogue.py).
        """
        mc = self._config.models[role]
        pc = self._config.providers[mc.provider]
        request = Request(mc.model, system, messages, mc.params(), sample_index, prompt_ref)
        # The configured base_url (not the resolved one) keys the cache, so the simulator's
        # random port does not defeat it.
        key = request_key(
            provider=pc.kind,
            base_url=pc.cache_url(),
            model=cache_model(pc.kind, request.model),
            system=request.system,
            messages=request.messages,
            params=request.params,
            prompt=request.prompt_ref,
            sample_index=request.sample_index,
        )
        while True:
            hit = self._cache.get(key)
            if hit is not None:
                self.stats.cache_hits += 1
                return hit.model_copy(update={"cached": True})
            try:
                return await self._answer(mc, request, key, priority)
            except HeldElsewhere:  # another call sends it: its answer will be in the cache
                await self._books.wait(key)

    async def _answer(
        self, mc: ModelConfig, request: Request, key: str, priority: int
    ) -> Completion:
        """Send the request (again while its answers are empty), booked before each time."""
        price = self._config.prices.get(mc.model)
        tokens_in = request.tokens_estimate()
        most = most_cost(price, tokens_in, mc.max_tokens, self._batcher is not None)
        gw = self._config.gateway
        holder = self._books.holder()
        ended = False
        try:
            for _ in range(gw.max_retries + 1):
                if self._batcher:
                    self._books.book(key, most, holder)
                    self.stats.requests_sent += 1
                    completion = await self._batcher.complete(mc.provider, key, request)
                else:
                    completion = await self._send(
                        mc.provider,
                        mc.model,
                        tokens_in,
                        priority,
                        lambda: self._books.book(key, most, holder),
                        lambda p: p.complete(request),
                        lambda c: c.tokens_out,
                    )
                completion.cost_usd = request_cost(price, completion)
                last = bool(completion.text.strip())
                # Only a real, whole answer is kept: an empty, cut or refused one is paid for
                # (the ledger says so) but asked again next time, not served forever.
                self._cache.put(
                    key, completion, self._build_id, is_answer(completion), holder, last
                )
                ended = last
                self._books.answered(holder, completion.cost_usd)
                self.stats.tokens_in += completion.tokens_in
                self.stats.tokens_out += completion.tokens_out
                self.stats.tokens_cache_read += completion.tokens_cache_read
                self.stats.tokens_cache_write += completion.tokens_cache_write
                self.stats.tokens_thinking += completion.tokens_thinking
                self.stats.cost_usd += completion.cost_usd
                if last:
                    return completion
                self.stats.retries += 1
        finally:
            if not ended:
                self._books.release(key, holder)
        raise ProviderError(
            f"{mc.provider}/{mc.model}: empty completion {gw.max_retries + 1} times in a row"
        )

    async def embed(self, role: str, texts: list[str]) -> list[np.ndarray]:
        """A unit vector per text from `role`'s embeddings model; each text is cached, paid
        and ledgered as a request of its own, and the uncached ones are sent EMBED_BATCH at a
        time."""
        mc = self._config.models[role]
        pc = self._config.providers[mc.provider]
        keys = [
            request_key(provider=pc.kind, base_url=pc.cache_url(), model=mc.model, embed=text)
            for text in texts
        ]
        found: dict[int, Completion] = {}
        price = self._config.prices.get(mc.model)
        missing = list(range(len(texts)))
        while missing:
            for i in missing:
                if (hit := self._cache.get(keys[i])) is not None:
                    self.stats.cache_hits += 1
                    found[i] = hit
            missing = [i for i in missing if i not in found]
            for start in range(0, len(missing), EMBED_BATCH):
                chunk = missing[start : start + EMBED_BATCH]
                try:
                    await self._embed_chunk(mc, price, chunk, keys, texts, found)
                except HeldElsewhere as held:
                    await self._books.wait(str(held))
            missing = [i for i in missing if i not in found]
        return [_unit(found[i].vector) for i in range(len(texts))]

    async def _embed_chunk(
        self,
        mc: ModelConfig,
        price: PriceConfig | None,
        chunk: list[int],
        all_keys: list[str],
        all_texts: list[str],
        found: dict[int, Completion],
    ) -> None:
        """One embeddings request for the texts at `chunk`, booked under a key of its own (of
        its texts' keys); its answers go into `found`."""
        keys, texts = [all_keys[i] for i in chunk], [all_texts[i] for i in chunk]
        booking = request_key(embeddings=keys)
        tokens_in = sum(len(t) // 4 + 1 for t in texts)
        most = most_cost(price, tokens_in, 0, False)
        holder = self._books.holder()
        answers: list[Completion] = []
        try:
            answers = await self._send(
                mc.provider,
                mc.model,
                tokens_in,
                0,
                lambda: self._books.book(booking, most, holder),
                lambda p: p.embed(mc.model, texts),
                lambda _: 0,
            )
            for key, i, completion in zip(keys, chunk, answers, strict=True):
                completion.cost_usd = request_cost(price, completion)
                self._cache.put(key, completion, self._build_id)
                found[i] = completion
        finally:
            self._books.release(booking, holder)
            self._books.answered(holder, sum(c.cost_usd for c in answers))
        self.stats.tokens_in += sum(c.tokens_in for c in answers)
        self.stats.cost_usd += sum(c.cost_usd for c in answers)

    def _gate(self, provider: str) -> Gate:
        if provider not in self._gates:
            self._gates[provider] = Gate(self._config.gateway.max_concurrency)
        return self._gates[provider]

    def _breaker(self, provider: str) -> CircuitBreaker:
        if provider not in self._breakers:
            gw = self._config.gateway
            self._breakers[provider] = CircuitBreaker(gw.breaker_failures, gw.breaker_cooldown_s)
        return self._breakers[provider]

    async def _send(
        self,
        provider_name: str,
        model: str,
        tokens_in: int,
        priority: int,
        book: Callable[[], None],
        call: Callable[[Provider], Awaitable[tuple[T, RateLimitInfo]]],
        tokens_out: Callable[[T], int],
    ) -> T:
        """Make one call under the limits, booked (`book`) just before it leaves; tokens_in is
        its estimated input, for the buckets, and tokens_out says what the answer spent of the
        output bucket."""
        fleet = self._fleet(provider_name)
        gw = self._config.gateway
        configured = self._config.providers[provider_name].limits_for(model)
        gate, breaker = self._gate(provider_name), self._breaker(provider_name)
        for attempt in range(gw.max_retries + 1):
            provider = fleet.pick()
            # Limits belong to the account (or server) behind an endpoint, whichever config or
            # shard uses it; each server of a fleet has its own.
            limits_key = (provider.base_url or provider.kind, model)
            if configured:
                self._limits.seed(limits_key, configured.per_minute())
            if not breaker.allow():
                fleet.done(provider, failed=False)
                raise ProviderError(
                    f"{provider_name}: circuit breaker open after {breaker.failures} failures in "
                    f"a row (last: {breaker.last_error}); check the provider's status and "
                    "base_url, then rerun the build"
                )
            await gate.acquire(model, priority)
            error = None
            try:
                wait = self._limits.reserve(limits_key, tokens_in)
                while wait > 0:
                    if wait > gw.max_wait_s:
                        raise ProviderError(
                            f"{provider_name}/{model}: a rate-limit slot is {wait:.0f} s away, "
                            f"more than gateway.max_wait_s ({gw.max_wait_s:.0f} s); raise the "
                            "provider's limits or lower the build's size"
                        )
                    self.stats.waits += 1
                    self.stats.wait_s += wait
                    booked_at = self._limits.clock()
                    await asyncio.sleep(wait)
                    wait = self._limits.rebook(limits_key, tokens_in, booked_at)
                # A cut another process ordered reaches this gate at its next booking.
                gate.cap(model, self._limits.factor(limits_key))
                book()
                self.stats.requests_sent += 1
                self.stats.in_flight += 1
                try:
                    result, info = await call(provider)
                except RetryableError as exc:
                    error = exc
                else:
                    self._limits.learn(limits_key, info)
                    self._limits.spend_output(limits_key, tokens_out(result))
                    gate.succeeded(model)
                    self._limits.succeeded(limits_key, gate.ceiling)
                    breaker.succeeded()
                    return result
                finally:
                    self.stats.in_flight -= 1
            finally:
                gate.release(model)
                # A server that failed (not one that said "slow down") is taken out for a while.
                fleet.done(provider, failed=error is not None and error.status != 429)
            assert error is not None  # only a failed call gets here
            if error.limits:
                self._limits.learn(limits_key, error.limits)
            backoff = min(gw.backoff_max_s, gw.backoff_base_s * 2**attempt) * random.uniform(0.5, 1)
            if error.status == 429:
                # Every request to this model waits, not only this one: that is what keeps the
                # provider from seeing a storm of retries.
                self.stats.rate_limited += 1
                gate.rate_limited(model)
                gate.cap(model, self._limits.cut(limits_key))
                self._limits.pause(limits_key, error.retry_after or backoff)
            else:
                breaker.failed(str(error))
            if attempt == gw.max_retries:
                break
            self.stats.retries += 1
            if error.status != 429:
                await asyncio.sleep(max(backoff, error.retry_after or 0.0))
        raise ProviderError(f"gave up after {gw.max_retries + 1} attempts: {error}")
