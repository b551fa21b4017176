"""The GPU paths the CPU suite cannot run, exercised on one CUDA device.

Each check runs in its own process (a failure is recorded with its error and the others still
run); the results go to one JSON file:

- `collective`: `runtime.collective.WeightGroup` over NCCL with one member (learner rank 0 alone:
  NCCL refuses two ranks on one GPU, so the broadcast to receivers needs a second GPU): a
  Qwen2.5-0.5B-shaped bf16 update (151,936 x 896 embedding, 24 layers) packed into 256 MiB
  buckets on the device and broadcast; pack / unpack round trip exact; seconds per update with
  and without the per-tensor digests.
- `collective_two_ranks`: the same group with two members, one GPU each where the machine has
  two (then the broadcast must arrive checksum-equal); on one GPU it records what NCCL answers
  (the expected refusal, surfaced by WeightGroup with the member's name).
- `learner_zero2` / `learner_zero3`: `trainer.learner.Learner` built directly on the device
  (DeepSpeed with NCCL as the default group, bf16, world size 1): SFT steps lower the loss;
  exact reverse-KL OPD with the teacher co-located on the same GPU trains; the weights exported
  to the engines equal, by checksum, what `broadcast_weights` sends over an NCCL weight group.
- `teacher`: `teacher_server.backend_hf.HFScorer` (the transformers teacher) with a 151,936-row
  vocabulary on the GPU against the same scorer on the CPU: sampled-token and top-20 log-probs.

Needs: a CUDA device, torch, transformers, DeepSpeed, decord (no vLLM or Ray), and `--data`, a
directory that `--prepare` filled: the tiny models (`launch.tiny_models`, a few seconds) and a
4-video synthetic dataset (`tvg.synth.write_dataset`; writing videos needs PyAV, so a machine
without it takes a dataset prepared elsewhere).

Usage:
    python benchmarks/gpu_paths.py --prepare DIR
    python benchmarks/gpu_paths.py --data DIR --out results.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CHECKS = (
    "collective",
    "collective_two_ranks",
    "learner_zero2",
    "learner_zero3",
    "teacher",
    "hf_engine",
)
VOCAB_SIZE = 151936
BUCKET_BYTES = 256 * 1024 * 1024


def device_type() -> str:
    """ "cuda" when this process sees a GPU, else "cpu" (the `--allow-cpu` dry run)."""
    from runtime.hf_compat import inference_device

    return inference_device().type


def backend() -> str:
    """The weight group's backend for `device_type()`."""
    from runtime.collective import default_backend

    return default_backend(device_type() == "cuda")


def synchronize() -> None:
    """Wait for the GPU's queued work (nothing on the CPU)."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def free_port() -> int:
    """A free TCP port on this host."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(directory: Path) -> None:
    """Write the tiny models into `directory`/models (qwen3_vl student and teacher) and
    `directory`/models_v151936 (the teacher with 151,936 rows), and a 4-video synthetic dataset
    into `directory`/dataset unless one is there (writing videos needs PyAV)."""
    from launch.tiny_models.build import ModelSpec, build_tiny_model

    for size in ("student", "teacher"):
        build_tiny_model(directory / "models", ModelSpec(family="qwen3_vl", size=size, seed=0))
    build_tiny_model(
        directory / f"models_v{VOCAB_SIZE}",
        ModelSpec(family="qwen3_vl", size="teacher", seed=0, vocab_size=VOCAB_SIZE),
    )
    if not (directory / "dataset" / "train.json").is_file():
        from tvg.synth import write_dataset

        write_dataset(directory / "dataset", n_train=4, n_val=0, n_test=0, seed=3)


def qwen_05b_shapes() -> list[tuple[str, tuple[int, ...]]]:
    """The text stack of Qwen2.5-0.5B: names and shapes (494 M parameters, tied head)."""
    hidden, inter, kv, layers = 896, 4864, 128, 24
    shapes: list[tuple[str, tuple[int, ...]]] = [("embed_tokens.weight", (VOCAB_SIZE, hidden))]
    for i in range(layers):
        p = f"layers.{i}."
        shapes += [
            (p + "self_attn.q_proj.weight", (hidden, hidden)),
            (p + "self_attn.q_proj.bias", (hidden,)),
            (p + "self_attn.k_proj.weight", (kv, hidden)),
            (p + "self_attn.k_proj.bias", (kv,)),
            (p + "self_attn.v_proj.weight", (kv, hidden)),
            (p + "self_attn.v_proj.bias", (kv,)),
            (p + "self_attn.o_proj.weight", (hidden, hidden)),
            (p + "mlp.gate_proj.weight", (inter, hidden)),
            (p + "mlp.up_proj.weight", (inter, hidden)),
            (p + "mlp.down_proj.weight", (hidden, inter)),
            (p + "input_layernorm.weight", (hidden,)),
            (p + "post_attention_layernorm.weight", (hidden,)),
        ]
    return [*shapes, ("norm.weight", (hidden,))]


