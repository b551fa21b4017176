"""`VisionInputs`: decoded frames plus the metadata that vLLM and the HF Qwen3-VL processor take."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tvg.video_sampling import TEMPORAL_PATCH
from tvg.video_settings import VideoSettings

# Keys of `VisionInputs.metadata`. transformers' VideoMetadata accepts all but do_sample_frames;
# vLLM requires fps, total_num_frames, frames_indices and do_sample_frames.
METADATA_KEYS: tuple[str, ...] = (
    "fps",
    "duration",
    "total_num_frames",
    "frames_indices",
    "video_backend",
    "do_sample_frames",
)


def make_metadata(
    source_fps: float, total_frames: int, frames_indices: list[int], backend: str
) -> dict[str, Any]:
    """Return the video metadata dict shared by vLLM and the HF processor.

    fps is the SOURCE fps and frames_indices the source indices of the sampled frames: Qwen3-VL
    derives its textual timestamps as (idx[2k] + idx[2k+1]) / 2 / fps, so both must be real.
    duration is total_frames / source_fps.
    """
    return {
        "fps": float(source_fps),
        "duration": float(total_frames) / float(source_fps),
        "total_num_frames": int(total_frames),
        "frames_indices": [int(i) for i in frames_indices],
        "video_backend": str(backend),
        "do_sample_frames": False,
    }


@dataclass
class VisionInputs:
    """One video ready for a Qwen-VL model: frames, their timestamps, and the model metadata.

    frames: (T, H, W, 3) uint8 RGB, T even; read-only when it came from a `FrameCache` (shared by
        every sample of a prompt: copy before modifying).
    timestamps: (T,) float64 seconds of each frame, source index / source fps.
    metadata: see `make_metadata`.
    cache_key: the `FrameCache` key these frames were decoded under (that file version with these
        settings), stamped by the cache; None for inputs built another way. Caches of what is
        derived from the frames key on it (`runtime.processed_prompts`).
    """

    frames: np.ndarray
    timestamps: np.ndarray
    metadata: dict[str, Any]
    video_path: str
    settings: VideoSettings
    cache_key: str | None = field(default=None, compare=False)

    @property
    def num_frames(self) -> int:
        """Return the number of sampled frames (always even)."""
        return int(self.frames.shape[0])

    @property
    def frame_size(self) -> tuple[int, int]:
        """Return the (height, width) of the frames."""
        return int(self.frames.shape[1]), int(self.frames.shape[2])

    @property
    def nbytes(self) -> int:
        """Return the memory the frames and timestamps take, in bytes."""
        return int(self.frames.nbytes + self.timestamps.nbytes)

    def vllm_mm_data(self) -> dict[str, Any]:
        """Return vLLM's `multi_modal_data` for this video: {"video": (frames, metadata)}.

        The metadata is a fresh copy each call (vLLM may edit the dict it receives); the frames
        are writable (see `_writable`).
        """
        return {"video": (_writable(self.frames), _copy_metadata(self.metadata))}

    def hf_processor_kwargs(self) -> dict[str, Any]:
        """Return the keyword arguments for the HF Qwen3-VL processor call.

        {"videos": [frames], "video_metadata": [metadata], "do_sample_frames": False}; the
        metadata here omits do_sample_frames (transformers' VideoMetadata rejects that key; it is
        passed as a processor argument instead); the frames are writable (see `_writable`).
        """
        meta = _copy_metadata(self.metadata)
        meta.pop("do_sample_frames", None)
        return {
            "videos": [_writable(self.frames)],
            "video_metadata": [meta],
            "do_sample_frames": False,
        }

    def qwen3_vl_group_timestamps(self) -> list[float]:
        """Return the timestamp Qwen3-VL prints before each 2-frame group, in seconds.

        (idx[2k] + idx[2k+1]) / 2 / fps, as the Qwen3-VL processor computes it (it renders each
        as "<{t:.1f} seconds>").
        """
        idx = self.metadata["frames_indices"]
        fps = self.metadata["fps"]
        return [(idx[k] + idx[k + 1]) / 2 / fps for k in range(0, len(idx) - 1, TEMPORAL_PATCH)]


def _writable(frames: np.ndarray) -> np.ndarray:
    """Return `frames`, or a copy of them when they are read-only (a `FrameCache` entry).

    transformers' video processor turns the frames into a tensor with `torch.from_numpy`, which
    warns on every read-only array (a tensor cannot be read-only, so a write through it would
    change every sample sharing the cached frames). The copy is one memcpy per request (~13 ms
    for 64 frames of 448 x 448 on a 2-core machine, ~16 us for the demo's 32 x 32 clips): the cost
    of the processor's own channels-first copy, made before its resize and normalisation.
    """
    return frames if frames.flags.writeable else frames.copy()


def _copy_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of `metadata` whose frames_indices list is also copied."""
    meta = dict(metadata)
    meta["frames_indices"] = list(meta["frames_indices"])
    return meta
