"""The SimpleBench-style source (issue 32): seeded generators of four kinds, six options and
one right letter that the mcq check reads, the pattern-matching trap among the wrong ones; its
questions decontaminated against a SimpleBench-format file like every source's; the writer's
styles for the same kinds."""

from __future__ import annotations

import json
import random
import re

import pytest
from conftest import run_stage, source_rows
from test_questions import build_config

from raspberry.stages.candidates import simplebench_style
from raspberry.stages.candidates.config import QuestionsConfig, TaxonomyConfig
from raspberry.stages.candidates.simplebench_style import arithmetic, physical, tracking
from raspberry.stages.candidates.simplebench_style.registry import GENERATORS, register
from raspberry.verify import check


def _options(prompt: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-F])\. (.*)$", prompt, re.M))


def test_every_kind_has_six_options_one_right_and_the_trap_wrong():
    cfg = QuestionsConfig(seed=3, shards=2, simplebench_style={"count": 40})
    rows = (
        source_rows(simplebench_style.SPEC, cfg, 0)[0]
        + source_rows(simplebench_style.SPEC, cfg, 1)[0]
    )
    assert len(rows) == 40 and len({q.id for q in rows}) == 40
    assert {q.task for q in rows} == set(GENERATORS)
    # Every kind in every shard, the same questions from the same config.
    assert {q.task for q in source_rows(simplebench_style.SPEC, cfg, 1)[0]} == set(GENERATORS)
    assert [q.prompt for q in source_rows(simplebench_style.SPEC, cfg, 0)[0]] == [
        q.prompt for q in rows[:20]
    ]
    for q in rows:
        options = _options(q.prompt)
        assert list(options) == list("ABCDEF") and len(set(options.values())) == 6
        spec = json.loads(q.verification)
        assert spec == {"kind": "mcq", "reference": q.reference_answer}
        assert check(spec, f"Thinking.\n\nFinal answer: {q.reference_answer}").passed
        wrong = next(letter for letter in options if letter != q.reference_answer)
        assert not check(spec, f"Final answer: {wrong}").passed


@pytest.mark.parametrize("seed", range(12))
def test_the_right_answers_are_right(seed):
    """Worked out from each question's text, independently of the generators."""
    rng = random.Random(seed)
    item = tracking.make(rng, tracking.TrackingConfig())
    fell = re.search(r"carries the \w+ to (.+?), turns it upside down", item.question)[1]
    assert item.options[0] == f"on {fell}"
    item = physical.make(rng, physical.PhysicalConfig())
    assert "frying" in item.question and item.options[0] == "0"
    item = arithmetic.make(rng, arithmetic.ArithmeticConfig())
    under = re.search(r"(\d+) rungs are under water", item.question)[1]
    assert "floating" in item.question and item.options[0] == under


def test_a_generator_is_checked_when_registered():
    with pytest.raises(ValueError, match="already registered"):
        register("tracking", tracking.make, tracking.TrackingConfig)
    with pytest.raises(TypeError):
        register("broken", "not callable", tracking.TrackingConfig)  # type: ignore[arg-type]


def test_its_questions_are_decontaminated_against_a_simplebench_file(tmp_path):
    cfg = QuestionsConfig(seed=1, shards=1, simplebench_style={"count": 8})
    leaked = source_rows(simplebench_style.SPEC, cfg, 0)[0][2]
    bench = tmp_path / "simplebench.json"
    item = {"question_id": 7, "prompt": leaked.prompt, "answer": leaked.reference_answer}
    bench.write_text(json.dumps({"eval_data": [item]}))
    questions = {"seed": 1, "shards": 1, "simplebench_style": {"count": 8},
                 "filters": {"decontamination": {"benchmarks": [str(bench)]}}}  # fmt: skip
    config = build_config(tmp_path, questions)
    rows, _ = run_stage("candidates", config, None)
    dropped = {q.id: q for q in rows if not q.kept}
    assert leaked.id in dropped and len(dropped) < len(rows)
    # Questions of its kind share its long runs of words (the options): dropped with it.
    assert all(q.task == leaked.task and q.drop_reason == "contaminated" for q in dropped.values())
    assert "simplebench.json question 7" in dropped[leaked.id].drop_detail


def test_the_writer_can_write_the_same_kinds():
    taxonomy = TaxonomyConfig(domains={"d": ["s"]}, simplebench_styles=True)
    styles = taxonomy.all_styles()
    assert {"sb_tracking", "sb_physical", "sb_social", "sb_arithmetic"} <= set(styles)
    assert all("exactly one right" in styles[s] and "Fair means" in styles[s]
               for s in styles if s.startswith("sb_"))  # fmt: skip
    assert set(TaxonomyConfig(domains={"d": ["s"]}).all_styles()).isdisjoint(styles.keys() - {
        "word_problem", "trick_mcq", "constraint_puzzle"})  # fmt: skip
