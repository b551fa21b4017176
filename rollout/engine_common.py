"""What every rollout engine shares: thread settings, prompt preparation, per-sample skips.

Prompts are rebuilt from their `PromptSpec` on the engine's side: vision inputs through the task
layer's one function (`tvg.video.build_vision_inputs`, with the engine's frame cache) and token
ids through `runtime.prompting`. A prompt that cannot be built (missing or corrupt video, unknown
prompt style) becomes a `SkippedPrompt` with the reason; the rest of the batch goes on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from rollout.batch import PromptSpec, RolloutBatch, SkippedPrompt
from rollout.engine_config import SamplingConfig
from rollout.weight_sync import (
    DEFAULT_BUCKET_BYTES,
    WeightBucket,
    WeightTracker,
    WeightUpdateResult,
    bucket_state_dict,
)
from runtime.prompting import prompt_token_ids
from tvg.frame_cache import FrameCache
from tvg.video import build_vision_inputs
from tvg.video_errors import VideoError
from tvg.vision_inputs import VisionInputs

THREAD_ENV_VARS: tuple[str, ...] = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def configure_threads(threads: int) -> int:
    """Set this process's torch and OpenMP thread counts (before an engine is built).

    Environment variables cover libraries that read them at load; `torch.set_num_threads` covers
    torch (vLLM's CPU worker later forbids changing it). Returns torch's thread count.
    """
    import torch

    for var in THREAD_ENV_VARS:
        os.environ[var] = str(threads)
    torch.set_num_threads(threads)
    return torch.get_num_threads()


@dataclass
class PreparedPrompt:
    """A prompt ready for an engine: its batch index, spec, vision inputs and token ids."""

    index: int
    spec: PromptSpec
    vision: VisionInputs
    prompt_ids: list[int]


def prepare_prompts(
    prompts: Sequence[PromptSpec],
    tokenizer: Any,
    cache: FrameCache | None,
    prompt_indices: Sequence[int] | None = None,
) -> tuple[list[PreparedPrompt], list[SkippedPrompt]]:
    """Build vision inputs and prompt ids for each spec; bad ones become skips with a reason.

    prompt_indices: the batch index of each prompt (default 0..len-1), stamped on trajectories.
    """
    indices = list(range(len(prompts))) if prompt_indices is None else list(prompt_indices)
    if len(indices) != len(prompts):
        raise ValueError(f"{len(indices)} prompt indices for {len(prompts)} prompts")
    prepared: list[PreparedPrompt] = []
    skipped: list[SkippedPrompt] = []
    for index, spec in zip(indices, prompts, strict=True):
        try:
            vision = build_vision_inputs(spec.video, spec.video_settings, cache)
            ids = prompt_token_ids(tokenizer, spec.query, spec.prompt_style)
        except (VideoError, KeyError, ValueError) as exc:
            skipped.append(SkippedPrompt(index, spec.sample_id, f"bad input: {exc}"))
            continue
        prepared.append(PreparedPrompt(index, spec, vision, ids))
    return prepared, skipped


class RolloutEngine(Protocol):
    """The interface of both engines (`VLLMEngine`, `HFEngine`) and of the Ray worker."""

    def sample(
        self,
        prompts: Sequence[PromptSpec],
        n: int = 1,
        sampling: SamplingConfig | None = None,
        prompt_indices: Sequence[int] | None = None,
    ) -> RolloutBatch:
        """Sample n completions per prompt; return the batch with behaviour log-probs."""
        ...

    def update_weights(self, bucket: WeightBucket) -> WeightUpdateResult | None:
        """Load one weight bucket in place; return the result on an update's last bucket."""
        ...

    def checksum(self) -> str:
        """Checksum of the weights the engine holds."""
        ...

    @property
    def weights_version(self) -> int:
        """Version stamped on the engine's samples."""
        ...


def call_seed(sampling: SamplingConfig, prompt_indices: Sequence[int] | None) -> int | None:
    """The generator seed of one sample call (see `SamplingConfig.seed`), or None."""
    if sampling.seed is None:
        return None
    first = int(prompt_indices[0]) if prompt_indices else 0
    return (int(sampling.seed) * 1_000_003 + first) % (2**63 - 1)


def reseed_torch(seed: int, worker: Any = None) -> None:
    """Re-seed torch's generators in the calling process (also usable as a vLLM collective_rpc)."""
    import torch

    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


class TrackedWeights:
    """What both engines share about the weights they hold: the `WeightTracker`, the version
    stamped on samples, the update result, whole-state-dict pushes and the checksum."""

    tracker: WeightTracker
    _update_started: float

    @property
    def weights_version(self) -> int:
        """Version stamped on every sample (bumped by each completed weight update)."""
        return self.tracker.version

    def update_weights(self, bucket: WeightBucket) -> WeightUpdateResult | None:
        """Load one bucket (see the engine); the last one returns the update's result."""
        raise NotImplementedError

    def _finished_update(self) -> WeightUpdateResult:
        """Close the tracker's update and describe it."""
        self.tracker.finish()
        return WeightUpdateResult(
            version=self.tracker.version,
            checksum=self.tracker.checksum(),
            seconds=time.perf_counter() - self._update_started,
            num_tensors=self.tracker.update_tensors,
            num_bytes=self.tracker.update_bytes,
        )

    def load_state_dict(
        self,
        state_dict: dict[str, Any],
        version: int | None = None,
        bucket_bytes: int = DEFAULT_BUCKET_BYTES,
        skip_prefixes: Sequence[str] = (),
    ) -> WeightUpdateResult:
        """Push a whole state dict through the bucket protocol (in-process convenience)."""
        version = self.weights_version + 1 if version is None else version
        result = None
        for bucket in bucket_state_dict(state_dict, version, bucket_bytes, skip_prefixes):
            result = self.update_weights(bucket)
        assert result is not None
        return result

    def checksum(self) -> str:
        """Checksum of the weights the engine holds (see `rollout.weight_sync`)."""
        return self.tracker.checksum()
