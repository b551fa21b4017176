"""`vopd synth`: write a synthetic temporal-grounding dataset (real mp4 videos + annotations)."""

from __future__ import annotations

import argparse
import sys

SYNTH_EPILOG = """\
levels (details: docs/SYNTHETIC_DATA.md):
  1  one coloured 12 px square, 32 px frames at 1 fps, 8-32 s, spans on 2-s groups
     (the task measured as learnable on a CPU)
  2  level 1 + 1-3 distractor squares of other colours
  3  64 px, 2-4 objects with shapes (square/circle/triangle), shared colours or shapes
  4  level 3 + 16-64 s videos and spans on whole seconds
  5  an action: the named object shakes during the span; all objects always visible

writes DIR/videos/<id>.mp4, DIR/{train,val,test}.json (TimeLens-Bench format) and DIR/stats.json
(split statistics and the blind floor: the best duration-only answer [a*D, b*D] chosen on train).
The same --seed always gives identical annotations and videos.
"""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `synth` command to the `vopd` parser."""
    parser = subparsers.add_parser(
        "synth",
        help="generate a synthetic grounding dataset",
        description="Generate a synthetic temporal-grounding dataset: mp4 videos, TimeLens-Bench "
        "annotations per split and statistics including the blind floor.",
        epilog=SYNTH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", required=True, help="output directory (created if missing)")
    parser.add_argument("--n-train", type=int, default=1000, help="training samples (default 1000)")
    parser.add_argument("--n-val", type=int, default=100, help="validation samples (default 100)")
    parser.add_argument("--n-test", type=int, default=100, help="test samples (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--level", type=int, default=1, help="difficulty level 1-5 (default 1)")
    parser.add_argument(
        "--codec",
        choices=("auto", "libx264", "mpeg4"),
        default="auto",
        help="video encoder (default: libx264 when available, else mpeg4)",
    )
    parser.set_defaults(func=run_synth)


def run_synth(args: argparse.Namespace) -> int:
    """Generate the dataset, print the split statistics and blind floor; return the exit code."""
    from tvg.synth import LEVELS, write_dataset

    if args.level not in LEVELS:
        print(
            f"vopd synth: unknown level {args.level}; choose from {sorted(LEVELS)}", file=sys.stderr
        )
        return 2
    if min(args.n_train, args.n_val, args.n_test) < 0:
        print("vopd synth: sample counts must be >= 0", file=sys.stderr)
        return 2
    stats = write_dataset(
        args.out,
        n_train=args.n_train,
        n_val=args.n_val,
        n_test=args.n_test,
        seed=args.seed,
        level=args.level,
        codec=args.codec,
        progress=lambda line: print(line, file=sys.stderr),
    )
    blind = stats["blind_floor"]
    print(f"wrote {args.out}: level {stats['level']}, seed {stats['seed']}, codec {stats['codec']}")
    if blind["a"] is not None:
        print(
            f"blind floor: answer [{blind['a']:.2f}*D, {blind['b']:.2f}*D] "
            f"(chosen on {blind['chosen_on']})"
        )
    for name, split in stats["splits"].items():
        if not split["n"]:
            print(f"  {name:5s}: n 0")
            continue
        dur, span = split["duration_s"], split["span_length_s"]
        print(
            f"  {name:5s}: n {split['n']}, duration {dur['min']:.0f}-{dur['max']:.0f} s "
            f"(mean {dur['mean']:.1f}), span {span['min']:.0f}-{span['max']:.0f} s "
            f"(mean {span['mean']:.1f}), blind floor mIoU {split['blind_floor_miou']:.2f}"
        )
    return 0
