"""Token-balanced splitting of a batch over workers, and in-order reassembly.

The split is the rollout group's (`rollout.group.balanced_split`: largest cost first onto the
least-loaded worker), re-exported as `split_by_tokens`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from runtime.partition import balanced_split as split_by_tokens

__all__ = ["reassemble", "split_by_tokens"]

T = TypeVar("T")


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
