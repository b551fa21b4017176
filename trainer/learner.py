"""One learner rank: a DeepSpeed ZeRO engine around the student, run as a Ray actor.

A rank receives its data-parallel share of a step's trajectories, recomputes their log-probs with
the same vision inputs the sampler used (tvg.video.build_vision_inputs through a frame cache,
prompt ids from runtime.prompting, vision placeholder tokens masked exactly as they are banned at
sampling), evaluates the objective, and applies one optimizer step across all ranks. It also
exports the full weights in buckets for the rollout engines (ZeRO-3 gathers one bucket at a time;
every rank must take part in the gather, rank 0 returns the tensors) and saves / loads checkpoints.

The process group is gloo on CPU and NCCL on GPUs (same code; NCCL ran with one rank on an H200:
`benchmarks/gpu_paths.py`).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import random
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from rollout.batch import PromptSpec, Trajectory
from trainer.config import LearnerConfig
from trainer.step_loss import StepTotals

VISION_PREFIXES: tuple[str, ...] = ("model.visual.", "visual.")
_SANITIZED_FIELDS = (
    "logprobs",
    "teacher_logprobs",
    "teacher_topk_logprobs",
    "topk_logprobs",
    "ref_logprobs",
)


def sanitize_trajectories(
    trajectories: Sequence[Trajectory],
) -> tuple[list[Trajectory], list[str]]:
    """Copies with NaN / +inf in log-prob arrays and rewards replaced by 0 (-inf kept: a masked
    top-k entry), and the names of the fields that held them ("<index>.<field>")."""
    clean: list[Trajectory] = []
    bad: list[str] = []
    for index, traj in enumerate(trajectories):
        changes: dict[str, Any] = {}
        for name in _SANITIZED_FIELDS:
            value = getattr(traj, name)
            if value is not None and (np.isnan(value).any() or np.isposinf(value).any()):
                bad.append(f"{index}.{name}")
                changes[name] = np.nan_to_num(value, nan=0.0, posinf=0.0, neginf=-np.inf)
        if any(not math.isfinite(v) for v in traj.rewards.values()):
            bad.append(f"{index}.rewards")
            changes["rewards"] = {
                k: (v if math.isfinite(v) else 0.0) for k, v in traj.rewards.items()
            }
        clean.append(dataclasses.replace(traj, **changes) if changes else traj)
    return clean, bad


def prepare_student(model: Any, freeze_vision: bool, gradient_checkpointing: bool) -> None:
    """Set up a transformers student for training, in place, before DeepSpeed wraps it.

    freeze_vision: the vision tower's parameters (VISION_PREFIXES) stop requiring gradients.
    gradient_checkpointing: every decoder layer (and vision block) of the model is checkpointed
    through transformers' `gradient_checkpointing_enable` with torch's non-reentrant checkpoint
    (`use_reentrant=False`: right with frozen parameters and keyword inputs); it acts in train
    mode only, so the learner's no-grad log-prob pass is unchanged.
    """
    if freeze_vision:
        for name, param in model.named_parameters():
            if name.startswith(VISION_PREFIXES):
                param.requires_grad_(False)
    if gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def node_ip_address() -> str:
    """This node's address as Ray reports it; 127.0.0.1 in a process outside Ray (a learner
    built directly, e.g. by benchmarks/gpu_paths.py)."""
    try:
        import ray
    except ImportError:
        return "127.0.0.1"
    return ray.util.get_node_ip_address() if ray.is_initialized() else "127.0.0.1"


@dataclass(kw_only=True)
class LearnerSettings(LearnerConfig):
    """How a learner rank trains: the run's `learner:` section (`trainer.config.LearnerConfig`:
    ZeRO stage, precision, optimizer, schedule, threads), handed down whole, plus the rank's
    model and what the rank takes from the rest of the run (step count, temperature, seed, a
    co-located teacher)."""

    model_dir: str
    adam_eps: float = 1e-8
    total_steps: int = 1000
    freeze_vision: bool = False
    # The sampling temperature (the run's rollout.temperature): the learner's log-probs are
    # those of the distribution the rollout sampled from.
    temperature: float = 1.0
    seed: int = 0
    frame_cache_bytes: int = 256 * 1024 * 1024
    # The directory of decoded frames the run's processes share (data.frame_cache_dir), or None.
    frame_cache_dir: str | None = None
    # A co-located teacher (teacher.colocate): its model, the signal the objective reads
    # ("sampled" / "topk" / "full") and the top-k length; None = the teacher is elsewhere.
    teacher_model_dir: str | None = None
    teacher_signal: str = "full"
    teacher_top_k: int = 0

    @classmethod
    def from_config(cls, config: LearnerConfig, **rank: Any) -> LearnerSettings:
        """The settings of a rank of the learner section `config` (every one of its values, as
        given), with `rank`'s own values (model_dir and the other fields of this class)."""
        names = [f.name for f in dataclasses.fields(LearnerConfig)]
        section = {name: copy.deepcopy(getattr(config, name)) for name in names}
        return cls(**section, **rank)


