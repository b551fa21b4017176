"""Benchmark the rollout engines and weight sync on this machine.

1. Generated tokens/s of the vLLM engine (CPU build, in-process core) versus the transformers
   reference engine on the tiny Qwen3-VL student with real video prompts (level-1 synthetic
   videos, 8-32 s at 1 fps, so prompt lengths vary), batch 8 / 32 / 128 prompts x n = 1 and 8,
   temperature 1, fixed lengths (`ignore_eos`, --max-tokens each), for several thread counts.
   Plus an "early stops" case: per-prompt lengths drawn from 4..64 tokens (where continuous
   batching should win: transformers' batch runs until its longest row is done).
   Both engines return the behaviour log-probs from the sampling pass itself (the transformers
   engine records them while `generate` runs, `rollout.hf_behaviour`; results files from before
   that change counted a separate scoring pass in the "with log-probs" columns).
2. Weight-sync milliseconds into an in-process vLLM engine (the bucket protocol of
   `rollout.weight_sync`, what one `RolloutWorker` does per update) for the tiny student, the tiny
   teacher and a ~0.5B-parameter text model built from a Qwen2.5-0.5B-shaped config; default
   256 MB buckets versus one bucket per tensor; plus the checksum cost.

Each engine runs in its own subprocess (thread settings cannot change once vLLM is loaded).
Usage:
    .venv/bin/python benchmarks/rollout.py [--max-tokens 32] [--threads 1 2] [--skip-05b]
Writes benchmarks/results/rollout.json and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results" / "rollout.json"
BATCHES = (8, 32, 128)
NS = (1, 8)


def build_assets(root: Path) -> dict[str, str]:
    """Tiny models and 128 synthetic videos (the test split of a level-1 set)."""
    from launch.tiny_models import build_tiny_models
    from tvg.synth import write_dataset

    models = build_tiny_models(root / "models", families=("qwen3_vl",), seed=0)
    write_dataset(root / "data", n_train=8, n_val=0, n_test=max(BATCHES), seed=0, level=1)
    return {
        "student": str(models["qwen3_vl-student"]),
        "teacher": str(models["qwen3_vl-teacher"]),
        "data": str(root / "data"),
    }


def build_05b(root: Path, tokenizer_dir: str) -> str:
    """A Qwen2.5-0.5B-shaped text model (random weights, float32) with the tiny tokenizer."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    out = root / "qwen2-0.5b"
    if (out / "config.json").exists():
        return str(out)
    config = Qwen2Config(
        vocab_size=151936,
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        torch_dtype="float32",
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(out)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        src = Path(tokenizer_dir) / name
        if src.exists():
            shutil.copy(src, out / name)
    return str(out)


def child_throughput(args: argparse.Namespace) -> dict:
    """(subprocess) Tokens/s of one engine kind at one thread count over every case."""
    import numpy as np

    from rollout.batch import PromptSpec
    from rollout.engine_config import EngineConfig, SamplingConfig
    from rollout.worker import build_engine
    from tvg.formats import read_samples
    from tvg.video import VideoSettings

    assets = json.loads(Path(args.assets).read_text())
    data = Path(assets["data"])
    samples = read_samples(data / "test.json", video_root=data / "videos")
    settings = VideoSettings(fps=1.0, max_frames=64)
    specs = [PromptSpec.from_sample(s, video_settings=settings) for s in samples]
    started = time.perf_counter()
    engine = build_engine(
        EngineConfig(model=assets["student"], engine=args.engine, threads=args.threads)
    )
    startup_s = time.perf_counter() - started
    engine.sample(specs, 1, SamplingConfig(max_tokens=4))  # warm-up; fills the frame cache
    rows = []
    cases = [(b, n, "fixed") for b in BATCHES for n in NS] + [(32, 8, "early_stops")]
    rng = np.random.default_rng(0)
    for batch_size, n, kind in cases:
        if kind == "fixed":
            sampling = SamplingConfig(temperature=1.0, max_tokens=args.max_tokens, ignore_eos=True)
        else:
            caps = tuple(int(x) for x in rng.integers(4, 65, size=batch_size))
            sampling = SamplingConfig(
                temperature=1.0, max_tokens=64, ignore_eos=True, max_tokens_per_prompt=caps
            )
        batch = engine.sample(specs[:batch_size], n, sampling)
        tokens = batch.num_generated_tokens
        gen_s = batch.timings["generate_s"] + batch.timings.get("prepare_s", 0.0)
        total_s = batch.timings["sample_s"]
        rows.append(
            {
                "engine": args.engine,
                "threads": args.threads,
                "case": kind,
                "batch": batch_size,
                "n": n,
                "tokens": tokens,
                "generate_s": round(gen_s, 3),
                "with_logprobs_s": round(total_s, 3),
                "tokens_per_s": round(tokens / gen_s, 1),
                "tokens_per_s_with_logprobs": round(tokens / total_s, 1),
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return {"startup_s": round(startup_s, 2), "rows": rows}


def child_sync(args: argparse.Namespace) -> dict:
    """(subprocess) Weight-sync milliseconds into an in-process vLLM engine."""
    import torch
    from safetensors.torch import load_file

    from rollout.engine_config import EngineConfig
    from rollout.engine_vllm import VLLMEngine
    from rollout.weight_sync import DEFAULT_BUCKET_BYTES, bucket_state_dict
    from runtime.checksums import state_checksum

    assets = json.loads(Path(args.assets).read_text())
    targets = [("tiny student", assets["student"]), ("tiny teacher", assets["teacher"])]
    if assets.get("qwen2_05b"):
        targets.append(("Qwen2.5-0.5B-shaped text model", assets["qwen2_05b"]))
    rows = []
    for label, model_dir in targets:
        engine = VLLMEngine(
            EngineConfig(model=model_dir, threads=args.threads, max_model_len=512,
                         track_checksum=False)
        )  # fmt: skip
        state = {}
        for path in sorted(Path(model_dir).glob("*.safetensors")):
            state.update(load_file(str(path)))
        params = sum(t.numel() for t in state.values())
        nbytes = sum(t.numel() * t.element_size() for t in state.values())
        gen = torch.Generator().manual_seed(0)
        state = {k: v + 1e-3 * torch.randn(v.shape, generator=gen) for k, v in state.items()}
        for mode, bucket_bytes in (("256 MB buckets", DEFAULT_BUCKET_BYTES), ("per tensor", 1)):
            times, n_buckets = [], 0
            for _ in range(args.sync_repeats):
                t0 = time.perf_counter()
                buckets = bucket_state_dict(state, engine.weights_version + 1, bucket_bytes)
                t1 = time.perf_counter()
                for bucket in buckets:
                    engine.update_weights(bucket)
                t2 = time.perf_counter()
                times.append((t1 - t0, t2 - t1))
                n_buckets = len(buckets)
            best = min(times, key=lambda x: x[1])
            rows.append(
                {
                    "model": label,
                    "params": params,
                    "bytes": nbytes,
                    "mode": mode,
                    "buckets": n_buckets,
                    "bucketing_ms": round(best[0] * 1e3, 1),
                    "load_ms": round(best[1] * 1e3, 1),
                    "load_ms_all": [round(t[1] * 1e3, 1) for t in times],
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        state_checksum(state)
        rows[-1]["checksum_ms"] = round((time.perf_counter() - t0) * 1e3, 1)
        rows[-2]["checksum_ms"] = rows[-1]["checksum_ms"]
        # Check the sync took: greedy output after syncing the original weights equals a
        # sample before any sync would need a second engine; the tests prove equality instead.
        del state
    return {"rows": rows}


def run_child(kind: str, assets: Path, extra: list[str], timeout: int) -> dict:
    """Run one child benchmark in a fresh interpreter; return its JSON."""
    out = assets.parent / f"{kind}-{'-'.join(extra)}.json"
    cmd = [sys.executable, __file__, "--child", kind, "--assets", str(assets), "--child-out",
           str(out), *extra]  # fmt: skip
    env = {**os.environ, "VLLM_LOGGING_LEVEL": "WARNING", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, timeout=timeout, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-4000:]}")
    return json.loads(out.read_text())


def table(rows: list[dict]) -> str:
    """Markdown table: per case, each engine/threads' tokens/s."""
    keys = sorted({(r["engine"], r["threads"]) for r in rows})
    cases = []
    for r in rows:
        case = (r["case"], r["batch"], r["n"])
        if case not in cases:
            cases.append(case)
    head = (
        "| case | batch x n | tokens | "
        + " | ".join(f"{e} {t}T tok/s" for e, t in keys)
        + " | best vLLM / best HF (HF incl. log-prob pass) |"
    )
    lines = [head, "|" + "---|" * (len(keys) + 4)]
    for case in cases:
        cells, tokens = [], 0
        best = {"vllm": 0.0, "hf": 0.0, "hf_lp": 0.0}
        for key in keys:
            match = [
                r for r in rows if (r["engine"], r["threads"]) == key
                and (r["case"], r["batch"], r["n"]) == case
            ]  # fmt: skip
            if not match:
                cells.append("-")
                continue
            r = match[0]
            tokens = r["tokens"]
            if r["engine"] == "hf":
                cells.append(f"{r['tokens_per_s']:,.0f} ({r['tokens_per_s_with_logprobs']:,.0f})")
                best["hf"] = max(best["hf"], r["tokens_per_s"])
                best["hf_lp"] = max(best["hf_lp"], r["tokens_per_s_with_logprobs"])
            else:
                cells.append(f"{r['tokens_per_s']:,.0f}")
                best["vllm"] = max(best["vllm"], r["tokens_per_s"])
        ratio = (
            f"{best['vllm'] / best['hf']:.2f}x ({best['vllm'] / best['hf_lp']:.2f}x)"
            if best["hf"] and best["hf_lp"]
            else "-"
        )
        lines.append(
            f"| {case[0]} | {case[1]} x {case[2]} | {tokens:,} | "
            + " | ".join(cells)
            + f" | {ratio} |"
        )
    return "\n".join(lines)


def sync_table(rows: list[dict]) -> str:
    """Markdown table of the weight-sync rows."""
    lines = [
        "| model | parameters | MB (fp32) | mode | buckets | sync ms | checksum ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['params']:,} | {r['bytes'] / 2**20:,.1f} | {r['mode']} | "
            f"{r['buckets']} | {r['load_ms']:,.1f} | {r.get('checksum_ms', 0):,.1f} |"
        )
    return "\n".join(lines)


def main() -> int:
    """Run every benchmark (children in subprocesses) and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--engines", nargs="+", default=["vllm", "hf"])
    parser.add_argument("--sync-repeats", type=int, default=3)
    parser.add_argument("--skip-05b", action="store_true", help="skip the ~0.5B sync target")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child", choices=("throughput", "sync"), help=argparse.SUPPRESS)
    parser.add_argument("--assets", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    parser.add_argument("--engine", default="vllm", help=argparse.SUPPRESS)
    parser.add_argument("--child-threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.threads = args.child_threads
        from runtime.vllm_env import apply_vllm_cpu_defaults

        apply_vllm_cpu_defaults()
        result = child_throughput(args) if args.child == "throughput" else child_sync(args)
        Path(args.child_out).write_text(json.dumps(result))
        return 0

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vopd-bench-rollout-") as tmp:
        root = Path(tmp)
        assets = build_assets(root)
        if not args.skip_05b:
            assets["qwen2_05b"] = build_05b(root, assets["student"])
        assets_path = root / "assets.json"
        assets_path.write_text(json.dumps(assets))
        throughput: list[dict] = []
        startup: dict[str, float] = {}
        for engine in args.engines:
            for threads in args.threads:
                extra = ["--engine", engine, "--child-threads", str(threads),
                         "--max-tokens", str(args.max_tokens)]  # fmt: skip
                res = run_child("throughput", assets_path, extra, timeout=900)
                throughput.extend(res["rows"])
                startup[f"{engine} {threads}T"] = res["startup_s"]
        sync_extra = ["--child-threads", "1", "--sync-repeats", str(args.sync_repeats)]
        sync = run_child("sync", assets_path, sync_extra, timeout=900)["rows"]
    command = "  ".join(
        [".venv/bin/python benchmarks/rollout.py", shlex.join(sys.argv[1:])]
    ).strip()
    result = {
        "command": command,
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "load_average_at_end": os.getloadavg(),
        },
        "settings": {
            "model": "tiny Qwen3-VL student (launch/tiny_models, 'student' size)",
            "videos": "synthetic level 1: 32x32 px, 8-32 s, sampled at 1 fps (<= 64 frames)",
            "temperature": 1.0,
            "max_tokens": args.max_tokens,
            "fixed_lengths": "ignore_eos (every completion has max_tokens tokens)",
            "early_stops": "batch 32 x n 8, per-prompt caps uniform in 4..64 tokens",
        },
        "engine_startup_s": startup,
        "throughput": throughput,
        "weight_sync": sync,
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(table(throughput))
    print()
    print(sync_table(sync))
    print(f"\ncommand: {command}\nresults: {args.out}  ({result['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
