"""OPD objectives: hand-worked numbers, expected gradients by enumeration, properties."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from trainer.objectives import (
    aggregate,
    discounted_future_sum,
    gather_logprobs,
    lookup_logprobs,
    opd_full_rkl_loss,
    opd_k1_loss,
    opd_k3_loss,
    opd_loss,
    opd_sampled_token_loss,
    opd_token_rewards,
    opd_topk_fkl_loss,
    opd_topk_rkl_loss,
    opd_union_topk_rkl_loss,
    reverse_kl_rows,
    union_topk_support,
)

LN2 = math.log(2.0)
D = torch.float64


def t(x) -> torch.Tensor:
    return torch.tensor(x, dtype=D)


# --- the paper's sampled-token form -------------------------------------------------------------
# Hand example (one completion, 3 tokens):
#   log pi_old = [-1.0, -2.0, -0.5], log pi_T = [-1.5, -1.0, -0.25]
#   r = -(old - T) = -[0.5, -1.0, -0.25] = [-0.5, 1.0, 0.25];  sum r = 0.75
#   at ratio 1: L = -sum r = -0.75;  dL/dlogp_t = -r_t = [0.5, -1.0, -0.25]
OLD = [[-1.0, -2.0, -0.5]]
TEACHER = [[-1.5, -1.0, -0.25]]


def test_opd_rewards_hand() -> None:
    r = opd_token_rewards(t(OLD), t(TEACHER), torch.ones(1, 3, dtype=torch.bool))
    assert torch.allclose(r, t([[-0.5, 1.0, 0.25]]))
    r2 = opd_token_rewards(t(OLD), t(TEACHER), torch.ones(1, 3, dtype=torch.bool), kl_coef=2.0)
    assert torch.allclose(r2, t([[-1.0, 2.0, 0.5]]))


def test_opd_loss_on_policy_hand() -> None:
    logp = t(OLD).requires_grad_()
    out = opd_loss(logp, t(TEACHER), torch.ones(1, 3), old_logprobs=t(OLD))
    assert out.loss.item() == pytest.approx(-0.75)
    out.loss.backward()
    assert torch.allclose(logp.grad, t([[0.5, -1.0, -0.25]]))
    # The sampled-token reverse KL estimate: mean(old - T) = (0.5 - 1.0 - 0.25) / 3
    assert out.metrics["reverse_kl"].item() == pytest.approx(-0.25)
    assert out.metrics["ratio"].item() == pytest.approx(1.0)


def test_opd_loss_off_policy_ratio_hand() -> None:
    # log pi_theta = old + [0.1, 0, -0.2]: ratio = [e^0.1, 1, e^-0.2]
    # L = -(-0.5 e^0.1 + 1.0 + 0.25 e^-0.2) = 0.5 * 1.1051709 - 1 - 0.25 * 0.8187308 = -0.6521020
    logp = (t(OLD) + t([[0.1, 0.0, -0.2]])).requires_grad_()
    out = opd_loss(logp, t(TEACHER), torch.ones(1, 3), old_logprobs=t(OLD))
    expected = 0.5 * math.exp(0.1) - 1.0 - 0.25 * math.exp(-0.2)
    assert out.loss.item() == pytest.approx(expected)
    out.loss.backward()
    # dL/dlogp_t = -r_t * ratio_t
    assert torch.allclose(logp.grad, t([[0.5 * math.exp(0.1), -1.0, -0.25 * math.exp(-0.2)]]))


def test_opd_old_none_means_on_policy() -> None:
    logp = t(OLD).requires_grad_()
    out = opd_loss(logp, t(TEACHER), torch.ones(1, 3))
    assert out.loss.item() == pytest.approx(-0.75)
    assert opd_sampled_token_loss is opd_loss


def test_opd_kl_coef_and_discount_hand() -> None:
    mask = torch.ones(1, 3)
    assert opd_loss(t(OLD), t(TEACHER), mask, t(OLD), kl_coef=2.0).loss.item() == pytest.approx(
        -1.5
    )
    # discount 0.5: R = [-0.5 + 0.5*1.0 + 0.25*0.25, 1.0 + 0.5*0.25, 0.25] = [0.0625, 1.125, 0.25]
    # L = -(0.0625 + 1.125 + 0.25) = -1.4375
    out = opd_loss(t(OLD), t(TEACHER), mask, t(OLD), discount=0.5)
    assert out.loss.item() == pytest.approx(-1.4375)


def test_discounted_future_sum_respects_mask() -> None:
    r = t([[1.0, 2.0, 3.0, 99.0]])
    mask = torch.tensor([[True, True, True, False]])
    # R = [1 + 0.5*2 + 0.25*3, 2 + 0.5*3, 3, 0] = [2.75, 3.5, 3, 0]: the pad never leaks back.
    assert torch.allclose(discounted_future_sum(r, mask, 0.5), t([[2.75, 3.5, 3.0, 0.0]]))
    assert torch.allclose(discounted_future_sum(r, mask, 0.0), t([[1.0, 2.0, 3.0, 0.0]]))
    with pytest.raises(ValueError, match="discount"):
        discounted_future_sum(r, mask, 1.5)


# Two completions, the second of length 2 with a NaN pad (ignored):
#   per-token values (ratio 1) = -r: row0 [0.5, -1.0, -0.25] (sum -0.75), row1 [0, -0.2] (sum -0.2)
@pytest.mark.parametrize(
    ("aggregation", "expected"),
    [
        ("seq_mean_token_sum", (-0.75 - 0.2) / 2),  # the published per-completion sum (default)
        ("sum", -0.95),
        ("token_mean", -0.95 / 5),
        ("seq_mean", (-0.75 / 3 - 0.2 / 2) / 2),
    ],
)
def test_opd_aggregations_hand(aggregation: str, expected: float) -> None:
    old = t([OLD[0], [-0.2, -0.3, float("nan")]])
    teacher = t([TEACHER[0], [-0.2, -0.1, float("nan")]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    logp = old.clone().requires_grad_()
    out = opd_loss(logp, teacher, mask, old, aggregation=aggregation)
    assert out.loss.item() == pytest.approx(expected)
    out.loss.backward()
    assert torch.isfinite(logp.grad).all()
    assert logp.grad[1, 2].item() == 0.0


def test_opd_default_aggregation_is_published_sum() -> None:
    old = t([OLD[0], [-0.2, -0.3, 0.0]])
    teacher = t([TEACHER[0], [-0.2, -0.1, 0.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    assert opd_loss(old, teacher, mask, old).loss.item() == pytest.approx(-0.475)


def test_opd_nan_inputs_raise_naming_tensor() -> None:
    mask = torch.ones(1, 3)
    with pytest.raises(ValueError, match="teacher_logprobs"):
        opd_loss(t(OLD), t([[-1.0, float("nan"), -1.0]]), mask)
    with pytest.raises(ValueError, match="old_logprobs"):
        opd_loss(t(OLD), t(TEACHER), mask, t([[-1.0, float("inf"), -1.0]]))
    with pytest.raises(ValueError, match="logprobs"):
        opd_loss(t([[float("-inf"), -1.0, -1.0]]), t(TEACHER), mask)
    with pytest.raises(ValueError, match="shape"):
        opd_loss(t(OLD), t([[-1.0, -1.0]]), mask)
    with pytest.raises(ValueError, match="aggregation"):
        opd_loss(t(OLD), t(TEACHER), mask, aggregation="mean_of_nothing")


# --- expected gradient of the sampled-token form == reverse-KL gradient (enumeration) ----------


def test_opd_expected_gradient_equals_reverse_kl_gradient_one_step() -> None:
    """E_{y ~ p_theta}[grad L(y)] = grad KL(p_theta || p_T), enumerating a 4-token vocabulary."""
    logits = t([0.3, -0.7, 1.2, 0.1]).requires_grad_()
    teacher_lp = torch.log_softmax(t([1.0, 0.0, -1.0, 0.5]), -1)
    lp = torch.log_softmax(logits, -1)
    p = lp.exp().detach()
    expected_loss = sum(
        p[y] * opd_loss(lp[y].view(1, 1), teacher_lp[y].view(1, 1), torch.ones(1, 1)).loss
        for y in range(4)
    )
    (g_opd,) = torch.autograd.grad(expected_loss, logits, retain_graph=True)
    kl = (lp.exp() * (lp - teacher_lp)).sum()
    (g_kl,) = torch.autograd.grad(kl, logits)
    assert torch.allclose(g_opd, g_kl, atol=1e-12)
    assert g_kl.abs().max() > 1e-2  # a non-trivial gradient


def _two_step_setup():
    torch.manual_seed(0)
    z1 = torch.randn(3, dtype=D, requires_grad=True)  # step-1 logits
    z2 = torch.randn(3, 3, dtype=D, requires_grad=True)  # step-2 logits given y1
    q1 = torch.log_softmax(torch.randn(3, dtype=D), -1)
    q2 = torch.log_softmax(torch.randn(3, 3, dtype=D), -1)
    return z1, z2, q1, q2


@pytest.mark.parametrize("discount", [1.0, 0.0])
def test_opd_discount_one_gives_sequence_reverse_kl_gradient(discount: float) -> None:
    """With discount 1 the expected gradient over all 9 two-token sequences equals the gradient of
    the sequence-level reverse KL; with discount 0 (the paper) it is the per-token form, which
    differs in general (the test asserts both directions)."""
    z1, z2, q1, q2 = _two_step_setup()
    l1, l2 = torch.log_softmax(z1, -1), torch.log_softmax(z2, -1)
    expected = 0.0
    for y1 in range(3):
        for y2 in range(3):
            prob = (l1[y1] + l2[y1, y2]).exp().detach()
            lp = torch.stack([l1[y1], l2[y1, y2]]).view(1, 2)
            tl = torch.stack([q1[y1], q2[y1, y2]]).view(1, 2)
            expected = expected + prob * opd_loss(lp, tl, torch.ones(1, 2), discount=discount).loss
    g_opd = torch.autograd.grad(expected, (z1, z2), retain_graph=True)
    seq_kl = sum(
        l1[a].exp() * ((l1[a] - q1[a]) + (l2[a].exp() * (l2[a] - q2[a])).sum()) for a in range(3)
    )
    g_kl = torch.autograd.grad(seq_kl, (z1, z2))
    close = all(torch.allclose(a, b, atol=1e-10) for a, b in zip(g_opd, g_kl, strict=True))
    assert close == (discount == 1.0)


def test_k1_direct_loss_has_zero_expected_gradient_and_k3_gives_forward_kl() -> None:
    logits = t([0.3, -0.7, 1.2, 0.1]).requires_grad_()
    teacher_lp = torch.log_softmax(t([1.0, 0.0, -1.0, 0.5]), -1)
    lp = torch.log_softmax(logits, -1)
    p = lp.exp().detach()
    one = torch.ones(1, 1)
    e_k1 = sum(p[y] * opd_k1_loss(lp[y].view(1, 1), teacher_lp[y].view(1, 1), one).loss
               for y in range(4))  # fmt: skip
    e_k3 = sum(p[y] * opd_k3_loss(lp[y].view(1, 1), teacher_lp[y].view(1, 1), one).loss
               for y in range(4))  # fmt: skip
    (g1,) = torch.autograd.grad(e_k1, logits, retain_graph=True)
    (g3,) = torch.autograd.grad(e_k3, logits, retain_graph=True)
    fkl = (teacher_lp.exp() * (teacher_lp - lp)).sum()
    (g_fkl,) = torch.autograd.grad(fkl, logits)
    assert torch.allclose(g1, torch.zeros(4, dtype=D), atol=1e-12)
    assert torch.allclose(g3, g_fkl, atol=1e-12)


def test_k1_k3_values_hand() -> None:
    # logp = [-1, -2], T = [-1.5, -1]: k1 = [0.5, -1] (sum -0.5)
    # k3 = e^(T-logp) - 1 - (T-logp) = [e^-0.5 - 0.5, e^1 - 2] = [0.1065307, 0.7182818]
    logp, teacher, mask = t([[-1.0, -2.0]]), t([[-1.5, -1.0]]), torch.ones(1, 2)
    assert opd_k1_loss(logp, teacher, mask).loss.item() == pytest.approx(-0.5)
    k3_sum = math.exp(-0.5) - 0.5 + math.e - 2.0
    assert opd_k3_loss(logp, teacher, mask).loss.item() == pytest.approx(k3_sum)
    assert opd_k3_loss(logp, teacher, mask, aggregation="token_mean").loss.item() == pytest.approx(
        k3_sum / 2
    )


# --- the exact reverse KL ------------------------------------------------------------------------
# p_theta = [0.5, 0.25, 0.25, 0 (vision token, -inf)], p_T = [0.25, 0.25, 0.5, 0]
#   KL = 0.5 ln 2 + 0 + 0.25 ln(1/2) = 0.25 ln 2 = 0.1732868
#   dKL/dz_j = p_j (ln(p_j/q_j) - KL) = [0.375 ln2, -0.0625 ln2, -0.3125 ln2, 0]
NEG_INF = float("-inf")


def _rows():
    z = t([[[math.log(0.5), math.log(0.25), math.log(0.25), NEG_INF]]]).requires_grad_()
    teacher = t([[[math.log(0.25), math.log(0.25), math.log(0.5), NEG_INF]]])
    return z, teacher


def test_full_rkl_hand_value_and_gradient() -> None:
    z, teacher = _rows()
    student = torch.log_softmax(z, -1)
    out = opd_full_rkl_loss(student, teacher, torch.ones(1, 1))
    assert out.loss.item() == pytest.approx(0.25 * LN2)
    out.loss.backward()
    expected = t([[[0.375 * LN2, -0.0625 * LN2, -0.3125 * LN2, 0.0]]])
    assert torch.allclose(z.grad, expected, atol=1e-12)


def test_full_rkl_gradient_is_autograd_of_closed_form() -> None:
    torch.manual_seed(1)
    z = torch.randn(2, 3, 7, dtype=D, requires_grad=True)
    teacher = torch.log_softmax(torch.randn(2, 3, 7, dtype=D), -1)
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    out = opd_full_rkl_loss(torch.log_softmax(z, -1), teacher, mask, aggregation="token_mean")
    (g,) = torch.autograd.grad(out.loss, z)
    lp = torch.log_softmax(z, -1)
    closed = (lp.exp() * (lp - teacher)).sum(-1)
    ref = (closed * mask).sum() / mask.sum()
    (g_ref,) = torch.autograd.grad(ref, z)
    assert torch.allclose(g, g_ref, atol=1e-12)
    assert g[1, 1:].abs().max() == 0.0  # padded positions get no gradient


def test_full_rkl_rejects_nan_and_plus_inf() -> None:
    z, teacher = _rows()
    bad = teacher.clone()
    bad[0, 0, 1] = float("nan")
    with pytest.raises(ValueError, match="teacher_logprob_rows"):
        opd_full_rkl_loss(torch.log_softmax(z, -1), bad, torch.ones(1, 1))
    with pytest.raises(ValueError, match="shape"):
        opd_full_rkl_loss(torch.log_softmax(z, -1), teacher[..., :3], torch.ones(1, 1))


def test_union_topk_support_dedups() -> None:
    ids, valid = union_topk_support(torch.tensor([[[0, 1]]]), torch.tensor([[[1, 3]]]))
    assert ids.tolist() == [[[0, 1, 1, 3]]]
    assert valid.tolist() == [[[True, True, False, True]]]


def test_lookup_logprobs_fills_with_kth() -> None:
    vals, found = lookup_logprobs(
        torch.tensor([[[0, 2, 5]]]), torch.tensor([[[2, 0]]]), t([[[-0.5, -1.5]]])
    )
    assert vals.tolist() == [[[-1.5, -0.5, -1.5]]]
    assert found.tolist() == [[[True, True, False]]]


def test_union_topk_rkl_hand() -> None:
    # p_theta = [0.5, 0.25, 0.25], p_T = [0.25, 0.25, 0.5]; student top-1 = {0}, teacher top-1 = {2}
    z, _ = _rows()
    student = torch.log_softmax(z, -1)
    t_ids, t_lp = torch.tensor([[[2]]]), t([[[math.log(0.5)]]])
    mask = torch.ones(1, 1)
    # The teacher scored the union {0, 2}: 0.5 ln(0.5/0.25) + 0.25 ln(0.25/0.5) = 0.25 ln 2 (the
    # omitted id 1 has p_theta = p_T, so the truncated sum is the exact value here).
    support_t = t([[[math.log(0.25), math.log(0.5)]]])
    out = opd_union_topk_rkl_loss(
        student, t_ids, t_lp, mask, student_k=1, teacher_support_logprobs=support_t
    )
    assert out.loss.item() == pytest.approx(0.25 * LN2)
    # Only the teacher's top-1: id 0 takes the k-th log-prob ln 0.5 (upper bound):
    #   truncated 0.5 ln(0.5/0.5) + 0.25 ln(0.25/0.5) = -0.25 ln 2
    out = opd_union_topk_rkl_loss(student, t_ids, t_lp, mask, student_k=1)
    assert out.loss.item() == pytest.approx(-0.25 * LN2)
    assert out.metrics["teacher_coverage"].item() == pytest.approx(0.5)
    #   renormalised on {0, 2}: student [2/3, 1/3], teacher [1/2, 1/2]
    #   KL = 2/3 ln(4/3) + 1/3 ln(2/3) = 0.0566330
    out = opd_union_topk_rkl_loss(student, t_ids, t_lp, mask, student_k=1, renormalize=True)
    expected = 2 / 3 * math.log(4 / 3) + 1 / 3 * math.log(2 / 3)
    assert out.loss.item() == pytest.approx(expected)


def test_union_topk_with_full_support_equals_exact() -> None:
    torch.manual_seed(2)
    z = torch.randn(2, 3, 6, dtype=D, requires_grad=True)
    teacher = torch.log_softmax(torch.randn(2, 3, 6, dtype=D), -1)
    student = torch.log_softmax(z, -1)
    mask = torch.ones(2, 3)
    t_lp, t_ids = teacher.topk(2, -1)
    ids, _ = union_topk_support(student.detach().topk(6, -1).indices, t_ids)
    support_t = teacher.gather(-1, ids)
    approx = opd_union_topk_rkl_loss(
        student, t_ids, t_lp, mask, student_k=6, teacher_support_logprobs=support_t
    )
    exact = opd_full_rkl_loss(student, teacher, mask)
    assert approx.loss.item() == pytest.approx(exact.loss.item())
    g_a = torch.autograd.grad(approx.loss, z, retain_graph=True)[0]
    g_e = torch.autograd.grad(exact.loss, z)[0]
    assert torch.allclose(g_a, g_e, atol=1e-12)


# --- top-k forward / reverse KL on the teacher's support -----------------------------------------
# teacher top-2 at ids [2, 0]: p_T = [0.5, 0.25]; student at those ids: [0.25, 0.5]


def test_topk_fkl_hand() -> None:
    s = t([[[math.log(0.25), math.log(0.5)]]]).requires_grad_()
    tl = t([[[math.log(0.5), math.log(0.25)]]])
    out = opd_topk_fkl_loss(s, tl, torch.ones(1, 1))
    # 0.5 ln(0.5/0.25) + 0.25 ln(0.25/0.5) = 0.25 ln 2
    assert out.loss.item() == pytest.approx(0.25 * LN2)
    out.loss.backward()
    assert torch.allclose(s.grad, t([[[-0.5, -0.25]]]))  # -p_T
    # teacher renormalised to [2/3, 1/3]: 2/3 ln((2/3)/0.25) + 1/3 ln((1/3)/0.5)
    out = opd_topk_fkl_loss(s.detach(), tl, torch.ones(1, 1), renormalize_teacher=True)
    assert out.loss.item() == pytest.approx(2 / 3 * math.log(8 / 3) + 1 / 3 * math.log(2 / 3))


def test_topk_rkl_hand() -> None:
    # renormalised on S: student [1/3, 2/3], teacher [2/3, 1/3]
    # KL = 1/3 ln(1/2) + 2/3 ln 2 = (1/3) ln 2
    s = t([[[math.log(0.25), math.log(0.5)]]])
    tl = t([[[math.log(0.5), math.log(0.25)]]])
    assert opd_topk_rkl_loss(s, tl, torch.ones(1, 1)).loss.item() == pytest.approx(LN2 / 3)
    # Invariant to rescaling either side on S (only the conditional distributions matter).
    shifted = opd_topk_rkl_loss(s - 3.0, tl - 1.0, torch.ones(1, 1)).loss.item()
    assert shifted == pytest.approx(LN2 / 3)


def test_topk_short_list_and_gather() -> None:
    rows = torch.log_softmax(t([[[0.0, 1.0, 2.0, 3.0]]]), -1)
    ids = torch.tensor([[[3, 1]]])
    assert torch.allclose(gather_logprobs(rows, ids), rows[..., [3, 1]])
    # A -inf teacher entry (short list) counts 0 in FKL and is left out of the RKL support.
    tl = t([[[math.log(0.5), NEG_INF]]])
    fkl = opd_topk_fkl_loss(gather_logprobs(rows, ids), tl, torch.ones(1, 1)).loss
    assert fkl.item() == pytest.approx(0.5 * (math.log(0.5) - rows[0, 0, 3].item()))
    rkl = opd_topk_rkl_loss(gather_logprobs(rows, ids), tl, torch.ones(1, 1)).loss
    assert rkl.item() == pytest.approx(0.0, abs=1e-12)


# --- properties ----------------------------------------------------------------------------------

logit_rows = st.lists(st.floats(-8, 8, allow_nan=False), min_size=5, max_size=5)


@settings(max_examples=60, deadline=None)
@given(logit_rows, logit_rows, st.floats(-5, 5, allow_nan=False))
def test_exact_kls_nonnegative_and_shift_invariant(a, b, shift) -> None:
    s = torch.log_softmax(t([[a]]), -1)
    q = torch.log_softmax(t([[b]]), -1)
    mask = torch.ones(1, 1)
    full = opd_full_rkl_loss(s, q, mask).loss.item()
    assert full >= -1e-12
    shifted = opd_full_rkl_loss(torch.log_softmax(t([[a]]) + shift, -1), q, mask).loss.item()
    assert shifted == pytest.approx(full, abs=1e-9)
    q_lp, ids = q.topk(3, -1)
    assert opd_topk_rkl_loss(gather_logprobs(s, ids), q_lp, mask).loss.item() >= -1e-12
    renorm = opd_union_topk_rkl_loss(s, ids, q_lp, mask, student_k=2, renormalize=True)
    assert renorm.loss.item() >= -1e-12
    assert reverse_kl_rows(s, s).abs().max().item() < 1e-12


token_lp = st.lists(st.floats(-10, -0.01, allow_nan=False), min_size=4, max_size=4)


@settings(max_examples=60, deadline=None)
@given(token_lp, token_lp, st.sampled_from(["seq_mean_token_sum", "token_mean", "seq_mean"]))
def test_opd_at_ratio_one_equals_k1_and_ignores_padding(old, teacher, agg) -> None:
    """On-policy, L(opd) = -sum r = sum(old - T) = L(k1); extra padded columns change nothing."""
    mask = torch.ones(1, 4)
    a = opd_loss(t([old]), t([teacher]), mask, aggregation=agg).loss.item()
    b = opd_k1_loss(t([old]), t([teacher]), mask, aggregation=agg).loss.item()
    assert a == pytest.approx(b, abs=1e-9)
    padded_mask = torch.tensor([[1, 1, 1, 1, 0, 0]])
    pad = [float("nan"), 123.0]
    c = opd_loss(t([old + pad]), t([teacher + pad]), padded_mask, aggregation=agg).loss.item()
    assert c == pytest.approx(a, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.lists(token_lp, min_size=4, max_size=4))
def test_published_sum_is_micro_batch_invariant(rows) -> None:
    """seq_mean_token_sum over 4 completions = the mean of the two 2-completion halves, as the
    released run's gradient accumulation averaged its micro-batches."""
    v = t(rows)
    mask = torch.ones_like(v, dtype=torch.bool)
    whole = aggregate(v, mask, "seq_mean_token_sum").item()
    halves = (aggregate(v[:2], mask[:2], "seq_mean_token_sum") + aggregate(v[2:], mask[2:],
              "seq_mean_token_sum")).item() / 2  # fmt: skip
    assert whole == pytest.approx(halves)


