"""GRPO for temporal grounding: group-normalised advantages, the clipped loss, KL to a reference,
dynamic filtering of zero-variance groups (docs/OBJECTIVES.md §2).

Sources: GRPO (Shao et al. 2024, DeepSeekMath); PPO clipping (Schulman et al. 2017); DAPO
clip-higher, token-level mean and dynamic sampling (Yu et al. 2025); Dr.GRPO (Liu et al. 2025:
no std normalisation, constant length normaliser); KL estimators k1 / k2 / k3 (Schulman 2020).
The TimeLens recipe uses no KL (beta = 0); TRL's default beta is 0.04.

This module imports only torch. Reward composition (IoU, format, end of sequence) lives in
`trainer.objectives.rewards`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from trainer.objectives._common import (
    LossOutput,
    aggregate,
    as_bool_mask,
    check_finite,
    check_shape,
    masked_mean,
    validate_token_tensors,
    zero_pad,
)
from trainer.objectives.opd import k1, k2, k3

KL_ESTIMATORS = {"k1": k1, "k2": k2, "k3": k3}


def _check_rows(rewards: torch.Tensor, group_ids: torch.Tensor) -> None:
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be 1-D (N,), got shape {tuple(rewards.shape)}")
    check_shape("group_ids", group_ids, rewards.shape)
    check_finite("rewards", rewards)


def group_stats(
    rewards: torch.Tensor,
    group_ids: torch.Tensor,
    include: torch.Tensor | None = None,
    unbiased: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-row mean, std and size of its group's rewards (rows with the same group id).

    `include` (N,) bool selects the rows that enter the statistics (all by default); every row
    still gets its group's values. std is the sample std (n - 1 denominator, torch.std's default,
    as TRL and verl compute it) when `unbiased`, else the population std; a group with fewer than
    two included rows (one when not unbiased) has std 0. A group with no included row has mean 0.
    """
    _check_rows(rewards, group_ids)
    rewards = rewards.detach()
    inc = torch.ones_like(rewards, dtype=torch.bool) if include is None else include.bool()
    check_shape("include", inc, rewards.shape)
    _, inverse = torch.unique(group_ids, return_inverse=True)
    num_groups = int(inverse.max()) + 1 if inverse.numel() else 0
    w = inc.to(rewards.dtype)
    count = torch.zeros(num_groups, dtype=rewards.dtype, device=rewards.device)
    count.index_add_(0, inverse, w)
    total = torch.zeros_like(count).index_add_(0, inverse, rewards * w)
    mean = total / count.clamp_min(1.0)
    dev2 = (rewards - mean[inverse]) ** 2 * w
    ss = torch.zeros_like(count).index_add_(0, inverse, dev2)
    denom = count - 1.0 if unbiased else count
    var = torch.where(denom > 0, ss / denom.clamp_min(1.0), torch.zeros_like(ss))
    std = var.clamp_min(0.0).sqrt()
    return mean[inverse], std[inverse], count[inverse]


def group_advantages(
    rewards: torch.Tensor,
    group_ids: torch.Tensor,
    *,
    eps: float = 1e-6,
    scale_by_std: bool = True,
    unbiased_std: bool = True,
    include: torch.Tensor | None = None,
) -> torch.Tensor:
    """GRPO's group-relative advantage of each completion (docs/OBJECTIVES.md §2):

        A_i = ( r_i - mean_g(r) ) / ( std_g(r) + eps )      scale_by_std=True (GRPO, TRL, verl)
        A_i =   r_i - mean_g(r)                              scale_by_std=False (Dr.GRPO)

    with g the group (same prompt) of row i. eps = 1e-6 as verl (TRL uses 1e-4). `include`
    restricts the rows that form the statistics (see `group_stats`). A group whose (included)
    rewards are all equal gets A = 0 exactly for every row. Shapes (N,) -> (N,); no gradient.
    """
    mean, std, _ = group_stats(rewards, group_ids, include, unbiased_std)
    adv = rewards.detach() - mean
    if scale_by_std:
        adv = adv / (std + eps).clamp_min(torch.finfo(adv.dtype).tiny)
    # A group of equal rewards gets exactly 0 (also with eps = 0, where rounding in the mean
    # would otherwise be divided by a rounding-sized std).
    constant = ~filter_zero_variance_groups(rewards, group_ids, 0.0, include).keep
    return torch.where(constant | (std == 0), torch.zeros_like(adv), adv)


