"""Process environment for vLLM engines, set before `vllm` is imported."""

from __future__ import annotations

import os

from runtime.log_filters import drop_logger_messages, quiet_library_noise

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


# Set at the start of a vLLM engine's own process (a Ray worker's environment: torch reads it
# once, when it is imported), where a value set in the launching process wins. torch's C++
# warnings bypass Python's warning filters and logging, so only their level can drop one: in an
# engine process the one that shows is vLLM's "NUMA binding: Using MEMBIND policy ..." notice
# (a TORCH_WARN in its CPU worker, once per engine start). C++ errors still raise; set
# TORCH_CPP_LOG_LEVEL=WARNING to see the warnings again.
ENGINE_PROCESS_ENV: dict[str, str] = {"TORCH_CPP_LOG_LEVEL": "ERROR"}


def engine_process_env() -> dict[str, str]:
    """`ENGINE_PROCESS_ENV` for a new engine process, with values set here winning."""
    return {key: os.environ.get(key, value) for key, value in ENGINE_PROCESS_ENV.items()}


# Lines vLLM logs that say nothing actionable, by logger (fragments of the unformatted message):
# - per request / per step: the CPU worker replaces torch.set_num_threads with a stub that warns,
#   and its multimodal renderer calls it around every request (two lines per video prompt,
#   thousands per run); the block pool announces every prefix-cache reset, which a weight sync
#   does once per training step;
# - per engine start: the CPU worker's advice to LD_PRELOAD libiomp / libtcmalloc (a tuning
#   step of vLLM's CPU guide; torch here runs on its own GNU OpenMP); "Triton is not installed"
#   and "Model Runner V2 requires Triton" (the CPU install removes the CUDA Triton on purpose,
#   README "Install details"); notices that restate settings chosen here (enforce_eager, hence
#   no Inductor; the seed of an in-process engine core) or that concern models this project does
#   not run (the Mamba SSM cache type).
# Only these messages are dropped; everything else those loggers say passes.
ROUTINE_MESSAGES: dict[str, tuple[str, ...]] = {
    "vllm.v1.worker.cpu_worker": (
        "CPU backend doesn't allow to use `torch.set_num_threads`",
        "is not found in LD_PRELOAD",
    ),
    "vllm.v1.core.block_pool": ("Successfully reset prefix cache",),
    "vllm.platforms.cpu": (
        "Triton is not installed. triton-cpu is expected",
        "Reset SSM cache type to float32",
    ),
    "vllm.config.vllm": (
        "Model Runner V2 requires Triton; using the V1 model runner",
        "Enforce eager set, disabling torch.compile",
        "Inductor compilation was disabled by user settings",
    ),
    "vllm.engine.arg_utils": ("Since VLLM_ENABLE_V1_MULTIPROCESSING is set to False",),
}


def quiet_routine_vllm_messages() -> None:
    """Install (once per process) the filters that drop vLLM's routine lines, and the library
    noise filters of `runtime.log_filters`."""
    quiet_library_noise()
    drop_logger_messages(ROUTINE_MESSAGES)


def apply_vllm_cpu_defaults(overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Set vLLM's CPU environment defaults where the user has not set them; return what applies."""
    quiet_routine_vllm_messages()
    applied: dict[str, str] = {}
    for key, value in {**CPU_DEFAULTS, **(overrides or {})}.items():
        os.environ.setdefault(key, value)
        applied[key] = os.environ[key]
    return applied
