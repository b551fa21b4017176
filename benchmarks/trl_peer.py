"""A single-process OPD peer built on TRL's GKD pieces, on the demo task, for comparison with our
distributed loop (vLLM rollout actors, teacher actors, DeepSpeed learners, weight sync each step).

One process holds the student and the teacher (transformers, float32, on the CPU, as our demo
runs; our transformers engine, which evaluates here, keeps its inputs on the CPU). Each step:

- generate: 16 training prompts (the demo's uniform sampler, same seed, so the same prompts in
  the same order as `vopd demo`) are encoded exactly as our transformers engine encodes them
  (`rollout.engine_hf.HFEngine`: chat text from `runtime.prompting`, frames from
  `tvg.video.build_vision_inputs`, left padding through the model's processor), and the student
  samples one completion each with TRL's `GKDTrainer.generate_on_policy_outputs`. That function
  hands `model.generate` only `input_ids` and `attention_mask`, so it cannot take the video
  inputs itself: it is given a thin adapter whose `generate` adds the processor's video tensors
  to that same call. Sampling at the demo's temperature (1.0) and max new tokens (24); the vision
  placeholder tokens and a padded vocabulary's unused ids are suppressed, as in our engines;
- teacher: the teacher's forward over prompt + completion, in this process, without gradients;
- learner: the student's forward with gradients, loss = TRL's
  `GKDTrainer.generalized_jsd_loss(student_logits, teacher_logits, labels, beta=1.0)` over the
  completion tokens (TRL's labels: -100 on the prompt, padding and after the end token), then
  AdamW with the demo's lr, betas, weight decay, warm-up, gradient clipping and cosine decay over
  the wall-clock training budget (`trainer.lr_schedule`, as our learner).

TRL's convention (checked in trl 1.16.0, `trl.experimental.gkd`): beta = 1 computes
`F.kl_div(teacher_log_probs, student_log_probs, log_target=True)` = sum_v p_s (log p_s - log p_t),
i.e. KL(student || teacher), the reverse KL of our `opd_full_rkl` objective, over the whole
vocabulary at every sampled position. Both logit sets are masked first (placeholders and padded
ids at a large finite negative: TRL's kl_div would turn -inf - -inf into NaN). TRL reduces by
"batchmean" (the mean over completion tokens of the batch); our demo aggregates per sequence
(`seq_mean_token_sum`): `--loss-reduction seq_sum` gives that instead.

Evaluation (greedy, the validation split, the driver's own `evaluate` on our transformers engine
holding the live student) runs at 0 s, then every `--eval-every-s` seconds of training (default
20 s: our demo evaluates every 25 steps at ~0.76 s per step), and at the end; it is not counted in
the training clock; `--eval-every-steps N` evaluates every N steps instead, the grid our runs use
(`eval.every_steps`), so that times to a target carry the same grid on both sides. Output
under `--out`: metrics.jsonl (one record per step, in the format of
`launch.ledger`: "time" per phase, "train_seconds", "val" on evaluated steps; step 0 = the start)
and summary.json (time to 50/80/90 % of the teacher's gain over the student's start, final val
mIoU, median seconds per phase). Compare with one of our runs: benchmarks/compare_peer.py.

TRL is an optional extra, not needed by the project or its CI:
    pip install -e '.[bench]'    (or: pip install -r requirements/bench.txt)

Usage: .venv/bin/python benchmarks/trl_peer.py --out runs/peer/seed0 --seed 0 --budget-s 300
Threads: torch uses `--threads` (default: every core); on a machine busy with other work two
threads thrash, and `--threads 1` is much faster (BENCHMARKS.md, "Single-process TRL peer").
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from benchmarks.compare_peer import STUDENTS, starting_student
from benchmarks.summarize_runs import eval_points, median_times, time_to_gain
from launch.ledger import Ledger
from runtime.hf_scoring import masked_log_softmax
from runtime.timing import PhaseTimer
from trainer.lr_schedule import budget_progress, lr_multiplier

BENCH_EXTRA = "bench"
# Where masked logits sit: exp() of it is 0, and masked minus masked is 0 (never NaN).
MASKED_LOGIT = -1e9
LOSS_REDUCTIONS = ("batchmean", "seq_sum")
# The processor outputs that TRL's generate call passes itself (the rest are the video inputs).
TEXT_KEYS = ("input_ids", "attention_mask")


def import_gkd_trainer() -> Any:
    """TRL's GKDTrainer class; a clear SystemExit naming the optional extra when TRL is missing."""
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    try:
        from trl.experimental.gkd import GKDTrainer
    except ImportError as exc:
        raise SystemExit(
            f"benchmarks/trl_peer.py needs TRL ({exc}). Install the optional extra: "
            f"pip install -e '.[{BENCH_EXTRA}]' (or pip install -r requirements/bench.txt)"
        ) from exc
    return GKDTrainer