@dataclass
class StepResult:
    """What one rank reports after a step (summed over its micro-batches)."""

    loss: float
    num_sequences: int
    num_tokens: int
    grad_norm: float
    skipped: bool
    seconds: float
    metrics: dict[str, float]
    lr: float = float("nan")  # the learning rate this update used
    # Prompt + completion tokens of this rank's rows as the forward ran them (vision tokens
    # expanded; filler rows excluded): the learner FLOPs model's token count.
    num_input_tokens: int = 0
    # Seconds of the step's parts on this rank: "inputs" (frames + processor), "student_forward",
    # "teacher_forward" (a co-located teacher), "loss", "backward" (with ZeRO's gradient
    # reduction), "optimizer"; `seconds` minus their sum is the rank's own bookkeeping.
    parts: dict[str, float] = field(default_factory=dict)
    # With keep_logprobs: per row of this rank's share, in order, the log-probs ("logprobs") and
    # entropies ("entropy") the update's own forward computed, before the update (float32).
    rows: list[dict[str, np.ndarray]] | None = None


class Learner:
    """A DeepSpeed learner rank (wrap with `ray.remote`; see trainer.learner_group)."""

    def __init__(
        self,
        rank: int,
        world_size: int,
        master_addr: str,
        master_port: int,
        settings: LearnerSettings,
    ) -> None:
        from runtime.log_filters import quiet_library_noise

        quiet_library_noise()  # before DeepSpeed is imported (its accelerator notice)
        os.environ.update(
            RANK=str(rank),
            WORLD_SIZE=str(world_size),
            LOCAL_RANK="0",
            LOCAL_WORLD_SIZE="1",
            MASTER_ADDR=master_addr,
            MASTER_PORT=str(master_port),
        )
        import torch

        torch.set_num_threads(settings.threads)
        self.rank, self.world_size, self.settings = rank, world_size, settings
        self.time_progress = 0.0  # share of the run's budget spent (see lr_multiplier)
        self._seed_everything(settings.seed + rank)
        import deepspeed
        from transformers import AutoProcessor

        from runtime.collective import default_backend
        from runtime.hf_compat import inference_device, load_hf_model
        from runtime.hf_scoring import same_position_rule
        from runtime.processed_prompts import PromptCache
        from trainer.ds_config import deepspeed_config
        from trainer.lr_schedule import lr_multiplier
        from tvg.frame_cache import FrameCache

        backend = default_backend(torch.cuda.is_available())
        # Where this rank's tensors for the default group live (NCCL takes only CUDA tensors).
        self.collective_device = inference_device()
        deepspeed.init_distributed(dist_backend=backend)
        dtype = torch.bfloat16 if settings.precision == "bf16" else torch.float32
        model = load_hf_model(settings.model_dir, dtype=dtype)
        prepare_student(model, settings.freeze_vision, settings.gradient_checkpointing)
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            trainable,
            lr=settings.lr,
            betas=(settings.betas[0], settings.betas[1]),
            weight_decay=settings.weight_decay,
            eps=settings.adam_eps,
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            # Read when the scheduler steps (after each optimizer step): the budget share spent
            # by the step just taken sets the next step's lr.
            lambda step: lr_multiplier(
                step,
                settings.warmup_steps,
                settings.total_steps,
                settings.schedule,
                settings.min_lr_ratio,
                self.time_progress,
            ),
        )
        config = deepspeed_config(
            settings.zero_stage, settings.precision, settings.grad_clip, settings.micro_batch_size
        )
        self.engine, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=model, optimizer=optimizer, lr_scheduler=scheduler, config=config
        )
        self.processor = AutoProcessor.from_pretrained(settings.model_dir)
        self.teacher = None
        if settings.teacher_model_dir:
            from trainer.colocated_teacher import ColocatedTeacher

            self.teacher = ColocatedTeacher(
                settings.teacher_model_dir,
                dtype,
                settings.temperature,
                settings.teacher_signal,
                settings.teacher_top_k,
            )
        # A co-located teacher whose position ids follow the student's rule takes the student's
        # (computed once per micro-batch, in "inputs") instead of computing its own.
        self.share_positions = self.teacher is not None and same_position_rule(
            self.engine, self.teacher.model
        )
        self.frame_cache = FrameCache(
            max_bytes=settings.frame_cache_bytes, disk_dir=settings.frame_cache_dir
        )
        # Processed prompts (runtime.processed_prompts), kept between steps; a colocated rank's
        # transformers engine shares them (trainer.hybrid).
        self.prompt_cache = PromptCache()
        self.step_count = 0

    @staticmethod
    def _seed_everything(seed: int) -> None:
        import torch

        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

    def ready(self) -> int:
        """Return the rank once the engine is built (used to wait for start-up)."""
        return self.rank

    # ------------------------------------------------------------------ log-probs
    def _scoring_items(self, prompts: Sequence[PromptSpec], trajectories: Sequence[Trajectory]):
        from runtime.hf_scoring import ScoringItem
        from tvg.video import build_vision_inputs

        items = []
        for traj in trajectories:
            spec = prompts[traj.prompt_index]
            vision = build_vision_inputs(spec.video, spec.video_settings, cache=self.frame_cache)
            items.append(
                ScoringItem(spec.query, spec.prompt_style, vision, traj.completion_ids.tolist())
            )
        return items

    def _chunks(
        self, trajectories: Sequence[Trajectory], num_chunks: int, filler: Trajectory
    ) -> list[tuple[list[Trajectory], float]]:
        """Micro-batches of this rank's share, padded to `num_chunks` with weight-0 filler chunks.

        Under ZeRO-3 every forward gathers parameters collectively, so every rank must run the same
        number of forward/backward passes even when the shares differ in size.
        """
        size = max(1, self.settings.micro_batch_size)
        chunks = [
            (list(trajectories[i : i + size]), 1.0) for i in range(0, len(trajectories), size)
        ]
        if len(chunks) > num_chunks:
            raise ValueError(f"rank {self.rank}: {len(chunks)} micro-batches > {num_chunks}")
        chunks += [([filler], 0.0)] * (num_chunks - len(chunks))
        return chunks

    def log_probs(
        self,
        prompts: Sequence[PromptSpec],
        trajectories: Sequence[Trajectory],
        num_chunks: int,
        filler: Trajectory,
        top_k: int = 0,
    ) -> list[dict[str, np.ndarray]]:
        """Current-policy log-probs of the trajectories' tokens (no gradient), as numpy arrays.

        Every rank must call it with the same `num_chunks` (see `_chunks`).
        """
        import torch

        from runtime.hf_scoring import completion_log_probs

        self.engine.eval()
        out: list[dict[str, np.ndarray]] = []
        with torch.no_grad():
            for chunk, weight in self._chunks(trajectories, num_chunks, filler):
                scores = completion_log_probs(
                    self.engine,
                    self.processor,
                    self._scoring_items(prompts, chunk),
                    temperature=self.settings.temperature,
                    top_k=top_k,
                    cache=self.prompt_cache,
                )
                if weight:
                    out.extend({k: v.float().cpu().numpy() for k, v in s.items()} for s in scores)
        return out

    # ------------------------------------------------------------------ training
    def train_step(
        self,
        prompts: Sequence[PromptSpec],
        trajectories: Sequence[Trajectory],
        objective: str,
        objective_kwargs: dict[str, Any],
        totals: StepTotals,
        num_chunks: int,
        filler: Trajectory,
        time_progress: float = 0.0,
        keep_logprobs: bool = False,
    ) -> StepResult:
        """One optimizer step over this rank's share; every rank must call it once per step.

        `totals` are the step-global counts (over all ranks) that the objective's aggregation
        averages over, so that the update equals the single-process one whatever the number of
        ranks and micro-batches; `num_chunks` / `filler` keep the ranks' passes aligned. A
        non-finite input, loss or gradient is not applied: the step is skipped on every rank, with
        a warning, and reported (`skipped=True`). `time_progress` (the share of the wall-clock
        or FLOPs budget spent before this step) lets a cosine schedule end with the budget.
        `keep_logprobs` returns the log-probs and entropies of the step's own forward
        (`StepResult.rows`): what `log_probs` would give before the update, without its pass.
        """
        import torch

        from runtime.hf_scoring import batch_log_probs, build_hf_batch, with_position_ids
        from runtime.timing import PhaseTimer
        from trainer.objectives.registry import get_objective_spec
        from trainer.step_loss import step_loss

        t0 = time.perf_counter()
        # The step's parts on this rank (StepResult.parts); on a GPU each reading waits for the
        # device, so asynchronous kernels are charged to the part that launched them.
        on_gpu = self.collective_device.type == "cuda"
        timer = PhaseTimer(torch.cuda.synchronize if on_gpu else None)
        needs_rows = get_objective_spec(objective).needs_rows
        lr = self.current_lr()
        self.time_progress = float(time_progress)
        self.engine.train()
        chunks = self._chunks(trajectories, num_chunks, filler)
        total_loss, metrics_sum = 0.0, {}
        input_tokens = 0
        finite = True
        rows: list[dict[str, np.ndarray]] = []
        for index, (chunk, weight) in enumerate(chunks):
            self.engine.set_gradient_accumulation_boundary(index == len(chunks) - 1)
            clean, bad = sanitize_trajectories(chunk)
            if bad and weight:
                warnings.warn(
                    f"step {self.step_count + 1}, rank {self.rank}: non-finite values in "
                    f"{bad}; the update is skipped",
                    stacklevel=1,
                )
                finite = False
            with timer.phase("inputs"):  # frames (cached) and the processor, once per chunk
                batch = build_hf_batch(
                    self.processor, self._scoring_items(prompts, clean), self.prompt_cache
                )
                if self.share_positions:
                    batch = with_position_ids(self.engine, batch)
            with timer.phase("student_forward"):
                scores = batch_log_probs(
                    self.engine,
                    self.processor,
                    batch,
                    temperature=self.settings.temperature,
                    return_rows=needs_rows,
                )
            if self.teacher is not None:  # the teacher's forward here, on the same inputs
                with timer.phase("teacher_forward"):
                    teacher_scores = self.teacher.score(self.processor, batch)
                for score, teacher in zip(scores, teacher_scores, strict=True):
                    score.update(teacher)
            if weight:
                input_tokens += sum(
                    int(score["prompt_tokens"]) + t.num_completion_tokens
                    for score, t in zip(scores, clean, strict=True)
                )
                if keep_logprobs:
                    rows.extend(
                        {
                            k: score[k].detach().float().cpu().numpy()
                            for k in ("logprobs", "entropy")
                        }
                        for score in scores
                    )
            with timer.phase("loss"):
                loss, metrics = step_loss(objective, clean, scores, objective_kwargs, totals)
                # Filler chunks (and a skipped step) still run the same passes, with no effect.
                loss = loss * (weight if finite else 0.0) * self.world_size
                finite = finite and bool(torch.isfinite(loss.detach()))
            # The last chunk's backward also reduces the gradients across the ranks (ZeRO).
            with timer.phase("backward"):
                self.engine.backward(loss)
            total_loss += float(loss.detach()) / self.world_size
            for key, value in metrics.items():
                metrics_sum[key] = metrics_sum.get(key, 0.0) + value * weight
        with timer.phase("optimizer"):  # the finite-check all-reduce, the update, the grad norm
            finite = self._all_ranks_finite(finite)
            grad_norm = float("nan")
            if finite:
                self.engine.step()
                norm = self.engine.get_global_grad_norm()
                grad_norm = float(norm) if norm is not None else float("nan")
                if not math.isfinite(grad_norm):
                    finite = False
            if not finite:
                # Drop this step's gradients on every rank; the weights stay as they were.
                self.engine.zero_grad()
                self.engine.optimizer.zero_grad()
        self.step_count += 1
        return StepResult(
            loss=total_loss,
            num_sequences=len(trajectories),
            num_tokens=sum(t.num_completion_tokens for t in trajectories),
            grad_norm=grad_norm,
            skipped=not finite,
            seconds=time.perf_counter() - t0,
            metrics=metrics_sum,
            lr=lr,
            num_input_tokens=input_tokens,
            parts=timer.reset(),
            rows=rows if keep_logprobs else None,
        )

    def _all_ranks_finite(self, finite: bool) -> bool:
        import torch
        import torch.distributed as dist

        flag = torch.tensor([1.0 if finite else 0.0], device=self.collective_device)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item() == 1.0)

    def current_lr(self) -> float:
        """The learning rate the next step will use."""
        return float(self.optimizer.param_groups[0]["lr"])

    # ------------------------------------------------------------------ weights
    def _named_parameters(self, skip_prefixes: Sequence[str]) -> list[tuple[str, Any]]:
        return [
            (name, param)
            for name, param in self.engine.module.named_parameters()
            if not name.startswith(tuple(skip_prefixes))
        ]

    def weight_plan(
        self, bucket_bytes: int = 256 * 1024 * 1024, skip_prefixes: Sequence[str] = ()
    ) -> list[list[tuple[str, Any]]]:
        """The parameters in buckets of about `bucket_bytes` (full sizes under ZeRO-3), in the
        module's order; the same plan on every rank."""
        params = self._named_parameters(skip_prefixes)
        plan: list[list[tuple[str, Any]]] = []
        bucket: list[tuple[str, Any]] = []
        size = 0
        for name, param in params:
            bucket.append((name, param))
            numel = getattr(param, "ds_numel", None) or param.numel()
            size += int(numel) * param.element_size()
            if size >= bucket_bytes:
                plan.append(bucket)
                bucket, size = [], 0
        if bucket:
            plan.append(bucket)
        return plan

    def iter_weight_buckets(
        self,
        bucket_bytes: int = 256 * 1024 * 1024,
        skip_prefixes: Sequence[str] = (),
        every_rank: bool = False,
        copy: bool = True,
        plan: list[list[tuple[str, Any]]] | None = None,
    ) -> Iterator[list[tuple[str, Any]]]:
        """Full (gathered) weights in buckets of about `bucket_bytes` (`weight_plan`).

        Rank 0 yields tensors; the other ranks yield empty buckets unless `every_rank`. Under
        ZeRO-3 each bucket's parameters are gathered together (a collective: every rank runs this
        generator to the end). copy=False yields the live parameters (detached, no copy): valid
        until the generator moves on (ZeRO-3 releases a gathered bucket then). plan: a
        `weight_plan` the caller already made (else one is made here).
        """
        import contextlib

        import deepspeed

        def tensors(group: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
            if not (every_rank or self.rank == 0):
                return []
            if copy:
                return [(n, p.detach().clone().cpu()) for n, p in group]
            return [(n, p.detach()) for n, p in group]

        for group in plan if plan is not None else self.weight_plan(bucket_bytes, skip_prefixes):
            gather = (
                deepspeed.zero.GatheredParameters([p for _, p in group], modifier_rank=None)
                if self.settings.zero_stage == 3
                else contextlib.nullcontext()
            )
            with gather:
                yield tensors(group)

    def export_weights(
        self, bucket_bytes: int = 256 * 1024 * 1024, skip_prefixes: Sequence[str] = ()
    ) -> list[list[tuple[str, Any]]]:
        """All weight buckets at once (rank 0: tensors; other ranks: empty lists)."""
        return list(self.iter_weight_buckets(bucket_bytes, skip_prefixes))

    # ------------------------------------------------------------------ collective sync
    def open_weight_group(self, world_size: int, backend: str, timeout_s: float) -> dict[str, Any]:
        """(rank 0) Open a new weight-broadcast group of `world_size` members (this rank is
        member 0; any earlier group is left) and return its address for the receivers.

        The group forms inside the next `broadcast_weights` (runtime.collective)."""
        from runtime.collective import open_store

        if self.rank != 0:
            raise RuntimeError(f"learner rank {self.rank}: only rank 0 sends weights")
        self.close_weight_group()
        host = node_ip_address()
        store = open_store(host, world_size, timeout_s)
        self._weight_store = store
        self._weight_address = {
            "host": host,
            "port": int(store.port),
            "world_size": world_size,
            "backend": backend,
            "timeout_s": timeout_s,
            "group_id": uuid.uuid4().hex,  # a port can come back: this names the group
        }
        return dict(self._weight_address)

    def close_weight_group(self) -> None:
        """(rank 0) Leave the weight-broadcast group, if any."""
        group = getattr(self, "_weight_group", None)
        if group is not None:
            group.close()
        self._weight_group = None
        self._weight_store = None
        self._weight_address: dict[str, Any] | None = None

    def broadcast_weights(
        self,
        version: int,
        bucket_bytes: int = 256 * 1024 * 1024,
        skip_prefixes: Sequence[str] = (),
        checksum: bool = True,
    ) -> dict[str, Any] | None:
        """Broadcast the full weights, as update `version`, to the group `open_weight_group`
        opened; every rank must call it (ZeRO-3 gathers each bucket), rank 0 sends.

        Rank 0 returns {"checksum": `state_checksum` of the weights sent ("" unless
        `checksum`), "bytes", "buckets", "seconds"}; the other ranks return None. If sending
        fails, rank 0 still takes part in every gather, leaves the group, then raises.
        """
        from runtime.collective import TensorSpec, UpdatePlan, WeightGroup

        groups = self.weight_plan(bucket_bytes, skip_prefixes)
        if self.rank != 0:
            for _ in self.iter_weight_buckets(bucket_bytes, skip_prefixes, plan=groups):
                pass
            return None
        plan = UpdatePlan.build(
            version,
            [
                [
                    TensorSpec.of(n, p, p.ds_shape if hasattr(p, "ds_shape") else None)
                    for n, p in group
                ]
                for group in groups
            ],
        )
        # The live (gathered) parameters, no host copy: send_update packs and digests each bucket
        # on the weight group's device before the generator moves on and ZeRO-3 releases it.
        gathered = self.iter_weight_buckets(bucket_bytes, skip_prefixes, plan=groups, copy=False)
        try:
            address = getattr(self, "_weight_address", None)
            if address is None:
                raise RuntimeError("learner rank 0: broadcast_weights before open_weight_group")
            if self._weight_group is None:
                self._weight_group = WeightGroup(
                    address["host"],
                    address["port"],
                    0,
                    address["world_size"],
                    address["backend"],
                    address["timeout_s"],
                    name="learner rank 0",
                    store=self._weight_store,
                )
            tensors = ([t for _, t in bucket] for bucket in gathered)
            return self._weight_group.send_update(plan, tensors, checksum)
        except BaseException:
            for _ in gathered:  # the other ranks are gathering: take part to the end
                pass
            self.close_weight_group()
            raise

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, directory: str, client_state: dict[str, Any]) -> None:
        """Save the DeepSpeed state (model, optimizer, scheduler) under `directory` (all ranks)."""
        state = {**client_state, "learner_step": self.step_count, "settings": asdict(self.settings)}
        self.engine.save_checkpoint(directory, tag="state", client_state=state)

    def load_checkpoint(self, directory: str) -> dict[str, Any]:
        """Load a state saved by `save_checkpoint`; return its client state (all ranks)."""
        _, client_state = self.engine.load_checkpoint(directory, tag="state")
        if client_state is None:
            raise FileNotFoundError(f"no learner checkpoint under {directory}")
        self.step_count = int(client_state.get("learner_step", 0))
        return client_state

    def save_hf_model(self, directory: str) -> None:
        """Write the current weights as a Hugging Face model directory (rank 0 writes).

        Every rank must call it (ZeRO-3 gathers the weights).
        """
        state = {}
        for bucket in self.iter_weight_buckets():
            state.update(bucket)
        if self.rank == 0:
            self.engine.module.save_pretrained(directory, state_dict=state)
            self.processor.save_pretrained(directory)
