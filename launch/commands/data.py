"""`vopd data check`: validate an annotation file and summarise it."""

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


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `data` command (with its `check` action) to the `vopd` parser."""
    parser = subparsers.add_parser(
        "data",
        help="inspect annotation files",
        description="Inspect temporal-grounding annotation files.",
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
