"""The `questions:` section: sources, filters, confirmation, difficulty, evolution."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, JsonValue, model_validator

from raspberry.section import Section
from raspberry.stages.candidates.answers import AnswerType


class ReasoningGymTask(Section):
    task: str
    count: int = Field(gt=0)
    # Passed to reasoning_gym.create_dataset as the task's config (difficulty settings).
    params: dict[str, Any] = Field(default_factory=dict)


# What the question writer is asked for in each style; a config may replace or add styles.
DEFAULT_STYLES = {
    "word_problem": "a multi-step word problem whose answer is a single number",
    "trick_mcq": (
        "a SimpleBench-style trick question about spatial, temporal or social reasoning: a "
        "realistic scene with one distracting detail, where common sense (not arithmetic) "
        "decides; six options labelled A) to F), exactly one right; the answer is its letter"
    ),
    "constraint_puzzle": (
        "a writing puzzle whose answers can be checked by a rule, such as 'a 7-word sentence "
        "whose n-th word has n letters'; give the rules and one answer that satisfies them"
    ),
}


# What makes a SimpleBench-style question fair, told to the writer with each of its kinds.
_FAIR = (
    "; six options labelled A) to F), exactly one right, the answer its letter. Fair means: an "
    "attentive adult gets it from the scene alone, without specialist knowledge or a trick of "
    "wording; the distracting detail (numbers, names, a long digression) changes nothing; one "
    "distractor is the answer a pattern-matcher gives, the others are plausible"
)
# The kinds of question SimpleBench holds, as writer styles (`simplebench_styles: true`); the
# procedural source (questions/simplebench_style/) makes the same kinds without a writer.
SIMPLEBENCH_STYLES = {
    "sb_tracking": "a spatio-temporal tracking question: objects and containers moved about, "
    "where only following the scene step by step tells where something ends up" + _FAIR,
    "sb_physical": "a physical common-sense question dressed in arithmetic: counts and rates "
    "that do not matter because of what happens physically (ice melting, things floating)" + _FAIR,
    "sb_social": "a social reasoning question: what someone means or feels, which their "
    "literal words do not say" + _FAIR,
    "sb_arithmetic": "a trick arithmetic question whose numbers do not matter: the situation "
    "makes the answer independent of the computation they invite" + _FAIR,
}


class TaxonomyConfig(Section):
    """The cells questions are written for: domain x subtopic x persona x style x difficulty."""

    domains: dict[str, list[str]] = Field(min_length=1)  # domain -> its subtopics
    personas: list[str] = Field(default_factory=lambda: ["a curious student"], min_length=1)
    styles: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_STYLES), min_length=1)
    difficulties: list[str] = Field(default_factory=lambda: ["hard"], min_length=1)
    # Add SIMPLEBENCH_STYLES to the styles: the writer writes those kinds too.
    simplebench_styles: bool = False

    def all_styles(self) -> dict[str, str]:
        return {**self.styles, **SIMPLEBENCH_STYLES} if self.simplebench_styles else self.styles

    @model_validator(mode="after")
    def _subtopics(self) -> TaxonomyConfig:
        empty = [d for d, subtopics in self.domains.items() if not subtopics]
        if empty:
            raise ValueError(f"domains {empty} have no subtopics")
        return self


class ConfirmConfig(Section):
    # A written reference answer is kept only when enough of `solutions` independent teacher
    # solutions reach it: all of them, or a strict majority.
    solutions: int = Field(3, ge=1)
    rule: Literal["all", "majority"] = "all"


class SynthesisConfig(Section):
    count: int = Field(gt=0)
    taxonomy: TaxonomyConfig
    prompt: str = "question_writer"
    # Tries per question when the writer's JSON is invalid (the error is sent back each time).
    max_attempts: int = Field(3, ge=1)


EvolveOperation = Literal["add_constraints", "add_steps", "make_concrete", "complicate_input"]


class EvolutionConfig(Section):
    rounds: int = Field(1, ge=1)
    # Share of the eligible questions evolved in each round (chosen by seed), and which sources
    # are eligible; each round deepens the previous round's successful evolutions.
    share: float = Field(1.0, gt=0, le=1)
    sources: list[str] = Field(default_factory=lambda: ["synthesis", "files"], min_length=1)
    operations: list[EvolveOperation] = Field(
        default_factory=lambda: [
            "add_constraints",
            "add_steps",
            "make_concrete",
            "complicate_input",
        ],
        min_length=1,
    )
    prompt: str = "evolver"
    max_attempts: int = Field(3, ge=1)


class FileColumns(Section):
    prompt: str = "question"
    answer: str | None = "answer"
    id: str | None = None
    # A column holding a verification spec as JSON (docs/verification.md); wins over answer_type.
    verification: str | None = None
    domain: str | None = None


class QuestionFile(Section):
    path: str  # relative to the config file's folder
    format: Literal["auto", "jsonl", "parquet", "csv"] = "auto"
    columns: FileColumns = FileColumns()
    # How the answer column is checked when no verification column is given.
    answer_type: AnswerType = "exact"
    # Ask the teacher to confirm the file's answers, as for written questions.
    confirm: bool = False


class NearDuplicateConfig(Section):
    enabled: bool = True
    # Jaccard similarity of word n-gram sets at or above which two questions are near-duplicates.
    threshold: float = Field(0.8, gt=0, le=1)
    ngram: int = Field(5, ge=1)
    num_perm: int = Field(128, ge=16)
    # Written, evolved and file questions are also compared as sets of words, which catches
    # rewordings; None turns that off (see docs/questions.md).
    paraphrase_threshold: float | None = Field(0.75, gt=0, le=1)
    # Written, evolved and file questions with the same reference answer and numbers are the same
    # problem reworded when their content words overlap this much (questions/semantic.py);
    # None turns that pass off.
    semantic_overlap: float | None = Field(0.4, gt=0, le=1)
    # With an `embedder` role in models: written, evolved and file questions whose embeddings'
    # cosine similarity reaches this, with the same reference answer (or both without one), are
    # the same problem.
    embedding_similarity: float = Field(0.92, gt=0, le=1)
    # Unsure pairs, which the judge role settles ("the same problem?") in the questions stage:
    # a cosine from unsure_embedding up to embedding_similarity, or the same answer and numbers
    # with content words overlapping from unsure_overlap up to semantic_overlap. judge_unsure:
    # false keeps them all without asking.
    unsure_embedding: float = Field(0.8, gt=0, le=1)
    unsure_overlap: float = Field(0.2, gt=0, le=1)
    judge_unsure: bool = True
    # An n-gram in at least this share of a group's questions (same source and task, 8 or more
    # questions) is boilerplate of a template and does not count (see docs/questions.md).
    boilerplate_share: float = Field(0.5, gt=0, le=1)
    # Build ids (under output_dir) whose kept questions new ones must not repeat.
    earlier_builds: list[str] = Field(default_factory=list)


class DecontaminationConfig(Section):
    # Benchmark files (SimpleBench JSON, JSONL or Parquet), relative to the config's folder.
    benchmarks: list[str] = Field(default_factory=list)
    ngram: int = Field(13, ge=1)
    # A written, evolved or file question is also a reworded benchmark question when it has a
    # benchmark question's answer and numbers and their content words overlap this much; None:
    # n-grams only.
    semantic_overlap: float | None = Field(0.4, gt=0, le=1)
    # With an `embedder` role: the cosine similarity at which a written, evolved or file question
    # with a benchmark question's answer is that question reworded.
    embedding_similarity: float = Field(0.92, gt=0, le=1)


class FiltersConfig(Section):
    min_chars: int = Field(10, ge=0)
    max_chars: int = Field(20000, gt=0)
    drop_figure_references: bool = True
    drop_multi_part: bool = True
    near_duplicates: NearDuplicateConfig = NearDuplicateConfig()
    decontamination: DecontaminationConfig = DecontaminationConfig()


class DifficultyConfig(Section):
    # Pass rate of the student role over `samples` tries; questions outside the band are
    # dropped. The default band drops what the student solves every time (nothing to learn).
    samples: int = Field(4, ge=1)
    min_pass_rate: float = Field(0.0, ge=0, le=1)
    max_pass_rate: float = Field(0.75, ge=0, le=1)
    # Drop a question the student never solves when the teacher, asked `samples` times too,
    # never solves it either (no dialogue would end solved: the samples cost less).
    drop_unsolvable: bool = False


class SimpleBenchStyleConfig(Section):
    """Questions in SimpleBench's manner (questions/simplebench_style/): six options, one right."""

    count: int = Field(ge=1)
    kinds: list[Literal["tracking", "physical", "social", "arithmetic"]] = Field(
        default_factory=lambda: ["tracking", "physical", "social", "arithmetic"], min_length=1
    )


