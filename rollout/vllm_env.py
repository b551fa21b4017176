"""Process environment for vLLM engines, set before `vllm` is imported."""

from __future__ import annotations

import os

# Defaults measured on 2-core CPU machines (docs/ARCHITECTURE.md "Runtime settings"):
# - in-process engine core: start-up ~5-10 s instead of ~17 s, and weights pass as tensors;
# - 1 GiB of KV cache suits tiny models;
# - oneDNN's primitive cache (an LRU of 1,024 primitives by default, one set per new input shape)
#   capped at 64: with varying prompt lengths an engine process otherwise grows by ~1 MB per
#   sampling call for hundreds of calls (benchmarks/soak.py; BENCHMARKS.md "Soak (memory)").
CPU_DEFAULTS: dict[str, str] = {
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "ONEDNN_PRIMITIVE_CACHE_CAPACITY": "64",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def apply_vllm_cpu_defaults(overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Set vLLM's CPU environment defaults where the user has not set them; return what applies."""
    applied: dict[str, str] = {}
    for key, value in {**CPU_DEFAULTS, **(overrides or {})}.items():
        os.environ.setdefault(key, value)
        applied[key] = os.environ[key]
    return applied
