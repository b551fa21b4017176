"""`TeacherStream`: score a rollout's parts as they arrive, fill the merged batch in its order.

    stream = TeacherStream(pool, prompts)
    batch = group.sample(prompts, n, sampling, on_part=stream.submit)  # scoring starts per part
    stream.fill(batch)          # waits for what is still scoring; same values as score_batch

Each finished rollout shard becomes one `TeacherPool.submit` call (split over the teacher workers
by tokens, with the pool's restarts and timeouts), so the teacher scores the first shard while
the others still sample. Scores are matched back to the merged batch by (prompt, sample) index,
so the batch is filled exactly as `TeacherPool.score_batch` fills it. Overlap needs at least two
parts: with one rollout worker (or one non-empty shard) the part arrives when sampling is done.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from rollout.batch import PromptSpec, RolloutBatch
from teacher_server.items import TokenScores, fill_batch, item_from_trajectory
from teacher_server.pool import PoolCallStats, ScoreHandle, TeacherPool


class TeacherStream:
    """The teacher calls of one rollout, submitted part by part (see the module docstring)."""

    def __init__(self, pool: TeacherPool, prompts: Sequence[PromptSpec]) -> None:
        """Score parts of a rollout over `prompts` (the batch-wide prompt list) on `pool`."""
        self.pool = pool
        self.prompts = list(prompts)
        self.handles: list[ScoreHandle] = []
        self.keys: list[list[tuple[int, int]]] = []
        self.calls: list[PoolCallStats] = []

    def submit(self, part: RolloutBatch) -> None:
        """Send one finished part's trajectories to the teacher pool (returns at once)."""
        trajectories = [t for t in part.trajectories if not t.is_ground_truth]
        if not trajectories:
            return
        items = [item_from_trajectory(t, self.prompts[t.prompt_index]) for t in trajectories]
        self.handles.append(self.pool.submit(items))
        self.keys.append([(t.prompt_index, t.sample_index) for t in trajectories])

    def fill(self, batch: RolloutBatch, target: str = "teacher") -> RolloutBatch:
        """Wait for every submitted part and fill `batch` (the merged rollout) in place.

        The wall time of this wait (the scoring not hidden behind sampling) is added to
        `batch.timings[target]`; the calls' stats are in `calls`.
        """
        start = time.perf_counter()
        results = self.pool.collect(self.handles)
        self.calls = [h.call for h in self.handles if h.call is not None]
        by_key: dict[tuple[int, int], TokenScores] = {}
        for keys, scores in zip(self.keys, results, strict=True):
            by_key.update(zip(keys, scores, strict=True))
        missing = [
            (t.prompt_index, t.sample_index)
            for t in batch.trajectories
            if (t.prompt_index, t.sample_index) not in by_key
        ]
        if missing or len(by_key) != len(batch.trajectories):
            raise ValueError(
                f"streamed teacher scores do not match the batch: {len(by_key)} scored, "
                f"{len(batch.trajectories)} trajectories, unscored (prompt, sample) {missing[:5]}"
            )
        scores = [by_key[(t.prompt_index, t.sample_index)] for t in batch.trajectories]
        fill_batch(batch, scores, target)
        batch.timings[target] = batch.timings.get(target, 0.0) + time.perf_counter() - start
        return batch
