"""The cost estimate: a dry run sends and writes nothing; a pilot measures what it assumes."""

import json

import httpx
import pytest
from conftest import ROOT, config_dict, run_cli, write_config
from raspberry_sim import completions
from raspberry_sim import prompt_cache as sim_cache
from raspberry_sim.config import SimConfig
from raspberry_sim.process import running_sim
from raspberry_sim.roles import Behaviour

from raspberry.llm.providers import (
    anthropic_body,
    anthropic_completion,
    openai_body,
    openai_completion,
)
from raspberry.llm.types import Request
from raspberry.pipeline.estimate import estimate
from raspberry.pipeline.pilot import _turn_rates
from raspberry.stages.config import EstimateConfig, load_config
from raspberry.stages.estimate import PromptCache, turn_odds

PRICES = {
    "sim-teacher": {"input_per_mtok": 3.0, "output_per_mtok": 15.0},
    "sim-user-standin": {"input_per_mtok": 0.25, "output_per_mtok": 1.25},
    "sim-judge": {"input_per_mtok": 1.0, "output_per_mtok": 5.0},
    "sim-rewriter": {"input_per_mtok": 3.0, "output_per_mtok": 15.0},
}


def _config(tmp_path, **overrides):
    data = config_dict(tmp_path, per_task=6, shards=2)
    data["prices"] = PRICES
    data.update(overrides)
    return write_config(tmp_path, data)


def test_counts_follow_the_config_and_the_turn_odds(tmp_path):
    est = EstimateConfig(solved_first_turn=0.5, solved_later_turn=0.5)
    config = load_config(_config(tmp_path, estimate=est.model_dump()))
    result = estimate(config)
    free = result["questions"]["free"]
    assert free == sum(t.count for t in config.questions.reasoning_gym)
    odds = turn_odds(_point(est), config.dialogues.max_turns)
    assert odds == [1.0, 0.5, 0.25, 0.125]
    stages = result["stages"]
    assert stages["dialogues"]["roles"]["teacher"]["requests"] == round(free * sum(odds))
    assert stages["dialogues"]["roles"]["user_standin"]["requests"] == round(free * sum(odds[1:]))
    assert stages["verdicts"]["roles"]["judge"]["requests"] == free
    # Rewritten: the dialogues solved after their first turn.
    solved = 1 - 0.5 * 0.5**3
    assert stages["sft"]["roles"]["rewriter"]["requests"] == round(free * (solved - 0.5))
    assert result["estimate_low_usd"] < result["estimate_usd"] < result["estimate_high_usd"]


def _point(est):
    from raspberry.stages.estimate import cases

    return cases(est)["point"]


def test_longer_outputs_and_batch_move_the_estimate_as_they_should(tmp_path):
    base = estimate(load_config(_config(tmp_path)))
    longer = EstimateConfig(output_tokens={"teacher": 3000})
    assert (
        estimate(load_config(_config(tmp_path, estimate=longer.model_dump())))["estimate_usd"]
        > base["estimate_usd"]
    )
    data = config_dict(tmp_path, per_task=6, shards=2)
    auto = estimate(
        load_config(_config(tmp_path, gateway={**data["gateway"], "transport": "auto"}))
    )
    for stage in ("verdicts", "sft"):  # half price through the batch APIs
        assert auto["stages"][stage]["cost_usd"] == pytest.approx(
            base["stages"][stage]["cost_usd"] / 2, rel=1e-3
        )
    assert auto["stages"]["dialogues"]["cost_usd"] == base["stages"]["dialogues"]["cost_usd"]


@pytest.mark.parametrize("minimum", [150, 400, 900])
@pytest.mark.parametrize("kind", ["anthropic", "openai_compatible"])
def test_cache_reads_and_writes_per_turn_are_the_providers(kind, minimum):
    """Turn by turn, the estimate's prompt-cache reads and writes are those the simulated provider
    reports for the bodies the gateway sends: Anthropic reads only up to breakpoints an earlier
    request wrote and charges the rest as a write; OpenAI reads 128-token steps of any prefix."""
    anthropic = kind == "anthropic"
    cache = sim_cache.PromptCache(minimum)
    model = PromptCache(minimum, breakpoints=anthropic)
    system = "s" * 800

    def seen(messages: list[dict[str, str]]) -> int:  # the prompt's tokens as the server counts
        head = system if anthropic else f"system:{system}"
        return len(head + "".join(f"{m['role']}:{m['content']}" for m in messages)) // 4

    for letter in "qr":  # the first dialogue puts the system prompt in the cache
        messages = [{"role": "user", "content": letter * 600}]
        for k in range(1, 5):
            request = Request("sim-teacher", system, list(messages), {"max_tokens": 64})
            if anthropic:
                _, data = completions.answer(
                    "anthropic", anthropic_body(request, True), Behaviour(), cache=cache
                )
                got = anthropic_completion(data)
            else:
                _, data = completions.answer(
                    "openai", openai_body(kind, request), Behaviour(), cache=cache
                )
                got = openai_completion(data)
            before = seen(messages[:-2]) if k > 1 else 0
            shared = seen([]) if anthropic else seen([{"role": "user", "content": ""}])
            expected = model.turn(k, shared, seen(messages), before)
            if letter == "r":  # the model counts the system prompt's one write as nothing
                assert got.tokens_cache_read == expected[0], k
                # The server's input count leaves out the role labels its cache counts.
                assert got.tokens_cache_write == pytest.approx(expected[1], abs=3 * k), k
            messages += [
                {"role": "assistant", "content": "a" * 1000},
                {"role": "user", "content": "n" * 200},
            ]