def check_collective(_args: argparse.Namespace) -> dict[str, Any]:
    """WeightGroup over NCCL, one member: a 0.5 B bf16 update in 256 MiB buckets."""
    import torch

    from runtime.collective import (
        TensorSpec,
        UpdatePlan,
        WeightGroup,
        open_store,
        pack_bucket,
        unpack_bucket,
    )

    dev = device_type()
    gen = torch.Generator(device=dev).manual_seed(0)
    tensors = {
        name: torch.randn(shape, generator=gen, device=dev, dtype=torch.bfloat16)
        for name, shape in qwen_05b_shapes()
    }
    buckets: list[list[str]] = [[]]
    size = 0
    for name, tensor in tensors.items():
        nbytes = tensor.numel() * tensor.element_size()
        if buckets[-1] and size + nbytes > BUCKET_BYTES:
            buckets.append([])
            size = 0
        buckets[-1].append(name)
        size += nbytes
    plan = UpdatePlan.build(
        1, [[TensorSpec.of(name, tensors[name]) for name in bucket] for bucket in buckets]
    )
    # Round trip on the device: every tensor's bytes come back exactly.
    for specs, names in zip(plan.buckets, buckets, strict=True):
        buffer = pack_bucket(specs, [tensors[n] for n in names], dev)
        assert buffer.device.type == dev
        for name, view in zip(names, unpack_bucket(buffer, specs), strict=True):
            if not torch.equal(view, tensors[name]):
                raise AssertionError(f"{name}: unpacked tensor differs from the packed one")
    store = open_store("127.0.0.1", 1, 120.0)
    group = WeightGroup(
        "127.0.0.1", int(store.port), 0, 1, backend(), 120.0, name="learner rank 0", store=store
    )
    runs = []
    for index in range(4):
        synchronize()
        out = group.send_update(
            plan, ([tensors[n] for n in names] for names in buckets), checksum=index == 0
        )
        synchronize()
        runs.append(out)
    group.close()
    nccl = torch.cuda.nccl.version() if dev == "cuda" else "none"
    return {
        "members": 1,
        "backend": backend(),
        "nccl": ".".join(map(str, nccl)) if isinstance(nccl, tuple) else str(nccl),
        "parameters": sum(t.numel() for t in tensors.values()),
        "bytes": runs[0]["bytes"],
        "buckets": runs[0]["buckets"],
        "checksum": runs[0]["checksum"],
        "seconds_with_digests": runs[0]["seconds"],
        "seconds_without_digests": [r["seconds"] for r in runs[1:]],
        "seconds_without_digests_median": statistics.median(r["seconds"] for r in runs[1:]),
    }


def _two_rank_member(rank: int, ports: Any, queue: Any) -> None:
    """One member of a 2-member NCCL weight group on the same GPU (what NCCL answers)."""
    import torch

    from runtime.collective import TensorSpec, UpdatePlan, WeightGroup, open_store

    try:
        if torch.cuda.is_available():  # one GPU per member where there are two
            torch.cuda.set_device(rank % torch.cuda.device_count())
        store = open_store("127.0.0.1", 2, 30.0) if rank == 0 else None
        if rank == 0:
            port = int(store.port)
            ports.put(port)
        else:
            port = int(ports.get(timeout=30))
        group = WeightGroup(
            "127.0.0.1", port, rank, 2, backend(), 30.0, name=f"member {rank}", store=store
        )
        weight = torch.arange(1024, dtype=torch.float32, device=device_type())
        if rank == 0:
            plan = UpdatePlan.build(1, [[TensorSpec.of("w", weight)]])
            out = group.send_update(plan, [[weight]])
            queue.put(("sent", out["checksum"]))
        else:
            from runtime.checksums import checksum_of_digests, tensor_digest

            _, digests = group.receive_update(
                lambda _plan, _i, names, views: {
                    n: tensor_digest(v) for n, v in zip(names, views, strict=True)
                }
            )
            queue.put(("received", checksum_of_digests(digests)))
    except Exception as exc:  # recorded, not raised: the answer is the result
        queue.put((f"error {rank}", f"{type(exc).__name__}: {exc}"[:1500]))