class GroupFilter(NamedTuple):
    """Result of `filter_zero_variance_groups`."""

    keep: torch.Tensor  # (N,) bool: rows of groups that carry signal
    num_dropped_groups: int
    num_groups: int


def filter_zero_variance_groups(
    rewards: torch.Tensor,
    group_ids: torch.Tensor,
    tol: float = 0.0,
    include: torch.Tensor | None = None,
) -> GroupFilter:
    """DAPO's dynamic filtering (Yu et al. 2025; docs/OBJECTIVES.md §2): a group whose rewards
    are all equal (max - min <= tol over its `include`d rows) has zero advantages and carries no
    signal; its rows are dropped.

    Returns (keep (N,) bool, number of dropped groups, number of groups). DAPO then samples more
    prompts to refill the batch; this function only reports, the driver decides.
    """
    _check_rows(rewards, group_ids)
    rewards = rewards.detach()
    inc = torch.ones_like(rewards, dtype=torch.bool) if include is None else include.bool()
    _, inverse = torch.unique(group_ids, return_inverse=True)
    num_groups = int(inverse.max()) + 1 if inverse.numel() else 0
    big = torch.tensor(float("inf"), dtype=rewards.dtype, device=rewards.device)
    hi = torch.full((num_groups,), float("-inf"), dtype=rewards.dtype, device=rewards.device)
    lo = torch.full((num_groups,), float("inf"), dtype=rewards.dtype, device=rewards.device)
    hi = hi.scatter_reduce(0, inverse, torch.where(inc, rewards, -big), reduce="amax")
    lo = lo.scatter_reduce(0, inverse, torch.where(inc, rewards, big), reduce="amin")
    # A group with no included row has hi = -inf < lo: treated as zero variance.
    zero_var = ~(hi - lo > tol)
    return GroupFilter(
        keep=~zero_var[inverse],
        num_dropped_groups=int(zero_var.sum()),
        num_groups=num_groups,
    )


# verl's low_var_kl clamps (verl/trainer/ppo/core_algos.py, `kl_penalty`): the log-ratio to
# [-20, 20] before the exponential and the k3 value to [-10, 10]. Without them one token whose
# reference log-prob sits far below the policy's dominates a step (seen: loss 797, grad-norm 3e4).
K3_LOG_RATIO_CLAMP = 20.0
K3_VALUE_CLAMP = 10.0


def groups_with_signal(advantages: torch.Tensor, group_ids: torch.Tensor) -> GroupFilter:
    """Dynamic filtering by advantage: keep the rows of every group in which some row has a
    non-zero advantage (DAPO keeps groups that carry a learning signal). Equal to
    `filter_zero_variance_groups` on the rewards for GRPO; for TempSamp-R1 it keeps a group whose
    sampled rows all failed alike but whose ground-truth row is set apart — that group's only
    signal. Shapes (N,); returns (keep, dropped groups, groups)."""
    _check_rows(advantages, group_ids)
    _, inverse = torch.unique(group_ids, return_inverse=True)
    num_groups = int(inverse.max()) + 1 if inverse.numel() else 0
    size = advantages.detach().abs()
    top = torch.zeros(num_groups, dtype=size.dtype, device=size.device)
    top = top.scatter_reduce(0, inverse, size, reduce="amax", include_self=True)
    silent = top == 0
    return GroupFilter(
        keep=~silent[inverse], num_dropped_groups=int(silent.sum()), num_groups=num_groups
    )


