"""The Qwen-VL vision towers' attention with one attention call per run of equal-length frames.

transformers' Qwen2-VL / Qwen2.5-VL / Qwen3-VL vision attention, outside flash attention, splits
the packed patch sequence at every frame boundary (`cu_seqlens`) and calls the attention kernel
once per frame: a video of 64 frames is 64 kernel calls per layer, and on a small model the calls'
overhead, not their arithmetic, is the vision tower's cost (forward and backward). The frames of
one video all have the same patch count, so `grouped_vision_attention_forward` stacks each run of
consecutive equal-length frames into one batch (n_frames, heads, patches, head_dim) and calls the
kernel once per run: the same attention (each frame attends only within itself), the same kernel,
far fewer calls. Flash attention (varlen over `cu_seqlens`) keeps the stock path.

`install()` puts it on the vision attention classes of the families we run; it is idempotent and
part of `runtime.hf_compat.apply_hf_patches` (every transformers model we load). The stock forward
stays reachable as `stock_forward(cls)` for comparison (tests/runtime/test_vision_attention.py).
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable
from typing import Any

import torch

from runtime.class_patches import patch_method

# (module, class) of every vision attention whose non-flash path loops over frames.
VISION_ATTENTION_CLASSES = (
    ("transformers.models.qwen2_vl.modeling_qwen2_vl", "VisionAttention"),
    ("transformers.models.qwen2_5_vl.modeling_qwen2_5_vl", "Qwen2_5_VLVisionAttention"),
    ("transformers.models.qwen3_vl.modeling_qwen3_vl", "Qwen3VLVisionAttention"),
    ("transformers.models.qwen3_vl_moe.modeling_qwen3_vl_moe", "Qwen3VLMoeVisionAttention"),
)

_STOCK: dict[type, Callable[..., torch.Tensor]] = {}


def equal_length_runs(lengths: list[int]) -> list[tuple[int, int]]:
    """(length, count) for each run of consecutive equal chunk lengths, in order."""
    return [(length, len(list(run))) for length, run in itertools.groupby(lengths)]


def grouped_vision_attention_forward(
    self: Any,
    hidden_states: torch.Tensor,
    cu_seqlens: torch.Tensor,
    position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
    max_seqlen: int | None = None,
    **kwargs: Any,
) -> torch.Tensor:
    """The stock vision attention forward (block-diagonal attention within each `cu_seqlens`
    chunk), with one kernel call per run of equal-length chunks instead of one per chunk."""
    family = sys.modules[type(self).__module__]
    if family.is_flash_attention_requested(self.config):
        return _STOCK[type(self)](
            self, hidden_states, cu_seqlens, position_embeddings, max_seqlen, **kwargs
        )
    seq_length = hidden_states.shape[0]
    query, key, value = (
        self.qkv(hidden_states).reshape(seq_length, 3, self.num_heads, -1).permute(1, 0, 2, 3)
    ).unbind(0)
    cos, sin = position_embeddings
    query, key = family.apply_rotary_pos_emb_vision(query, key, cos, sin)
    attention = family.ALL_ATTENTION_FUNCTIONS.get_interface(
        self.config._attn_implementation, family.eager_attention_forward
    )
    lengths = (cu_seqlens[1:] - cu_seqlens[:-1]).tolist()
    outputs = []
    start = 0
    for length, count in equal_length_runs(lengths):
        end = start + length * count
        # (patches, heads, dim) -> (frames, heads, patches per frame, dim)
        q, k, v = (
            t[start:end].reshape(count, length, self.num_heads, -1).transpose(1, 2)
            for t in (query, key, value)
        )
        out, _ = attention(
            self,
            q,
            k,
            v,
            attention_mask=None,
            scaling=self.scaling,
            dropout=0.0 if not self.training else self.attention_dropout,
            is_causal=False,
            **kwargs,
        )
        outputs.append(out.reshape(length * count, -1))  # (frames, patches, heads, dim)
        start = end
    attn_output = outputs[0] if len(outputs) == 1 else torch.cat(outputs)
    return self.proj(attn_output.contiguous())


def stock_forward(cls: type) -> Callable[..., torch.Tensor]:
    """The class's forward as transformers ships it (before `install`)."""
    return _STOCK.get(cls, cls.forward)


def install() -> list[type]:
    """Switch every importable vision attention class in VISION_ATTENTION_CLASSES to the grouped
    forward; returns the classes patched (idempotent)."""
    return patch_method(
        VISION_ATTENTION_CLASSES, "forward", grouped_vision_attention_forward, _STOCK
    )
