"""`raspberry train BUILD`: fine-tune the config's `train:` model on a finished build, through
the training flow (flows/train.py); everything it can check comes first, before Prefect starts."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from raspberry_app.settings import prefect_env

from raspberry.build_files.store import BuildStore
from raspberry.errors import RaspberryError
from raspberry.stages import registry
from raspberry.stages.config import load_config
from raspberry.train.local import check_training
from raspberry.train.remote import check_remote


def train_build(
    output_dir: str, build_id: str, config_path: str | None = None, name: str | None = None
) -> dict[str, Any]:
    """Train on a build (`raspberry train` and `Build.train`); return the result it recorded.
    The config is the one given, else the one the build's last run used."""
    store = BuildStore(output_dir, build_id)
    manifest = store.manifest()
    config_path = config_path or (manifest.get("runs") or [{}])[-1].get("config_path")
    if not config_path:
        raise RaspberryError(f"build '{build_id}' recorded no config; give --config")
    config = load_config(config_path)
    if config.train is None:
        raise RaspberryError(
            f"{config_path} has no train: section; add one (base_model at least: see "
            "docs/training.md)"
        )
    cfg = config.train.model_copy(update={"name": name}) if name else config.train
    if cfg.backend == "openai":  # now, not after Prefect starts
        check_remote(store, cfg, config.llm)
    else:
        check_training(store, cfg, Path(config.source).parent, registry.exporting().name)
    prefect_env()
    from raspberry_flows.server import api_server

    with api_server():
        from raspberry_flows.train import train_model  # imported late: Prefect's settings

        state = train_model(
            output_dir=output_dir, build_id=build_id, config_path=str(Path(config_path).resolve()),
            name=name, return_state=True,
        )  # fmt: skip
    result = state.result(raise_on_failure=False)
    if isinstance(result, RaspberryError):
        raise result
    if not isinstance(result, dict):
        raise RuntimeError(f"the training flow failed: {result}")
    return result


def cmd_train(args: argparse.Namespace) -> int:
    result = train_build(args.output_dir, args.build_id, args.config, args.name)
    if result.get("backend") == "openai":
        print(f"fine-tuning job {result['job_id']} succeeded: {result['trained_tokens']} tokens "
              f"trained over {result['epochs']} epoch(s), ${result['cost_usd']:.4f}")  # fmt: skip
        print(f"model: {result['fine_tuned_model']}")
        return 0
    print(f"trained on {result['train_rows']} rows in {result['wall_s']} s on {result['device']}")
    sft = f"  SFT: {result['sft_steps']} steps, train loss {result['sft_train_loss']}"
    if "sft_eval_loss" in result:
        sft += f", validation loss {result['sft_eval_loss']}"
    if result.get("sft_tokens_per_s"):
        sft += f", {result['sft_tokens_per_s']} tokens/s"
    print(sft)
    if "dpo_steps" in result:
        print(f"  DPO: {result['dpo_steps']} steps on {result['preference_pairs']} pairs, "
              f"loss {result['dpo_train_loss']}")  # fmt: skip
    print(f"model: {result['merged']}")
    return 0


def add_parser(sub: argparse._SubParsersAction, command: Any) -> None:
    train = command(sub, "train", "fine-tune the config's train: model on a finished build",
                    "raspberry train demo-20261207", cmd_train)  # fmt: skip
    train.add_argument("build_id", help="the build to train on")
    train.add_argument("--output-dir", default="data/builds", help="the folder of builds")
    train.add_argument("--config", help="the config with the train: section (default: the one "
                       "the build's last run used)")  # fmt: skip
    train.add_argument("--name", help="the training's folder under <build>/train/ (default: "
                       "train.name)")  # fmt: skip
