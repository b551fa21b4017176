"""Benchmark teacher scoring against student rollout on the tiny models: local and remote.

For each (prompts x samples, new tokens) size it
1. samples completions from the tiny Qwen3-VL student with vLLM (fixed length: ignore_eos, vision
   tokens banned) and times the generate call -> the student's generated tokens/s;
2. scores exactly those completions with the tiny Qwen3-VL teacher:
   - local vLLM backend (prompt log-probs, top-k), in-process;
   - remote: `vopd teacher-server` (vLLM backend) in its own process on 127.0.0.1, called by
     `RemoteScorer` (frames shipped as safetensors, JSON response);
   - local transformers backend (one batched forward): "hf_local" with its kept prompts and video
     features emptied before every call (each prompt new to it, as in a first epoch), "hf_kept"
     with them kept (each prompt seen before, as in later epochs: no processor call, no vision
     encoder);
   and reports teacher tokens scored/s and scoring time / rollout time (target <= 0.5).
Videos are synthetic (8 s at 4 fps, 64 x 64 -> 8 frames of 64 x 64 at 1 fps); decoding is done
before timing (the frame cache serves both sides). Student, local teacher and client share one
process (the server has its own); float32; the 2 cores are shared, calls are sequential.

Usage:
    .venv/bin/python benchmarks/teacher.py [--repeats 3] [--top-k 8]
Writes benchmarks/results/teacher.json and prints a Markdown table and the command.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from runtime.vllm_env import apply_vllm_cpu_defaults  # noqa: E402

apply_vllm_cpu_defaults()
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

RESULTS = REPO / "benchmarks" / "results" / "teacher.json"
SIZES = ((16, 2, 32), (32, 2, 64))  # prompts, samples per prompt, new tokens


def make_prompts(root: Path, n: int):
    """n PromptSpecs over synthetic clips, with their decoded vision inputs (frame cache)."""
    from rollout.batch import PromptSpec
    from tvg.synth_render import encode_video
    from tvg.video import VideoSettings

    settings = VideoSettings(fps=1.0, max_frames=8, max_pixels=64 * 64, min_pixels=32 * 32)
    prompts = []
    for i in range(n):
        frames = np.full((32, 64, 64, 3), 90 + (i * 7) % 100, np.uint8)
        frames[i % 24 : i % 24 + 6, 16:48, 16:48] = (230, 40, 40)
        path = root / f"clip{i}.mp4"
        encode_video(frames, path, fps=4)
        prompts.append(
            PromptSpec(
                f"b{i}",
                str(path),
                f"When is the red square visible? (clip {i})",
                video_settings=settings,
            )
        )
    return prompts


def rollout(llm, tokenizer, prompts, cache, samples: int, new_tokens: int):
    """Sample `samples` fixed-length completions per prompt; return (batch, seconds)."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    from rollout.batch import RolloutBatch, Trajectory
    from runtime.prompting import prompt_token_ids, vision_placeholder_ids
    from tvg.video import build_vision_inputs

    banned = set(vision_placeholder_ids(tokenizer))
    allowed = [i for i in range(len(tokenizer)) if i not in banned]
    requests, owners = [], []
    for p, prompt in enumerate(prompts):
        ids = prompt_token_ids(tokenizer, prompt.query, prompt.prompt_style)
        vision = build_vision_inputs(prompt.video, prompt.video_settings, cache)
        for s in range(samples):
            requests.append(
                TokensPrompt(prompt_token_ids=ids, multi_modal_data=vision.vllm_mm_data())
            )
            owners.append((p, s, ids))
    params = SamplingParams(
        n=1,
        max_tokens=new_tokens,
        ignore_eos=True,
        temperature=1.0,
        logprobs=0,
        allowed_token_ids=allowed,
        seed=None,
    )
    start = time.perf_counter()
    outs = llm.generate(requests, params, use_tqdm=False)
    seconds = time.perf_counter() - start
    batch = RolloutBatch(prompts=prompts)
    for (p, s, ids), out in zip(owners, outs, strict=True):
        sample = out.outputs[0]
        tokens = list(sample.token_ids)
        batch.trajectories.append(
            Trajectory(
                p,
                s,
                np.asarray(ids),
                np.asarray(tokens),
                np.asarray([sample.logprobs[j][t].logprob for j, t in enumerate(tokens)]),
                "length",
                num_prompt_tokens=len(out.prompt_token_ids),
            )
        )
    return batch, seconds


def start_server(teacher_dir: Path, top_k: int) -> tuple[subprocess.Popen, str]:
    """`vopd teacher-server` (vLLM backend) in its own process on 127.0.0.1, token "bench".

    Returns the process and its URL; its stdout (vLLM logs there) is drained by a thread so the
    server never blocks on a full pipe.
    """
    cmd = [
        sys.executable,
        "-m",
        "launch.cli",
        "teacher-server",
        "--model",
        str(teacher_dir),
        "--port",
        "0",
        "--top-k",
        str(top_k),
        "--max-model-len",
        "2048",
        "--token-env",
        "VOPD_BENCH_TOKEN",
    ]
    env = {**os.environ, "VOPD_BENCH_TOKEN": "bench"}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=REPO
    )
    line = ""
    while not line.startswith("teacher server on "):
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            raise RuntimeError("vopd teacher-server exited before serving")
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    return proc, line.split()[3]


