"""Model ladder: the full OPD loop (vLLM rollout, teacher scoring, DeepSpeed learners, weight sync)
at growing model sizes, to see which phase dominates where and what the GPU presets will cost.

Every rung is a Qwen3-VL-shaped student and teacher with Qwen's 151,936 embedding rows
(`vopd models build --vocab-size 151936`; sizes in launch/tiny_models/configs.py) trained a few
steps on the demo's objective (launch/configs/demo_opd.yaml: opd_full_rkl, hf teacher, ZeRO-2)
over a synthetic level-4 dataset whose 64-px videos are scaled up (`data.min_pixels`) to
realistic video prompts (~1,150 vision tokens on the small rungs). Evaluation and checkpoints
are off. Each rung runs in a fresh process (its own Ray instance), so the peak RSS (VmHWM) of
the driver and of every actor process is that rung's own.

Per rung: median seconds per phase over the steps after the first (the ledger's `time`), peak
RSS per process, bytes per step (teacher -> learner: `teacher_bytes`; learner -> engines:
`sync_bytes`), tokens/s (generated per rollout second, trained per learner second), parameters
(total / non-embedding / the FLOPs model's N) and prompt / vision tokens.
"Trained tokens" are the completion tokens in the loss; the learner's forward and backward run
over the whole sequence (`sequence_tokens_per_learner_s`). The JSON also holds
FLOPs-model estimates of a step of the GPU presets (`preset_estimates`).

Usage (results merge into the existing JSON, one rung replacing its earlier entry):
    .venv/bin/python benchmarks/model_ladder.py --rungs tiny,ladder_10m
    .venv/bin/python benchmarks/model_ladder.py --rungs ladder_0_5b     # an idle 24-GB machine
    .venv/bin/python benchmarks/model_ladder.py --report                # table + plot only
    .venv/bin/python benchmarks/model_ladder.py --parity ladder_100m    # vLLM vs transformers
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.summarize_runs import median_times  # noqa: E402
from launch.flops import learner_flops  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "model_ladder.json"
PLOT = RESULTS.with_suffix(".png")
WORK = ROOT / "artifacts" / "ladder"
VOCAB = 151_936  # Qwen2.5-VL / Qwen3-VL's embedding rows
PHASES = ("rollout", "teacher", "learner", "sync")
COMMAND = ".venv/bin/python benchmarks/model_ladder.py --rungs {rungs}"
IDLE_MACHINE = (
    "an idle machine (>= 24 GB free, no other jobs): from the 10 M rung's 4.2 GB per learner "
    "rank (measured), its ranks are expected above the ~6 GB per process a shared machine "
    "allows, and its steps to take minutes on 2 cores"
)


@dataclass(frozen=True)
class Rung:
    """One rung: student and teacher size presets, the video prompt and the step's shape.

    teacher_seed: the teacher's initialisation seed (the largest rung's teacher is the student's
    shape with another seed). min_pixels: each 64-px frame is scaled up to it (384 * 384 = 12 x 12
    merged tokens per 2-frame pair; 16 frames = 1,152 vision tokens). overrides: extra
    `key=value` settings of the run. shared_ok: whether a shared 2-core, 24-GB machine may run it.
    """

    student: str
    teacher: str
    teacher_seed: int = 0
    min_pixels: int = 384 * 384
    max_frames: int = 16
    prompts_per_step: int = 4
    max_new_tokens: int = 24
    max_model_len: int = 2048
    overrides: tuple[str, ...] = ()
    shared_ok: bool = True
    why: str = ""


RUNGS: dict[str, Rung] = {
    "tiny": Rung("student", "teacher", why="the demo's pair (~0.6 M / ~0.9 M non-embedding)"),
    # Teacher: ladder_30m (~144 M total), not the next rung (ladder_100m: ~296 M total, whose
    # forward over 1,150-token prompts would dominate every step on 2 cores).
    "ladder_10m": Rung("ladder_10m", "ladder_30m", why="teacher ~2.7x the student's body"),
    # Teacher: the next rung up. Learner rows of 1,200 tokens: one per micro-batch, layers
    # recomputed (ZeRO-2 state of ~296 M fp32 parameters: ~3.6 GB per rank of 2).
    "ladder_100m": Rung(
        "ladder_100m",
        "ladder_0_5b",
        overrides=("learner.micro_batch_size=1", "learner.gradient_checkpointing=true"),
        shared_ok=False,
        why="teacher = the next rung up (ladder_0_5b)",
    ),
    # Teacher: the same shape with another seed. fp32 on CPU: the student's ~656 M parameters
    # are 2.6 GB, its training state (weights, grads, Adam m and v: 16 B per parameter)
    # ~10.5 GB, the rollout engine 2.6 GB + KV; a 1.5 B teacher (~6 GB more) would not fit
    # beside them in 24 GB. 16 frames at 576 x 576 px: 18 x 18 x 8 = 2,592 vision tokens.
    # One learner rank without ZeRO partitioning holds that state once: measured here, two
    # ZeRO-3 ranks reached 7.7 GB each in the first update and one ZeRO-3 rank 15.7 GB (its flat
    # fp32 partitions copy the module's weights); with the rollout engine (5.3-5.7 GB) both
    # crossed Ray's 95% memory threshold and were killed. The one rank runs 2 threads, so the
    # learner uses both cores as the other rungs' 2 x 1 do. Its engine runs vLLM's own CPU
    # kernels (rollout.cpu_linear=vllm: every sync a layer-wise reload, 9.7 s of a 346-s step
    # measured): the default kind keeps a float32 copy of the linear weights beside the packed
    # ones, ~1.4 GB more at this size, which this measured fit in 24 GB did not include.
    "ladder_0_5b": Rung(
        "ladder_0_5b",
        "ladder_0_5b",
        teacher_seed=1,
        min_pixels=576 * 576,
        max_model_len=4096,
        prompts_per_step=2,
        overrides=(
            "learner.num_ranks=1",
            "learner.threads=2",
            "learner.zero_stage=0",
            "learner.micro_batch_size=1",
            "learner.gradient_checkpointing=true",
            "rollout.cpu_linear=vllm",
        ),
        shared_ok=False,
        why="teacher = the student's shape, seed 1 (a 1.5 B teacher does not fit in 24 GB)",
    ),
}


def build_models(rung: Rung, out: Path = WORK / "models") -> tuple[Path, Path]:
    """Build (or reuse) the rung's student and teacher with 151,936 embedding rows; return
    their directories (out/seed<S>/qwen3_vl-<size>)."""
    from launch.tiny_models import ModelSpec, build_tiny_model

    def build(size: str, seed: int) -> Path:
        spec = ModelSpec("qwen3_vl", size, seed=seed, vocab_size=VOCAB)
        return build_tiny_model(out / f"seed{seed}", spec)

    return build(rung.student, 0), build(rung.teacher, rung.teacher_seed)


def make_data(out: Path = WORK / "data", n_train: int = 8, n_val: int = 2) -> Path:
    """The ladder's synthetic dataset: level 4 (64-px frames, 16-64 s at 1 fps), written once."""
    from tvg.synth import write_dataset

    if not (out / "train.json").is_file():
        write_dataset(out, n_train=n_train, n_val=n_val, n_test=0, seed=5, level=4)
    return out


