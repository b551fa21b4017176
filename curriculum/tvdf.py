"""`TVDFSampler`: trains on the TVDF subset (teacher-reliable, largest disagreement), re-selected
with the current student at each refresh (see `curriculum.refresh` and `curriculum.rules`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from curriculum.predictions import Predictor
from curriculum.refresh import RefreshingSampler, RefreshPolicy, round_seed
from curriculum.rules import Selection, TVDFRule, select_tvdf
from curriculum.scoring import OfflineScorer
from curriculum.uniform import UniformSampler


class TVDFSampler(RefreshingSampler):
    """Seeded per-epoch permutations of the round's TVDF subset (dataset indices)."""

    kind = "tvdf"

    def __init__(
        self,
        size: int,
        scorer: OfflineScorer,
        rule: TVDFRule,
        policy: RefreshPolicy | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(size, scorer, policy or RefreshPolicy(), seed)
        self.rule = rule
        self.subset: list[int] = []
        self.teacher_ious: np.ndarray | None = None
        self.student_ious: np.ndarray | None = None
        self.selection: Selection | None = None

    def _reselect(self, student: Predictor | None) -> dict[str, Any]:
        """Score teacher (once) and student (now), select, and summarise the round."""
        self.teacher_ious = self.scorer.teacher_ious()
        self.student_ious = self.scorer.student_ious(student)
        selection = select_tvdf(
            self.teacher_ious, self.student_ious, self.rule, round_seed(self.seed, self.round)
        )
        if len(selection.indices) == 0:
            raise ValueError(
                f"TVDF kept no training sample: none of {self.size} has a mean teacher IoU >= "
                f"tau_T = {self.rule.tau} (lower curriculum.tau_teacher)"
            )
        self.selection = selection
        self.subset = [int(i) for i in selection.indices]
        kept = selection.delta[selection.indices]
        return {
            "rule": self.rule.rule,
            "selected": len(self.subset),
            "reliable": int(selection.reliable.sum()),
            "pool": self.size,
            "teacher_iou": float(self.teacher_ious.mean()),
            "student_iou": float(self.student_ious.mean()),
            "delta_selected": float(kept.mean()),
        }

    def _make_walk(self) -> UniformSampler:
        return UniformSampler(len(self.subset), seed=round_seed(self.seed, self.round))

    def _dataset_index(self, i: int) -> int:
        return self.subset[i]

    def _selection_state(self) -> dict[str, Any]:
        return {"subset": list(self.subset)}

    def _restore_selection(self, state: dict[str, Any]) -> None:
        self.subset = [int(i) for i in state["subset"]]
