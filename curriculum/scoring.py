"""`OfflineScorer`: the teacher's and the student's offline IoUs on the training prompts, cached.

The teacher predicts with a temporary `RolloutGroup` on the teacher model directory (started only
on a cache miss, shut down afterwards); the student predicts with the rollout group it is given
(the training run's engines, which hold the current weights) or, without one, with a temporary
group on the student model directory. Needs `ray.init()` before any engine is started.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from curriculum.cache import PredictionCache, weights_checksum
from curriculum.predictions import PredictionSettings, Predictor, cached_ious
from rollout.batch import PromptSpec
from rollout.engine_config import EngineConfig
from rollout.group import GroupConfig


def group_checksum(group: Any) -> str:
    """The weights checksum a rollout group's engines report ("" when unknown or they differ)."""
    checksums = getattr(group, "checksums", None)
    if checksums is None:
        return ""
    found = set(checksums())
    return found.pop() if len(found) == 1 else ""


@dataclass
class OfflineScorer:
    """Offline IoUs of teacher (n, k) and student (n,) on `prompts` (see the module docstring).

    dataset: the dataset part of the cache key (`curriculum.cache.dataset_key`).
    cache: where predictions are cached (None: never cached).
    teacher / student: prediction settings of each role.
    teacher_engine / student_engine: engines for temporary groups (the student one is only used
        when `student_ious` gets no group).
    group: resources of a temporary group.
    """

    prompts: Sequence[PromptSpec]
    dataset: str
    cache: PredictionCache | None
    teacher: PredictionSettings
    student: PredictionSettings
    teacher_engine: EngineConfig | None = None
    student_engine: EngineConfig | None = None
    group: GroupConfig = field(default_factory=lambda: GroupConfig(num_workers=1))
    _teacher_ious: np.ndarray | None = None

    def _temporary(self, engine: EngineConfig | None, role: str) -> tuple[Callable[[], Any], list]:
        """A predictor factory that starts a temporary group on `engine`, and its holder list."""
        started: list[Any] = []

        def make() -> Any:
            if engine is None:
                raise ValueError(f"no {role} model configured for offline predictions")
            from rollout.group import RolloutGroup

            started.append(RolloutGroup(engine, self.group))
            return started[-1]

        return make, started

    def _ious(
        self, role: str, weights: str, settings: PredictionSettings, make: Callable[[], Any]
    ) -> np.ndarray:
        return cached_ious(self.cache, role, weights, self.dataset, self.prompts, settings, make)

    def teacher_ious(self) -> np.ndarray:
        """The teacher's (n, k) IoUs (computed once per scorer; cached on disk)."""
        if self._teacher_ious is None:
            if self.teacher_engine is None:
                raise ValueError("TVDF needs a teacher model (model.teacher)")
            make, started = self._temporary(self.teacher_engine, "teacher")
            try:
                weights = weights_checksum(self.teacher_engine.model)
                self._teacher_ious = self._ious("teacher", weights, self.teacher, make)
            finally:
                for group in started:
                    group.shutdown()
        return self._teacher_ious

    def student_ious(self, predictor: Predictor | None = None) -> np.ndarray:
        """The student's (n,) IoUs (mean over its k predictions) with `predictor`'s current
        weights, or with a temporary group on the student model directory."""
        if predictor is not None:
            weights = group_checksum(predictor)  # "" (untracked): recomputed, never cached
            ious = self._ious("student", weights, self.student, lambda: predictor)
            return ious.mean(axis=1)
        make, started = self._temporary(self.student_engine, "student")
        try:
            if self.student_engine is None:
                raise ValueError("no student model configured for offline predictions")
            weights = weights_checksum(self.student_engine.model)
            return self._ious("student", weights, self.student, make).mean(axis=1)
        finally:
            for group in started:
                group.shutdown()