def rung_config(
    rung: Rung, student: Path, teacher: Path, data: Path, out: Path, *extra: str
) -> Any:
    """The demo's OPD run on the rung's models and prompts: 1 rollout engine, 1 teacher worker,
    the demo's 2 learner ranks unless the rung's overrides say otherwise; evaluation and
    checkpoints never due (`run_steps` never ends the run)."""
    from launch.config import load_config

    overrides = {
        "out_dir": str(out),
        "model.student": str(student),
        "model.teacher": str(teacher),
        "data.train": str(data / "train.json"),
        "data.val": str(data / "val.json"),
        "data.video_root": str(data / "videos"),
        "data.max_frames": str(rung.max_frames),
        "data.min_pixels": str(rung.min_pixels),
        "data.max_pixels": str(max(rung.min_pixels, 128 * 32 * 32)),
        "trainer.steps": "100000",
        "trainer.budget_s": "null",
        "trainer.prompts_per_step": str(rung.prompts_per_step),
        "rollout.num_workers": "1",
        "rollout.max_new_tokens": str(rung.max_new_tokens),
        "rollout.max_model_len": str(rung.max_model_len),
        "teacher.num_workers": "1",
        "eval.every_steps": "100000",
        "checkpoint.every_steps": "100000",
    }
    settings = [f"{k}={v}" for k, v in overrides.items()] + list(rung.overrides) + list(extra)
    return load_config(str(ROOT / "launch" / "configs" / "demo_opd.yaml"), settings)


