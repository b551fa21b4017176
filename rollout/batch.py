"""The batch type that flows through one training step, defined once, where it is born.

A step's data is one `RolloutBatch`: the prompts (`PromptSpec`, everything needed to rebuild a
prompt's inputs identically on any actor) and the sampled completions (`Trajectory`, one per sample,
holding numpy arrays so that Ray ships them cheaply, zero-copy for the arrays). Later phases fill
in optional fields instead of inventing new containers: the teacher pool writes the teacher's
per-token log-probs, the driver writes rewards.

Vision inputs travel by reference: a `PromptSpec` names the video file and the `VideoSettings`; each
actor rebuilds the frames with `tvg.video.build_vision_inputs` (and its frame cache), which is the
same function everywhere, so sampler, teacher and learner see identical pixels and timestamps.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from tvg.sample import Sample
from tvg.video import VideoSettings


@dataclass(frozen=True)
class PromptSpec:
    """One prompt, by reference: rebuild its chat text and vision inputs anywhere.

    sample_id: the dataset sample's id (unique within a dataset).
    video: path of the video file.
    query: the normalised query sentence.
    spans: ground-truth spans in seconds (empty when unlabelled).
    duration: video duration in seconds when known.
    prompt_style: name of a `tvg.prompts` style ("timelens", "tempsamp", "tempsamp_cot").
    video_settings: sampling/resizing settings for `tvg.video.build_vision_inputs`.
    """

    sample_id: str
    video: str
    query: str
    spans: tuple[tuple[float, float], ...] = ()
    duration: float | None = None
    prompt_style: str = "timelens"
    video_settings: VideoSettings = field(default_factory=VideoSettings)

    @classmethod
    def from_sample(
        cls,
        sample: Sample,
        prompt_style: str = "timelens",
        video_settings: VideoSettings | None = None,
    ) -> PromptSpec:
        """Build the prompt reference of a dataset sample."""
        return cls(
            sample_id=sample.id,
            video=str(sample.video),
            query=sample.query,
            spans=tuple((float(s), float(e)) for s, e in sample.spans),
            duration=sample.duration,
            prompt_style=prompt_style,
            video_settings=video_settings or VideoSettings(),
        )


@dataclass
class Trajectory:
    """One sampled completion of one prompt, with per-token log-probabilities.

    prompt_index: index of its prompt in `RolloutBatch.prompts` (the group id: the n samples of a
        prompt share it).
    sample_index: 0..n-1 within the group.
    prompt_ids: int32 token ids of the chat text with ONE <|video_pad|> per video (vLLM and the HF
        processor expand it into the vision tokens themselves).
    num_prompt_tokens: length of the expanded prompt the engine actually ran (for the ledger and
        for consistency checks on the learner).
    completion_ids: int32 ids of the sampled tokens (the end token included when sampled).
    logprobs: float32 behaviour log-probs of the sampled tokens under the sampling engine
        (same length as completion_ids), after the configured temperature and the ban of the
        vision placeholder tokens (vLLM also applies any top-k / top-p truncation; see
        `rollout.engine_config.SamplingConfig`).
    topk_ids / topk_logprobs: optional (T, k) top-k of the behaviour distribution per position.
    finish_reason: "stop" (end token or stop string), "length" (max tokens), or "error".
    text: the decoded completion.
    weights_version: version of the weights that sampled it (bumped by every weight sync).
    is_ground_truth: True for an injected ground-truth completion (TempSamp-R1), not sampled.
    teacher_logprobs / teacher_topk_ids / teacher_topk_logprobs: filled by the teacher pool.
    ref_logprobs: the frozen reference's log-probs of the sampled tokens (GRPO / TempSamp-R1's KL
        term), filled by a reference pool when the objective's kl_coef > 0.
    rewards: filled by the driver (e.g. {"iou": 0.4, "format": 1.0, "total": 1.4}).
    error: why the trajectory failed when finish_reason == "error".
    """

    prompt_index: int
    sample_index: int
    prompt_ids: np.ndarray
    completion_ids: np.ndarray
    logprobs: np.ndarray
    finish_reason: str
    text: str = ""
    num_prompt_tokens: int = 0
    weights_version: int = 0
    topk_ids: np.ndarray | None = None
    topk_logprobs: np.ndarray | None = None
    is_ground_truth: bool = False
    teacher_logprobs: np.ndarray | None = None
    teacher_topk_ids: np.ndarray | None = None
    teacher_topk_logprobs: np.ndarray | None = None
    ref_logprobs: np.ndarray | None = None
    rewards: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    def __post_init__(self) -> None:
        self.prompt_ids = np.asarray(self.prompt_ids, dtype=np.int32)
        self.completion_ids = np.asarray(self.completion_ids, dtype=np.int32)
        self.logprobs = np.asarray(self.logprobs, dtype=np.float32)
        if self.logprobs.shape != self.completion_ids.shape:
            raise ValueError(
                f"trajectory {self.prompt_index}/{self.sample_index}: {self.logprobs.shape[0]} "
                f"log-probs for {self.completion_ids.shape[0]} completion tokens"
            )

    @property
    def num_completion_tokens(self) -> int:
        """Number of sampled tokens."""
        return int(self.completion_ids.shape[0])


@dataclass(frozen=True)
class SkippedPrompt:
    """A prompt that produced no trajectory, and why (counted, logged, never silent)."""

    prompt_index: int
    sample_id: str
    reason: str


@dataclass
class RolloutBatch:
    """Everything one step sampled: prompts, trajectories, skips and per-phase timings (seconds)."""

    prompts: list[PromptSpec]
    trajectories: list[Trajectory] = field(default_factory=list)
    skipped: list[SkippedPrompt] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    # Which rollout worker sampled each prompt (prompt index -> worker index), as the group
    # gathered it; empty when nothing was sampled through a group. The learner keeps a
    # worker's rows on one rank where it can (`trainer.learner_group.affine_shares`).
    sampled_by: dict[int, int] = field(default_factory=dict)

    def group(self, prompt_index: int) -> list[Trajectory]:
        """The trajectories of one prompt, in sample order."""
        members = [t for t in self.trajectories if t.prompt_index == prompt_index]
        return sorted(members, key=lambda t: t.sample_index)

    def groups(self) -> dict[int, list[Trajectory]]:
        """All groups, keyed by prompt index, each in sample order."""
        out: dict[int, list[Trajectory]] = {}
        for traj in sorted(self.trajectories, key=lambda t: (t.prompt_index, t.sample_index)):
            out.setdefault(traj.prompt_index, []).append(traj)
        return out

    @property
    def num_generated_tokens(self) -> int:
        """Total sampled tokens (ground-truth rows excluded)."""
        return sum(t.num_completion_tokens for t in self.trajectories if not t.is_ground_truth)

    @classmethod
    def merge(cls, parts: list[RolloutBatch], prompts: list[PromptSpec]) -> RolloutBatch:
        """Concatenate batches sampled over disjoint prompt subsets into one batch over `prompts`.

        The parts' `prompt_index` / `SkippedPrompt.prompt_index` must already index `prompts`
        (engines stamp the batch-wide index they are given); timings are summed per key.
        """
        merged = cls(prompts=prompts)
        for part in parts:
            merged.trajectories.extend(part.trajectories)
            merged.skipped.extend(part.skipped)
            for key, value in part.timings.items():
                merged.timings[key] = merged.timings.get(key, 0.0) + value
        merged.trajectories.sort(key=lambda t: (t.prompt_index, t.sample_index))
        return merged

    def replace_trajectories(self, trajectories: list[Trajectory]) -> RolloutBatch:
        """A copy of the batch holding other trajectories (same prompts, skips and timings)."""
        return dataclasses.replace(self, trajectories=trajectories)
