"""The openai backend: a fine-tuning job of an OpenAI (or OpenAI-compatible) provider on the
build's OpenAI chat export, through the official SDK.

Nothing is paid twice and nothing unbooked: the job's most (the training file's tokens times the
epochs, at the model's `training_per_mtok`) is booked on the build's ledger, unconfirmed and
within `budget.max_usd`, before the job is created, and replaced by what it trained when it
ends. The uploaded files' ids and the job's id go to <build>/train/<name>/job.json the moment
they exist: a second `raspberry train` (after Ctrl-C, a kill, a lost connection) re-attaches to
the job and never creates another. Ctrl-C leaves the job running: it is the provider's now.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raspberry.build_files.store import BuildStore
from raspberry.errors import BudgetExceeded, ProviderError, RaspberryError
from raspberry.llm.books import Books, paid
from raspberry.llm.config import SIM_BASE_URL, LlmSettings
from raspberry.llm.jobs import FineTuningJobs, JobState
from raspberry.llm.tokens import count_tokens
from raspberry.train.config import TrainConfig
from raspberry.train.local import Progress, train_folder

EXPORT = "openai_chat.jsonl"
ENDED = ("succeeded", "failed", "cancelled")
POLL_S = 1.0
STEP = re.compile(r"Step (\d+)/(\d+): training loss=([0-9.]+)")


@dataclass(frozen=True)
class Plan:
    train_file: str  # the export's file, relative to the build's exports
    validation_file: str | None
    rows: int
    tokens: int  # in the training file, with OpenAI's encoding
    epochs: int
    per_token: float  # USD per trained token

    @property
    def most_usd(self) -> float:
        """The job's price at the most: every token of the file, every epoch."""
        return self.tokens * self.epochs * self.per_token


def _epochs(cfg: TrainConfig) -> int:
    return max(1, round(cfg.epochs))


def _row_tokens(text: str) -> list[int]:
    """The training file's tokens per row, as the OpenAI cookbook counts a chat row's."""
    return [
        count_tokens(json.loads(line)["messages"], "o200k_base")
        for line in text.splitlines()
        if line.strip()
    ]


def _free(llm: LlmSettings, cfg: TrainConfig) -> bool:
    assert cfg.provider is not None
    return llm.providers[cfg.provider].base_url == SIM_BASE_URL


def check_remote(store: BuildStore, cfg: TrainConfig, llm: LlmSettings) -> Plan:
    """Everything that can be checked before anything is uploaded, each a one-line
    RaspberryError: the export, the training price, the budget."""
    exports = store.exports()
    if not exports.exists("README.md"):
        raise RaspberryError(
            f"build '{store.build_id}' has no complete exports to train on: finish it with "
            f"`raspberry rerun {store.build_id}`"
        )
    train = f"train/{EXPORT}"
    if not exports.exists(train):
        raise RaspberryError(
            f"build '{store.build_id}' has no exports/{train} (its exports are incomplete): "
            f"finish them with `raspberry rerun {store.build_id}`"
        )
    price = llm.prices.get(cfg.base_model)
    per_mtok = price.training_per_mtok if price else None
    if per_mtok is None and not _free(llm, cfg):
        raise RaspberryError(
            f"train.base_model '{cfg.base_model}' has no training price, so the job could not "
            f"be booked against budget.max_usd; add prices: {{{cfg.base_model}: "
            "{training_per_mtok: ...}} (USD per million trained tokens)"
        )
    rows, epochs = _row_tokens(exports.read_text(train)), _epochs(cfg)
    validation = f"validation/{EXPORT}"
    plan = Plan(
        train,
        validation if exports.exists(validation) else None,
        len(rows),
        sum(rows),
        epochs,
        (per_mtok or 0.0) / 1e6,
    )
    spent, most = paid(llm.gateway.state(), store.build_id).usd, llm.budget.max_usd
    started = "job_id" in _Job(train_folder(store, cfg)).ids  # booked when it was created
    if most is not None and not started and spent + plan.most_usd > most:
        raise RaspberryError(
            f"budget reached: fine-tuning {plan.tokens} tokens x {epochs} epoch(s) could cost "
            f"${plan.most_usd:.4f} and build '{store.build_id}' has spent ${spent:.4f} of "
            f"budget.max_usd ${most:.4f}; raise budget.max_usd to train"
        )
    return plan


class _Job:
    """job.json: the ids of what was uploaded and created, each written as soon as it exists."""

    def __init__(self, folder: Path):
        self.path = folder / "job.json"
        self.ids: dict[str, Any] = json.loads(self.path.read_text()) if self.path.exists() else {}

    def record(self, **ids: Any) -> None:
        self.ids.update(ids)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        part = self.path.with_suffix(".part")
        part.write_text(json.dumps(self.ids, indent=2))
        part.replace(self.path)


