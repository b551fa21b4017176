"""Shared pieces of the objectives: the result type, input validation, token aggregation.

Conventions used by every objective in this package:

- Per-token tensors are padded to (B, T): B completions, T the longest completion. `mask` (B, T) is
  1 / True on completion tokens that are trained (prompt and padding excluded) and 0 elsewhere.
- Top-k / full-vocabulary tensors are (B, T, K) / (B, T, V).
- Values at padding positions are ignored: they are never checked and are replaced by zeros before
  use, so a non-finite pad can reach neither the loss nor the gradient.
- Every value at a trained position must be finite, else a ValueError names the tensor. Log-prob
  rows over a vocabulary or a support may hold -inf (vision placeholder tokens are masked to -inf,
  see runtime.hf_scoring.masked_log_softmax) but never NaN or +inf.

This module imports only torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

Aggregation = Literal[
    "token_mean", "seq_mean_token_mean", "seq_mean_token_sum", "seq_mean_token_sum_norm", "sum"
]

AGGREGATIONS: tuple[str, ...] = (
    "token_mean",
    "seq_mean_token_mean",
    "seq_mean_token_sum",
    "seq_mean_token_sum_norm",
    "sum",
)

# Short names accepted everywhere (the OPD options of issue 6 use them).
AGGREGATION_ALIASES: dict[str, str] = {
    "seq_mean": "seq_mean_token_mean",
    "seq_sum": "seq_mean_token_sum",
    "dr_grpo": "seq_mean_token_sum_norm",
}


@dataclass(frozen=True)
class LossOutput:
    """What every objective returns.

    loss: scalar tensor to call backward() on.
    metrics: detached 0-d tensors for logging (callers decide when to .item() them).
    """

    loss: torch.Tensor
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)


def resolve_aggregation(mode: str) -> str:
    """Canonical aggregation name of `mode` (aliases resolved); ValueError when unknown."""
    canonical = AGGREGATION_ALIASES.get(mode, mode)
    if canonical not in AGGREGATIONS:
        known = ", ".join(AGGREGATIONS + tuple(AGGREGATION_ALIASES))
        raise ValueError(f"unknown aggregation {mode!r}; known: {known}")
    return canonical


def as_bool_mask(mask: torch.Tensor, name: str = "mask") -> torch.Tensor:
    """`mask` as a bool tensor; ValueError when it holds values other than 0 / 1."""
    if mask.dtype == torch.bool:
        return mask
    if torch.is_floating_point(mask) and not bool(torch.isfinite(mask).all()):
        raise ValueError(f"{name} holds NaN or inf")
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError(f"{name} must hold only 0 and 1")
    return mask != 0


def check_shape(name: str, tensor: torch.Tensor, shape: tuple[int, ...] | torch.Size) -> None:
    """ValueError naming `name` when `tensor.shape != shape`."""
    if tuple(tensor.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(tensor.shape)}, expected {tuple(shape)}")


class NonFiniteInputError(ValueError):
    """An objective input holds NaN or inf at a trained position (the learner skips the step)."""


def check_finite(name: str, tensor: torch.Tensor, mask: torch.Tensor | None = None) -> None:
    """NonFiniteInputError (a ValueError) naming `name` when a masked-in entry is NaN or +-inf.

    `mask` (broadcastable to the leading dims of `tensor`) selects the positions checked; None
    checks every entry.
    """
    if not torch.is_floating_point(tensor):
        return
    bad = ~torch.isfinite(tensor.detach())
    if mask is not None:
        while mask.dim() < bad.dim():
            mask = mask.unsqueeze(-1)
        bad = bad & mask
    if bool(bad.any()):
        kind = "NaN" if bool((torch.isnan(tensor.detach()) & bad).any()) else "inf"
        raise NonFiniteInputError(f"{name} holds {kind} at {int(bad.sum())} trained position(s)")


def check_logprob_rows(name: str, rows: torch.Tensor, mask: torch.Tensor) -> None:
    """Log-prob rows (B, T, N): -inf allowed (masked tokens), NaN / +inf not, one finite per row."""
    detached = rows.detach()
    sel = mask.unsqueeze(-1)
    if bool((torch.isnan(detached) & sel).any()):
        raise ValueError(f"{name} holds NaN at a trained position")
    if bool(((detached == float("inf")) & sel).any()):
        raise ValueError(f"{name} holds +inf at a trained position")
    if bool((~torch.isfinite(detached).any(dim=-1) & mask).any()):
        raise ValueError(f"{name} has a trained position whose row is entirely -inf")


def validate_token_tensors(
    mask: torch.Tensor, ndim: int = 2, **tensors: torch.Tensor | None
) -> torch.Tensor:
    """Check named per-token tensors against `mask` (shape and finiteness); return the bool mask.

    Every tensor given must have `mask`'s shape; None entries are skipped.
    """
    if mask.dim() != ndim:
        raise ValueError(f"mask must be {ndim}-D (B, T), got shape {tuple(mask.shape)}")
    bool_mask = as_bool_mask(mask)
    for name, tensor in tensors.items():
        if tensor is None:
            continue
        check_shape(name, tensor, mask.shape)
        check_finite(name, tensor, bool_mask)
    return bool_mask


def zero_pad(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`values` with every position outside `mask` set to 0 (no gradient flows from padding)."""
    while mask.dim() < values.dim():
        mask = mask.unsqueeze(-1)
    return torch.where(mask, values, torch.zeros((), dtype=values.dtype, device=values.device))


