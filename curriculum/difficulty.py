"""`DifficultySampler`: TimeLens-style difficulty sampling for GRPO. Each step draws prompts
with replacement with probability `curriculum.rules.difficulty_weights` of the student's offline
IoU (Gaussian around 0.05, sigma 0.2, divided by the IoU density in 20 bins); the probabilities
are recomputed with the current student at each refresh (see `curriculum.refresh`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from curriculum.predictions import Predictor
from curriculum.refresh import RefreshingSampler, RefreshPolicy, round_seed
from curriculum.rules import difficulty_weights
from curriculum.scoring import OfflineScorer
from curriculum.uniform import UniformSampler


class WeightedDraws(UniformSampler):
    """Like `UniformSampler`, but each epoch is `size` seeded draws with replacement from
    `probs` instead of a permutation (an epoch is one "round" of the rounds refresh mode)."""

    def __init__(self, probs: np.ndarray, seed: int = 0) -> None:
        self.probs = np.asarray(probs, dtype=np.float64)
        super().__init__(len(self.probs), seed)

    def _permutation(self, epoch: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, epoch])
        return rng.choice(self.size, size=self.size, replace=True, p=self.probs)


class DifficultySampler(RefreshingSampler):
    """Difficulty-weighted draws over the whole training set (dataset indices)."""

    kind = "difficulty"

    def __init__(
        self,
        size: int,
        scorer: OfflineScorer,
        mean: float = 0.05,
        sigma: float = 0.2,
        bins: int = 20,
        policy: RefreshPolicy | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(size, scorer, policy or RefreshPolicy(), seed)
        self.mean, self.sigma, self.bins = mean, sigma, bins
        self.student_ious: np.ndarray | None = None
        self.probs: np.ndarray | None = None

    def _reselect(self, student: Predictor | None) -> dict[str, Any]:
        """Score the student now and turn its IoUs into sampling probabilities."""
        self.student_ious = self.scorer.student_ious(student)
        self.probs = difficulty_weights(self.student_ious, self.mean, self.sigma, self.bins)
        return {
            "pool": self.size,
            "student_iou": float(self.student_ious.mean()),
            "expected_iou": float(self.probs @ self.student_ious),  # of a drawn prompt
        }

    def _make_walk(self) -> UniformSampler:
        assert self.probs is not None
        return WeightedDraws(self.probs, seed=round_seed(self.seed, self.round))

    def _dataset_index(self, i: int) -> int:
        return i

    def _selection_state(self) -> dict[str, Any]:
        return {"probs": [float(p) for p in self.probs] if self.probs is not None else None}

    def _restore_selection(self, state: dict[str, Any]) -> None:
        self.probs = np.asarray(state["probs"], dtype=np.float64)
