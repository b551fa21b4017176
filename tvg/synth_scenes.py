"""Random scenes of the synthetic grounding task: which objects, where, and when (no pixels here).

Every sample draws from its own generator seeded by (seed, level, split, index), so a split does
not change when another split's size changes, and the same seed always gives the same scenes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tvg.synth_levels import COLOURS, LevelSpec

SPLIT_CODES: dict[str, int] = {"train": 0, "val": 1, "test": 2}


@dataclass(frozen=True)
class SynthObject:
    """One object: its look, its resting top-left corner (px) and its event window [start, end).

    The event is "visible" (or, at motion levels, "moving") for frames whose time t = k / fps
    satisfies start <= t < end.
    """

    colour: str
    shape: str
    top: int
    left: int
    size: int
    start: float
    end: float


@dataclass(frozen=True)
class SynthSample:
    """One synthetic video and its single query; objects[0] is the target."""

    video_id: str
    split: str
    level: int
    duration: int
    fps: int
    frame_size: int
    query: str
    objects: tuple[SynthObject, ...]
    motion: bool = False
    motion_px: int = 0

    @property
    def span(self) -> tuple[float, float]:
        """Return the ground-truth [start, end] of the query, in seconds (the target's window)."""
        target = self.objects[0]
        return target.start, target.end

    @property
    def num_frames(self) -> int:
        """Return the number of frames of the video."""
        return self.duration * self.fps


def sample_rng(seed: int, level: int, split: str, index: int) -> np.random.Generator:
    """Return the generator of sample `index` of `split` (independent of other samples)."""
    return np.random.default_rng(np.random.SeedSequence([seed, level, SPLIT_CODES[split], index]))


def _draw_span(rng: np.random.Generator, spec: LevelSpec, duration: int) -> tuple[float, float]:
    """Draw an event window aligned to spec.span_unit seconds, 1 .. max_span_fraction of it."""
    units = duration // spec.span_unit
    longest = max(1, round(spec.max_span_fraction * units))
    length = int(rng.integers(1, longest + 1))
    start = int(rng.integers(0, units - length + 1))
    return float(start * spec.span_unit), float((start + length) * spec.span_unit)


def _draw_looks(rng: np.random.Generator, spec: LevelSpec, n: int) -> list[tuple[str, str]]:
    """Draw (colour, shape) for n objects; the first (the target) is unique among them."""
    colours = list(COLOURS)
    target = (str(rng.choice(colours)), str(rng.choice(spec.shapes)))
    looks = [target]
    if not spec.shared_attributes:  # every object its own colour, shapes drawn freely
        others = [c for c in colours if c != target[0]]
        for colour in rng.permutation(others)[: n - 1]:
            looks.append((str(colour), str(rng.choice(spec.shapes))))
        return looks
    while len(looks) < n:
        share = rng.integers(3)  # 0: same colour, 1: same shape, 2: neither
        colour = target[0] if share == 0 else str(rng.choice(colours))
        shape = target[1] if share == 1 else str(rng.choice(spec.shapes))
        if (colour, shape) != target:
            looks.append((colour, shape))
    return looks


def generate_sample(seed: int, level_spec: LevelSpec, split: str, index: int) -> SynthSample:
    """Return sample `index` of `split` of a level; deterministic in (seed, level, split, index)."""
    spec = level_spec
    rng = sample_rng(seed, spec.level, split, index)
    even_durations = np.arange(spec.min_duration, spec.max_duration + 1, 2)
    duration = int(rng.choice(even_durations))
    n_objects = int(rng.integers(spec.min_objects, spec.max_objects + 1))
    looks = _draw_looks(rng, spec, n_objects)
    cells = rng.permutation(4)[:n_objects]
    cell = spec.frame_size // 2
    objects = []
    for (colour, shape), c in zip(looks, cells, strict=True):
        row, col = divmod(int(c), 2)
        centre_offset = (cell - spec.object_size) // 2
        top = row * cell + centre_offset + int(rng.integers(-spec.jitter, spec.jitter + 1))
        left = col * cell + centre_offset + int(rng.integers(-spec.jitter, spec.jitter + 1))
        start, end = _draw_span(rng, spec, duration)
        objects.append(SynthObject(colour, shape, top, left, spec.object_size, start, end))
    target = objects[0]
    query = spec.query_template.format(colour=target.colour, shape=target.shape)
    return SynthSample(
        video_id=f"synth_l{spec.level}_{split}_{index:06d}",
        split=split,
        level=spec.level,
        duration=duration,
        fps=spec.fps,
        frame_size=spec.frame_size,
        query=query,
        objects=tuple(objects),
        motion=spec.motion,
        motion_px=spec.motion_px,
    )
