"""TempSamp-R1: the GT row (ratio 1, gradient through log-probs), variants, logging, hybrid CoT."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from trainer.objectives import (
    anchored_advantages,
    downscale_ground_truth_rewards,
    ground_truth_old_logprobs,
    hybrid_cot_phase,
    on_policy_reward_stats,
    tempsamp_advantages,
    tempsamp_loss,
)
from trainer.objectives.rewards import ground_truth_completion, tempsamp_reward
from tvg.prompts import get_prompt_style

D = torch.float64


def t(x) -> torch.Tensor:
    return torch.tensor(x, dtype=D)


# One group: on-policy rewards [0.1, 0.3, 0.5] and the GT row (last) with 0.9.
REWARDS = [0.1, 0.3, 0.5, 0.9]
GROUPS = [0, 0, 0, 0]
IS_GT = [False, False, False, True]


def test_mixed_advantages_hand() -> None:
    # GT joins the stats: mean 0.45, deviations [-0.35, -0.15, 0.05, 0.45],
    # sum of squares 0.35, sample std sqrt(0.35 / 3) = 0.3415650
    adv = tempsamp_advantages(t(REWARDS), torch.tensor(GROUPS), torch.tensor(IS_GT), eps=0.0)
    std = math.sqrt(0.35 / 3)
    assert torch.allclose(adv, t([-0.35, -0.15, 0.05, 0.45]) / std)


def test_anchored_advantages_hand() -> None:
    # On-policy stats only: mean 0.3, deviations [-0.2, 0, 0.2], std 0.2 -> A = [-1, 0, 1]
    # A_GT = 1.2 * max A = 1.2
    adv = anchored_advantages(t(REWARDS), torch.tensor(GROUPS), torch.tensor(IS_GT), eps=0.0)
    assert torch.allclose(adv, t([-1.0, 0.0, 1.0, 1.2]))
    same = tempsamp_advantages(
        t(REWARDS), torch.tensor(GROUPS), torch.tensor(IS_GT), variant="anchor", eps=0.0
    )
    assert torch.allclose(same, adv)
    # Two groups keep separate anchors; a group of equal on-policy rewards anchors at 0.
    adv = anchored_advantages(
        t([0.1, 0.3, 0.5, 0.9, 0.4, 0.4, 1.0]),
        torch.tensor([0, 0, 0, 0, 1, 1, 1]),
        torch.tensor([False, False, False, True, False, False, True]),
        factor=2.0,
        eps=0.0,
    )
    assert torch.allclose(adv, t([-1.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0]))


def test_downscale_hand() -> None:
    r, gt = t(REWARDS), torch.tensor(IS_GT)
    # Default (R_max = the GT row's own reward): 0.8 * 0.9 = 0.72; on-policy rows unchanged.
    assert torch.allclose(downscale_ground_truth_rewards(r, gt), t([0.1, 0.3, 0.5, 0.72]))
    # A fixed maximum: min(0.9, 0.8 * 1.0) = 0.8; and min(0.9, 0.8 * 1.2) = 0.9 (not raised).
    assert downscale_ground_truth_rewards(r, gt, max_reward=1.0)[3].item() == pytest.approx(0.8)
    assert downscale_ground_truth_rewards(r, gt, max_reward=1.2)[3].item() == pytest.approx(0.9)
    # "downscale" variant = mixed advantages of [0.1, 0.3, 0.5, 0.72]:
    #   mean 0.405, deviations [-0.305, -0.105, 0.095, 0.315]
    #   sum of squares 0.093025 + 0.011025 + 0.009025 + 0.099225 = 0.2123, std sqrt(0.2123 / 3)
    adv = tempsamp_advantages(r, torch.tensor(GROUPS), gt, variant="downscale", eps=0.0)
    expected = t([-0.305, -0.105, 0.095, 0.315]) / math.sqrt(0.2123 / 3)
    assert torch.allclose(adv, expected)
    with pytest.raises(ValueError, match="variant"):
        tempsamp_advantages(r, torch.tensor(GROUPS), gt, variant="nope")


def test_gt_old_logprobs_ratio_exactly_one() -> None:
    logp = t([[-1.0, -2.0], [-0.5, -0.25]]).requires_grad_()
    old = t([[-1.1, -2.2], [-9.0, -9.0]])  # the GT row's "old" value is meaningless
    new_old = ground_truth_old_logprobs(logp, old, torch.tensor([False, True]))
    assert torch.equal(new_old[0], old[0])
    assert torch.equal(torch.exp(logp - new_old)[1], t([1.0, 1.0]))
    assert not new_old.requires_grad
    assert torch.equal(ground_truth_old_logprobs(logp, None, torch.tensor([False, True])), logp)


def test_tempsamp_loss_gt_row_gets_policy_gradient() -> None:
    """Each row: one token; on-policy rows have ratio 1 too (old = logp). token_mean over 4 tokens:
    L = -(1/4) sum_i A_i ratio_i, so dL/dlogp_i = -A_i / 4, for the GT row as for the others,
    even though the caller's old log-prob for the GT row is far off (ratio would be e^8.5)."""
    logp = t([[-1.0], [-1.2], [-0.8], [-0.5]]).requires_grad_()
    old = logp.detach().clone()
    old[3, 0] = -9.0
    out = tempsamp_loss(
        logp, t(REWARDS), torch.tensor(GROUPS), torch.tensor(IS_GT), torch.ones(4, 1), old, eps=0.0
    )
    out.loss.backward()
    adv = t([-0.35, -0.15, 0.05, 0.45]) / math.sqrt(0.35 / 3)
    assert torch.allclose(logp.grad[:, 0], -adv / 4)
    assert logp.grad[3, 0].item() < 0  # the GT row is pushed up
    assert out.metrics["ratio"].item() == pytest.approx(1.0)
    # Logged rewards exclude the GT row: mean of [0.1, 0.3, 0.5] = 0.3
    assert out.metrics["reward_mean"].item() == pytest.approx(0.3)
    assert out.metrics["gt_reward_mean"].item() == pytest.approx(0.9)
    assert int(out.metrics["on_policy_rows"]) == 3


