"""Benchmark video decoding for model inputs: decord vs PyAV, and the frame cache (memory, disk).

Generates synthetic videos (nothing is downloaded), then times `tvg.video.build_vision_inputs`:
- cold decode with each backend (no cache);
- memory-cache hits (the G samples of a prompt after the first);
- disk-cache hits (a fresh process whose cache directory is already filled).

Two video sets: "synth-l1" (the level-1 synthetic task: 32 x 32 px, 1 fps, 8-32 s) and "360p"
(640 x 360 px, 30 fps, 10 s, moving content, sampled at 2 fps and resized to the default budget).

Usage:
    .venv/bin/python benchmarks/video_decode.py [--repeats 3] [--n-synth 64] [--n-360p 6]
Writes benchmarks/results/video_decode.json and prints a Markdown table and the command.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tvg.frame_cache import FrameCache  # noqa: E402
from tvg.synth import generate_split, render_frames  # noqa: E402
from tvg.synth_render import encode_video  # noqa: E402
from tvg.video import VideoSettings, build_vision_inputs  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "video_decode.json"


def make_360p_video(path: Path, seed: int, seconds: int = 10, fps: int = 30) -> None:
    """Write a 640 x 360, 30 fps clip with a gradient background and a moving block."""
    rng = np.random.default_rng(seed)
    base = np.zeros((360, 640, 3), dtype=np.uint8)
    base[..., 0] = np.linspace(0, 255, 640, dtype=np.uint8)[None, :]
    base[..., 1] = np.linspace(0, 255, 360, dtype=np.uint8)[:, None]
    base[..., 2] = rng.integers(0, 256)
    frames = np.repeat(base[None], seconds * fps, axis=0)
    for k in range(seconds * fps):
        x = (k * 5) % 540
        frames[k, 130:230, x : x + 100] = (255, 255, 255)
        frames[k, ::8, :, :] ^= np.uint8(k % 16)  # some texture that changes every frame
    encode_video(frames, path, fps)


def make_videos(root: Path, n_synth: int, n_360p: int) -> dict[str, list[Path]]:
    """Write both video sets under root; return their paths by set name."""
    sets: dict[str, list[Path]] = {"synth-l1": [], "360p": []}
    (root / "synth").mkdir(parents=True, exist_ok=True)
    for sample in generate_split(1, n_synth, seed=0, split="train"):
        path = root / "synth" / f"{sample.video_id}.mp4"
        encode_video(render_frames(sample), path, sample.fps)
        sets["synth-l1"].append(path)
    (root / "360p").mkdir(parents=True, exist_ok=True)
    for i in range(n_360p):
        path = root / "360p" / f"clip_{i}.mp4"
        make_360p_video(path, seed=i)
        sets["360p"].append(path)
    return sets


def time_pass(
    paths: list[Path], settings: VideoSettings, cache: FrameCache | None
) -> tuple[float, int]:
    """Build the inputs of every path once; return (seconds, sampled frames)."""
    start = time.perf_counter()
    frames = 0
    for path in paths:
        frames += build_vision_inputs(path, settings, cache).num_frames
    return time.perf_counter() - start, frames


def run(sets: dict[str, list[Path]], repeats: int, cache_root: Path) -> list[dict]:
    """Time every mode on every set; return one row per (set, mode) with the median pass."""
    rows = []
    for name, paths in sets.items():
        for mode in ("decord", "pyav", "memory-cache hit", "disk-cache hit"):
            backend = mode if mode in ("decord", "pyav") else "auto"
            settings = VideoSettings(backend=backend)
            times, frames = [], 0
            for r in range(repeats):
                if mode == "memory-cache hit":
                    cache = FrameCache()
                    time_pass(paths, settings, cache)  # fill
                elif mode == "disk-cache hit":
                    disk = cache_root / f"{name}-{r}"
                    time_pass(paths, settings, FrameCache(disk_dir=disk))  # fill the directory
                    cache = FrameCache(disk_dir=disk)  # a fresh process: empty memory
                else:
                    cache = None
                misses_before = cache.stats().misses if cache is not None else 0
                seconds, frames = time_pass(paths, settings, cache)
                times.append(seconds)
                if cache is not None:  # the timed pass must not decode anything
                    assert cache.stats().misses == misses_before, cache.stats()
            seconds = statistics.median(times)
            rows.append(
                {
                    "videos": name,
                    "mode": mode,
                    "n_videos": len(paths),
                    "sampled_frames": frames,
                    "seconds_median": round(seconds, 4),
                    "seconds_all": [round(t, 4) for t in times],
                    "videos_per_s": round(len(paths) / seconds, 1),
                    "frames_per_s": round(frames / seconds, 1),
                }
            )
            print(f"  {name:9s} {mode:17s} {rows[-1]['videos_per_s']:9.1f} videos/s", flush=True)
    return rows


def main() -> int:
    """Parse arguments, run the benchmark, write the JSON and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per mode (median)")
    parser.add_argument("--n-synth", type=int, default=64, help="level-1 synthetic videos")
    parser.add_argument("--n-360p", type=int, default=6, help="640x360 30 fps 10 s clips")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results JSON path")
    args = parser.parse_args()
    command = " ".join(
        [".venv/bin/python", "benchmarks/video_decode.py", *map(shlex.quote, sys.argv[1:])]
    )
    with tempfile.TemporaryDirectory(prefix="vopd-decode-bench-") as tmp:
        root = Path(tmp)
        print("generating videos ...", flush=True)
        sets = make_videos(root / "videos", args.n_synth, args.n_360p)
        print(f"timing (median of {args.repeats} passes) ...", flush=True)
        load_before = os.getloadavg()[0]
        rows = run(sets, args.repeats, root / "cache")
        load_after = os.getloadavg()[0]
    import av
    import decord

    result = {
        "command": command,
        "settings": VideoSettings().to_dict(),
        "decode_threads": 1,
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "decord": decord.__version__,
            "av": av.__version__,
            "load_avg_1min_before_after": [round(load_before, 2), round(load_after, 2)],
        },
        "video_sets": {
            "synth-l1": "level-1 synthetic task: 32x32 px, 1 fps, 8-32 s (all frames kept)",
            "360p": "640x360 px, 30 fps, 10 s, libx264; sampled at 2 fps -> 20 frames of 256x480",
        },
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print()
    print("| videos | mode | videos/s | frames/s | sampled frames |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['videos']} ({r['n_videos']}) | {r['mode']} | {r['videos_per_s']} | "
            f"{r['frames_per_s']} | {r['sampled_frames']} |"
        )
    print(f"\nwrote {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}")
    print(f"command: {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
