"""Batch transport: single-turn requests through the OpenAI Batch API or Anthropic Message Batches.

Callers keep calling `Gateway.chat`; in batch mode each uncached request is queued here, and
requests for one (provider, model) that arrive within `batch_linger_s` of each other travel in
one batch (up to `batch_max_requests`). Each answer is handed back, and so cached, as soon as its
batch ends. Requests that errored, expired or are missing from the results are sent again in a
new batch, up to `batch_max_rounds` rounds; the rest were paid for once and never again.

A batch is paid for as it runs, for hours maybe, whoever waits for it: each of its requests is
recorded with the batch's id as soon as the provider has made it (`batch_items`, in the shared
state), until its answer is recorded. A request found there, after the process that sent it
died, is not sent again: the batch is re-attached to and its answer read from it (a batch that
is gone, failed or left the request out sends it anew). The window between the provider making
a batch and the record of its id is one statement.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from raspberry.errors import ProviderError
from raspberry.llm.config import GatewayConfig
from raspberry.llm.providers import Provider, anthropic_completion, openai_completion
from raspberry.llm.state import BATCH_ITEMS, engine_for, upsert
from raspberry.llm.types import Completion, Request


@dataclass
class _Item:
    custom_id: str  # the request's cache key: unique, and 64 characters as Anthropic allows
    body: dict[str, Any]
    future: asyncio.Future[Completion]
    failures: list[str] = field(default_factory=list)


# One batch's outcome: answers by custom_id, and why the others failed.
Outcome = tuple[dict[str, Completion], dict[str, str]]


class Batcher:
    def __init__(self, config: GatewayConfig, provider: Callable[[str], Provider], state: str):
        self._config = config
        self._provider = provider
        self._engine = engine_for(state)
        self._queues: dict[tuple[str, str], list[_Item]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._attached: dict[str, asyncio.Future[Outcome]] = {}  # batch id -> its results

    async def complete(self, provider_name: str, key: str, request: Request) -> Completion:
        provider = self._provider(provider_name)
        if answer := await self._reattached(provider, provider_name, key):
            return answer
        body = provider.request_body(request)
        item = _Item(key, body, asyncio.get_running_loop().create_future())
        group = (provider_name, request.model)
        queue = self._queues.setdefault(group, [])
        queue.append(item)
        if len(queue) == 1:
            self._spawn(self._flush_later(group))
        elif len(queue) >= self._config.batch_max_requests:
            self._spawn(self._run(group, self._take(group)))
        return await item.future

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _take(self, group: tuple[str, str]) -> list[_Item]:
        items = self._queues.get(group, [])[: self._config.batch_max_requests]
        self._queues[group] = self._queues.get(group, [])[len(items) :]
        return items

    async def _flush_later(self, group: tuple[str, str]) -> None:
        await asyncio.sleep(self._config.batch_linger_s)
        items = self._take(group)
        if items:
            await self._run(group, items)

    async def _run(self, group: tuple[str, str], items: list[_Item]) -> None:
        provider = self._provider(group[0])
        for _ in range(self._config.batch_max_rounds):
            try:
                answers, failures = await self._one_batch(provider, items)
            except Exception as exc:  # the batch as a whole failed: every item has that reason
                answers, failures = {}, {i.custom_id: str(exc) for i in items}
            for item in items:
                if item.custom_id in answers and not item.future.done():
                    item.future.set_result(answers[item.custom_id])
                else:
                    item.failures.append(failures.get(item.custom_id, "missing from the results"))
            items = [i for i in items if not i.future.done()]
            if not items:
                return
        for item in items:
            item.future.set_exception(
                ProviderError(
                    f"{provider.name}: batch request failed in {len(item.failures)} rounds "
                    f"(last: {item.failures[-1]})"
                )
            )

    async def _one_batch(self, provider: Provider, items: list[_Item]) -> Outcome:
        client = provider.client()
        submit = _anthropic_submit if provider.kind == "anthropic" else _openai_submit
        batch_id = await submit(client, items)
        sent = {"provider": provider.name, "batch_id": batch_id, "submitted_at": time.time()}
        with self._engine.begin() as conn:  # one statement after the provider made it
            for item in items:
                conn.execute(upsert(self._engine, BATCH_ITEMS, {"key": item.custom_id}, sent))
        return await self._results(provider, batch_id)

    async def _results(self, provider: Provider, batch_id: str) -> Outcome:
        """A batch's answers and failures, once it has ended."""
        read = _anthropic_results if provider.kind == "anthropic" else _openai_results
        return await read(provider.client(), batch_id, self._config.batch_poll_s)

    async def _reattached(self, provider: Provider, name: str, key: str) -> Completion | None:
        """The answer to `key` from the batch an earlier process sent it in, or None when no
        batch holds it (or the batch is gone or failed it: it is then sent anew)."""
        mine = (BATCH_ITEMS.c.key == key) & (BATCH_ITEMS.c.provider == name)
        with self._engine.connect() as conn:
            batch_id = conn.execute(select(BATCH_ITEMS.c.batch_id).where(mine)).scalar()
        if batch_id is None:
            return None
        if batch_id not in self._attached:  # one reader per batch, however many keys wait
            self._attached[batch_id] = asyncio.ensure_future(self._results(provider, batch_id))
        try:
            answers, _ = await asyncio.shield(self._attached[batch_id])
        except Exception:  # e.g. the provider no longer has it
            return None
        answer = answers.get(key)
        return answer.model_copy(update={"reattached": True}) if answer else None

    async def close(self) -> None:
        waiting = [*self._tasks, *self._attached.values()]
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)


