"""How long may the demo's student be warm-started before it learns the task? Several seeds.

`vopd prepare-demo` warm-starts the student with supervised training on the answers so that it
knows the answer format but not the task (validation mIoU at the blind floor). Small models learn
this task in a sudden jump whose timing depends on the seed, so the warm-start length must sit
before the jump for every seed, not just one. This script runs the very SFT run `prepare-demo`
runs (same overrides, same distributed loop) for each seed, longer than the default, evaluates
every `--eval-every` steps, and records the validation curve per seed.

Usage (after `vopd prepare-demo`, whose dataset and untrained student it reuses):
    .venv/bin/python benchmarks/warm_start_seeds.py [--seeds 0,1,2] [--steps 600]
        [--eval-every 100] [--assets artifacts/demo] [--work artifacts/warm_start_seeds]
Writes benchmarks/results/warm_start_seeds.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def run_seed(assets: Path, work: Path, seed: int, steps: int, eval_every: int) -> list[dict]:
    """One warm-start run at `seed`; its validation records (step, mIoU, parse rate)."""
    from launch.demo_assets import DemoAssetSettings, _sft_overrides, _train_sft
    from launch.ledger import read_ledger

    settings = replace(DemoAssetSettings(out_dir=str(assets)), seed=seed)
    out = work / f"seed{seed}"
    overrides = _sft_overrides(
        settings,
        str(assets / "models" / "qwen3_vl-student"),
        out,
        steps,
        settings.student_lr,
        cosine=False,
    )
    overrides = [o for o in overrides if not o.startswith(("checkpoint.", "eval.every"))]
    overrides += [f"eval.every_steps={eval_every}", f"checkpoint.every_steps={steps}"]
    _train_sft(overrides)  # clears an earlier run in the same directory first
    return [
        {"step": r["step"], "mIoU": r["val"]["mIoU"], "parse_rate": r["val"]["parse_rate"]}
        for r in read_ledger(out / "metrics.jsonl")
        if "val" in r
    ]


def main() -> int:
    """Run every seed and write the curves."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--assets", default="artifacts/demo")
    parser.add_argument("--work", default="artifacts/warm_start_seeds")
    parser.add_argument("--out", default="benchmarks/results/warm_start_seeds.json")
    args = parser.parse_args()
    from launch.config import load_config
    from launch.demo_assets import DemoAssetSettings, load_assets
    from launch.driver import init_ray

    assets = Path(args.assets)
    recorded = load_assets(assets)
    if recorded is None:
        print(f"error: no prepared assets in {assets}: run `vopd prepare-demo` first")
        return 2
    init_ray(load_config("sft"))
    work = Path(args.work)
    curves = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        curves[str(seed)] = run_seed(assets, work, seed, args.steps, args.eval_every)
        points = ", ".join(f"{c['step']}: {c['mIoU']:.1f}" for c in curves[str(seed)])
        print(f"seed {seed}: {points}")
    result = {
        "command": " ".join(["benchmarks/warm_start_seeds.py", *sys.argv[1:]]),
        "default_student_steps": DemoAssetSettings().student_steps,
        "blind_floor_val": recorded["blind_floor"]["val"],
        "curves": curves,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