class VisionGenerate:
    """A model whose `generate` also receives fixed video inputs (for TRL's
    `generate_on_policy_outputs`, which passes only input_ids and attention_mask)."""

    def __init__(self, model: Any, vision_kwargs: dict[str, Any]) -> None:
        """Wrap `model`; `vision_kwargs` go to every `generate` call."""
        self.model = model
        self.vision_kwargs = vision_kwargs

    def generate(self, **kwargs: Any) -> Any:
        """`model.generate` with the video inputs added."""
        return self.model.generate(**kwargs, **self.vision_kwargs)


def masked_logits(logits: torch.Tensor, banned_ids: list[int], num_tokens: int) -> torch.Tensor:
    """Log-probs with the banned ids and a padded vocabulary's unused ids at `MASKED_LOGIT`
    (finite), fit for TRL's loss (which applies log_softmax again: a no-op on log-probs)."""
    return masked_log_softmax(logits, banned_ids, 1.0, num_tokens).clamp_min(MASKED_LOGIT)


def model_inputs(
    encoded: dict[str, Any], sequences: torch.Tensor, attention_mask: torch.Tensor
) -> dict[str, Any]:
    """Forward inputs over prompt + completion: the processor's video tensors, the generated
    sequences, TRL's attention mask, and the modality types extended over the completion."""
    inputs = {k: v for k, v in encoded.items() if k not in TEXT_KEYS}
    inputs["input_ids"] = sequences
    inputs["attention_mask"] = attention_mask
    types = inputs.get("mm_token_type_ids")
    if types is not None:
        extra = sequences.shape[1] - types.shape[1]
        inputs["mm_token_type_ids"] = torch.cat(
            [types, torch.zeros((types.shape[0], extra), dtype=types.dtype, device=types.device)],
            dim=1,
        )
    return inputs


