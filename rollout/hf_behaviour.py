"""Behaviour log-probs recorded during transformers' `generate`, not in a second forward pass.

The transformers engine used to score its completions after sampling them (a full forward pass
over prompt + completion, `runtime.hf_scoring`). `BehaviourLogProbs` records the same numbers
while `generate` runs: it is a logits processor that sees each step's scores after the ban of
vision placeholders and unused vocabulary rows (`suppress_tokens`, which transformers applies
before any processor passed in) and before the temperature and truncation warpers (which it
applies after). It keeps that step's log-softmax at the sampling temperature; the next step's
call reads the token that was sampled from it (the last column of its input ids), and `finish`
reads the final step's token from the returned sequences.

Memory: one (rows, vocab) float32 tensor of the step in flight plus, per step, a (rows,) log-prob
and a (rows, k) top-k, never the (steps, rows, vocab) block that `output_scores` would keep (a
151,936-row vocabulary at 256 rows and 64 steps would be ~10 GB).

Same distribution as the scoring pass: temperature and the ban, no top-k / top-p truncation
(`SamplingConfig` documents the difference to vLLM's processed log-probs).
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor


class BehaviourLogProbs(LogitsProcessor):
    """A `generate` logits processor that records the sampled tokens' log-probs (and top-k).

    temperature: the sampling temperature (1 for greedy); top_k: how many of the most likely
    tokens to keep per step (0: none). Use one instance per `generate` call, then `finish`.
    """

    def __init__(self, temperature: float, top_k: int = 0) -> None:
        """Start with nothing recorded."""
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.top_k = top_k
        self._pending: torch.Tensor | None = None
        self._logprobs: list[torch.Tensor] = []
        self._topk_ids: list[torch.Tensor] = []
        self._topk_logprobs: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """Record the previous step's sampled token; keep this step's log-softmax; pass the
        scores on unchanged."""
        self._take(input_ids[:, -1])
        pending = torch.log_softmax(scores.float() / self.temperature, dim=-1)
        if self.top_k > 0:
            values, ids = pending.topk(min(self.top_k, pending.shape[-1]), dim=-1)
            self._topk_logprobs.append(values)
            self._topk_ids.append(ids)
        self._pending = pending
        return scores

    def _take(self, tokens: torch.Tensor) -> None:
        """The log-prob of `tokens` (one per row) under the step in flight, if any."""
        if self._pending is None:
            return
        self._logprobs.append(self._pending.gather(-1, tokens[:, None].long()).squeeze(-1))
        self._pending = None

    def finish(self, sequences: torch.Tensor) -> dict[str, torch.Tensor]:
        """Close the record with the sequences `generate` returned.

        Returns "logprobs" (rows, steps) and, with top_k > 0, "topk_ids" / "topk_logprobs"
        (rows, steps, k), on the scores' device, float32; step j is the j-th generated token
        (rows that stopped early carry values for their padding too: cut them at the row's end).
        """
        self._take(sequences[:, -1])
        if not self._logprobs:
            rows = sequences.shape[0]
            empty = torch.zeros(rows, 0, dtype=torch.float32, device=sequences.device)
            out = {"logprobs": empty}
            if self.top_k > 0:
                out["topk_ids"] = torch.zeros(rows, 0, self.top_k, dtype=torch.long)
                out["topk_logprobs"] = torch.zeros(rows, 0, self.top_k)
            return out
        out = {"logprobs": torch.stack(self._logprobs, dim=1)}
        if self.top_k > 0:
            out["topk_ids"] = torch.stack(self._topk_ids, dim=1)
            out["topk_logprobs"] = torch.stack(self._topk_logprobs, dim=1)
        return out
