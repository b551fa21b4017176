"""`vopd score`: grounding metrics of a prediction file against annotation files."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

SCORE_EPILOG = """\
metrics (percent, per dataset): R1@0.3, R1@0.5, R1@0.7 (IoU >= t), mIoU, parse_rate, n; for
QVHighlights datasets also mAP@0.5, mAP@0.75 and mAP (average over IoU 0.5:0.05:0.95), following
QVHighlights' standalone_eval. An unparseable answer and an annotated query with no prediction
both count as IoU 0 and unparsed; missing predictions are counted and reported.

prediction formats (detected unless --pred-format): timelens ({"<video>>>><query>>>><span>":
{"timestamps": [[s, e]], "answers": "..."}}), qvhighlights (JSONL with "qid" and
"pred_relevant_windows"), jsonl (id, or video_id + query; and span, windows or answer).

exit status: 0 scored; 1 bad annotation or prediction file; 2 usage error.
"""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `score` command to the `vopd` parser."""
    parser = subparsers.add_parser(
        "score",
        help="score predictions against annotations (R1@m, mIoU, QVHighlights mAP)",
        description="Score temporal-grounding predictions against ground-truth annotations.",
        epilog=SCORE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--annotations",
        action="append",
        required=True,
        metavar="FILE",
        help="annotation file (repeatable: one dataset per file or per record source)",
    )
    parser.add_argument("--predictions", required=True, metavar="FILE", help="prediction file")
    parser.add_argument("--format", help="annotation format (default: detected)")
    parser.add_argument(
        "--pred-format",
        help="prediction format: timelens, qvhighlights or jsonl (default: detected)",
    )
    parser.add_argument(
        "--lenient", action="store_true", help="skip bad annotation records instead of failing"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.set_defaults(func=run_score)


def _every_dataset(name: str) -> bool:
    """mAP selector for QVHighlights-format annotations: every dataset in them gets mAP."""
    return True


def _round(metrics: dict[str, float]) -> dict[str, float]:
    """Round metric values for output (n stays an int)."""
    return {k: (v if k == "n" else round(float(v), 4)) for k, v in metrics.items()}


def _print_table(result: dict[str, Any]) -> None:
    """Print the human-readable results table and notes."""
    datasets = result["datasets"]
    columns = ["n", "R1@0.3", "R1@0.5", "R1@0.7", "mIoU", "parse_rate"]
    if any("mAP" in m for m in datasets.values()):
        columns += ["mAP@0.5", "mAP@0.75", "mAP"]
    width = max([len("dataset"), *(len(name) for name in datasets)])
    print(f"{'dataset':<{width}}  " + "  ".join(f"{c:>10}" for c in columns))
    for name, metrics in datasets.items():
        cells = []
        for column in columns:
            value = metrics.get(column)
            if value is None:
                cells.append(f"{'-':>10}")
            elif column == "n":
                cells.append(f"{value:>10d}")
            else:
                cells.append(f"{value:>10.2f}")
        print(f"{name:<{width}}  " + "  ".join(cells))
    for name, count in result["missing_predictions"].items():
        if count:
            print(
                f"note: {count} annotated queries of {name} have no prediction "
                "(counted as unparseable, IoU 0)"
            )
    if result["unmatched_predictions"]:
        print(f"note: {result['unmatched_predictions']} predictions match no annotated query")
    if result["duplicate_predictions"]:
        print(f"note: {result['duplicate_predictions']} duplicate predictions were ignored")


def score_prediction_file(
    annotations: list[str],
    predictions: str,
    format: str | None = None,
    pred_format: str | None = None,
    lenient: bool = False,
) -> dict[str, Any]:
    """Score a prediction file against annotation files; return the `vopd score` result dict.

    Raises `tvg.errors.DataError` for a bad annotation or prediction file.
    """
    from tvg.formats import load_samples
    from tvg.metrics import is_qvhighlights, score_samples
    from tvg.predictions import match_predictions, read_predictions

    pred_fmt, entries = read_predictions(predictions, pred_format)
    datasets: dict[str, dict[str, float]] = {}
    missing: dict[str, int] = {}
    unmatched = {key.location for key, _ in entries}
    duplicates = 0
    for path in annotations:
        report = load_samples(path, format, strict=not lenient)
        if report.skipped:
            skipped = ", ".join(f"{k} {v}" for k, v in sorted(report.skipped.items()))
            print(
                f"warning: {path}: skipped {report.n_skipped} records ({skipped})",
                file=sys.stderr,
            )
        result = match_predictions(report.samples, entries, pred_fmt)
        unmatched &= set(result.unmatched)
        duplicates += len(result.duplicates)
        with_map = _every_dataset if report.format == "qvhighlights" else is_qvhighlights
        for name, score in score_samples(report.samples, result.by_sample, with_map).items():
            datasets[name] = _round(score.metrics)
            missing[name] = score.missing
    return {
        "datasets": datasets,
        "missing_predictions": missing,
        "unmatched_predictions": len(unmatched),
        "duplicate_predictions": duplicates,
        "prediction_format": pred_fmt,
    }


def print_score_table(result: dict[str, Any]) -> None:
    """Print a `score_prediction_file` result as `vopd score` does (table and notes)."""
    _print_table(result)


def run_score(args: argparse.Namespace) -> int:
    """Score the predictions; print a table (or JSON); return 0, or 1 on a data error."""
    from tvg.errors import DataError

    try:
        output = score_prediction_file(
            args.annotations, args.predictions, args.format, args.pred_format, args.lenient
        )
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(output, indent=2))
    else:
        _print_table(output)
    return 0
