"""Per-token log-probabilities of completions under a transformers model, with the vision inputs.

One implementation for every transformers-side consumer: the reference engine, the teacher's
transformers backend and the learner. Inputs are built exactly as vLLM builds them: the prompt's
chat text goes through the model's processor with the video (which expands the vision
placeholders), then the completion ids are appended as ids (never re-tokenised from text).
Vision placeholder tokens are masked to -inf before the softmax, as they are banned at sampling,
and so are the unused ids of a padded vocabulary (config.vocab_size > len(tokenizer), as in Qwen's
checkpoints), which the vLLM sampler never allows either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rollout.prompting import prompt_text, vision_placeholder_ids
from tvg.vision_inputs import VisionInputs


@dataclass
class ScoringItem:
    """One sequence to score: its prompt (query + style + vision inputs) and completion ids."""

    query: str
    prompt_style: str
    vision: VisionInputs
    completion_ids: Sequence[int]


@dataclass
class HFBatch:
    """Model inputs for a right-padded batch, and where each completion sits in it."""

    inputs: dict[str, torch.Tensor]
    prompt_lengths: list[int]
    completion_lengths: list[int]


def build_hf_batch(processor: Any, items: Sequence[ScoringItem]) -> HFBatch:
    """Build right-padded model inputs (expanded prompt + completion ids) for a batch of items."""
    tokenizer = processor.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    rows: list[list[int]] = []
    type_rows: list[list[int]] = []
    pixel_values: list[torch.Tensor] = []
    grids: list[torch.Tensor] = []
    seconds: list[torch.Tensor] = []
    prompt_lengths: list[int] = []
    for item in items:
        text = prompt_text(tokenizer, item.query, item.prompt_style)
        encoded = processor(text=[text], return_tensors="pt", **item.vision.hf_processor_kwargs())
        prompt_ids = encoded["input_ids"][0].tolist()
        completion = [int(t) for t in item.completion_ids]
        rows.append(prompt_ids + completion)
        prompt_lengths.append(len(prompt_ids))
        if "mm_token_type_ids" in encoded:
            type_rows.append(encoded["mm_token_type_ids"][0].tolist() + [0] * len(completion))
        pixel_values.append(encoded["pixel_values_videos"])
        grids.append(encoded["video_grid_thw"])
        if "second_per_grid_ts" in encoded:
            seconds.append(torch.as_tensor(encoded["second_per_grid_ts"]).reshape(-1))
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = torch.tensor(row)
        attention[i, : len(row)] = 1
    inputs: dict[str, torch.Tensor] = {
        "input_ids": input_ids,
        "attention_mask": attention,
        "pixel_values_videos": torch.cat(pixel_values, dim=0),
        "video_grid_thw": torch.cat(grids, dim=0),
    }
    if type_rows:
        types = torch.zeros((len(rows), width), dtype=torch.int32)
        for i, row in enumerate(type_rows):
            types[i, : len(row)] = torch.tensor(row, dtype=torch.int32)
        inputs["mm_token_type_ids"] = types
    if seconds:
        inputs["second_per_grid_ts"] = torch.cat(seconds)
    return HFBatch(
        inputs=inputs,
        prompt_lengths=prompt_lengths,
        completion_lengths=[len(item.completion_ids) for item in items],
    )


def masked_log_softmax(
    logits: torch.Tensor,
    banned_ids: Sequence[int],
    temperature: float = 1.0,
    num_tokens: int | None = None,
) -> torch.Tensor:
    """log_softmax(logits / temperature) with the banned token ids set to -inf first.

    num_tokens: the tokenizer's length; ids from it up to the logits' width (the unused rows of a
    padded vocabulary) are set to -inf too. None = no padding.
    """
    scaled = logits.float() / temperature
    padded = num_tokens is not None and num_tokens < scaled.shape[-1]
    if banned_ids or padded:
        scaled = scaled.clone()
    if banned_ids:
        scaled[..., list(banned_ids)] = float("-inf")
    if padded:
        scaled[..., num_tokens:] = float("-inf")
    return torch.log_softmax(scaled, dim=-1)


def model_device(model: Any) -> torch.device | None:
    """Where a model (a transformers model or a DeepSpeed engine) keeps its weights."""
    device = getattr(model, "device", None)
    if isinstance(device, torch.device):
        return device
    if isinstance(device, str):
        return torch.device(device)
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration, TypeError):
        return None


def completion_log_probs(
    model: Any,
    processor: Any,
    items: Sequence[ScoringItem],
    temperature: float = 1.0,
    top_k: int = 0,
    return_rows: bool = False,
) -> list[dict[str, torch.Tensor]]:
    """Per completion token: log-prob of the sampled token (and the top-k) under `model`.

    Returns one dict per item: "logprobs" (T,), "entropy" (T,), with top_k > 0 "topk_ids" (T, k) and
    "topk_logprobs" (T, k), and with return_rows the full log-prob rows "rows" (T, V); tensors
    are on the model's device, in float32 (log-softmax is computed in float32 under bf16).
    Gradients flow when called outside `torch.no_grad()` (the learner).
    """
    batch = build_hf_batch(processor, items)
    banned = vision_placeholder_ids(processor.tokenizer)
    num_tokens = len(processor.tokenizer)
    device = model_device(model)
    if device is not None and device.type != "cpu":  # GPU learner / reference: inputs follow
        batch.inputs = {
            k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.inputs.items()
        }
    logits = model(**batch.inputs).logits
    results: list[dict[str, torch.Tensor]] = []
    for i, (p_len, c_len) in enumerate(
        zip(batch.prompt_lengths, batch.completion_lengths, strict=True)
    ):
        # The logit at position j predicts token j + 1.
        step_logits = logits[i, p_len - 1 : p_len - 1 + c_len]
        log_probs = masked_log_softmax(step_logits, banned, temperature, num_tokens)
        targets = batch.inputs["input_ids"][i, p_len : p_len + c_len]
        probs = log_probs.exp()
        out = {
            "logprobs": log_probs.gather(1, targets[:, None])[:, 0],
            # Entropy of the (masked) distribution at each completion position.
            "entropy": -(probs * torch.where(probs > 0, log_probs, 0.0)).sum(-1),
        }
        if top_k > 0:
            values, ids = log_probs.topk(top_k, dim=-1)
            out["topk_ids"], out["topk_logprobs"] = ids, values
        if return_rows:
            out["rows"] = log_probs
        results.append(out)
    return results