def test_turn_rates_from_a_pilots_dialogues():
    # 10 dialogues: 6 right at turn 1; of the 4 left, 2 at turn 2; of the 2 left, 1 at turn 4.
    first, later = _turn_rates({"1": 6, "2": 2, "4": 1}, 10)
    assert first == 0.6 and later == pytest.approx(3 / (4 + 2 + 2))


def test_dry_run_sends_and_writes_nothing(tmp_path):
    config = _config(tmp_path)
    with running_sim(SimConfig()) as url:  # a server no request may reach
        out = run_cli("build", "--config", str(config), "--dry-run", "--json")
        requests = httpx.get(f"{url}/_sim/stats").json().get("requests", 0)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["estimate_low_usd"] < result["estimate_usd"] < result["estimate_high_usd"]
    assert list(result["stages"]) == ["candidates", "questions", "dialogues", "verdicts", "sft"]
    # Nothing written to confirm: only the judge, for the unsure near-duplicate pairs.
    assert list(result["stages"]["questions"]["roles"]) == ["judge"]
    assert "tokens_cache_read" in result["stages"]["dialogues"]
    assert requests == 0
    assert not (tmp_path / "builds").exists() and not (tmp_path / "cache.sqlite").exists()
    assert "total: $" in out.stdout


def test_a_bad_pilot_size_is_one_line(tmp_path):
    out = run_cli("estimate", "--config", str(_config(tmp_path)), "--pilot", "0")
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0
    assert "--pilot must be at least 1" in out.stderr


def test_a_pilot_measures_and_the_estimate_lands_near_the_build(tmp_path, prefect_api):
    """The pilot's figures, not the defaults, drive the estimate; the build then costs within
    25% of it. The pilot's answers are the build's: the build pays only for the rest."""
    config = _config(tmp_path)
    out = run_cli("estimate", "--config", str(config), "--pilot", "8", "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["from"] == "pilot"
    assumed = result["assumptions"]
    assert assumed["output_tokens"]["teacher"] < 500  # the simulator's, not the 1,500 default
    assert "measured by the pilot" in out.stdout
    build = run_cli("build", "--config", str(config), "--build-id", "full", "--json")
    assert build.returncode == 0, build.stderr[-2000:]
    summary = json.loads(build.stdout.strip().splitlines()[-1])
    pilot_paid = json.loads(
        run_cli("cache", "stats", "--path", str(tmp_path / "cache.sqlite"), "--json").stdout
    )["builds"][result["pilot"]["build_id"]]["cost_usd"]
    actual = summary["paid_usd"] + pilot_paid  # what the whole build's requests cost
    assert abs(result["estimate_usd"] - actual) <= 0.25 * actual, (result["estimate_usd"], actual)


def test_the_demo_config_estimates_with_its_pilots_figures():
    config = load_config(ROOT / "configs" / "demo.yaml")
    result = estimate(config)
    assert result["questions"] == {"free": 350, "written": 60}
    assert 1.0 < result["estimate_usd"] < 5.0


def test_every_stage_estimates_every_role_it_asks(tmp_path):
    """The estimate of a stage comes from the stage (`Stage.estimate`): a role a stage asks that
    its hook leaves out would be estimated at $0 without a word. Here every role is in use."""
    from raspberry.stages import registry

    bench = tmp_path / "bench.jsonl"
    bench.write_text('{"question": "What is 2 + 2?", "answer": "4"}\n')
    data = config_dict(tmp_path, per_task=6, shards=2)
    data["providers"]["embeds"] = {"kind": "openai_compatible", "base_url": "sim"}
    data["models"] |= {
        "question_writer": {"provider": "sim_openai", "model": "sim-question-writer"},
        "student": {"provider": "sim_openai", "model": "sim-student"},
        "second_judge": {"provider": "sim_anthropic", "model": "sim-second-judge"},
        "embedder": {"provider": "embeds", "model": "sim-embed"},
    }
    data["questions"] |= {
        "synthesis": {"count": 10, "taxonomy": {"domains": {"d": ["s"]}, "personas": ["p"]}},
        "evolution": {"share": 0.5},
        "difficulty": {"samples": 4},
        "filters": {"decontamination": {"benchmarks": [str(bench)]}},
    }
    data["verdicts"] = {"second_judge": True}
    config = load_config(write_config(tmp_path, data))
    stages = estimate(config)["stages"]
    for spec in registry.stages():
        asked = set(spec.roles(config))
        assert asked, f"{spec.name} asks no role in this config: the test does not cover it"
        estimated = {role for role, r in stages[spec.name]["roles"].items() if r["requests"] > 0}
        assert asked <= estimated, f"{spec.name} asks {asked - estimated} without an estimate"
