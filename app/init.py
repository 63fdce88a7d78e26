"""`raspberry init DIR`: a starter project, copied out of the installed package.

DIR/raspberry.yaml is the offline demo (it runs as is, from any folder); beside it the prompts it
reads, a sample benchmark file for decontamination, a sample question file, and the
real-provider configs under configs/ (their prompts_dir, ../prompts, is DIR/prompts).
"""

from __future__ import annotations

import argparse
from importlib.resources import files
from pathlib import Path

from raspberry.errors import RaspberryError

DEMO_PROMPTS_DIR = "prompts_dir: ../prompts"  # the demo's line in the repository's configs/


def init_project(folder: Path) -> list[Path]:
    """Write the starter project into `folder` (new or empty of it); return what was written."""
    target = folder / "raspberry.yaml"
    if target.exists():
        raise RaspberryError(f"{target} exists; give a new folder, or remove it first")
    if folder.exists() and not folder.is_dir():
        raise RaspberryError(f"{folder} is a file; give a folder for the starter project")
    configs, prompts = files("raspberry_configs"), files("raspberry_prompts")
    demo = configs.joinpath("demo.yaml").read_text(encoding="utf-8")
    if DEMO_PROMPTS_DIR not in demo:
        raise RuntimeError("the packaged demo config does not name its prompts as expected")
    wanted = {
        target: demo.replace(DEMO_PROMPTS_DIR, "prompts_dir: prompts"),
        **{
            folder / name: configs.joinpath(name).read_text(encoding="utf-8")
            for name in ("simplebench_sample.json", "questions.jsonl")
        },
        **{
            folder / "configs" / name: configs.joinpath(name).read_text(encoding="utf-8")
            for name in ("claude.yaml", "openai.yaml")
        },
        **{
            folder / "prompts" / p.name: p.read_text(encoding="utf-8")
            for p in prompts.iterdir()
            if p.name.endswith(".md")
        },
    }
    try:
        for path, text in wanted.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise RaspberryError(f"cannot write the starter project in {folder}: {exc}") from None
    return list(wanted)


def cmd_init(args: argparse.Namespace) -> int:
    folder = Path(args.folder)
    written = init_project(folder)
    config = folder / "raspberry.yaml"
    print(f"wrote {len(written)} files under {folder}")
    print(f"  {config}: the offline demo (simulated models, no key); run it with")
    print(f"    raspberry build --config {config}")
    print(f"  {folder / 'questions.jsonl'}: sample questions; use your own with")
    print("    questions: {files: [{path: questions.jsonl, answer_type: numeric}]}")
    print(f"  {folder / 'configs'}: configs for Anthropic and OpenAI (set their API keys first)")
    return 0
