"""TempSamp-R1: GRPO with one ground-truth completion per group (docs/OBJECTIVES.md §3).

Source: Li et al. 2025, "TempSamp-R1: Effective Temporal Sampling with Reinforcement Fine-Tuning
for Video LLMs" (code by its authors, now on EasyR1 / verl).

- Mixed-policy sampling: each group holds G - 1 on-policy completions plus one off-policy
  completion written from the ground truth (`trainer.objectives.rewards.ground_truth_completion`;
  the caller tokenises it). The GT row joins the group's mean / std. Its old log-prob is the
  current policy's (`ground_truth_old_logprobs`): the ratio is exactly 1 and the row's gradient
  is A * grad log pi_theta, with no importance correction toward any behaviour policy.
- Rewards are shaped by the soft reward (`trainer.objectives.rewards.tempsamp_reward`, which calls
  tvg.rewards.tempsamp_soft_reward) before they reach this module.
- Ablation variants: reward down-scaling of the GT row and advantage anchoring.
- Evaluation and logging exclude the GT row (`on_policy_reward_stats`).
- Hybrid chain-of-thought as two phases (`hybrid_cot_phase`).

This module imports only torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trainer.objectives._common import LossOutput, as_bool_mask, check_shape
from trainer.objectives.grpo import (
    group_advantages,
    groups_with_signal,
    grpo_loss,
)

TEMPSAMP_VARIANTS = ("mixed", "downscale", "anchor")


def ground_truth_old_logprobs(
    logprobs: torch.Tensor, old_logprobs: torch.Tensor | None, is_ground_truth: torch.Tensor
) -> torch.Tensor:
    """Old log-probs with every ground-truth row replaced by the current policy's, detached:

        log pi_old(y_t) := stopgrad(log pi_theta(y_t))        for the GT rows

    so rho_t = exp(log pi_theta - stopgrad(log pi_theta)) = 1 exactly while d rho_t / d theta =
    grad log pi_theta: the GT row is trained as an on-policy sample (TempSamp-R1; see
    docs/OBJECTIVES.md §3). `old_logprobs` None means every row is on-policy (all replaced).
    Shapes: logprobs / old_logprobs (B, T), is_ground_truth (B,).
    """
    check_shape("is_ground_truth", is_ground_truth, logprobs.shape[:1])
    current = logprobs.detach()
    if old_logprobs is None:
        return current
    check_shape("old_logprobs", old_logprobs, logprobs.shape)
    return torch.where(is_ground_truth.bool()[:, None], current, old_logprobs)


def downscale_ground_truth_rewards(
    rewards: torch.Tensor,
    is_ground_truth: torch.Tensor,
    cap: float = 0.8,
    max_reward: float | None = None,
) -> torch.Tensor:
    """TempSamp-R1's "reward down-scaling" ablation: cap the GT row's reward at `cap` of the
    maximum (docs/OBJECTIVES.md §3: "cap ~0.8 of the maximum"):

        r_GT' = min( r_GT, cap * R_max )

    The paper does not say which maximum; this project's documented default (`max_reward` None)
    takes R_max = r_GT itself (the GT completion earns the maximum attainable reward by
    construction), i.e. r_GT' = cap * r_GT. Give `max_reward` to use a fixed maximum instead
    (e.g. 1.1 for soft IoU + 0.1 * format). On-policy rows are unchanged. Shapes (N,).
    """
    check_shape("is_ground_truth", is_ground_truth, rewards.shape)
    gt = is_ground_truth.bool()
    r = rewards.detach()
    bound = cap * r if max_reward is None else torch.full_like(r, cap * max_reward)
    return torch.where(gt, torch.minimum(r, bound), r)


def anchored_advantages(
    rewards: torch.Tensor,
    group_ids: torch.Tensor,
    is_ground_truth: torch.Tensor,
    *,
    factor: float = 1.2,
    eps: float = 1e-6,
    scale_by_std: bool = True,
    unbiased_std: bool = True,
) -> torch.Tensor:
    """TempSamp-R1's "advantage anchoring" ablation (docs/OBJECTIVES.md §3):

        A_i  = ( r_i - mean_on(r) ) / ( std_on(r) + eps )     on-policy rows, stats without GT
        A_GT = factor * max_{i on-policy in the group} A_i     (factor = 1.2)

    A group without on-policy rows gets A_GT = 0; a group whose on-policy rewards are all equal
    has max A_i = 0 and so A_GT = 0 too (the formula as described; the variant then gives that
    group no signal). Shapes (N,) -> (N,).
    """
    check_shape("is_ground_truth", is_ground_truth, rewards.shape)
    gt = is_ground_truth.bool()
    adv = group_advantages(
        rewards,
        group_ids,
        eps=eps,
        scale_by_std=scale_by_std,
        unbiased_std=unbiased_std,
        include=~gt,
    )
    _, inverse = torch.unique(group_ids, return_inverse=True)
    num_groups = int(inverse.max()) + 1 if inverse.numel() else 0
    neg = torch.tensor(float("-inf"), dtype=adv.dtype, device=adv.device)
    best = torch.full((num_groups,), float("-inf"), dtype=adv.dtype, device=adv.device)
    best = best.scatter_reduce(0, inverse, torch.where(gt, neg, adv), reduce="amax")
    best = torch.where(torch.isfinite(best), best, torch.zeros_like(best))
    return torch.where(gt, factor * best[inverse], adv)


def tempsamp_advantages(
    rewards: torch.Tensor,
    group_ids: torch.Tensor,
    is_ground_truth: torch.Tensor,
    *,
    variant: str = "mixed",
    downscale_cap: float = 0.8,
    downscale_max_reward: float | None = None,
    anchor_factor: float = 1.2,
    eps: float = 1e-6,
    scale_by_std: bool = True,
    unbiased_std: bool = True,
) -> torch.Tensor:
    """Advantages of a TempSamp-R1 batch (docs/OBJECTIVES.md §3):

    - "mixed" (the paper's method): GRPO's group normalisation with the GT row inside the group's
      mean and std;
    - "downscale": the same after `downscale_ground_truth_rewards`;
    - "anchor": `anchored_advantages`.
    """
    if variant not in TEMPSAMP_VARIANTS:
        raise ValueError(f"unknown TempSamp-R1 variant {variant!r}; known: {TEMPSAMP_VARIANTS}")
    if variant == "anchor":
        return anchored_advantages(
            rewards,
            group_ids,
            is_ground_truth,
            factor=anchor_factor,
            eps=eps,
            scale_by_std=scale_by_std,
            unbiased_std=unbiased_std,
        )
    if variant == "downscale":
        rewards = downscale_ground_truth_rewards(
            rewards, is_ground_truth, downscale_cap, downscale_max_reward
        )
    return group_advantages(
        rewards, group_ids, eps=eps, scale_by_std=scale_by_std, unbiased_std=unbiased_std
    )


def on_policy_reward_stats(
    rewards: torch.Tensor, is_ground_truth: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Reward statistics for logging with the GT rows excluded (TempSamp-R1 logs and evaluates
    the on-policy samples only): "reward_mean", "reward_std" (population), "reward_max",
    "on_policy_rows"; "gt_reward_mean" over the GT rows. Empty selections give 0."""
    check_shape("is_ground_truth", is_ground_truth, rewards.shape)
    gt = is_ground_truth.bool()
    r = rewards.detach()
    on = r[~gt]
    zero = torch.zeros((), dtype=r.dtype, device=r.device)
    return {
        "reward_mean": on.mean() if on.numel() else zero,
        "reward_std": on.std(unbiased=False) if on.numel() else zero,
        "reward_max": on.max() if on.numel() else zero,
        "on_policy_rows": torch.tensor(int(on.numel())),
        "gt_reward_mean": r[gt].mean() if bool(gt.any()) else zero,
    }


def tempsamp_loss(
    logprobs: torch.Tensor,
    rewards: torch.Tensor,
    group_ids: torch.Tensor,
    is_ground_truth: torch.Tensor,
    mask: torch.Tensor,
    old_logprobs: torch.Tensor | None = None,
    *,
    variant: str = "mixed",
    downscale_cap: float = 0.8,
    downscale_max_reward: float | None = None,
    anchor_factor: float = 1.2,
    eps: float = 1e-6,
    scale_by_std: bool = True,
    unbiased_std: bool = True,
    filter_zero_variance: bool = False,
    eps_low: float = 0.2,
    eps_high: float = 0.2,
    aggregation: str = "token_mean",
    constant_normalizer: float | None = None,
    ref_logprobs: torch.Tensor | None = None,
    kl_coef: float = 0.0,
    kl_estimator: str = "k3",
) -> LossOutput:
    """TempSamp-R1's loss: GRPO's clipped loss (`grpo_loss`) on a mixed-policy batch.

        A    = tempsamp_advantages(rewards, groups, is_GT, variant)    (GT row in the group stats)
        old  = ground_truth_old_logprobs(logprobs, old, is_GT)          (ratio 1 on GT rows)
        L    = grpo_loss(logprobs, A, mask, old, ...)

    `rewards` (N,) are already shaped (soft IoU + 0.1 * format: `rewards.tempsamp_reward`). Not
    published by the paper and chosen here: aggregation "token_mean" (EasyR1 / verl's default),
    kl_coef 0 (the paper's figure mentions a KL penalty without a published coefficient), no
    dynamic filtering. Logged reward metrics exclude the GT rows (`on_policy_reward_stats`).
    Source: docs/OBJECTIVES.md §3.
    """
    check_shape("rewards", rewards, mask.shape[:1])
    check_shape("is_ground_truth", is_ground_truth, mask.shape[:1])
    gt = is_ground_truth.bool()
    adv = tempsamp_advantages(
        rewards,
        group_ids,
        gt,
        variant=variant,
        downscale_cap=downscale_cap,
        downscale_max_reward=downscale_max_reward,
        anchor_factor=anchor_factor,
        eps=eps,
        scale_by_std=scale_by_std,
        unbiased_std=unbiased_std,
    )
    bool_mask = as_bool_mask(mask)
    # A group whose sampled rows all scored alike still learns from its ground-truth row.
    filt = groups_with_signal(adv, group_ids)
    if filter_zero_variance:
        bool_mask = bool_mask & filt.keep[:, None]
    old = ground_truth_old_logprobs(logprobs, old_logprobs, gt)
    out = grpo_loss(
        logprobs,
        adv,
        bool_mask,
        old,
        eps_low=eps_low,
        eps_high=eps_high,
        aggregation=aggregation,
        constant_normalizer=constant_normalizer,
        ref_logprobs=ref_logprobs,
        kl_coef=kl_coef,
        kl_estimator=kl_estimator,
    )
    metrics = dict(out.metrics)
    metrics.update(on_policy_reward_stats(rewards, gt))
    metrics["gt_advantage_mean"] = adv[gt].mean() if bool(gt.any()) else adv.new_zeros(())
    metrics["dropped_groups"] = torch.tensor(filt.num_dropped_groups)
    metrics["groups"] = torch.tensor(filt.num_groups)
    return LossOutput(out.loss, metrics)


@dataclass(frozen=True)
class CoTPhase:
    """What one training step uses under TempSamp-R1's hybrid chain-of-thought schedule.

    phase: 1 (answer-only) or 2 (CoT with a format reward).
    prompt_style: the tvg.prompts style name of the prompts (and of the GT completion).
    format_weight: weight of the format reward in the step's reward (0 = off).
    """

    phase: int
    prompt_style: str
    format_weight: float

    @property
    def format_reward_on(self) -> bool:
        """Whether the format reward is part of this step's reward."""
        return self.format_weight != 0.0


def hybrid_cot_phase(
    step: int,
    phase1_steps: int,
    *,
    phase1_style: str = "tempsamp",
    phase2_style: str = "tempsamp_cot",
    phase1_format_weight: float = 0.0,
    phase2_format_weight: float = 0.1,
) -> CoTPhase:
    """TempSamp-R1's hybrid CoT as two phases (docs/OBJECTIVES.md §3): steps [0, phase1_steps)
    train answer-only prompts ("tempsamp" style) without a format reward; later steps train CoT
    prompts ("tempsamp_cot": reasoning in <think></think>, then the answer tag) with the format
    reward at weight 0.1 (the paper's "+ 0.1 * format reward"). The phase lengths and whether phase
    1 already carries the answer-tag format reward were not published: both are parameters, and
    phase 1's default 0 follows the issue's reading "answer-only, then CoT with a format reward".
    """
    if step < 0 or phase1_steps < 0:
        raise ValueError(f"step and phase1_steps must be >= 0, got {step}, {phase1_steps}")
    if step < phase1_steps:
        return CoTPhase(1, phase1_style, phase1_format_weight)
    return CoTPhase(2, phase2_style, phase2_format_weight)
