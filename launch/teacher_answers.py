"""Sequence-level knowledge distillation's targets: the teacher's own answers, cached per prompt.

The teacher model runs in its own generation engines (a rollout group on the teacher); a prompt
is answered the first time a step draws it — greedily, or `teacher_samples` times at
`teacher_temperature` — and the answers are reused on later visits, or asked for again once they
are `regenerate_every` steps old. The cache is part of the checkpoint, so a resumed run trains on
the same targets. Its compute is the step's "teacher" phase and `teacher_generated_tokens` in the
ledger (charged to the training clock like any other phase).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class TeacherAnswers:
    """Cached teacher answers per sample id, generated on demand by `engines`."""

    def __init__(
        self,
        engines: Any,
        settings: dict[str, float],
        max_tokens: int,
        seed: int,
    ) -> None:
        self.engines = engines
        self.samples = int(settings["teacher_samples"])
        self.temperature = float(settings["teacher_temperature"])
        self.regenerate_every = int(settings["regenerate_every"])
        self.max_tokens = max_tokens
        self.seed = seed
        # sample id -> (step the answers were generated at, the answers)
        self.cache: dict[str, tuple[int, list[str]]] = {}
        self.generated_tokens = 0  # of the last `answers_for` call

    def _stale(self, sample_id: str, step: int) -> bool:
        if sample_id not in self.cache:
            return True
        every = self.regenerate_every
        return bool(every) and step - self.cache[sample_id][0] >= every

    def answers_for(self, prompts: Sequence[Any], step: int) -> list[list[str]]:
        """The teacher's answers to each prompt (generated now for prompts not cached or stale),
        in prompt order. `step` is the 0-based step about to train."""
        from rollout.engine_config import SamplingConfig

        wanted: dict[str, Any] = {}
        for prompt in prompts:
            if self._stale(prompt.sample_id, step) and prompt.sample_id not in wanted:
                wanted[prompt.sample_id] = prompt
        self.generated_tokens = 0
        if wanted:
            todo = list(wanted.values())
            batch = self.engines.sample(
                todo,
                n=self.samples,
                sampling=SamplingConfig(
                    temperature=self.temperature,
                    max_tokens=self.max_tokens,
                    seed=self.seed * 100_003 + step,
                ),
            )
            answers: dict[int, list[str]] = {}
            for traj in batch.trajectories:
                answers.setdefault(traj.prompt_index, []).append(traj.text)
                self.generated_tokens += traj.num_completion_tokens
            for index, prompt in enumerate(todo):
                # A prompt the teacher engine skipped (e.g. an unreadable video) gets no target.
                self.cache[prompt.sample_id] = (step, answers.get(index, []))
        return [list(self.cache[p.sample_id][1]) for p in prompts]

    def state_dict(self) -> dict[str, Any]:
        """The cache, JSON-serialisable (saved in every checkpoint)."""
        return {key: [step, texts] for key, (step, texts) in self.cache.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the cache saved by `state_dict`."""
        self.cache = {key: (int(step), list(texts)) for key, (step, texts) in state.items()}

    def shutdown(self) -> None:
        """Stop the teacher's generation engines."""
        self.engines.shutdown()
