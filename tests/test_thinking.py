"""Reasoning teachers: thinking asked for per role, returned by the simulator on both protocols,
kept in the dialogue rows, counted, given to the rewriter and carried by the export."""

import asyncio
import os

import pytest
from conftest import config_dict, rg_questions, run_cli, run_stage, write_config
from raspberry_sim.config import SimConfig
from raspberry_sim.process import running_sim

from raspberry.llm import Gateway
from raspberry.stages.config import load_config
from raspberry.stages.sft.rewrite import conversation_text

MSG = [{"role": "user", "content": "What is 12 + 30? Think it through."}]


def _models(**teacher):
    return {
        "teacher": {"provider": "sim_openai", "model": "sim-teacher", "max_tokens": 4096,
                    **teacher},
        "user_standin": {"provider": "sim_openai", "model": "sim-user-standin"},
        "judge": {"provider": "sim_anthropic", "model": "sim-judge", "max_tokens": 4096,
                  "thinking": 2048},
        "rewriter": {"provider": "sim_anthropic", "model": "sim-rewriter"},
    }  # fmt: skip


async def _ask(config, url, role):
    async with Gateway(config.llm, url) as gw:
        return await gw.chat(role, MSG, prompt_ref="p@1"), gw.stats


@pytest.mark.parametrize(
    ("role", "teacher", "visible"),
    [
        ("judge", {}, True),  # Anthropic extended thinking: a thinking block
        ("teacher", {"thinking": 2048}, True),  # vLLM/SGLang: reasoning_content
        ("teacher", {"provider": "sim_openai_real", "reasoning_effort": "high"}, False),
    ],
)
def test_thinking_comes_back_counted_on_each_protocol(tmp_path, role, teacher, visible):
    data = config_dict(tmp_path)
    data["providers"]["sim_openai_real"] = {"kind": "openai", "base_url": "sim",
                                            "api_key_env": "NO_SUCH_KEY_NEEDED"}  # fmt: skip
    data["models"] = _models(**teacher)
    os.environ["NO_SUCH_KEY_NEEDED"] = "sk-sim"
    with running_sim(SimConfig(seed=1)) as url:
        reply, stats = asyncio.run(_ask(load_config(write_config(tmp_path, data)), url, role))
    assert reply.text.strip()
    assert reply.tokens_thinking > 0 and stats.tokens_thinking == reply.tokens_thinking
    assert reply.tokens_out > reply.tokens_thinking  # billed as output with the answer
    if visible:
        assert "Plan: work it step by step" in reply.thinking
    else:  # OpenAI keeps a reasoning model's thinking to itself
        assert reply.thinking == ""


def test_thinking_enters_the_cache_key(tmp_path):
    with running_sim(SimConfig(seed=1)) as url:
        data = config_dict(tmp_path)
        plain, _ = asyncio.run(_ask(load_config(write_config(tmp_path, data)), url, "teacher"))
        data["models"] = _models(thinking=2048)
        thought, stats = asyncio.run(
            _ask(load_config(write_config(tmp_path, data)), url, "teacher")
        )
    assert stats.requests_sent == 1 and thought.thinking and not plain.thinking


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"provider": "sim_anthropic", "model": "sim-judge", "thinking": 2048, "max_tokens": 1024},
         "must be under max_tokens"),
        ({"provider": "sim_anthropic", "model": "sim-judge", "thinking": 2048, "max_tokens": 4096,
          "temperature": 0.2}, "temperature 1 or none"),
        ({"provider": "sim_anthropic", "model": "sim-judge", "reasoning_effort": "high"},
         "not reasoning_effort"),
        ({"provider": "sim_anthropic", "model": "sim-judge", "thinking": 100, "max_tokens": 4096},
         "greater than or equal to 1024"),
    ],
)  # fmt: skip
def test_a_thinking_setting_the_api_would_refuse_is_one_line(tmp_path, model, message):
    data = config_dict(tmp_path)
    data["models"]["judge"] = model
    out = run_cli("build", "--config", str(write_config(tmp_path, data)), "--dry-run")
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert out.stderr.strip().count("\n") == 0


def test_dialogues_keep_the_thinking_and_the_rewriter_and_export_get_it(tmp_path, sim_url):
    data = config_dict(tmp_path)
    data["models"] = _models(thinking=2048)
    data["sft"] = {"export": {"reasoning_wrapper": "think", "thinking": True}}
    config = load_config(write_config(tmp_path, data))
    questions = rg_questions("chain_sum", 12)
    dialogues, stats = run_stage("dialogues", config, sim_url, questions)
    assert stats["tokens_thinking"] > 0
    assert sum(d.tokens_thinking for d in dialogues) == stats["tokens_thinking"]
    teacher_turns = [t for d in dialogues for t in d.turns if t.role == "assistant"]
    assert teacher_turns and all(t.thinking for t in teacher_turns)
    corrected = next(d for d in dialogues if d.attempts > 1)
    text = conversation_text(corrected)
    assert text.count("<thinking>") == corrected.attempts
    verdicts, _ = run_stage("verdicts", config, sim_url, questions, dialogues)
    rows, _ = run_stage("sft", config, sim_url, questions, dialogues, verdicts)
    one_turn = [r for r in rows if not r.rewritten]
    assert one_turn and all(r.thinking for r in one_turn)

    from raspberry.stages.sft.formats import completion, prompt_response

    wrapped = completion(one_turn[0], "think")
    assert wrapped.startswith("<think>\n" + one_turn[0].thinking.strip())
    assert prompt_response(one_turn[0], "fields")["reasoning"].startswith(one_turn[0].thinking[:40])


def test_export_thinking_needs_a_wrapper(tmp_path):
    data = config_dict(tmp_path)
    data["sft"] = {"export": {"thinking": True}}
    out = run_cli("build", "--config", str(write_config(tmp_path, data)), "--dry-run", "--json")
    assert out.returncode == 2 and "needs a reasoning_wrapper" in out.stderr
