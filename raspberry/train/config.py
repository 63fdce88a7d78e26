"""The `train:` section: which model is fine-tuned on a build, how, and where it runs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from raspberry.section import Section


class LoraConfig(Section):
    rank: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    # Which layers get adapters: "all-linear" (PEFT's shorthand) or module names.
    target_modules: str | list[str] = "all-linear"


class DpoConfig(Section):
    """A second pass with TRL's DPOTrainer on the build's preference pairs."""

    beta: float = Field(0.1, gt=0)
    epochs: float = Field(1.0, gt=0)
    learning_rate: float = Field(5e-6, gt=0)


class TrainConfig(Section):
    # Folder name under <build>/train/: several trainings of one build sit side by side.
    name: str = Field("sft", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    # local: TRL on this machine (train/local.py); openai: a fine-tuning job of the provider
    # named by `provider` (train/remote.py).
    backend: Literal["local", "openai"] = "local"
    provider: str | None = None
    # local: a folder in Hugging Face format, a .gguf file (relative to the config's folder), or
    # a Hub id where the network allows; openai: the provider's model to fine-tune.
    base_model: str
    method: Literal["lora", "full"] = "lora"
    lora: LoraConfig = LoraConfig()
    epochs: float = Field(2.0, gt=0)
    learning_rate: float = Field(2e-4, gt=0)
    batch_size: int = Field(4, ge=1)
    gradient_accumulation: int = Field(1, ge=1)
    # Tokens of one example (prompt and completion, chat template applied); longer ones are cut.
    max_length: int = Field(1024, ge=16)
    # A checkpoint every this many optimizer steps: a killed run resumes from the last one.
    save_steps: int = Field(20, ge=1)
    seed: int = 0
    # openai: the job's learning rate is the provider's default times this (None: its choice).
    learning_rate_multiplier: float | None = Field(None, gt=0)
    # "auto": bfloat16 on a GPU that has it, else float32.
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    dpo: DpoConfig | None = None
