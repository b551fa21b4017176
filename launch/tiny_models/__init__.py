"""Tiny Qwen3-VL / Qwen2.5-VL models built locally from configs (no hub).

`build_tiny_models(out_dir)` writes ordinary Hugging Face directories that both transformers and
vLLM load: one per (family, size), all sharing one tokenizer so that token-level distillation works.
The builders load on first use, so reading the size presets (e.g. the CLI's choices) does not
import transformers.
"""

from __future__ import annotations

from typing import Any

from launch.tiny_models.configs import FAMILIES, SIZES, TinySize

_BUILDERS = ("ModelSpec", "build_tiny_model", "build_tiny_models")

__all__ = ["FAMILIES", "SIZES", "TinySize", *_BUILDERS]


def __getattr__(name: str) -> Any:
    """The builders of launch.tiny_models.build, imported when first asked for."""
    if name in _BUILDERS:
        from launch.tiny_models import build

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
