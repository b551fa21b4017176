"""`vopd curriculum build --config CFG [key=value ...]`: offline predictions, the curriculum's
selection, and what it looks like.

Runs what a training run's first curriculum refresh runs (same code, seed and cache), so the
subset written here is the subset `vopd train` with the same config trains on; with the cache
warm, training starts without re-predicting. Writes under --out (default <out_dir>/curriculum):
scores.jsonl (every sample), subset.jsonl (the selection with its scores), histogram.png
(teacher IoU, student IoU and delta; for difficulty sampling the student IoU before and after
weighting) and summary.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

CURRICULUM_EPILOG = """\
settings: the `curriculum` section of the config (docs/CURRICULUM.md), e.g.
  vopd curriculum build --config opd curriculum.kind=tvdf curriculum.rule=bucket
predictions are cached under curriculum.cache_dir, keyed by model weights + dataset + settings.
exit status: 0 built; 1 bad data or no sample selected; 2 usage or config error.
"""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `curriculum` command (sub-command `build`) to the `vopd` parser."""
    parser = subparsers.add_parser(
        "curriculum",
        help="build the training curriculum (TVDF subset / difficulty weights) offline",
        description="Curriculum tools: offline predictions, selection, plots.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = actions.add_parser(
        "build",
        help="predict, select and write the subset (JSONL) and a histogram (PNG)",
        description=__doc__,
        epilog=CURRICULUM_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    build.add_argument("--config", required=True, help="YAML file or preset name")
    build.add_argument("overrides", nargs="*", help="dotted key=value overrides")
    build.add_argument("--out", metavar="DIR", help="output folder (default <out_dir>/curriculum)")
    build.set_defaults(func=run_build)


def run_build(args: argparse.Namespace) -> int:
    """Build the curriculum of a config; print where the files are; return the exit code."""
    from launch.config import ConfigError, load_config

    try:
        config = load_config(args.config, args.overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if config.curriculum.kind == "uniform":
        print(
            "error: curriculum.kind is uniform: nothing to build (tvdf|difficulty)", file=sys.stderr
        )
        return 2
    import ray

    from curriculum.factory import build_sampler
    from curriculum.report import write_report
    from launch.driver import curriculum_engines, init_ray
    from rollout.batch import PromptSpec
    from tvg.errors import DataError
    from tvg.formats import load_samples
    from tvg.video import VideoSettings

    data = config.data
    settings = VideoSettings(
        fps=data.fps,
        max_frames=data.max_frames,
        max_pixels=data.max_pixels,
        min_pixels=data.min_pixels,
    )
    try:
        report = load_samples(
            data.train, data.format, video_root=data.video_root, strict=not data.lenient
        )
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    prompts = [PromptSpec.from_sample(s, data.prompt_style, settings) for s in report.samples]
    started_ray = not ray.is_initialized()
    init_ray(config)
    try:
        sampler = build_sampler(
            config.curriculum,
            prompts,
            seed=config.trainer.seed,
            data_path=data.train,
            **curriculum_engines(config),
        )
        try:
            sampler.refresh(None, 0)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    finally:
        if started_ray:
            ray.shutdown()
    out = Path(args.out) if args.out else Path(config.out_dir) / "curriculum"
    paths = write_report(out, sampler, [p.sample_id for p in prompts])
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0