def test_reward_clip_and_batch_mean_baseline() -> None:
    from trainer.objectives import opd_loss

    logp = torch.tensor([[-0.1, -0.2, -3.0], [-0.5, -0.4, -0.3]], dtype=torch.float64)
    logp.requires_grad_()
    teacher = torch.tensor([[-0.1, -12.0, -0.5], [-0.6, -0.4, -20.0]], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    plain = opd_loss(logp, teacher, mask)
    clipped = opd_loss(logp, teacher, mask, reward_clip=1.0)
    centred = opd_loss(logp, teacher, mask, baseline="batch_mean")
    # r = -(logp - teacher): [0, -11.8, 2.5; -0.1, 0, (padding)]; clipped: [0, -1, 1; -0.1, 0]
    assert plain.metrics["reward"].item() == pytest.approx((0 - 11.8 + 2.5 - 0.1 + 0) / 5)
    assert clipped.metrics["reward"].item() == pytest.approx((0 - 1 + 1 - 0.1 + 0) / 5)
    assert centred.metrics["reward"].item() == pytest.approx(0.0, abs=1e-12)
    (g_plain,) = torch.autograd.grad(plain.loss, logp)
    (g_clip,) = torch.autograd.grad(clipped.loss, logp)
    assert g_clip.abs().max() < g_plain.abs().max()  # the -11.8 token no longer dominates
    with pytest.raises(ValueError, match="baseline"):
        opd_loss(logp, teacher, mask, baseline="ema")
    with pytest.raises(ValueError, match="reward_clip"):
        opd_loss(logp, teacher, mask, reward_clip=0.0)
