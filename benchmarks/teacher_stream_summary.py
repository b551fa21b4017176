"""Median step seconds, per-phase split, teacher overlap and load of `teacher_stream.sh` runs.

Usage: python benchmarks/teacher_stream_summary.py OUT
Prints one JSON object per run, then one per arm over the steps of all its runs (`stream_true`,
`stream_false`). The final step (checkpoint) and the first (warm-up) of each run are left out.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

from launch.ledger import read_ledger

PHASES = ("rollout", "teacher", "reward", "learner", "sync")


def steady(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records without the first (warm-up) and the last (checkpoint) step."""
    return records[1:-1] or records


def summarize(steady: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the step time, each phase and the teacher keys, and the load range."""
    out: dict[str, Any] = {"counted": len(steady)}
    out["step_s"] = statistics.median(r["time"]["step"] for r in steady)
    for phase in PHASES:
        out[f"{phase}_s"] = statistics.median(r["time"].get(phase, 0.0) for r in steady)
    for key in ("teacher_busy_s", "teacher_overlap_s", "teacher_calls"):
        out[key] = statistics.median(r.get(key, 0.0) for r in steady)
    loads = [r["load_avg_1m"] for r in steady]
    out["load_avg_1m"] = [min(loads), statistics.median(loads), max(loads)]
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}


def main(out: str) -> None:
    """Print the summary of every run under `out`, then of each arm."""
    arms: dict[str, list[dict[str, Any]]] = {}
    for run in sorted(Path(out).glob("stream_*")):
        ledger = run / "metrics.jsonl"
        if ledger.is_file():
            records = steady(read_ledger(ledger))
            arms.setdefault("_".join(run.name.split("_")[:2]), []).extend(records)
            print(json.dumps({"run": run.name, **summarize(records)}))
    for arm, records in sorted(arms.items()):
        print(json.dumps({"arm": arm, **summarize(records)}))


if __name__ == "__main__":
    main(sys.argv[1])
