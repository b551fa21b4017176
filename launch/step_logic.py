"""What the driver does to a sampled batch between rollout and the learner (pure, testable).

- `inject_ground_truth`: TempSamp-R1 adds one ground-truth completion per group.
- `assign_rewards`: every trajectory gets its reward components (IoU, format, ...).
- `assign_advantages`: GRPO / TempSamp-R1 group advantages over the whole step with the
  objective's advantage options, and optional dynamic filtering of groups without signal.
What each objective needs comes from its `ObjectiveSpec` (trainer.objectives.registry).
- `batch_metrics`: reward / IoU statistics (ground-truth rows excluded), the teacher-student
  reverse KL on the sampled tokens, the rollout-vs-learner log-prob mismatch, token counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from rollout.batch import RolloutBatch, Trajectory
from trainer.objectives import filter_zero_variance_groups
from trainer.objectives.grpo import groups_with_signal
from trainer.objectives.registry import get_objective_spec
from trainer.objectives.rewards import ground_truth_completion, grpo_reward, tempsamp_reward
from tvg.parsing import parse_span


def _target_row(
    tokenizer: Any,
    eos_id: int,
    text: str,
    prompt_index: int,
    sample_index: int,
    prompt_ids: Any,
    **fields: Any,
) -> Trajectory:
    """An injected target row (not sampled by the student): `text` tokenised, the end token
    appended, placeholder behaviour log-probs (the loss treats it as on-policy, ratio 1)."""
    ids = [*tokenizer(text, add_special_tokens=False)["input_ids"], eos_id]
    return Trajectory(
        prompt_index=prompt_index,
        sample_index=sample_index,
        prompt_ids=prompt_ids,
        completion_ids=np.asarray(ids, np.int32),
        logprobs=np.zeros(len(ids), np.float32),
        finish_reason="stop",
        text=text,
        is_ground_truth=True,
        **fields,
    )


def inject_ground_truth(
    batch: RolloutBatch, tokenizer: Any, eos_id: int, require_samples: bool = True
) -> None:
    """Append one ground-truth completion per prompt, tokenised from the style's answer template
    (TempSamp-R1's injected row; with `require_samples=False` also for prompts that have no sampled
    row, which is how SFT builds its batch). Behaviour log-probs are placeholders: the loss treats
    the row as on-policy (ratio 1)."""
    from runtime.prompting import prompt_token_ids

    for index, spec in enumerate(batch.prompts):
        if not spec.spans:
            continue
        members = batch.group(index)
        if not members and require_samples:
            continue
        prompt_ids = (
            members[0].prompt_ids
            if members
            else prompt_token_ids(tokenizer, spec.query, spec.prompt_style)
        )
        batch.trajectories.append(
            _target_row(
                tokenizer,
                eos_id,
                ground_truth_completion(spec.spans[0], spec.prompt_style),
                index,
                len(members),
                prompt_ids,
                num_prompt_tokens=members[0].num_prompt_tokens if members else 0,
                weights_version=members[0].weights_version if members else 0,
            )
        )
    batch.trajectories.sort(key=lambda t: (t.prompt_index, t.sample_index))


def inject_answers(
    batch: RolloutBatch, tokenizer: Any, eos_id: int, answers: Sequence[Sequence[str]]
) -> None:
    """Append one target row per answer text of each prompt (sequence-level KD: the teacher's
    answers, re-tokenised with the student's tokenizer). Like the ground-truth rows they were
    not sampled by the student (`is_ground_truth`: an injected target row, kept out of the
    sampled-completion metrics)."""
    from runtime.prompting import prompt_token_ids

    for index, (spec, texts) in enumerate(zip(batch.prompts, answers, strict=True)):
        prompt_ids = prompt_token_ids(tokenizer, spec.query, spec.prompt_style)
        for sample, text in enumerate(texts):
            batch.trajectories.append(
                _target_row(tokenizer, eos_id, text, index, sample, prompt_ids)
            )


def assign_rewards(batch: RolloutBatch, objective: str, reward_cfg: Any) -> None:
    """Fill `Trajectory.rewards` ("iou", "format", ..., "total") for every trajectory, with the
    reward composition the objective's spec names (TempSamp-R1's soft shaping, else GRPO's)."""
    shaping = get_objective_spec(objective).reward
    for traj in batch.trajectories:
        spec = batch.prompts[traj.prompt_index]
        if shaping == "tempsamp":
            parts = tempsamp_reward(
                traj.text,
                spec.spans,
                spec.prompt_style,
                format_weight=reward_cfg.format_weight,
                finish_reason=traj.finish_reason,
                eos_weight=reward_cfg.eos_weight,
            )
        else:
            parts = grpo_reward(
                traj.text,
                spec.spans,
                spec.prompt_style,
                finish_reason=traj.finish_reason,
                duration=spec.duration,
                distance_weighted=reward_cfg.distance_weighted,
                format_weight=reward_cfg.format_weight,
                eos_weight=reward_cfg.eos_weight,
            )
        if not spec.spans:  # an unlabelled prompt (OPD on an unlabelled corpus): no IoU
            parts = {k: v for k, v in parts.items() if k not in ("iou", "accuracy")}
        traj.rewards.update(parts)


def assign_advantages(
    batch: RolloutBatch, objective: str, options: dict[str, Any]
) -> dict[str, float]:
    """Group advantages over the whole step (objectives whose spec has an advantage function),
    with the objective's advantage options; with the step option `filter_zero_variance`, drops
    the groups that carry no signal (no row with a non-zero advantage: a TempSamp-R1 group whose
    sampled rows all scored alike keeps its ground-truth row's signal). Returns the statistics
    the ledger records: groups, groups whose sampled rows all scored alike (and their share),
    dropped groups, and the mean / std / mean absolute value of the advantages."""
    spec = get_objective_spec(objective)
    if spec.advantage is None or not batch.trajectories:
        return {}
    trajs = batch.trajectories
    rewards = torch.tensor([t.rewards["total"] for t in trajs], dtype=torch.float64)
    groups = torch.tensor([t.prompt_index for t in trajs])
    is_gt = torch.tensor([t.is_ground_truth for t in trajs])
    advantages = spec.compute_advantages(rewards, groups, is_gt, options)
    for traj, value in zip(trajs, advantages.tolist(), strict=True):
        traj.rewards["advantage"] = float(value)
    alike = filter_zero_variance_groups(rewards, groups, include=~is_gt)
    signal = groups_with_signal(advantages, groups)
    stats = {
        "groups": float(alike.num_groups),
        "zero_variance_groups": float(alike.num_dropped_groups),
        "zero_variance_share": alike.num_dropped_groups / max(alike.num_groups, 1),
        "dropped_groups": 0.0,
        "advantage_mean": float(advantages.mean()),
        "advantage_std": float(advantages.std(unbiased=False)),
        "advantage_abs": float(advantages.abs().mean()),
    }
    if spec.split_options(options).step.get("filter_zero_variance"):
        keep = signal.keep.tolist()
        batch.trajectories = [t for t, k in zip(trajs, keep, strict=True) if k]
        stats["dropped_groups"] = float(signal.num_dropped_groups)
    return stats


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def batch_metrics(
    batch: RolloutBatch, learner_logprobs: Sequence[np.ndarray] | None = None
) -> dict[str, float]:
    """Per-step statistics of the sampled (not injected) trajectories."""
    sampled = [t for t in batch.trajectories if not t.is_ground_truth]
    ious = [t.rewards["iou"] for t in sampled if "iou" in t.rewards]  # labelled prompts only
    totals = [t.rewards.get("total", 0.0) for t in sampled]
    out: dict[str, float] = {
        "reward_mean": _mean(totals),
        "reward_std": float(np.std(totals)) if totals else float("nan"),
        "iou_mean": _mean(ious),
        "parse_rate": _mean([float(parse_span(t.text) is not None) for t in sampled]),
        "completions": float(len(sampled)),
        "unlabelled_completions": float(sum(1 for t in sampled if "iou" not in t.rewards)),
        "skipped_prompts": float(len(batch.skipped)),
        "tokens_prompt": float(sum(t.num_prompt_tokens for t in sampled)),
        "tokens_generated": float(sum(t.num_completion_tokens for t in sampled)),
        "completion_length_mean": _mean([t.num_completion_tokens for t in sampled]),
        "stopped_rate": _mean([float(t.finish_reason == "stop") for t in sampled]),
    }
    scored = [t for t in sampled if t.teacher_logprobs is not None]
    if scored:
        gaps = np.concatenate([t.logprobs - t.teacher_logprobs for t in scored])
        out["teacher_rkl_sampled"] = float(gaps.mean()) if gaps.size else float("nan")
        out["tokens_teacher_scored"] = float(sum(t.num_completion_tokens for t in scored))
        # What the teacher shipped back for this step (sampled-token log-probs + top-k lists).
        out["teacher_bytes"] = float(
            sum(
                t.teacher_logprobs.nbytes
                + (t.teacher_topk_ids.nbytes if t.teacher_topk_ids is not None else 0)
                + (t.teacher_topk_logprobs.nbytes if t.teacher_topk_logprobs is not None else 0)
                for t in scored
            )
        )
    referenced = [t for t in sampled if t.ref_logprobs is not None]
    if referenced:
        gaps = np.concatenate([t.logprobs - t.ref_logprobs for t in referenced])
        out["ref_kl_sampled"] = float(gaps.mean()) if gaps.size else float("nan")
    if learner_logprobs is not None:
        diffs = [
            np.abs(lp - t.logprobs)
            for t, lp in zip(batch.trajectories, learner_logprobs, strict=True)
            if not t.is_ground_truth and t.num_completion_tokens
        ]
        if diffs:
            flat = np.concatenate(diffs)
            out["logprob_mismatch_mean"] = float(flat.mean())
            out["logprob_mismatch_max"] = float(flat.max())
    return out
