"""Shared fixtures: the tiny models are built once per session; Ray starts once per session; the
training-loop dataset is written once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Environment for every process the tests start (Ray workers and vLLM engines inherit it).
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from hypothesis import settings as hypothesis_settings

from runtime.log_filters import WARNING_FILTERS
from runtime.vllm_env import apply_vllm_cpu_defaults

apply_vllm_cpu_defaults()

# Property tests and fuzzers draw the same examples on every run by default, so a red run is
# reproducible from the commit alone; VOPD_HYPOTHESIS_PROFILE=explore draws fresh random ones.
hypothesis_settings.register_profile("repeatable", derandomize=True, print_blob=True)
hypothesis_settings.register_profile("explore", derandomize=False, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("VOPD_HYPOTHESIS_PROFILE", "repeatable"))


def pytest_configure(config: pytest.Config) -> None:
    """The library noise filters of runtime.log_filters as pytest `filterwarnings` too: pytest
    restores the warning filters around every test (the set-up of session fixtures included),
    dropping those installed when this file is imported, and re-applies its own each time."""
    for rule in WARNING_FILTERS:
        line = f"ignore:{rule.message}:{rule.category.__name__}:{rule.module}"
        config.addinivalue_line("filterwarnings", line)


def _own_memory_mib() -> tuple[float, float]:
    """This process's resident and peak resident memory (MiB), from /proc (0 elsewhere)."""
    values = {"VmRSS:": 0.0, "VmHWM:": 0.0}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, *rest = line.split()
            if key in values:
                values[key] = float(rest[0]) / 1024
    except OSError:
        pass
    return values["VmRSS:"], values["VmHWM:"]


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    """With VOPD_TEST_MEMORY_LOG=FILE, append each test's id and the pytest process's resident
    and peak memory after it (tab-separated MiB): which tests grow the suite's own process."""
    path = os.environ.get("VOPD_TEST_MEMORY_LOG")
    if path:
        rss, peak = _own_memory_mib()
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(f"{item.nodeid}\t{rss:.0f}\t{peak:.0f}\n")


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding every tiny model (both families, student and teacher), built once."""
    from launch.tiny_models import build_tiny_models

    out = tmp_path_factory.mktemp("tiny_models")
    build_tiny_models(out, seed=0)
    return out


@pytest.fixture(scope="session")
def loop_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The training-loop tests' small synthetic dataset, 8 training and 4 validation videos
    (tests/launch/test_driver.py and the fault runs of tests/reliability/test_faults.py)."""
    from tvg.synth import write_dataset

    out = tmp_path_factory.mktemp("loop_data")
    write_dataset(out, n_train=8, n_val=4, n_test=0, seed=5)
    return out


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray instance shared by the whole test session (2 CPUs, no dashboard)."""
    import ray

    if not ray.is_initialized():
        ray.init(
            num_cpus=2,
            # Teacher actors reserve this custom resource instead of CPUs (tests/teacher_server).
            resources={"teacher": 4},
            include_dashboard=False,
            object_store_memory=200 * 1024 * 1024,
            log_to_driver=True,
            configure_logging=False,
        )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def vllm_engines(tiny_models_dir: Path):
    """In-process vLLM engines (CPU build, float32), one per tiny model, created on first use."""
    from vllm import LLM

    engines: dict[str, LLM] = {}

    def get(name: str) -> LLM:
        if name not in engines:
            # vLLM's CPU platform lets VLLM_CPU_KVCACHE_SPACE (whole GiB) override
            # kv_cache_memory_bytes: leave it out while this engine is built.
            legacy = os.environ.pop("VLLM_CPU_KVCACHE_SPACE", None)
            try:
                engines[name] = _build_llm(LLM, tiny_models_dir / name)
            finally:
                if legacy is not None:
                    os.environ["VLLM_CPU_KVCACHE_SPACE"] = legacy
        return engines[name]

    return get


def _build_llm(llm_class, model_dir: Path):
    """One in-process float32 engine for the tiny model in `model_dir`."""
    return llm_class(
        model=str(model_dir),
        dtype="float32",
        max_model_len=2048,
        seed=0,
        enforce_eager=True,
        limit_mm_per_prompt={"video": 1, "image": 0},
        # Sampled-token log-probs after temperature and the ban of vision placeholders: the
        # distribution the tokens were actually drawn from.
        logprobs_mode="processed_logprobs",
        # The engines live until the session ends (tearing one down breaks vLLM's process-global
        # state): 256 MiB of KV cache each (~250k tokens of a tiny model) instead of the 1 GiB
        # the suite's own process otherwise held once per engine.
        kv_cache_memory_bytes=256 * 1024 * 1024,
    )
