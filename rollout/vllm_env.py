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


# vLLM's CPU worker replaces torch.set_num_threads with a stub that logs a warning, and its
# multimodal renderer calls it around every request: two identical lines per video prompt
# (thousands per run) that say nothing actionable. Only that message is dropped.
_THREAD_STUB_MESSAGE = "CPU backend doesn't allow to use `torch.set_num_threads`"
_CPU_WORKER_LOGGER = "vllm.v1.worker.cpu_worker"


class _DropThreadStubWarning(logging.Filter):
    """Drop the CPU worker's per-request set_num_threads warning; pass everything else."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _THREAD_STUB_MESSAGE not in str(record.msg)


def quiet_cpu_worker_thread_warning() -> None:
    """Install (once per process) the filter that drops vLLM's per-request thread warning."""
    logger = logging.getLogger(_CPU_WORKER_LOGGER)
    if not any(isinstance(f, _DropThreadStubWarning) for f in logger.filters):
        logger.addFilter(_DropThreadStubWarning())


def apply_vllm_cpu_defaults(overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Set vLLM's CPU environment defaults where the user has not set them; return what applies."""
    quiet_cpu_worker_thread_warning()
    applied: dict[str, str] = {}
    for key, value in {**CPU_DEFAULTS, **(overrides or {})}.items():
        os.environ.setdefault(key, value)
        applied[key] = os.environ[key]
    return applied
