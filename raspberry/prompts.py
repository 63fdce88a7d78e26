"""Prompt templates: one file each in prompts/, with an id and a version in YAML front matter.

A prompt is known by its fingerprint, id@version#<hash of its text>: the text shapes every stage
key and lineage it enters, so an edit without a version bump is still seen (and recomputed).
A request's cache key holds the rendered text itself. Placeholders are written {{name}};
rendering fails if one is left unfilled or unknown.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import yaml
from pydantic import BaseModel

from raspberry.errors import ConfigError

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


class Prompt(BaseModel):
    id: str
    version: int
    text: str

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"

    @property
    def fingerprint(self) -> str:
        return f"{self.ref}#{hashlib.sha256(self.text.encode()).hexdigest()[:12]}"

    def placeholders(self) -> set[str]:
        return set(_PLACEHOLDER.findall(self.text))

    def render(self, **values: str) -> str:
        missing = self.placeholders() - values.keys()
        extra = values.keys() - self.placeholders()
        if missing or extra:
            raise ValueError(
                f"prompt {self.ref}: missing {sorted(missing)}, unknown {sorted(extra)}"
            )
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], self.text)


def load_prompt(prompts_dir: Path, name: str, required: set[str] | None = None) -> Prompt:
    path = prompts_dir / f"{name}.md"
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"prompt file not found: {path} (check prompts_dir and the prompt name in the config)"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read prompt file {path}: {exc.strerror}") from None
    parts = raw.split("---\n", 2)
    if len(parts) != 3 or parts[0].strip():
        raise ConfigError(f"{path}: a prompt starts with '---' front matter holding id and version")
    try:
        meta = yaml.safe_load(parts[1]) or {}
        prompt = Prompt(id=meta["id"], version=meta["version"], text=parts[2].strip())
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"{path}: front matter needs 'id' and an integer 'version' ({exc})"
        ) from None
    if prompt.id != name:
        raise ConfigError(f"{path}: front matter id '{prompt.id}' differs from the file name")
    if required is not None and prompt.placeholders() != required:
        raise ConfigError(
            f"{path}: placeholders {sorted(prompt.placeholders())}, expected {sorted(required)}"
        )
    return prompt