def process_peaks() -> list[dict[str, Any]]:
    """Peak and current RSS (MB, /proc VmHWM / VmRSS) of this process and of every Ray actor
    process below it (named by their "ray::<Actor>" title; engine subprocesses by their name)."""
    import psutil

    def row(proc: psutil.Process, name: str) -> dict[str, Any] | None:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
        except OSError:
            return None
        kb = {
            line.split(":")[0]: int(line.split()[1])
            for line in status.splitlines()
            if line.startswith(("VmHWM", "VmRSS"))
        }
        return {
            "process": name,
            "pid": proc.pid,
            "peak_rss_mb": round(kb.get("VmHWM", 0) / 1024, 1),
            "rss_mb": round(kb.get("VmRSS", 0) / 1024, 1),
        }

    me = psutil.Process()
    rows = [row(me, "driver")]
    for child in me.children(recursive=True):
        try:
            title = " ".join(child.cmdline()).strip() or child.name()
            under_actor = any(" ".join(p.cmdline()).startswith("ray::") for p in child.parents())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if title.startswith("ray::") and not title.split()[0].endswith(("IDLE", "Agent")):
            rows.append(row(child, title.split()[0]))
        elif under_actor:  # e.g. an engine's own subprocess
            rows.append(row(child, child.name()))
    return [r for r in rows if r is not None]


