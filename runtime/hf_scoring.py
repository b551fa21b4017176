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

import dataclasses
import functools
import inspect
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from runtime.processed_prompts import PromptCache, process_prompts, right_padded
from runtime.prompting import prompt_text, vision_placeholder_ids
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
    # Each item's prompt key when built from a `PromptCache` (None for an item it does not
    # keep), for per-prompt caches downstream (`runtime.vision_features`); None without one.
    prompt_keys: list[Any] | None = None


def build_hf_batch(
    processor: Any, items: Sequence[ScoringItem], cache: PromptCache | None = None
) -> HFBatch:
    """Build right-padded model inputs (expanded prompt + completion ids) for a batch of items.

    One processor call for the whole batch (the same ids and pixel values as one call per item,
    tested; the per-call overhead of the processor's keyword handling is paid once). With a
    `cache` (`runtime.processed_prompts.PromptCache`) the prompts it holds are not processed
    again; the inputs are the same either way (tested)."""
    tokenizer = processor.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    texts = [prompt_text(tokenizer, item.query, item.prompt_style) for item in items]
    visions = [item.vision for item in items]
    entries = (
        cache.get(processor, texts, visions)
        if cache is not None
        else process_prompts(processor, texts, visions)
    )
    completions = [item.completion_ids for item in items]
    return HFBatch(
        inputs=right_padded(entries, completions, pad_id),
        prompt_lengths=[len(e.input_ids) for e in entries],
        completion_lengths=[len(c) for c in completions],
        prompt_keys=[e.key for e in entries] if cache is not None else None,
    )


def _backbone(model: Any) -> Any:
    """The transformers backbone (the part holding `get_rope_index`) of a model or of a DeepSpeed
    engine wrapping one; None when it has none."""
    inner = getattr(model, "module", None)
    if not isinstance(inner, torch.nn.Module):
        inner = model
    backbone = getattr(inner, "model", None)
    return backbone if callable(getattr(backbone, "get_rope_index", None)) else None


def position_rule(model: Any) -> tuple[Any, ...] | None:
    """What a model's 3-D (M-RoPE) position ids depend on besides its inputs: the family and the
    vision settings its `get_rope_index` reads. Two models with equal rules give equal position ids
    for one batch; None for a model without `get_rope_index` (nothing to share)."""
    backbone = _backbone(model)
    if backbone is None:
        return None
    vision = getattr(backbone.config, "vision_config", None)
    return (
        type(backbone).__name__,
        getattr(vision, "spatial_merge_size", None),
        getattr(vision, "tokens_per_second", None),
    )


def same_position_rule(first: Any, second: Any) -> bool:
    """Whether two models compute equal 3-D position ids for any batch (equal `position_rule`s;
    False when either has none)."""
    rule = position_rule(first)
    return rule is not None and rule == position_rule(second)


@functools.cache
def _rope_index_arguments(backbone_class: type) -> frozenset[str]:
    """The keyword arguments a backbone class's `get_rope_index` names."""
    return frozenset(inspect.signature(backbone_class.get_rope_index).parameters)


def with_position_ids(model: Any, batch: HFBatch) -> HFBatch:
    """`batch` with "position_ids" in its inputs: the 3-D position ids `model`'s forward would
    compute for it (its `get_rope_index`), computed once here so that a second model with the same
    `position_rule` (a co-located teacher) skips that work. Unchanged for a model without
    `get_rope_index` and for a batch without vision inputs (each model's own default then
    applies); `batch` itself is not modified."""
    backbone = _backbone(model)
    has_vision = any(key in batch.inputs for key in ("video_grid_thw", "image_grid_thw"))
    if backbone is None or not has_vision or "position_ids" in batch.inputs:
        return batch
    accepted = _rope_index_arguments(type(backbone))
    inputs = {k: v for k, v in batch.inputs.items() if k in accepted}
    inputs = inputs_on_model_device(model, inputs)
    with torch.no_grad():
        position_ids, _ = backbone.get_rope_index(**inputs)
    return dataclasses.replace(batch, inputs={**batch.inputs, "position_ids": position_ids})


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


def inputs_on_model_device(model: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    """`inputs` with every tensor moved to the model's device when that is not the CPU (a GPU
    learner, teacher or engine: inputs follow); unchanged otherwise."""
    device = model_device(model)
    if device is None or device.type == "cpu":
        return inputs
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}


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


def output_head(model: Any) -> torch.nn.Module:
    """The LM head of a transformers model or of a DeepSpeed engine wrapping one."""
    inner = getattr(model, "module", None)
    if not isinstance(inner, torch.nn.Module):
        inner = model
    head = inner.get_output_embeddings()
    if not isinstance(head, torch.nn.Module):
        raise TypeError(f"{type(inner).__name__} has no output embeddings (LM head)")
    return head


