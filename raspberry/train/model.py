"""The base model of a training: found (a folder, a GGUF file, a Hub id) and loaded with its
tokenizer by transformers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from raspberry.errors import RaspberryError

INSTALL = "pip install 'raspberry[train]' (with the torch build your machine needs)"


def require_train_extra() -> None:
    """One line naming the install command when the train extra is missing."""
    try:
        import peft  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
        import trl  # noqa: F401
    except ImportError as exc:
        raise RaspberryError(
            f"training needs the train extra ({exc.name} is not installed): {INSTALL}"
        ) from None


def locate(base: str, config_dir: Path) -> tuple[str, str | None]:
    """(a model folder or Hub id, a GGUF file name in that folder or None)."""
    path = Path(base).expanduser()
    path = path if path.is_absolute() else (config_dir / path).resolve()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise RaspberryError(f"train.base_model: the GGUF file {path} does not exist")
        return str(path.parent), path.name
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise RaspberryError(
                f"train.base_model: {path} has no config.json: not a model folder in Hugging "
                "Face format (give such a folder, a .gguf file or a Hub id)"
            )
        return str(path), None
    if path.exists():
        raise RaspberryError(f"train.base_model: {path} is neither a model folder nor a .gguf file")
    if base.count("/") == 1 and not base.startswith((".", "/", "~")):
        return base, None  # a Hub id: transformers fetches it where the network allows
    raise RaspberryError(
        f"train.base_model: {path} does not exist; give a model folder, a .gguf file or a Hub id"
    )


def load(base: str, gguf: str | None, dtype: Any) -> tuple[Any, Any]:
    """The model and its tokenizer (a pad token set)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    extra = {"gguf_file": gguf} if gguf else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(base, **extra)
        model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype, **extra)
    except (OSError, ValueError, KeyError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RaspberryError(f"train.base_model: cannot load {base}: {first}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer
