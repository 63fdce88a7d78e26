"""`raspberry train` (issue 37) as a user runs it: a small build, then a tiny randomly
initialised chat model (tests/tiny_model.py: no weights downloaded) fine-tuned on it with LoRA
SFT and DPO, through the CLI and the training flow; a kill -9 mid-training resumes from its
checkpoint; bad input is one line and exit 2."""

import json
import os
import subprocess
import sys
import time

import pytest
from conftest import CLI, ROOT, config_dict, run_cli, write_config
from tiny_model import make_tiny_model

from raspberry.build_files.store import BuildStore


@pytest.fixture(scope="module")
def built(tmp_path_factory, prefect_api):
    tmp = tmp_path_factory.mktemp("train")
    data = config_dict(tmp, per_task=2, shards=1)
    data["train"] = {"base_model": str(tmp / "tiny"), "epochs": 1, "batch_size": 2,
                     "max_length": 512, "save_steps": 2, "dpo": {"epochs": 1}}  # fmt: skip
    config = write_config(tmp, data)
    proc = run_cli("build", "--config", str(config), "--build-id", "b")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = tmp / "builds"
    exports = BuildStore(out, "b").exports()
    texts = exports.read_text("prompt_response.jsonl").splitlines()
    make_tiny_model(tmp / "tiny", texts)
    return tmp, out, config, data


def _train(out, *args, env=None):
    return run_cli("train", "b", "--output-dir", str(out), *args, env=env)