@contextmanager
def lm_head_only_at(model: Any, rows: torch.Tensor, cols: torch.Tensor) -> Iterator[None]:
    """Within the block, the model's LM head sees only the hidden states at (rows, cols).

    The model's forward runs unchanged (the same backbone, the same DeepSpeed hooks when `model`
    is an engine), but its LM head receives hidden[rows, cols] (N, H) instead of hidden (B, L, H),
    so the forward returns logits (N, V): one row per kept position, in the order given.
    transformers' own `logits_to_keep` takes one set of positions for every row of the batch,
    which a right-padded batch of unequal prompts does not have.
    """

    def gather(_module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        hidden = args[0]
        return (hidden[rows.to(hidden.device), cols.to(hidden.device)], *args[1:])

    handle = output_head(model).register_forward_pre_hook(gather)
    try:
        yield
    finally:
        handle.remove()


def completion_positions(batch: HFBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, column) of every position whose logit predicts a completion token, item by item.

    The logit at column j predicts token j + 1, so item i's completion of length c_i starting at
    its prompt length p_i is predicted from columns p_i - 1 ... p_i + c_i - 2.
    """
    rows: list[torch.Tensor] = []
    cols: list[torch.Tensor] = []
    for i, (p_len, c_len) in enumerate(
        zip(batch.prompt_lengths, batch.completion_lengths, strict=True)
    ):
        rows.append(torch.full((c_len,), i, dtype=torch.long))
        cols.append(torch.arange(p_len - 1, p_len - 1 + c_len, dtype=torch.long))
    return torch.cat(rows), torch.cat(cols)


def completion_log_probs(
    model: Any,
    processor: Any,
    items: Sequence[ScoringItem],
    temperature: float = 1.0,
    top_k: int = 0,
    return_rows: bool = False,
    completion_logits_only: bool = True,
    cache: PromptCache | None = None,
) -> list[dict[str, torch.Tensor]]:
    """Per completion token: log-prob of the sampled token (and the top-k) under `model`.

    Returns one dict per item: "logprobs" (T,), "entropy" (T,), "prompt_tokens" (a 0-d int64
    tensor: the prompt's length as the model ran it, vision tokens expanded), with top_k > 0
    "topk_ids" (T, k) and
    "topk_logprobs" (T, k), and with return_rows the full log-prob rows "rows" (T, V); tensors
    are on the model's device, in float32 (log-softmax is computed in float32 under bf16).
    Gradients flow through "logprobs", "topk_logprobs" and "rows" when called outside
    `torch.no_grad()` (the learner); "entropy" is a detached diagnostic (no objective
    differentiates it, and its graph would hold three more (T, V) tensors).

    completion_logits_only (default): the LM head, masking and log-softmax run only at the
    positions that predict completion tokens (`lm_head_only_at`), not over the whole prompt (the
    video's vision tokens included); False computes the logits of every position first (the
    former path, kept for comparison: same results to float tolerance, far more memory with a
    long prompt and a large vocabulary). cache: processed prompts kept between calls
    (`build_hf_batch`).
    """
    return batch_log_probs(
        model,
        processor,
        build_hf_batch(processor, items, cache),
        temperature=temperature,
        top_k=top_k,
        return_rows=return_rows,
        completion_logits_only=completion_logits_only,
    )


def batch_log_probs(
    model: Any,
    processor: Any,
    batch: HFBatch,
    temperature: float = 1.0,
    top_k: int = 0,
    return_rows: bool = False,
    completion_logits_only: bool = True,
) -> list[dict[str, torch.Tensor]]:
    """`completion_log_probs` of a batch already built by `build_hf_batch`: one processor pass
    can then serve two models with the same processor settings (the student and a co-located
    teacher); `batch` is not modified."""
    banned = vision_placeholder_ids(processor.tokenizer)
    num_tokens = len(processor.tokenizer)
    inputs = inputs_on_model_device(model, batch.inputs)
    if completion_logits_only:
        rows, cols = completion_positions(batch)
        with lm_head_only_at(model, rows, cols):
            packed = model(**inputs, use_cache=False).logits
        if packed.shape[:-1] != rows.shape:
            raise RuntimeError(
                f"{type(model).__name__}: expected logits for {rows.numel()} positions from its "
                f"LM head, got shape {tuple(packed.shape)}"
            )
        per_item = list(packed.split(batch.completion_lengths))
    else:
        logits = model(**inputs, use_cache=False).logits
        # The logit at position j predicts token j + 1.
        per_item = [
            logits[i, p_len - 1 : p_len - 1 + c_len]
            for i, (p_len, c_len) in enumerate(
                zip(batch.prompt_lengths, batch.completion_lengths, strict=True)
            )
        ]
    results: list[dict[str, torch.Tensor]] = []
    for i, (step_logits, p_len, c_len) in enumerate(
        zip(per_item, batch.prompt_lengths, batch.completion_lengths, strict=True)
    ):
        log_probs = masked_log_softmax(step_logits, banned, temperature, num_tokens)
        targets = inputs["input_ids"][i, p_len : p_len + c_len]
        with torch.no_grad():
            # Entropy of the (masked) distribution at each completion position.
            probs = log_probs.exp()
            entropy = -(probs * torch.where(probs > 0, log_probs, 0.0)).sum(-1)
        out = {
            "logprobs": log_probs.gather(1, targets[:, None])[:, 0],
            "entropy": entropy,
            "prompt_tokens": torch.tensor(int(p_len)),
        }
        if top_k > 0:
            values, ids = log_probs.topk(top_k, dim=-1)
            out["topk_ids"], out["topk_logprobs"] = ids, values
        if return_rows:
            out["rows"] = log_probs
        results.append(out)
    return results
