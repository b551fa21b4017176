"""`vopd synth`: write a synthetic temporal-grounding dataset (real mp4 videos + annotations)."""

from __future__ import annotations

import argparse
import sys

SYNTH_EPILOG = """\
levels (details: docs/GENERATED_DATA.md):
  1  one coloured 12 px square, 32 px frames at 1 fps, 8-32 s, spans on 2-s groups
     (the task measured as learnable on a CPU)
  2  level 1 + 1-3 distractor squares of other colours
  3  64 px, 2-4 objects with shapes (square/circle/triangle), shared colours or shapes
  4  level 3 + 16-64 s videos and spans on whole seconds
  5  an action: the named object shakes during the span; all objects always visible

writes DIR/videos/<id>.mp4, DIR/{train,val,test}.json (TimeLens-Bench format) and DIR/stats.json
(split statistics and the blind floor: the best duration-only answer [a*D, b*D] chosen on train).
The same --seed always gives identical annotations and videos.

--label-noise SHARE (noisy-label arms, docs/DATASETS.md §7 "Label noise"): train.json then carries
corrupted spans on round(SHARE x n_train) samples (`vopd data corrupt` with the same --seed), the
clean labels are kept in train.clean.json and the changes listed in train.noise.json; val and test
stay clean, and stats.json (blind floor included) describes the clean labels.
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
    parser.add_argument(
        "--label-noise",
        type=float,
        default=None,
        metavar="SHARE",
        help="corrupt this share of the train split's spans, in [0, 1] (default: none)",
    )
    parser.add_argument(
        "--label-noise-kinds",
        default="shift,shrink,swap",
        help="corruption kinds for --label-noise (default shift,shrink,swap)",
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
    label_noise = getattr(args, "label_noise", None)
    noise_kinds = getattr(args, "label_noise_kinds", None)
    if label_noise is not None:
        from tvg.label_noise import LabelNoiseError, check_share, parse_kinds

        try:
            check_share(label_noise)
            parse_kinds(noise_kinds)
            if args.seed < 0:
                raise LabelNoiseError(f"--label-noise needs a seed >= 0, got {args.seed}")
        except LabelNoiseError as err:
            print(f"vopd synth: --label-noise: {err}", file=sys.stderr)
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
    noise_line = _train_label_noise(args.out, label_noise, args.seed, noise_kinds)
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
    if noise_line:
        print(noise_line)
    return 0


def _train_label_noise(out: str, share: float | None, seed: int, kinds: str | None) -> str | None:
    """Corrupt DIR/train.json in place when `share` is set (clean copy kept); return a summary line.

    Without `share`, a train.clean.json / train.noise.json left by an earlier noisy run into the
    same folder is removed, so that no sidecar describes a train.json it does not match.
    """
    from pathlib import Path

    train = Path(out) / "train.json"
    clean = train.with_name("train.clean.json")
    if share is None:
        for stale in (clean, train.with_name("train.noise.json")):
            stale.unlink(missing_ok=True)
        return None
    from tvg.label_noise import corrupt_file

    train.replace(clean)
    summary = corrupt_file(clean, train, share=share, seed=seed, kinds=kinds)
    mean = summary["mean_iou"]
    return (
        f"label noise: {summary['n_corrupted']} of {summary['n_records']} train spans corrupted "
        f"(mean IoU {'-' if mean is None else f'{mean:.3f}'}); clean labels in {clean.name}, "
        f"changes in {Path(summary['sidecar']).name}"
    )
