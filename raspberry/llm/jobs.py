"""A provider's fine-tuning jobs (OpenAI's API, or a server that offers it): upload a file,
create a job, read its state and its events. The gateway's other door to a provider, outside
the request path, for train/remote.py; what the provider refuses is a ProviderError."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from raspberry.errors import ProviderError
from raspberry.llm.config import ProviderConfig, resolve_api_key
from raspberry.llm.providers import openai_base_url

T = TypeVar("T")


@dataclass(frozen=True)
class JobState:
    id: str
    status: str  # validating_files, queued, running, succeeded, failed, cancelled
    fine_tuned_model: str | None
    trained_tokens: int
    error: str | None


@dataclass(frozen=True)
class JobEvent:
    id: str
    created_at: int
    message: str


class FineTuningJobs:
    def __init__(self, name: str, provider: ProviderConfig, sim_url: str | None):
        import openai

        base_url = provider.endpoints_at(name, sim_url)[0]
        self.name, self._errors = name, openai.APIError
        self._client = openai.OpenAI(
            base_url=openai_base_url(base_url) if base_url else None,
            api_key=resolve_api_key(name, provider) or "no-key",
            timeout=provider.timeout_s,
            max_retries=5,
        )

    def _call(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except self._errors as exc:
            raise ProviderError(f"provider '{self.name}': {exc}") from None

    def upload(self, filename: str, content: bytes) -> str:
        """A training file's id."""
        return self._call(
            lambda: self._client.files.create(file=(filename, content), purpose="fine-tune")
        ).id

    def create(self, **job: Any) -> str:
        """A new job's id (model, training_file, validation_file, hyperparameters, ...)."""
        return self._call(lambda: self._client.fine_tuning.jobs.create(**job)).id

    def state(self, job_id: str) -> JobState:
        job = self._call(lambda: self._client.fine_tuning.jobs.retrieve(job_id))
        error = getattr(job.error, "message", None) if job.error else None
        return JobState(job.id, job.status, job.fine_tuned_model, job.trained_tokens or 0, error)

    def events(self, job_id: str) -> list[JobEvent]:
        """The job's events, oldest first."""
        listed = self._call(
            lambda: list(self._client.fine_tuning.jobs.list_events(job_id, limit=100))
        )
        return [JobEvent(e.id, e.created_at, e.message) for e in reversed(listed)]
