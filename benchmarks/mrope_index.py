"""Qwen3-VL position ids: transformers' per-run loop against `runtime.mrope_index`, on demo batches.

The demo's training prompts with a fixed completion, built as the learner builds them
(`runtime.hf_scoring.build_hf_batch`), in batches of --rows (8: one colocated rank's micro-batch;
16: the single-process peer's step, which computes the ids three times: generation, teacher,
student). For each batch size: the two methods' ids and deltas are checked equal, then each is
timed (median of --repeats calls after 5 warm-ups, the two taking turns), 1 thread.

Usage (after `vopd prepare-demo`; on an otherwise idle machine):
    .venv/bin/python benchmarks/mrope_index.py [--rows 8 16] [--repeats 50]
Writes benchmarks/results/mrope_index.json and prints a table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results" / "mrope_index.json"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Check and time both methods per batch size; write and return the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", default="artifacts/demo")
    parser.add_argument("--rows", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)

    import torch
    from transformers import AutoProcessor

    from benchmarks.results_io import write_results
    from launch.config import load_config
    from runtime import mrope_index
    from runtime.hf_compat import load_hf_model
    from runtime.hf_scoring import ScoringItem, build_hf_batch
    from tvg.formats import read_samples
    from tvg.video import build_vision_inputs

    torch.set_num_threads(1)
    root = Path(args.assets)
    cfg = load_config(str(REPO / "launch" / "configs" / "demo_opd.yaml"))
    settings = cfg.data.video_settings()
    samples = read_samples(root / "data" / "train.json", video_root=root / "data" / "videos")
    processor = AutoProcessor.from_pretrained(root / "student")
    backbone = load_hf_model(root / "student").model  # installs the array version
    fast = type(backbone).get_rope_index
    stock = mrope_index.stock_rope_index(type(backbone))
    answer = processor.tokenizer("The event happens in 3.0 - 7.5.", add_special_tokens=False)
    keys = ("input_ids", "mm_token_type_ids", "video_grid_thw", "attention_mask")
    cases = []
    for rows in args.rows:
        ids = answer["input_ids"]
        items = [
            ScoringItem(s.query, "timelens", build_vision_inputs(str(s.video), settings), ids)
            for s in samples[:rows]
        ]
        batch = build_hf_batch(processor, items)
        inputs = {k: batch.inputs[k] for k in keys}
        ours, theirs = fast(backbone, **inputs), stock(backbone, **inputs)
        equal = torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1])
        seconds: dict[str, list[float]] = {"transformers": [], "mrope_index": []}
        for i in range(args.repeats + 5):
            for name, method in (("transformers", stock), ("mrope_index", fast)):
                t0 = time.perf_counter()
                method(backbone, **inputs)
                if i >= 5:
                    seconds[name].append(time.perf_counter() - t0)
        cases.append(
            {
                "rows": rows,
                "sequence_length": int(inputs["input_ids"].shape[1]),
                "frames": int(inputs["video_grid_thw"][:, 0].sum()),
                "equal": bool(equal),
                "median_ms": {k: round(1e3 * statistics.median(v), 3) for k, v in seconds.items()},
            }
        )
    result = {"threads": 1, "repeats": args.repeats, "cases": cases}
    write_results(Path(args.out), result, "benchmarks/mrope_index.py", argv)
    print("| rows | length | frames | transformers ms | mrope_index ms | equal |")
    print("|---|---|---|---|---|---|")
    for c in cases:
        m = c["median_ms"]
        print(
            f"| {c['rows']} | {c['sequence_length']} | {c['frames']} | {m['transformers']:.3f} "
            f"| {m['mrope_index']:.3f} | {c['equal']} |"
        )
    return result


if __name__ == "__main__":
    main()
