"""Questions written by an LLM, one per seeded cell of the taxonomy in the config.

Item j of the source draws its cell (domain, subtopic, persona, style, difficulty) from a random
generator seeded with (seed, j), and asks the question_writer with sample index j, so the same
config always asks the same requests (and a rerun finds them in the request cache). Shard s of n
writes items s, s+n, s+2n, ... The reference answers are confirmed later (see confirm.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from raspberry.build_files.records import Lineage, Question
from raspberry.llm import Gateway
from raspberry.llm.progress import gather_rows
from raspberry.prompts import Prompt
from raspberry.stages.candidates.answers import spec_json
from raspberry.stages.candidates.config import QuestionsConfig, TaxonomyConfig
from raspberry.stages.candidates.sources import Source, SourceContext
from raspberry.stages.candidates.text import question_id
from raspberry.stages.candidates.writer import WrittenQuestion, write
from raspberry.stages.estimate import Context, Line, line

SOURCE = "synthesis"
ROLE = "question_writer"
PROMPT = "question_writer_prompt"
PLACEHOLDERS = {"domain", "subtopic", "persona", "style", "style_description", "difficulty"}


@dataclass(frozen=True)
class Cell:
    domain: str
    subtopic: str
    persona: str
    style: str
    difficulty: str


def cell_for(taxonomy: TaxonomyConfig, seed: int, item: int) -> Cell:
    rng = random.Random(f"{seed}/{item}")
    domain = rng.choice(sorted(taxonomy.domains))
    return Cell(
        domain=domain,
        subtopic=rng.choice(taxonomy.domains[domain]),
        persona=rng.choice(taxonomy.personas),
        style=rng.choice(sorted(taxonomy.all_styles())),
        difficulty=rng.choice(taxonomy.difficulties),
    )


async def _one(
    gw: Gateway, cfg: QuestionsConfig, prompt: Prompt, item: int, config_hash: str
) -> Question:
    synthesis = cfg.synthesis
    assert synthesis is not None
    cell = cell_for(synthesis.taxonomy, cfg.seed, item)
    content = prompt.render(
        domain=cell.domain,
        subtopic=cell.subtopic,
        persona=cell.persona,
        style=cell.style,
        style_description=synthesis.taxonomy.all_styles()[cell.style],
        difficulty=cell.difficulty,
    )
    written, reply, attempts = await write(gw, content, prompt.ref, item, synthesis.max_attempts)
    ok = isinstance(written, WrittenQuestion)
    # An item the writer never got right is kept as a dropped row, so every item is accounted for.
    text = written.question.strip() if ok else ""
    qid = question_id(text) if ok else question_id(f"{SOURCE} item {item}: {reply}")
    return Question(
        id=qid,
        source=SOURCE,
        task=cell.style,
        domain=f"{cell.domain}/{cell.subtopic}",
        style=cell.style,
        difficulty=cell.difficulty,
        prompt=text,
        reference_answer=written.reference_answer.strip() if ok else "",
        verification=spec_json(written.spec()) if ok else "{}",
        drop_reason="" if ok else "invalid_writer_output",
        drop_detail="" if ok else str(written),
        lineage=Lineage(
            question_id=qid,
            config_hash=config_hash,
            prompts=[prompt.fingerprint],
            models=[gw.model_ref("question_writer")],
            steps=[f"write item {item} as {cell.persona!r} in {attempts} attempt(s)"],
        ),
    )


async def generate(ctx: SourceContext) -> list[Question]:
    synthesis = ctx.questions.synthesis
    assert synthesis is not None and ctx.gateway is not None
    prompt = ctx.prompts[PROMPT]
    return await gather_rows(
        (f"synthesis item {j}", _one(ctx.gateway, ctx.questions, prompt, j, ctx.config_hash))
        for j in ctx.items(synthesis.count)
    )


def estimate(ctx: Context) -> list[Line]:
    """One question_writer request per written question."""
    synthesis = ctx.config.questions.synthesis
    assert synthesis is not None
    prompt = ctx.prompt(synthesis.prompt) + 40  # the taxonomy cell
    return [
        line(
            "candidates", ROLE, synthesis.count, prompt, ctx.a.out(ROLE), ctx.batched["candidates"]
        )
    ]


SPEC = Source(
    SOURCE,
    generate,
    enabled=lambda questions: questions.synthesis is not None,
    role=ROLE,
    prompts=lambda questions: (
        {PROMPT: (questions.synthesis.prompt, PLACEHOLDERS)} if questions.synthesis else {}
    ),
    planned=lambda questions: questions.synthesis.count if questions.synthesis else 0,
    estimate=estimate,
)
