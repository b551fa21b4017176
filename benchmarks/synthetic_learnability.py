"""Is the level-1 synthetic task learnable by a tiny Qwen3-VL on 2 CPU cores? A supervised run.

Verifies the claim of docs/GENERATED_DATA.md ("Prototype measurements"): a ~1 M-parameter
Qwen3-VL trained from random initialisation with supervised fine-tuning on the target answers
leaves the blind floor (val mIoU ~29) within minutes on one torch thread.

What runs (every piece is the project's own path, so the run validates it):
- data: `tvg.synth.write_dataset` (level 1), reused when the directory already holds the same
  level, seed and split sizes; videos read with `tvg.video.build_vision_inputs(
  VideoSettings(fps=1.0, max_frames=64))` and a `FrameCache`;
- model: `launch.tiny_models.build_tiny_model` (Qwen3-VL, random init by seed), loaded with
  `runtime.hf_compat.load_hf_model`;
- loss: minus the mean log-prob of the answer tokens "The event happens in {s:.1f} - {e:.1f}
  seconds." + <|im_end|>, computed by `runtime.hf_scoring.completion_log_probs` (the learner path;
  vision placeholder tokens masked);
- the prototype's recipe: AdamW lr 2e-3, betas (0.9, 0.98), weight decay 0.01, linear warm-up over
  30 steps then constant, gradient clipping at 1.0, batch 8, ONE torch thread;
- evaluation: greedy decoding with transformers `generate` on the val split (vision placeholder
  tokens banned, max_new_tokens 24), `tvg.parsing.parse_span`, `tvg.rewards.temporal_iou`,
  `tvg.metrics.grounding_metrics`; every `--eval-every` steps and when the training clock passes
  each of `--eval-at-s`.

"seconds" in the curve are training seconds (data + forward + backward + optimiser), evaluation
excluded; the wall clock including evaluation is recorded too.

Usage:
    .venv/bin/python benchmarks/synthetic_learnability.py [--size teacher] [--seed 0]
        [--steps 2500] [--budget-s 720] [--eval-every 100] [--n-train 2000] [--n-val 100]
Writes benchmarks/results/synthetic_learnability.json (or --out) and prints the command.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from launch.tiny_models import SIZES, ModelSpec, build_tiny_model  # noqa: E402
from runtime.hf_compat import load_hf_model  # noqa: E402
from runtime.hf_scoring import ScoringItem, completion_log_probs  # noqa: E402
from runtime.prompting import prompt_text, vision_placeholder_ids  # noqa: E402
from tvg.formats import read_samples  # noqa: E402
from tvg.metrics import grounding_metrics  # noqa: E402
from tvg.parsing import parse_span  # noqa: E402
from tvg.prompts import get_prompt_style  # noqa: E402
from tvg.rewards import max_iou  # noqa: E402
from tvg.sample import Sample  # noqa: E402
from tvg.synth import write_dataset  # noqa: E402
from tvg.video import FrameCache, VideoSettings, VisionInputs, build_vision_inputs  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "synthetic_learnability.json"
ARTIFACTS = REPO / "artifacts" / "synthetic_learnability"
PROMPT_STYLE = "timelens"
END_TOKEN = "<|im_end|>"
LEVEL = 1
VIDEO_SETTINGS = VideoSettings(fps=1.0, max_frames=64)


@dataclass
class RunConfig:
    """Everything that defines one run (written to the results file)."""

    size: str = "teacher"
    seed: int = 0
    steps: int = 2500
    budget_s: float = 720.0
    eval_every: int = 100
    eval_at_s: list[float] = field(
        default_factory=lambda: [60, 120, 180, 240, 300, 420, 600, 720, 900]
    )
    n_train: int = 2000
    n_val: int = 100
    batch_size: int = 8
    lr: float = 2e-3
    betas: tuple[float, float] = (0.9, 0.98)
    weight_decay: float = 0.01
    warmup_steps: int = 30
    decay: str = "none"
    min_lr_ratio: float = 0.1
    clip_norm: float = 1.0
    threads: int = 1
    max_new_tokens: int = 24
    eval_batch: int = 25
    log_every: int = 25
    data_dir: str = ""
    models_dir: str = ""


def ensure_dataset(data_dir: Path, cfg: RunConfig) -> dict[str, Any]:
    """Return the stats of a level-1 dataset with cfg's seed and sizes, generating it if needed."""
    stats_path = data_dir / "stats.json"
    if stats_path.is_file():
        stats = json.loads(stats_path.read_text())
        splits = stats.get("splits", {})
        if (
            stats.get("level") == LEVEL
            and stats.get("seed") == cfg.seed
            and splits.get("train", {}).get("n") == cfg.n_train
            and splits.get("val", {}).get("n") == cfg.n_val
        ):
            print(f"[data] reusing {data_dir}")
            return stats
    print(f"[data] generating level-{LEVEL} data in {data_dir}")
    return write_dataset(
        data_dir, cfg.n_train, cfg.n_val, 0, seed=cfg.seed, level=LEVEL, progress=print
    )


