"""Supervised fine-tuning: token-level cross-entropy on given target completions.

The reference arm every comparison needs (docs/GENERATED_DATA.md: on the synthetic task SFT on the
ground-truth answers was faster than OPD and ended above the teacher). Targets are the
ground-truth answers (tvg.prompts answer templates) or the teacher's own outputs (off-policy
distillation, "sequence-level KD"); the caller tokenises them and computes log-probs with the same
vision-placeholder masking as every other objective. This module imports only torch.
"""

from __future__ import annotations

import torch

from trainer.objectives._common import LossOutput, aggregate, masked_mean, validate_token_tensors


def sft_loss(
    logprobs: torch.Tensor,
    mask: torch.Tensor,
    *,
    aggregation: str = "token_mean",
    constant_normalizer: float | None = None,
) -> LossOutput:
    """Negative log-likelihood of the target tokens:

        L = aggregate_t ( -log pi_theta(y*_t | x, y*_<t) )

    with y* the target completion (teacher-forced). Default aggregation "token_mean" = the usual
    cross-entropy averaged over every target token of the batch (transformers' causal-LM loss);
    "seq_mean_token_mean", "seq_mean_token_sum", "sum" as in `aggregate`. Source: standard
    maximum likelihood; the prototype's control arm (docs/GENERATED_DATA.md; loss on the answer
    tokens and the end token only).

    Args:
        logprobs: (B, T) log pi_theta of the target tokens, with gradient.
        mask: (B, T) 1 on trained target tokens (the answer and its end token).

    Metrics: "nll" (mean per-token negative log-likelihood), "tokens".
    """
    bool_mask = validate_token_tensors(mask, logprobs=logprobs)
    nll = -logprobs
    loss = aggregate(nll, bool_mask, aggregation, constant_normalizer)
    return LossOutput(loss, {"nll": masked_mean(nll, bool_mask), "tokens": bool_mask.sum()})
