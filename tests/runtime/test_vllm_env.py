"""vLLM process defaults: env set where unset; only routine per-request / per-step / per-start
lines dropped; torch's C++ warnings off in engine processes."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from rollout.engine_config import EngineConfig
from rollout.worker import worker_env
from runtime.log_filters import DropMessages
from runtime.vllm_env import (
    CPU_DEFAULTS,
    ENGINE_PROCESS_ENV,
    ROUTINE_MESSAGES,
    apply_vllm_cpu_defaults,
    engine_process_env,
)

Capture = Callable[[str, Callable[[logging.Logger], None]], list[str]]


def test_defaults_keep_what_the_user_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "512")
    applied = apply_vllm_cpu_defaults()
    assert applied["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "512"
    assert set(CPU_DEFAULTS) <= set(applied)


# Each dropped message as vLLM 0.32 logs it: (logger, format string, args).
ROUTINE_LINES: list[tuple[str, str, tuple]] = [
    (
        "vllm.v1.worker.cpu_worker",
        "CPU backend doesn't allow to use `torch.set_num_threads` after the thread binding, "
        "skip it.",
        (),
    ),
    *(
        (
            "vllm.v1.worker.cpu_worker",
            "%s is not found in LD_PRELOAD. For best performance, please follow the section `set "
            "LD_PRELOAD` in https://docs.vllm.ai/en/latest/getting_started/installation/cpu/ to "
            "setup required pre-loaded libraries.",
            (lib,),
        )
        for lib in ("libiomp", "libtcmalloc")
    ),
    ("vllm.v1.core.block_pool", "Successfully reset prefix cache", ()),
    ("vllm.platforms.cpu", "Triton is not installed. triton-cpu is expected on x86 CPUs.", ()),
    (
        "vllm.platforms.cpu",
        "Reset SSM cache type to float32 for accelerated GDN mamba backend '%s'.",
        ("none",),
    ),
    (
        "vllm.config.vllm",
        "Model Runner V2 requires Triton; using the V1 model runner instead.",
        (),
    ),
    (
        "vllm.config.vllm",
        "Enforce eager set, disabling torch.compile, CUDAGraphs, and JIT kernel warmup. This is "
        "equivalent to setting -cc.mode=none -cc.cudagraph_mode=none and "
        "--kernel_config.enable_jit_warmup=False",
        (),
    ),
    (
        "vllm.config.vllm",
        "Inductor compilation was disabled by user settings, optimizations settings that are only "
        "active during inductor compilation will be ignored.",
        (),
    ),
    (
        "vllm.engine.arg_utils",
        "The global random seed is set to %d. Since VLLM_ENABLE_V1_MULTIPROCESSING is set to "
        "False, this may affect the random state of the Python process that launched vLLM.",
        (0,),
    ),
]

# Lines the same loggers log that must still show.
KEPT_LINES: dict[str, str] = {
    "vllm.v1.worker.cpu_worker": "KV cache is too small",
    "vllm.v1.core.block_pool": "Failed to reset prefix cache because some blocks are not freed yet",
    "vllm.platforms.cpu": "Only float32, float16, and bfloat16 are supported on CPU",
    "vllm.config.vllm": "Async scheduling is not supported",
    "vllm.engine.arg_utils": "The model's max seq len is larger than the KV cache",
}


def test_every_routine_message_is_tested() -> None:
    assert {name for name, _, _ in ROUTINE_LINES} == set(ROUTINE_MESSAGES) == set(KEPT_LINES)
    for name, fragments in ROUTINE_MESSAGES.items():
        for fragment in fragments:
            assert any(n == name and fragment in fmt for n, fmt, _ in ROUTINE_LINES), fragment


@pytest.mark.parametrize(
    ("name", "fmt", "args"),
    ROUTINE_LINES,
    ids=[f"{name.rsplit('.', 1)[-1]}-{i}" for i, (name, _, _) in enumerate(ROUTINE_LINES)],
)
def test_only_the_routine_line_is_dropped(
    name: str, fmt: str, args: tuple, logger_records: Capture
) -> None:
    apply_vllm_cpu_defaults()
    apply_vllm_cpu_defaults()  # idempotent: one filter per logger
    logger = logging.getLogger(name)
    assert sum(isinstance(f, DropMessages) for f in logger.filters) == 1

    def emit(logger: logging.Logger) -> None:
        logger.warning(fmt, *args)
        logger.warning(KEPT_LINES[name])

    assert logger_records(name, emit) == [KEPT_LINES[name]]


def test_engine_process_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TORCH_CPP_LOG_LEVEL", raising=False)
    assert engine_process_env() == ENGINE_PROCESS_ENV == {"TORCH_CPP_LOG_LEVEL": "ERROR"}
    assert worker_env(EngineConfig(model="m"))["TORCH_CPP_LOG_LEVEL"] == "ERROR"
    assert "TORCH_CPP_LOG_LEVEL" not in worker_env(EngineConfig(model="m", engine="hf"))
    monkeypatch.setenv("TORCH_CPP_LOG_LEVEL", "WARNING")  # the user's value wins
    assert worker_env(EngineConfig(model="m"))["TORCH_CPP_LOG_LEVEL"] == "WARNING"


@pytest.mark.e2e
def test_engine_process_env_drops_the_numa_notice() -> None:
    """vLLM's CPU worker binds memory with its own C++ op, which warns through torch's C++ log
    (no Python filter sees it); started with `engine_process_env()` the process prints nothing."""
    code = "import torch, vllm._C\ntorch.ops._C.init_cpu_memory_env([0])\nprint('bound')"

    def stderr(extra: dict[str, str]) -> str:
        env = {k: v for k, v in os.environ.items() if k != "TORCH_CPP_LOG_LEVEL"}
        done = subprocess.run(
            [sys.executable, "-c", code],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        assert done.stdout.strip() == "bound"
        return done.stderr

    assert "NUMA binding: Using MEMBIND policy" in stderr({})  # the notice the setting drops
    assert "NUMA binding" not in stderr(ENGINE_PROCESS_ENV)
