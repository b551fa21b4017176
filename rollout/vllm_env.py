"""Process environment for vLLM engines, set before `vllm` is imported."""

from __future__ import annotations

import logging
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


# Lines vLLM logs once per request or per weight update that say nothing actionable, by logger:
# the CPU worker replaces torch.set_num_threads with a stub that warns, and its multimodal renderer
# calls it around every request (two lines per video prompt, thousands per run); the block pool
# announces every prefix-cache reset, which a weight sync does once per training step. Only these
# messages are dropped; everything else those loggers say passes.
ROUTINE_MESSAGES: dict[str, str] = {
    "vllm.v1.worker.cpu_worker": "CPU backend doesn't allow to use `torch.set_num_threads`",
    "vllm.v1.core.block_pool": "Successfully reset prefix cache",
}


class _DropRoutineMessage(logging.Filter):
    """Drop one logger's routine per-request / per-step message; pass everything else."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def filter(self, record: logging.LogRecord) -> bool:
        return self.message not in str(record.msg)


def quiet_routine_vllm_messages() -> None:
    """Install (once per process) the filters that drop vLLM's routine per-request lines."""
    for name, message in ROUTINE_MESSAGES.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropRoutineMessage) for f in logger.filters):
            logger.addFilter(_DropRoutineMessage(message))


def apply_vllm_cpu_defaults(overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Set vLLM's CPU environment defaults where the user has not set them; return what applies."""
    quiet_routine_vllm_messages()
    applied: dict[str, str] = {}
    for key, value in {**CPU_DEFAULTS, **(overrides or {})}.items():
        os.environ.setdefault(key, value)
        applied[key] = os.environ[key]
    return applied