def kl_estimate(
    logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: str = "k3"
) -> torch.Tensor:
    """Per-token estimate of KL(pi_theta || pi_ref) on tokens sampled from pi_theta (Schulman 2020):

        k1 = log pi_theta - log pi_ref
        k2 = 0.5 * (log pi_theta - log pi_ref)^2
        k3 = clamp( rho - 1 - log rho, -10, 10 ),  log rho = clamp(log pi_ref - log pi_theta, +-20)
             (GRPO paper, TRL; the clamps are verl's low_var_kl)

    Elementwise, with gradient through `logprobs` (none where a clamp is active).
    """
    try:
        fn = KL_ESTIMATORS[estimator]
    except KeyError:
        raise ValueError(
            f"unknown KL estimator {estimator!r}; known: {', '.join(KL_ESTIMATORS)}"
        ) from None
    ref = ref_logprobs.detach()
    if estimator != "k3":
        return fn(logprobs, ref)
    log_rho = torch.clamp(ref - logprobs, -K3_LOG_RATIO_CLAMP, K3_LOG_RATIO_CLAMP)
    return torch.clamp(torch.expm1(log_rho) - log_rho, -K3_VALUE_CLAMP, K3_VALUE_CLAMP)


def grpo_loss(
    logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    old_logprobs: torch.Tensor | None = None,
    *,
    eps_low: float = 0.2,
    eps_high: float = 0.2,
    aggregation: str = "token_mean",
    constant_normalizer: float | None = None,
    ref_logprobs: torch.Tensor | None = None,
    ref_mask: torch.Tensor | None = None,
    kl_coef: float = 0.0,
    kl_estimator: str = "k3",
) -> LossOutput:
    """The clipped GRPO / PPO policy loss per token, aggregated (docs/OBJECTIVES.md §2):

        rho_t = exp( log pi_theta(y_t) - log pi_old(y_t) )
        l_t   = -min( rho_t A, clip(rho_t, 1 - eps_low, 1 + eps_high) A ) + kl_coef * KL_t
        L     = aggregate(l_t)

    eps_low = eps_high = 0.2 is PPO / GRPO; eps_high = 0.28 is DAPO's clip-higher. KL_t is
    `kl_estimate(logprobs, ref_logprobs, kl_estimator)` to a frozen reference, added when
    kl_coef > 0 (TimeLens: 0; TRL default 0.04). Aggregation (see `aggregate`): "token_mean"
    (default, DAPO / verl), "seq_mean_token_mean" (the original GRPO), "seq_mean_token_sum",
    "seq_mean_token_sum_norm" (Dr.GRPO's constant normaliser, `constant_normalizer` = L). The
    default aggregation is this project's choice (TimeLens did not publish its setting).

    Args:
        logprobs: (B, T) log pi_theta of the sampled tokens, with gradient.
        advantages: (B,) per completion (broadcast over tokens) or (B, T) per token.
        mask: (B, T) trained completion tokens (zero a filtered row's mask to drop it).
        old_logprobs: (B, T) behaviour log-probs; None = on-policy single update (ratio 1).
        ref_logprobs: (B, T) reference log-probs, needed when kl_coef > 0.
        ref_mask: (B,) bool, the rows the reference scored (the KL term and its metric cover
            only those; TempSamp-R1's injected ground-truth rows are not scored); None = all.

    Metrics: "clip_frac_low" / "clip_frac_high" (tokens where the clipped branch is active on the
    low / high side), "ratio", "kl" (when a reference is given), "tokens".
    """
    if eps_low < 0 or eps_high < 0:
        raise ValueError(f"eps_low and eps_high must be >= 0, got {eps_low}, {eps_high}")
    if old_logprobs is None:
        old_logprobs = logprobs.detach()
    if kl_coef and ref_logprobs is None:
        raise ValueError("kl_coef > 0 needs ref_logprobs")
    bool_mask = validate_token_tensors(
        mask, logprobs=logprobs, old_logprobs=old_logprobs, ref_logprobs=ref_logprobs
    )
    if advantages.dim() == 1:
        check_shape("advantages", advantages, mask.shape[:1])
        check_finite("advantages", advantages, bool_mask.any(dim=-1))
        adv = advantages.detach()[:, None].expand(mask.shape)
    else:
        check_shape("advantages", advantages, mask.shape)
        check_finite("advantages", advantages, bool_mask)
        adv = advantages.detach()
    adv = zero_pad(adv.to(logprobs.dtype), bool_mask)
    log_ratio = zero_pad(logprobs - old_logprobs.detach(), bool_mask)
    ratio = torch.exp(log_ratio)
    clipped = torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high)
    per_token = -torch.minimum(ratio * adv, clipped * adv)
    metrics: dict[str, torch.Tensor] = {}
    if ref_logprobs is not None:
        kl_mask = bool_mask
        if ref_mask is not None:
            check_shape("ref_mask", ref_mask, mask.shape[:1])
            kl_mask = bool_mask & ref_mask.bool()[:, None]
        kl = kl_estimate(zero_pad(logprobs, kl_mask), zero_pad(ref_logprobs, kl_mask), kl_estimator)
        kl = zero_pad(kl, kl_mask)
        metrics["kl"] = masked_mean(kl, kl_mask)
        if kl_coef:
            per_token = per_token + kl_coef * kl
    loss = aggregate(per_token, bool_mask, aggregation, constant_normalizer)
    r = ratio.detach()
    metrics["clip_frac_low"] = masked_mean(((r < 1.0 - eps_low) & (adv < 0)).float(), bool_mask)
    metrics["clip_frac_high"] = masked_mean(((r > 1.0 + eps_high) & (adv > 0)).float(), bool_mask)
    metrics["clip_frac"] = metrics["clip_frac_low"] + metrics["clip_frac_high"]
    metrics["ratio"] = masked_mean(r, bool_mask)
    metrics["ratio_max"] = (
        zero_pad(r, bool_mask).max() if bool(bool_mask.any()) else torch.ones((), dtype=r.dtype)
    )
    metrics["tokens"] = bool_mask.sum()
    return LossOutput(loss, metrics)