def run_remote(
    store: BuildStore,
    cfg: TrainConfig,
    llm: LlmSettings,
    sim_url: str | None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Fine-tune through the provider's jobs API, or re-attach to the job this training already
    created; wait for it to end; return what result.json holds. What the provider or the budget
    refuses is one line (RaspberryError)."""
    try:
        return _run(store, cfg, llm, sim_url, progress)
    except ProviderError as exc:
        raise RaspberryError(
            f"{exc}; what was created is in {train_folder(store, cfg) / 'job.json'}, and "
            "`raspberry train` again goes on from it"
        ) from None
    except BudgetExceeded as exc:
        raise RaspberryError(str(exc)) from None


def _run(
    store: BuildStore,
    cfg: TrainConfig,
    llm: LlmSettings,
    sim_url: str | None,
    progress: Progress | None,
) -> dict[str, Any]:
    plan = check_remote(store, cfg, llm)
    folder = train_folder(store, cfg)
    assert cfg.provider is not None
    job = _Job(folder)
    jobs = FineTuningJobs(cfg.provider, llm.providers[cfg.provider], sim_url)
    books = Books(llm.gateway.state(), store.build_id, llm.budget.max_usd)
    booking = f"fine-tuning:{cfg.name}"
    started = time.monotonic()
    if "job_id" not in job.ids:
        exports = store.exports()
        if "training_file" not in job.ids:
            job.record(training_file=jobs.upload(EXPORT, exports.read_bytes(plan.train_file)))
        if plan.validation_file and "validation_file" not in job.ids:
            job.record(
                validation_file=jobs.upload(EXPORT, exports.read_bytes(plan.validation_file))
            )
        books.book_job(booking, plan.most_usd)  # before the job exists: it is paid when it runs
        hyper: dict[str, Any] = {"n_epochs": plan.epochs, "batch_size": cfg.batch_size}
        if cfg.learning_rate_multiplier:
            hyper["learning_rate_multiplier"] = cfg.learning_rate_multiplier
        created = jobs.create(
            model=cfg.base_model,
            training_file=job.ids["training_file"],
            validation_file=job.ids.get("validation_file"),
            hyperparameters=hyper,
            suffix=cfg.name[:18],
            seed=cfg.seed,
        )
        job.record(job_id=created, attached=1)
    else:
        job.record(attached=job.ids.get("attached", 1) + 1)
    final = _follow(jobs, job.ids["job_id"], folder / "metrics.jsonl", progress)
    trained = final.trained_tokens
    cost = trained * plan.per_token
    books.settle_job(booking, cost)
    if final.status != "succeeded":
        error = final.error or final.status
        raise RaspberryError(
            f"fine-tuning job {final.id} {final.status}: {error}; fix the cause, then delete "
            f"{job.path} and run `raspberry train` again for a new job"
        )
    result = {
        "backend": "openai",
        "provider": cfg.provider,
        "base_model": cfg.base_model,
        "job_id": final.id,
        "fine_tuned_model": final.fine_tuned_model,
        "trained_tokens": trained,
        "cost_usd": round(cost, 6),
        "epochs": plan.epochs,
        "attached": job.ids["attached"],
        "wall_s": round(time.monotonic() - started, 1),
        "train_rows": plan.rows,
    }
    (folder / "config.json").write_text(json.dumps(cfg.model_dump(), indent=2))
    (folder / "result.json").write_text(json.dumps(result, indent=2))
    return result


def _follow(
    jobs: FineTuningJobs, job_id: str, metrics: Path, progress: Progress | None
) -> JobState:
    """Poll the job to its end; each new step event becomes a metrics line and a bar tick."""
    seen: set[str] = set()
    if metrics.exists():
        seen = {line.get("event", "") for line in map(json.loads, metrics.read_text().splitlines())}
    while True:
        state = jobs.state(job_id)
        events = jobs.events(job_id)
        with metrics.open("a") as out:
            for event in events:
                if event.id in seen:
                    continue
                seen.add(event.id)
                if match := STEP.search(event.message):
                    step, total, loss = int(match[1]), int(match[2]), float(match[3])
                    line = {"phase": "sft", "step": step, "loss": loss,
                            "time": event.created_at, "event": event.id}  # fmt: skip
                    out.write(json.dumps(line) + "\n")
                    if progress:
                        progress("sft", step, total)
        if state.status in ENDED:
            return state
        time.sleep(POLL_S)
