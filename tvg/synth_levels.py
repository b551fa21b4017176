"""Difficulty levels of the synthetic grounding task (see tvg/synth.py and docs/GENERATED_DATA.md).

Level 1 is the task measured as learnable on a 2-core CPU (docs/GENERATED_DATA.md); higher levels
add distractors, shapes, shared attributes, longer videos, finer span boundaries and motion, for
curricula and for GPU runs.
"""

from __future__ import annotations

from dataclasses import dataclass

# Named colours (RGB). Saturated and far apart so they survive H.264's 4:2:0 chroma subsampling.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 25, 25),
    "green": (20, 190, 40),
    "blue": (30, 60, 235),
    "yellow": (250, 230, 20),
    "cyan": (20, 220, 230),
    "magenta": (230, 30, 220),
    "white": (255, 255, 255),
    "black": (0, 0, 0),
}
BACKGROUND: tuple[int, int, int] = (128, 128, 128)
SHAPES: tuple[str, ...] = ("square", "circle", "triangle")

VISIBLE_QUERY = (
    "When is the {colour} {shape} visible in the video? Give the start and end time in seconds."
)
MOVE_QUERY = "When does the {colour} {shape} move? Give the start and end time in seconds."


@dataclass(frozen=True)
class LevelSpec:
    """Parameters of one difficulty level.

    frame_size: frames are frame_size x frame_size px, split into a 2 x 2 grid of cells; each
        object sits in its own cell.
    fps: frames per second of the written video (and of the ground-truth time grid).
    min_duration / max_duration: video length in seconds, drawn uniformly among even values.
    min_objects / max_objects: number of objects (target + distractors).
    shapes: shapes to draw from; with one shape the query still names it ("square").
    object_size: side of the object's bounding box in px; jitter: +- px offset of its position
        from the cell centre.
    span_unit: span boundaries are multiples of it in seconds (2 = aligned to Qwen-VL's 2-frame
        temporal groups at 1 fps).
    max_span_fraction: a span lasts 1 .. max(1, round(max_span_fraction * units)) units.
    shared_attributes: distractors may share the target's colour or shape (never both), so the
        query needs both words; otherwise every object has its own colour.
    motion: objects are always visible and the event is the object MOVING (shaking horizontally
        by motion_px every frame) during its span.
    """

    level: int
    description: str
    frame_size: int = 32
    fps: int = 1
    min_duration: int = 8
    max_duration: int = 32
    min_objects: int = 1
    max_objects: int = 1
    shapes: tuple[str, ...] = ("square",)
    object_size: int = 12
    jitter: int = 2
    span_unit: int = 2
    max_span_fraction: float = 0.4
    shared_attributes: bool = False
    motion: bool = False
    motion_px: int = 0

    @property
    def query_template(self) -> str:
        """Return the query template of this level (fields {colour} and {shape})."""
        return MOVE_QUERY if self.motion else VISIBLE_QUERY


LEVELS: dict[int, LevelSpec] = {
    1: LevelSpec(
        level=1,
        description=(
            "the prototype's learned task: 32 px, 1 fps, 8-32 s, one 12 px square of a named "
            "colour visible during one span aligned to 2-s groups"
        ),
    ),
    2: LevelSpec(
        level=2,
        description=(
            "level 1 plus 1-3 distractor squares of other colours, each visible during its own "
            "span (they may overlap the target's)"
        ),
        min_objects=2,
        max_objects=4,
    ),
    3: LevelSpec(
        level=3,
        description=(
            "64 px, 2-4 objects with shapes (square/circle/triangle); distractors share the "
            "target's colour or shape, so the query needs both words"
        ),
        frame_size=64,
        min_objects=2,
        max_objects=4,
        shapes=SHAPES,
        object_size=20,
        jitter=3,
        shared_attributes=True,
    ),
    4: LevelSpec(
        level=4,
        description="level 3 with longer videos (16-64 s) and span boundaries on whole seconds",
        frame_size=64,
        min_duration=16,
        max_duration=64,
        min_objects=2,
        max_objects=4,
        shapes=SHAPES,
        object_size=20,
        jitter=3,
        span_unit=1,
        shared_attributes=True,
    ),
    5: LevelSpec(
        level=5,
        description=(
            "an action: all objects always visible; the target shakes horizontally during its "
            "span, distractors shake during theirs; 64 px, 16-64 s, whole-second boundaries"
        ),
        frame_size=64,
        min_duration=16,
        max_duration=64,
        min_objects=2,
        max_objects=4,
        shapes=SHAPES,
        object_size=20,
        jitter=2,
        span_unit=1,
        shared_attributes=True,
        motion=True,
        motion_px=4,
    ),
}


def get_level(level: int) -> LevelSpec:
    """Return the spec of `level`, or raise ValueError naming the available levels."""
    try:
        return LEVELS[level]
    except KeyError:
        raise ValueError(f"unknown synthetic level {level}; choose from {sorted(LEVELS)}") from None
