"""The step's critical path from a run's ledger: what one step would take if each pool (rollout,
teacher, learner) had devices of its own, strictly on-policy, one step off-policy, and with
every pool busy all the time.

Per training step (the first, which pays the start-up, is left out) the ledger holds the driver's
seconds per phase (`time`: rollout, teacher — with `teacher.stream` only the part sampling did not
hide —, reward, learner, sync, step) and the teacher pool's own working seconds
(`teacher_busy_s`, summed over its workers). From the medians over the steps:
- `on_policy`: rollout + teacher + reward + learner + sync, the phases one after another; the
  step less this is the loop's own overhead (`overhead`: bookkeeping between the phases).
  Strictly on-policy, step t+1's sampling needs step t's weights, so the phases cannot overlap
  across steps; only the teacher's scoring can hide under sampling (streaming), which the
  measured teacher phase already reflects.
- `one_step_off`: max(rollout + teacher + reward, learner + sync) — sampling of step t+1 runs
  while step t trains, so the longer of the two halves sets the pace.
- `busiest_pool`: max(rollout, teacher_busy / teacher workers, learner + sync) — the bound of a
  fully asynchronous pipeline.
- `share`: each phase's share of the measured step.
Measured on a shared CPU machine, each phase's seconds include its contention for the cores with
the other pools' processes; on devices of their own the phases would be shorter, so these are the
shape of the critical path, not a prediction of a cluster's step.

Usage: .venv/bin/python benchmarks/critical_path.py NAME=RUN_DIR [NAME=RUN_DIR ...]
         [--out benchmarks/results/critical_path.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from launch.ledger import read_ledger

PHASES: tuple[str, ...] = ("rollout", "teacher", "reward", "learner", "sync")


def step_paths(record: dict[str, Any], teacher_workers: int) -> dict[str, float]:
    """One ledger record's phases and the critical paths derived from them (module docstring)."""
    t = {name: float(record.get("time", {}).get(name, 0.0)) for name in (*PHASES, "step")}
    serial = sum(t[name] for name in PHASES)
    busy = float(record.get("teacher_busy_s") or 0.0) / max(1, teacher_workers)
    return {
        **{name: t[name] for name in (*PHASES, "step")},
        "teacher_busy_per_worker": busy,
        "overhead": t["step"] - serial,
        "on_policy": serial,
        "one_step_off": max(t["rollout"] + t["teacher"] + t["reward"], t["learner"] + t["sync"]),
        "busiest_pool": max(t["rollout"], busy, t["learner"] + t["sync"]),
    }


def _teacher_workers(run: Path) -> int:
    """The teacher pool's worker count from the run's saved config (1 when it has none)."""
    import yaml

    config_file = run / "config.yaml"
    if not config_file.exists():
        return 1
    teacher = (yaml.safe_load(config_file.read_text()) or {}).get("teacher") or {}
    return int(teacher.get("num_workers") or 1)


def analyse(run: Path) -> dict[str, Any]:
    """Medians over a run's training steps (step > 1, without evaluation or checkpoint time in the
    step) of `step_paths`, and each phase's share of the measured step."""
    records = [r for r in read_ledger(run / "metrics.jsonl") if r.get("step", 0) > 1]
    records = [r for r in records if "val" not in r and "time" in r]
    if not records:
        raise SystemExit(f"{run}: no training steps after the first in its ledger")
    workers = _teacher_workers(run)
    rows = [step_paths(r, workers) for r in records]
    med = {key: round(statistics.median(row[key] for row in rows), 4) for key in rows[0]}
    step = med["step"] or float("nan")
    return {
        "run": os.path.relpath(run),
        "steps": len(rows),
        "teacher_workers": workers,
        "median_s": med,
        "share_of_step": {name: round(med[name] / step, 3) for name in (*PHASES, "overhead")},
        "speedup_vs_measured": {
            name: round(step / med[name], 2) if med[name] else None
            for name in ("on_policy", "one_step_off", "busiest_pool")
        },
    }


def table(results: dict[str, dict[str, Any]]) -> str:
    """A markdown table of the analysed runs: the measured step, its phases and the three paths."""
    cols = ("step", *PHASES, "overhead", "on_policy", "one_step_off", "busiest_pool")
    lines = ["| run | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, res in results.items():
        med = res["median_s"]
        lines.append(f"| {name} | " + " | ".join(f"{med[c]:.3f}" for c in cols) + " |")
    return "\n".join(lines)


def main() -> None:
    """Analyse the runs named on the command line; print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="NAME=RUN_DIR (a `vopd train` output folder)")
    parser.add_argument("--out", default="benchmarks/results/critical_path.json")
    args = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    for spec in args.runs:
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = Path(spec).name, spec
        results[name] = analyse(Path(path))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps({"command": " ".join(sys.argv), "runs": results}, indent=2) + "\n")
    os.replace(tmp, out)
    print(table(results))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