def answer_ids(tokenizer: Any, span: tuple[float, float], end_id: int) -> list[int]:
    """Token ids of the target answer for `span` (no special tokens added) + the end token."""
    text = get_prompt_style(PROMPT_STYLE).target_answer(*span)
    return [*tokenizer(text, add_special_tokens=False)["input_ids"], end_id]


def lr_factor(
    step: int, warmup: int, decay: str = "none", total: int = 1, min_ratio: float = 0.1
) -> float:
    """Linear warm-up over `warmup` steps (step counts from 0), then constant 1 ("none", the
    prototype's recipe) or a cosine from 1 down to `min_ratio` at step `total` ("cosine")."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if decay == "none":
        return 1.0
    if decay != "cosine":
        raise ValueError(f"unknown decay {decay!r}; expected 'none' or 'cosine'")
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def greedy_answers(
    model: Any,
    processor: Any,
    samples: Sequence[Sample],
    vision: Sequence[VisionInputs],
    max_new_tokens: int,
    batch: int,
) -> list[str]:
    """Greedy answers (special tokens dropped) of the model, left-padded batches of `batch`."""
    tokenizer = processor.tokenizer
    banned = [[i] for i in vision_placeholder_ids(tokenizer)]
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    answers: list[str] = []
    try:
        for lo in range(0, len(samples), batch):
            chunk = list(range(lo, min(lo + batch, len(samples))))
            kwargs = [vision[i].hf_processor_kwargs() for i in chunk]
            inputs = processor(
                text=[prompt_text(tokenizer, samples[i].query, PROMPT_STYLE) for i in chunk],
                videos=[k["videos"][0] for k in kwargs],
                video_metadata=[k["video_metadata"][0] for k in kwargs],
                do_sample_frames=False,
                padding=True,
                return_tensors="pt",
            )
            out = model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                bad_words_ids=banned,
            )
            new = out[:, inputs["input_ids"].shape[1] :]
            answers.extend(tokenizer.batch_decode(new, skip_special_tokens=True))
    finally:
        tokenizer.padding_side = old_side
    return answers


def evaluate(
    model: Any,
    processor: Any,
    samples: Sequence[Sample],
    vision: Sequence[VisionInputs],
    cfg: RunConfig,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Greedy-decode the val split; return the grounding metrics and the first few answers."""
    model.eval()
    with torch.no_grad():
        answers = greedy_answers(
            model, processor, samples, vision, cfg.max_new_tokens, cfg.eval_batch
        )
    model.train()
    ious: list[float] = []
    parsed: list[bool] = []
    for sample, answer in zip(samples, answers, strict=True):
        span = parse_span(answer)
        parsed.append(span is not None)
        ious.append(max_iou(span, sample.spans) if span is not None else 0.0)
    metrics = {k: round(v, 2) for k, v in grounding_metrics(ious, parsed).items()}
    examples = [
        {"gt": list(s.spans[0]), "answer": a, "iou": round(iou, 3)}
        for s, a, iou in list(zip(samples, answers, ious, strict=True))[:4]
    ]
    return metrics, examples


