"""Uniform sampling without replacement: a seeded permutation per epoch."""

from __future__ import annotations

from typing import Any

import numpy as np


class UniformSampler:
    """Walks seeded per-epoch permutations of range(size); deterministic by (seed, epoch)."""

    def __init__(self, size: int, seed: int = 0) -> None:
        if size < 1:
            raise ValueError(f"cannot sample from an empty dataset (size {size})")
        self.size, self.seed = size, seed
        self.epoch, self.position = 0, 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.size)

    def next_indices(self, count: int) -> list[int]:
        """The next `count` indices; a new epoch starts with a fresh permutation."""
        out: list[int] = []
        while len(out) < count:
            if self.position >= self.size:
                self.epoch += 1
                self.position = 0
                self._order = self._permutation(self.epoch)
            take = min(count - len(out), self.size - self.position)
            out.extend(int(i) for i in self._order[self.position : self.position + take])
            self.position += take
        return out

    def state_dict(self) -> dict[str, Any]:
        """Epoch and position within it (the permutation is recomputed from the seed)."""
        return {
            "kind": "uniform",
            "size": self.size,
            "seed": self.seed,
            "epoch": self.epoch,
            "position": self.position,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a saved state; the dataset size and seed must match."""
        if state.get("size") != self.size or state.get("seed") != self.seed:
            raise ValueError(
                f"sampler state is for size {state.get('size')} / seed {state.get('seed')}, "
                f"this run has size {self.size} / seed {self.seed}"
            )
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._order = self._permutation(self.epoch)
