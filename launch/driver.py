"""The single-controller training loop (`vopd train`).

One step: sampler -> rollout (vLLM workers) -> [ground-truth rows] -> teacher scores and/or
rewards -> advantages -> learner update (DeepSpeed ranks) -> weight sync into every rollout
engine -> metrics and the compute ledger; every K steps a greedy evaluation on the validation split
and a checkpoint. The objective is a config key, so OPD, GRPO, TempSamp-R1 and SFT run through
the same loop on the same data order, seed and hardware.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from launch.checkpoints import (
    commit_checkpoint,
    latest_checkpoint,
    read_state,
    staging_dir,
)
from launch.config import RunConfig, config_to_yaml
from launch.faults import FaultInjector
from launch.flops import learner_flops, measure_matmul_peak, mfu
from launch.ledger import Ledger
from launch.placement import ACTOR_NAMES, NodeLostError, Placement
from launch.step_logic import (
    assign_advantages,
    assign_rewards,
    batch_metrics,
    inject_answers,
    inject_ground_truth,
)
from launch.tiny_models.build import count_head_parameters, count_parameters
from runtime.timing import PhaseTimer
from trainer.lr_schedule import budget_progress, run_progress
from trainer.objectives.registry import get_objective_spec


def init_ray(config: RunConfig) -> None:
    """Start (or join) Ray: a local instance with the dashboard off unless RAY_ADDRESS is set."""
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"])
        return
    ray.init(
        num_cpus=config.resources.num_cpus or os.cpu_count(),
        include_dashboard=False,
        configure_logging=False,
    )


def progress_postfix(last: dict[str, Any], step: int | None = None) -> dict[str, str]:
    """The progress bar's postfix after a step: the step (given under a wall-clock budget), the
    loss, and the sampled answers' mean IoU and the validation mIoU only where the step has them
    (an SFT step samples nothing, so it has no IoU)."""
    postfix: dict[str, str] = {} if step is None else {"step": str(step)}
    postfix["loss"] = f"{last['loss']:.3f}"
    if np.isfinite(last.get("iou_mean", np.nan)):
        postfix["iou"] = f"{last['iou_mean']:.2f}"
    if "val" in last:
        postfix["val_mIoU"] = f"{last['val'].get('mIoU', float('nan')):.1f}"
    return postfix


@dataclass
class EvalResult:
    """Greedy evaluation of a prompt list."""

    metrics: dict[str, float]
    rows: list[dict[str, Any]] = field(default_factory=list)


def evaluate(rollout: Any, prompts: list[Any], max_tokens: int) -> EvalResult:
    """Greedy-decode every prompt with the rollout group and score it with the task metrics."""
    from rollout.engine_config import SamplingConfig
    from tvg.metrics import grounding_metrics
    from tvg.parsing import parse_span
    from tvg.rewards import max_iou

    batch = rollout.sample(
        prompts, n=1, sampling=SamplingConfig(temperature=0.0, max_tokens=max_tokens)
    )
    answered = {t.prompt_index: t for t in batch.trajectories}
    ious, parsed, rows = [], [], []
    for index, spec in enumerate(prompts):
        traj = answered.get(index)
        text = traj.text if traj is not None else ""
        span = parse_span(text)
        iou = max_iou(span, spec.spans) if span is not None and spec.spans else 0.0
        ious.append(iou)
        parsed.append(span is not None)
        rows.append({"id": spec.sample_id, "answer": text, "iou": iou})
    return EvalResult(grounding_metrics(ious, parsed), rows)


def refuse_earlier_run(out: Path) -> None:
    """Raise a ConfigError when `out` already holds a run's ledger or checkpoints: a fresh run
    there would mix its records and checkpoints with the earlier ones."""
    from launch.config import ConfigError

    found = []
    ledger = out / "metrics.jsonl"
    if ledger.is_file() and ledger.stat().st_size > 0:
        found.append("metrics.jsonl")
    if any((out / "checkpoints").glob("step_*")):
        found.append("checkpoints/")
    if found:
        raise ConfigError(
            f"out_dir {out} already holds a run ({', '.join(found)}): continue it with "
            "--resume, or give another out_dir (or delete that directory) to start afresh"
        )


@dataclass
class _Ahead:
    """The next step's batch under trainer.off_policy_steps=1: its prompts, the sample call in
    flight on the engines, and the batch once collected (before the weight sync)."""

    prompts: list[Any]
    pending: Any  # rollout.group.PendingSample
    batch: Any = None  # rollout.batch.RolloutBatch


class Driver:
    """Owns the actor groups and runs the loop for one RunConfig."""

    def __init__(self, config: RunConfig, resume: bool = False) -> None:
        self.config = config
        # What the objective needs and accepts: read from its spec, nowhere else.
        self.spec = get_objective_spec(config.trainer.objective)
        self.last_lr = float("nan")
        self.out = Path(config.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        if not resume:
            refuse_earlier_run(self.out)
        self.resume = resume
        self.timer = PhaseTimer()
        self._seed(config.trainer.seed)
        init_ray(config)
        self._load_data()
        self.rollout = self.teacher = self.reference = self.learners = None
        self.teacher_answers = self.placement = None
        # pool -> the node id each of its actors last ran on (for naming a node that died)
        self._slot_nodes: dict[str, list[str]] = {}
        try:
            # The placement groups of placement.layout (layout none: none; launch/placement.py).
            self.placement = Placement(config)
            self._start_actors()
        except BaseException:
            self._stop_actors()  # a failed start-up check leaves no actor behind
            raise
        self._write_placement()
        self.ledger = Ledger(self.out)
        self.faults = FaultInjector.from_text(config.fault.kill, self.out, resume)
        self.recoveries = 0  # in-process restarts of the learner group (Driver.recover)
        # The FLOPs model's N: the input embedding is a lookup, not a matmul; the LM head counts
        # apart, only where the learner computes logits (the completion positions).
        self.head_params = count_head_parameters(config.model.student)
        self.num_params = count_parameters(config.model.student, matmul_only=True)
        self.num_params -= self.head_params
        self.peak_flops = measure_matmul_peak(threads=1)
        self.step = 0
        self.train_seconds = 0.0  # wall-clock of the training steps, evaluation excluded
        self.learner_flops_total = 0.0  # the learner's FLOPs so far (trainer.budget_flops)
        self.best_value = float("-inf")
        self.last_sync_checksum = ""
        self.last_sync_bytes = 0.0
        self.last_sync_engine_s = 0.0
        # trainer.off_policy_steps=1: the next step's prompts and its batch, sampling (or
        # sampled) while this step trains; None when strictly on-policy or not sampled ahead.
        self._ahead: _Ahead | None = None
        # Where recover() rewinds to when no checkpoint exists yet (the state before step 1).
        self._start_state = (json.loads(json.dumps(self.sampler.state_dict())), random.getstate())
        if resume:
            self._resume()
        else:
            (self.out / "config.yaml").write_text(config_to_yaml(config))

    @staticmethod
    def _seed(seed: int) -> None:
        import torch

        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

    # ------------------------------------------------------------------ set-up
    def _load_data(self) -> None:
        from curriculum.factory import build_sampler
        from rollout.batch import PromptSpec
        from tvg.formats import load_samples

        cfg = self.config.data
        self.video_settings = cfg.video_settings()

        def prompts_of(path: str, allow_unlabelled: bool = False) -> list[PromptSpec]:
            report = load_samples(
                path,
                cfg.format,
                video_root=cfg.video_root,
                strict=not cfg.lenient,
                allow_unlabelled=allow_unlabelled,
            )
            if report.n_skipped:
                print(f"[data] {path}: skipped {report.n_skipped} bad records: {report.skipped}")
            return [
                PromptSpec.from_sample(s, cfg.prompt_style, self.video_settings)
                for s in report.samples
            ]

        # Training data may be unlabelled where nothing in the run reads a span (OPD: the teacher
        # is the signal); evaluation stays on labelled splits.
        self.train_prompts = prompts_of(cfg.train, allow_unlabelled=True)
        require_labels(self.train_prompts, cfg.train, self.spec, self.config.curriculum.kind)
        self.val_prompts = prompts_of(cfg.val) if cfg.val else []
        if self.config.eval.max_samples:
            self.val_prompts = self.val_prompts[: self.config.eval.max_samples]
        self.sampler = build_sampler(  # curriculum (issue 7): uniform | tvdf | difficulty
            self.config.curriculum,
            self.train_prompts,
            seed=self.config.trainer.seed,
            data_path=cfg.train,
            **curriculum_engines(self.config),
        )

    def _start_actors(self) -> None:
        from transformers import AutoTokenizer

        from rollout.group import RolloutGroup

        cfg = self.config
        self.tokenizer = AutoTokenizer.from_pretrained(cfg.model.student)
        if not cfg.rollout.colocate:  # else: the engines start inside the learner ranks
            # Spawned, not waited for: the engines start while the teacher and the learner ranks
            # do (waited for below, once the learners are up).
            self.rollout = RolloutGroup(
                self._engine_config(),
                self._rollout_group_config(),
                placement=self._placement_options("rollout"),
                wait=False,
            )
        self.teacher = None
        if self.spec.teacher == "answers":  # sequence-level KD: the teacher generates answers
            self.teacher_answers = self._start_teacher_answers()
        elif self.spec.needs_teacher and cfg.teacher.colocate:
            # The teacher runs on the learner ranks (`_start_learners`): checked here first.
            from trainer.colocated_teacher import check_colocated_teacher

            check_colocated_teacher(cfg.model.student, cfg.model.teacher)
        elif self.spec.needs_teacher:
            self.teacher = self._scoring_pool(
                "teacher",
                model=cfg.model.teacher,
                top_k=self.spec.teacher_top_k(len(self.tokenizer), cfg.teacher.top_k),
            )
        self.reference = self._start_reference()
        self._startup_checks()
        self.learners = self._start_learners()
        if cfg.rollout.colocate:
            self.rollout = self._colocated_rollout()
        else:
            self.rollout.wait_ready()

    def _engine_config(self) -> Any:
        """The student's rollout engine settings (separate workers or colocated ranks)."""
        cfg = self.config
        # A colocated engine shares its rank's threads.
        threads = cfg.learner.threads if cfg.rollout.colocate else 1
        return engine_config(cfg, cfg.model.student, threads)

    def _rollout_group_config(self) -> Any:
        """How the driver talks to the rollout engines (timeouts, restarts, weight buckets)."""
        cfg = self.config
        return cfg.rollout.group_config(cfg.resources.rollout_cpus, cfg.resources.rollout_gpus)

    def _colocated_rollout(self) -> Any:
        """A rollout group over the learner ranks' own engines (rollout.colocate)."""
        from rollout.group import RolloutGroup

        return RolloutGroup(
            self._engine_config(), self._rollout_group_config(), actors=self.learners.ranks
        )

    def _start_teacher_answers(self) -> Any:
        """Generation engines on the teacher model (teacher.num_workers of them) and the cache
        of its answers, for sequence-level KD."""
        from launch.teacher_answers import TeacherAnswers
        from rollout.group import RolloutGroup

        cfg = self.config
        engines = curriculum_engines(cfg)
        group = helper_group_config(cfg, cfg.teacher.num_workers)
        options = self.spec.split_options(cfg.trainer.objective_kwargs).targets
        return TeacherAnswers(
            RolloutGroup(engines["teacher_engine"], group, self._placement_options("teacher")),
            self.spec.targets(**options),
            max_tokens=cfg.rollout.max_new_tokens,
            seed=cfg.trainer.seed,
        )

    def _startup_checks(self) -> None:
        """Before any learner starts: the teacher (and the KL reference) must share the
        student's tokenizer, vocabulary and vision-input settings, and fit its context length;
        a `TeacherMismatchError` names what differs."""
        cfg = self.config
        for pool in (self.teacher, self.reference):
            if pool is not None:
                pool.check_student(
                    cfg.model.student,
                    self.video_settings,
                    self.video_settings,
                    longest_sequence=cfg.rollout.max_model_len,
                )

    def _start_learners(self) -> Any:
        """The DeepSpeed learner ranks (fresh actors, initial weights)."""
        from trainer.learner import LearnerSettings
        from trainer.learner_group import LearnerGroup

        cfg = self.config
        learner = cfg.learner
        return LearnerGroup(
            LearnerSettings.from_config(  # the learner section, whole, and the rank's own values
                learner,
                model_dir=cfg.model.student,
                total_steps=cfg.trainer.steps * updates_per_step(cfg),
                freeze_vision=cfg.model.freeze_vision,
                temperature=cfg.rollout.temperature,
                seed=cfg.trainer.seed,
                frame_cache_dir=cfg.frame_cache_path(),
                **self._colocated_teacher_settings(),
            ),
            world_size=learner.num_ranks,
            num_cpus_per_rank=cfg.resources.learner_cpus,
            num_gpus_per_rank=cfg.resources.learner_gpus,
            timeout_s=learner.timeout_s,
            placement=self._placement_options("learner"),
            **self._hybrid_rank_options(),
        )

    def _hybrid_rank_options(self) -> dict[str, Any]:
        """The learner group's rank class and environment in the colocated layout (each rank
        owns a rollout engine: trainer.hybrid), else nothing."""
        if not self.config.rollout.colocate:
            return {}
        from rollout.worker import worker_env
        from trainer.hybrid import HybridRank

        engine = self._engine_config()
        return {"rank_cls": HybridRank, "rank_args": (engine,), "env_vars": worker_env(engine)}

    def _colocated_teacher_settings(self) -> dict[str, Any]:
        """The learner settings of a co-located teacher (`teacher.colocate`), else none."""
        cfg = self.config
        if not (cfg.teacher.colocate and self.spec.needs_teacher):
            return {}
        return {
            "teacher_model_dir": cfg.model.teacher,
            "teacher_signal": self.spec.teacher,
            "teacher_top_k": self.spec.teacher_top_k(len(self.tokenizer), cfg.teacher.top_k),
        }

    def _start_reference(self) -> Any:
        """A scoring pool on the frozen reference (default: the initial student) when the
        objective has a KL penalty (a spec that takes one, objective_kwargs.kl_coef > 0); else
        None. Sized like the teacher's pool (teacher.num_workers)."""
        cfg = self.config
        kl_coef = float(cfg.trainer.objective_kwargs.get("kl_coef", 0.0) or 0.0)
        if not self.spec.accepts_reference or kl_coef <= 0:
            return None
        return self._scoring_pool(
            "reference",
            model=cfg.model.reference or cfg.model.student,
            top_k=0,
            backend=cfg.teacher.backend if cfg.teacher.backend != "remote" else "hf",
        )

    def _scoring_pool(self, pool: str, model: str, top_k: int, backend: str | None = None) -> Any:
        """A TeacherPool scoring sampled tokens: the teacher section's pool (`pool` "teacher"),
        or the KL reference's ("reference", on a local `backend`), sized and placed as the
        teacher's, with the run's sampling temperature, context length, dtype and seed."""
        from teacher_server.pool import TeacherPool

        cfg = self.config
        return TeacherPool(
            cfg.teacher.pool_config(
                model=model,
                top_k=top_k,
                temperature=cfg.rollout.temperature,
                max_model_len=cfg.rollout.max_model_len,
                dtype=cfg.learner.inference_dtype,
                seed=cfg.trainer.seed,
                num_cpus=cfg.resources.teacher_cpus,
                num_gpus=cfg.resources.teacher_gpus,
                backend=backend,
                frame_cache_dir=cfg.frame_cache_path(),
            ),
            placement=self._placement_options(pool),
        )

    def _placement_options(self, pool: str) -> list[dict[str, Any]] | None:
        """Ray actor options of each actor of `pool` (its placement-group bundle), or None."""
        placement = getattr(self, "placement", None)
        return placement.options(pool) if placement is not None else None

    # ------------------------------------------------------------------ resume
    def _resume(self) -> None:
        checkpoint = latest_checkpoint(self.out)
        if checkpoint is None:
            print(f"[resume] no checkpoint under {self.out}: starting from step 0")
            return
        state = read_state(checkpoint)
        self.learners.load_checkpoint(str(checkpoint / "learner"))
        self.sampler.load_state_dict(state["sampler"])
        if self.teacher_answers is not None:
            self.teacher_answers.load_state_dict(state.get("teacher_answers", {}))
        self.step = int(state["step"])
        random.setstate(_tuple_state(state["python_rng"]))
        self._sync_weights(version=self.step)
        kept = self.ledger.truncate_after(self.step)
        self.train_seconds = float(kept[-1].get("train_seconds", 0.0)) if kept else 0.0
        self.learner_flops_total = float(sum(r.get("learner_flops", 0.0) for r in kept))
        print(f"[resume] continuing after step {self.step} from {checkpoint}")

    # ------------------------------------------------------------------ one step
    def _sync_weights(self, version: int) -> None:
        """Push the learner's weights into every rollout engine (through the transport
        rollout.weight_transport names, or in place in the colocated layout); optionally prove
        it by checksum."""
        if self.config.rollout.colocate:
            self._sync_colocated(version)
            return
        verify = self.config.rollout.verify_sync
        expected, results = self.rollout.sync_from(self.learners, version=version, checksum=verify)
        self.last_sync_bytes = float(sum(r.num_bytes for r in results))
        self.last_sync_engine_s = max((r.seconds for r in results), default=0.0)
        if verify:
            found = self.rollout.checksums()
            if any(c != expected for c in found):
                raise RuntimeError(
                    f"weight sync v{version}: rollout checksums {found} != learner {expected}"
                )
            self.last_sync_checksum = expected

    def _sync_colocated(self, version: int) -> None:
        """Colocated layout: every learner rank hands its weights to its own engine in place.
        Verified (rollout.verify_sync) by every engine reporting `version` and one checksum: the
        data-parallel ranks hold the same weights, so their engines must too."""
        results = self.learners.sync_rollout(
            version, self.config.rollout.weight_bucket_mb * 1024 * 1024
        )
        self.rollout.version = version
        self.last_sync_bytes = float(sum(r.num_bytes for r in results))
        self.last_sync_engine_s = max((r.seconds for r in results), default=0.0)
        if self.config.rollout.verify_sync:
            versions = [r.version for r in results]
            checksums = [r.checksum for r in results]
            if any(v != version for v in versions) or len(set(checksums)) != 1:
                raise RuntimeError(
                    f"weight sync v{version}: colocated engines report versions {versions} and "
                    f"checksums {checksums}; expected version {version} and one checksum"
                )
            self.last_sync_checksum = checksums[0]

    def train_step(self, final: bool = False) -> dict[str, Any]:
        """Run one full step and return its ledger record (`final`: the last step of the run,
        e.g. when the wall-clock budget is spent: evaluate and checkpoint after it)."""
        from rollout.batch import RolloutBatch

        cfg = self.config
        objective = cfg.trainer.objective
        options = dict(cfg.trainer.objective_kwargs)
        t0 = time.perf_counter()
        ahead, self._ahead = self._ahead, None
        prompts = ahead.prompts if ahead is not None else self._next_prompts(self.step)
        sampled_version = self.step  # the weights version the batch samples with
        teacher_tokens = 0
        rollout_end = 0.0
        # teacher.stream: each finished rollout shard is scored while the others still sample.
        stream = None
        if self.teacher is not None and cfg.teacher.stream and self.spec.samples:
            from teacher_server.stream import TeacherStream

            stream = TeacherStream(self.teacher, prompts)
        if self.teacher_answers is not None:  # sequence-level KD: the teacher's answers
            with self.timer.phase("teacher"):
                answers = self.teacher_answers.answers_for(prompts, self.step)
            teacher_tokens = self.teacher_answers.generated_tokens
            batch = RolloutBatch(prompts=prompts)
            inject_answers(batch, self.tokenizer, self.tokenizer.eos_token_id, answers)
        elif not self.spec.samples:  # supervised arm: the ground-truth answers, nothing sampled
            batch = RolloutBatch(prompts=prompts)
            inject_ground_truth(
                batch, self.tokenizer, self.tokenizer.eos_token_id, require_samples=False
            )
        elif ahead is not None:  # sampled during the previous step, one version older
            assert ahead.batch is not None
            batch, sampled_version = ahead.batch, ahead.pending.version
        else:
            if stream is not None:  # the teacher phase starts with the first finished shard
                self.faults.before("teacher", self.step + 1, self)
            self.faults.before("rollout", self.step + 1, self)
            with self.timer.phase("rollout"):
                batch = self.rollout.sample(
                    prompts,
                    n=cfg.rollout.n,
                    sampling=self._sampling(self.step),
                    **({"on_part": stream.submit} if stream is not None else {}),
                )
            rollout_end = time.time()
        final = final or self.step + 1 == cfg.trainer.steps
        if self._samples_ahead(final):
            self._ahead = self._submit_ahead()
        if self.spec.ground_truth == "per_group":  # TempSamp-R1's injected row per group
            inject_ground_truth(batch, self.tokenizer, self.tokenizer.eos_token_id)
        teacher_calls: list[Any] = []
        if self.teacher is not None and batch.trajectories:
            if stream is None:
                self.faults.before("teacher", self.step + 1, self)
            with self.timer.phase("teacher"):  # streaming: only the part not hidden by sampling
                if stream is not None:
                    stream.fill(batch)
                    teacher_calls = stream.calls
                else:
                    self.teacher.score_batch(batch)
                    teacher_calls = [self.teacher.last_call]
        sampled_rows = [t for t in batch.trajectories if not t.is_ground_truth]
        if self.reference is not None and sampled_rows:
            with self.timer.phase("reference"):  # sampled rows only: never the injected ones
                view = dataclasses.replace(batch, trajectories=sampled_rows)
                self.reference.score_batch(view, target="reference")
        with self.timer.phase("reward"):
            assign_rewards(batch, objective, cfg.reward)
            filtering = assign_advantages(batch, objective, options)
        learner_lp = None
        entropy = float("nan")
        seq_tokens = sum(
            (t.num_prompt_tokens or len(t.prompt_ids)) + t.num_completion_tokens
            for t in batch.trajectories
        )
        self.faults.before("learner", self.step + 1, self)
        with self.timer.phase("learner"):
            t_learner = time.perf_counter()
            sampled = [t for t in batch.trajectories if not t.is_ground_truth]
            every = cfg.trainer.mismatch_every
            measure = bool(sampled and every and (self.step + 1) % every == 0)
            # Dynamic filtering can drop every group (all rewards equal): no update this step.
            parts = ppo_mini_batches(batch.trajectories, cfg, self.step)
            # One update over the whole batch: its own forward runs on the weights before it,
            # so the mismatch is read from it; else one forward pass of its own first.
            from_update = measure and len(parts) == 1
            rows = None
            if measure and not from_update:
                rows = self.learners.log_probs(
                    batch.prompts, batch.trajectories, sampled_by=batch.sampled_by
                )
            updates = []
            for part in parts:
                updates.append(
                    self.learners.train_step(
                        batch.prompts,
                        part,
                        objective,
                        options,
                        time_progress=self._budget_progress(),
                        sampled_by=batch.sampled_by,
                        keep_logprobs=from_update,
                    )
                )
            if from_update:
                rows = self.learners.rows_in_order(parts[0], updates[0], batch.sampled_by)
            if rows is not None:
                learner_lp = [r["logprobs"] for r in rows]
                entropy = float(np.concatenate([r["entropy"] for r in rows]).mean())
            learner_s = time.perf_counter() - t_learner
        # Each PPO epoch passes over the whole batch once (forward and backward): the tokens the
        # learner ranks report they ran, over every update (vision tokens expanded, also for
        # rows the student did not sample: SFT's and sequence-level KD's targets).
        trained_tokens = sum(r.num_input_tokens for update in updates for r in update)
        head_tokens = sum(t.num_completion_tokens for t in batch.trajectories)
        flops = learner_flops(
            self.num_params,
            trained_tokens,
            seq_tokens if learner_lp and not from_update else 0,
            head_params=self.head_params,
            trained_head_tokens=head_tokens * cfg.trainer.ppo_epochs if updates else 0,
            extra_head_tokens=head_tokens if learner_lp and not from_update else 0,
        )
        self.step += 1
        if self._ahead is not None:  # the engines must finish the next batch before the sync
            with self.timer.phase("rollout"):  # only the part the update did not hide
                self._ahead.batch = self.rollout.collect(self._ahead.pending)
        self.faults.before("sync", self.step, self)
        evaluating = self.step % cfg.eval.every_steps == 0 or final
        # Supervised steps sample nothing: the engines only need the weights to evaluate.
        synced = self.spec.samples or evaluating
        if synced:
            with self.timer.phase("sync"):
                self._sync_weights(version=self.step)
        # Both budgets are known once the update and the sync ran: the step that crosses one is
        # the last, evaluated and checkpointed one, also when the loop's prediction (the
        # previous step's cost) said otherwise. Training seconds so far: this step's span
        # without its non-training phases (curriculum refreshes), as `training_seconds` counts.
        so_far = training_seconds(
            {"time": {**self.timer.seconds, "step": time.perf_counter() - t0}}
        )
        if not final and (
            run_progress(
                self.train_seconds + so_far,
                cfg.trainer.budget_s,
                self.learner_flops_total + flops,
                cfg.trainer.budget_flops,
            )
            >= 1.0
        ):
            final = evaluating = True
            if not synced:  # a supervised step: the engines need the weights to evaluate
                synced = True
                with self.timer.phase("sync"):
                    self._sync_weights(version=self.step)
        record: dict[str, Any] = {"step": self.step, "objective": objective}
        if synced:  # the weight bytes the learner pushed into the engines, summed over engines
            record["sync_bytes"] = self.last_sync_bytes
            # The slowest engine's own update (first bucket to last); the rest of `time.sync`
            # is the learner side, the transport and the driver's round trips.
            record["sync_engine_s"] = self.last_sync_engine_s
        record["sample_ids"] = [p.sample_id for p in prompts]  # what this step trained on
        record.update(batch_metrics(batch, learner_lp))
        record.update(filtering)
        # Sampled before dynamic filtering (`completions` counts the rows kept for the update).
        record["completions_generated"] = float(len(sampled_rows))
        record.update(update_summary(updates))
        if self.teacher_answers is not None:
            record["teacher_generated_tokens"] = float(teacher_tokens)
        if self.teacher is not None:
            record.update(teacher_overlap(teacher_calls, rollout_end if stream else 0.0))
        if updates:
            self.last_lr = updates[0][0].lr  # read back from rank 0: the lr the step used
        record["lr"] = self.last_lr
        record["entropy"] = entropy
        record["learner_flops"] = flops
        record["tokens_input"] = float(trained_tokens)  # what the FLOPs model counted
        record["learner_mfu"] = mfu(flops, learner_s, self.peak_flops, cfg.learner.num_ranks)
        record["samples_seen"] = self.step * cfg.trainer.prompts_per_step
        record["load_avg_1m"] = os.getloadavg()[0]  # how busy the machine was (timings' context)
        record["threads"] = self.thread_plan()  # and what the run itself asks of it
        record["weights_version"] = self.step
        # How many updates older than the learner's weights the trained batch's sampler was.
        record["staleness"] = self.step - 1 - sampled_version
        if "rollout_s" in batch.timings:  # sampling's own span (ahead: mostly hidden by training)
            record["rollout_sample_s"] = batch.timings["rollout_s"]
            record.update(rollout_parts(batch.timings))
        if self.last_sync_checksum:
            record["sync_checksum"] = self.last_sync_checksum
        if evaluating:
            with self.timer.phase("eval"):
                record["val"] = self.evaluate().metrics
            if cfg.checkpoint.keep_best and self._is_best(record["val"]):
                with self.timer.phase("checkpoint"):
                    record["best_model"] = str(self.save_best_model(record["val"]))
        if self.step % cfg.checkpoint.every_steps == 0 or final:
            with self.timer.phase("checkpoint"):
                record["checkpoint"] = str(self.save_checkpoint())
        record["time"] = self.timer.reset()
        record["time"]["step"] = time.perf_counter() - t0
        self.train_seconds += training_seconds(record)
        record["train_seconds"] = self.train_seconds
        self.learner_flops_total += flops
        self.ledger.log(record)
        return record

    def _next_prompts(self, step: int) -> list[Any]:
        """The prompts of the step after `step` completed steps: refresh the curriculum when it
        is due (issue 7: first selection, new round, or every K steps), then draw them."""
        if getattr(self.sampler, "needs_refresh", None) and self.sampler.needs_refresh(step):
            with self.timer.phase("curriculum"):
                self.sampler.refresh(self.rollout, step)
        indices = self.sampler.next_indices(self.config.trainer.prompts_per_step)
        return [self.train_prompts[i] for i in indices]

    def _sampling(self, step: int) -> Any:
        """The sampling settings of the step after `step` completed steps (its own seed)."""
        cfg = self.config
        return cfg.rollout.sampling(seed=cfg.trainer.seed * 100_003 + step)

    def _samples_ahead(self, final: bool) -> bool:
        """Whether this step sends the next step's batch to the engines now
        (trainer.off_policy_steps=1). Not on a step that ends the run or writes a checkpoint:
        a checkpoint then holds nothing drawn past it, so a resumed run samples exactly what the
        uninterrupted one did."""
        cfg = self.config
        if not cfg.trainer.off_policy_steps or final:
            return False
        return (self.step + 1) % cfg.checkpoint.every_steps != 0

    def _submit_ahead(self) -> _Ahead:
        """Draw the next step's prompts and send them to the rollout engines, which sample them
        with the current weights while this step scores and trains."""
        prompts = self._next_prompts(self.step + 1)
        self.faults.before("rollout", self.step + 2, self)
        pending = self.rollout.submit_sample(
            prompts, n=self.config.rollout.n, sampling=self._sampling(self.step + 1)
        )
        return _Ahead(prompts, pending)

    def evaluate(self) -> EvalResult:
        """Greedy evaluation of the current student on the validation split."""
        if not self.val_prompts:
            return EvalResult({})
        return evaluate(self.rollout, self.val_prompts, self.config.eval.max_new_tokens)

    def _is_best(self, val: dict[str, float]) -> bool:
        metric = self.config.checkpoint.best_metric
        value = val.get(metric, float("-inf"))
        if value > self.best_value:
            self.best_value = value
            return True
        return False

    def save_best_model(self, val: dict[str, float]) -> Path:
        """Write the current weights to <out>/best_model (atomically) with their val metrics."""
        target = self.out / "best_model"
        staging = self.out / ".tmp_best_model"
        if staging.exists():
            shutil.rmtree(staging)
        self.learners.save_hf_model(str(staging))
        (staging / "val_metrics.json").write_text(json.dumps({"step": self.step, **val}, indent=2))
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
        return target

    def save_checkpoint(self) -> Path:
        """Write an atomic checkpoint of this step (HF model + learner state + loop state)."""
        staging = staging_dir(self.out, self.step)
        self.learners.save_hf_model(str(staging / "model"))
        self.learners.save_checkpoint(str(staging / "learner"), {"step": self.step})
        state = {
            "step": self.step,
            "sampler": self.sampler.state_dict(),
            "python_rng": _jsonable_state(random.getstate()),
            "objective": self.config.trainer.objective,
        }
        if self.teacher_answers is not None:
            state["teacher_answers"] = self.teacher_answers.state_dict()
        return commit_checkpoint(
            self.out, staging, self.step, state, self.config.checkpoint.keep_last
        )

    # ------------------------------------------------------------------ loop
    def run(self) -> dict[str, Any]:
        """Train until `trainer.steps`; return a summary (also written to summary.json). A dead
        or stuck learner rank is recovered from in process (`recover`). A failure that follows
        the death of a Ray node that ran some of the run's actors is a `NodeLostError` naming the
        node and those actors (the ledger and checkpoints stay as they were: `--resume`)."""
        try:
            return self._train()
        except Exception as exc:
            lost = self.lost_nodes()
            if not lost:
                raise
            raise NodeLostError(
                f"{lost}. The run stopped: {type(exc).__name__}: {exc}. The ledger and "
                f"checkpoints under {self.out} are kept: the same command with --resume continues "
                "from the last checkpoint once the cluster has room for every pool again"
            ) from exc

    def _train(self) -> dict[str, Any]:
        """The training loop of `run`."""
        cfg = self.config
        budgeted = bool(cfg.trainer.budget_s or cfg.trainer.budget_flops)
        bar = self._progress_bar()
        last: dict[str, Any] = {}
        while self.step < cfg.trainer.steps:
            # A wall-clock budget counts training time (evaluation and checkpoints excluded), a
            # FLOPs budget the learner's FLOPs, both across resumes; the step expected to cross
            # one (as long as the last step) is the last one and is evaluated.
            if self._budget_progress() >= 1.0:
                break
            final = budgeted and (
                run_progress(
                    self.train_seconds + (training_seconds(last) if last else 0.0),
                    cfg.trainer.budget_s,
                    self.learner_flops_total + float(last.get("learner_flops", 0.0)),
                    cfg.trainer.budget_flops,
                )
                >= 1.0
            )
            try:
                last = self.train_step(final=final)
            except self._learner_failures() as exc:
                self.recover(exc)  # rewinds self.step to the last checkpoint
                bar.reset()
                bar.update(self._bar_position() - bar.n)
                continue
            bar.update(self._bar_position() - bar.n)
            bar.set_postfix(progress_postfix(last, self.step if budgeted else None))
            if final:
                print(f"[train] {self._budget_text()} reached")
                break
        bar.close()
        summary = {"steps": self.step, "last": last, "out_dir": str(self.out)}
        tmp = self.out / "summary.json.tmp"
        tmp.write_text(json.dumps(summary, indent=2, default=str))
        os.replace(tmp, self.out / "summary.json")
        return summary

    def _budget_progress(self) -> float:
        """The share of the run's wall-clock or FLOPs budget spent (the larger; 0 without)."""
        trainer = self.config.trainer
        return run_progress(
            self.train_seconds, trainer.budget_s, self.learner_flops_total, trainer.budget_flops
        )

    def _budget_text(self) -> str:
        """The run's budget(s) in words, for the log line that ends it."""
        trainer = self.config.trainer
        parts = []
        if trainer.budget_s:
            parts.append(f"wall-clock budget of {trainer.budget_s:.0f} s of training")
        if trainer.budget_flops:
            parts.append(f"learner budget of {trainer.budget_flops:.3g} FLOPs")
        return " / ".join(parts)

    def _progress_bar(self) -> tqdm:
        """Steps done of trainer.steps; with a wall-clock budget, training seconds of it instead,
        with a FLOPs budget only, the learner's TFLOPs of it (the step count then goes in the
        postfix: the step bound is often just a ceiling)."""
        cfg = self.config
        desc = f"train {cfg.trainer.objective}"
        if cfg.trainer.budget_s:
            total, amount = float(cfg.trainer.budget_s), "{n:.0f}/{total:.0f} s of training"
        elif cfg.trainer.budget_flops:
            total = float(cfg.trainer.budget_flops) / 1e12
            amount = "{n:.2f}/{total:.2f} learner TFLOPs"
        else:
            return tqdm(total=cfg.trainer.steps, initial=self.step, desc=desc)
        return tqdm(
            total=total,
            initial=self._bar_position(),
            desc=desc,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| "
            + amount
            + " [{elapsed}<{remaining}{postfix}]",
        )

    def _bar_position(self) -> float:
        """Where the progress bar stands: training seconds under a wall-clock budget, learner
        TFLOPs under a FLOPs budget only, else steps."""
        trainer = self.config.trainer
        if trainer.budget_s:
            return trainer.budget_s * budget_progress(self.train_seconds, trainer.budget_s)
        if trainer.budget_flops:
            spent = budget_progress(self.learner_flops_total, trainer.budget_flops)
            return trainer.budget_flops / 1e12 * spent
        return self.step

    def recover(self, error: Exception) -> None:
        """Recover from a dead or stuck learner rank: a DeepSpeed process group cannot lose a
        member, so the whole learner group is replaced by fresh ranks, which load the last
        checkpoint (or start from the initial weights); the step, sampler, RNG, ledger and the
        rollout engines' weights are rewound with it, as `vopd train --resume` would. At most
        `trainer.max_recoveries` times per run; then a RuntimeError names the last failure."""
        limit = self.config.trainer.max_recoveries
        failed_step = self.step + 1
        while True:
            self.recoveries += 1
            if self.recoveries > limit:
                raise RuntimeError(
                    f"learner failure at step {failed_step} and trainer.max_recoveries={limit} "
                    f"recoveries already spent: {error}"
                ) from error
            print(f"[recover] {error}; restarting the learner group ({self.recoveries}/{limit})")
            self._ahead = None  # drawn past the checkpoint it rewinds to: sampled again
            self.learners.shutdown()
            self.timer.reset()
            try:
                if getattr(self, "placement", None) is not None:
                    # The learner bundles must be (re-)placed on live nodes first; if they cannot
                    # be within placement.timeout_s a PlacementError names the dead node(s).
                    self.placement.wait_ready()
                self.learners = self._start_learners()
                if self.config.rollout.colocate:  # the engines came back with their ranks
                    self.rollout = self._colocated_rollout()
                self._seed(self.config.trainer.seed)  # as a fresh process resuming would
                if latest_checkpoint(self.out) is not None:
                    self._resume()
                else:  # nothing saved yet: back to step 0
                    self.sampler.load_state_dict(self._start_state[0])
                    random.setstate(self._start_state[1])
                    self.step, self.train_seconds, self.learner_flops_total = 0, 0.0, 0.0
                    self._sync_weights(version=0)
                    self.ledger.truncate_after(0)
            except self._learner_failures() as exc:
                error = exc
                continue
            self.faults.log_event(
                {
                    "event": "recovery",
                    "failed_step": failed_step,
                    "resumed_after": self.step,
                    "error": str(error),
                }
            )
            self._write_placement()  # the new ranks may run on other nodes
            return

    def _learner_failures(self) -> tuple[type[Exception], ...]:
        """The errors `recover` handles: a learner rank's, and with rollout.colocate also a
        rollout engine's (it lives in a learner rank and cannot be restarted alone)."""
        from rollout.group import RolloutError
        from trainer.learner_group import LearnerError

        return (LearnerError, RolloutError) if self.config.rollout.colocate else (LearnerError,)

    def shutdown(self) -> None:
        """Stop every actor group, then delete a run-scoped shared frame cache
        (`data.frame_cache_dir` under out_dir: scratch, not an output)."""
        self.ledger.close()
        self._stop_actors()
        path = self.config.frame_cache_path()
        if path is not None and self.config.frame_cache_is_run_scoped():
            import shutil

            shutil.rmtree(path, ignore_errors=True)

    def _stop_actors(self) -> None:
        groups = (self.rollout, self.teacher, self.teacher_answers, self.reference, self.learners)
        for group in groups:
            if group is not None:
                group.shutdown()
        if getattr(self, "placement", None) is not None:
            self.placement.remove()

    # ------------------------------------------------------------------ placement
    def _pool_actors(self) -> dict[str, list[Any]]:
        """The actors of each running pool, by placement pool name, in slot order."""
        pools: dict[str, list[Any]] = {}
        if self.learners is not None:
            pools["learner"] = list(self.learners.ranks)
        if self.rollout is not None:
            pools["rollout"] = list(self.rollout.workers)
        if self.teacher is not None:
            pools["teacher"] = list(self.teacher.workers)
        elif self.teacher_answers is not None:
            pools["teacher"] = list(self.teacher_answers.engines.workers)
        if self.reference is not None:
            pools["reference"] = list(self.reference.workers)
        return pools

    def _update_slot_nodes(self) -> None:
        """Record the node each actor runs (or last ran) on; an actor not yet placed (e.g. a
        restart waiting for its bundle) keeps its slot's previous node."""
        from launch.placement import actor_node

        for pool, actors in self._pool_actors().items():
            known = self._slot_nodes.setdefault(pool, [])
            known += [""] * (len(actors) - len(known))
            for index, actor in enumerate(actors):
                known[index] = actor_node(actor) or known[index]

    def placement_report(self) -> dict[str, Any]:
        """Where the run's actors are: the layout; per pool, each actor's id and node (Ray's
        actor table) and its bundle's node; the learners' rendezvous (rank 0's node, address,
        port); the nodes in use (address, resources, labels). Written to placement.json."""
        from launch.placement import node_table

        self._update_slot_nodes()
        nodes = node_table()
        bundles = self.placement.bundle_nodes() if self.placement is not None else {}
        pools: dict[str, list[dict[str, Any]]] = {}
        for pool, actors in self._pool_actors().items():
            pools[pool] = []
            for index, actor in enumerate(actors):
                node = self._slot_nodes[pool][index]
                row = {
                    "actor": f"{ACTOR_NAMES[pool]} {index}",
                    "actor_id": actor._actor_id.hex(),
                    "node_id": node,
                    "node_ip": nodes.get(node, {}).get("ip", ""),
                }
                if pool in bundles:
                    row["bundle_node_id"] = bundles[pool][index]
                pools[pool].append(row)
        used = {row["node_id"] for rows in pools.values() for row in rows if row["node_id"]}
        return {
            "layout": self.config.placement.layout,
            "rollout": "colocated" if self.config.rollout.colocate else "separate",
            # Per rollout engine: its kind and whether it samples with its learner rank's own
            # module (trainer.hybrid: the colocated transformers engine) or holds a copy.
            "rollout_engines": [
                {"engine": info["engine"], "shares_weights": info.get("shares_weights", False)}
                for info in getattr(self.rollout, "worker_info", None) or []
            ],
            "threads": self.thread_plan(),
            "pools": pools,
            "rendezvous": dict(getattr(self.learners, "rendezvous", {}) or {}),
            "nodes": {node: nodes[node] for node in sorted(used) if node in nodes},
        }

    def thread_plan(self) -> dict[str, Any]:
        """Threads the run's processes use: per pool, its process count and torch / OpenMP
        threads per process (colocated engines share their learner rank's), the total, and the
        machine's cores (a total above the cores oversubscribes them)."""
        cfg = self.config
        plan: dict[str, Any] = {"learner": [cfg.learner.num_ranks, cfg.learner.threads]}
        if self.rollout is not None and not cfg.rollout.colocate:
            plan["rollout"] = [len(self.rollout.workers), self.rollout.engine_config.threads]
        for name in ("teacher", "reference"):
            pool = getattr(self, name)
            if pool is not None:
                plan[name] = [len(pool.workers), pool.config.torch_threads]
        if self.teacher_answers is not None:
            engines = self.teacher_answers.engines
            plan["teacher"] = [len(engines.workers), engines.engine_config.threads]
        plan["total"] = sum(count * threads for count, threads in plan.values())
        plan["cores"] = os.cpu_count() or 0
        return plan

    def _write_placement(self) -> None:
        """Write `placement_report()` to <out>/placement.json (atomically); a Ray state query
        that fails leaves the previous report."""
        try:
            report = self.placement_report()
        except Exception as exc:  # informative only: never stops the run
            print(f"[placement] no report: {type(exc).__name__}: {exc}")
            return
        tmp = self.out / "placement.json.tmp"
        tmp.write_text(json.dumps(report, indent=2, sort_keys=True))
        os.replace(tmp, self.out / "placement.json")

    def lost_nodes(self) -> str:
        """'' unless a Ray node that ran one of the run's actors is dead; then a sentence naming
        each such node and its actors."""
        from launch.placement import lost_nodes, node_table

        try:
            self._update_slot_nodes()
            return lost_nodes(self._slot_nodes, node_table())
        except Exception:  # Ray unreachable: nothing to add to the original error
            return ""