def timed(fn, repeats: int) -> float:
    """Median seconds of `repeats` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, write the results file, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--top-k", type=int, default=8)
    parser.add_argument("--models", help="tiny models directory (default: built in a temp dir)")
    parser.add_argument("--no-hf", action="store_true", help="skip the transformers backend")
    args = parser.parse_args(argv)

    from transformers import AutoTokenizer
    from vllm import LLM

    from launch.tiny_models import build_tiny_models
    from runtime.processed_prompts import PromptCache
    from runtime.vision_features import FrozenVisionFeatures
    from teacher_server.backend_hf import HFScorer
    from teacher_server.backend_vllm import VLLMScorer
    from teacher_server.client import RemoteScorer
    from teacher_server.config import TeacherConfig
    from teacher_server.items import items_from_batch
    from tvg.frame_cache import FrameCache

    tmp = Path(tempfile.mkdtemp(prefix="vopd_teacher_bench_"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    models = Path(args.models) if args.models else tmp / "models"
    if not args.models:
        build_tiny_models(models, seed=0, families=("qwen3_vl",))
    student_dir, teacher_dir = models / "qwen3_vl-student", models / "qwen3_vl-teacher"
    cache = FrameCache()
    prompts_all = make_prompts(tmp, max(p for p, _, _ in SIZES))
    tokenizer = AutoTokenizer.from_pretrained(student_dir)
    student = LLM(
        model=str(student_dir),
        dtype="float32",
        max_model_len=2048,
        seed=0,
        enforce_eager=True,
        limit_mm_per_prompt={"video": 1, "image": 0},
        logprobs_mode="processed_logprobs",
    )
    config = TeacherConfig(model=str(teacher_dir), top_k=args.top_k, max_model_len=2048)
    local = VLLMScorer(config, frame_cache=cache)
    server, url = start_server(teacher_dir, args.top_k)
    atexit.register(server.kill)
    remote = RemoteScorer(url, token="bench", frame_cache=cache)

    rows, batches = [], []
    for n_prompts, samples, new_tokens in SIZES:
        prompts = prompts_all[:n_prompts]
        rollout(student, tokenizer, prompts, cache, samples, new_tokens)  # warm-up
        roll_times, batch = [], None
        for _ in range(args.repeats):
            batch, seconds = rollout(student, tokenizer, prompts, cache, samples, new_tokens)
            roll_times.append(seconds)
        roll_s = statistics.median(roll_times)
        items = items_from_batch(batch)
        tokens = batch.num_generated_tokens
        row = {
            "sequences": len(items),
            "new_tokens": new_tokens,
            "generated_tokens": tokens,
            "prompt_tokens": sum(t.num_prompt_tokens for t in batch.trajectories),
            "rollout_s": roll_s,
            "rollout_tokens_per_s": tokens / roll_s,
        }
        for name, scorer in (("vllm_local", local), ("vllm_remote", remote)):
            seconds = timed(lambda s=scorer, i=items: s.score(i), args.repeats)
            row[f"{name}_s"] = seconds
            row[f"{name}_tokens_per_s"] = tokens / seconds
            row[f"{name}_vs_rollout"] = seconds / roll_s
        rows.append(row)
        batches.append(items)
    server.terminate()
    server.wait(timeout=60)
    # Last: the transformers backend sets this process's torch threads to 1 (its actor setting).
    if not args.no_hf:
        hf = HFScorer(
            TeacherConfig(backend="hf", model=str(teacher_dir), top_k=args.top_k, batch_size=16),
            frame_cache=cache,
        )

        def cold(items: list) -> None:
            hf.prompt_cache = PromptCache()
            hf.vision = FrozenVisionFeatures(hf.model)
            hf.score(items)

        for row, items in zip(rows, batches, strict=True):
            for name, fn in (("hf_local", cold), ("hf_kept", hf.score)):
                seconds = timed(lambda i=items, f=fn: f(i), args.repeats)
                row[f"{name}_s"] = seconds
                row[f"{name}_tokens_per_s"] = row["generated_tokens"] / seconds
                row[f"{name}_vs_rollout"] = seconds / row["rollout_s"]
    for row in rows:
        print(json.dumps(row), flush=True)

    command = "python benchmarks/teacher.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "command": command.strip(),
                "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
                "top_k": args.top_k,
                "repeats": args.repeats,
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(
        "\n| sequences x new tokens | rollout tok/s | teacher vLLM local tok/s (x rollout time) "
        "| teacher vLLM remote tok/s (x) | teacher HF fresh tok/s (x) | teacher HF kept tok/s (x) |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        cells = [
            f"{r[f'{k}_tokens_per_s']:,.0f} ({r[f'{k}_vs_rollout']:.2f}x)" if f"{k}_s" in r else "-"
            for k in ("vllm_local", "vllm_remote", "hf_local", "hf_kept")
        ]
        print(
            f"| {r['sequences']} x {r['new_tokens']} | {r['rollout_tokens_per_s']:,.0f} | "
            + " | ".join(cells)
            + " |"
        )
    print(f"\ncommand: .venv/bin/{command.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
