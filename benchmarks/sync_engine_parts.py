"""Where an in-place weight update spends its time inside one vLLM engine (the engine side of the
colocated layout's sync, `rollout.colocate`).

Builds one in-process vLLM engine on a model directory, then pushes that model's own weights
into it `--repeats` times, timing each part of `VLLMEngine.update_weights` separately: vLLM's
layer-wise reload (`begin`: enter reload mode; `load`: the model's `load_weights`; `finish`:
finalise and drop derived caches), the prefix- and encoder-cache resets, and the engine's digest
pass (`WeightTracker`, what `rollout.verify_sync` checks); plus the whole `load_state_dict` call.
Medians over the repeats after the first. Writes benchmarks/results/sync_engine_parts.json.

Usage:
  .venv/bin/python benchmarks/sync_engine_parts.py [--model artifacts/demo/student] [--repeats 9]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from benchmarks.results_io import write_results  # noqa: E402 (after the path set-up)

RESULTS = ROOT / "benchmarks" / "results" / "sync_engine_parts.json"


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(model: str, repeats: int) -> dict[str, Any]:
    """Median milliseconds of each part of one in-place update, and the weights' size."""
    from safetensors.torch import load_file

    from rollout.engine_config import EngineConfig
    from rollout.engine_vllm import VLLMEngine, _begin_reload, _finish_reload, _load_bucket
    from runtime.checksums import tensor_digest

    state: dict[str, Any] = {}
    for file in sorted(Path(model).glob("*.safetensors")):
        state.update(load_file(str(file)))
    if not state:
        raise SystemExit(f"no *.safetensors weights in {model}")
    items = list(state.items())
    engine = VLLMEngine(EngineConfig(model=model))
    llm = engine.llm
    parts: dict[str, list[float]] = {
        "begin": [], "load": [], "finish": [], "reset_prefix_cache": [],
        "reset_encoder_cache": [], "digests": [], "whole_update": [],
    }  # fmt: skip
    for version in range(1, repeats + 1):
        parts["begin"].append(_timed(lambda: llm.collective_rpc(_begin_reload)))
        parts["load"].append(_timed(lambda: llm.collective_rpc(_load_bucket, args=(items,))))
        parts["finish"].append(_timed(lambda: llm.collective_rpc(_finish_reload)))
        parts["reset_prefix_cache"].append(_timed(llm.reset_prefix_cache))
        parts["reset_encoder_cache"].append(_timed(llm.llm_engine.reset_encoder_cache))
        parts["digests"].append(_timed(lambda: [tensor_digest(t) for t in state.values()]))
        parts["whole_update"].append(
            _timed(lambda v=version: engine.load_state_dict(state, version=v))
        )
    return {
        "model": model,
        "tensors": len(state),
        "megabytes": round(sum(t.numel() * t.element_size() for t in state.values()) / 1e6, 3),
        "median_ms": {k: round(statistics.median(v[1:] or v) * 1e3, 2) for k, v in parts.items()},
        "repeats": repeats,
    }


def main(argv: list[str] | None = None) -> int:
    """Measure, print and write the results JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="artifacts/demo/student")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    if args.repeats < 2:
        parser.error("--repeats must be >= 2 (the first is a warm-up)")
    result = measure(args.model, args.repeats)
    for part, ms in result["median_ms"].items():
        print(f"{part:20s} {ms:8.2f} ms")
    write_results(Path(args.out), result, "benchmarks/sync_engine_parts.py", argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
