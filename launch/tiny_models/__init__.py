"""Tiny Qwen3-VL / Qwen2.5-VL models built locally from configs (no hub).

`build_tiny_models(out_dir)` writes ordinary Hugging Face directories that both transformers and
vLLM load: one per (family, size), all sharing one tokenizer so that token-level distillation works.
"""

from launch.tiny_models.build import ModelSpec, build_tiny_model, build_tiny_models
from launch.tiny_models.configs import FAMILIES, SIZES, TinySize

__all__ = [
    "FAMILIES",
    "SIZES",
    "ModelSpec",
    "TinySize",
    "build_tiny_model",
    "build_tiny_models",
]
