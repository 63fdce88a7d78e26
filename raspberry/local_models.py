"""A model on this machine, found (a folder in Hugging Face format, a GGUF file, a Hub id) and
loaded with its tokenizer by transformers: the base of a training (raspberry/train/) and the
weights of a `kind: local` provider (raspberry/llm/local.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from raspberry.digests import file_digest
from raspberry.errors import RaspberryError

INSTALL = "pip install 'raspberry[train]' (with the torch build your machine needs)"


def require_train_extra(what: str = "training") -> None:
    """One line naming the install command when the train extra is missing."""
    try:
        import peft  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
        import trl  # noqa: F401
    except ImportError as exc:
        raise RaspberryError(
            f"{what} needs the train extra ({exc.name} is not installed): {INSTALL}"
        ) from None


def locate(base: str, config_dir: Path, field: str = "train.base_model") -> tuple[str, str | None]:
    """(a model folder or Hub id, a GGUF file name in that folder or None); `field` names the
    config key in errors."""
    path = Path(base).expanduser()
    path = path if path.is_absolute() else (config_dir / path).resolve()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise RaspberryError(f"{field}: the GGUF file {path} does not exist")
        return str(path.parent), path.name
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise RaspberryError(
                f"{field}: {path} has no config.json: not a model folder in Hugging "
                "Face format (give such a folder, a .gguf file or a Hub id)"
            )
        return str(path), None
    if path.exists():
        raise RaspberryError(f"{field}: {path} is neither a model folder nor a .gguf file")
    if base.count("/") == 1 and not base.startswith((".", "/", "~")):
        return base, None  # a Hub id: transformers fetches it where the network allows
    raise RaspberryError(
        f"{field}: {path} does not exist; give a model folder, a .gguf file or a Hub id"
    )


def _loaded(what: Any, base: str, gguf: str | None, field: str, **options: Any) -> Any:
    try:
        return what.from_pretrained(base, **({"gguf_file": gguf} if gguf else {}), **options)
    except (OSError, ValueError, KeyError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RaspberryError(f"{field}: cannot load {base}: {first}") from None


def load_tokenizer(base: str, gguf: str | None, field: str = "train.base_model") -> Any:
    """The model's tokenizer, which must have a chat template (a pad token set)."""
    from transformers import AutoTokenizer

    tokenizer = _loaded(AutoTokenizer, base, gguf, field)
    if not tokenizer.chat_template:
        raise RaspberryError(f"{field}: {base} has no chat template; use an instruct (chat) model")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load(
    base: str, gguf: str | None, dtype: Any, field: str = "train.base_model"
) -> tuple[Any, Any]:
    """The model and its tokenizer."""
    import transformers
    from transformers import AutoModelForCausalLM

    transformers.utils.logging.disable_progress_bar()  # the caller says what it is doing

    tokenizer = load_tokenizer(base, gguf, field)
    model = _loaded(AutoModelForCausalLM, base, gguf, field, dtype=dtype)
    if gguf:
        # transformers dequantises a GGUF file into ordinary weights, yet marks the model as
        # quantized, which its Trainer refuses to train: the mark goes, the weights are plain.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    return model, tokenizer


def weights_fingerprint(base: str, gguf: str | None) -> str:
    """What identifies the weights, for the request cache: the GGUF file's digest, or the
    digests of a folder's weight and config files (a retrained model is another model)."""
    if gguf:
        return file_digest(Path(base) / gguf)
    folder = Path(base)
    if not folder.is_dir():
        return base  # a Hub id: its name is all there is to go on
    files = sorted(
        p for pattern in ("*.safetensors", "*.bin", "config.json") for p in folder.glob(pattern)
    )
    joined = "|".join(f"{p.name}:{file_digest(p)}" for p in files)
    return hashlib.sha256(joined.encode()).hexdigest()[:32]
