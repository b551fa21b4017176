"""`vopd data check` (validate an annotation file and summarise it) and `vopd data corrupt`
(seeded label noise: corrupt a share of an annotation file's spans, tvg/label_noise.py)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

CHECK_EPILOG = """\
formats: timelens_bench, timelens_100k, charades_sta, activitynet, qvhighlights, ms_swift
(detected from the content unless --format is given).

exit status:
  0  every record is valid
  1  a bad record or file: in strict mode (the default) the first error is printed
     (file, line or key, what is wrong); with --lenient bad records are skipped, counted by
     reason and listed with examples, and the status is still 1 if any was skipped
  2  usage error
"""

CORRUPT_EPILOG = """\
kinds (each corrupted record draws one uniformly from --kinds):
  shift   the span moves by a random offset of at least half its length, keeping its length
          (when the video has no room for that: half a length toward the roomier side, clipped)
  shrink  a random sub-span covering 10-50% of the span
  swap    the span(s) of another query on the same video, else a random span of similar length
          whose IoU with the original is < 0.3

exactly round(share x N) of the N records (queries) are corrupted, halves rounded up; the seed
fixes which (nested: with one seed, the records corrupted at 0.25 are among those at 0.5, and
corrupted the same way). The output keeps the input's format (timelens_bench, activitynet,
timelens_100k, qvhighlights; charades_sta and ms_swift are refused). The input is loaded strictly:
a bad record (a query without a span included) is an error naming the file and the record.
Sidecar: the output's name with its suffix replaced by .noise.json (B.json -> B.noise.json): per
corrupted record its id, kind, original and new spans and IoU; the realised share and mean IoU.

