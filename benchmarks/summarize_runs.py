"""Summarise a folder of `vopd train` runs (one per sub-folder) into one JSON file and gzipped
ledgers: per run its objective, start, lr, options, steps, training seconds, learner FLOPs, the
val mIoU curve, the final and best val mIoU, and the mean learner metrics.

Usage: .venv/bin/python benchmarks/summarize_runs.py RUNS_DIR --out benchmarks/results/NAME
(writes NAME.json beside NAME/ with the gzipped ledgers and configs).

`eval_points` and `time_to_gain` (training seconds to reach a share of the teacher's gain over
the student's start) also serve the single-process peer (benchmarks/trl_peer.py) and its
comparison with our runs (benchmarks/compare_peer.py): one definition for both sides.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from launch.ledger import read_ledger

# Shares of the teacher's gain over the student's start that `time_to_gain` reports.
GAIN_FRACTIONS: tuple[float, ...] = (0.5, 0.8, 0.9)


def eval_points(records: list[dict]) -> list[tuple[float, float]]:
    """(training seconds, val mIoU) of every ledger record that holds a validation result."""
    return [
        (float(r.get("train_seconds", 0.0)), float(r["val"]["mIoU"]))
        for r in records
        if isinstance(r.get("val"), dict) and r["val"].get("mIoU") is not None
    ]


def median_times(records: list[dict]) -> dict[str, float]:
    """Median seconds of every phase in the ledger records' "time" over the training steps
    (step > 0; a phase over the steps that have it), and "train_step": the median training
    seconds one step added to the clock (its "step" time less evaluation and checkpoints)."""
    steps = [r for r in records if r.get("step", 0) > 0]
    names = sorted({name for r in steps for name in r.get("time", {})})
    out = {
        name: round(statistics.median(r["time"][name] for r in steps if name in r["time"]), 4)
        for name in names
    }
    clock = [0.0] + [float(r["train_seconds"]) for r in steps if "train_seconds" in r]
    if len(clock) > 1:
        out["train_step"] = round(statistics.median(b - a for a, b in itertools.pairwise(clock)), 4)
    return out


def gain_label(fraction: float) -> str:
    """The key of one fraction in `time_to_gain`'s result ("50%" for 0.5)."""
    return f"{round(fraction * 100):d}%"


def time_to_gain(
    points: list[tuple[float, float]],
    start: float,
    target: float,
    fractions: tuple[float, ...] = GAIN_FRACTIONS,
) -> dict[str, float | None]:
    """Training seconds of the first eval point whose mIoU reaches start + f * (target - start),
    per fraction f (None where no point reaches it). `target` must exceed `start`."""
    return bracket_hits(gain_bracket(points, start, target, fractions))


def gain_bracket(
    points: list[tuple[float, float]],
    start: float,
    target: float,
    fractions: tuple[float, ...] = GAIN_FRACTIONS,
) -> dict[str, list[float] | None]:
    """Per fraction f, the interval (seconds of the last eval point before the first one at or
    above start + f * (target - start), that first point's seconds]: where the run crossed the
    level, whatever its evaluation grid (0.0 as the lower end when the first point already
    reaches it; None where no point does). `target` must exceed `start`."""
    if not target > start:
        raise ValueError(f"the target mIoU {target} must exceed the start {start}")
    ordered = sorted(points)
    out: dict[str, list[float] | None] = {}
    for fraction in fractions:
        level = start + fraction * (target - start)
        out[gain_label(fraction)] = None
        before = 0.0
        for t, v in ordered:
            if v >= level:
                out[gain_label(fraction)] = [before, t]
                break
            before = t
    return out


def bracket_hits(brackets: dict[str, list[float] | None]) -> dict[str, float | None]:
    """The upper ends of `gain_bracket`'s intervals: the time to each level (None: never)."""
    return {label: None if bracket is None else bracket[1] for label, bracket in brackets.items()}


def summarise(run: Path) -> dict:
    """The summary of one run directory (its config.yaml and metrics.jsonl)."""
    import yaml

    config = yaml.safe_load((run / "config.yaml").read_text())
    records = read_ledger(run / "metrics.jsonl")
    curve = [(r["step"], round(r["val"]["mIoU"], 2)) for r in records if "val" in r]
    learner_keys = sorted({k for r in records for k in r.get("learner", {})})
    learner = {
        k: round(sum(r.get("learner", {}).get(k, 0.0) for r in records) / len(records), 5)
        for k in learner_keys
    }
    return {
        "objective": config["trainer"]["objective"],
        "options": config["trainer"]["objective_kwargs"],
        "student": config["model"]["student"],
        "lr": config["learner"]["lr"],
        "prompts_per_step": config["trainer"]["prompts_per_step"],
        "samples_per_prompt": config["rollout"]["n"],
        "steps": records[-1]["step"],
        "train_seconds": round(records[-1]["train_seconds"], 1),
        "learner_flops": sum(r.get("learner_flops") or 0.0 for r in records),
        "completions": sum(
            r.get("completions_generated", r.get("completions", 0)) for r in records
        ),
        "distinct_prompts": len({i for r in records for i in r.get("sample_ids", [])}),
        "val_curve": curve,
        "final_val_mIoU": curve[-1][1] if curve else None,
        "best_val_mIoU": max(v for _, v in curve) if curve else None,
        "mean_grad_norm": round(
            sum(r["grad_norm"] for r in records if r["grad_norm"] is not None)
            / max(1, sum(r["grad_norm"] is not None for r in records)),
            3,
        ),
        "skipped_updates": sum(bool(r.get("skipped_update")) for r in records),
        "teacher_bytes_per_step": sum(r.get("teacher_bytes") or 0.0 for r in records)
        / len(records),
        "learner_means": learner,
        "mean_load_1m": round(sum(r.get("load_avg_1m", 0.0) for r in records) / len(records), 2),
    }


def main() -> None:
    """Summarise every finished run under RUNS_DIR."""
    parser = argparse.ArgumentParser()
    parser.add_argument("runs")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = {}
    for run in sorted(Path(args.runs).iterdir()):
        if not (run / "summary.json").is_file():
            continue
        runs[run.name] = summarise(run)
        with (
            open(run / "metrics.jsonl", "rb") as src,
            gzip.open(out / f"{run.name}.jsonl.gz", "wb") as dst,
        ):
            shutil.copyfileobj(src, dst)
        shutil.copy(run / "config.yaml", out / f"{run.name}.config.yaml")
    result = {
        "command": "bash benchmarks/fair_first_pass.sh; .venv/bin/python "
        "benchmarks/summarize_runs.py <runs> --out " + args.out,
        "runs": runs,
    }
    Path(f"{args.out}.json").write_text(json.dumps(result, indent=1))
    for name, r in runs.items():
        print(
            f"{name:28s} {r['objective']:18s} lr {r['lr']:<7g} steps {r['steps']:4d} "
            f"{r['train_seconds']:6.0f} s  val {r['val_curve']}"
        )


if __name__ == "__main__":
    main()
