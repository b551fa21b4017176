"""Token-balanced splitting of a batch over workers, and in-order reassembly."""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def split_by_tokens(costs: Sequence[int], num_shards: int) -> list[list[int]]:
    """Assign item indices to `num_shards` shards with near-equal total cost.

    Greedy longest-processing-time: items by decreasing cost go to the currently lightest shard.
    Each shard's indices are returned in increasing order; empty shards are kept (as []).
    """
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    heap = [(0, shard) for shard in range(num_shards)]
    shards: list[list[int]] = [[] for _ in range(num_shards)]
    for index in sorted(range(len(costs)), key=lambda i: (-int(costs[i]), i)):
        load, shard = heapq.heappop(heap)
        shards[shard].append(index)
        heapq.heappush(heap, (load + int(costs[index]), shard))
    return [sorted(s) for s in shards]


def reassemble(shards: Sequence[Sequence[int]], results: Sequence[Sequence[T]], n: int) -> list[T]:
    """Put per-shard results back in the original item order (inverse of `split_by_tokens`)."""
    out: list[T | None] = [None] * n
    for indices, values in zip(shards, results, strict=True):
        if len(indices) != len(values):
            raise ValueError(f"shard returned {len(values)} results for {len(indices)} items")
        for index, value in zip(indices, values, strict=True):
            out[index] = value
    missing = [i for i, v in enumerate(out) if v is None]
    if missing:
        raise ValueError(f"no result for items {missing[:10]}")
    return out  # type: ignore[return-value]
