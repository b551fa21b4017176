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

Usage (after `vopd prepare-demo` and padding its models, see BENCHMARKS.md):
  .venv/bin/python benchmarks/teacher_signals.py --seed 0 [--arms a,b] [--steps 200]
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


def arm_overrides(arm: str, seed: int, steps: int, out: Path, lr: float) -> list[str]:
    """The run config's overrides for one arm (see the module docstring)."""
    return [
        f"out_dir={out}",
        f"model.student={MODELS}/student_competent",
        f"model.teacher={MODELS}/teacher",
        f"data.train={DATA}/train.json",
        f"data.val={DATA}/val.json",
        f"data.video_root={DATA}/videos",
        "trainer.budget_s=null",
        f"trainer.steps={steps}",
        f"trainer.seed={seed}",
        "trainer.mismatch_every=0",
        f"learner.lr={lr}",
        f"eval.every_steps={min(50, steps)}",
        f"checkpoint.every_steps={steps}",
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


def run_arm(arm: str, seed: int, steps: int, lr: float, work: Path) -> dict[str, Any]:
    """Train one arm (a fresh run folder under `work`) and summarise it."""
    from model_ladder import process_peaks

    from launch.config import load_config
    from launch.driver import Driver

    out = work / f"{arm}_s{seed}"
    if out.exists():
        shutil.rmtree(out)
    config = load_config(
        str(ROOT / "launch" / "configs" / "demo_opd.yaml"),
        arm_overrides(arm, seed, steps, out, lr),
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


def main(argv: list[str] | None = None) -> int:
    """Run the requested arms one after another and record each as it finishes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--arms", default=",".join(ARMS), help="comma-separated, in run order")
    parser.add_argument("--steps", type=int, default=200, help="training steps per learning arm")
    parser.add_argument("--cost-steps", type=int, default=10, help="steps of the cost-only arms")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--work", default="artifacts/teacher_signals")
    args = parser.parse_args(argv)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": {}}
    for arm in args.arms.split(","):
        if arm not in ARMS:
            parser.error(f"unknown arm {arm!r}; known: {', '.join(ARMS)}")
    for arm in args.arms.split(","):
        steps = args.cost_steps if arm in COST_ONLY else args.steps
        print(f"=== {arm} seed {args.seed}: {steps} steps", flush=True)
        summary = run_arm(arm, args.seed, steps, args.lr, Path(args.work))
        summary.update({"arm": arm, "seed": args.seed, "lr": args.lr, "vocab": VOCAB})
        summary["overrides"] = list(ARMS[arm])
        results["runs"][f"{arm}/s{args.seed}"] = summary
        results["command"] = " ".join(["benchmarks/teacher_signals.py", *(argv or sys.argv[1:])])
        save(results)
        print(json.dumps({k: v for k, v in summary.items() if k != "val_curve"}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