def grpo_objective(
    logprobs: torch.Tensor,
    rewards: torch.Tensor,
    group_ids: torch.Tensor,
    mask: torch.Tensor,
    old_logprobs: torch.Tensor | None = None,
    *,
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
    """GRPO end to end from rewards: `group_advantages`, then (optionally) drop zero-variance
    groups by zeroing their rows' mask (`filter_zero_variance_groups`, DAPO; off by default as in
    the published GRPO baselines; the count of such groups is reported either way), then
    `grpo_loss`.

    rewards, group_ids: (N,) with N = B, one scalar reward and one group id per completion.
    Extra metrics: "reward_mean", "reward_std" (over all rows), "advantage_abs",
    "dropped_groups", "groups".
    """
    check_shape("rewards", rewards, mask.shape[:1])
    adv = group_advantages(
        rewards, group_ids, eps=eps, scale_by_std=scale_by_std, unbiased_std=unbiased_std
    )
    bool_mask = as_bool_mask(mask)
    filt = filter_zero_variance_groups(rewards, group_ids)
    if filter_zero_variance:
        bool_mask = bool_mask & filt.keep[:, None]
    out = grpo_loss(
        logprobs,
        adv,
        bool_mask,
        old_logprobs,
        eps_low=eps_low,
        eps_high=eps_high,
        aggregation=aggregation,
        constant_normalizer=constant_normalizer,
        ref_logprobs=ref_logprobs,
        kl_coef=kl_coef,
        kl_estimator=kl_estimator,
    )
    metrics = dict(out.metrics)
    metrics["reward_mean"] = rewards.detach().mean()
    metrics["reward_std"] = rewards.detach().std(unbiased=False)
    metrics["advantage_abs"] = adv.abs().mean()
    metrics["dropped_groups"] = torch.tensor(filt.num_dropped_groups)
    metrics["groups"] = torch.tensor(filt.num_groups)
    return LossOutput(out.loss, metrics)
