"""Top-k with a tail bucket, forward and reverse, against a brute-force full-vocabulary
computation of the same K + 1 outcome distributions (value and gradient), and its limits."""

from __future__ import annotations

import pytest
import torch

from trainer.objectives import (
    gather_logprobs,
    opd_full_rkl_loss,
    opd_topk_tail_fkl_loss,
    opd_topk_tail_rkl_loss,
)

D = torch.float64
B, T, V = 3, 4, 11


def _data(k: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, T, V, generator=gen, dtype=D).requires_grad_()
    teacher = torch.log_softmax(2.0 * torch.randn(B, T, V, generator=gen, dtype=D), -1)
    top_lp, top_ids = teacher.topk(k, -1)
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[2, 2:] = False
    return logits, teacher, top_lp, top_ids, mask


def _brute(direction: str, student_rows, teacher_rows, ids, mask) -> torch.Tensor:
    """The K + 1 outcome KL from the full rows: listed tokens, and the rest summed exactly."""
    inside = torch.zeros_like(student_rows, dtype=torch.bool).scatter(-1, ids, True)
    neg = torch.full_like(student_rows, float("-inf"))
    s_tail = torch.logsumexp(torch.where(inside, neg, student_rows), -1)
    t_tail = torch.logsumexp(torch.where(inside, neg, teacher_rows), -1)
    s = torch.cat([student_rows.gather(-1, ids), s_tail[..., None]], -1)
    t = torch.cat([teacher_rows.gather(-1, ids), t_tail[..., None]], -1)
    p, q = (s, t) if direction == "reverse" else (t, s)
    kl = (p.exp() * (p - q)).sum(-1)
    per_seq = torch.where(mask, kl, torch.zeros_like(kl)).sum(-1)
    return per_seq.mean()  # seq_mean_token_sum, the OPD default


@pytest.mark.parametrize("k", [1, 3, 8])
@pytest.mark.parametrize(
    ("direction", "fn"), [("reverse", opd_topk_tail_rkl_loss), ("forward", opd_topk_tail_fkl_loss)]
)
def test_equals_the_brute_force_partition(k: int, direction: str, fn) -> None:
    logits, teacher, top_lp, top_ids, mask = _data(k)
    rows = torch.log_softmax(logits, -1)
    out = fn(gather_logprobs(rows, top_ids), top_lp, mask)
    (grad,) = torch.autograd.grad(out.loss, logits)
    expected = _brute(direction, torch.log_softmax(logits, -1), teacher, top_ids, mask)
    (expected_grad,) = torch.autograd.grad(expected, logits)
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-9, abs=1e-12)
    assert torch.allclose(grad, expected_grad, atol=1e-10)
    assert 0.0 < out.metrics["teacher_tail_mass"].item() < 1.0


def test_bounds_the_full_reverse_kl_and_meets_it_when_the_list_is_everything() -> None:
    logits, teacher, _, _, mask = _data(V)
    rows = torch.log_softmax(logits, -1)
    full = opd_full_rkl_loss(rows, teacher, mask).loss
    for k in (2, 5, 8):
        top_lp, top_ids = teacher.topk(k, -1)
        bound = opd_topk_tail_rkl_loss(gather_logprobs(rows, top_ids), top_lp, mask).loss
        assert bound.item() <= full.item() + 1e-12  # data-processing inequality
    top_lp, top_ids = teacher.topk(V, -1)  # the whole vocabulary: the tail is empty
    exact = opd_topk_tail_rkl_loss(gather_logprobs(rows, top_ids), top_lp, mask).loss
    assert exact.item() == pytest.approx(full.item(), rel=1e-6)


def test_short_lists_padding_and_an_empty_tail_stay_finite() -> None:
    logits, _, top_lp, top_ids, mask = _data(4)
    rows = torch.log_softmax(logits, -1)
    top_lp = top_lp.clone()
    top_lp[0, 0, 2:] = float("-inf")  # a short list: those entries join the tail
    out = opd_topk_tail_rkl_loss(gather_logprobs(rows, top_ids), top_lp, mask)
    (grad,) = torch.autograd.grad(out.loss, logits)
    assert torch.isfinite(out.loss) and torch.isfinite(grad).all()
    assert grad[2, 2:].abs().max() == 0  # padding carries no gradient
    # A teacher whose list holds all its mass (tail 0) against a student that does not: the
    # tail's log is floored, so the value is large but finite.
    one_hot = torch.full((B, T, 1), 0.0, dtype=D)
    ids = torch.zeros(B, T, 1, dtype=torch.long)
    out = opd_topk_tail_fkl_loss(gather_logprobs(rows, ids), one_hot, mask)
    assert torch.isfinite(out.loss)


@pytest.mark.parametrize("rest", [-10.0, -14.0, -18.0, -22.0, -26.0, -40.0])
def test_float32_gradient_is_finite_when_the_list_holds_almost_all_the_mass(rest: float) -> None:
    # A student that puts (nearly) all its mass on the teacher's listed tokens: its tail's
    # log is log(1 - exp(~0)). In float32 the branch torch.where drops used to give inf, and
    # 0 * inf = NaN in the gradient (3 skipped updates in 200 steps of a top-20 run).
    logits = torch.full((1, 2, 6), rest)
    logits[..., :3] = torch.tensor([5.0, 4.0, 3.0])
    logits.requires_grad_()
    rows = torch.log_softmax(logits, -1)
    ids = torch.tensor([[[0, 1, 2], [0, 1, 2]]])
    teacher = torch.log_softmax(torch.tensor([[[2.0, 1.0, 0.0, -1.0, -1.0, -1.0]] * 2]), -1)
    top_lp = teacher.gather(-1, ids)
    mask = torch.ones(1, 2, dtype=torch.bool)
    for fn in (opd_topk_tail_rkl_loss, opd_topk_tail_fkl_loss):
        out = fn(gather_logprobs(rows, ids), top_lp, mask)
        (grad,) = torch.autograd.grad(out.loss, logits, retain_graph=True)
        assert torch.isfinite(out.loss) and torch.isfinite(grad).all(), fn.__name__


def test_log1mexp_gradient_is_finite_next_to_zero_in_float32() -> None:
    # The tail's log(1 - exp(x)) at x just below 0 (a list holding all but ~1e-9 of the mass):
    # the branch that torch.where drops used to give -inf there, and 0 * inf = NaN.
    from trainer.objectives.opd import _log1mexp

    x = torch.tensor([-1e-12, -1e-9, -3e-8, -1e-4, -0.5, -0.7, -5.0, -50.0], requires_grad=True)
    (grad,) = torch.autograd.grad(_log1mexp(x).sum(), x)
    assert torch.isfinite(grad).all(), grad
    expected = torch.log(-torch.expm1(x.detach().double()))
    assert torch.allclose(_log1mexp(x).double(), expected, rtol=1e-5)