def check_collective_two_ranks(_args: argparse.Namespace) -> dict[str, Any]:
    """Two members of one weight group, one GPU each where there are two (a real NCCL
    broadcast, checksum-equal at both ends); on one GPU, what NCCL answers, in each member's
    words (its refusal is the expected result there)."""
    import multiprocessing as mp

    import torch

    ctx = mp.get_context("spawn")
    ports = ctx.Queue()
    answers = ctx.Queue()

    procs = [ctx.Process(target=_two_rank_member, args=(r, ports, answers)) for r in (0, 1)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=75)
        if proc.is_alive():
            proc.kill()
    messages = []
    while not answers.empty():
        messages.append(answers.get())
    sent = [m for k, m in messages if k == "sent"]
    received = [m for k, m in messages if k == "received"]
    delivered = bool(sent and received and sent[0] == received[0])
    gpus = torch.cuda.device_count()
    if not delivered and (gpus >= 2 or device_type() == "cpu"):
        raise AssertionError(f"two members on {max(gpus, 1)} device(s) failed: {messages}")
    return {
        "gpus": gpus,
        "messages": [list(m) for m in messages],
        "exit_codes": [p.exitcode for p in procs],
        "delivered": delivered,
    }


def _trajectories(data: Path, model_dir: Path) -> tuple[list[Any], list[Any]]:
    """The dataset's prompts and their ground-truth answers as trajectories (the rows the driver
    builds for SFT: `launch.step_logic.inject_ground_truth`)."""
    from transformers import AutoTokenizer

    from launch.step_logic import inject_ground_truth
    from rollout.batch import PromptSpec, RolloutBatch
    from tvg.formats import read_samples
    from tvg.video import VideoSettings

    samples = read_samples(data / "dataset" / "train.json", video_root=data / "dataset" / "videos")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    settings = VideoSettings(fps=1.0, max_frames=64)
    batch = RolloutBatch(prompts=[PromptSpec.from_sample(s, "timelens", settings) for s in samples])
    inject_ground_truth(batch, tokenizer, tokenizer.eos_token_id, require_samples=False)
    return batch.prompts, batch.trajectories


