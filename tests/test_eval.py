import asyncio

from conftest import ROOT, config_dict, run_cli, write_config

from raspberry.benchmark_files import read_benchmark
from raspberry.build_files.records import EvalRow
from raspberry.evaluate import evaluate, summarize
from raspberry.llm import Gateway
from raspberry.prompts import load_prompt

SAMPLE = ROOT / "configs" / "simplebench_sample.json"


def _row(run: int, qid: str, correct: bool) -> EvalRow:
    return EvalRow(
        run=run,
        model="m",
        model_ref="p/m",
        question_id=qid,
        reference="A",
        response="",
        correct=correct,
        reason="",
        tokens_out=0,
    )


def test_summarize_statistics():
    rows = [_row(r, str(q), (q + r) % 3 != 0) for r in range(3) for q in range(30)]
    s = summarize(rows, resamples=1000)
    assert s["questions"] == 30 and s["runs"] == 3
    assert s["accuracy_per_run"] == [round(20 / 30, 4)] * 3
    assert s["ci95"][0] <= s["mean"] <= s["ci95"][1]
    assert summarize([_row(0, str(q), True) for q in range(5)])["ci95"] == [1.0, 1.0]


def test_evaluate_two_models_side_by_side(make_config, sim_url):
    base = {"provider": "sim_anthropic", "model": "sim-teacher"}  # no seed: every run alike
    config = make_config(eval={"models": {"base": base}})
    items = read_benchmark(SAMPLE)
    system = load_prompt(config.prompts_path(), "eval_system", set())

    async def run(model):
        async with Gateway(config.llm, sim_url) as gw:
            return await evaluate(gw, model, items, 3, system)

    tuned, base_rows = asyncio.run(run("teacher")), asyncio.run(run("base"))
    assert len(tuned) == len(base_rows) == 36
    assert {r.model_ref for r in base_rows} == {"sim_anthropic/sim-teacher"}
    # The arithmetic questions are computable: a run gets them right unless its attempt slips.
    computable = {i.id for i in items[:8]}
    right = [r for r in tuned if r.question_id in computable and r.correct]
    assert 8 <= len(right) <= 24
    assert all(r.reason.startswith("chose") for r in tuned)
    per_run = summarize(base_rows)["accuracy_per_run"]
    assert len(set(per_run)) == 1  # the unseeded provider gives the same answers every run


def test_eval_bad_input_exits_2(tmp_path):
    config = write_config(tmp_path, config_dict(tmp_path))
    bad = tmp_path / "bad.json"
    bad.write_text('{"eval_data": [{"question_id": 3, "prompt": "Q"}]}')
    for args, words in [
        (["--benchmark", str(bad)], "question_id 3"),
        (["--benchmark", str(SAMPLE), "--role", "student"], "no model 'student'"),
        (["--benchmark", str(tmp_path / "missing.json")], "not found"),
    ]:
        proc = run_cli("eval", "--config", str(config), *args)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0]


def test_a_paired_comparison_gives_the_difference_with_its_interval():
    from raspberry.build_files.records import EvalRow
    from raspberry.evaluate import compare, summarize

    def rows(model: str, right: set[int], readable: bool = True) -> list[EvalRow]:
        return [
            EvalRow(run=0, model=model, model_ref=model, question_id=f"q{i}", reference="1",
                    response="", correct=i in right, reason="", tokens_out=10,
                    group="odd" if i % 2 else "even", readable=readable or i in right)
            for i in range(40)
        ]  # fmt: skip

    base, tuned = rows("base", set(), readable=False), rows("tuned", set(range(0, 40, 2)))
    pair = compare(base, tuned, resamples=500)
    low, high = pair["difference_ci95"]
    assert pair["questions"] == 40 and pair["difference"] == 0.5 and 0.3 < low < 0.5 < high < 0.7
    assert pair["format_difference"] == 1.0
    summary = summarize(tuned, resamples=500)
    assert summary["by_group"] == {"even": 1.0, "odd": 0.0} and summary["format"] == 1.0
    assert summary["mean_tokens_out"] == 10.0
