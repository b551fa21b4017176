"""Library noise filters (runtime.log_filters): each named warning is dropped, nothing else is."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Iterator

import pytest

from runtime.log_filters import (
    LOGGER_MESSAGES,
    WARNING_FILTERS,
    DropMessages,
    quiet_library_noise,
)


@pytest.fixture
def shown() -> Iterator[list[warnings.WarningMessage]]:
    """The warnings shown while the test runs, with every warning shown ("always") except what
    `quiet_library_noise` drops (its filters go in front)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_library_noise()
        yield caught


def _messages(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught]


def _run_as(module: str, code: str) -> None:
    """Run `code` as if it were module `module` (warnings are attributed to that module)."""
    exec(code, {"__name__": module})


def test_every_filter_is_named_once() -> None:
    names = [rule.name for rule in WARNING_FILTERS]
    assert len(names) == len(set(names)) and all(rule.reason for rule in WARNING_FILTERS)


def test_deepspeed_deprecated_collectives(shown: list[warnings.WarningMessage]) -> None:
    """Filter "deepspeed-deprecated-collectives": torch's own deprecation of the collectives
    DeepSpeed ZeRO calls (the real calls; they warn before they run)."""
    import torch
    import torch.distributed as dist

    for call in (dist.all_gather_into_tensor, dist.reduce_scatter_tensor):
        # Without a process group they raise; an in-process vLLM engine leaves a 1-rank one.
        with contextlib.suppress(ValueError):
            call(torch.zeros(2), torch.zeros(2))
    assert _messages(shown) == []
    # The same message attributed to another module, and another FutureWarning from the
    # wrapper's module, still show.
    message = "`torch.distributed.all_gather_into_tensor` is deprecated. Please use x instead."
    warnings.warn_explicit(message, FutureWarning, "x.py", 1, module="deepspeed.comm.torch")
    warnings.warn_explicit("other", FutureWarning, "c.py", 1, "torch.distributed.c10d_logger")
    assert _messages(shown) == [message, "other"]


def test_vllm_dispatcher_reduce_op(shown: list[warnings.WarningMessage]) -> None:
    """Filter "vllm-dispatcher-reduce-op": torch's deprecated `reduce_op` alias touched from vLLM's
    kernel dispatcher (the real alias, read as the dispatcher reads it) is dropped; touched from
    anywhere else it still warns."""
    code = "import torch.distributed as d\nhasattr(d.reduce_op, '__dict__')"
    _run_as("vllm.triton_utils.dispatcher", code)
    assert _messages(shown) == []
    _run_as("vllm.triton_utils.dispatcher_extra", code)
    _run_as("my_module", code)
    assert len(shown) == 2 and all("reduce_op` is deprecated" in m for m in _messages(shown))


def test_warning_filters_are_installed_once() -> None:
    with warnings.catch_warnings():
        quiet_library_noise()
        before = list(warnings.filters)
        quiet_library_noise()
        assert warnings.filters == before


@pytest.mark.parametrize(
    ("name", "noise", "kept"),
    [
        # torch, once per custom op that vLLM registers, with Triton removed on purpose
        (
            "torch._library.triton",
            "Triton not available, find_triton_kernels = []",
            "Triton kernel lookup failed",
        ),
        # DeepSpeed, once per learner rank, on a machine without CUDA
        (
            "DeepSpeed",
            "Setting accelerator to CPU. If you have GPU or other accelerator, we were unable to "
            "detect it.",
            "Setting accelerator to cuda",
        ),
    ],
)
def test_logger_messages_dropped(
    name: str, noise: str, kept: str, logger_records: Callable[..., list[str]]
) -> None:
    quiet_library_noise()
    quiet_library_noise()  # idempotent: one filter per logger
    assert sum(isinstance(f, DropMessages) for f in logging.getLogger(name).filters) == 1

    def emit(logger: logging.Logger) -> None:
        logger.warning(noise)
        logger.warning(kept)

    assert logger_records(name, emit) == [kept]


def test_every_logger_message_is_tested() -> None:
    tested = {"torch._library.triton", "DeepSpeed"}
    assert set(LOGGER_MESSAGES) == tested


def test_transformers_progress_bars_are_off_after_quieting() -> None:
    """Workers and ranks load and save models often; their transformers bars are turned off."""
    from transformers.utils import logging as transformers_logging

    from runtime.log_filters import quiet_library_noise

    transformers_logging.enable_progress_bar()
    try:
        assert transformers_logging.is_progress_bar_enabled()
        quiet_library_noise()
        assert not transformers_logging.is_progress_bar_enabled()
    finally:
        transformers_logging.enable_progress_bar()