async def _openai_submit(client: Any, items: list[_Item]) -> str:
    lines = [
        json.dumps(
            {
                "custom_id": i.custom_id,
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": i.body,
            }
        )
        for i in items
    ]
    upload = await client.files.create(
        file=("batch.jsonl", "\n".join(lines).encode(), "application/jsonl"), purpose="batch"
    )
    batch = await client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    return str(batch.id)


async def _openai_results(client: Any, batch_id: str, poll_s: float) -> Outcome:
    batch = await client.batches.retrieve(batch_id)
    while batch.status not in ("completed", "expired", "failed", "cancelled"):
        await asyncio.sleep(poll_s)
        batch = await client.batches.retrieve(batch.id)
    if batch.status == "failed":
        reasons = [e.message for e in (batch.errors.data if batch.errors else []) if e.message]
        raise ProviderError(f"batch {batch.id} failed: {'; '.join(reasons) or 'no reason given'}")
    answers: dict[str, Completion] = {}
    failures: dict[str, str] = {}
    for file_id in (batch.output_file_id, batch.error_file_id):
        if not file_id:
            continue
        content = await client.files.content(file_id)
        for line in content.text.splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            response = entry.get("response") or {}
            if response.get("status_code") == 200:
                completion = openai_completion(response["body"])
                answers[entry["custom_id"]] = completion.model_copy(update={"batch": True})
            else:
                error = entry.get("error") or (response.get("body") or {}).get("error") or {}
                failures[entry["custom_id"]] = f"{error.get('code')}: {error.get('message')}"
    return answers, failures


async def _anthropic_submit(client: Any, items: list[_Item]) -> str:
    batch = await client.messages.batches.create(
        requests=[{"custom_id": i.custom_id, "params": i.body} for i in items]
    )
    return str(batch.id)


async def _anthropic_results(client: Any, batch_id: str, poll_s: float) -> Outcome:
    batch = await client.messages.batches.retrieve(batch_id)
    while batch.processing_status != "ended":
        await asyncio.sleep(poll_s)
        batch = await client.messages.batches.retrieve(batch.id)
    answers: dict[str, Completion] = {}
    failures: dict[str, str] = {}
    async for entry in await client.messages.batches.results(batch.id):
        result = entry.result
        if result.type == "succeeded":
            completion = anthropic_completion(result.message.model_dump())
            answers[entry.custom_id] = completion.model_copy(update={"batch": True})
        elif result.type == "errored":
            error = getattr(result.error, "error", result.error)
            failures[entry.custom_id] = f"errored: {getattr(error, 'message', error)}"
        else:
            failures[entry.custom_id] = result.type  # expired or canceled
    return answers, failures
