"""Every teacher signal on the demo task at Qwen's vocabulary size (151,936 rows): what it ships
per student position, what it costs the teacher and the learner, and what the student learns.

Each arm is one `vopd train` run of the demo's OPD preset from the competent student (val mIoU at
40-50% of the teacher's gain over the floor), on models padded to 151,936 rows
(`vopd models pad`: the extra ids unused and masked, so the policy is the demo's own), the same
seed, data order and step budget; the teacher runs as its own pool (it ships its signal to the
learner through the object store) except in `exact_colocated`, where its forward runs on each
learner rank and nothing is shipped. `exact_shipped` ships the whole distribution per position
and runs only `--cost-steps` steps: its bytes and seconds, not its learning. With the demo's
~400-token tokenizer the padded ids are masked, so "the whole distribution" is the tokenizer's
~400 entries (801 values per position measured: ids and log-probs plus one); a real Qwen
tokenizer fills the 151,936 rows, 600 KB per position in float32 — that arm's bytes do not scale
from here, the top-k arms' (2k + 1 values) and the co-located arm's (none) do.

Per arm (medians over the training steps after the first): teacher bytes per scored position,
teacher and learner seconds per step, the learner ranks' peak RSS (/proc VmHWM, read before
shutdown), the val mIoU curve, final and best. Results accumulate in
benchmarks/results/teacher_signals.json keyed by arm and seed.

With `--budget-s S` every learning arm trains for S seconds of wall-clock instead (evaluation and
checkpoints excluded; the step that crosses S is the last, evaluated one), keyed `ARM/sSEED/
wallclockSs`; run one arm at a time on an otherwise idle machine. `--report "S s"` prints the
Markdown table of the runs at that budget ("200 steps" for the step-budgeted ones) with each arm's
mean final val mIoU over its seeds and its difference to `exact_colocated`.

Usage (`bash benchmarks/teacher_signals.sh` prepares the padded models and runs the seeds):
  .venv/bin/python benchmarks/teacher_signals.py --seed 0 [--arms a,b] [--steps N | --budget-s S]
  .venv/bin/python benchmarks/teacher_signals.py --report "150 s"
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

RESULTS = ROOT / "benchmarks" / "results" / "teacher_signals.json"
MODELS = "artifacts/demo_v151936"
DATA = "artifacts/demo/data"
VOCAB = 151_936

# arm -> overrides on top of the common ones (objective, signal, where the teacher runs)
ARMS: dict[str, tuple[str, ...]] = {
    "exact_colocated": ("trainer.objective=opd_full_rkl", "teacher.colocate=true"),
    "tail8_rkl": ("trainer.objective=opd_topk_tail_rkl", "teacher.top_k=8"),
    "tail20_rkl": ("trainer.objective=opd_topk_tail_rkl", "teacher.top_k=20"),
    "tail64_rkl": ("trainer.objective=opd_topk_tail_rkl", "teacher.top_k=64"),
    "tail20_fkl": ("trainer.objective=opd_topk_tail_fkl", "teacher.top_k=20"),
    "sampled": ("trainer.objective=opd",),
    "exact_shipped": ("trainer.objective=opd_full_rkl",),
}
COST_ONLY = ("exact_shipped",)
# The processes that hold a learner rank (process titles "ray::<Actor>").
LEARNER_ACTORS = ("LearnerRank", "HybridRank")


def arm_overrides(
    arm: str, seed: int, steps: int, out: Path, lr: float, budget_s: float | None = None
) -> list[str]:
    """The run config's overrides for one arm (see the module docstring); `budget_s`: train for
    that many seconds of wall-clock instead of `steps` steps."""
    budget = (
        [f"trainer.budget_s={budget_s}", "trainer.steps=100000"]
        if budget_s
        else ["trainer.budget_s=null", f"trainer.steps={steps}"]
    )
    every = 50 if budget_s else min(50, steps)
    return [
        f"out_dir={out}",
        f"model.student={MODELS}/student_competent",
        f"model.teacher={MODELS}/teacher",
        f"data.train={DATA}/train.json",
        f"data.val={DATA}/val.json",
        f"data.video_root={DATA}/videos",
        *budget,
        f"trainer.seed={seed}",
        "trainer.mismatch_every=0",
        f"learner.lr={lr}",
        f"eval.every_steps={every}",
        f"checkpoint.every_steps={100000 if budget_s else steps}",
        *ARMS[arm],
    ]


def summarise(records: list[dict[str, Any]], peaks: list[dict[str, Any]]) -> dict[str, Any]:
    """The arm's figures from its ledger records and its processes' peak RSS."""
    steps = [r for r in records if r.get("step", 0) > 1 and "time" in r] or records

    def med(values: list[float]) -> float:
        return round(statistics.median(values), 4) if values else float("nan")

    per_position = [
        float(r.get("teacher_bytes") or 0.0) / float(r["tokens_teacher_scored"])
        for r in steps
        if r.get("tokens_teacher_scored")
    ]
    curve = [
        (int(r["step"]), round(float(r["val"]["mIoU"]), 2))
        for r in records
        if isinstance(r.get("val"), dict) and r["val"].get("mIoU") is not None
    ]
    learner_rss = [p["peak_rss_mb"] for p in peaks if p["process"].endswith(LEARNER_ACTORS)]
    teacher_rss = [p["peak_rss_mb"] for p in peaks if "Teacher" in p["process"]]
    return {
        "steps": len(records),
        "teacher_bytes_per_position": med(per_position),
        "teacher_values_per_position": med([b / 4 for b in per_position]),
        "teacher_s": med([float(r["time"].get("teacher", 0.0)) for r in steps]),
        "learner_s": med([float(r["time"].get("learner", 0.0)) for r in steps]),
        "step_s": med([float(r["time"].get("step", 0.0)) for r in steps]),
        "train_seconds": round(float(records[-1].get("train_seconds", 0.0)), 1),
        "learner_peak_rss_mb": max(learner_rss, default=None),
        "teacher_peak_rss_mb": max(teacher_rss, default=None),
        "load_avg_1m_median": med([float(r.get("load_avg_1m") or 0.0) for r in steps]),
        "val_curve": curve,
        "final_val_miou": curve[-1][1] if curve else None,
        "best_val_miou": max((v for _, v in curve), default=None),
    }


def run_arm(
    arm: str, seed: int, steps: int, lr: float, work: Path, budget_s: float | None = None
) -> dict[str, Any]:
    """Train one arm (a fresh run folder under `work`) and summarise it."""
    from model_ladder import process_peaks

    from launch.config import load_config
    from launch.driver import Driver

    out = work / (f"{arm}_s{seed}" + (f"_wallclock{budget_s:g}s" if budget_s else ""))
    if out.exists():
        shutil.rmtree(out)
    config = load_config(
        str(ROOT / "launch" / "configs" / "demo_opd.yaml"),
        arm_overrides(arm, seed, steps, out, lr, budget_s),
    )
    driver = Driver(config)
    try:
        driver.run()
        peaks = process_peaks()
    finally:
        driver.shutdown()
    from launch.ledger import read_ledger

    return summarise(read_ledger(out / "metrics.jsonl"), peaks)


def save(results: dict[str, Any]) -> None:
    """Write the results file atomically."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(tmp, RESULTS)