# Curricula that read ground-truth spans (TVDF's teacher-reliability filter, difficulty by IoU).
LABELLED_CURRICULA = ("tvdf", "difficulty")


def require_labels(prompts: list[Any], path: str, spec: Any, curriculum: str) -> None:
    """ConfigError naming the file, the first unlabelled records and what needs labels, when
    training prompts without a ground-truth span meet an objective that trains on labels (SFT,
    GRPO, TempSamp-R1: `spec.needs_labels`) or a curriculum that reads them."""
    from launch.config import ConfigError

    unlabelled = [p.sample_id for p in prompts if not p.spans]
    if not unlabelled:
        return
    needs = []
    if spec.needs_labels:
        needs.append(f"objective {spec.name!r}")
    if curriculum in LABELLED_CURRICULA:
        needs.append(f"curriculum.kind={curriculum}")
    if needs:
        shown = ", ".join(unlabelled[:5]) + (" ..." if len(unlabelled) > 5 else "")
        raise ConfigError(
            f"{path}: {len(unlabelled)} of {len(prompts)} training records have no ground-truth "
            f"span ({shown}), and {' and '.join(needs)} trains on labels; label them, or use "
            "an objective that needs none (OPD: the teacher is the signal)"
        )


def updates_per_step(config: RunConfig) -> int:
    """Optimizer updates per training step: PPO epochs x mini-batches."""
    return config.trainer.ppo_epochs * config.trainer.ppo_mini_batches


