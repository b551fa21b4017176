"""Video input for the grounding model: THE one function every component uses to read a video.

    inputs = build_vision_inputs("clip.mp4", VideoSettings(fps=2.0), cache=frame_cache)
    llm.generate({"prompt": ..., "multi_modal_data": inputs.vllm_mm_data()})      # vLLM
    processor(text=[...], **inputs.hf_processor_kwargs(), return_tensors="pt")    # transformers

The rollout engine, the teacher and the learner must build identical vision inputs; calling this
function with the same `VideoSettings` guarantees it (same frames, same source indices, same
metadata, hence the same Qwen3-VL timestamp text).

How a video is read (details in tvg.video_sampling and tvg.video_backends):
- decord decodes (PyAV when decord is missing or cannot open the file, with backend="auto");
- frames are sampled at `settings.fps` (never above the source fps) with at most
  `settings.max_frames`, each at the centre of an equal slice of the video;
- the frame count is made even by repeating the last frame (what the Qwen-VL processors do);
- frames are resized by the decoder to multiples of `settings.size_factor` within the per-frame
  pixel budget, never upsampled beyond the source unless below `settings.min_pixels`;
- timestamps are source index / source fps; the metadata carries the SOURCE fps and indices.
"""

from __future__ import annotations

import os

import numpy as np

from tvg.frame_cache import FrameCache, cache_key
from tvg.video_backends import decode_video
from tvg.video_errors import VideoError
from tvg.video_settings import VideoSettings
from tvg.vision_inputs import VisionInputs, make_metadata

__all__ = [
    "FrameCache",
    "VideoError",
    "VideoSettings",
    "VisionInputs",
    "build_vision_inputs",
    "decode_vision_inputs",
]


def decode_vision_inputs(
    video_path: str | os.PathLike[str], settings: VideoSettings
) -> VisionInputs:
    """Decode `video_path` under `settings` into `VisionInputs`, without any cache."""
    path = os.path.abspath(os.fspath(video_path))
    decoded = decode_video(path, settings)
    indices = decoded.frames_indices
    timestamps = np.asarray(indices, dtype=np.float64) / decoded.source_fps
    metadata = make_metadata(decoded.source_fps, decoded.total_frames, indices, decoded.backend)
    return VisionInputs(
        frames=decoded.frames,
        timestamps=timestamps,
        metadata=metadata,
        video_path=path,
        settings=settings,
    )


def build_vision_inputs(
    video_path: str | os.PathLike[str],
    settings: VideoSettings | None = None,
    cache: FrameCache | None = None,
) -> VisionInputs:
    """Return the model-ready frames, timestamps and metadata of `video_path`.

    settings: sampling and resizing (default `VideoSettings()`).
    cache: a `FrameCache` shared by the callers of one process; with it a video is decoded once
        per (file version, settings) and the returned frames are read-only and shared.
    Raises `VideoError` (a RuntimeError) naming the path when the file is missing, empty, corrupt
    or cannot be decoded, so callers can count the sample as skipped.
    """
    settings = settings or VideoSettings()
    if cache is None:
        return decode_vision_inputs(video_path, settings)
    path = os.path.abspath(os.fspath(video_path))
    try:
        key = cache_key(path, settings)
    except FileNotFoundError as exc:
        raise VideoError(path, "file not found") from exc
    except OSError as exc:
        raise VideoError(path, f"cannot stat the file ({exc})") from exc
    return cache.get_or_create(key, lambda: decode_vision_inputs(path, settings))
