"""Synthetic temporal-grounding data that a tiny video model can learn on a CPU.

Design (level 1 is the prototype's task measured as learnable in minutes, docs/GENERATED_DATA.md
"Prototype measurements"):
- Videos of 32 x 32 px at 1 fps, durations 8-32 s (even), grey background, ONE coloured square of
  12 px (8 named colours, random quadrant, +-2 px jitter) visible during one span; the query names
  the colour: "When is the {colour} square visible in the video? Give the start and end time in
  seconds."; the answer (tvg.prompts) "The event happens in {s:.1f} - {e:.1f} seconds.".
- Frame k shows time t = k seconds; the square is drawn on frames with start <= t < end.
- Span boundaries are even seconds (aligned to 2-frame groups). A span lasts 1 .. max(1,
  round(0.4 * D / 2)) groups, its start uniform among the positions that fit. The prototype did
  not state its span-length rule; this one reproduces its blind floor (mIoU ~28-31 for the answer
  "from ~20-25% to ~75-80% of the length").

Why level 1 is learnable by a ~1 M parameter Qwen3-VL: with temporal patch 2, one vision group is
2 frames = 2 s, and at 32 px with patch 16 and spatial merge 2 each group is exactly ONE vision
token. Qwen3-VL writes each group's timestamp as text before its token ("<0.5 seconds>",
"<2.5 seconds>", ... = (idx[2j] + idx[2j+1]) / 2 / fps). Because spans are aligned to groups, the
answer is read off two of those timestamps: start = (first group showing the colour) - 0.5 and
end = (last group showing it) + 1.5. The model only has to tell which single tokens show the named
colour and copy the neighbouring timestamp text; no sub-token timing is needed.

Harder levels (tvg.synth_levels.LEVELS, documented in docs/GENERATED_DATA.md): 2 adds distractor
squares of other colours; 3 uses 64 px frames with shapes and shared colours/shapes; 4 adds
16-64 s videos and whole-second boundaries; 5 makes the event an action (the object shakes).

Outputs of `write_dataset` (and `vopd synth`), deterministic by seed:
- DIR/videos/<video_id>.mp4 (PyAV; libx264 when available, else mpeg4);
- DIR/train.json, DIR/val.json, DIR/test.json in TimeLens-Bench format
  {"<video_id>": {"duration": D, "spans": [[s, e]], "queries": ["..."]}};
- DIR/stats.json: per split n, duration and span statistics and the blind floor
  (tvg.blind_floor: best [a*D, b*D] on train, its mIoU on every split).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tvg.blind_floor import DEFAULT_GRID_STEP, BlindAnswer, blind_miou, fit_blind_answer
from tvg.synth_levels import LEVELS, LevelSpec, get_level
from tvg.synth_render import encode_video, render_frames
from tvg.synth_scenes import SPLIT_CODES, SynthObject, SynthSample, generate_sample

__all__ = [
    "LEVELS",
    "SPLITS",
    "LevelSpec",
    "SynthObject",
    "SynthSample",
    "annotations",
    "blind_floor_report",
    "generate_split",
    "render_frames",
    "split_stats",
    "write_dataset",
]

SPLITS: tuple[str, ...] = tuple(SPLIT_CODES)


def generate_split(level: int, n: int, seed: int, split: str) -> list[SynthSample]:
    """Return the n scenes of `split` (no pixels, no files), deterministic by (seed, level)."""
    if split not in SPLIT_CODES:
        raise ValueError(f"unknown split {split!r}; choose from {SPLITS}")
    spec = get_level(level)
    return [generate_sample(seed, spec, split, i) for i in range(n)]


def annotations(samples: Sequence[SynthSample]) -> dict[str, dict[str, Any]]:
    """Return the samples as a TimeLens-Bench object {video_id: {duration, spans, queries}}."""
    return {
        s.video_id: {
            "duration": float(s.duration),
            "spans": [[float(s.span[0]), float(s.span[1])]],
            "queries": [s.query],
        }
        for s in samples
    }


def _summary(values: Sequence[float]) -> dict[str, float]:
    """Return min / max / mean of values (NaN-free; empty -> empty dict)."""
    if not values:
        return {}
    arr = np.asarray(values, dtype=np.float64)
    return {
        "min": round(float(arr.min()), 4),
        "max": round(float(arr.max()), 4),
        "mean": round(float(arr.mean()), 4),
    }


def split_stats(samples: Sequence[SynthSample], blind: BlindAnswer | None) -> dict[str, Any]:
    """Return n, duration / span-length statistics and the blind-floor mIoU of one split."""
    durations = [float(s.duration) for s in samples]
    spans = [s.span for s in samples]
    lengths = [e - b for b, e in spans]
    stats: dict[str, Any] = {
        "n": len(samples),
        "duration_s": _summary(durations),
        "span_length_s": _summary(lengths),
        "span_fraction": _summary([ln / d for ln, d in zip(lengths, durations, strict=True)]),
    }
    if blind is not None and samples:
        stats["blind_floor_miou"] = round(blind_miou(durations, spans, blind.a, blind.b), 2)
        stats["blind_answer"] = [blind.a, blind.b]
    return stats


def blind_floor_report(
    splits: dict[str, Sequence[SynthSample]], grid_step: float = DEFAULT_GRID_STEP
) -> tuple[BlindAnswer | None, str | None]:
    """Fit the blind answer on train (else the first non-empty split); return it and that split."""
    for name in ("train", *[s for s in splits if s != "train"]):
        samples = splits.get(name) or []
        if samples:
            fitted = fit_blind_answer(
                [s.duration for s in samples], [s.span for s in samples], grid_step
            )
            return fitted, name
    return None, None


def _write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temporary file then os.replace)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_dataset(
    out_dir: str | os.PathLike[str],
    n_train: int,
    n_val: int,
    n_test: int,
    seed: int,
    level: int = 1,
    codec: str = "auto",
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Generate, render and encode a synthetic dataset under `out_dir`; return the stats written.

    Writes videos/<id>.mp4, train.json, val.json, test.json and stats.json (see module doc).
    """
    spec = get_level(level)
    out = Path(out_dir)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    splits = {
        "train": generate_split(level, n_train, seed, "train"),
        "val": generate_split(level, n_val, seed, "val"),
        "test": generate_split(level, n_test, seed, "test"),
    }
    used_codec = None
    for name, samples in splits.items():
        for i, sample in enumerate(samples):
            used_codec = encode_video(
                render_frames(sample), out / "videos" / f"{sample.video_id}.mp4", spec.fps, codec
            )
            if progress and (i + 1) % 500 == 0:
                progress(f"{name}: {i + 1}/{len(samples)} videos")
        _write_json(out / f"{name}.json", annotations(samples))
    blind, chosen_on = blind_floor_report(splits)
    stats = {
        "level": level,
        "level_description": spec.description,
        "seed": seed,
        "codec": used_codec,
        "fps": spec.fps,
        "frame_size": spec.frame_size,
        "blind_floor": {
            "method": (
                "answer [a*D, b*D] from the duration D only; a < b on the grid "
                f"{{0, {DEFAULT_GRID_STEP}, ..., 1}}; best mIoU on '{chosen_on}', "
                "reported on every split"
            ),
            "chosen_on": chosen_on,
            "a": blind.a if blind else None,
            "b": blind.b if blind else None,
        },
        "splits": {name: split_stats(samples, blind) for name, samples in splits.items()},
    }
    _write_json(out / "stats.json", stats)
    return stats
