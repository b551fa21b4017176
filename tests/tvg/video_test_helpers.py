"""Helpers shared by the video tests: small videos whose frames encode their own index."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tvg.synth_render import encode_video

LEVEL_STEP = 8  # frame k is filled with grey level LEVEL_STEP * k


def index_video(path: Path, n_frames: int, fps: int, height: int = 64, width: int = 96) -> Path:
    """Write an mp4 whose frame k is a flat grey of level LEVEL_STEP * k; return the path."""
    assert LEVEL_STEP * (n_frames - 1) <= 255
    levels = (np.arange(n_frames) * LEVEL_STEP).astype(np.uint8)
    frames = np.broadcast_to(levels[:, None, None, None], (n_frames, height, width, 3)).copy()
    encode_video(frames, path, fps)
    return path


def frame_levels(frames: np.ndarray) -> np.ndarray:
    """Return the mean grey level of each frame (to read back which source frame it was)."""
    return frames.reshape(frames.shape[0], -1).mean(axis=1)
