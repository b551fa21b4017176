"""Learner memory per sequence with a long video prompt: full logits vs completion-only logits,
and activation checkpointing.

Builds the tiny Qwen3-VL student (`--size`) with Qwen's real 151,936-row vocabulary
(`launch.tiny_models`, `vocab_size=151936`: the unpadded model plus zero rows, so the LM head costs
what the real one does per position), writes a 360p clip (30 fps, moving content) and decodes
it with `tvg.video.build_vision_inputs` at 2 fps under the default pixel budget: 120 vision tokens
per second, ~1,440 for a 12 s clip. Each batch holds `--batch` sequences (queries of different
lengths, so the prompts differ) with a `--completion-tokens` completion each; a learner-like
forward + backward (`runtime.hf_scoring.completion_log_probs`, loss = mean negative log-prob of
the completion tokens, the model in train mode) is run with:

- (a) `full`: logits of every position, then sliced to the completion (the former path);
- (b) `completion`: the LM head, masking and log-softmax only at the completion positions;
- (c) `completion+ckpt`: (b) with activation checkpointing (`trainer.learner.prepare_student`,
  transformers' gradient_checkpointing_enable, non-reentrant), as `learner.gradient_checkpointing`
  turns on.

Every variant runs in a fresh process: one warm-up pass (which also counts what autograd saves),
then `--repeats` passes, each timed (wall-clock, and this process's CPU time, which a busy
machine distorts less with one thread) with the peak-RSS mark reset before it
(/proc/self/clear_refs). Reported per variant: resident memory before each pass, the peak during
it, the median increase per sequence, the bytes autograd saved for the backward
(saved_tensors_hooks: distinct storages, parameters left out; what a checkpointed layer would
save is recomputed instead; the full path's logits are not saved by autograd, but they are alive
through the forward and their gradient through the backward, which the RSS shows), the LM head's
output size, seconds per forward + backward, and the sum of the completion log-probs and the
gradient norm (equal across variants to float tolerance).

With `--device cuda` the model runs on the GPU (`--dtype bfloat16` as a GPU learner trains) and
memory is the CUDA allocator's: what was allocated before each pass and its peak during it
(`--clip` takes a clip written elsewhere, for a machine without PyAV).

Usage:
    .venv/bin/python benchmarks/learner_memory.py [--seconds 12] [--batch 2]
        [--completion-tokens 30] [--repeats 2] [--threads 1] [--size student]
        [--device cpu|cuda] [--dtype float32|bfloat16] [--clip PATH] [--out PATH]
Writes benchmarks/results/learner_memory.json (with the command) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RESULTS = REPO / "benchmarks" / "results" / "learner_memory.json"
MODELS = REPO / "artifacts" / "benchmarks" / "models"
VOCAB_SIZE = 151936
VARIANTS: dict[str, dict[str, bool]] = {
    "full": {"completion_logits_only": False, "gradient_checkpointing": False},
    "completion": {"completion_logits_only": True, "gradient_checkpointing": False},
    "completion+ckpt": {"completion_logits_only": True, "gradient_checkpointing": True},
}
QUERIES = (
    "When does the white block cross the frame?",
    "At what time does the white block move across the textured gradient background, "
    "from its entry on the left edge to its exit on the right edge?",
    "When is the block in the middle?",
    "Find the moment the white block passes the centre of the picture.",
)


def make_video(path: Path, seconds: int, fps: int = 30) -> None:
    """Write a 640 x 360 clip with a gradient background, texture and a moving block."""
    from tvg.synth_render import encode_video

    base = np.zeros((360, 640, 3), dtype=np.uint8)
    base[..., 0] = np.linspace(0, 255, 640, dtype=np.uint8)[None, :]
    base[..., 1] = np.linspace(0, 255, 360, dtype=np.uint8)[:, None]
    base[..., 2] = 90
    frames = np.repeat(base[None], seconds * fps, axis=0)
    for k in range(seconds * fps):
        x = (k * 5) % 540
        frames[k, 130:230, x : x + 100] = (255, 255, 255)
        frames[k, ::8, :, :] ^= np.uint8(k % 16)
    encode_video(frames, path, fps)


def rss_bytes() -> int:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS mark (VmHWM) of this process to its current RSS."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak_rss_bytes() -> int:
    """Peak resident set size (VmHWM) since start or the last `reset_peak_rss`."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(args: argparse.Namespace) -> dict[str, Any]:
    """Measure one variant in this process; return its numbers."""
    import torch
    from transformers import AutoProcessor

    from runtime.hf_compat import load_hf_model
    from runtime.hf_scoring import (
        ScoringItem,
        build_hf_batch,
        completion_log_probs,
        output_head,
    )
    from runtime.prompting import vision_placeholder_ids
    from trainer.learner import prepare_student
    from tvg.video import VideoSettings, build_vision_inputs

    torch.set_num_threads(args.threads)
    variant = VARIANTS[args.child]
    cuda = args.device.startswith("cuda")
    model = load_hf_model(args.model, dtype=getattr(torch, args.dtype))
    if cuda:
        model.to(args.device)
    prepare_student(model, False, variant["gradient_checkpointing"])
    model.train()
    processor = AutoProcessor.from_pretrained(args.model)
    vision = build_vision_inputs(args.video, VideoSettings(fps=2.0))
    tokenizer = processor.tokenizer
    banned = set(vision_placeholder_ids(tokenizer)) | set(tokenizer.all_special_ids)
    allowed = [i for i in range(len(tokenizer)) if i not in banned]
    rng = np.random.default_rng(0)
    items = [
        ScoringItem(
            QUERIES[i % len(QUERIES)],
            "timelens",
            vision,
            [int(t) for t in rng.choice(allowed, args.completion_tokens)],
        )
        for i in range(args.batch)
    ]
    head_rows: list[int] = []
    head = output_head(model)
    head.register_forward_hook(lambda _m, _a, out: head_rows.append(out.shape[:-1].numel()))

    def step() -> tuple[float, float]:
        model.zero_grad(set_to_none=True)
        scores = completion_log_probs(
            model,
            processor,
            items,
            completion_logits_only=variant["completion_logits_only"],
        )
        logprobs = torch.cat([s["logprobs"] for s in scores])
        (-logprobs.mean()).backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        return float(logprobs.detach().sum()), float(
            torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        )

    # Warm-up pass (allocator pools, lazy initialisation), counting what autograd saves for the
    # backward: distinct storages, parameters left out (saved by reference, not extra memory).
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    rss_before, peaks, seconds, cpu_seconds = [], [], [], []
    for _ in range(args.repeats):
        if cuda:  # the device's allocator: what the pass holds on the GPU
            torch.cuda.synchronize()
            model.zero_grad(set_to_none=True)
            rss_before.append(torch.cuda.memory_allocated())
            torch.cuda.reset_peak_memory_stats()
        else:
            rss_before.append(rss_bytes())
            reset_peak_rss()
        t0, c0 = time.perf_counter(), time.process_time()
        logprob_sum, grad_norm = step()
        if cuda:
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - t0)
        cpu_seconds.append(time.process_time() - c0)
        peaks.append(torch.cuda.max_memory_allocated() if cuda else peak_rss_bytes())
    increases = [peak - before for peak, before in zip(peaks, rss_before, strict=True)]
    batch = build_hf_batch(processor, items)
    video_pad = tokenizer.convert_tokens_to_ids("<|video_pad|>")
    return {
        "variant": args.child,
        "device": args.device,
        "memory": "CUDA allocator (memory_allocated / max_memory_allocated)" if cuda else "RSS",
        **variant,
        "vision_tokens": int((batch.inputs["input_ids"][0] == video_pad).sum()),
        "prompt_tokens": batch.prompt_lengths,
        "rss_before_bytes": rss_before,
        "peak_rss_bytes": peaks,
        "peak_increase_bytes": increases,
        "peak_increase_per_sequence_bytes": statistics.median(increases) / args.batch,
        "saved_for_backward_per_sequence_bytes": sum(saved.values()) / args.batch,
        "lm_head_rows": head_rows[-1],
        "lm_head_output_bytes": head_rows[-1] * VOCAB_SIZE * 4,
        "seconds": seconds,
        "seconds_median": statistics.median(seconds),
        "cpu_seconds": cpu_seconds,
        "cpu_seconds_median": statistics.median(cpu_seconds),
        "logprob_sum": logprob_sum,
        "grad_norm": grad_norm,
    }


