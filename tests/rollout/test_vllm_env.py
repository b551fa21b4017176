"""vLLM process defaults: env set where unset; only routine per-request / per-step lines dropped."""

from __future__ import annotations

import logging

import pytest

from rollout.vllm_env import CPU_DEFAULTS, apply_vllm_cpu_defaults


def test_defaults_keep_what_the_user_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "512")
    applied = apply_vllm_cpu_defaults()
    assert applied["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "512"
    assert set(CPU_DEFAULTS) <= set(applied)


def test_only_the_thread_stub_warning_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    apply_vllm_cpu_defaults()
    apply_vllm_cpu_defaults()  # idempotent: one filter
    logger = logging.getLogger("vllm.v1.worker.cpu_worker")
    assert len(logger.filters) == 1
    with caplog.at_level(logging.WARNING, logger="vllm.v1.worker.cpu_worker"):
        logger.warning(
            "CPU backend doesn't allow to use `torch.set_num_threads` after the thread binding, "
            "skip it."
        )
        logger.warning("KV cache is too small")
    assert [r.getMessage() for r in caplog.records] == ["KV cache is too small"]


def test_only_the_prefix_cache_reset_line_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    apply_vllm_cpu_defaults()
    logger = logging.getLogger("vllm.v1.core.block_pool")
    assert len(logger.filters) == 1
    with caplog.at_level(logging.INFO, logger="vllm.v1.core.block_pool"):
        logger.info("Successfully reset prefix cache")
        logger.warning("Failed to reset prefix cache because some blocks are not freed yet")
    assert [r.getMessage() for r in caplog.records] == [
        "Failed to reset prefix cache because some blocks are not freed yet"
    ]
