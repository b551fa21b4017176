"""SFT: token-level cross-entropy against hand-worked numbers and torch's cross_entropy."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from trainer.objectives import sft_loss

D = torch.float64
LN2 = math.log(2.0)

# Two targets: log-probs [[ln 0.5, ln 0.25], [ln 1, pad]] -> NLL [[ln 2, 2 ln 2], [0, -]]
#   token_mean = 3 ln2 / 3 = ln 2; seq_mean = (1.5 ln 2 + 0) / 2 = 0.75 ln 2
#   seq_mean_token_sum = (3 ln 2 + 0) / 2 = 1.5 ln 2; sum = 3 ln 2
LOGP = [[math.log(0.5), math.log(0.25)], [0.0, float("nan")]]
MASK = [[1, 1], [1, 0]]


@pytest.mark.parametrize(
    ("aggregation", "expected"),
    [
        ("token_mean", LN2),
        ("seq_mean", 0.75 * LN2),
        ("seq_mean_token_sum", 1.5 * LN2),
        ("sum", 3 * LN2),
    ],
)
def test_sft_hand(aggregation: str, expected: float) -> None:
    logp = torch.tensor(LOGP, dtype=D, requires_grad=True)
    out = sft_loss(logp, torch.tensor(MASK), aggregation=aggregation)
    assert out.loss.item() == pytest.approx(expected)
    out.loss.backward()
    assert torch.isfinite(logp.grad).all()
    assert logp.grad[1, 1].item() == 0.0


def test_sft_default_gradient_and_metrics() -> None:
    logp = torch.tensor(LOGP, dtype=D, requires_grad=True)
    out = sft_loss(logp, torch.tensor(MASK))
    out.loss.backward()
    assert torch.allclose(logp.grad, torch.tensor([[-1 / 3, -1 / 3], [-1 / 3, 0.0]], dtype=D))
    assert out.metrics["nll"].item() == pytest.approx(LN2)
    assert int(out.metrics["tokens"]) == 3


def test_sft_rejects_nan_at_trained_position() -> None:
    bad = torch.tensor([[math.log(0.5), float("nan")]], dtype=D)
    with pytest.raises(ValueError, match="logprobs"):
        sft_loss(bad, torch.ones(1, 2))
    with pytest.raises(ValueError, match="shape"):
        sft_loss(bad, torch.ones(1, 3))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 4), st.integers(1, 5))
def test_sft_equals_torch_cross_entropy(seed: int, batch: int, length: int) -> None:
    """token_mean SFT on log_softmax rows == F.cross_entropy with ignore_index for the padding."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, length, 11, dtype=D, generator=gen)
    targets = torch.randint(0, 11, (batch, length), generator=gen)
    mask = torch.rand(batch, length, generator=gen) > 0.3
    mask[0, 0] = True
    logp = torch.log_softmax(logits, -1).gather(-1, targets[..., None])[..., 0]
    ours = sft_loss(logp, mask).loss
    ref = F.cross_entropy(
        logits.reshape(-1, 11), targets.masked_fill(~mask, -100).reshape(-1), ignore_index=-100
    )
    assert ours.item() == pytest.approx(ref.item())