def test_train_writes_the_model_its_metrics_and_lineage(built):
    tmp, out, config, _ = built
    proc = _train(out)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "SFT:" in proc.stdout and "DPO:" in proc.stdout
    folder = out / "b" / "train" / "sft"
    result = json.loads((folder / "result.json").read_text())
    assert result["sft_steps"] > 0 and result["dpo_steps"] > 0 and result["device"] == "cpu"
    lines = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    phases = {x["phase"] for x in lines if "loss" in x and "learning_rate" in x}
    assert phases == {"sft", "dpo"} and any("tokens_per_s" in x for x in lines)
    assert any("eval_loss" in x for x in lines)  # the validation split
    lineage = json.loads((folder / "lineage.json").read_text())
    train_ids = [
        json.loads(x)["id"]
        for x in (out / "b" / "exports" / "train" / "prompt_response.jsonl")
        .read_text()
        .splitlines()
    ]
    assert lineage["build_id"] == "b" and lineage["train_rows"] == train_ids
    assert lineage["shards"] and all(k.startswith("sft/") for k in lineage["shards"])
    assert json.loads((folder / "config.json").read_text())["base_model"] == str(tmp / "tiny")
    assert (folder / "adapter" / "adapter_config.json").is_file()
    assert "training loss (sft)" in (out / "b" / "report.html").read_text()
    # The merged model loads as any Hugging Face model and generates.
    script = """if True:
        import sys
        from transformers import AutoModelForCausalLM, AutoTokenizer
        model = AutoModelForCausalLM.from_pretrained(sys.argv[1])
        tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])
        asked = [{"role": "user", "content": "Calculate 2 + 3."}]
        ids = tokenizer.apply_chat_template(
            asked, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        out = model.generate(**ids, max_new_tokens=5, do_sample=False)
        print(out.shape[1] > ids["input_ids"].shape[1])
    """
    ran = subprocess.run([sys.executable, "-c", script, str(folder / "merged")],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert ran.stdout.strip() == "True", ran.stderr[-2000:]


def test_the_trained_model_answers_through_the_local_provider(built):
    """Issue 37: `kind: local` runs a model folder in-process; the request cache keys it by its
    weights, so a retrained model in the same folder is asked again."""
    import asyncio

    import torch
    from transformers import AutoModelForCausalLM

    from raspberry.llm import Gateway
    from raspberry.stages.config import load_config

    tmp, out, _, data = built
    merged = out / "b" / "train" / "sft" / "merged"
    assert merged.is_dir(), "the training test runs first"
    data = json.loads(json.dumps(data))
    data["providers"]["here"] = {"kind": "local", "batch_size": 4}
    data["models"]["teacher"] = {"provider": "here", "model": str(merged), "max_tokens": 6,
                                 "temperature": 0}  # fmt: skip
    config = load_config(write_config(tmp, data, "local.yaml"))
    asked = [[{"role": "user", "content": f"Calculate {i} + 1."}] for i in range(5)]

    async def ask() -> tuple[list, object]:
        async with Gateway(config.llm, None, build_id="local") as gw:
            answers = await asyncio.gather(*(gw.chat("teacher", m, prompt_ref="p") for m in asked))
            return answers, gw.stats

    answers, stats = asyncio.run(ask())
    assert stats.requests_sent == 5 and all(0 < a.tokens_out <= 7 for a in answers)
    assert {a.stop_reason for a in answers} <= {"stop", "max_tokens"} and answers[0].tokens_in > 5
    again, _ = asyncio.run(ask())  # greedy: the same answers (cut ones are asked again)
    assert [a.text for a in again] == [a.text for a in answers]
    # The cache keys a local model by its weights: the same folder retrained is another model.
    from raspberry.llm.cache import cache_model
    from raspberry.llm.local import _model

    before = cache_model("local", str(merged))
    assert cache_model("local", str(merged)) == before and before.startswith("weights:")
    served = _model(str(merged))[0]
    model = AutoModelForCausalLM.from_pretrained(merged)
    with torch.no_grad():
        next(model.parameters()).mul_(1.5)
    model.save_pretrained(merged)
    assert cache_model("local", str(merged)) != before
    # ...and the process answers with the new weights, not the ones it had in memory.
    _, stats = asyncio.run(ask())
    assert stats.requests_sent == 5 and _model(str(merged))[0] is not served


def test_a_killed_training_resumes_from_its_last_checkpoint(built):
    tmp, out, config, data = built
    data = {**data, "train": {**data["train"], "name": "long", "epochs": 40, "batch_size": 1,
                              "save_steps": 3, "dpo": None}}  # fmt: skip
    config = write_config(tmp, data, "long.yaml")
    checkpoints = out / "b" / "train" / "long" / "checkpoints"
    args = [*CLI, "train", "b", "--output-dir", str(out), "--config", str(config)]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (checkpoints.is_dir() and len(list(checkpoints.glob("checkpoint-*"))) >= 2):
        assert proc.poll() is None and time.time() < deadline, "no checkpoint before the end"
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    saved = max(int(p.name.split("-")[1]) for p in checkpoints.glob("checkpoint-*"))
    proc = run_cli("train", "b", "--output-dir", str(out), "--config", str(config))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads((checkpoints.parent / "result.json").read_text())
    resumed = int(result["sft_resumed_from"].split("-")[1])
    assert resumed >= saved - 3 and resumed > 0  # the last whole checkpoint, not step 0
    steps = [
        json.loads(x)["step"]
        for x in (checkpoints.parent / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps.count(1) == 1  # step 1 was trained once: the rerun did not start from zero


def _bad(built, change, expected, env=None):
    tmp, out, _, data = built
    data = json.loads(json.dumps(data))
    change(data)
    config = write_config(tmp, data, "bad.yaml")
    proc = _train(out, "--config", str(config), env=env)
    assert proc.returncode == 2, proc.stdout[-1000:] + proc.stderr[-2000:]
    assert proc.stderr.count("\n") == 1 and expected in proc.stderr, proc.stderr[-2000:]


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda d: d["train"].update(base_model="/nowhere/model"), "does not exist"),
        (lambda d: d["train"].update(epochs=0), "train.epochs"),
        (lambda d: d["train"].update(lora={"rank": 0}), "train.lora.rank"),
        (lambda d: d["train"].update(max_length=16), "below the shortest row"),
        (lambda d: d.pop("train"), "has no train: section"),
    ],
    ids=[
        "missing base model",
        "zero epochs",
        "LoRA rank 0",
        "max_length below a row",
        "no section",
    ],
)
def test_bad_training_input_is_one_line(built, change, expected):
    _bad(built, change, expected)


def test_an_unfinished_build_and_a_missing_extra_are_one_line(built):
    tmp, out, config, _ = built
    BuildStore(out, "half").init({})
    proc = run_cli("train", "half", "--output-dir", str(out), "--config", str(config))
    assert proc.returncode == 2 and "has no complete exports" in proc.stderr, proc.stderr
    script = ("import sys; sys.modules['trl'] = None\n"
              "from raspberry_app.cli import main; sys.exit(main(sys.argv[1:]))")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", script, "train", "b", "--output-dir", str(out)],
                          capture_output=True, text=True, cwd=ROOT, env=os.environ)  # fmt: skip
    assert proc.returncode == 2 and "pip install 'raspberry[train]'" in proc.stderr, proc.stderr


