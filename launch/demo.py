"""The main job (`make demo`): a real OPD run on the embedded default that must learn.

Prepares (or reuses) the assets — synthetic videos, a trained tiny teacher, a format-only student —
then runs on-policy distillation through the full distributed loop (local Ray; two DeepSpeed
learner ranks on gloo, each sampling with its own student module through transformers' `generate`
and running the teacher's forward in its own process: the colocated layout, `DEMO_LAYOUT`),
evaluates the student on the test split before and after, and prints a table against the blind
floor and the teacher.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from launch.demo_assets import DemoAssetSettings, prepare_demo

ROWS = ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU", "parse_rate")
# The layout `vopd demo` runs the demo_opd preset in: the colocated one (each learner rank samples
# with its own student module through the transformers engine, so a weight sync copies nothing,
# and runs the teacher's forward), the fastest on one 2-core machine (BENCHMARKS.md "Layouts on
# one machine"; at this model size transformers' generate beats vLLM's per-request and per-token
# overhead). The preset itself keeps separate pools with vLLM engines, the layout `vopd compare`'s
# arms share; `vopd demo rollout.engine=vllm` samples with vLLM in the ranks, and
# `vopd demo rollout.colocate=false teacher.colocate=false rollout.engine=vllm` runs the pools.
DEMO_LAYOUT = (
    "rollout.colocate=true",
    "teacher.colocate=true",
    "rollout.weight_transport=object_store",
    "rollout.engine=hf",
)


def run_demo(
    assets_settings: DemoAssetSettings, overrides: list[str] | None = None, force: bool = False
) -> dict[str, Any]:
    """Prepare assets, run the OPD preset, evaluate before/after; return and write the report."""
    from launch.config import load_config
    from launch.driver import Driver, evaluate
    from rollout.batch import PromptSpec
    from tvg.formats import read_samples

    assets = prepare_demo(assets_settings, force=force)
    data = Path(assets["data"])
    out = Path(assets_settings.out_dir)
    run_dir = out / "runs" / "opd"
    config = load_config(
        "demo_opd",
        [
            f"out_dir={run_dir}",
            f"model.student={assets['student']}",
            f"model.teacher={assets['teacher']}",
            f"data.train={data / 'train.json'}",
            f"data.val={data / 'val.json'}",
            f"data.video_root={data / 'videos'}",
            f"trainer.seed={assets_settings.seed}",
            *DEMO_LAYOUT,
            *(overrides or []),
        ],
    )
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    driver = Driver(config)
    try:
        test = [
            PromptSpec.from_sample(s, config.data.prompt_style, driver.video_settings)
            for s in read_samples(data / "test.json", video_root=data / "videos")
        ]
        print("[demo] evaluating the student on the test split before training")
        before = evaluate(driver.rollout, test, config.eval.max_new_tokens).metrics
        summary = driver.run()
        print("[demo] evaluating the student on the test split after training")
        after = evaluate(driver.rollout, test, config.eval.max_new_tokens).metrics
    finally:
        driver.shutdown()
    report = {
        "objective": config.trainer.objective,
        "steps": summary["steps"],
        "test": {
            "blind floor (duration only)": {"mIoU": assets["blind_floor"]["test"]},
            "student before": before,
            "student after": after,
            "teacher": assets["metrics"]["teacher"]["test"],
        },
        "ledger": str(run_dir / "metrics.jsonl"),
        "config": str(run_dir / "config.yaml"),
    }
    path = out / "report.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2))
    os.replace(tmp, path)
    report["path"] = str(path)
    return report


def print_demo_report(report: dict[str, Any]) -> None:
    """The before/after table on the test split."""
    print(f"\nOPD ({report['objective']}), {report['steps']} steps — test split (percent):")
    print(f"{'':28s}" + "".join(f"{name:>11s}" for name in ROWS))
    for label, metrics in report["test"].items():
        cells = "".join(
            f"{metrics[name]:11.1f}" if name in metrics else f"{'':11s}" for name in ROWS
        )
        print(f"{label:28s}{cells}")
    print(f"\nreport: {report['path']}\nledger: {report['ledger']}")
