"""What the teacher scores and what it returns: `ScoreItem` in, `TokenScores` out.

A `ScoreItem` is one student completion plus everything needed to rebuild its prompt identically
on any machine: the `PromptSpec` (query, prompt style, video path, `VideoSettings`), the student's
own prompt token ids (cross-checked by the teacher) and, optionally, the already-decoded vision
inputs (shipped by the remote client so that a teacher on another machine needs no shared disk).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rollout.batch import PromptSpec, RolloutBatch, Trajectory
from tvg.frame_cache import FrameCache
from tvg.video import build_vision_inputs
from tvg.vision_inputs import VisionInputs


class TeacherInputError(ValueError):
    """A scoring request that the teacher cannot score as asked (names the item and the reason)."""


@dataclass
class ScoreItem:
    """One completion to score.

    prompt: the prompt reference (query, style, video path, video settings).
    completion_ids: int32 ids of the sampled tokens.
    prompt_ids: the student's prompt ids (ONE <|video_pad|> per video); when given, the teacher
        checks that its own tokenisation of the prompt is identical.
    num_prompt_tokens: the expanded prompt length the student ran (0 when unknown); used for
        balancing and the context-length check.
    vision: decoded vision inputs; when None the scorer builds them from `prompt.video` with
        `prompt.video_settings` through `tvg.video.build_vision_inputs`.
    """

    prompt: PromptSpec
    completion_ids: np.ndarray
    prompt_ids: np.ndarray | None = None
    num_prompt_tokens: int = 0
    vision: VisionInputs | None = None

    def __post_init__(self) -> None:
        self.completion_ids = np.asarray(self.completion_ids, dtype=np.int32).reshape(-1)
        if self.prompt_ids is not None:
            self.prompt_ids = np.asarray(self.prompt_ids, dtype=np.int32).reshape(-1)

    @property
    def num_tokens(self) -> int:
        """Token cost used for balancing: prompt (expanded when known) + completion."""
        prompt = self.num_prompt_tokens
        if self.prompt_ids is not None:
            prompt = max(prompt, int(self.prompt_ids.shape[0]))
        return prompt + int(self.completion_ids.shape[0])


@dataclass
class TokenScores:
    """The teacher's view of one completion, per completion token.

    logprobs: (T,) float32 log-prob of each sampled token.
    topk_ids / topk_logprobs: (T, k) int32 / float32 top-k of the teacher distribution, best first
        (k = 0 gives (T, 0) arrays).
    num_prompt_tokens: the expanded prompt length the teacher ran.
    All log-probs are log_softmax(logits / temperature) over the vocabulary without the vision
    placeholder tokens.
    """

    logprobs: np.ndarray
    topk_ids: np.ndarray
    topk_logprobs: np.ndarray
    num_prompt_tokens: int = 0

    def __post_init__(self) -> None:
        self.logprobs = np.asarray(self.logprobs, dtype=np.float32).reshape(-1)
        n = self.logprobs.shape[0]
        self.topk_ids = np.asarray(self.topk_ids, dtype=np.int32).reshape(n, -1)
        self.topk_logprobs = np.asarray(self.topk_logprobs, dtype=np.float32).reshape(n, -1)
        if self.topk_ids.shape != self.topk_logprobs.shape:
            raise ValueError(
                f"top-k ids {self.topk_ids.shape} and log-probs {self.topk_logprobs.shape} differ"
            )

    def equals(self, other: TokenScores) -> bool:
        """True when both hold bit-identical arrays."""
        return (
            np.array_equal(self.logprobs, other.logprobs)
            and np.array_equal(self.topk_ids, other.topk_ids)
            and np.array_equal(self.topk_logprobs, other.topk_logprobs)
        )


def item_from_trajectory(traj: Trajectory, prompt: PromptSpec) -> ScoreItem:
    """The scoring item of one trajectory of a batch."""
    return ScoreItem(
        prompt=prompt,
        completion_ids=traj.completion_ids,
        prompt_ids=traj.prompt_ids if traj.prompt_ids.size else None,
        num_prompt_tokens=traj.num_prompt_tokens,
    )


def items_from_batch(batch: RolloutBatch) -> list[ScoreItem]:
    """One scoring item per trajectory of `batch`, in trajectory order."""
    return [item_from_trajectory(t, batch.prompts[t.prompt_index]) for t in batch.trajectories]


def fill_batch(
    batch: RolloutBatch, scores: Sequence[TokenScores], target: str = "teacher"
) -> RolloutBatch:
    """Write scores into the trajectories of `batch` (same order), in place; return it.

    target: "teacher" fills teacher_logprobs / teacher_topk_*; "reference" fills ref_logprobs
    (a frozen reference model's sampled-token log-probs for a KL penalty).
    """
    if target not in ("teacher", "reference"):
        raise ValueError(f"fill_batch target must be 'teacher' or 'reference', not {target!r}")
    if len(scores) != len(batch.trajectories):
        raise ValueError(
            f"{len(scores)} teacher results for {len(batch.trajectories)} trajectories"
        )
    for traj, score in zip(batch.trajectories, scores, strict=True):
        if score.logprobs.shape[0] != traj.num_completion_tokens:
            raise ValueError(
                f"trajectory {traj.prompt_index}/{traj.sample_index}: teacher returned "
                f"{score.logprobs.shape[0]} log-probs for {traj.num_completion_tokens} tokens"
            )
        if target == "reference":
            traj.ref_logprobs = score.logprobs
            continue
        traj.teacher_logprobs = score.logprobs
        traj.teacher_topk_ids = score.topk_ids
        traj.teacher_topk_logprobs = score.topk_logprobs
    return batch


def resolve_vision(item: ScoreItem, cache: FrameCache | None) -> VisionInputs:
    """The item's vision inputs: shipped ones, or built by the task layer's one function."""
    if item.vision is not None:
        return item.vision
    return build_vision_inputs(item.prompt.video, item.prompt.video_settings, cache)
