"""Fixtures of the curriculum unit tests: hand-made prompts and scripted predictors / scorers
(no engines; the end-to-end test runs the real ones)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from rollout.batch import PromptSpec, RolloutBatch, SkippedPrompt, Trajectory
from rollout.engine_config import SamplingConfig


class ScriptedPredictor:
    """Answers each prompt with scripted texts (the j-th sample gets answers[id][j]); counts calls
    and reports a fixed weights checksum, like a `RolloutGroup`."""

    def __init__(self, answers: dict[str, list[str]], checksum: str = "w0") -> None:
        self.answers, self.checksum, self.calls = answers, checksum, 0
        self.skip: set[str] = set()
        self.samplings: list[SamplingConfig] = []

    def sample(
        self, prompts: Sequence[PromptSpec], n: int = 1, sampling: SamplingConfig | None = None
    ) -> RolloutBatch:
        """Scripted completions, in input order; prompts in `skip` become skips."""
        self.calls += 1
        self.samplings.append(sampling or SamplingConfig())
        batch = RolloutBatch(prompts=list(prompts))
        for i, spec in enumerate(prompts):
            if spec.sample_id in self.skip:
                batch.skipped.append(SkippedPrompt(i, spec.sample_id, "missing video"))
                continue
            for j in range(n):
                text = self.answers[spec.sample_id][j % len(self.answers[spec.sample_id])]
                batch.trajectories.append(Trajectory(i, j, [], [], [], "stop", text=text))
        return batch

    def checksums(self) -> list[str]:
        """The weights checksum of every (one) worker."""
        return [self.checksum]


class StubScorer:
    """Returns a fixed teacher table and, per call, the next student IoU vector."""

    def __init__(self, teacher: np.ndarray, students: list[np.ndarray]) -> None:
        self.teacher, self.students = np.asarray(teacher), [np.asarray(s) for s in students]
        self.teacher_calls = self.student_calls = 0
        self.predictors: list[Any] = []

    def teacher_ious(self) -> np.ndarray:
        """The fixed (n, k) teacher IoUs."""
        self.teacher_calls += 1
        return self.teacher

    def student_ious(self, predictor: Any = None) -> np.ndarray:
        """The next scripted student IoUs (the last one repeats)."""
        self.predictors.append(predictor)
        out = self.students[min(self.student_calls, len(self.students) - 1)]
        self.student_calls += 1
        return out


@pytest.fixture
def make_prompts() -> Callable[[int], list[PromptSpec]]:
    """n prompts with ids s0..s{n-1}, each with the ground truth (0, 10) in a 20 s video."""

    def make(n: int) -> list[PromptSpec]:
        return [
            PromptSpec(f"s{i}", f"/videos/v{i}.mp4", f"query {i}", ((0.0, 10.0),), 20.0)
            for i in range(n)
        ]

    return make


@pytest.fixture
def scripted_predictor() -> type[ScriptedPredictor]:
    """The ScriptedPredictor class."""
    return ScriptedPredictor


@pytest.fixture
def stub_scorer() -> type[StubScorer]:
    """The StubScorer class."""
    return StubScorer
