"""Splitting a batch of items across workers by cost (rollout engines, teacher workers)."""

from __future__ import annotations

from collections.abc import Sequence


def balanced_split(costs: Sequence[float], num_workers: int) -> list[list[int]]:
    """Assign item indices to workers: largest cost first onto the least-loaded worker.

    Returns one ascending index list per worker (some may be empty when items < workers).
    """
    if num_workers < 1:
        raise ValueError(f"num_workers must be >= 1, got {num_workers}")
    loads = [0.0] * num_workers
    shards: list[list[int]] = [[] for _ in range(num_workers)]
    for i in sorted(range(len(costs)), key=lambda k: (-costs[k], k)):
        w = min(range(num_workers), key=lambda j: (loads[j], len(shards[j]), j))
        shards[w].append(i)
        loads[w] += costs[i]
    return [sorted(s) for s in shards]
