"""OpenAI fine-tuning jobs, simulated: a job reads its training file (uploaded through the files
endpoint the batches share), runs for `duration_s` with a step event and a falling loss as it
goes, and succeeds with a fine-tuned model's name; a file without chat rows fails it. The job
runs on the server whatever its client does: a client that leaves can re-attach by the job id."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

from raspberry_sim.completions import error_body
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

STEPS = 10  # step events a job reports


@dataclass
class _Job:
    id: str
    model: str
    training_file: str
    validation_file: str | None
    hyperparameters: dict[str, Any]
    suffix: str | None
    created: float
    tokens: int  # tokens in the training file, as the simulator counts them (characters / 4)
    error: str | None = None
    cancelled: bool = False


class FineTuning:
    def __init__(self, files: dict[str, tuple[str, bytes]], duration_s: float, stats: Counter[str]):
        self._files, self._duration_s, self._stats = files, duration_s, stats
        self._jobs: dict[str, _Job] = {}

    def routes(self) -> list[Route]:
        return [
            Route("/v1/fine_tuning/jobs", self.create, methods=["POST"]),
            Route("/v1/fine_tuning/jobs/{job_id}", self.retrieve, methods=["GET"]),
            Route("/v1/fine_tuning/jobs/{job_id}/events", self.events, methods=["GET"]),
            Route("/v1/fine_tuning/jobs/{job_id}/cancel", self.cancel, methods=["POST"]),
        ]

    async def create(self, request: Request) -> Response:
        body = await request.json()
        file_id = body.get("training_file", "")
        if file_id not in self._files:
            message = f"training_file {file_id!r} not found"
            return JSONResponse(error_body("openai", "invalid_request_error", message), 400)
        content = self._files[file_id][1].decode("utf-8", "replace")
        job = _Job(
            id=f"ftjob-{uuid.uuid4().hex[:24]}",
            model=str(body.get("model", "")),
            training_file=file_id,
            validation_file=body.get("validation_file"),
            hyperparameters=dict(body.get("hyperparameters") or {}),
            suffix=body.get("suffix"),
            created=time.time(),
            tokens=len(content) // 4,
        )
        rows = [line for line in content.splitlines() if line.strip()]
        if not rows or not all("messages" in json.loads(line) for line in rows):
            job.error = "the training file has no chat rows (a 'messages' list on every line)"
        self._jobs[job.id] = job
        self._stats["fine_tuning_jobs"] += 1
        return JSONResponse(self._object(job))

    def _progress(self, job: _Job) -> float:
        return min(1.0, (time.time() - job.created) / self._duration_s) if self._duration_s else 1.0

    def _epochs(self, job: _Job) -> int:
        n = job.hyperparameters.get("n_epochs", "auto")
        return int(n) if isinstance(n, int | float) else 3

    def _status(self, job: _Job) -> str:
        if job.cancelled:
            return "cancelled"
        if job.error:
            return "failed"
        done = self._progress(job)
        return "succeeded" if done >= 1.0 else "running" if done > 0.1 else "validating_files"

    def _object(self, job: _Job) -> dict[str, Any]:
        status = self._status(job)
        succeeded = status == "succeeded"
        name = f"ft:{job.model}:raspberry{':' + job.suffix if job.suffix else ''}:{job.id[-8:]}"
        return {
            "id": job.id,
            "object": "fine_tuning.job",
            "created_at": int(job.created),
            "model": job.model,
            "organization_id": "org-sim",
            "status": status,
            "training_file": job.training_file,
            "validation_file": job.validation_file,
            "hyperparameters": {
                "n_epochs": self._epochs(job),
                "batch_size": 1,
                "learning_rate_multiplier": 1.0,
                **job.hyperparameters,
            },  # fmt: skip
            "fine_tuned_model": name if succeeded else None,
            "trained_tokens": job.tokens * self._epochs(job) if succeeded else None,
            "finished_at": int(job.created + self._duration_s) if succeeded else None,
            "result_files": [],
            "seed": 0,
            "error": {"code": "invalid_training_file", "message": job.error, "param": None}
            if job.error
            else None,
        }

    def _job(self, request: Request) -> _Job | Response:
        job = self._jobs.get(request.path_params["job_id"])
        if job is None:
            body = error_body("openai", "invalid_request_error", "no such fine-tuning job")
            return JSONResponse(body, 404)
        return job

    async def retrieve(self, request: Request) -> Response:
        job = self._job(request)
        return job if isinstance(job, Response) else JSONResponse(self._object(job))

    async def cancel(self, request: Request) -> Response:
        job = self._job(request)
        if isinstance(job, Response):
            return job
        job.cancelled = self._status(job) not in ("succeeded", "failed")
        return JSONResponse(self._object(job))

    async def events(self, request: Request) -> Response:
        """Newest first, as OpenAI lists them; `after` an event id: only the older ones."""
        job = self._job(request)
        if isinstance(job, Response):
            return job
        made: list[tuple[float, str, str]] = [(job.created, "info", "Created fine-tuning job")]
        if job.error:
            made.append((job.created, "error", f"Validation failed: {job.error}"))
        else:
            steps = round(self._progress(job) * STEPS)
            for step in range(1, steps + 1):
                loss = 2.0 * 0.8**step
                at = job.created + step / STEPS * self._duration_s
                made.append((at, "info", f"Step {step}/{STEPS}: training loss={loss:.4f}"))
            if self._status(job) == "succeeded":
                made.append(
                    (job.created + self._duration_s, "info", "The job has successfully completed")
                )
        data = [
            {"id": f"ftevent-{job.id[-8:]}-{i:04d}", "object": "fine_tuning.job.event",
             "created_at": int(at), "level": level, "message": message, "type": "message"}
            for i, (at, level, message) in enumerate(made)
        ][::-1]  # fmt: skip
        after = request.query_params.get("after")
        if after:
            ids = [e["id"] for e in data]
            data = data[ids.index(after) + 1 :] if after in ids else data
        limit = int(request.query_params.get("limit", 20))
        return JSONResponse({"object": "list", "data": data[:limit], "has_more": len(data) > limit})
