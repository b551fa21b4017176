"""The objectives checked against a reference implementation (issue 14, item 3).

verl's formulas are restated below as small plain-torch reference functions (`verl_*`), each
citing the verl function it follows (volcengine/verl, verl/trainer/ppo/core_algos.py as of commit
012be9d9dc, and verl/utils/torch_functional.py); they are re-implementations of the formulas, not
verl's code. TempSamp-R1's reward shaping is checked against the formula of its paper (Li et al.
2025, as docs/OBJECTIVES.md §3 states it). Every comparison runs in
float64 with tolerance TOL = 1e-6, on random tensors with fixed seeds and several group layouts
(groups of 2..8 rows, a zero-variance group, a binary-reward group, padding in the mask), plus
hand-worked vectors whose numbers are derived in the comments.

Differences from verl, asserted explicitly below rather than papered over:

(a) Singleton group: verl sets its mean 0 and std 1, so A = r / (1 + eps) (or r without std
    scaling); this project gives it A = 0 (no group to compare with = no signal).
(b) Dual-clip: verl's vanilla policy loss caps the loss of a negative-advantage token at
    clip_ratio_c * |A| (c = 3 by default); `grpo_loss` has no dual clip. The comparisons use
    c = inf, where verl's loss is the plain clipped PPO / GRPO loss.
(c) Further differences found:
    - verl clamps the policy loss's log-ratio to [-20, 20] before exp (value and gradient); the
      project does not, so a negative-advantage token with log-ratio > 20 costs |A| e^{log-ratio}
      here (with neither dual clip nor clamp the loss is unbounded); below -20 the two differ by
      less than |A| e^-20 = 2e-9 |A|.
    - verl's "seq-mean-token-sum-norm" at commit 012be9d9dc is sum_{b,t} v / T (no division by
      the batch size B); the project's "seq_mean_token_sum_norm" is sum_{b,t} v / (B T) (TRL's
      "dr_grpo"), so that verl's value is B times the project's. Later verl (agg_loss taking
      global_batch_size / dp_size) divides by the batch size too, i.e. equals the project's.
      docs/OBJECTIVES.md and the `aggregate` docstring call the two the same without saying which
      verl: the factor B is version-dependent, not a formula bug here.
    - verl's seq-mean modes average over every row of the batch (a row whose mask is all zero
      counts, and makes "seq-mean-token-mean" NaN, 0/0, at 012be9d9dc; later verl adds 1e-8 to
      that denominator, the row then counts as 0); the project averages over the rows with at
      least one trained token (a documented choice: filtered rows do not dilute the loss).
    - verl's masked_mean divides by (mask.sum() + 1e-8); the project divides by mask.sum()
      (relative difference 1e-8 / tokens, far below TOL).
    - Clip fractions: verl's `pg_clipfrac` (either PPO side clipped) equals the project's
      clip_frac_low + clip_frac_high; verl's `pg_clipfrac_lower` counts the *dual-clip* cap, a
      different quantity from the project's clip_frac_low (the low-side PPO clip).
    - A zero-variance group: the project returns exactly 0; verl returns the mean's rounding
      error divided by (std + eps) (about 1e-11 here).
    - std: both use the sample std (n - 1) by default and eps outside the square root,
      A = (r - mean) / (std + eps); the project's unbiased_std=False (population std) differs.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

import pytest
import torch

from trainer.objectives._common import aggregate
from trainer.objectives.grpo import group_advantages, grpo_loss, grpo_objective, kl_estimate
from trainer.objectives.rewards import ground_truth_completion, tempsamp_reward
from trainer.objectives.tempsamp import tempsamp_advantages, tempsamp_loss
from tvg.rewards import tempsamp_soft_reward

D = torch.float64
TOL = 1e-6
INF = float("inf")

# project aggregation name -> verl loss_agg_mode
VERL_MODES = {
    "token_mean": "token-mean",
    "seq_mean_token_mean": "seq-mean-token-mean",
    "seq_mean_token_sum": "seq-mean-token-sum",
    "seq_mean_token_sum_norm": "seq-mean-token-sum-norm",
}


def t(x) -> torch.Tensor:
    return torch.tensor(x, dtype=D)


def assert_close(actual, expected, tol: float = TOL) -> None:
    a = torch.as_tensor(actual, dtype=D)
    e = torch.as_tensor(expected, dtype=D)
    torch.testing.assert_close(a, e, atol=tol, rtol=0.0)


# --- verl's formulas, restated -------------------------------------------------------------------


def verl_masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    # verl, verl/utils/torch_functional.py, masked_mean: masked sum / (mask count + 1e-8).
    mask = mask.to(values.dtype)
    return torch.where(mask.bool(), values, 0.0).sum() / (mask.sum() + 1e-8)


def verl_grpo_advantage(
    scores: torch.Tensor, index, epsilon: float = 1e-6, norm_adv_by_std_in_grpo: bool = True
) -> torch.Tensor:
    # verl, verl/trainer/ppo/core_algos.py, compute_grpo_outcome_advantage (outcome reward: the
    # score is token_level_rewards.sum(-1); verl then multiplies the (B,) result by the response
    # mask, which is what grpo_loss's broadcast of a (B,) advantage does). Per group of equal
    # index: a singleton gets mean 0, std 1; otherwise mean and torch.std (n - 1). Then
    # (s - mean) / (std + epsilon), or s - mean without std scaling.
    out = scores.clone()
    rows: dict = defaultdict(list)
    for i, g in enumerate(list(index)):
        rows[int(g)].append(i)
    for members in rows.values():
        s = scores[members]
        if len(members) == 1:
            mean, std = torch.zeros((), dtype=D), torch.ones((), dtype=D)
        else:
            mean, std = s.mean(), s.std()
        out[members] = (s - mean) / (std + epsilon) if norm_adv_by_std_in_grpo else s - mean
    return out


def verl_agg_loss(loss_mat: torch.Tensor, loss_mask: torch.Tensor, mode: str) -> torch.Tensor:
    # verl, verl/trainer/ppo/core_algos.py, agg_loss.
    m = loss_mask.to(loss_mat.dtype)
    if mode == "token-mean":
        return verl_masked_mean(loss_mat, m)
    seq_sums = (loss_mat * m).sum(dim=-1)
    if mode == "seq-mean-token-sum":
        return seq_sums.mean()  # mean over *all* rows
    if mode == "seq-mean-token-mean":
        return (seq_sums / m.sum(dim=-1)).mean()  # a row with no token: 0 / 0
    if mode == "seq-mean-token-sum-norm":
        # / T only, not / (B T), at 012be9d9dc (later verl divides by the batch size as well)
        return seq_sums.sum() / loss_mask.shape[-1]
    raise ValueError(mode)


def verl_policy_loss(
    old_log_prob: torch.Tensor,
    log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    cliprange_low: float = 0.2,
    cliprange_high: float = 0.2,
    clip_ratio_c: float = 3.0,
    loss_agg_mode: str = "token-mean",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # verl, verl/trainer/ppo/core_algos.py, compute_policy_loss_vanilla (= compute_policy_loss):
    # log-ratio clamped to [-20, 20]; PPO clip with (low, high); dual clip at c for A < 0.
    # Returns (loss, pg_clipfrac, pg_clipfrac_lower).
    log_ratio = torch.clamp(log_prob - old_log_prob, -20.0, 20.0)
    ratio = torch.exp(log_ratio)
    losses1 = -advantages * ratio
    losses2 = -advantages * torch.clamp(ratio, 1 - cliprange_low, 1 + cliprange_high)
    clipped1 = torch.maximum(losses1, losses2)
    clipfrac = verl_masked_mean(torch.gt(losses2, losses1).to(D), response_mask)
    losses3 = -advantages * clip_ratio_c
    clipped2 = torch.minimum(losses3, clipped1)
    clipfrac_lower = verl_masked_mean(
        (torch.gt(clipped1, losses3) & (advantages < 0)).to(D), response_mask
    )
    pg_losses = torch.where(advantages < 0, clipped2, clipped1)
    return verl_agg_loss(pg_losses, response_mask, loss_agg_mode), clipfrac, clipfrac_lower


def verl_kl_penalty(logprob: torch.Tensor, ref_logprob: torch.Tensor, kind: str) -> torch.Tensor:
    # verl, verl/trainer/ppo/core_algos.py, kl_penalty ("k1" = "kl", "k2" = "mse",
    # "k3" = "low_var_kl" with its two clamps).
    if kind == "k1":
        return logprob - ref_logprob
    if kind == "k2":
        return 0.5 * (logprob - ref_logprob).square()
    if kind == "k3":
        kl = torch.clamp(ref_logprob - logprob, min=-20, max=20)
        return torch.clamp(torch.exp(kl) - kl - 1, min=-10, max=10)
    raise ValueError(kind)


# --- random batches ------------------------------------------------------------------------------


def grouped_rewards(seed: int, sizes=(2, 3, 4, 5, 6, 7, 8)) -> tuple[torch.Tensor, torch.Tensor]:
    """Rewards and group ids, rows shuffled: uniform groups of `sizes` rows, a zero-variance
    group (4 x 0.1), a binary-reward group of 6. Group ids are arbitrary non-contiguous ints."""
    g = torch.Generator().manual_seed(seed)
    parts, ids = [], []
    for k, n in enumerate(sizes):
        parts.append(torch.rand(n, generator=g, dtype=D))
        ids += [k] * n
    parts.append(torch.full((4,), 0.1, dtype=D))
    ids += [len(sizes)] * 4
    parts.append(t([0.0, 1.0, 0.0, 0.0, 1.0, 0.0]))
    ids += [len(sizes) + 1] * 6
    rewards = torch.cat(parts)
    perm = torch.randperm(rewards.numel(), generator=g)
    return rewards[perm], torch.tensor(ids)[perm] * 7 + 3


def token_batch(seed: int, b: int, tlen: int = 9, spread: float = 0.3):
    """(logprobs, old_logprobs, ref_logprobs, mask) with right padding (every row keeps >= 1
    token); log-ratios ~ N(0, spread) so both clip sides are hit; padding values are finite junk."""
    g = torch.Generator().manual_seed(1000 + seed)
    logprobs = -torch.rand(b, tlen, generator=g, dtype=D) * 3.0
    old = logprobs + spread * torch.randn(b, tlen, generator=g, dtype=D)
    ref = logprobs + 0.5 * torch.randn(b, tlen, generator=g, dtype=D)
    lengths = torch.randint(1, tlen + 1, (b,), generator=g)
    mask = torch.arange(tlen)[None, :] < lengths[:, None]
    return logprobs, old, ref, mask


# --- GRPO group advantage ------------------------------------------------------------------------


def test_group_advantage_hand_vector() -> None:
    # Group 5: r = [1, 2, 3, 6], mean 3, deviations [-2, -1, 0, 3], sum of squares 14,
    #   sample std = sqrt(14 / 3) = 2.160247 -> A = [-0.925820, -0.462910, 0, 1.388730];
    #   eps = 0.1 enters as std + eps = 2.260247 -> A = [-0.884859, -0.442430, 0, 1.327289]
    #   (not sqrt(var + eps): -2 / sqrt(14/3 + 0.1) = -0.916057);
    #   population std sqrt(14 / 4) = 1.870829 -> A = [-1.069045, -0.534522, 0, 1.603567];
    #   no std scaling -> A = [-2, -1, 0, 3].
    # Group 9: r = [0, 1, 1, 0], mean 0.5, deviations +-0.5, sample std sqrt(1 / 3) = 0.577350
    #   -> A = +-0.5 / 0.577350 = +-0.866025.
    r = t([1.0, 0.0, 2.0, 1.0, 3.0, 1.0, 6.0, 0.0])
    ids = torch.tensor([5, 9, 5, 9, 5, 9, 5, 9])
    s = 0.866025
    expected = {
        (0.0, True, True): [-0.925820, -s, -0.462910, s, 0.0, s, 1.388730, -s],
        (0.1, True, True): [-0.884859, None, -0.442430, None, 0.0, None, 1.327289, None],
        (0.0, True, False): [-1.069045, None, -0.534522, None, 0.0, None, 1.603567, None],
        (0.0, False, True): [-2.0, -0.5, -1.0, 0.5, 0.0, 0.5, 3.0, -0.5],
    }
    for (eps, scale, unbiased), want in expected.items():
        adv = group_advantages(r, ids, eps=eps, scale_by_std=scale, unbiased_std=unbiased)
        sel = [i for i, w in enumerate(want) if w is not None]
        assert_close(adv[sel], t([want[i] for i in sel]))
        if unbiased:  # verl has no population-std option
            ref = verl_grpo_advantage(r, ids, epsilon=eps, norm_adv_by_std_in_grpo=scale)
            assert_close(ref[sel], t([want[i] for i in sel]))
    # eps outside the square root (both implementations):
    assert abs(-2 / (math.sqrt(14 / 3) + 0.1) - (-0.884859)) < TOL
    assert abs(-2 / math.sqrt(14 / 3 + 0.1) - (-0.884859)) > 1e-2


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("scale_by_std", [True, False])
@pytest.mark.parametrize("eps", [1e-6, 1e-2])
def test_group_advantages_match_verl(seed: int, scale_by_std: bool, eps: float) -> None:
    rewards, ids = grouped_rewards(seed)
    ours = group_advantages(rewards, ids, eps=eps, scale_by_std=scale_by_std)
    ref = verl_grpo_advantage(rewards, ids, epsilon=eps, norm_adv_by_std_in_grpo=scale_by_std)
    assert_close(ours, ref)


def test_zero_variance_group_is_exactly_zero_here() -> None:
    # (c) r = [0.1, 0.1, 0.1]: the float64 mean is 0.1 + 1.4e-17, the std 1.7e-17. verl divides
    # that rounding by (std + 1e-6) -> about 1.4e-11; the project returns exactly 0.
    r, ids = t([0.1, 0.1, 0.1]), torch.tensor([0, 0, 0])
    ours = group_advantages(r, ids)
    ref = verl_grpo_advantage(r, ids)
    assert bool((ours == 0).all())
    assert float(ref.abs().max()) < 1e-9
    assert_close(ours, ref)


@pytest.mark.parametrize("scale_by_std", [True, False])
def test_singleton_group_difference(scale_by_std: bool) -> None:
    # (a) verl: a group of one row has mean 0 and std 1, so A = r / (1 + eps) with std scaling,
    # A = r without; the project gives such a row A = 0. Every other group agrees.
    r = t([0.7, 0.2, 0.5, 0.8])
    ids = torch.tensor([1, 2, 2, 2])
    eps = 1e-6
    ours = group_advantages(r, ids, eps=eps, scale_by_std=scale_by_std)
    ref = verl_grpo_advantage(r, ids, epsilon=eps, norm_adv_by_std_in_grpo=scale_by_std)
    assert ours[0].item() == 0.0
    assert ref[0].item() == pytest.approx(0.7 / (1 + eps) if scale_by_std else 0.7, abs=1e-12)
    assert_close(ours[1:], ref[1:])


def test_population_std_differs_from_verl() -> None:
    # (c) verl uses torch.std (n - 1); the project's default does too. With unbiased_std=False
    # a group of n rows is scaled up by sqrt(n / (n - 1)) (eps = 0 here).
    rewards, ids = grouped_rewards(3)
    keep = rewards != 0.1  # leave out the zero-variance group (0 / 0 in verl with eps = 0)
    rewards, ids = rewards[keep], ids[keep]
    ref = verl_grpo_advantage(rewards, ids, epsilon=0.0)
    ours_pop = group_advantages(rewards, ids, eps=0.0, unbiased_std=False)
    _, inverse, counts = torch.unique(ids, return_inverse=True, return_counts=True)
    n = counts[inverse].to(D)
    assert_close(ours_pop, ref * torch.sqrt(n / (n - 1)))
    assert float((ours_pop - ref).abs().max()) > 0.1


# --- aggregation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("mode", list(VERL_MODES))
def test_aggregate_matches_verl_agg_loss(seed: int, mode: str) -> None:
    b = 3 + seed * 2
    logprobs, _, _, mask = token_batch(seed, b)
    values = (logprobs * 1.7 + 0.3).requires_grad_(True)
    ref_values = values.detach().clone().requires_grad_(True)
    ours = aggregate(values, mask, mode)
    ref = verl_agg_loss(ref_values, mask, VERL_MODES[mode])
    if mode == "seq_mean_token_sum_norm":
        # (c) verl 012be9d9dc divides the token sum by T only; the project by B * T (TRL's
        # dr_grpo, and later verl).
        ref = ref / b
    assert_close(ours, ref)
    ours.backward()
    ref.backward()
    assert_close(values.grad, ref_values.grad)


def test_seq_mean_over_rows_with_tokens_differs_from_verl() -> None:
    # (c) One row of three has no trained token. Values v = [[1, 2], [3, 5], [7, 11]],
    # mask [[1, 1], [0, 0], [1, 0]]:
    #   token mean: (1 + 2 + 7) / 3 = 3.333333 (both);
    #   seq-mean-token-sum: project (3 + 7) / 2 = 5, verl (3 + 0 + 7) / 3 = 3.333333;
    #   seq-mean-token-mean: project (1.5 + 7) / 2 = 4.25, verl NaN (0 / 0 on the empty row).
    v = t([[1.0, 2.0], [3.0, 5.0], [7.0, 11.0]])
    m = torch.tensor([[True, True], [False, False], [True, False]])
    assert_close(aggregate(v, m, "token_mean"), 10 / 3)
    assert_close(verl_agg_loss(v, m, "token-mean"), 10 / 3)
    assert_close(aggregate(v, m, "seq_mean_token_sum"), 5.0)
    assert_close(verl_agg_loss(v, m, "seq-mean-token-sum"), 10 / 3)
    assert_close(aggregate(v, m, "seq_mean_token_mean"), 4.25)
    assert math.isnan(verl_agg_loss(v, m, "seq-mean-token-mean").item())


# --- clipped policy loss -------------------------------------------------------------------------

# Hand vector: 2 completions, T = 3, mask [[1, 1, 0], [1, 1, 1]], eps_low = eps_high = 0.2,
# A = [+1, -2], log pi_theta = -1 everywhere, ratios rho = [[1.5, 0.9, pad], [0.5, 0.7, 4.0]].
#   l = -min(rho A, clip(rho, 0.8, 1.2) A):
#   row 0 (A = 1):  rho 1.5 -> -min(1.5, 1.2) = -1.2 (clipped high); rho 0.9 -> -0.9
#   row 1 (A = -2): rho 0.5 -> -min(-1.0, -1.6) = 1.6 (clipped low); rho 0.7 -> 1.6 (clipped low);
#                   rho 4.0 -> -min(-8.0, -2.4) = 8.0 (unclipped: rho A is the smaller)
#   per-token sum -2.1 + 11.2 = 9.1 over 5 tokens:
#   token_mean 9.1 / 5 = 1.82; seq_mean_token_mean (-2.1/2 + 11.2/3) / 2 = 1.341667;
#   seq_mean_token_sum 9.1 / 2 = 4.55; seq_mean_token_sum_norm 9.1 / (2 * 3) = 1.516667
#   (verl's seq-mean-token-sum-norm: 9.1 / 3 = 3.033333).
#   verl with its default dual clip c = 3 caps the last token at 3 * |A| = 6: token mean
#   (-2.1 + 1.6 + 1.6 + 6) / 5 = 1.42.
#   Gradient of token_mean w.r.t. log pi_theta: -A rho / 5 on unclipped tokens, 0 on clipped:
#   [[0, -0.18, 0], [0, 0, 2 * 4 / 5 = 1.6]] (verl c = 3: the last one is 0).
#   Clip fractions: project high 1/5 = 0.2, low 2/5 = 0.4; verl pg_clipfrac 3/5 = 0.6 and
#   pg_clipfrac_lower (the dual-clip cap) 1/5 = 0.2.
HAND_RHO = [[1.5, 0.9, 1.0], [0.5, 0.7, 4.0]]
HAND_MASK = torch.tensor([[True, True, False], [True, True, True]])
HAND_ADV = t([1.0, -2.0])
HAND_LOSS = {
    "token_mean": 1.82,
    "seq_mean_token_mean": (-2.1 / 2 + 11.2 / 3) / 2,
    "seq_mean_token_sum": 4.55,
    "seq_mean_token_sum_norm": 9.1 / 6,
}


def _hand_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    logprobs = torch.full((2, 3), -1.0, dtype=D, requires_grad=True)
    old = -1.0 - torch.log(t(HAND_RHO))
    return logprobs, old


@pytest.mark.parametrize("mode", list(VERL_MODES))
def test_policy_loss_hand_vector(mode: str) -> None:
    logprobs, old = _hand_inputs()
    out = grpo_loss(logprobs, HAND_ADV, HAND_MASK, old, aggregation=mode)
    assert_close(out.loss, HAND_LOSS[mode])
    vlp = logprobs.detach().clone().requires_grad_(True)
    adv_tok = HAND_ADV[:, None] * HAND_MASK
    ref, clipfrac, clipfrac_lower = verl_policy_loss(
        old, vlp, adv_tok, HAND_MASK, clip_ratio_c=INF, loss_agg_mode=VERL_MODES[mode]
    )
    expected_ref = HAND_LOSS[mode] * (2 if mode == "seq_mean_token_sum_norm" else 1)
    assert_close(ref, expected_ref)
    if mode == "token_mean":
        out.loss.backward()
        ref.backward()
        assert_close(logprobs.grad, t([[0.0, -0.18, 0.0], [0.0, 0.0, 1.6]]))
        assert_close(vlp.grad, logprobs.grad)
        assert_close(out.metrics["clip_frac_high"], 0.2)
        assert_close(out.metrics["clip_frac_low"], 0.4)
        assert_close(clipfrac, 0.6)
        # with c = inf no token is dual-clipped
        assert_close(clipfrac_lower, 0.0)


def test_dual_clip_difference_hand_vector() -> None:
    # (b) verl's default dual clip (c = 3) caps the negative-advantage token at rho = 4:
    # 1.42 instead of 1.82, and that token's gradient is 0 instead of 1.6.
    logprobs, old = _hand_inputs()
    out = grpo_loss(logprobs, HAND_ADV, HAND_MASK, old)
    vlp = logprobs.detach().clone().requires_grad_(True)
    ref, clipfrac, clipfrac_lower = verl_policy_loss(
        old, vlp, HAND_ADV[:, None] * HAND_MASK, HAND_MASK, clip_ratio_c=3.0
    )
    assert_close(out.loss, 1.82)
    assert_close(ref, 1.42)
    ref.backward()
    assert_close(vlp.grad, t([[0.0, -0.18, 0.0], [0.0, 0.0, 0.0]]))
    # (c) clip-fraction definitions: verl's pg_clipfrac = project low + high; verl's
    # pg_clipfrac_lower is the dual-clip share (0.2), not the project's clip_frac_low (0.4).
    low, high = out.metrics["clip_frac_low"].item(), out.metrics["clip_frac_high"].item()
    assert_close(low + high, clipfrac)
    assert_close(clipfrac_lower, 0.2)
    assert abs(low - clipfrac_lower.item()) > 0.1


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("mode", list(VERL_MODES))
@pytest.mark.parametrize("eps_high", [0.2, 0.28])
@pytest.mark.parametrize("per_token_adv", [False, True])
def test_policy_loss_matches_verl_without_dual_clip(
    seed: int, mode: str, eps_high: float, per_token_adv: bool
) -> None:
    rewards, ids = grouped_rewards(seed)
    b = rewards.numel()
    logprobs, old, _, mask = token_batch(seed, b)
    adv = verl_grpo_advantage(rewards, ids)
    if per_token_adv:
        g = torch.Generator().manual_seed(seed)
        adv = adv[:, None] + 0.3 * torch.randn(b, mask.shape[1], generator=g, dtype=D)
        adv_tok = adv * mask
    else:
        adv_tok = adv[:, None] * mask
    lp = logprobs.clone().requires_grad_(True)
    out = grpo_loss(lp, adv, mask, old, eps_low=0.2, eps_high=eps_high, aggregation=mode)
    vlp = logprobs.clone().requires_grad_(True)
    ref, clipfrac, _ = verl_policy_loss(
        old, vlp, adv_tok, mask, 0.2, eps_high, clip_ratio_c=INF, loss_agg_mode=VERL_MODES[mode]
    )
    if mode == "seq_mean_token_sum_norm":
        ref = ref / b  # (c) verl: / T, project: / (B T)
    assert_close(out.loss, ref)
    out.loss.backward()
    ref.backward()
    assert_close(lp.grad, vlp.grad)
    frac = out.metrics["clip_frac_low"].item() + out.metrics["clip_frac_high"].item()
    assert_close(frac, clipfrac)
    assert 0.0 < clipfrac.item() < 1.0  # both sides were exercised somewhere


@pytest.mark.parametrize("seed", range(3))
def test_grpo_objective_end_to_end_matches_verl(seed: int) -> None:
    # rewards -> group advantage -> clipped loss (token-mean), no singleton group.
    rewards, ids = grouped_rewards(seed)
    logprobs, old, _, mask = token_batch(seed, rewards.numel())
    lp = logprobs.clone().requires_grad_(True)
    out = grpo_objective(lp, rewards, ids, mask, old)
    vlp = logprobs.clone().requires_grad_(True)
    adv = verl_grpo_advantage(rewards, ids)
    ref, _, _ = verl_policy_loss(old, vlp, adv[:, None] * mask, mask, clip_ratio_c=INF)
    assert_close(out.loss, ref)
    out.loss.backward()
    ref.backward()
    assert_close(lp.grad, vlp.grad)


def test_dual_clip_and_log_ratio_clamp_per_token() -> None:
    # Single tokens (B = 1, T = 1, so every aggregation is the token's own loss), eps = 0.2.
    #   A = -1, rho = 2.5:  both 2.5 (dual clip at 3 inactive).
    #   A = -1, rho = 10:   project 10; verl c = 3 -> 3 (b); verl c = inf -> 10.
    #   A = -1, log-ratio 25: project e^25 = 7.2e10; verl c = inf -> e^20 = 4.85e8, gradient 0
    #     (its log-ratio clamp, (c)); verl c = 3 -> 3.
    #   A = +1, log-ratio 25: both -1.2 (clipped high), gradient 0.
    #   A = +1, log-ratio -25: project -e^-25, verl -e^-20: equal within 2.1e-9.
    cases = [(-1.0, math.log(2.5)), (-1.0, math.log(10.0)), (-1.0, 25.0), (1.0, 25.0), (1.0, -25.0)]
    mask = torch.ones(1, 1, dtype=torch.bool)
    for a, log_ratio in cases:
        adv = t([a])
        lp = torch.zeros(1, 1, dtype=D, requires_grad=True)
        old = t([[-log_ratio]])
        ours = grpo_loss(lp, adv, mask, old).loss
        ours.backward()
        vlp = torch.zeros(1, 1, dtype=D, requires_grad=True)
        ref_inf, _, _ = verl_policy_loss(old, vlp, adv[:, None], mask, clip_ratio_c=INF)
        ref_inf.backward()
        ref_c3, _, _ = verl_policy_loss(old, torch.zeros(1, 1, dtype=D), adv[:, None], mask)
        rho = math.exp(log_ratio)
        want = -min(rho * a, min(max(rho, 0.8), 1.2) * a)
        assert ours.item() == pytest.approx(want, rel=1e-12)
        if a < 0 and log_ratio > 20:
            assert ref_inf.item() == pytest.approx(math.exp(20.0), rel=1e-7)  # / (1 + 1e-8)
            assert vlp.grad.item() == 0.0 and lp.grad.item() == pytest.approx(rho, rel=1e-12)
        else:
            assert_close(ours, ref_inf)
            assert_close(lp.grad, vlp.grad)
        if a < 0 and rho > 3.0:
            assert ref_c3.item() == pytest.approx(3.0, abs=TOL)  # 3 / (1 + 1e-8)
            assert ours.item() > 3.0
        else:
            assert_close(ours, ref_c3)


# --- KL estimators -------------------------------------------------------------------------------

# Hand vector, x = log pi_ref - log pi_theta (k3's log rho), d/d log pi_theta of each estimator:
#   k1 = -x (grad 1); k2 = x^2 / 2 (grad -x); k3 = e^x - 1 - x (grad 1 - e^x) inside the clamps.
#   x = ln 2: k1 -0.693147, k2 0.240227, k3 2 - 1 - ln 2 = 0.306853, k3 grad -1
#   x = -5:   k1 5, k2 12.5, k3 e^-5 + 4 = 4.006738, k3 grad 1 - e^-5 = 0.993262
#   x = 2:    k1 -2, k2 2, k3 e^2 - 3 = 4.389056, k3 grad 1 - e^2 = -6.389056
#   x = 3:    k3 e^3 - 4 = 16.0855 -> value clamp 10, grad 0
#   x = -12:  k3 e^-12 + 11 = 11.000006 -> value clamp 10, grad 0
#   x = 25:   log-ratio clamp -> 20, e^20 - 21 = 4.85e8 -> value clamp 10, grad 0 (k2 312.5)
#   x = -30:  log-ratio clamp -> -20, e^-20 + 19 -> value clamp 10, grad 0 (k1 30, k2 450)
KL_X = [math.log(2.0), -5.0, 2.0, 3.0, -12.0, 25.0, -30.0]
KL_HAND = {
    "k1": ([-x for x in KL_X], [1.0] * 7),
    "k2": ([x * x / 2 for x in KL_X], [-x for x in KL_X]),
    "k3": (
        [0.306853, 4.006738, 4.389056, 10.0, 10.0, 10.0, 10.0],
        [-1.0, 0.993262, -6.389056, 0.0, 0.0, 0.0, 0.0],
    ),
}


@pytest.mark.parametrize("kind", ["k1", "k2", "k3"])
def test_kl_hand_vector(kind: str) -> None:
    logprobs = t([-1.0, -0.5, -3.0, -4.0, -0.1, -40.0, -0.2]).requires_grad_(True)
    ref = logprobs.detach() + t(KL_X)
    value = kl_estimate(logprobs, ref, kind)
    value.sum().backward()
    want_value, want_grad = KL_HAND[kind]
    assert_close(value, t(want_value))
    assert_close(logprobs.grad, t(want_grad))
    assert_close(verl_kl_penalty(logprobs.detach(), ref, kind), t(want_value))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("kind", ["k1", "k2", "k3"])
def test_kl_matches_verl_with_extreme_gaps(seed: int, kind: str) -> None:
    g = torch.Generator().manual_seed(seed)
    logprobs = -torch.rand(6, 10, generator=g, dtype=D) * 5.0
    gaps = torch.randn(6, 10, generator=g, dtype=D) * 2.0
    # extreme gaps on both sides of both clamps (log-ratio +-20; value 10 at x < -11 or x > 2.611)
    extreme = t([-100.0, -30.0, -20.5, -19.5, -12.0, -10.0, 2.4, 2.7, 19.5, 20.5, 30.0, 100.0])
    gaps[0, :10] = extreme[:10]
    gaps[1, :2] = extreme[10:]
    ref = logprobs + gaps
    lp = logprobs.clone().requires_grad_(True)
    vlp = logprobs.clone().requires_grad_(True)
    ours = kl_estimate(lp, ref, kind)
    theirs = verl_kl_penalty(vlp, ref, kind)
    assert_close(ours, theirs)
    ours.sum().backward()
    theirs.sum().backward()
    assert_close(lp.grad, vlp.grad)
    if kind == "k3":
        clamped = (gaps < -11.0) | (gaps > 2.611)
        assert bool(clamped.any())
        assert bool((ours[clamped] == 10.0).all())
        assert bool((lp.grad[clamped] == 0.0).all())
        assert bool((ours >= 0).all())  # the -10 clamp is never active: k3 >= 0


@pytest.mark.parametrize("kind", ["k1", "k2", "k3"])
@pytest.mark.parametrize("mode", ["token_mean", "seq_mean_token_mean"])
def test_grpo_loss_with_kl_matches_verl_actor(kind: str, mode: str) -> None:
    # verl, verl/workers/actor/dp_actor.py, DataParallelPPOActor.update_policy (use_kl_loss):
    # policy_loss = pg_loss + kl_loss_coef * agg_loss(kl_penalty(log_prob, ref), mask, mode).
    rewards, ids = grouped_rewards(7)
    b = rewards.numel()
    logprobs, old, ref, mask = token_batch(7, b)
    ref[0, 0] = logprobs[0, 0] + 30.0  # clamps exercised inside the loss
    ref[1, 0] = logprobs[1, 0] - 30.0
    adv = verl_grpo_advantage(rewards, ids)
    beta = 0.04
    lp = logprobs.clone().requires_grad_(True)
    out = grpo_loss(
        lp, adv, mask, old, aggregation=mode, ref_logprobs=ref, kl_coef=beta, kl_estimator=kind
    )
    vlp = logprobs.clone().requires_grad_(True)
    pg, _, _ = verl_policy_loss(
        old, vlp, adv[:, None] * mask, mask, clip_ratio_c=INF, loss_agg_mode=VERL_MODES[mode]
    )
    kl = verl_agg_loss(verl_kl_penalty(vlp, ref, kind), mask, VERL_MODES[mode])
    total = pg + beta * kl
    assert_close(out.loss, total)
    assert_close(out.metrics["kl"], verl_masked_mean(verl_kl_penalty(logprobs, ref, kind), mask))
    out.loss.backward()
    total.backward()
    assert_close(lp.grad, vlp.grad)


# --- TempSamp-R1 reward shaping and advantages ---------------------------------------------------


def paper_soft_reward(r: float, tau: float = 0.8, a1: float = 0.01, a2: float = 1.0) -> float:
    # TempSamp-R1 (Li et al. 2025), non-linear soft reward shaping of the IoU reward:
    #   r' = tau + a1 ln(r - tau + 1)                        r >= tau
    #   r' = tau - (e^{a2 (tau - r)} - 1) / (e^{a2} - 1)     r < tau
    if r >= tau:
        return tau + a1 * math.log(r - tau + 1)
    return tau - (math.exp(a2 * (tau - r)) - 1) / (math.exp(a2) - 1)


def test_soft_reward_hand_values() -> None:
    # tau = 0.8, a1 = 0.01, a2 = 1, e - 1 = 1.718282:
    #   f(0)   = 0.8 - (e^0.8 - 1) / 1.718282 = 0.8 - 1.225541 / 1.718282 = 0.086764
    #   f(0.5) = 0.8 - (e^0.3 - 1) / 1.718282 = 0.8 - 0.349859 / 1.718282 = 0.596390
    #   f(0.8) = 0.8 (both branches meet at tau)
    #   f(0.9) = 0.8 + 0.01 ln 1.1 = 0.800953;  f(1) = 0.8 + 0.01 ln 1.2 = 0.801823
    for r, want in [(0.0, 0.086764), (0.5, 0.596390), (0.8, 0.8), (0.9, 0.800953), (1.0, 0.801823)]:
        assert tempsamp_soft_reward(r) == pytest.approx(want, abs=TOL)
        assert paper_soft_reward(r) == pytest.approx(want, abs=TOL)
    grid = [i / 200 for i in range(201)]
    for r in grid:
        assert tempsamp_soft_reward(r) == pytest.approx(paper_soft_reward(r), abs=1e-12)
    for kw in ({"tau": 0.6}, {"alpha1": 0.05}, {"alpha2": 2.0}):
        pk = {"tau": "tau", "alpha1": "a1", "alpha2": "a2"}
        for r in grid:
            want = paper_soft_reward(r, **{pk[k]: v for k, v in kw.items()})
            assert tempsamp_soft_reward(r, **kw) == pytest.approx(want, abs=1e-12)
    # Monotone and continuous; slopes at tau: a1 = 0.01 above, a2 / (e^a2 - 1) = 0.581977 below
    values = [tempsamp_soft_reward(r) for r in grid]
    assert all(b > a for a, b in itertools.pairwise(values))
    h = 1e-7
    assert (tempsamp_soft_reward(0.8 + h) - 0.8) / h == pytest.approx(0.01, rel=1e-4)
    assert (0.8 - tempsamp_soft_reward(0.8 - h)) / h == pytest.approx(0.581977, rel=1e-4)


def test_tempsamp_reward_composition() -> None:
    # total = f(IoU) + 0.1 * format, GT span (12, 17):
    #   the GT completion itself: IoU 1 -> 0.801823 + 0.1 = 0.901823
    #   "<answer>10.00 to 20.00</answer>": IoU 5 / 10 = 0.5 -> 0.596390 + 0.1 = 0.696390
    #   "10.00 to 20.00" (parsed, not in the answer format): 0.596390 + 0 = 0.596390
    #   unparseable: IoU 0 -> 0.086764
    gts = [(12.0, 17.0)]
    cases = [
        (ground_truth_completion((12.0, 17.0)), 1.0, 1.0, 0.901823),
        ("<answer>10.00 to 20.00</answer>", 0.5, 1.0, 0.696390),
        ("10.00 to 20.00", 0.5, 0.0, 0.596390),
        ("no span here", 0.0, 0.0, 0.086764),
    ]
    for answer, iou, fmt, want in cases:
        r = tempsamp_reward(answer, gts)
        assert r["iou"] == pytest.approx(iou, abs=1e-12)
        assert r["format"] == fmt
        assert r["total"] == pytest.approx(paper_soft_reward(iou) + 0.1 * fmt, abs=1e-12)
        assert r["total"] == pytest.approx(want, abs=TOL)


def _tempsamp_batch(seed: int, group_size: int, groups: int = 5):
    """Shaped rewards of `groups` groups: group_size - 1 on-policy rows (random IoU, format
    sometimes missing) and one GT row (IoU 1, formatted) at a random position in the group."""
    g = torch.Generator().manual_seed(seed)
    rewards, ids, gt = [], [], []
    for k in range(groups):
        gt_pos = int(torch.randint(group_size, (1,), generator=g))
        for i in range(group_size):
            is_gt = i == gt_pos
            iou = 1.0 if is_gt else float(torch.rand(1, generator=g, dtype=D)) ** 2
            fmt = 1.0 if is_gt else float(torch.rand(1, generator=g) > 0.3)
            rewards.append(paper_soft_reward(iou) + 0.1 * fmt)
            ids.append(10 * k + 1)
            gt.append(is_gt)
    return t(rewards), torch.tensor(ids), torch.tensor(gt)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("group_size", [4, 8])
def test_tempsamp_advantages_match_paper_and_verl(seed: int, group_size: int) -> None:
    rewards, ids, gt = _tempsamp_batch(seed, group_size)
    # "mixed" (the paper): the GT row inside the group's mean and std = verl's GRPO advantage.
    assert_close(tempsamp_advantages(rewards, ids, gt), verl_grpo_advantage(rewards, ids))
    # "downscale": r_GT' = min(r_GT, 0.8 R_max); R_max = r_GT by default, or a fixed 1.1.
    for max_reward, capped in [(None, 0.8 * rewards), (1.1, torch.full_like(rewards, 0.88))]:
        shaped = torch.where(gt, torch.minimum(rewards, capped), rewards)
        ours = tempsamp_advantages(
            rewards, ids, gt, variant="downscale", downscale_max_reward=max_reward
        )
        assert_close(ours, verl_grpo_advantage(shaped, ids))
    # "anchor": stats over the on-policy rows only, A_GT = 1.2 * max on-policy A of the group.
    ours = tempsamp_advantages(rewards, ids, gt, variant="anchor")
    on = ~gt
    expected = torch.zeros_like(rewards)
    expected[on] = verl_grpo_advantage(rewards[on], ids[on])
    for gid in ids.unique():
        rows = ids == gid
        expected[rows & gt] = 1.2 * expected[rows & on].max()
    assert_close(ours, expected)


def test_tempsamp_advantage_hand_vector() -> None:
    # Mixed: three sampled rows all fail alike (IoU 0, formatted: 0.086764 + 0.1 = 0.186764) and
    # the GT row scores 0.901823; gap d = 0.715059. Mean = on-policy + d/4, deviations -d/4 (x3)
    # and 3d/4, sum of squares 3d^2/4, sample std d/2 -> A = -0.5 (x3) and 1.5 (eps = 0).
    on, gt_r = paper_soft_reward(0.0) + 0.1, paper_soft_reward(1.0) + 0.1
    rewards = t([on, gt_r, on, on])
    ids = torch.tensor([4, 4, 4, 4])
    gt = torch.tensor([False, True, False, False])
    want = t([-0.5, 1.5, -0.5, -0.5])
    assert_close(tempsamp_advantages(rewards, ids, gt, eps=0.0), want)
    assert_close(verl_grpo_advantage(rewards, ids, epsilon=0.0), want)
    # Anchor: on-policy rewards [0.2, 0.5, 0.8] -> A = [-1, 0, 1] (sample std 0.3), A_GT = 1.2.
    rewards = t([0.2, 0.95, 0.5, 0.8])
    ours = tempsamp_advantages(rewards, ids, gt, variant="anchor", eps=0.0)
    assert_close(ours, t([-1.0, 1.2, 0.0, 1.0]))


@pytest.mark.parametrize("seed", range(3))
def test_tempsamp_loss_matches_verl_with_gt_ratio_one(seed: int) -> None:
    # TempSamp-R1's loss = verl's clipped loss (c = inf, token-mean) on the mixed batch with the
    # GT rows' old log-prob := the current policy's (ratio 1), whatever old value the caller has.
    rewards, ids, gt = _tempsamp_batch(seed, 4)
    b = rewards.numel()
    logprobs, old, _, mask = token_batch(seed, b, spread=0.5)
    old = torch.where(gt[:, None], old - 3.0, old)  # far-off old values on the GT rows
    lp = logprobs.clone().requires_grad_(True)
    out = tempsamp_loss(lp, rewards, ids, gt, mask, old)
    vlp = logprobs.clone().requires_grad_(True)
    old_ref = torch.where(gt[:, None], vlp.detach(), old)
    adv = verl_grpo_advantage(rewards, ids)
    ref, _, _ = verl_policy_loss(old_ref, vlp, adv[:, None] * mask, mask, clip_ratio_c=INF)
    assert_close(out.loss, ref)
    out.loss.backward()
    ref.backward()
    assert_close(lp.grad, vlp.grad)
    # GT rows: gradient -A_GT / N on every trained token (rho = 1 is never clipped).
    n = mask.sum()
    gt_grad = (-adv[:, None] / n).expand_as(mask)[gt[:, None] & mask]
    assert_close(lp.grad[gt[:, None] & mask], gt_grad)
