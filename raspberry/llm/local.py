"""The `kind: local` provider: a model on this machine (a folder in Hugging Face format or a
GGUF file, named by `models.<role>.model`) answering in this process with transformers, so a
student can be evaluated, or take any role, without a server.

Requests that arrive together are generated as one batch (left-padded; up to the provider's
`batch_size`, of the same generation parameters), in a worker thread so the event loop goes on.
The model is loaded once per process. Greedy decoding at temperature 0 (or none); otherwise
sampling seeded by the request's sample index, so the same request gives the same answer.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from pathlib import Path
from typing import Any

from raspberry.errors import ProviderError
from raspberry.llm.rate_headers import RateLimitInfo
from raspberry.llm.types import MAX_TOKENS, STOP, Completion, Request
from raspberry.local_models import load, locate, require_train_extra, weights_fingerprint

FIELD = "models.<role>.model of a local provider"


def _model(path: str) -> tuple[Any, Any, Any, threading.Lock]:
    """(model, tokenizer, device, lock) of the weights now at `path`: keyed as the request cache
    keys them, so a model retrained in place is loaded anew, never the old one served."""
    base, gguf = locate(path, Path.cwd(), FIELD)
    return _loaded_weights(base, gguf, weights_fingerprint(base, gguf))


@functools.cache
def _loaded_weights(
    base: str, gguf: str | None, weights: str
) -> tuple[Any, Any, Any, threading.Lock]:
    """Loaded once per process for each weights fingerprint; one generation at a time."""
    require_train_extra("a local provider")
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, tokenizer = load(base, gguf, torch.float32 if device.type == "cpu" else "auto", FIELD)
    tokenizer.padding_side = "left"  # generation continues every row from its own end
    return model.to(device).eval(), tokenizer, device, threading.Lock()


class LocalProvider:
    """The Provider interface (complete, embed, close, name, kind, base_url): each request names
    its model's path, loaded on first use."""

    def __init__(self, name: str, batch_size: int):
        self.name, self.kind, self.base_url = name, "local", "local"
        self.batch_size = batch_size
        self._pending: list[tuple[Request, asyncio.Future[Completion]]] = []
        self._draining = False

    async def complete(self, request: Request) -> tuple[Completion, RateLimitInfo]:
        future: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        self._pending.append((request, future))
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future, RateLimitInfo()

    async def _drain(self) -> None:
        try:
            while self._pending:
                await asyncio.sleep(0)  # requests sent together join the batch
                first = self._pending[0][0]
                batch = [
                    p
                    for p in self._pending
                    if (p[0].model, p[0].params) == (first.model, first.params)
                ][: self.batch_size]
                for item in batch:
                    self._pending.remove(item)
                try:
                    answers = await asyncio.to_thread(self._generate, [r for r, _ in batch])
                except Exception as exc:  # the model failed: every request of the batch says so
                    for _, future in batch:
                        future.set_exception(exc)
                    continue
                for (_, future), answer in zip(batch, answers, strict=True):
                    future.set_result(answer)
        finally:
            self._draining = False

    def _generate(self, requests: list[Request]) -> list[Completion]:
        import torch

        model, tokenizer, device, lock = _model(requests[0].model)
        params = requests[0].params
        texts = [
            tokenizer.apply_chat_template(
                ([{"role": "system", "content": r.system}] if r.system else []) + r.messages,
                tokenize=False, add_generation_prompt=True,
            )
            for r in requests
        ]  # fmt: skip
        inputs = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        inputs = inputs.to(device)
        temperature = params.get("temperature") or 0.0
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": temperature, "top_p": params.get("top_p") or 1.0}
            if temperature > 0
            else {"do_sample": False}
        )
        started = time.monotonic()
        with lock, torch.no_grad():
            if temperature > 0:
                torch.manual_seed(requests[0].sample_index)
            out = model.generate(
                **inputs, max_new_tokens=params["max_tokens"], pad_token_id=tokenizer.pad_token_id,
                **sampling,
            )  # fmt: skip
        latency = time.monotonic() - started
        prompt_length = inputs["input_ids"].shape[1]
        answers = []
        for row, mask in zip(out, inputs["attention_mask"], strict=True):
            new = row[prompt_length:].tolist()
            ended = tokenizer.eos_token_id in new
            new = new[: new.index(tokenizer.eos_token_id)] if ended else new
            new = [t for t in new if t != tokenizer.pad_token_id]
            answers.append(
                Completion(
                    text=tokenizer.decode(new, skip_special_tokens=True),
                    stop_reason=STOP if ended else MAX_TOKENS,
                    tokens_in=int(mask.sum()),
                    tokens_out=len(new) + int(ended),
                    model=requests[0].model,
                    latency_s=latency,
                )
            )
        return answers

    async def embed(self, model: str, texts: list[str]) -> Any:
        raise ProviderError(f"{self.name}: a local provider has no embeddings")

    async def close(self) -> None:
        pass
