"""Pixels and files of the synthetic task: draw a `SynthSample`'s frames and encode them to mp4."""

from __future__ import annotations

import contextlib
import os
import tempfile
from functools import cache

import numpy as np

from tvg.synth_levels import BACKGROUND, COLOURS
from tvg.synth_scenes import SynthObject, SynthSample

# Encoder settings. libx264 at CRF 10 keeps the flat colours within a few levels of the source;
# mpeg4 (always in FFmpeg) is the fallback. One encoder thread keeps the output byte-stable.
X264_OPTIONS = {"crf": "10", "preset": "medium", "threads": "1"}
MPEG4_BIT_RATE = 4_000_000


def shape_mask(shape: str, size: int) -> np.ndarray:
    """Return a (size, size) bool mask of a square, a circle or an upward triangle."""
    if shape == "square":
        return np.ones((size, size), dtype=bool)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    if shape == "circle":
        r = size / 2
        return (yy - r) ** 2 + (xx - r) ** 2 <= r * r
    if shape == "triangle":  # apex at the top centre, base on the bottom row
        half_width = yy / size * (size / 2)
        return np.abs(xx - size / 2) <= half_width
    raise ValueError(f"unknown shape {shape!r}")


def object_active(obj: SynthObject, t: float) -> bool:
    """Return whether the object's event (visible / moving) is on at time t seconds."""
    return obj.start <= t < obj.end


def render_frames(sample: SynthSample) -> np.ndarray:
    """Return the sample's frames as a (T, H, W, 3) uint8 RGB array (frame k at t = k / fps)."""
    size = sample.frame_size
    frames = np.empty((sample.num_frames, size, size, 3), dtype=np.uint8)
    frames[:] = np.asarray(BACKGROUND, dtype=np.uint8)
    for k in range(sample.num_frames):
        t = k / sample.fps
        for obj in sample.objects:
            active = object_active(obj, t)
            if sample.motion:
                dx = (sample.motion_px if k % 2 == 0 else -sample.motion_px) if active else 0
            elif active:
                dx = 0
            else:
                continue
            mask = shape_mask(obj.shape, obj.size)
            region = frames[
                k, obj.top : obj.top + obj.size, obj.left + dx : obj.left + dx + obj.size
            ]
            region[mask] = COLOURS[obj.colour]
    return frames


@cache
def available_codec() -> str:
    """Return "libx264" when this PyAV build can encode H.264, else "mpeg4"."""
    import av

    try:
        av.codec.Codec("libx264", "w")
    except Exception:
        return "mpeg4"
    return "libx264"


def encode_video(
    frames: np.ndarray, path: str | os.PathLike[str], fps: int, codec: str = "auto"
) -> str:
    """Encode (T, H, W, 3) uint8 RGB frames to an mp4 at `fps`; return the codec used.

    codec: "libx264", "mpeg4" or "auto" (libx264 when available). The file is written under a
    temporary name in the same directory and moved into place, so an interrupted run never leaves
    a truncated video under the real name.
    """
    import av

    codec = available_codec() if codec == "auto" else codec
    path = os.fspath(path)
    height, width = frames.shape[1:3]
    fd, tmp = tempfile.mkstemp(prefix=".", suffix=".mp4", dir=os.path.dirname(path) or ".")
    os.close(fd)
    try:
        with av.open(tmp, mode="w", format="mp4") as container:
            stream = container.add_stream(codec, rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            if codec == "libx264":
                stream.options = dict(X264_OPTIONS)
            else:
                stream.bit_rate = MPEG4_BIT_RATE
                stream.thread_count = 1
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return codec
