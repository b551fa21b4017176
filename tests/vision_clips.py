"""Vision inputs of in-memory frames for tests (no video file): 1 fps, every frame sampled."""

from __future__ import annotations

import numpy as np

from tvg.video import VideoSettings
from tvg.vision_inputs import VisionInputs, make_metadata


def clip_of(frames: np.ndarray) -> VisionInputs:
    """`VisionInputs` holding `frames` (N, H, W, 3 uint8) as a 1-fps video sampled in full."""
    num_frames = int(frames.shape[0])
    return VisionInputs(
        frames=frames,
        timestamps=np.arange(num_frames, dtype=np.float64),
        metadata=make_metadata(1.0, num_frames, list(range(num_frames)), "decord"),
        video_path="synthetic",
        settings=VideoSettings(fps=1.0),
    )