def _learner(args: argparse.Namespace, stage: int) -> dict[str, Any]:
    """A learner rank on the GPU: SFT, then exact-RKL OPD with a co-located teacher, then the
    export and the NCCL broadcast of its weights."""
    import torch

    from runtime.checksums import state_checksum
    from trainer.learner import Learner, LearnerSettings
    from trainer.step_loss import StepTotals

    student = args.data / "models" / "qwen3_vl-student"
    teacher = args.data / "models" / "qwen3_vl-teacher"
    prompts, trajectories = _trajectories(args.data, student)
    settings = LearnerSettings(
        model_dir=str(student),
        zero_stage=stage,
        precision="bf16",
        lr=2e-3,
        micro_batch_size=2,
        gradient_checkpointing=stage == 3,
        teacher_model_dir=str(teacher),
        teacher_signal="full",
    )
    started = time.perf_counter()
    learner = Learner(0, 1, "127.0.0.1", free_port(), settings)
    build_s = time.perf_counter() - started
    params = list(learner.engine.module.parameters())
    teacher_device = str(next(learner.teacher.model.parameters()).device)

    def step(objective: str) -> Any:
        totals = StepTotals.of(trajectories)
        num_chunks = -(-len(trajectories) // settings.micro_batch_size)
        t0 = time.perf_counter()
        result = learner.train_step(
            prompts, trajectories, objective, {}, totals, num_chunks, trajectories[0]
        )
        synchronize()
        return result, time.perf_counter() - t0

    sft = [step("sft") for _ in range(5)]
    opd = [step("opd_full_rkl") for _ in range(3)]
    exported = {n: t for bucket in learner.export_weights(64 * 1024 * 1024) for n, t in bucket}
    address = learner.open_weight_group(1, backend(), 120.0)
    sent = learner.broadcast_weights(1, 64 * 1024 * 1024)
    learner.close_weight_group()
    sft_losses = [r.loss for r, _ in sft]
    opd_losses = [r.loss for r, _ in opd]
    checks = {
        "parameters_on_device": all(p.device.type == device_type() for p in params),
        "teacher_on_device": teacher_device.startswith(device_type()),
        "sft_loss_fell": sft_losses[-1] < sft_losses[0],
        "no_step_skipped": not any(r.skipped for r, _ in sft + opd),
        "opd_losses_finite": all(map(lambda v: v == v and abs(v) < float("inf"), opd_losses)),
        "broadcast_checksum_equals_export": sent["checksum"] == state_checksum(exported),
    }
    failed = [name for name, ok in checks.items() if not ok]
    if failed:
        raise AssertionError(f"failed: {failed}; sft {sft_losses}, opd {opd_losses}")
    return {
        "zero_stage": stage,
        "precision": "bf16",
        "gradient_checkpointing": settings.gradient_checkpointing,
        "default_group": str(torch.distributed.get_backend()),
        "teacher_device": teacher_device,
        "build_s": build_s,
        "sft_losses": sft_losses,
        "sft_step_s": [s for _, s in sft],
        "opd_full_rkl_losses": opd_losses,
        "opd_full_rkl_step_s": [s for _, s in opd],
        "opd_metrics": opd[-1][0].metrics,
        "exported_tensors": len(exported),
        "exported_dtypes": sorted({str(t.dtype) for t in exported.values()}),
        "weight_group": {k: address[k] for k in ("backend", "world_size")},
        "broadcast": sent,
        "checks": checks,
    }


def check_learner_zero2(args: argparse.Namespace) -> dict[str, Any]:
    """The learner with ZeRO-2."""
    return _learner(args, 2)


def check_learner_zero3(args: argparse.Namespace) -> dict[str, Any]:
    """The learner with ZeRO-3 and activation checkpointing."""
    return _learner(args, 3)


def check_teacher(args: argparse.Namespace) -> dict[str, Any]:
    """The transformers teacher (151,936 rows) on the GPU against itself on the CPU."""
    import numpy as np

    from teacher_server.backend_hf import HFScorer
    from teacher_server.config import TeacherConfig
    from teacher_server.items import item_from_trajectory

    model = args.data / f"models_v{VOCAB_SIZE}" / "qwen3_vl-teacher"
    if not model.is_dir():
        raise FileNotFoundError(f"no {model}: run --prepare first")
    prompts, trajectories = _trajectories(args.data, model)
    items = [item_from_trajectory(t, prompts[t.prompt_index]) for t in trajectories]
    config = TeacherConfig(backend="hf", model=str(model), dtype="float32", top_k=20)
    scorer = HFScorer(config)
    device = str(next(scorer.model.parameters()).device)
    scorer.score(items)  # warm-up
    synchronize()
    t0 = time.perf_counter()
    gpu = scorer.score(items)
    gpu_s = time.perf_counter() - t0
    scorer.model.to("cpu")
    t0 = time.perf_counter()
    cpu = scorer.score(items)
    cpu_s = time.perf_counter() - t0
    pairs = list(zip(gpu, cpu, strict=True))
    lp_diff = max(float(np.abs(g.logprobs - c.logprobs).max()) for g, c in pairs)
    topk_diff = max(float(np.abs(g.topk_logprobs - c.topk_logprobs).max()) for g, c in pairs)
    id_agree = float(np.mean([np.mean(g.topk_ids[:, :5] == c.topk_ids[:, :5]) for g, c in pairs]))
    if not device.startswith(device_type()):
        raise AssertionError(f"the transformers teacher loaded on {device}, not the GPU")
    if lp_diff > 1e-3:
        raise AssertionError(f"GPU and CPU sampled-token log-probs differ by {lp_diff}")
    return {
        "model": model.name,
        "device": device,
        "items": len(items),
        "completion_tokens": int(sum(t.num_completion_tokens for t in trajectories)),
        "top_k": 20,
        "max_abs_diff_logprobs": lp_diff,
        "max_abs_diff_topk_logprobs": topk_diff,
        "top5_id_agreement": id_agree,
        "gpu_score_s": gpu_s,
        "cpu_score_s": cpu_s,
    }


def check_hf_engine(args: argparse.Namespace) -> dict[str, Any]:
    """The transformers rollout engine (`engine: hf`) on the GPU: greedy samples against the
    same engine on the CPU, then a bucketed weight update lands in the live GPU model."""
    import torch

    from rollout.engine_config import EngineConfig, SamplingConfig
    from rollout.engine_hf import HFEngine
    from rollout.weight_sync import bucket_state_dict

    student = args.data / "models" / "qwen3_vl-student"
    prompts, _ = _trajectories(args.data, student)
    greedy = SamplingConfig(temperature=0.0, max_tokens=12, logprobs_topk=0)
    engine = HFEngine(EngineConfig(model=str(student), engine="hf"))
    device = str(engine.model.device)
    t0 = time.perf_counter()
    gpu = engine.sample(prompts, n=1, sampling=greedy).trajectories
    gpu_s = time.perf_counter() - t0
    engine.model.to("cpu")
    cpu = engine.sample(prompts, n=1, sampling=greedy).trajectories
    engine.model.to(device)
    same = [
        g.completion_ids.tolist() == c.completion_ids.tolist()
        for g, c in zip(gpu, cpu, strict=True)
    ]
    lp_diff = (
        max(
            float(abs(g.logprobs - c.logprobs).max())
            for g, c, s in zip(gpu, cpu, same, strict=True)
            if s and len(g.logprobs)
        )
        if any(same)
        else float("nan")
    )
    state = {k: v.detach().cpu() + 0.01 for k, v in engine.model.state_dict().items()}
    for bucket in bucket_state_dict(state, version=1, bucket_bytes=1024 * 1024):
        engine.update_weights(bucket)
    live = engine.model.state_dict()
    landed = all(torch.equal(live[k].cpu(), v) for k, v in state.items())
    on_device = all(v.device.type == device_type() for v in live.values())
    after = engine.sample(prompts[:1], n=1, sampling=greedy).trajectories
    if not device.startswith(device_type()) or not landed or not on_device or not any(same):
        raise AssertionError(
            f"engine on {device}; update landed {landed}, stayed on the device {on_device}; "
            f"greedy samples equal to the CPU's: {same}"
        )
    return {
        "device": device,
        "prompts": len(prompts),
        "greedy_equal_to_cpu": same,
        "max_abs_diff_logprobs_where_equal": lp_diff,
        "gpu_sample_s": gpu_s,
        "update_landed_in_live_model": landed,
        "weights_version_after_update": engine.weights_version,
        "sampled_after_update": len(after),
    }


def run_child(args: argparse.Namespace) -> None:
    """Run one check in this process; print its result as the last line (JSON)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    started = time.perf_counter()
    try:
        result = {"ok": True, **globals()[f"check_{args.child}"](args)}
    except Exception as exc:
        result = {
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}"[:3000],
            "traceback": traceback.format_exc()[-6000:],
        }
    result["seconds"] = time.perf_counter() - started
    print(json.dumps(result, default=str))


def main() -> None:
    """Prepare the inputs, or run the checks (each in a fresh process) and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepare", type=Path, help="write the models and dataset here, exit")
    parser.add_argument("--data", type=Path, help="a directory --prepare wrote")
    parser.add_argument("--out", type=Path, default=Path("gpu_paths.json"))
    parser.add_argument("--checks", default=",".join(CHECKS), help="comma-separated subset")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per check")
    parser.add_argument(
        "--allow-cpu", action="store_true", help="dry run without a GPU (gloo, CPU tensors)"
    )
    parser.add_argument("--child", choices=CHECKS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare:
        prepare(args.prepare)
        return
    if args.data is None:
        parser.error("--data is required (a directory --prepare wrote)")
    if args.child:
        run_child(args)
        return
    import torch

    if not torch.cuda.is_available() and not args.allow_cpu:
        sys.exit("gpu_paths.py needs a CUDA device (--allow-cpu: a dry run on the CPU)")
    results: dict[str, Any] = {
        "command": " ".join(["python", "benchmarks/gpu_paths.py", *sys.argv[1:]]),
        "machine": {
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else "none",
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "python": platform.python_version(),
        },
        "checks": {},
    }
    for name in args.checks.split(","):
        cmd = [sys.executable, str(Path(__file__).resolve()), f"--child={name}"]
        cmd += [f"--data={args.data}"]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
            lines = done.stdout.strip().splitlines()
            result = json.loads(lines[-1]) if lines else {"ok": False}
            if not lines:
                result["error"] = f"exit {done.returncode}: {done.stderr[-3000:]}"
            result["stderr_tail"] = done.stderr[-2000:]
        except subprocess.TimeoutExpired as exc:
            result = {"ok": False, "error": f"timed out after {args.timeout:.0f} s"}
            result["stderr_tail"] = (exc.stderr or b"")[-2000:].decode(errors="replace")
        results["checks"][name] = result
        print(f"{name}: {'ok' if result.get('ok') else 'FAILED ' + result.get('error', '')[:300]}")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1, default=str) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
