"""Pure functions that decide WHICH source frames to sample and at WHAT size to return them.

No decoding happens here, so the rules (target fps, frame cap, even frame count, pixel budget and
size factor) are easy to test and identical for every decoding backend.
"""

from __future__ import annotations

import math

from tvg.video_settings import VideoSettings

TEMPORAL_PATCH = 2  # Qwen2.5-VL / Qwen3-VL merge 2 consecutive frames into one temporal patch


def sample_frame_indices(
    total_frames: int, source_fps: float, fps: float, max_frames: int
) -> list[int]:
    """Return the source frame indices to decode, at `fps` with at most `max_frames` frames.

    - The number of frames is round(total_frames * fps / source_fps), at least 1, capped by
      `max_frames` and by `total_frames` (a target fps above the source fps takes every frame; no
      frame is duplicated to reach it). Past the cap the frames spread evenly over the whole video,
      so the effective fps drops below the target.
    - Frame k of n is the source frame at the centre of the k-th of n equal slices of the video:
      index ((2k + 1) * total_frames) // (2n). When n == total_frames that is exactly k.
    - The count is made even (Qwen-VL's temporal patch is 2 frames) by REPEATING the last index,
      which is what the Qwen-VL processors themselves do with an odd count, so the model sees the
      same input either way. Only when repeating would exceed `max_frames` (an odd cap) is the last
      index dropped instead.
    """
    if total_frames < 1:
        raise ValueError(f"total_frames must be >= 1, got {total_frames}")
    if not source_fps > 0 or not fps > 0:
        raise ValueError(f"fps values must be > 0, got source {source_fps}, target {fps}")
    if max_frames < TEMPORAL_PATCH:
        raise ValueError(f"max_frames must be >= {TEMPORAL_PATCH}, got {max_frames}")
    wanted = total_frames if fps >= source_fps else round(total_frames * fps / source_fps)
    n = max(1, min(wanted, max_frames, total_frames))
    indices = [((2 * k + 1) * total_frames) // (2 * n) for k in range(n)]
    if n % TEMPORAL_PATCH:
        if n + 1 <= max_frames:
            indices.append(indices[-1])
        else:
            indices.pop()
    return indices


def fit_frame_size(
    height: int,
    width: int,
    *,
    max_pixels: int,
    min_pixels: int,
    size_factor: int,
) -> tuple[int, int]:
    """Return the (height, width) to resize a `height` x `width` frame to.

    Both sides become multiples of `size_factor` and the aspect ratio is kept as closely as the
    rounding allows. A frame is never upsampled beyond the source (sides round down), with two
    exceptions: a side shorter than `size_factor` grows to `size_factor`, and a frame whose area
    would fall below `min_pixels` is scaled up to reach it. A frame above `max_pixels` is scaled
    down into the budget, trading aspect error against unused budget.
    """
    if height < 1 or width < 1:
        raise ValueError(f"frame size must be positive, got {height}x{width}")
    f = size_factor

    def down(x: float) -> int:
        return max(f, math.floor(x / f) * f)

    def up(x: float) -> int:
        return max(f, math.ceil(x / f) * f)

    h, w = down(height), down(width)  # the largest size that does not upsample
    if h * w > max_pixels:
        # Scale into the budget: of the factor multiples around the ideal scaled size that fit,
        # keep the best trade-off of aspect error |log(aspect ratio)| and unused budget fraction,
        # still never upsampling.
        beta = math.sqrt(height * width / max_pixels)
        hs = {min(h, down(height / beta)), min(h, up(height / beta))}
        ws = {min(w, down(width / beta)), min(w, up(width / beta))}
        fitting = [(a, b) for a in hs for b in ws if a * b <= max_pixels]
        if not fitting:  # only when a side is already clamped at size_factor
            return min(hs), min(ws)
        aspect = math.log(width / height)
        return min(
            fitting,
            key=lambda s: (
                abs(math.log(s[1] / s[0]) - aspect) + 1 - s[0] * s[1] / max_pixels,
                -s[0] * s[1],
            ),
        )
    if h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h, w = up(height * beta), up(width * beta)
    return h, w


def frame_size_for(
    height: int, width: int, n_frames: int, settings: VideoSettings
) -> tuple[int, int]:
    """Return the output (height, width) for `n_frames` frames of a source video under `settings`.

    Applies the per-frame budget `max_pixels`, tightened by `max_total_pixels / n_frames` when a
    total budget is set (never below `min_pixels`).
    """
    budget = settings.max_pixels
    if settings.max_total_pixels is not None:
        budget = min(budget, settings.max_total_pixels // max(1, n_frames))
    budget = max(budget, settings.min_pixels, settings.size_factor**2)
    return fit_frame_size(
        height,
        width,
        max_pixels=budget,
        min_pixels=settings.min_pixels,
        size_factor=settings.size_factor,
    )