def test_on_policy_reward_stats() -> None:
    s = on_policy_reward_stats(t([0.2, 0.4, 1.0]), torch.tensor([False, False, True]))
    assert s["reward_mean"].item() == pytest.approx(0.3)
    assert s["reward_std"].item() == pytest.approx(0.1)
    assert s["reward_max"].item() == pytest.approx(0.4)
    s = on_policy_reward_stats(t([1.0]), torch.tensor([True]))
    assert s["reward_mean"].item() == 0.0


# --- the GT completion and the reward ------------------------------------------------------------


def test_ground_truth_completion_text() -> None:
    assert ground_truth_completion((12.54, 17.834)) == "<answer>12.54 to 17.83</answer>"
    cot = ground_truth_completion((1.0, 2.5), "tempsamp_cot", reasoning="red square")
    assert cot == "<think>red square</think>\n<answer>1.00 to 2.50</answer>"
    assert get_prompt_style("tempsamp_cot").is_well_formatted(cot)
    timelens = ground_truth_completion((1.0, 2.5), "timelens")
    assert timelens == "The event happens in 1.0 - 2.5 seconds."
    with pytest.raises(ValueError, match="prompt style"):
        ground_truth_completion((1.0, 2.0), "nope")


def test_tempsamp_reward_hand() -> None:
    # The GT completion: IoU 1 -> soft 0.8 + 0.01 ln(1.2) = 0.8018232, + 0.1 * format 1
    r = tempsamp_reward(ground_truth_completion((12.54, 17.83)), [(12.54, 17.83)])
    assert r["total"] == pytest.approx(0.8 + 0.01 * math.log(1.2) + 0.1)
    # IoU 0.5 -> 0.8 - (e^0.3 - 1) / (e - 1) = 0.5960...; no tag -> format 0
    r = tempsamp_reward("0.00 to 5.00", [(0.0, 10.0)])
    assert r["iou"] == pytest.approx(0.5)
    assert r["total"] == pytest.approx(0.8 - (math.exp(0.3) - 1) / (math.e - 1))
    assert r["format"] == 0.0


# --- hybrid CoT schedule -------------------------------------------------------------------------


def test_hybrid_cot_phase() -> None:
    p = hybrid_cot_phase(0, 10)
    assert (p.phase, p.prompt_style, p.format_weight, p.format_reward_on) == (
        1,
        "tempsamp",
        0.0,
        False,
    )
    assert hybrid_cot_phase(9, 10).phase == 1
    p = hybrid_cot_phase(10, 10)
    assert (p.phase, p.prompt_style, p.format_weight, p.format_reward_on) == (
        2,
        "tempsamp_cot",
        0.1,
        True,
    )
    assert hybrid_cot_phase(0, 0).phase == 2  # no phase 1
    with pytest.raises(ValueError):
        hybrid_cot_phase(-1, 10)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(0, 1.1, allow_nan=False), min_size=3, max_size=6),
    st.floats(0, 1.1, allow_nan=False),
)
def test_mixed_advantages_sum_to_zero_and_anchor_is_max(on_policy, gt_reward) -> None:
    r = t([*on_policy, gt_reward])
    g = torch.zeros(len(r), dtype=torch.long)
    gt = torch.tensor([False] * len(on_policy) + [True])
    mixed = tempsamp_advantages(r, g, gt, eps=0.0)
    assert abs(mixed.sum().item()) < 1e-9
    anchored = anchored_advantages(r, g, gt, eps=0.0)
    assert anchored[-1].item() == pytest.approx(1.2 * anchored[:-1].max().item())
    assert anchored[-1].item() >= 0