def ppo_mini_batches(trajectories: list[Any], config: RunConfig, step: int) -> list[list[Any]]:
    """The step's updates: `trainer.ppo_epochs` passes over the batch, each split into
    `trainer.ppo_mini_batches` parts (fewer if the batch is smaller); the first pass keeps the
    batch's order, later ones shuffle it with a generator seeded by (seed, step, epoch), so a
    resumed run repeats them. An empty batch gives no update."""
    if not trajectories:
        return []
    parts: list[list[Any]] = []
    count = min(config.trainer.ppo_mini_batches, len(trajectories))
    for epoch in range(config.trainer.ppo_epochs):
        order = np.arange(len(trajectories))
        if epoch:
            rng = np.random.default_rng([config.trainer.seed, step, epoch])
            order = rng.permutation(order)
        for chunk in np.array_split(order, count):
            parts.append([trajectories[i] for i in chunk])
    return parts


def update_summary(updates: list[list[Any]]) -> dict[str, Any]:
    """Ledger fields of a step's learner updates (each a list of per-rank StepResults): loss and
    grad-norm averaged over updates, whether any was skipped, tokens per update, and the
    learner's loss metrics (clip fraction, importance ratio, KL to the reference, ...) as the
    step-global value of each update (ranks summed: each rank's value is already weighted by its
    share), averaged over updates, under "learner"; the slowest rank's seconds ("learner_rank_s")
    and parts ("learner_parts"), summed over updates."""
    results = [r for update in updates for r in update]
    out: dict[str, Any] = {
        "updates": len(updates),
        "loss": float(np.mean([sum(r.loss for r in u) for u in updates])) if updates else 0.0,
        "grad_norm": float(np.mean([u[0].grad_norm for u in updates])) if updates else 0.0,
        "skipped_update": not results or any(r.skipped for r in results),
        "tokens_trained": float(sum(r.num_tokens for r in results)) / max(len(updates), 1),
    }
    learner: dict[str, float] = {}
    for update in updates:
        for result in update:
            for key, value in result.metrics.items():
                learner[key] = learner.get(key, 0.0) + float(value) / len(updates)
    if learner:
        out["learner"] = learner
    if updates:
        # Where the learner phase went, summed over the step's updates: the slowest rank's
        # seconds inside its train_step (the phase's rest is the driver's calls and Ray's
        # round trips) and each part's seconds on the slowest rank of each update.
        slowest_ranks = [max(update, key=lambda r: r.seconds) for update in updates]
        out["learner_rank_s"] = float(sum(r.seconds for r in slowest_ranks))
        parts: dict[str, float] = {}
        for slowest in slowest_ranks:
            for key, value in slowest.parts.items():
                parts[key] = parts.get(key, 0.0) + float(value)
        if parts:
            out["learner_parts"] = parts
    return out