exit status: 0 written; 1 bad input file or format that cannot be written; 2 usage error
"""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `data` command (with its `check` and `corrupt` actions) to the `vopd` parser."""
    parser = subparsers.add_parser(
        "data",
        help="inspect annotation files (check) and add label noise to them (corrupt)",
        description="Inspect temporal-grounding annotation files and add label noise to them.",
    )
    parser.set_defaults(func=lambda args: _print_help(parser))
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")
    check = actions.add_parser(
        "check",
        help="validate an annotation file and print a summary",
        description="Load an annotation file the way training and evaluation do, report bad "
        "records and print counts and duration / span statistics.",
        epilog=CHECK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("path", help="annotation file")
    check.add_argument("--format", help="annotation format (default: detected)")
    check.add_argument(
        "--video-root", help="folder of the videos; when given, missing video files are errors"
    )
    check.add_argument(
        "--video-ext",
        action="append",
        help="video extension to try for bare ids, in order (repeatable; "
        "default .mp4 .mkv .webm .avi)",
    )
    check.add_argument(
        "--lenient", action="store_true", help="skip bad records and count them by reason"
    )
    check.add_argument(
        "--allow-unlabelled",
        action="store_true",
        help="accept queries without spans (QVHighlights test split)",
    )
    check.add_argument("--json", action="store_true", help="print the summary as JSON")
    check.set_defaults(func=run_check)
    corrupt = actions.add_parser(
        "corrupt",
        help="corrupt a share of an annotation file's spans (seeded label noise)",
        description="Write a copy of an annotation file in which a chosen share of the records "
        "carry a corrupted span (shifted, shrunk or swapped to another event), plus a sidecar "
        "JSON recording every change.",
        epilog=CORRUPT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    corrupt.add_argument("--in", dest="in_path", required=True, help="input annotation file")
    corrupt.add_argument("--out", required=True, help="output annotation file (same format)")
    corrupt.add_argument(
        "--share", type=float, required=True, help="share of records to corrupt, in [0, 1]"
    )
    corrupt.add_argument("--seed", type=int, default=0, help="random seed >= 0 (default 0)")
    corrupt.add_argument(
        "--kinds",
        default="shift,shrink,swap",
        help="comma-separated corruption kinds allowed (default shift,shrink,swap)",
    )
    corrupt.add_argument("--format", help="annotation format of the input (default: detected)")
    corrupt.add_argument(
        "--decimals", type=int, default=2, help="round new times to this many places (default 2)"
    )
    corrupt.add_argument(
        "--json", action="store_true", help="print the sidecar without its records, as JSON"
    )
    corrupt.set_defaults(func=run_corrupt)


def _print_help(parser: argparse.ArgumentParser) -> int:
    """Print the `data` help (no action given) and return the usage exit status."""
    parser.print_help()
    return 2


def _fmt_stats(stats: dict[str, float] | None, unit: str = "") -> str:
    """Format min / mean / median / max on one line."""
    if stats is None:
        return "-"
    return " ".join(f"{k} {v:.2f}{unit}" for k, v in stats.items())


def _print_text(summary: dict[str, Any]) -> None:
    """Print the human-readable summary."""
    stats = summary["stats"]
    print(f"file:      {summary['path']}")
    print(f"format:    {summary['format']}")
    print(f"records:   {summary['records']}")
    print(f"samples:   {summary['samples']} (videos {stats['videos']})")
    for name, count in stats["sources"].items():
        print(f"  source {name}: {count}")
    if stats["unlabelled"]:
        print(f"unlabelled queries: {stats['unlabelled']}")
    if stats["without_duration"]:
        print(f"queries without a duration: {stats['without_duration']}")
    print(f"duration:  {_fmt_stats(stats['duration_s'], ' s')}")
    print(f"span:      {_fmt_stats(stats['span_s'], ' s')}")
    print(f"span/dur:  {_fmt_stats(stats['span_fraction'])}")
    print(f"clamped spans (within tolerance): {summary['clamped_spans']}")
    skipped = summary["skipped"]
    print(f"skipped:   {sum(skipped.values())}")
    for reason, count in skipped.items():
        print(f"  {reason}: {count}")
        for example in summary["examples"].get(reason, []):
            print(f"    e.g. {example}")


def run_check(args: argparse.Namespace) -> int:
    """Validate the annotation file; print the summary; return 0 if clean, else 1."""
    from tvg.errors import DataError
    from tvg.formats import DEFAULT_VIDEO_EXTS, load_samples
    from tvg.sample_stats import sample_stats

    exts = tuple(e if e.startswith(".") else f".{e}" for e in (args.video_ext or ()))
    try:
        report = load_samples(
            args.path,
            args.format,
            video_root=args.video_root,
            video_exts=exts or DEFAULT_VIDEO_EXTS,
            strict=not args.lenient,
            allow_unlabelled=args.allow_unlabelled,
        )
    except DataError as err:
        if args.json:
            error = {
                "message": str(err),
                "reason": err.reason,
                "path": err.path,
                "line": err.location.line,
                "key": err.location.key,
            }
            print(json.dumps({"ok": False, "error": error}, indent=2))
        else:
            print(f"error: {err}", file=sys.stderr)
            if err.reason not in ("unknown_format", "unreadable"):
                print("(use --lenient to skip bad records and count them)", file=sys.stderr)
        return 1
    summary = report.to_dict()
    summary["ok"] = report.clean
    summary["stats"] = sample_stats(report.samples)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_text(summary)
    return 0 if report.clean else 1


def run_corrupt(args: argparse.Namespace) -> int:
    """Write the corrupted file and its sidecar; print a summary; return the exit status."""
    from tvg.errors import DataError
    from tvg.label_noise import LabelNoiseError, check_share, corrupt_file, parse_kinds

    try:
        check_share(args.share)
        kinds = parse_kinds(args.kinds)
        if args.seed < 0:
            raise LabelNoiseError(f"seed must be an integer >= 0, got {args.seed}")
        if args.decimals < 0:
            raise LabelNoiseError(f"decimals must be >= 0, got {args.decimals}")
    except LabelNoiseError as err:
        print(f"vopd data corrupt: {err}", file=sys.stderr)
        return 2
    try:
        summary = corrupt_file(
            args.in_path,
            args.out,
            share=args.share,
            seed=args.seed,
            kinds=kinds,
            format=args.format,
            decimals=args.decimals,
        )
    except (DataError, LabelNoiseError) as err:
        print(f"vopd data corrupt: error: {err}", file=sys.stderr)
        return 1
    if args.json:
        brief = {k: v for k, v in summary.items() if k != "records"}
        print(json.dumps(brief, indent=2))
        return 0
    mean = summary["mean_iou"]
    kinds_done = ", ".join(f"{k} {n}" for k, n in summary["by_kind"].items()) or "none"
    print(f"wrote {summary['output']} ({summary['format']}, seed {summary['seed']})")
    print(
        f"corrupted {summary['n_corrupted']} of {summary['n_records']} records "
        f"(share {summary['share_realised']:.4f}; by kind: {kinds_done})"
    )
    print(f"mean IoU(original, corrupted): {'-' if mean is None else f'{mean:.3f}'}")
    print(f"sidecar: {summary['sidecar']}")
    return 0
