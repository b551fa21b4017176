"""One colocated learner micro-batch, with and without the two cuts of 2026-12-05.

The demo's micro-batch on one rank (8 rows of the demo's training split, 1 thread, float32): the
student's forward and backward and the co-located teacher's forward on one processor pass, as in
`Learner.train_step`. Four variants, the same inputs and seeds:
  stock     transformers' vision attention (one kernel call per frame), each model computes its
            own 3-D position ids;
  positions the teacher takes the student's position ids (`runtime.hf_scoring.with_position_ids`);
  grouped   the grouped vision attention (`runtime.vision_attention`), positions computed twice;
  both      both cuts;
  kept      both, with each prompt's processor output kept (`runtime.processed_prompts`) and the
            teacher's video features kept (`runtime.vision_features`): what the learner runs now
            on a prompt it has seen before.
Each variant's log-probs and gradients are checked equal to the stock ones (bitwise; for kept
the largest difference is recorded too: the teacher's forward takes precomputed features), then
timed (median of --repeats calls after 3 warm-ups, the variants taking turns).

Usage (after `vopd prepare-demo`; on an otherwise idle machine):
    .venv/bin/python benchmarks/learner_microbatch.py [--repeats 30]
Writes benchmarks/results/learner_microbatch.json and prints a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results" / "learner_microbatch.json"
VARIANTS = ("stock", "positions", "grouped", "both", "kept")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Check and time the four variants; write and return the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", default="artifacts/demo")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)

    import torch
    from transformers import AutoProcessor

    from benchmarks.results_io import write_results
    from launch.config import load_config
    from runtime import vision_attention
    from runtime.hf_compat import load_hf_model
    from runtime.hf_scoring import (
        ScoringItem,
        batch_log_probs,
        build_hf_batch,
        with_position_ids,
    )
    from runtime.processed_prompts import PromptCache
    from runtime.vision_features import FrozenVisionFeatures
    from tvg.formats import read_samples
    from tvg.frame_cache import FrameCache
    from tvg.video import build_vision_inputs

    torch.set_num_threads(1)
    torch.manual_seed(0)
    root = Path(args.assets)
    cfg = load_config(str(REPO / "launch" / "configs" / "demo_opd.yaml"))
    settings = cfg.data.video_settings()
    samples = read_samples(root / "data" / "train.json", video_root=root / "data" / "videos")
    processor = AutoProcessor.from_pretrained(root / "student")
    student = load_hf_model(root / "student")  # installs the grouped attention
    teacher = load_hf_model(root / "teacher").eval()
    for param in teacher.parameters():
        param.requires_grad_(False)
    student.train()
    answer = processor.tokenizer("The event happens in 3.0 - 7.5.", add_special_tokens=False)
    items = [
        ScoringItem(
            s.query, "timelens", build_vision_inputs(str(s.video), settings), answer["input_ids"]
        )
        for s in samples[: args.rows]
    ]
    frames = FrameCache()
    # The same items with their frames from a frame cache (keyed: kept prompts can key on them).
    kept_items = [
        dataclasses.replace(i, vision=build_vision_inputs(str(s.video), settings, frames))
        for i, s in zip(items, samples[: args.rows], strict=True)
    ]
    prompt_cache = PromptCache()
    teacher_features = FrozenVisionFeatures(teacher)
    classes = vision_attention.install()
    stock = {cls: vision_attention.stock_forward(cls) for cls in classes}
    grouped = vision_attention.grouped_vision_attention_forward

    def step(variant: str) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        for cls in classes:
            cls.forward = grouped if variant in ("grouped", "both") else stock[cls]
        student.zero_grad(set_to_none=True)
        if variant == "kept":
            batch = build_hf_batch(processor, kept_items, prompt_cache)
        else:
            batch = build_hf_batch(processor, items)
        if variant in ("positions", "both", "kept"):
            batch = with_position_ids(student, batch)
        scores = batch_log_probs(student, processor, batch)
        if variant == "kept":
            inputs = teacher_features.inputs_for(batch.inputs, batch.prompt_keys)
            batch = dataclasses.replace(batch, inputs=inputs)
        with torch.no_grad():
            teacher_scores = batch_log_probs(teacher, processor, batch)
        logprobs = torch.cat([s["logprobs"] for s in scores])
        teacher_lp = torch.cat([s["logprobs"] for s in teacher_scores])
        (logprobs - teacher_lp).pow(2).sum().backward()
        grads = [p.grad.clone() for p in student.parameters() if p.grad is not None]
        return logprobs.detach(), teacher_lp, grads

    reference = step("stock")
    equal, max_diff = {}, {}
    for variant in VARIANTS:
        out = step(variant)
        pairs = [(out[0], reference[0]), (out[1], reference[1])]
        pairs += list(zip(out[2], reference[2], strict=True))
        equal[variant] = all(torch.equal(a, b) for a, b in pairs)
        max_diff[variant] = max(float((a - b).abs().max()) for a, b in pairs)
    seconds: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for i in range(args.repeats + 3):
        for variant in VARIANTS:
            t0 = time.perf_counter()
            step(variant)
            if i >= 3:
                seconds[variant].append(time.perf_counter() - t0)
    for cls in classes:
        cls.forward = grouped
    batch = build_hf_batch(processor, items)
    result = {
        "rows": args.rows,
        "threads": 1,
        "sequence_length": int(batch.inputs["input_ids"].shape[1]),
        "video_patches": int(batch.inputs["pixel_values_videos"].shape[0]),
        "frames_per_batch": int(batch.inputs["video_grid_thw"][:, 0].sum()),
        "bitwise_equal_to_stock": equal,
        "max_abs_difference_to_stock": max_diff,
        "median_s": {v: round(statistics.median(s), 4) for v, s in seconds.items()},
        "min_s": {v: round(min(s), 4) for v, s in seconds.items()},
    }
    write_results(Path(args.out), result, "benchmarks/learner_microbatch.py", argv)
    base = result["median_s"]["stock"]
    print("| variant | median s | vs stock | bitwise equal | max abs difference |")
    print("|---|---|---|---|---|")
    for v in VARIANTS:
        m = result["median_s"][v]
        print(f"| {v} | {m:.4f} | {m / base:.3f}x | {equal[v]} | {max_diff[v]:.2g} |")
    return result


if __name__ == "__main__":
    main()