def rollout_parts(timings: dict[str, float]) -> dict[str, Any]:
    """Where the rollout's span went, on its slowest worker (by round trip): "prepare" (frames,
    prompt ids), "generate" (the engine's sampling), "engine" (its whole `sample` call) and
    "round_trip" (the driver's call to its answer; the rest is Ray and the gather), as
    "rollout_parts"; nothing when the batch carries no per-worker timings."""
    suffix = "_round_trip_s"
    workers = sorted(k[: -len(suffix)] for k in timings if k.endswith(suffix))
    if not workers:
        return {}
    slowest = max(workers, key=lambda w: timings[f"{w}_round_trip_s"])
    names = {"prepare": "prepare_s", "generate": "generate_s", "engine": "sample_s"}
    parts = {name: float(timings.get(f"{slowest}_{key}", 0.0)) for name, key in names.items()}
    parts["round_trip"] = float(timings[f"{slowest}_round_trip_s"])
    return {"rollout_parts": parts}


def engine_config(config: RunConfig, model: str, threads: int = 1) -> Any:
    """A vLLM (or transformers) generation engine on `model` with the run's engine kind and
    context length (rollout section), seed and dtype (that of the learner's precision)."""
    return config.rollout.engine_config(
        model,
        config.trainer.seed,
        config.learner.inference_dtype,
        threads,
        frame_cache_dir=config.frame_cache_path(),
    )


