"""`VideoSettings`: how a video is sampled and resized before it reaches a vision-language model.

One frozen settings object is shared by the rollout engine, the teacher and the learner so all three
build identical vision inputs (same frames, same timestamps, same metadata).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

BACKENDS: tuple[str, ...] = ("auto", "decord", "pyav")

# Qwen3-VL: one merged vision token covers (patch 16 x merge 2) = 32 px square over 2 frames.
QWEN3_VL_SIZE_FACTOR = 32


@dataclass(frozen=True)
class VideoSettings:
    """Sampling and resizing parameters for `build_vision_inputs`.

    fps: target sampling rate (frames per second); capped at the source fps (no frame is
        duplicated to reach it).
    max_frames: cap on the number of sampled frames; past it the frames spread evenly over the
        whole video.
    max_pixels / min_pixels: per-frame pixel budget (height x width after resizing).
    max_total_pixels: optional budget over all frames; the per-frame budget becomes
        min(max_pixels, max_total_pixels // n_frames), but never below min_pixels.
    size_factor: output height and width are multiples of it (Qwen3-VL: patch 16 x merge 2 = 32).
    backend: "decord", "pyav" or "auto" (decord, falling back to PyAV when decord is missing or
        cannot open the file).
    """

    fps: float = 2.0
    max_frames: int = 768
    max_pixels: int = 128 * QWEN3_VL_SIZE_FACTOR * QWEN3_VL_SIZE_FACTOR
    min_pixels: int = QWEN3_VL_SIZE_FACTOR * QWEN3_VL_SIZE_FACTOR
    size_factor: int = QWEN3_VL_SIZE_FACTOR
    max_total_pixels: int | None = None
    backend: str = "auto"

    def __post_init__(self) -> None:
        """Reject settings that cannot produce a valid model input."""
        if not self.fps > 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")
        if self.max_frames < 2:
            raise ValueError(f"max_frames must be >= 2 (temporal patch 2), got {self.max_frames}")
        if self.size_factor < 1:
            raise ValueError(f"size_factor must be >= 1, got {self.size_factor}")
        if self.min_pixels < 1 or self.max_pixels < self.min_pixels:
            raise ValueError(
                f"need 1 <= min_pixels <= max_pixels, got {self.min_pixels}, {self.max_pixels}"
            )
        if self.max_pixels < self.size_factor**2:
            raise ValueError(
                f"max_pixels {self.max_pixels} is below one size_factor square "
                f"({self.size_factor}**2)"
            )
        if self.max_total_pixels is not None and self.max_total_pixels < 1:
            raise ValueError(f"max_total_pixels must be positive, got {self.max_total_pixels}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a plain JSON-serialisable dict (for logs and cache keys)."""
        return asdict(self)