def test_a_checkpoint_cut_short_by_a_kill_is_passed_over(tmp_path):
    from raspberry.train.local import _last_checkpoint

    for step, state in ((3, '{"global_step": 3}'), (6, '{"global_st'), (9, None)):
        (tmp_path / f"checkpoint-{step}").mkdir()
        if state is not None:
            (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text(state)
    assert _last_checkpoint(tmp_path) == str(tmp_path / "checkpoint-3")
    assert _last_checkpoint(tmp_path / "none") is None


def test_eval_compares_the_tuned_model_with_its_base_on_held_out_questions(built):
    tmp, out, _, data = built
    data = json.loads(json.dumps(data))
    data["providers"]["here"] = {"kind": "local", "batch_size": 8}
    data["eval"] = {"models": {
        "base": {"provider": "here", "model": str(tmp / "tiny"), "max_tokens": 8, "temperature": 0},
        "tuned": {"provider": "here", "model": str(out / "b" / "train" / "sft" / "merged"),
                  "max_tokens": 8, "temperature": 0},
    }}  # fmt: skip
    config = write_config(tmp, data, "eval.yaml")
    evals = str(tmp / "evals")
    args = ["eval", "--config", str(config), "--build", "b", "--builds-dir", str(out), "--role",
            "base", "--role", "tuned", "--runs", "1", "--output-dir", evals]  # fmt: skip
    proc = run_cli(*args, "--heldout", "3", "--eval-id", "h", "--json")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    tuned, pair = summary["models"]["tuned"], summary["comparisons"]["tuned vs base"]
    assert tuned["questions"] == 15 and len(tuned["by_group"]) == 5  # 3 of each of 5 tasks
    assert 0 <= tuned["format"] <= 1 and tuned["mean_tokens_out"] > 0
    low, high = pair["difference_ci95"]
    assert pair["questions"] == 15 and low <= pair["difference"] <= high
    assert "tuned vs base: accuracy" in proc.stdout
    # None of the held-out questions is one of the build's.
    from raspberry.build_files.records import Question

    lines = (tmp / "evals" / "h" / "questions.jsonl").read_text().splitlines()
    asked = {json.loads(x)["question"] for x in lines}
    assert len(asked) == len(lines)  # each question once (small tasks repeat themselves)
    built_prompts = {q.prompt for q in BuildStore(out, "b").read_shard("candidates", 0, Question)}
    assert asked and not asked & built_prompts
    assert "accuracy (h)" in (out / "b" / "report.html").read_text()
    proc = run_cli(*args, "--eval-id", "v")  # the validation split
    assert proc.returncode == 0 and "questions of b-validation" in proc.stdout, proc.stderr[-2000:]


def test_grpo_trains_on_the_rl_export_with_the_reward_function(built, tmp_path):
    """Issue 32: the `rl` export and raspberry.verify.reward are what TRL's GRPO takes."""
    import datasets
    from trl import GRPOConfig, GRPOTrainer

    from raspberry.verify.reward import reward

    tmp, out, _, _ = built
    rows = datasets.load_dataset("json", data_files=str(out / "b" / "exports" / "rl.jsonl"),
                                 split="train", cache_dir=str(tmp_path / "hf"))  # fmt: skip
    assert {"prompt", "reference", "verification", "source"} <= set(rows.column_names)
    assert rows.num_rows >= 5
    args = GRPOConfig(
        output_dir=str(tmp_path / "grpo"), max_steps=2, per_device_train_batch_size=2,
        num_generations=2, max_completion_length=8, use_cpu=True, report_to=[],
        logging_steps=1, save_strategy="no", disable_tqdm=True,
    )  # fmt: skip
    trainer = GRPOTrainer(
        model=str(tmp / "tiny"), reward_funcs=reward, args=args, train_dataset=rows
    )
    trainer.train()
    assert trainer.state.global_step == 2
    logged = [x for x in trainer.state.log_history if "reward" in x]
    assert logged and all(0.0 <= x["reward"] <= 1.0 for x in logged)