def machine_note() -> dict[str, Any]:
    """CPU count, platform and library versions of this machine."""
    import transformers

    return {
        "cpus": os.cpu_count(),
        "processor": platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def write_results(path: Path, payload: dict[str, Any]) -> None:
    """Write the results JSON atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    # Paths are written relative to the repository so results name no machine's layout.
    text = json.dumps(payload, indent=1).replace(str(REPO) + "/", "")
    tmp.write_text(text + "\n")
    os.replace(tmp, path)


def run(cfg: RunConfig, out: Path, command: str) -> dict[str, Any]:
    """Generate / reuse the data, build the model, train with SFT, evaluate; return the results."""
    from transformers import AutoProcessor

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    data_dir = Path(cfg.data_dir)
    stats = ensure_dataset(data_dir, cfg)
    model_dir = build_tiny_model(cfg.models_dir, ModelSpec("qwen3_vl", cfg.size, cfg.seed))
    processor = AutoProcessor.from_pretrained(model_dir)
    tokenizer = processor.tokenizer
    end_id = tokenizer.convert_tokens_to_ids(END_TOKEN)
    model = load_hf_model(model_dir)
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"[model] qwen3_vl-{cfg.size}: {n_params / 1e6:.3f} M parameters ({model_dir})")

    train = read_samples(data_dir / "train.json", video_root=data_dir / "videos")
    val = read_samples(data_dir / "val.json", video_root=data_dir / "videos")
    cache = FrameCache()
    t_decode = time.perf_counter()
    val_vision = [build_vision_inputs(s.video, VIDEO_SETTINGS, cache=cache) for s in val]
    print(
        f"[data] {len(train)} train / {len(val)} val; val decoded in "
        f"{time.perf_counter() - t_decode:.1f} s"
    )

    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay
    )
    rng = random.Random(cfg.seed)
    order: list[int] = []
    floor = stats["splits"]["val"].get("blind_floor_miou")
    results: dict[str, Any] = {
        "what": "SFT learnability of synthetic level 1 (random init, val greedy decoding)",
        "command": command,
        "config": {**asdict(cfg), "params": n_params, "model_dir": str(model_dir)},
        "video_settings": VIDEO_SETTINGS.to_dict(),
        "dataset": {
            "dir": str(data_dir),
            "level": LEVEL,
            "codec": stats.get("codec"),
            "val_blind_floor_miou": floor,
            "blind_answer": stats.get("blind_floor"),
            "val_stats": stats["splits"]["val"],
        },
        "machine": machine_note(),
        "load_avg_1min": [],
        "curve": [],
        "train_log": [],
        "examples": [],
    }

    train_s = 0.0
    wall0 = time.perf_counter()
    marks = sorted(cfg.eval_at_s)
    loss_window: list[float] = []
    grad_window: list[float] = []
    step_times: list[float] = []

    def do_eval(step: int, loss: float | None) -> dict[str, Any]:
        t0 = time.perf_counter()
        metrics, examples = evaluate(model, processor, val, val_vision, cfg)
        eval_s = time.perf_counter() - t0
        load = round(os.getloadavg()[0], 2)
        point = {
            "step": step,
            "train_s": round(train_s, 1),
            "wall_s": round(time.perf_counter() - wall0, 1),
            "loss": None if loss is None else round(loss, 4),
            "eval_s": round(eval_s, 1),
            "load_avg_1min": load,
            **metrics,
        }
        results["curve"].append(point)
        results["load_avg_1min"].append(load)
        results["examples"] = [{"step": step, **e} for e in examples]
        print(
            f"[eval] step {step:5d} | {train_s:6.1f} s | loss {point['loss']} | val mIoU "
            f"{metrics['mIoU']:5.1f} (floor {floor}) R1@0.5 {metrics['R1@0.5']:5.1f} "
            f"R1@0.7 {metrics['R1@0.7']:5.1f} parse {metrics['parse_rate']:5.1f}% | "
            f"eval {eval_s:.1f} s | load {load} | e.g. {examples[0]['answer']!r} "
            f"(gt {examples[0]['gt']})",
            flush=True,
        )
        write_results(out, results)
        return point

    do_eval(0, None)
    step = 0
    last_loss: float | None = None
    while step < cfg.steps and train_s < cfg.budget_s:
        t0 = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * lr_factor(
                step, cfg.warmup_steps, cfg.decay, cfg.steps, cfg.min_lr_ratio
            )
        if len(order) < cfg.batch_size:
            epoch = list(range(len(train)))
            rng.shuffle(epoch)
            order.extend(epoch)
        batch = [train[order.pop(0)] for _ in range(cfg.batch_size)]
        items = [
            ScoringItem(
                query=s.query,
                prompt_style=PROMPT_STYLE,
                vision=build_vision_inputs(s.video, VIDEO_SETTINGS, cache=cache),
                completion_ids=answer_ids(tokenizer, s.spans[0], end_id),
            )
            for s in batch
        ]
        scored = completion_log_probs(model, processor, items)
        loss = -torch.cat([r["logprobs"] for r in scored]).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm))
        optimizer.step()
        loss_value = loss.item()
        step += 1
        dt = time.perf_counter() - t0
        train_s += dt
        step_times.append(dt)
        loss_window.append(loss_value)
        grad_window.append(grad_norm)
        if step % cfg.log_every == 0:
            last_loss = sum(loss_window) / len(loss_window)
            recent = step_times[-cfg.log_every :]
            results["train_log"].append(
                {
                    "step": step,
                    "train_s": round(train_s, 1),
                    "loss_mean": round(last_loss, 4),
                    "loss_max": round(max(loss_window), 4),
                    "grad_norm_max": round(max(grad_window), 3),
                    "lr": optimizer.param_groups[0]["lr"],
                    "s_per_step": round(sum(recent) / len(recent), 4),
                }
            )
            loss_window.clear()
            grad_window.clear()
            print(
                f"[train] step {step:5d} | {train_s:6.1f} s | loss {last_loss:.4f} | "
                f"grad {grad_norm:.2f} | {sum(recent) / len(recent):.3f} s/step",
                flush=True,
            )
        if not math.isfinite(loss_value):
            raise RuntimeError(f"loss is {loss_value} at step {step}")
        crossed = bool(marks) and train_s >= marks[0]
        while marks and train_s >= marks[0]:
            marks.pop(0)
        if step % cfg.eval_every == 0 or crossed:
            do_eval(step, loss_value if last_loss is None else last_loss)
    if not results["curve"] or results["curve"][-1]["step"] != step:
        do_eval(step, last_loss)

    ordered = sorted(step_times)
    results["step_time_s"] = {
        "mean": round(sum(step_times) / len(step_times), 4) if step_times else None,
        "median": round(ordered[len(ordered) // 2], 4) if ordered else None,
        "steps": step,
        "train_s": round(train_s, 1),
        "wall_s": round(time.perf_counter() - wall0, 1),
    }
    results["summary"] = summarise(results["curve"], floor)
    results["machine_load_note"] = (
        "shared 2-core machine: other jobs ran concurrently; 1-min load averages at each "
        f"evaluation {min(results['load_avg_1min'])}-{max(results['load_avg_1min'])}"
    )
    write_results(out, results)
    return results


def summarise(curve: Sequence[dict[str, Any]], floor: float | None) -> dict[str, Any]:
    """Best val mIoU and the first step / training second at which mIoU passed floor+10, 50, 80."""
    best = max(curve, key=lambda p: p["mIoU"])
    first: dict[str, Any] = {}
    targets = {"floor+10": (floor or 0.0) + 10.0, "50": 50.0, "80": 80.0}
    for name, value in targets.items():
        hit = next((p for p in curve if p["mIoU"] >= value), None)
        first[name] = None if hit is None else {"step": hit["step"], "train_s": hit["train_s"]}
    return {
        "best_mIoU": best["mIoU"],
        "best_at_step": best["step"],
        "final": curve[-1],
        "first_reached": first,
    }


def parse_args(argv: Sequence[str] | None = None) -> tuple[RunConfig, Path]:
    """Parse the command line into a RunConfig and the results path."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size", default="teacher", choices=sorted(SIZES))
    p.add_argument("--seed", type=int, default=0, help="data, model init and data order seed")
    p.add_argument("--steps", type=int, default=2500, help="max optimiser steps")
    p.add_argument("--budget-s", type=float, default=720.0, help="max training seconds")
    p.add_argument("--eval-every", type=int, default=100, help="evaluate every N steps")
    p.add_argument(
        "--eval-at-s",
        default="60,120,180,240,300,420,600,720,900",
        help="also evaluate when training seconds pass these marks (comma-separated)",
    )
    p.add_argument("--n-train", type=int, default=2000)
    p.add_argument("--n-val", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup-steps", type=int, default=30)
    p.add_argument(
        "--decay",
        default="none",
        choices=("none", "cosine"),
        help="after warm-up: constant lr (recipe) or cosine to --min-lr-ratio at --steps",
    )
    p.add_argument("--min-lr-ratio", type=float, default=0.1)
    p.add_argument("--threads", type=int, default=1, help="torch threads (recipe: 1)")
    p.add_argument("--eval-batch", type=int, default=25, help="val prompts per generate call")
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--data-dir", default="", help="default artifacts/synthetic_learnability/...")
    p.add_argument("--models-dir", default="", help="default artifacts/synthetic_learnability/...")
    p.add_argument("--out", default=str(RESULTS), help="results JSON path")
    a = p.parse_args(argv)
    cfg = RunConfig(
        size=a.size,
        seed=a.seed,
        steps=a.steps,
        budget_s=a.budget_s,
        eval_every=a.eval_every,
        eval_at_s=[float(x) for x in a.eval_at_s.split(",") if x.strip()],
        n_train=a.n_train,
        n_val=a.n_val,
        batch_size=a.batch_size,
        lr=a.lr,
        warmup_steps=a.warmup_steps,
        decay=a.decay,
        min_lr_ratio=a.min_lr_ratio,
        threads=a.threads,
        eval_batch=a.eval_batch,
        log_every=a.log_every,
        data_dir=a.data_dir or str(ARTIFACTS / f"data-l{LEVEL}-s{a.seed}-{a.n_train}-{a.n_val}"),
        models_dir=a.models_dir or str(ARTIFACTS / f"models-s{a.seed}"),
    )
    return cfg, Path(a.out)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark from the command line and print the command that produced the file."""
    cfg, out = parse_args(argv)
    args = sys.argv[1:] if argv is None else list(argv)
    command = shlex.join([".venv/bin/python", "benchmarks/synthetic_learnability.py", *args])
    results = run(cfg, out, command)
    s = results["summary"]
    print(
        f"[done] best val mIoU {s['best_mIoU']} at step {s['best_at_step']} "
        f"(floor {results['dataset']['val_blind_floor_miou']}); first reached: "
        f"{s['first_reached']}; step time {results['step_time_s']}"
    )
    print(f"[done] wrote {out}")
    print(f"[done] command: {command}")


if __name__ == "__main__":
    main()
