"""`vopd demo`: the main job on an embedded default (see launch/greedy_preview.py)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `demo` sub-command."""
    parser = subparsers.add_parser(
        "demo",
        help="run the main job on the embedded default (tiny models, synthetic videos)",
        description=(
            "Build tiny models, generate synthetic videos, decode them with vLLM (CPU build) and "
            "score the parsed spans. Models are untrained until the OPD loop lands."
        ),
    )
    parser.add_argument("--out", default="artifacts/demo", help="output directory")
    parser.add_argument("--n-videos", type=int, default=8, help="synthetic test videos")
    parser.add_argument("--seed", type=int, default=0, help="seed for models and data")
    parser.add_argument(
        "--family", default="qwen3_vl", choices=("qwen3_vl", "qwen2_5_vl"), help="model family"
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from launch.greedy_preview import PreviewSettings, print_report, run_greedy_preview

    if args.n_videos < 1:
        print("error: --n-videos must be >= 1")
        return 2
    settings = PreviewSettings(
        out_dir=Path(args.out), n_videos=args.n_videos, seed=args.seed, family=args.family
    )
    report = run_greedy_preview(settings)
    print_report(report, settings.out_dir / "report.json")
    return 0