def main() -> None:
    """Run every variant in its own process; write the JSON and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=12, help="clip length (2 fps sampled)")
    parser.add_argument("--batch", type=int, default=2, help="sequences per forward")
    parser.add_argument("--completion-tokens", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=2, help="timed passes per variant")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--size", default="student", help="tiny model size (launch.tiny_models)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--device",
        default="cpu",
        help="cpu (memory = the process's RSS) or cuda (memory = the CUDA allocator's peak)",
    )
    parser.add_argument("--dtype", default="float32", help="the model's dtype (float32, bfloat16)")
    parser.add_argument("--clip", type=Path, help="an existing clip to use (default: write one)")
    parser.add_argument("--models-dir", type=Path, default=MODELS, help="where models are built")
    parser.add_argument("--child", choices=list(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--video", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return

    from launch.tiny_models.build import ModelSpec, build_tiny_model

    command = " ".join(
        [".venv/bin/python", "benchmarks/learner_memory.py", *map(shlex.quote, sys.argv[1:])]
    )
    spec = ModelSpec(family="qwen3_vl", size=args.size, seed=0, vocab_size=VOCAB_SIZE)
    model_dir = build_tiny_model(args.models_dir, spec)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        video = args.clip or Path(tmp) / "clip_360p.mp4"
        if args.clip is None:
            make_video(video, args.seconds)
        for name in VARIANTS:
            cmd = [
                sys.executable,
                str(Path(__file__).resolve()),
                f"--child={name}",
                f"--model={model_dir}",
                f"--video={video}",
                f"--batch={args.batch}",
                f"--completion-tokens={args.completion_tokens}",
                f"--repeats={args.repeats}",
                f"--threads={args.threads}",
                f"--device={args.device}",
                f"--dtype={args.dtype}",
            ]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"variant {name} failed:\n{done.stderr[-4000:]}")
            out = done.stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
            print(f"{name}: done", file=sys.stderr)
    import torch
    import transformers

    result = {
        "command": command,
        "model": f"{spec.name}, vocab_size {VOCAB_SIZE} (launch.tiny_models)",
        "video": f"640x360 30 fps, {args.seconds} s, sampled at 2 fps, VideoSettings defaults",
        "batch": args.batch,
        "completion_tokens": args.completion_tokens,
        "threads": args.threads,
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
            "dtype": args.dtype,
        },
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(markdown(result))
    print(f"command: {command}")


def markdown(result: dict[str, Any]) -> str:
    """The results as a Markdown table."""
    mb = 1024 * 1024
    lines = [
        f"| variant | LM-head rows | peak ({result['runs'][0].get('memory', 'RSS')}) "
        "| increase / sequence | saved for backward / seq. "
        "| CPU s / fwd+bwd | wall s | sum log-prob | grad norm |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in result["runs"]:
        lines.append(
            f"| {run['variant']} | {run['lm_head_rows']:,} "
            f"| {max(run['peak_rss_bytes']) / mb:,.0f} MB "
            f"| {run['peak_increase_per_sequence_bytes'] / mb:,.0f} MB "
            f"| {run['saved_for_backward_per_sequence_bytes'] / mb:,.0f} MB "
            f"| {run['cpu_seconds_median']:.2f} | {run['seconds_median']:.2f} "
            f"| {run['logprob_sum']:.4f} | {run['grad_norm']:.5f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
