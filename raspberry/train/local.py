"""The local backend: TRL's SFTTrainer on a build's conversational export (LoRA by default), then
optionally TRL's DPOTrainer on its preference pairs; CUDA when present, else the CPU.

Everything goes under <build>/train/<name>/:
- checkpoints/ (SFT) and dpo-checkpoints/: a killed run resumes from the last one;
- sft/: the SFT result (the adapter, or the whole model with full fine-tuning), written once
  the SFT pass is done, so a run killed during DPO does not train SFT again;
- adapter/ (LoRA) and merged/ (the base with the adapter merged, and its tokenizer: loadable by
  AutoModelForCausalLM.from_pretrained and by vLLM);
- metrics.jsonl (a line per logged step: phase, step, loss, learning rate, tokens/s, eval loss),
  config.json (the train section as run), lineage.json (the build, its shards and rows) and
  result.json (what the run measured).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from raspberry.build_files.store import BuildStore
from raspberry.errors import RaspberryError
from raspberry.local_models import load, load_tokenizer, locate, require_train_extra
from raspberry.train.config import TrainConfig
from raspberry.train.data import Example, TrainingData, training_data

# (phase, optimizer steps done, steps in the phase) -> None: the caller's progress display.
Progress = Callable[[str, int, int], None]


def train_folder(store: BuildStore, cfg: TrainConfig) -> Path:
    local = store.files.local_path(f"train/{cfg.name}")
    if local is None:
        raise RaspberryError(
            f"training writes checkpoints to a local disk; build '{store.build_id}' is at "
            f"{store.files.url()}: copy it to a local output folder first"
        )
    return local


def _token_length(tokenizer: Any, example: Example) -> int:
    text = tokenizer.apply_chat_template(example.prompt + example.completion, tokenize=False)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def check_training(
    store: BuildStore, cfg: TrainConfig, config_dir: Path, exported_by: str
) -> TrainingData:
    """Everything that can be checked before training starts, each a one-line RaspberryError:
    the train extra, the build's exports (the rows of the stage `exported_by`), the base model
    and its tokenizer, the row lengths."""
    require_train_extra()
    data = training_data(store, exported_by)
    tokenizer = load_tokenizer(*locate(cfg.base_model, config_dir))
    shortest = min(_token_length(tokenizer, e) for e in data.train)
    if shortest > cfg.max_length:
        raise RaspberryError(
            f"train.max_length {cfg.max_length} is below the shortest row ({shortest} tokens with "
            "the chat template): every row would be cut; raise it"
        )
    train_folder(store, cfg)
    return data


class _Metrics:
    """A TrainerCallback (made by `callback`) that appends each log to metrics.jsonl, with tokens
    per second from the trainer's token count, and reports progress."""

    def __init__(self, path: Path, phase: str, progress: Progress | None):
        self.path, self.phase, self.progress = path, phase, progress
        self.tokens: tuple[float, float] | None = None  # (tokens seen, at when)

    def log(self, step: int, logs: dict[str, Any]) -> None:
        line: dict[str, Any] = {"phase": self.phase, "step": step, "time": round(time.time(), 3)}
        for key in ("loss", "learning_rate", "grad_norm", "eval_loss", "epoch"):
            if key in logs:
                line[key] = logs[key]
        if "num_tokens" in logs:
            now = (float(logs["num_tokens"]), time.monotonic())
            if self.tokens and now[1] > self.tokens[1]:
                line["tokens_per_s"] = round(
                    (now[0] - self.tokens[0]) / (now[1] - self.tokens[1]), 1
                )
            self.tokens = now
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")

    def callback(self) -> Any:
        from transformers import TrainerCallback

        metrics = self

        class Callback(TrainerCallback):  # type: ignore[misc]
            def on_log(
                self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any
            ) -> None:
                metrics.log(state.global_step, logs or {})

            def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                if metrics.progress:
                    metrics.progress(metrics.phase, state.global_step, state.max_steps)

        return Callback()