def helper_group_config(config: RunConfig, num_workers: int) -> Any:
    """A group of `num_workers` generation engines that never takes weights (the teacher's
    answers, the curriculum's predictions), with the rollout workers' resources and timeout."""
    res = config.resources
    return config.rollout.group_config(res.rollout_cpus, res.rollout_gpus, num_workers)


# Not counted in the training clock (`train_seconds`, the wall-clock budget): evaluation and
# checkpoints are measurement choices, and the curriculum's scoring passes are offline work in the
# paper (Video-OPD scores the training set before training); all are still in the ledger's "time".
NOT_TRAINING_PHASES = ("eval", "checkpoint", "curriculum")


def teacher_overlap(calls: list[Any], rollout_end: float) -> dict[str, float]:
    """The step's teacher pool calls in the ledger: teacher_calls, teacher_busy_s (seconds the
    teacher workers spent scoring, summed over workers) and teacher_overlap_s (the part of them
    before the rollout finished at `rollout_end`, epoch seconds; 0: no streaming)."""
    workers = [w for call in calls for w in call.workers]
    hidden = 0.0
    if rollout_end > 0:
        hidden = sum(max(0.0, min(w.finished, rollout_end) - w.started) for w in workers)
    return {
        "teacher_calls": float(len(calls)),
        "teacher_busy_s": sum(w.seconds for w in workers),
        "teacher_overlap_s": min(hidden, sum(w.seconds for w in workers)),
    }


def training_seconds(record: dict[str, Any]) -> float:
    """Wall-clock of a ledger record's step without its evaluation, checkpoint and curriculum
    phases."""
    times = record.get("time", {})
    return float(times.get("step", 0.0)) - sum(
        float(times.get(name, 0.0)) for name in NOT_TRAINING_PHASES
    )


def curriculum_engines(config: RunConfig) -> dict[str, Any]:
    """Where the curriculum's offline predictions run (issue 7): the teacher (and, for `vopd
    curriculum build`, the student) model on temporary rollout workers with the rollout workers'
    resources. In training the student predicts with the run's own rollout engines."""
    return {
        "teacher_engine": engine_config(config, config.model.teacher),
        "student_engine": engine_config(config, config.model.student),
        "group": helper_group_config(config, config.curriculum.num_workers),
    }


def _jsonable_state(state: Any) -> Any:
    if isinstance(state, tuple):
        return [_jsonable_state(s) for s in state]
    return state


def _tuple_state(state: Any) -> Any:
    if isinstance(state, list):
        return tuple(_tuple_state(s) for s in state)
    return state
