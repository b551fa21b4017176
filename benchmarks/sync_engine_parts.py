"""Where an in-place weight update spends its time inside one vLLM engine (the engine side of the
colocated layout's sync, `rollout.colocate`), for each way of running the CPU linear layers
(`rollout.cpu_linear`, `rollout.vllm_cpu_linear`), and what each costs when sampling.

Builds one in-process vLLM engine per kind on a model directory, then pushes that model's own
weights into it `--repeats` times, timing each part of `VLLMEngine.update_weights` separately:
- "vllm" (vLLM's own kernels, weights deleted): its layer-wise reload (`begin`: enter reload
  mode; `load`: the model's `load_weights`; `finish`: finalise and drop derived caches);
- "onednn" (packed kernels, plain weights kept) and "torch" (plain weights): `load` (the model's
  `load_weights` into the live tensors), `repack` (the oneDNN handles of the layers it reached;
  nothing to do for "torch") and `drop_caches` (the runner's encoder and multimodal caches);
then for every kind the prefix- and encoder-cache resets, the engine's digest pass (`WeightTracker`,
what `rollout.verify_sync` checks) and the whole `load_state_dict` call. With `--data` it also
times sampling (`--prompts` prompts of that split x 1 sample, temperature 1, up to 24 tokens,
different prompts each time, the kinds taking turns). Medians over the repeats after the
first. Writes benchmarks/results/sync_engine_parts.json.

Usage:
  .venv/bin/python benchmarks/sync_engine_parts.py [--model artifacts/demo/student] [--repeats 9]
      [--data artifacts/demo/data/train.json] [--prompts 8] [--kinds onednn,torch,vllm]
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


def _load_weights(model: str) -> dict[str, Any]:
    """The model directory's weights (SystemExit naming it when it has none)."""
    from safetensors.torch import load_file

    state: dict[str, Any] = {}
    for file in sorted(Path(model).glob("*.safetensors")):
        state.update(load_file(str(file)))
    if not state:
        raise SystemExit(f"no *.safetensors weights in {model}")
    return state


def _repack_everything(worker: Any) -> int:
    """(vLLM worker side) Repack every layer an update of all the weights reaches."""
    from rollout.vllm_cpu_linear import repack_loaded

    model = worker.model_runner.get_model()
    return repack_loaded(model, [name for name, _ in model.named_parameters()])


def measure(model: str, repeats: int, kind: str = "onednn") -> dict[str, Any]:
    """Median milliseconds of each part of one in-place update into an engine whose CPU linear
    layers run `kind`, and the weights' size; the engine is returned under "engine"."""
    from rollout.engine_config import EngineConfig
    from rollout.engine_vllm import VLLMEngine, _begin_reload, _finish_reload, _load_bucket
    from rollout.vllm_cpu_linear import cpu_linear_kernels, drop_derived_caches
    from runtime.checksums import tensor_digest

    state = _load_weights(model)
    items = list(state.items())
    engine = VLLMEngine(EngineConfig(model=model, cpu_linear=kind))
    llm = engine.llm
    steps: dict[str, Callable[[], Any]] = (
        {
            "load": lambda: llm.collective_rpc(_load_bucket, args=(items,)),
            "repack": lambda: llm.collective_rpc(_repack_everything),
            "drop_caches": lambda: llm.collective_rpc(drop_derived_caches),
        }
        if engine.updates_in_place
        else {
            "begin": lambda: llm.collective_rpc(_begin_reload),
            "load": lambda: llm.collective_rpc(_load_bucket, args=(items,)),
            "finish": lambda: llm.collective_rpc(_finish_reload),
        }
    )
    steps["reset_prefix_cache"] = llm.reset_prefix_cache
    steps["reset_encoder_cache"] = llm.llm_engine.reset_encoder_cache
    steps["digests"] = lambda: [tensor_digest(t) for t in state.values()]
    parts: dict[str, list[float]] = {name: [] for name in [*steps, "whole_update"]}
    for version in range(1, repeats + 1):
        with cpu_linear_kernels(kind):
            for name, step in steps.items():
                parts[name].append(_timed(step))
        parts["whole_update"].append(
            _timed(lambda v=version: engine.load_state_dict(state, version=v))
        )
    return {
        "model": model,
        "cpu_linear": kind,
        "updates_in_place": engine.updates_in_place,
        "tensors": len(state),
        "megabytes": round(sum(t.numel() * t.element_size() for t in state.values()) / 1e6, 3),
        "median_ms": {k: round(statistics.median(v[1:] or v) * 1e3, 2) for k, v in parts.items()},
        "repeats": repeats,
        "engine": engine,
    }


def sampling_ms(engines: dict[str, Any], data: str, prompts: int, repeats: int) -> dict[str, float]:
    """Median milliseconds per `sample` call (prompts x 1, temperature 1, <= 24 tokens) for each
    engine, the engines alternating, on the next `prompts` records of `data` each time."""
    from rollout.batch import PromptSpec
    from rollout.engine_config import SamplingConfig
    from tvg.formats import read_samples
    from tvg.video import VideoSettings

    records = read_samples(Path(data), video_root=Path(data).parent / "videos")
    settings = VideoSettings(fps=1.0, max_frames=64)  # the demo's data section
    specs = [PromptSpec.from_sample(r, video_settings=settings) for r in records]
    needed = prompts * (repeats + 1)
    if len(specs) < needed:
        raise SystemExit(f"{data}: {len(specs)} records, the sampling timing needs {needed}")
    sampling = SamplingConfig(temperature=1.0, max_tokens=24)
    times: dict[str, list[float]] = {kind: [] for kind in engines}
    for call in range(repeats + 1):
        batch = specs[call * prompts : (call + 1) * prompts]
        order = list(engines) if call % 2 == 0 else list(reversed(engines))
        for kind in order:
            times[kind].append(_timed(lambda k=kind, b=batch: engines[k].sample(b, 1, sampling)))
    return {kind: round(statistics.median(t[1:]) * 1e3, 1) for kind, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    """Measure, print and write the results JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="artifacts/demo/student")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--kinds", default="onednn,torch,vllm", help="cpu_linear kinds to measure")
    parser.add_argument("--data", default=None, help="a split's JSON, to also time sampling")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    if args.repeats < 2:
        parser.error("--repeats must be >= 2 (the first is a warm-up)")
    from rollout.engine_config import CPU_LINEAR_KINDS

    kinds = [k for k in args.kinds.split(",") if k]
    unknown = [k for k in kinds if k not in CPU_LINEAR_KINDS]
    if unknown or not kinds:
        parser.error(f"--kinds: one or more of {CPU_LINEAR_KINDS}, got {args.kinds!r}")
    results = {kind: measure(args.model, args.repeats, kind) for kind in kinds}
    engines = {kind: result.pop("engine") for kind, result in results.items()}
    for kind, result in results.items():
        for part, ms in result["median_ms"].items():
            print(f"{kind:7s} {part:20s} {ms:8.2f} ms")
    out: dict[str, Any] = {"kinds": results}
    if args.data:
        out["sampling_ms"] = sampling_ms(engines, args.data, args.prompts, args.repeats)
        out["sampling"] = {"prompts": args.prompts, "n": 1, "max_tokens": 24, "temperature": 1.0}
        print("sampling ms per call:", out["sampling_ms"])
    write_results(Path(args.out), out, "benchmarks/sync_engine_parts.py", argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