def _quiet(trainer: Any) -> None:
    """No log dicts printed to stdout: metrics.jsonl and the progress display say it."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)


def _last_checkpoint(folder: Path) -> str | None:
    """The newest whole checkpoint: its trainer_state.json, which the trainer writes last, reads
    as JSON (a run killed while saving leaves a newer one without it)."""
    found = folder.glob("checkpoint-*") if folder.is_dir() else []
    for checkpoint in sorted(found, key=lambda p: int(p.name.split("-")[-1]), reverse=True):
        try:
            json.loads((checkpoint / "trainer_state.json").read_text())
        except (OSError, ValueError):
            continue
        return str(checkpoint)
    return None


def _common_args(cfg: TrainConfig, cuda: bool, bf16: bool) -> dict[str, Any]:
    return {
        "per_device_train_batch_size": cfg.batch_size,
        "gradient_accumulation_steps": cfg.gradient_accumulation,
        "save_steps": cfg.save_steps,
        "save_total_limit": 2,
        "logging_steps": 1,
        "report_to": [],
        "seed": cfg.seed,
        "disable_tqdm": True,
        "use_cpu": not cuda,
        "bf16": bf16,
        "dataloader_num_workers": 0,
    }


def run_local(
    store: BuildStore,
    cfg: TrainConfig,
    config_dir: Path,
    exported_by: str,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train on the build's exports (the rows of the stage `exported_by`); return what
    result.json holds. Resumes a killed run of the same name."""
    data = check_training(store, cfg, config_dir, exported_by)
    import datasets
    import torch
    import transformers
    from datasets import Dataset
    from peft import LoraConfig, PeftModel
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    # The caller shows progress: no tqdm bars of datasets' or transformers' own.
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()

    base, gguf = locate(cfg.base_model, config_dir)
    out = train_folder(store, cfg)
    out.mkdir(parents=True, exist_ok=True)
    cuda = torch.cuda.is_available()
    bf16 = cfg.dtype == "bfloat16" or (
        cfg.dtype == "auto" and cuda and torch.cuda.is_bf16_supported()
    )
    model, tokenizer = load(base, gguf, torch.bfloat16 if bf16 else torch.float32)
    (out / "config.json").write_text(json.dumps(cfg.model_dump(), indent=2))
    (out / "lineage.json").write_text(json.dumps(data.lineage, indent=2))
    started = time.monotonic()
    common = _common_args(cfg, cuda, bf16)
    result: dict[str, Any] = {"device": "cuda" if cuda else "cpu", "base_model": cfg.base_model}

    sft_done = out / "sft"
    if (sft_done / "DONE").is_file():
        model = (
            PeftModel.from_pretrained(model, str(sft_done), is_trainable=True)
            if cfg.method == "lora"
            else type(model).from_pretrained(str(sft_done), dtype=model.dtype)
        )
        result |= json.loads((sft_done / "DONE").read_text())
    else:
        to_rows = lambda examples: Dataset.from_list(  # noqa: E731
            [{"prompt": e.prompt, "completion": e.completion} for e in examples]
        )
        metrics = _Metrics(out / "metrics.jsonl", "sft", progress)
        trainer = SFTTrainer(
            model=model,
            args=SFTConfig(
                output_dir=str(out / "checkpoints"),
                num_train_epochs=cfg.epochs,
                learning_rate=cfg.learning_rate,
                max_length=cfg.max_length,
                eval_strategy="epoch" if data.validation else "no",
                **common,
            ),
            train_dataset=to_rows(data.train),
            eval_dataset=to_rows(data.validation) if data.validation else None,
            processing_class=tokenizer,
            peft_config=(
                LoraConfig(
                    r=cfg.lora.rank,
                    lora_alpha=cfg.lora.alpha,
                    lora_dropout=cfg.lora.dropout,
                    target_modules=cfg.lora.target_modules,
                    task_type="CAUSAL_LM",
                )
                if cfg.method == "lora"
                else None
            ),
            callbacks=[metrics.callback()],
        )
        _quiet(trainer)
        resumed = _last_checkpoint(out / "checkpoints")
        output = trainer.train(resume_from_checkpoint=resumed)
        model = trainer.model
        sft = {
            "sft_steps": trainer.state.global_step,
            "sft_train_loss": round(output.training_loss, 6),
            "sft_resumed_from": Path(resumed).name if resumed else None,
            "sft_tokens_per_s": _mean_rate(out / "metrics.jsonl", "sft"),
        }
        if data.validation:
            sft["sft_eval_loss"] = round(trainer.evaluate()["eval_loss"], 6)
        trainer.save_model(str(sft_done))
        (sft_done / "DONE").write_text(json.dumps(sft))
        result |= sft

    if cfg.dpo and data.pairs:
        metrics = _Metrics(out / "metrics.jsonl", "dpo", progress)
        pairs = Dataset.from_list(
            [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in data.pairs]
        )
        dpo = DPOTrainer(
            model=model,
            args=DPOConfig(
                output_dir=str(out / "dpo-checkpoints"),
                num_train_epochs=cfg.dpo.epochs,
                learning_rate=cfg.dpo.learning_rate,
                beta=cfg.dpo.beta,
                max_length=cfg.max_length,
                **common,
            ),
            train_dataset=pairs,
            processing_class=tokenizer,
            callbacks=[metrics.callback()],
        )
        _quiet(dpo)
        resumed = _last_checkpoint(out / "dpo-checkpoints")
        output = dpo.train(resume_from_checkpoint=resumed)
        model = dpo.model
        result |= {
            "dpo_steps": dpo.state.global_step,
            "dpo_train_loss": round(output.training_loss, 6),
        }

    if cfg.method == "lora":
        model.save_pretrained(str(out / "adapter"))
        model = model.merge_and_unload()
    model.save_pretrained(str(out / "merged"))
    tokenizer.save_pretrained(str(out / "merged"))
    result |= {
        "wall_s": round(time.monotonic() - started, 1),
        "train_rows": len(data.train),
        "validation_rows": len(data.validation),
        "preference_pairs": len(data.pairs) if cfg.dpo else 0,
        "merged": str(out / "merged"),
    }
    (out / "result.json").write_text(json.dumps(result, indent=2))
    return result


def _mean_rate(path: Path, phase: str) -> float | None:
    rates = [
        line["tokens_per_s"]
        for line in map(json.loads, path.read_text().splitlines())
        if line["phase"] == phase and "tokens_per_s" in line
    ]
    return round(sum(rates) / len(rates), 1) if rates else None