class QuestionsConfig(Section):
    seed: int = 0
    shards: int = Field(1, ge=1)
    reasoning_gym: list[ReasoningGymTask] = Field(default_factory=list)
    synthesis: SynthesisConfig | None = None
    simplebench_style: SimpleBenchStyleConfig | None = None
    evolution: EvolutionConfig | None = None
    files: list[QuestionFile] = Field(default_factory=list)
    # For written and evolved questions, and files marked `confirm`.
    confirm: ConfirmConfig = ConfirmConfig()
    filters: FiltersConfig = FiltersConfig()
    difficulty: DifficultyConfig | None = None
    # Registered sources of your own, by name: their settings, checked by each source's model
    # (sources.py). Left out of the dump when empty, so that configs without them keep their key.
    sources: dict[str, dict[str, JsonValue]] = Field(
        default_factory=dict, exclude_if=lambda sources: not sources
    )

    @model_validator(mode="after")
    def _some_source(self) -> QuestionsConfig:
        if not (
            self.reasoning_gym or self.synthesis or self.files or self.simplebench_style
            or self.sources
        ):  # fmt: skip
            raise ValueError(
                "no question source: give reasoning_gym, synthesis, files, simplebench_style or "
                "a registered source under sources"
            )
        d = self.difficulty
        if d and d.min_pass_rate > d.max_pass_rate:
            raise ValueError("difficulty: min_pass_rate is above max_pass_rate")
        return self
