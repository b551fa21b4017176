"""Compare our runs with the single-process TRL peer (benchmarks/trl_peer.py) in the same units:
training seconds (evaluation excluded) to reach 50/80/90 % of the teacher's gain over the
student's start on the validation split, the final val mIoU and the median seconds per phase.

Every run is a folder with a `launch.ledger` metrics.jsonl (ours from `vopd train` / `vopd demo`,
the peer's from trl_peer.py). The start and the target are the student's and the teacher's val
mIoU from the demo assets (artifacts/demo/assets.json), the same for every run, unless given.

Usage: .venv/bin/python benchmarks/compare_peer.py RUN_DIR [RUN_DIR ...] [--out table.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.summarize_runs import (
    GAIN_FRACTIONS,
    bracket_hits,
    eval_points,
    gain_bracket,
    gain_label,
    median_times,
)
from launch.ledger import read_ledger

STUDENTS = ("floor", "competent")


def starting_student(assets: dict[str, Any], student: str = "floor") -> tuple[str, float]:
    """The model a run starts from and its val mIoU, from the demo assets: "floor" = the prepared
    warm start, "competent" = the SFT-warmed student `vopd prepare-demo` also builds."""
    if student == "floor":
        return str(assets["student"]), float(assets["metrics"]["student"]["val"]["mIoU"])
    if student == "competent":
        entry = assets.get("student_competent")
        if not entry:
            raise ValueError("the demo assets hold no competent student: re-run vopd prepare-demo")
        return str(entry["model"]), float(entry["val"]["mIoU"])
    raise ValueError(f"unknown student {student!r}; choose one of {', '.join(STUDENTS)}")


def compare_row(records: list[dict[str, Any]], start: float, target: float) -> dict[str, Any]:
    """One run's line of the table, from its ledger records."""
    points = eval_points(records)
    steps = [r for r in records if r.get("step", 0) > 0]
    brackets = gain_bracket(points, start, target)
    return {
        "steps": steps[-1]["step"] if steps else 0,
        "train_seconds": round(steps[-1].get("train_seconds", 0.0), 1) if steps else 0.0,
        "time_to_gain": bracket_hits(brackets),
        "time_to_gain_bracket": brackets,
        "final_val_mIoU": round(points[-1][1], 2) if points else None,
        "best_val_mIoU": round(max(v for _, v in points), 2) if points else None,
        "median_step_seconds": median_times(records),
    }


def format_table(rows: dict[str, dict[str, Any]]) -> str:
    """The comparison as fixed-width text: one line per run."""
    labels = [gain_label(f) for f in GAIN_FRACTIONS]
    head = f"{'run':32s}{'steps':>7s}{'train s':>9s}" + "".join(f"{'t' + x:>9s}" for x in labels)
    head += f"{'final':>8s}{'best':>8s}  median s per phase"
    lines = [head]
    for name, row in rows.items():
        cells = "".join(
            f"{row['time_to_gain'][x]:9.1f}" if row["time_to_gain"][x] is not None else f"{'-':>9s}"
            for x in labels
        )
        phases = " ".join(f"{k}={v:.3f}" for k, v in row["median_step_seconds"].items())
        final, best = row["final_val_mIoU"], row["best_val_mIoU"]
        lines.append(
            f"{name:32s}{row['steps']:7d}{row['train_seconds']:9.1f}{cells}"
            f"{final if final is not None else float('nan'):8.2f}"
            f"{best if best is not None else float('nan'):8.2f}  {phases}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Print (and optionally write) the time-to-gain table of the given runs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run folders holding metrics.jsonl")
    parser.add_argument("--assets", default="artifacts/demo/assets.json")
    parser.add_argument("--start", type=float, default=None, help="default: --student's val mIoU")
    parser.add_argument(
        "--student", choices=STUDENTS, default="floor", help="the assets' student the runs began at"
    )
    parser.add_argument("--target", type=float, default=None, help="default: the assets' teacher")
    parser.add_argument("--out", default=None, help="also write the table as JSON")
    args = parser.parse_args(argv)
    start, target = args.start, args.target
    if start is None or target is None:
        assets = json.loads(Path(args.assets).read_text())
        start = starting_student(assets, args.student)[1] if start is None else start
        target = assets["metrics"]["teacher"]["val"]["mIoU"] if target is None else target
    rows = {
        Path(run).name: compare_row(read_ledger(Path(run) / "metrics.jsonl"), start, target)
        for run in args.runs
    }
    print(f"val mIoU: start {start:.2f}, teacher {target:.2f}; times in seconds of training")
    print(format_table(rows))
    result = {"start_val_mIoU": start, "teacher_val_mIoU": target, "runs": rows}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
