"""The OpenAI Batch API (files + batches) and Anthropic Message Batches, simulated.

A batch is answered when it is created and ends `delay_s` later; until then it is in progress.
Each request independently errors or expires at the configured rates, so that partial failure
and expiry, and the client's resubmission of only the missing requests, can be tested.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from raspberry_sim.completions import ERROR_KINDS, answer, error_body
from raspberry_sim.prompt_cache import PromptCache
from raspberry_sim.roles import Behaviour
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class BatchFaults:
    delay_s: float = 0.2
    error_rate: float = 0.0
    expire_rate: float = 0.0


@dataclass
class _Batch:
    id: str
    style: str
    created: float
    ends: float
    # custom_id -> ("succeeded", body) | ("errored", message) | ("expired", "")
    results: dict[str, tuple[str, Any]] = field(default_factory=dict)
    input_file_id: str = ""
    output_file_id: str | None = None
    error_file_id: str | None = None
    files_written: bool = False


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Batches:
    def __init__(
        self,
        behaviour: Behaviour,
        faults: BatchFaults,
        stats: Counter[str],
        cache: PromptCache | None = None,
    ):
        self._behaviour, self._faults, self._stats = behaviour, faults, stats
        self._cache = cache
        self._rng = random.Random(behaviour.seed + 1)
        self.files: dict[
            str, tuple[str, bytes]
        ] = {}  # id -> (purpose, content); fine-tuning reads them too
        self._batches: dict[str, _Batch] = {}

    def routes(self) -> list[Route]:
        return [
            Route("/v1/files", self.upload, methods=["POST"]),
            Route("/v1/files/{file_id}/content", self.file_content, methods=["GET"]),
            Route("/v1/batches", self.openai_create, methods=["POST"]),
            Route("/v1/batches/{batch_id}", self.openai_retrieve, methods=["GET"]),
            Route("/v1/messages/batches", self.anthropic_create, methods=["POST"]),
            Route("/v1/messages/batches/{batch_id}", self.anthropic_retrieve, methods=["GET"]),
            Route(
                "/v1/messages/batches/{batch_id}/results", self.anthropic_results, methods=["GET"]
            ),
        ]

    def _run(self, style: str, requests: list[tuple[str, dict[str, Any]]]) -> _Batch:
        now = time.time()
        prefix = "batch_" if style == "openai" else "msgbatch_"
        batch = _Batch(f"{prefix}{uuid.uuid4().hex[:24]}", style, now, now + self._faults.delay_s)
        self._stats["batches"] += 1
        for custom_id, body in requests:
            self._stats["batch_requests"] += 1
            roll = self._rng.random()
            if roll < self._faults.error_rate:
                batch.results[custom_id] = ("errored", "simulated server error")
            elif roll < self._faults.error_rate + self._faults.expire_rate:
                batch.results[custom_id] = ("expired", "")
            else:
                status, payload = answer(style, body, self._behaviour, cache=self._cache)
                if status == 200:
                    batch.results[custom_id] = ("succeeded", payload)
                else:
                    batch.results[custom_id] = ("errored", payload["error"]["message"])
        self._batches[batch.id] = batch
        return batch

    def _counts(self, batch: _Batch) -> Counter[str]:
        return Counter(kind for kind, _ in batch.results.values())

    # --- OpenAI ----------------------------------------------------------------------------

    async def upload(self, request: Request) -> Response:
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            return JSONResponse(error_body("openai", "invalid_request_error", "no file"), 400)
        content = await upload.read()
        file_id = f"file-{uuid.uuid4().hex[:24]}"
        self.files[file_id] = (str(form.get("purpose", "")), content)
        return JSONResponse(self._file_object(file_id, upload.filename or "upload.jsonl"))

    def _file_object(self, file_id: str, filename: str) -> dict[str, Any]:
        purpose, content = self.files[file_id]
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }

    async def file_content(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        if file_id not in self.files:
            body = error_body("openai", "not_found_error", f"no file {file_id}")
            return JSONResponse(body, 404)
        return Response(self.files[file_id][1], media_type="application/octet-stream")

    async def openai_create(self, request: Request) -> Response:
        body = await request.json()
        file_id = body.get("input_file_id", "")
        if file_id not in self.files:
            kind = ERROR_KINDS["openai"][400]
            return JSONResponse(error_body("openai", kind, f"no file {file_id}"), 400)
        lines = [json.loads(x) for x in self.files[file_id][1].decode().splitlines() if x.strip()]
        batch = self._run("openai", [(x["custom_id"], x["body"]) for x in lines])
        batch.input_file_id = file_id
        return JSONResponse(self._openai_object(batch))

    async def openai_retrieve(self, request: Request) -> Response:
        batch = self._batches.get(request.path_params["batch_id"])
        if batch is None or batch.style != "openai":
            body = error_body("openai", "not_found_error", "no such batch")
            return JSONResponse(body, 404)
        return JSONResponse(self._openai_object(batch))

    def _openai_object(self, batch: _Batch) -> dict[str, Any]:
        ended = time.time() >= batch.ends
        counts = self._counts(batch)
        if ended and not batch.files_written:
            self._write_openai_files(batch)
        status = "in_progress"
        if ended:
            status = "expired" if counts["expired"] else "completed"
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "input_file_id": batch.input_file_id,
            "completion_window": "24h",
            "status": status,
            "created_at": int(batch.created),
            "output_file_id": batch.output_file_id if ended else None,
            "error_file_id": batch.error_file_id if ended else None,
            "request_counts": {
                "total": len(batch.results),
                "completed": counts["succeeded"] if ended else 0,
                "failed": counts["errored"] + counts["expired"] if ended else 0,
            },
        }

    def _write_openai_files(self, batch: _Batch) -> None:
        out, err = [], []
        for custom_id, (kind, payload) in batch.results.items():
            line = {"id": f"batch_req_{uuid.uuid4().hex[:16]}", "custom_id": custom_id}
            if kind == "succeeded":
                line |= {
                    "response": {
                        "status_code": 200,
                        "request_id": uuid.uuid4().hex,
                        "body": payload,
                    },
                    "error": None,
                }
                out.append(json.dumps(line))
            else:
                code = "batch_expired" if kind == "expired" else "server_error"
                message = "not completed in time" if kind == "expired" else payload
                line |= {"response": None, "error": {"code": code, "message": message}}
                err.append(json.dumps(line))
        for lines, attr in ((out, "output_file_id"), (err, "error_file_id")):
            if lines:
                file_id = f"file-{uuid.uuid4().hex[:24]}"
                self.files[file_id] = ("batch_output", "\n".join(lines).encode())
                setattr(batch, attr, file_id)
        batch.files_written = True

    # --- Anthropic -------------------------------------------------------------------------

    async def anthropic_create(self, request: Request) -> Response:
        body = await request.json()
        try:
            requests = [(r["custom_id"], r["params"]) for r in body["requests"]]
        except (KeyError, TypeError) as exc:
            kind = ERROR_KINDS["anthropic"][400]
            return JSONResponse(error_body("anthropic", kind, f"malformed batch: {exc}"), 400)
        batch = self._run("anthropic", requests)
        return JSONResponse(self._anthropic_object(batch, request))

    async def anthropic_retrieve(self, request: Request) -> Response:
        batch = self._batches.get(request.path_params["batch_id"])
        if batch is None or batch.style != "anthropic":
            body = error_body("anthropic", "not_found_error", "no such batch")
            return JSONResponse(body, 404)
        return JSONResponse(self._anthropic_object(batch, request))

    def _anthropic_object(self, batch: _Batch, request: Request) -> dict[str, Any]:
        ended = time.time() >= batch.ends
        counts = self._counts(batch)
        base = str(request.base_url).rstrip("/")
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": "ended" if ended else "in_progress",
            "request_counts": {
                "processing": 0 if ended else len(batch.results),
                "succeeded": counts["succeeded"] if ended else 0,
                "errored": counts["errored"] if ended else 0,
                "canceled": 0,
                "expired": counts["expired"] if ended else 0,
            },
            "created_at": _iso(batch.created),
            "expires_at": _iso(batch.created + 86400),
            "ended_at": _iso(batch.ends) if ended else None,
            "archived_at": None,
            "cancel_initiated_at": None,
            "results_url": f"{base}/v1/messages/batches/{batch.id}/results" if ended else None,
        }

    async def anthropic_results(self, request: Request) -> Response:
        batch = self._batches.get(request.path_params["batch_id"])
        if batch is None or time.time() < batch.ends:
            body = error_body("anthropic", "not_found_error", "no results for this batch")
            return JSONResponse(body, 404)
        lines = []
        for custom_id, (kind, payload) in batch.results.items():
            if kind == "succeeded":
                result: dict[str, Any] = {"type": "succeeded", "message": payload}
            elif kind == "errored":
                result = {"type": "errored", "error": error_body("anthropic", "api_error", payload)}
            else:
                result = {"type": "expired"}
            lines.append(json.dumps({"custom_id": custom_id, "result": result}))
        return Response("\n".join(lines), media_type="application/binary")