def aggregate(
    values: torch.Tensor,
    mask: torch.Tensor,
    mode: str = "token_mean",
    constant_normalizer: float | None = None,
) -> torch.Tensor:
    """Reduce per-token values (B, T) to a scalar over the positions in `mask` (B, T).

    Modes (n_b = trained tokens of sequence b, B = number of sequences with n_b > 0, so that a
    row whose mask was zeroed, e.g. by dynamic filtering, does not dilute the loss):

    - "token_mean":  sum_{b,t} v / sum_b n_b  (DAPO's token-level mean over the whole batch; verl
      "token-mean"; TRL loss_type "dapo").
    - "seq_mean_token_mean" (alias "seq_mean"): (1/B) sum_b (1/n_b) sum_t v  (the original GRPO,
      Shao et al. 2024; verl "seq-mean-token-mean").
    - "seq_mean_token_sum" (alias "seq_sum"): (1/B) sum_b sum_t v  (verl "seq-mean-token-sum"; the
      published Video-OPD loss, whose released code sums a micro-batch of one completion).
    - "seq_mean_token_sum_norm" (alias "dr_grpo"): sum_{b,t} v / (B * L) with L a constant
      (Dr.GRPO, Liu et al. 2025; verl "seq-mean-token-sum-norm"); L = `constant_normalizer`, by
      default T (the padded length). Makes the gradient independent of each completion's length.
    - "sum": sum_{b,t} v (the plain sum over the batch).

    An all-zero mask gives 0 (with a gradient path), not NaN.
    """
    mode = resolve_aggregation(mode)
    check_shape("values", values, mask.shape)
    mask = as_bool_mask(mask)
    masked = zero_pad(values, mask)
    weights = mask.to(values.dtype)
    num_seqs = int(mask.any(dim=-1).sum())
    if mode == "sum":
        return masked.sum()
    if mode == "token_mean":
        return masked.sum() / weights.sum().clamp_min(1.0)
    if mode == "seq_mean_token_mean":
        per_seq = masked.sum(dim=-1) / weights.sum(dim=-1).clamp_min(1.0)
        return per_seq.sum() / max(num_seqs, 1)
    if mode == "seq_mean_token_sum":
        return masked.sum() / max(num_seqs, 1)
    # seq_mean_token_sum_norm
    norm = float(values.shape[-1]) if constant_normalizer is None else float(constant_normalizer)
    if norm <= 0:
        raise ValueError(f"constant_normalizer must be > 0, got {constant_normalizer!r}")
    return masked.sum() / (max(num_seqs, 1) * norm)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `values` over `mask` (0 when the mask is empty), detached: for metrics only."""
    mask = as_bool_mask(mask)
    count = mask.sum().clamp_min(1)
    return (zero_pad(values.detach(), mask).sum() / count).to(values.dtype)
