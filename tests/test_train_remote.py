"""`raspberry train` with the openai backend (issue 37): a fine-tuning job on the build's OpenAI
chat export, over real HTTP through the official SDK against the simulator's files and
fine-tuning jobs endpoints. Ctrl-C leaves the job running and a second `raspberry train`
re-attaches to it; the job is booked before it is created and settled at what it trained;
the budget and the price are checked before anything is uploaded; `estimate` prices it."""

import json
import signal
import subprocess
import time

import httpx
import pytest
from conftest import CLI, ROOT, config_dict, run_cli, write_config
from raspberry_sim.config import SimConfig
from raspberry_sim.process import running_sim

from raspberry.llm.books import paid

MODEL = "gpt-4o-mini-2024-07-18"
PRICE = 3.0  # USD per million trained tokens


@pytest.fixture(scope="module")
def sim():
    with running_sim(SimConfig(fine_tune_s=4.0)) as url:
        yield url


@pytest.fixture(scope="module")
def built(tmp_path_factory, prefect_api, sim):
    tmp = tmp_path_factory.mktemp("remote")
    data = config_dict(tmp, per_task=2, shards=1)
    data["providers"]["tuner"] = {"kind": "openai_compatible", "base_url": sim}
    data["train"] = {"backend": "openai", "provider": "tuner", "base_model": MODEL, "epochs": 2}
    data["prices"][MODEL] = {"training_per_mtok": PRICE}
    config = write_config(tmp, data)
    proc = run_cli("build", "--config", str(config), "--build-id", "b")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return tmp, tmp / "builds", data


def _jobs(url: str) -> int:
    return httpx.get(f"{url}/_sim/stats").json().get("fine_tuning_jobs", 0)


def _train(out, config, *args):
    return run_cli("train", "b", "--output-dir", str(out), "--config", str(config), *args)


def test_ctrl_c_leaves_the_job_running_and_a_second_train_re_attaches(built, sim):
    tmp, out, data = built
    config = write_config(tmp, data, "train.yaml")
    before = _jobs(sim)
    args = ["train", "b", "--output-dir", str(out), "--config", str(config)]
    proc = subprocess.Popen([*CLI, *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    job_file = out / "b" / "train" / "sft" / "job.json"
    deadline = time.time() + 120
    while "job_id" not in (json.loads(job_file.read_text()) if job_file.exists() else {}):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-2000:]
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "Traceback" not in err, err[-2000:]
    assert _jobs(sim) == before + 1
    job_id = json.loads(job_file.read_text())["job_id"]
    # Interrupted: booked at its most, unconfirmed, until the job says what it trained.
    assert paid(data["gateway"]["cache_path"], "b").unconfirmed_usd > 0

    again = _train(out, config)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert f"fine-tuning job {job_id} succeeded" in again.stdout
    assert f"model: ft:{MODEL}:raspberry:sft:" in again.stdout
    assert _jobs(sim) == before + 1  # re-attached: no second job, nothing paid twice
    result = json.loads((out / "b" / "train" / "sft" / "result.json").read_text())
    assert result["attached"] == 2 and result["job_id"] == job_id
    assert result["cost_usd"] == pytest.approx(result["trained_tokens"] * PRICE / 1e6)
    bill = paid(data["gateway"]["cache_path"], "b")
    assert bill.unconfirmed_usd == 0 and bill.usd >= result["cost_usd"] > 0
    steps = [
        json.loads(x)
        for x in (out / "b" / "train" / "sft" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [s["step"] for s in steps] == list(range(1, 11))  # each step event once
    assert steps[-1]["loss"] < steps[0]["loss"]


@pytest.mark.parametrize(
    "change, said",
    [
        ({"budget": {"max_usd": 0.000001}}, "budget reached: fine-tuning "),
        ({"prices": {}}, f"train.base_model '{MODEL}' has no training price"),
    ],
)
def test_a_job_that_cannot_be_paid_for_is_refused_before_anything_is_uploaded(
    built, sim, change, said
):
    tmp, out, data = built
    data = {**json.loads(json.dumps(data)), **change}
    data["train"] = {**data["train"], "name": "refused"}
    before = _jobs(sim)
    proc = _train(out, write_config(tmp, data, "refused.yaml"))
    assert proc.returncode == 2 and proc.stderr.startswith(f"error: {said}"), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert _jobs(sim) == before and not (out / "b" / "train" / "refused" / "job.json").exists()


def test_a_train_provider_must_be_openai_like(built):
    tmp, _, data = built
    data = json.loads(json.dumps(data))
    data["train"]["provider"] = "sim_anthropic"
    proc = run_cli("estimate", "--config", str(write_config(tmp, data, "bad.yaml")))
    assert proc.returncode == 2 and "train.provider 'sim_anthropic'" in proc.stderr


def test_estimate_prices_the_training_tokens(built):
    tmp, _, data = built
    proc = run_cli("estimate", "--config", str(write_config(tmp, data, "est.yaml")), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    trainer = result["stages"]["train"]["roles"]["trainer"]
    assert trainer["model"] == MODEL and trainer["tokens_in"] > 0
    assert trainer["cost_usd"] == pytest.approx(trainer["tokens_in"] * PRICE / 1e6, rel=1e-3)
    assert " train " in proc.stdout and "trainer" in proc.stdout


def test_the_simulator_fails_a_job_on_a_file_without_chat_rows(sim):
    import openai

    client = openai.OpenAI(base_url=f"{sim}/v1", api_key="no-key")
    upload = client.files.create(file=("x.jsonl", b'{"prompt": "no messages"}\n'),
                                 purpose="fine-tune")  # fmt: skip
    job = client.fine_tuning.jobs.create(model=MODEL, training_file=upload.id)
    job = client.fine_tuning.jobs.retrieve(job.id)
    assert job.status == "failed" and "no chat rows" in job.error.message
    messages = [e.message for e in client.fine_tuning.jobs.list_events(job.id)]
    assert any(m.startswith("Validation failed") for m in messages)
