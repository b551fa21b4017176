"""Compute accounting: an estimate of learner FLOPs and a matmul peak measured on this machine."""

from __future__ import annotations

import time


def measure_matmul_peak(size: int = 512, repeats: int = 20, threads: int = 1) -> float:
    """Float32 matmul throughput (FLOP/s) of one process with `threads` torch threads.

    The denominator of the learner MFU reported in the ledger; measured at start-up on the same
    machine, with the thread count a learner rank uses.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a = torch.randn(size, size)
        b = torch.randn(size, size)
        a @ b  # warm-up
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - start)
    finally:
        torch.set_num_threads(previous)
    return 2.0 * size**3 / best


def learner_flops(
    num_params: int,
    trained_tokens: int,
    extra_forward_tokens: int = 0,
    head_params: int = 0,
    trained_head_tokens: int = 0,
    extra_head_tokens: int = 0,
) -> float:
    """Dense-transformer estimate: 6 N per trained token (forward + backward), 2 N per token of
    forward-only passes (e.g. the log-prob recomputation for the mismatch metric). N is
    `num_params` without the LM head; the head's `head_params` count only at the positions whose
    logits the learner computes (`trained_head_tokens`, `extra_head_tokens`: the completions),
    which with a 151,936-row vocabulary is most of the difference."""
    body = 6.0 * num_params * trained_tokens + 2.0 * num_params * extra_forward_tokens
    return body + 6.0 * head_params * trained_head_tokens + 2.0 * head_params * extra_head_tokens


def mfu(flops: float, seconds: float, peak_flops_per_s: float, num_ranks: int) -> float:
    """Model FLOPs utilisation: achieved FLOP/s over the peak of all ranks together."""
    if seconds <= 0 or peak_flops_per_s <= 0:
        return float("nan")
    return flops / seconds / (peak_flops_per_s * num_ranks)