def run_steps(config: Any, steps: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run `steps` training steps of the real loop (Driver.train_step: sample, teacher, learner,
    sync); return the ledger records and the processes' peak RSS read before shutdown."""
    from launch.driver import Driver

    driver = Driver(config)
    try:
        records = [driver.train_step() for _ in range(steps)]
        peaks = process_peaks()
    finally:
        driver.shutdown()
    return records, peaks


def vision_tokens(rung: Rung, data: Path) -> int:
    """Merged vision tokens of the first training video under the rung's settings (Qwen3-VL:
    one per 32 x 32 px of a 2-frame pair)."""
    from tvg.formats import load_samples
    from tvg.video import VideoSettings, build_vision_inputs

    sample = load_samples(str(data / "train.json"), None, video_root=str(data / "videos"))
    settings = VideoSettings(
        fps=1.0,
        max_frames=rung.max_frames,
        min_pixels=rung.min_pixels,
        max_pixels=max(rung.min_pixels, 128 * 32 * 32),
    )
    inputs = build_vision_inputs(sample.samples[0].video, settings)
    height, width = inputs.frame_size
    return len(inputs.frames) // 2 * (height // 32) * (width // 32)


def parameter_counts(model: Path) -> dict[str, int]:
    """total; non_embedding (no input embedding, no LM head); flops_n (the FLOPs model's N: no
    input embedding, LM head kept, `count_parameters(matmul_only=True)`)."""
    from safetensors import safe_open

    from launch.tiny_models.build import count_parameters

    total = count_parameters(model)
    tables = 0
    for file in model.glob("*.safetensors"):
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 (safe_open is not a dict)
                if key.endswith(("embed_tokens.weight", "lm_head.weight")):
                    tables += math.prod(handle.get_slice(key).get_shape())
    return {
        "total": total,
        "non_embedding": total - tables,
        "flops_n": count_parameters(model, matmul_only=True),
    }


def summarise_rung(
    name: str, rung: Rung, records: list[dict[str, Any]], peaks: list[dict[str, Any]], **info: Any
) -> dict[str, Any]:
    """One rung's result: medians over the steps after the first (step 1 warms the engines)."""
    steady = records[1:] or records
    phases = median_times(steady)

    def per_step(key: str) -> float:
        values = [float(r.get(key) or 0.0) for r in steady]
        return sum(values) / len(values)

    generated, trained = per_step("tokens_generated"), per_step("tokens_trained")
    completions = per_step("completions") or 1.0
    return {
        "rung": name,
        "status": "measured",
        "student": rung.student,
        "teacher": rung.teacher,
        "teacher_seed": rung.teacher_seed,
        "why": rung.why,
        "steps": len(records),
        "prompts_per_step": rung.prompts_per_step,
        "seconds_median": {p: phases.get(p, 0.0) for p in (*PHASES, "step")},
        "seconds_first_step": {
            p: round(records[0]["time"].get(p, 0.0), 3) for p in (*PHASES, "step")
        },
        "prompt_tokens_mean": round(per_step("tokens_prompt") / completions, 1),
        "tokens_generated_per_step": generated,
        "tokens_trained_per_step": trained,
        "generated_tokens_per_s": round(generated / max(phases.get("rollout", 0), 1e-9), 2),
        "trained_tokens_per_s": round(trained / max(phases.get("learner", 0), 1e-9), 2),
        "sequence_tokens_per_learner_s": round(
            (per_step("tokens_prompt") + generated) / max(phases.get("learner", 0), 1e-9), 1
        ),
        "teacher_bytes_per_step": per_step("teacher_bytes"),
        "sync_bytes_per_step": per_step("sync_bytes"),
        "learner_flops_per_step": per_step("learner_flops"),
        "learner_mfu": round(per_step("learner_mfu"), 4),
        "loss": [r.get("loss") for r in records],
        # Rollout vs learner log-probs of the sampled tokens (steps with trainer.mismatch_every).
        "logprob_mismatch_max": [
            r["logprob_mismatch_max"] for r in records if "logprob_mismatch_max" in r
        ],
        "sync_checksum": bool(all(r.get("sync_checksum") for r in records)),
        "teacher_scored_every_token": all(
            r.get("tokens_teacher_scored") == r.get("tokens_generated") for r in records
        ),
        "load_avg_1m": [round(r.get("load_avg_1m", 0.0), 2) for r in records],
        "peak_rss_mb": peaks,
        **info,
    }


def run_rung(name: str, steps: int, *settings: str) -> dict[str, Any]:
    """Build the rung's models and data, run it (`settings`: extra key=value), and return its
    summary (this process)."""
    rung = RUNGS[name]
    student, teacher = build_models(rung)
    data = make_data()
    out = WORK / "runs" / f"{name}_{time.strftime('%Y%m%d_%H%M%S')}"
    records, peaks = run_steps(rung_config(rung, student, teacher, data, out, *settings), steps)
    return summarise_rung(
        name,
        rung,
        records,
        peaks,
        vision_tokens=vision_tokens(rung, data),
        params_student=parameter_counts(student),
        params_teacher=parameter_counts(teacher),
        run_dir=str(out.relative_to(ROOT)),
        settings=asdict(rung),
    )


def parity(model: Path) -> dict[str, Any]:
    """vLLM (CPU, float32) loads `model`, and its prompt log-probs of a short text prompt match
    transformers' (raw 151,936-wide distribution); the transformers model is freed before the
    engine starts, so the peak holds one copy of the weights."""
    import gc

    import torch
    from transformers import AutoTokenizer
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    from runtime.hf_compat import load_hf_model

    text = "<|im_start|>user\nWhen does the red square appear?<|im_end|>\n<|im_start|>assistant\n"
    ids = AutoTokenizer.from_pretrained(model)(text + "From 2 to 6 seconds.")["input_ids"]
    hf_model = load_hf_model(model).eval()
    with torch.no_grad():
        logits = hf_model(input_ids=torch.tensor([ids])).logits[0, :-1].float()
    hf = torch.log_softmax(logits, -1).gather(1, torch.tensor(ids[1:])[:, None])[:, 0]
    del hf_model, logits
    gc.collect()
    llm = LLM(
        model=str(model),
        dtype="float32",
        max_model_len=512,
        enforce_eager=True,
        limit_mm_per_prompt={"video": 0, "image": 0},
    )
    out = llm.generate(
        [TokensPrompt(prompt_token_ids=ids)],
        SamplingParams(max_tokens=1, prompt_logprobs=0),
        use_tqdm=False,
    )[0]
    got = torch.tensor([out.prompt_logprobs[i][ids[i]].logprob for i in range(1, len(ids))])
    return {"model": model.name, "tokens": len(ids), "max_abs_diff": float((got - hf).abs().max())}


# ---------------------------------------------------------------- GPU presets: FLOPs estimates
# Published sizes (docs/CLUSTER.md "Sizing"): (total parameters, input-embedding parameters =
# 151,936 x hidden); the FLOPs model's N leaves out the input embedding (a lookup).
PRESET_MODELS: dict[str, dict[str, tuple[float, float]]] = {
    "video_opd_8b": {
        "student": (8.8e9, 151_936 * 4096),  # Qwen3-VL-8B
        "teacher": (33e9, 151_936 * 5120),  # Qwen3-VL-32B
    },
    "tempsamp_r1_7b": {"student": (8.3e9, 151_936 * 3584)},  # Qwen2.5-VL-7B, no teacher
}
# Assumed tokens per row: a ~30-s Charades-STA clip at 2 fps. Qwen3-VL, 640x352 source: 220
# tokens/s -> 6,600 + ~150 of text; Qwen2.5-VL at max_pixels 131072: ~5K (docs/CLUSTER.md).
PRESET_PROMPT_TOKENS = {"video_opd_8b": 6_750, "tempsamp_r1_7b": 5_000}
COMPLETION_TOKENS = 32  # assumed answer length (non-CoT answers are ~20 tokens)
BF16_DENSE_PEAK = 989e12  # FLOP/s of one H100 / H200 (dense bf16)
ASSUMED_MFU = 0.4


def preset_estimates() -> dict[str, Any]:
    """FLOPs-model ESTIMATES of one step of each GPU preset on its layout: 2 N per token for the
    forward-only phases (rollout prefill, teacher), 6 N per trained token (`learner_flops`);
    seconds at ASSUMED_MFU of the bf16 peak of the phase's GPUs. Not measurements."""
    from launch.config import load_config
    from trainer.objectives.registry import get_objective_spec

    out: dict[str, Any] = {}
    for preset, sizes in PRESET_MODELS.items():
        models = {role: total - embedding for role, (total, embedding) in sizes.items()}
        models.setdefault("teacher", 0.0)
        cfg = load_config(preset)
        spec = get_objective_spec(cfg.trainer.objective)
        rows_sampled = cfg.trainer.prompts_per_step * cfg.rollout.n
        ground_truth = spec.ground_truth == "per_group"  # TempSamp-R1's extra row per group
        rows = rows_sampled + (cfg.trainer.prompts_per_step if ground_truth else 0)
        seq = PRESET_PROMPT_TOKENS[preset] + COMPLETION_TOKENS
        # Samples of one prompt share its prefill (vLLM's prefix cache).
        rollout = (
            2
            * models["student"]
            * (
                cfg.trainer.prompts_per_step * PRESET_PROMPT_TOKENS[preset]
                + rows_sampled * COMPLETION_TOKENS
            )
        )
        teacher = 2 * models["teacher"] * rows_sampled * seq if models["teacher"] else 0.0
        learner = learner_flops(int(models["student"]), rows * seq * cfg.trainer.ppo_epochs)
        gpus = {
            "rollout": cfg.rollout.num_workers * max(cfg.resources.rollout_gpus, 1),
            "teacher": cfg.teacher.num_workers * max(cfg.resources.teacher_gpus, 1),
            "learner": cfg.learner.num_ranks * max(cfg.resources.learner_gpus, 1),
        }
        flops = {"rollout": rollout, "teacher": teacher, "learner": learner}
        seconds = {
            p: round(f / (gpus[p] * BF16_DENSE_PEAK * ASSUMED_MFU), 2) if f else 0.0
            for p, f in flops.items()
        }
        out[preset] = {
            "estimate": True,
            "objective": cfg.trainer.objective,
            "rows_per_step": rows,
            "tokens_per_row": seq,
            "params_n": {k: int(v) for k, v in models.items()},
            "gpus": {p: int(g) for p, g in gpus.items() if flops[p]},
            "flops_per_step": {p: f"{f:.2e}" for p, f in flops.items() if f},
            "seconds_per_step_at_mfu": {p: s for p, s in seconds.items() if flops[p]},
            # learner -> each engine: every student weight in bf16
            "sync_bytes_bf16_per_engine": int(sizes["student"][0] * 2),
        }
    out["assumptions"] = (
        f"{ASSUMED_MFU:.0%} MFU of {BF16_DENSE_PEAK / 1e12:.0f} TFLOP/s (bf16 dense) per GPU; "
        f"{COMPLETION_TOKENS} completion tokens; prompt tokens {PRESET_PROMPT_TOKENS}; rollout "
        "decode (memory-bound) and the vision towers' patch FLOPs left out"
    )
    return out


# ---------------------------------------------------------------- results: JSON, table, plot
def load_results(path: Path = RESULTS) -> dict[str, Any]:
    """The results file, or an empty one."""
    if path.is_file():
        return json.loads(path.read_text())
    return {"rungs": {}}


def not_run_entry(name: str) -> dict[str, Any]:
    """The entry of a rung not yet run: its models, settings and the command that runs it."""
    rung = RUNGS[name]
    return {
        "rung": name,
        "status": "not yet run",
        "student": rung.student,
        "teacher": rung.teacher,
        "teacher_seed": rung.teacher_seed,
        "why": rung.why,
        "settings": asdict(rung),
        "needs": "any machine" if rung.shared_ok else IDLE_MACHINE,
        "command": COMMAND.format(rungs=name),
    }


def markdown_table(results: dict[str, Any]) -> str:
    """The per-rung table of BENCHMARKS.md."""
    head = (
        "| rung | student params total / non-emb | teacher total / non-emb | prompt tokens "
        "(vision) | rollout s | teacher s | learner s | sync s | step s | gen tok/s | "
        "learner tok/s (completion / sequence) | teacher->learner B/step | "
        "learner->engines B/step | peak RSS MB "
        "(driver / rollout / teacher / learner max) |\n|" + "---|" * 14
    )
    lines = [head]
    for name in RUNGS:
        r = results["rungs"].get(name)
        if r is None:
            continue
        if r["status"] != "measured":
            lines.append(f"| {name} | {r['student']} | {r['teacher']} | " + "not yet run | " * 11)
            continue
        s, t = r["params_student"], r["params_teacher"]
        sec = r["seconds_median"]
        rss = _rss_by_role(r["peak_rss_mb"])
        lines.append(
            f"| {name} | {s['total'] / 1e6:.1f} M / {s['non_embedding'] / 1e6:.1f} M "
            f"| {t['total'] / 1e6:.1f} M / {t['non_embedding'] / 1e6:.1f} M "
            f"| {r['prompt_tokens_mean']:.0f} ({r['vision_tokens']}) | "
            + " | ".join(f"{sec[p]:.2f}" for p in (*PHASES, "step"))
            + f" | {r['generated_tokens_per_s']:.1f} | {r['trained_tokens_per_s']:.0f} / "
            f"{r['sequence_tokens_per_learner_s']:.0f} "
            f"| {r['teacher_bytes_per_step'] / 1e3:.0f} KB "
            f"| {r['sync_bytes_per_step'] / 1e6:.0f} MB "
            f"| {rss['driver']:.0f} / {rss['rollout']:.0f} / {rss['teacher']:.0f} / "
            f"{rss['learner']:.0f} |"
        )
    return "\n".join(lines)


def _rss_by_role(peaks: list[dict[str, Any]]) -> dict[str, float]:
    """The largest peak RSS (MB) of the driver, rollout, teacher and learner processes."""
    roles = {"driver": 0.0, "rollout": 0.0, "teacher": 0.0, "learner": 0.0}
    for row in peaks:
        name = row["process"].lower()
        role = next(
            (
                r
                for r, keys in (
                    ("driver", ("driver",)),
                    ("rollout", ("rollout",)),
                    ("teacher", ("teacher",)),
                    ("learner", ("learner",)),
                )
                if any(k in name for k in keys)
            ),
            None,
        )
        if role:
            roles[role] = max(roles[role], row["peak_rss_mb"])
    return roles


def plot(results: dict[str, Any], path: Path = PLOT) -> None:
    """Median seconds per phase against the student's non-embedding parameters (log x)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [r for r in results["rungs"].values() if r["status"] == "measured"]
    measured.sort(key=lambda r: r["params_student"]["non_embedding"])
    fig, ax = plt.subplots(figsize=(6.5, 4))
    xs = [r["params_student"]["non_embedding"] for r in measured]
    for phase in (*PHASES, "step"):
        ys = [max(r["seconds_median"][phase], 1e-3) for r in measured]
        ax.plot(xs, ys, marker="o", label=phase, linestyle="--" if phase == "step" else "-")
    for r, x in zip(measured, xs, strict=True):
        ax.annotate(r["rung"], (x, r["seconds_median"]["step"]), fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("student parameters (non-embedding; + 2 x 151,936 x hidden embedding/LM head)")
    ax.set_ylabel("median seconds per step")
    ax.set_title("Model ladder: seconds per phase (2 CPU cores, fp32)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Run the asked rungs (each in its own process), merge them into the results, report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rungs", default="tiny,ladder_10m", help="comma-separated rung names")
    parser.add_argument("--steps", type=int, default=3, help="training steps per rung")
    parser.add_argument("--out", default=str(RESULTS), help="results JSON (merged)")
    parser.add_argument("--report", action="store_true", help="only rewrite the table and plot")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra run setting of every rung, e.g. trainer.mismatch_every=1 (repeatable)",
    )
    parser.add_argument(
        "--parity",
        metavar="SIZE",
        help="only check that vLLM loads this size (seed 0) and matches transformers; the "
        "result goes into the JSON's parity",
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one rung, print JSON
    args = parser.parse_args(argv)
    if args.parity:
        from runtime.vllm_env import apply_vllm_cpu_defaults

        apply_vllm_cpu_defaults()
        model = WORK / "models" / "seed0" / f"qwen3_vl-{args.parity}"
        if not model.is_dir():
            build_models(Rung(args.parity, args.parity))
        result = {**parity(model), "command": f"{COMMAND.split(' --')[0]} --parity {args.parity}"}
        results = load_results(Path(args.out))
        results.setdefault("parity", {})[args.parity] = result
        Path(args.out).write_text(json.dumps(results, indent=2, default=str) + "\n")
        print(json.dumps(result))
        return 0
    if args.one:
        print("LADDER_RESULT " + json.dumps(run_rung(args.one, args.steps, *args.set)))
        return 0
    out = Path(args.out)
    results = load_results(out)
    names = [] if args.report else [n for n in args.rungs.split(",") if n]
    unknown = [n for n in names if n not in RUNGS]
    if unknown:
        parser.error(f"unknown rungs {unknown}; choose from {list(RUNGS)}")
    for name in names:
        print(f"[ladder] {name} ...", flush=True)
        proc = subprocess.run(
            [sys.executable, __file__, "--one", name, "--steps", str(args.steps)]
            + [f"--set={setting}" for setting in args.set],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        line = next((x for x in proc.stdout.splitlines() if x.startswith("LADDER_RESULT ")), None)
        if proc.returncode or line is None:
            print(proc.stdout[-4000:])
            print(f"[ladder] {name} failed (exit {proc.returncode})", file=sys.stderr)
            return 1
        entry = json.loads(line.removeprefix("LADDER_RESULT "))
        entry["command"] = (
            COMMAND.format(rungs=name)
            + f" --steps {args.steps}"
            + "".join(f" --set {setting}" for setting in args.set)
        )
        results["rungs"][name] = entry
        print(f"[ladder] {name}: median step {entry['seconds_median']['step']:.2f} s", flush=True)
    for name in RUNGS:
        if results["rungs"].get(name, {}).get("status") != "measured":
            results["rungs"][name] = not_run_entry(name)
    results["command"] = COMMAND.format(rungs=",".join(RUNGS))
    results["machine"] = {"cpus": os.cpu_count(), "note": "shared 2-core machine, fp32"}
    results["preset_estimates"] = preset_estimates()
    results["table"] = markdown_table(results)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    plot(results, out.with_suffix(".png"))
    print(results["table"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