def peer_loss(
    gkd: Any,
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    reduction: str,
) -> torch.Tensor:
    """TRL's generalized JSD with beta = 1 (reverse KL) over the completion tokens; "batchmean"
    is TRL's mean over tokens, "seq_sum" the sum over tokens averaged over sequences."""
    if reduction == "batchmean":
        return gkd.generalized_jsd_loss(student_logits, teacher_logits, labels, beta=1.0)
    per_token = gkd.generalized_jsd_loss(
        student_logits, teacher_logits, labels=None, beta=1.0, reduction="none"
    ).sum(-1)
    mask = (labels != -100).to(per_token.dtype)
    return (per_token * mask).sum() / max(1, int((mask.sum(-1) > 0).sum()))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output folder (metrics.jsonl, summary.json)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget-s", type=float, default=300.0, help="seconds of training")
    parser.add_argument("--lr", type=float, default=None, help="default: the demo config's")
    parser.add_argument("--prompts-per-step", type=int, default=None, help="default: the demo's")
    grid = parser.add_mutually_exclusive_group()
    grid.add_argument("--eval-every-s", type=float, default=20.0)
    grid.add_argument(
        "--eval-every-steps",
        type=int,
        default=None,
        help="evaluate every N steps instead (our runs' eval.every_steps: the same grid)",
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--assets", default="artifacts/demo/assets.json")
    parser.add_argument(
        "--student", choices=STUDENTS, default="floor", help="the assets' student to start from"
    )
    parser.add_argument("--loss-reduction", choices=LOSS_REDUCTIONS, default="batchmean")
    return parser.parse_args(argv)


def eval_due(step: int, train_seconds: float, next_eval_s: float, every_steps: int | None) -> bool:
    """Whether the peer evaluates after `step`: every `every_steps` steps when set, else once the
    training clock reaches `next_eval_s`."""
    if every_steps is not None:
        return step % every_steps == 0
    return train_seconds >= next_eval_s


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the peer and write its ledger and summary; return the summary."""
    args = parse_args(argv)
    gkd = import_gkd_trainer()
    import transformers
    import trl
    from tqdm import tqdm
    from transformers import GenerationConfig

    from curriculum.factory import build_sampler
    from launch.config import load_config
    from launch.driver import evaluate
    from rollout.batch import PromptSpec
    from rollout.engine_common import configure_threads, prepare_prompts
    from rollout.engine_config import EngineConfig
    from rollout.engine_hf import HFEngine
    from runtime.hf_compat import load_hf_model
    from trainer.learner import prepare_student
    from tvg.formats import load_samples

    assets = json.loads(Path(args.assets).read_text())
    data = Path(assets["data"])
    student_dir, ref_start = starting_student(assets, args.student)
    overrides = [
        f"model.student={student_dir}",
        f"model.teacher={assets['teacher']}",
        f"data.train={data / 'train.json'}",
        f"data.val={data / 'val.json'}",
        f"data.video_root={data / 'videos'}",
        f"trainer.seed={args.seed}",
        f"trainer.budget_s={args.budget_s}",
    ]
    if args.lr is not None:
        overrides.append(f"learner.lr={args.lr}")
    if args.prompts_per_step is not None:
        overrides.append(f"trainer.prompts_per_step={args.prompts_per_step}")
    cfg = load_config("demo_opd", overrides)
    out = Path(args.out)
    if (out / "metrics.jsonl").exists():
        raise SystemExit(f"{out} already holds a peer run (metrics.jsonl): give another --out")

    threads = configure_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    settings = cfg.data.video_settings()

    def prompts_of(path: str) -> list[PromptSpec]:
        samples = load_samples(path, cfg.data.format, video_root=cfg.data.video_root).samples
        return [PromptSpec.from_sample(s, cfg.data.prompt_style, settings) for s in samples]

    train_prompts = prompts_of(cfg.data.train)
    val_prompts = prompts_of(cfg.data.val)
    if cfg.eval.max_samples:
        val_prompts = val_prompts[: cfg.eval.max_samples]
    sampler = build_sampler(cfg.curriculum, train_prompts, seed=args.seed)

    # Our transformers engine: its encoding and banned ids for sampling, and the driver's own
    # greedy evaluation; it holds the live student (its own loaded copy is dropped).
    engine = HFEngine(
        EngineConfig(
            model=cfg.model.student,
            engine="hf",
            seed=args.seed,
            threads=threads,
            max_model_len=cfg.rollout.max_model_len,
            track_checksum=False,
        )
    )
    student = load_hf_model(cfg.model.student)
    prepare_student(student, cfg.model.freeze_vision, cfg.learner.gradient_checkpointing)
    from trl.trainer.utils import disable_dropout_in_model

    disable_dropout_in_model(student)  # GKDConfig's default (disable_dropout=True)
    engine.model = student
    teacher = load_hf_model(cfg.model.teacher).eval()
    tokenizer = engine.tokenizer
    num_tokens = len(tokenizer)
    banned = list(engine.banned_ids)
    generation_config = GenerationConfig(
        max_new_tokens=cfg.rollout.max_new_tokens,
        do_sample=True,
        temperature=cfg.rollout.temperature,
        top_p=cfg.rollout.top_p,
        top_k=0,
        suppress_tokens=engine.suppress_ids,
        pad_token_id=engine.pad_id,
        eos_token_id=sorted(engine.eos_ids),
    )
    optimizer = torch.optim.AdamW(
        [p for p in student.parameters() if p.requires_grad],
        lr=cfg.learner.lr,
        betas=tuple(cfg.learner.betas),
        weight_decay=cfg.learner.weight_decay,
    )

    ledger = Ledger(out, tensorboard=False)
    records: list[dict[str, Any]] = []

    def run_eval() -> dict[str, float]:
        student.eval()
        with torch.no_grad():
            metrics = evaluate(engine, val_prompts, cfg.eval.max_new_tokens).metrics
        student.train()
        return metrics

    def log(record: dict[str, Any]) -> None:
        ledger.log(record)
        records.append(record)

    t_eval = time.perf_counter()
    start_val = run_eval()
    log(
        {
            "step": 0,
            "train_seconds": 0.0,
            "val": start_val,
            "time": {"eval": time.perf_counter() - t_eval},
        }
    )
    print(f"[peer] start: val mIoU {start_val['mIoU']:.2f}")

    budget = float(args.budget_s)
    train_seconds, step, next_eval = 0.0, 0, args.eval_every_s
    timer = PhaseTimer()
    bar = tqdm(
        total=budget,
        desc="trl peer (reverse KL)",
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s of training "
        "[{elapsed}<{remaining}{postfix}]",
    )
    while train_seconds < budget:
        t0 = time.perf_counter()
        prompts = [train_prompts[i] for i in sampler.next_indices(cfg.trainer.prompts_per_step)]
        progress = budget_progress(train_seconds, budget)
        lr = cfg.learner.lr * lr_multiplier(
            step,
            cfg.learner.warmup_steps,
            cfg.trainer.steps,
            cfg.learner.schedule,
            cfg.learner.min_lr_ratio,
            time_progress=progress,
        )
        for group in optimizer.param_groups:
            group["lr"] = lr
        with timer.phase("generate"):
            prepared, skipped = prepare_prompts(prompts, tokenizer, engine.frame_cache)
            encoded = engine._encode(prepared)  # the engine's own left-padded encoding
            vision = {k: v for k, v in encoded.items() if k not in TEXT_KEYS}
            with torch.no_grad():
                sequences, attention_mask, labels = gkd.generate_on_policy_outputs(
                    VisionGenerate(student, vision),
                    {
                        "prompts": encoded["input_ids"],
                        "prompt_attention_mask": encoded["attention_mask"],
                    },
                    generation_config,
                )
        inputs = model_inputs(encoded, sequences, attention_mask)
        with timer.phase("teacher"), torch.no_grad():
            teacher_logits = masked_logits(teacher(**inputs).logits[:, :-1], banned, num_tokens)
        with timer.phase("learner"):
            student_logits = masked_logits(student(**inputs).logits[:, :-1], banned, num_tokens)
            loss = peer_loss(
                gkd, student_logits, teacher_logits, labels[:, 1:], args.loss_reduction
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(student.parameters(), cfg.learner.grad_clip)
            optimizer.step()
        times = timer.reset()
        times["step"] = time.perf_counter() - t0
        train_seconds += times["step"]
        step += 1
        prompt_width = encoded["input_ids"].shape[1]
        completion = attention_mask[:, prompt_width:].sum(dim=1).float()
        record: dict[str, Any] = {
            "step": step,
            "loss": float(loss.detach()),
            "grad_norm": float(grad_norm),
            "lr": lr,
            "completions": len(prepared),
            "skipped_prompts": len(skipped),
            "completion_length_mean": float(completion.mean()),
            "tokens_generated": float(completion.sum()),
            "sample_ids": [p.sample_id for p in prompts],
            "samples_seen": step * cfg.trainer.prompts_per_step,
            "load_avg_1m": os.getloadavg()[0],
            "time": times,
            "train_seconds": train_seconds,
        }
        final = train_seconds >= budget
        if eval_due(step, train_seconds, next_eval, args.eval_every_steps) or final:
            t_eval = time.perf_counter()
            record["val"] = run_eval()
            record["time"]["eval"] = time.perf_counter() - t_eval
            while next_eval <= train_seconds:
                next_eval += args.eval_every_s
        log(record)
        bar.update(min(train_seconds, budget) - bar.n)
        postfix = {"step": str(step), "loss": f"{record['loss']:.3f}"}
        last_val = [v for _, v in eval_points(records)]
        postfix["val_mIoU"] = f"{last_val[-1]:.1f}"
        bar.set_postfix(postfix)
    bar.close()
    ledger.close()

    points = eval_points(records)
    reference = assets["metrics"]
    teacher_miou = float(reference["teacher"]["val"]["mIoU"])
    summary = {
        "peer": "trl GKD pieces, single process",
        "command": " ".join(
            [Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]
        ),
        "versions": {
            "trl": trl.__version__,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
        },
        "device": "cpu",
        "threads": threads,
        "seed": args.seed,
        "student": args.student,
        "budget_s": budget,
        "lr": cfg.learner.lr,
        "prompts_per_step": cfg.trainer.prompts_per_step,
        "loss": f"trl generalized_jsd_loss beta=1.0 (KL(student||teacher)), {args.loss_reduction}",
        "eval_every_s": args.eval_every_s if args.eval_every_steps is None else None,
        "eval_every_steps": args.eval_every_steps,
        "steps": step,
        "train_seconds": round(train_seconds, 2),
        "start_val_mIoU": start_val["mIoU"],
        "reference_start_val_mIoU": ref_start,
        "teacher_val_mIoU": teacher_miou,
        "time_to_gain": time_to_gain(points, ref_start, teacher_miou),
        "time_to_gain_from_measured_start": time_to_gain(points, start_val["mIoU"], teacher_miou),
        "final_val_mIoU": points[-1][1],
        "best_val_mIoU": max(v for _, v in points),
        "eval_points": [(round(t, 2), round(v, 2)) for t, v in points],
        "median_step_seconds": median_times(records),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(
        json.dumps(
            {
                k: summary[k]
                for k in (
                    "steps",
                    "train_seconds",
                    "time_to_gain",
                    "final_val_mIoU",
                    "eval_points",
                    "median_step_seconds",
                )
            },
            indent=1,
        )
    )
    return summary


if __name__ == "__main__":
    main()
