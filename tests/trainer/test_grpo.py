"""GRPO: advantages, clipping, aggregation modes, KL estimators, dynamic filtering, rewards."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from trainer.objectives import (
    aggregate,
    filter_zero_variance_groups,
    group_advantages,
    grpo_loss,
    grpo_objective,
    kl_estimate,
)
from trainer.objectives.rewards import grounding_reward, grpo_reward, reward_tensor
from tvg.rewards import answer_reward

D = torch.float64


def t(x) -> torch.Tensor:
    return torch.tensor(x, dtype=D)


# --- advantages ----------------------------------------------------------------------------------
# Group 0: r = [0.2, 0.5, 0.8], mean 0.5, deviations [-0.3, 0, 0.3]
#   sample std = sqrt(0.18 / 2) = 0.3          -> A = [-1, 0, 1]          (GRPO, TRL, verl)
#   population std = sqrt(0.18 / 3) = 0.244949 -> A = [-1.224745, 0, 1.224745]
#   Dr.GRPO (no std)                           -> A = [-0.3, 0, 0.3]
# Group 1: r = [1, 1] zero variance -> A = [0, 0]
REWARDS = [0.2, 0.5, 0.8, 1.0, 1.0]
GROUPS = [7, 7, 7, 3, 3]  # arbitrary ids


def test_group_advantages_hand() -> None:
    adv = group_advantages(t(REWARDS), torch.tensor(GROUPS), eps=0.0)
    assert torch.allclose(adv, t([-1.0, 0.0, 1.0, 0.0, 0.0]))
    adv = group_advantages(t(REWARDS), torch.tensor(GROUPS), eps=0.0, unbiased_std=False)
    s = 0.3 / math.sqrt(0.06)
    assert torch.allclose(adv, t([-s, 0.0, s, 0.0, 0.0]))
    adv = group_advantages(t(REWARDS), torch.tensor(GROUPS), scale_by_std=False)
    assert torch.allclose(adv, t([-0.3, 0.0, 0.3, 0.0, 0.0]))
    # eps enters the denominator: -0.3 / (0.3 + 0.1)
    adv = group_advantages(t(REWARDS), torch.tensor(GROUPS), eps=0.1)
    assert adv[0].item() == pytest.approx(-0.75)


def test_group_advantages_errors() -> None:
    with pytest.raises(ValueError, match="rewards"):
        group_advantages(t([0.1, float("nan")]), torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="group_ids"):
        group_advantages(t([0.1, 0.2]), torch.tensor([0, 0, 1]))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0, 2, allow_nan=False), min_size=2, max_size=8),
    st.floats(-3, 3, allow_nan=False),
    st.floats(0.5, 4, allow_nan=False),
)
def test_group_advantages_invariances(rewards, shift, scale) -> None:
    """Zero mean per group; invariant to adding a constant; to scaling when std-normalised."""
    r = t(rewards)
    g = torch.zeros(len(rewards), dtype=torch.long)
    a = group_advantages(r, g, eps=0.0)
    assert abs(a.sum().item()) < 1e-9
    if r.max() == r.min():
        assert a.abs().max() == 0.0
    if r.std() > 1e-6:  # away from rounding-sized spreads
        assert torch.allclose(group_advantages(r + shift, g, eps=0.0), a, atol=1e-8)
        assert torch.allclose(group_advantages(r * scale, g, eps=0.0), a, atol=1e-8)


# --- dynamic filtering ---------------------------------------------------------------------------


def test_filter_zero_variance_groups() -> None:
    rewards = t([0.2, 0.5, 0.8, 1.0, 1.0, 1.0, 0.0, 0.0])
    groups = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2])
    f = filter_zero_variance_groups(rewards, groups)
    assert f.keep.tolist() == [True] * 3 + [False] * 5
    assert (f.num_dropped_groups, f.num_groups) == (2, 3)
    # With a tolerance, a nearly constant group is dropped too.
    f = filter_zero_variance_groups(t([0.5, 0.5001]), torch.tensor([0, 0]), tol=1e-3)
    assert f.num_dropped_groups == 1


def test_zero_variance_group_filtered_out_of_token_mean() -> None:
    """Rows of a zero-variance group have A = 0; filtering them stops them diluting token_mean."""
    rewards = t([0.0, 1.0, 1.0, 1.0])
    groups = torch.tensor([0, 0, 1, 1])
    logp = torch.full((4, 2), -1.0, dtype=D, requires_grad=True)
    mask = torch.ones(4, 2)
    kept = grpo_objective(logp, rewards, groups, mask, filter_zero_variance=True, eps=0.0)
    kept.loss.backward()
    # Group 0: A = [-0.7071068, 0.7071068]; 4 tokens kept -> dL/dlogp = -A / 4
    a = 0.5 / math.sqrt(0.5)
    assert torch.allclose(logp.grad[0], t([a / 4, a / 4]))
    assert logp.grad[2:].abs().max() == 0.0
    assert int(kept.metrics["dropped_groups"]) == 1
    logp.grad = None
    unfiltered = grpo_objective(logp, rewards, groups, mask, filter_zero_variance=False, eps=0.0)
    unfiltered.loss.backward()
    assert torch.allclose(logp.grad[0], t([a / 8, a / 8]))  # diluted by the 4 zero-A tokens


# --- clipped loss --------------------------------------------------------------------------------
# One completion, 2 tokens, log rho = [ln 1.5, ln 0.5], eps_low = eps_high = 0.2, token_mean:
#  A = +1: token 0 min(1.5, 1.2) = 1.2 (clipped: no grad); token 1 min(0.5, 0.8) = 0.5
#          L = -(1.2 + 0.5) / 2 = -0.85; dL/dlogp = [0, -0.5 / 2] = [0, -0.25]
#  A = -1: token 0 min(-1.5, -1.2) = -1.5; token 1 min(-0.5, -0.8) = -0.8 (clipped)
#          L = (1.5 + 0.8) / 2 = 1.15;   dL/dlogp = [1.5 / 2, 0] = [0.75, 0]
OLD = [[-1.0, -1.0]]


def _logp():
    return (t(OLD) + t([[math.log(1.5), math.log(0.5)]])).requires_grad_()


@pytest.mark.parametrize(
    ("adv", "loss", "grad"), [(1.0, -0.85, [0.0, -0.25]), (-1.0, 1.15, [0.75, 0.0])]
)
def test_clipped_loss_hand(adv: float, loss: float, grad: list[float]) -> None:
    logp = _logp()
    out = grpo_loss(logp, t([adv]), torch.ones(1, 2), t(OLD))
    assert out.loss.item() == pytest.approx(loss)
    out.loss.backward()
    assert torch.allclose(logp.grad, t([grad]))


def test_clip_higher_positive_advantage_zero_grad_above_one_plus_eps_high() -> None:
    logp = _logp()  # ratio of token 0 = 1.5
    out = grpo_loss(logp, t([1.0]), torch.tensor([[1, 0]]), t(OLD), eps_high=0.28)
    out.loss.backward()
    assert out.loss.item() == pytest.approx(-1.28)
    assert logp.grad[0, 0].item() == 0.0
    assert out.metrics["clip_frac_high"].item() == pytest.approx(1.0)
    # Raising eps_high past the ratio un-clips it: gradient -ratio * A = -1.5.
    logp = _logp()
    grpo_loss(logp, t([1.0]), torch.tensor([[1, 0]]), t(OLD), eps_high=0.6).loss.backward()
    assert logp.grad[0, 0].item() == pytest.approx(-1.5)


def test_on_policy_ratio_one_gives_policy_gradient() -> None:
    logp = torch.full((2, 3), -0.7, dtype=D, requires_grad=True)
    out = grpo_loss(logp, t([2.0, -1.0]), torch.ones(2, 3))  # old None -> ratio 1
    assert out.loss.item() == pytest.approx(-(3 * 2.0 + 3 * -1.0) / 6)
    out.loss.backward()
    assert torch.allclose(logp.grad, t([[-2 / 6] * 3, [1 / 6] * 3]))


def test_per_token_advantages_and_shape_errors() -> None:
    logp = t([[-1.0, -1.0]])
    out = grpo_loss(logp, t([[1.0, 3.0]]), torch.ones(1, 2))
    assert out.loss.item() == pytest.approx(-2.0)
    with pytest.raises(ValueError, match="advantages"):
        grpo_loss(logp, t([1.0, 2.0]), torch.ones(1, 2))
    with pytest.raises(ValueError, match="advantages"):
        grpo_loss(logp, t([float("nan")]), torch.ones(1, 2))
    with pytest.raises(ValueError, match="ref_logprobs"):
        grpo_loss(logp, t([1.0]), torch.ones(1, 2), kl_coef=0.1)
    with pytest.raises(ValueError, match="old_logprobs"):
        grpo_loss(logp, t([1.0]), torch.ones(1, 2), t([[float("inf"), -1.0]]))


# --- aggregation modes ---------------------------------------------------------------------------
# v = [[1, 2, 3], [4, pad, pad]]
#   token_mean = 10 / 4 = 2.5; seq_mean_token_mean = (2 + 4) / 2 = 3
#   seq_mean_token_sum = (6 + 4) / 2 = 5; seq_mean_token_sum_norm (L = T = 3) = 10 / 6; sum = 10
@pytest.mark.parametrize(
    ("mode", "norm", "expected"),
    [
        ("token_mean", None, 2.5),
        ("seq_mean_token_mean", None, 3.0),
        ("seq_mean_token_sum", None, 5.0),
        ("seq_mean_token_sum_norm", None, 10 / 6),
        ("seq_mean_token_sum_norm", 5.0, 1.0),
        ("dr_grpo", None, 10 / 6),
        ("sum", None, 10.0),
    ],
)
def test_aggregation_modes_hand(mode: str, norm: float | None, expected: float) -> None:
    v = t([[1.0, 2.0, 3.0], [4.0, float("nan"), 99.0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    assert aggregate(v, mask, mode, norm).item() == pytest.approx(expected)


def test_aggregate_empty_rows_do_not_dilute() -> None:
    """B counts the sequences with a trained token: a zeroed (filtered) row changes nothing."""
    v = t([[1.0, 2.0, 3.0], [4.0, float("nan"), 99.0], [7.0, 7.0, 7.0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0], [0, 0, 0]])
    assert aggregate(v, mask, "seq_mean_token_mean").item() == pytest.approx(3.0)
    assert aggregate(v, mask, "seq_mean_token_sum").item() == pytest.approx(5.0)
    assert aggregate(v, mask, "seq_mean_token_sum_norm").item() == pytest.approx(10 / 6)


def test_aggregate_empty_mask_and_bad_mask() -> None:
    v = t([[1.0, 2.0]]).requires_grad_()
    for mode in ("token_mean", "seq_mean", "seq_mean_token_sum", "dr_grpo", "sum"):
        assert aggregate(v, torch.zeros(1, 2), mode).item() == 0.0
    with pytest.raises(ValueError, match="mask"):
        aggregate(v, t([[0.5, 1.0]]))


# --- KL to a frozen reference --------------------------------------------------------------------
# logp = -1, ref = -2: k1 = 1, k2 = 0.5, k3 = e^(ref - logp) - 1 - (ref - logp) = e^-1
#   d k3 / d logp = 1 - e^(ref - logp) = 1 - e^-1


def test_kl_estimators_hand() -> None:
    lp, ref = t([-1.0]), t([-2.0])
    assert kl_estimate(lp, ref, "k1").item() == pytest.approx(1.0)
    assert kl_estimate(lp, ref, "k2").item() == pytest.approx(0.5)
    assert kl_estimate(lp, ref, "k3").item() == pytest.approx(math.exp(-1))
    with pytest.raises(ValueError, match="k4"):
        kl_estimate(lp, ref, "k4")


def test_kl_penalty_in_loss_hand() -> None:
    logp = t([[-1.0]]).requires_grad_()
    out = grpo_loss(logp, t([0.0]), torch.ones(1, 1), ref_logprobs=t([[-2.0]]), kl_coef=0.1)
    assert out.loss.item() == pytest.approx(0.1 * math.exp(-1))
    out.loss.backward()
    assert logp.grad.item() == pytest.approx(0.1 * (1 - math.exp(-1)))
    assert out.metrics["kl"].item() == pytest.approx(math.exp(-1))


@settings(max_examples=60, deadline=None)
@given(st.floats(-20, 0, allow_nan=False), st.floats(-20, 0, allow_nan=False))
def test_k2_k3_nonnegative(a: float, b: float) -> None:
    assert kl_estimate(t([a]), t([b]), "k2").item() >= 0
    assert kl_estimate(t([a]), t([b]), "k3").item() >= -1e-12


# --- rewards (via tvg.rewards) -------------------------------------------------------------------


def test_grpo_reward_components_hand() -> None:
    answer = "The event happens in 2.0 - 4.0 seconds."
    r = grpo_reward(answer, [(0.0, 10.0)])
    assert r["iou"] == pytest.approx(0.2)
    assert r["total"] == pytest.approx(0.2)  # IoU alone by default (TimeLens)
    r = grpo_reward(answer, [(0.0, 10.0)], format_weight=0.5, eos_weight=0.3, finish_reason="stop")
    assert (r["format"], r["eos"]) == (1.0, 1.0)
    assert r["total"] == pytest.approx(0.2 + 0.5 + 0.3)
    r = grpo_reward(answer, [(0.0, 10.0)], eos_weight=0.3, finish_reason="length")
    assert r["total"] == pytest.approx(0.2)
    # Time-R1: IoU * (1 - |0 - 2| / 20) * (1 - |10 - 4| / 20) = 0.2 * 0.9 * 0.7 = 0.126
    r = grpo_reward(answer, [(0.0, 10.0)], duration=20.0, distance_weighted=True)
    assert r["accuracy"] == pytest.approx(0.126)
    assert r["iou"] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="finish_reason"):
        grpo_reward(answer, [(0.0, 10.0)], eos_weight=1.0)
    assert reward_tensor([r, r]).shape == (2,)


@settings(max_examples=50, deadline=None)
@given(
    st.floats(0, 30, allow_nan=False),
    st.floats(0, 30, allow_nan=False),
    st.booleans(),
    st.booleans(),
    st.sampled_from([0.0, 0.1, 1.0]),
)
def test_grounding_reward_total_matches_tvg_answer_reward(s, e, soft, dw, fw) -> None:
    answer = f"The event happens in {s:.1f} - {e:.1f} seconds."
    gts = [(3.0, 12.0)]
    ours = grounding_reward(
        answer, gts, duration=30.0, distance_weighted=dw, soft=soft, format_weight=fw
    )
    ref = answer_reward(
        answer, gts, duration=30.0, distance_weighted=dw, soft=soft, format_weight=fw
    )
    assert ours["total"] == pytest.approx(ref)
