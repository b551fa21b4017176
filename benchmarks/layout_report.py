"""Summarise `benchmarks/layouts.sh` runs: step time per layout and its run-to-run spread (the
`steps_<layout>_r<k>` runs), and time to 50/80/90% of the teacher's gain (the `series_*` runs,
including the TRL peer's), in one JSON file and a printed table.

Spread: over the repeats of one layout, (max - min) / mean of the runs' median step seconds
(the first `--warmup` steps of each run left out: engine and kernel warm-up).

Usage: .venv/bin/python benchmarks/layout_report.py OUT [--out benchmarks/results/layouts.json]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.compare_peer import STUDENTS, compare_row, format_table, starting_student
from launch.ledger import read_ledger

STEP_RUN = re.compile(r"^steps_(?P<layout>.+)_r(?P<repeat>\d+)$")


def step_summary(records: list[dict[str, Any]], warmup: int = 3) -> dict[str, Any]:
    """Median seconds per phase and per step of one run's training steps after `warmup`, its
    mean machine load, and the threads the run asked for."""
    steps = [r for r in records if r.get("step", 0) > warmup]
    if not steps:
        return {}
    names = sorted({name for r in steps for name in r.get("time", {})} - {"eval", "checkpoint"})
    phases = {
        name: round(statistics.median(r["time"].get(name, 0.0) for r in steps), 4) for name in names
    }
    return {
        "steps": len(steps),
        "median_step_s": phases.pop("step"),
        "phases": phases,
        "load_avg_1m": round(statistics.mean(r.get("load_avg_1m", 0.0) for r in steps), 2),
        "threads": steps[-1].get("threads", {}),
    }


def part_medians(records: list[dict[str, Any]], warmup: int = 3) -> dict[str, dict[str, float]]:
    """Median seconds of each part inside the learner and rollout phases (the ledger's
    `learner_parts`, `learner_rank_s` and `rollout_parts`) over the training steps after
    `warmup`; empty for runs whose ledger has none (the peer, older runs)."""
    steps = [r for r in records if r.get("step", 0) > warmup]
    out: dict[str, dict[str, float]] = {}
    for field in ("learner_parts", "rollout_parts"):
        rows = [r[field] for r in steps if r.get(field)]
        names = sorted({name for row in rows for name in row})
        if names:
            out[field] = {
                n: round(statistics.median(r.get(n, 0.0) for r in rows), 4) for n in names
            }
    ranks = [r["learner_rank_s"] for r in steps if "learner_rank_s" in r]
    if ranks:
        out.setdefault("learner_parts", {})["rank_total"] = round(statistics.median(ranks), 4)
    return out


def spread(values: list[float]) -> float | None:
    """(max - min) / mean, or None for fewer than two values."""
    if len(values) < 2:
        return None
    return (max(values) - min(values)) / statistics.mean(values)


def layout_steps(out: Path, warmup: int = 3) -> dict[str, Any]:
    """Per layout: each repeat's step summary, the median of the repeats' median step seconds
    and the spread of those medians."""
    layouts: dict[str, Any] = {}
    for run in sorted(p for p in out.iterdir() if p.is_dir()):
        match = STEP_RUN.match(run.name)
        if not match or not (run / "metrics.jsonl").is_file():
            continue
        records = read_ledger(run / "metrics.jsonl")
        summary = step_summary(records, warmup)
        if summary:
            summary.update(part_medians(records, warmup))
            layouts.setdefault(match["layout"], {"runs": {}})["runs"][run.name] = summary
    for entry in layouts.values():
        medians = [r["median_step_s"] for r in entry["runs"].values()]
        entry["median_step_s"] = round(statistics.median(medians), 4)
        entry["spread"] = None if spread(medians) is None else round(spread(medians), 4)
    return layouts


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Print and write the layouts' step times, spreads and times to the teacher's gain."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs_dir", help="the folder benchmarks/layouts.sh wrote")
    parser.add_argument("--out", default=None, help="write the JSON here")
    parser.add_argument("--assets", default="artifacts/demo/assets.json")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--student",
        choices=STUDENTS,
        default="floor",
        help="the student the series began at (layouts.sh: STUDENT=competent)",
    )
    args = parser.parse_args(argv)
    out = Path(args.runs_dir)
    result: dict[str, Any] = {"steps": layout_steps(out, args.warmup)}
    for layout, entry in result["steps"].items():
        shown = "-" if entry["spread"] is None else f"{100 * entry['spread']:.1f}%"
        print(f"{layout:10s} median step {entry['median_step_s']:.3f} s, spread {shown}")
        for name, run in entry["runs"].items():
            print(
                f"  {name:24s} {run['median_step_s']:.3f} s  load {run['load_avg_1m']:.1f}  "
                + " ".join(f"{k}={v:.3f}" for k, v in run["phases"].items())
            )
    series = sorted(p for p in out.iterdir() if p.is_dir() and p.name.startswith("series_"))
    if series:
        assets = json.loads(Path(args.assets).read_text())
        start = starting_student(assets, args.student)[1]
        target = assets["metrics"]["teacher"]["val"]["mIoU"]
        rows = {}
        for run in series:
            if (run / "metrics.jsonl").is_file():
                records = read_ledger(run / "metrics.jsonl")
                rows[run.name] = {
                    **compare_row(records, start, target),
                    **part_medians(records, args.warmup),
                }
        result["series"] = {"start_val_mIoU": start, "teacher_val_mIoU": target, "runs": rows}
        print(f"val mIoU: start {start:.2f}, teacher {target:.2f}; times in seconds of training")
        print(format_table(rows))
        for name, row in rows.items():
            for field in ("learner_parts", "rollout_parts"):
                if field in row:
                    shown = " ".join(f"{k}={v:.4f}" for k, v in row[field].items())
                    print(f"  {name:30s} {field}: {shown}")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