def budget_label(budget_s: float | None, steps: int) -> str:
    """How a run's budget reads in the results and the report: "150 s" or "200 steps"."""
    return f"{budget_s:g} s" if budget_s else f"{steps} steps"


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def report(results: dict[str, Any], budget: str) -> str:
    """The Markdown table of the runs at `budget` (per arm: medians of the per-step costs over its
    seeds, final val mIoU per seed, their mean and its difference to `exact_colocated`)."""
    by_arm: dict[str, list[dict[str, Any]]] = {}
    for run in results.get("runs", {}).values():
        if run.get("budget") == budget or run["arm"] in COST_ONLY:  # cost-only: any budget
            by_arm.setdefault(run["arm"], []).append(run)
    means: dict[str, float] = {}
    for arm, runs in by_arm.items():
        finals = [r["final_val_miou"] for r in runs if r.get("final_val_miou") is not None]
        if finals and arm not in COST_ONLY:
            means[arm] = statistics.mean(finals)
    exact = means.get("exact_colocated")
    lines = [
        "| arm | B / position | teacher s | learner s | step s | learner peak RSS MB | steps "
        "| final val mIoU per seed | mean | vs exact_colocated |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arm in ARMS:
        runs = sorted(by_arm.get(arm, []), key=lambda r: r["seed"])
        if not runs:
            continue

        def med(key: str, runs: list[dict[str, Any]] = runs) -> float | None:
            values = [float(r[key]) for r in runs if r.get(key) is not None]
            return statistics.median(values) if values else None

        if arm in COST_ONLY:
            finals, mean, delta = "cost only", "-", "-"
        else:
            finals = " / ".join(_fmt(r.get("final_val_miou")) for r in runs)
            mean = _fmt(means.get(arm))
            delta = f"{means[arm] - exact:+.1f}" if exact is not None and arm in means else "-"
        lines.append(
            f"| `{arm}` | {_fmt(med('teacher_bytes_per_position'), 0)} "
            f"| {_fmt(med('teacher_s'), 2)} | {_fmt(med('learner_s'), 2)} "
            f"| {_fmt(med('step_s'), 2)} | {_fmt(med('learner_peak_rss_mb'), 0)} "
            f"| {' / '.join(str(r['steps']) for r in runs)} | {finals} | {mean} | {delta} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the requested arms one after another and record each as it finishes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--arms", default=",".join(ARMS), help="comma-separated, in run order")
    parser.add_argument("--steps", type=int, default=200, help="training steps per learning arm")
    parser.add_argument("--cost-steps", type=int, default=10, help="steps of the cost-only arms")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--work", default="artifacts/teacher_signals")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help="seconds of training wall-clock per learning arm (instead of --steps)",
    )
    parser.add_argument(
        "--report", metavar="BUDGET", help='print the table of the runs at BUDGET ("150 s") only'
    )
    args = parser.parse_args(argv)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": {}}
    if args.report:
        print(report(results, args.report))
        return 0
    if args.budget_s is not None and args.budget_s <= 0:
        parser.error(f"--budget-s must be > 0, got {args.budget_s}")
    for arm in args.arms.split(","):
        if arm not in ARMS:
            parser.error(f"unknown arm {arm!r}; known: {', '.join(ARMS)}")
    for arm in args.arms.split(","):
        steps = args.cost_steps if arm in COST_ONLY else args.steps
        budget_s = None if arm in COST_ONLY else args.budget_s
        budget = budget_label(budget_s, steps)
        print(f"=== {arm} seed {args.seed}: {budget}", flush=True)
        summary = run_arm(arm, args.seed, steps, args.lr, Path(args.work), budget_s)
        summary.update({"arm": arm, "seed": args.seed, "lr": args.lr, "vocab": VOCAB})
        summary.update({"budget": budget, "overrides": list(ARMS[arm])})
        key = f"{arm}/s{args.seed}" + (f"/wallclock{budget_s:g}s" if budget_s else "")
        results["runs"][key] = summary
        results["command"] = " ".join(["benchmarks/teacher_signals.py", *(argv or sys.argv[1:])])
        save(results)
        print(json.dumps({k: v for k, v in summary.items() if k != "val_curve"}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
