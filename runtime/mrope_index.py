"""Qwen3-VL's 3-D (M-RoPE) position ids computed with array operations instead of Python loops.

transformers' `Qwen3VLModel.get_rope_index` walks every row token run by token run: it groups the
row's token types with `itertools.groupby` over a Python list, and for every frame (Qwen3-VL
separates frames with timestamp text, so each frame is a run of its own) builds a meshgrid and
concatenates the pieces. On the demo's micro-batch (8 rows of ~250 tokens, ~10 frames each) that
is ~8 ms of the learner's step on one CPU thread, paid once by the learner (its co-located teacher
takes the same ids) and again by every teacher worker that scores the batch in the separate
layout.

`qwen3_vl_rope_index` computes the same ids from the run boundaries in one pass per row:
- a text run of length n starting at position p gives p..p+n-1 in all three rows, and advances p
  by n;
- an image or video run takes the next grid of its modality (videos split into one grid per
  frame, as transformers does), gives the token at offset k within the run
  (p + k // (h*w), p + (k % (h*w)) // w, p + k % w) with h, w the merged grid, and advances p by
  max(H, W) // spatial_merge_size.
The returned ids and deltas are equal to transformers' (tests/runtime/test_mrope_index.py compares
them on the demo's batches and on random layouts); where a row's runs do not match the grids (a
layout transformers itself rejects or reads differently) it hands the whole call to the stock
implementation, so every error and edge case stays transformers' own.

`install()` puts it on Qwen3-VL and Qwen3-VL-MoE (whose method is the same code); it is
idempotent and part of `runtime.hf_compat.apply_hf_patches`. The stock method stays reachable as
`stock_rope_index(cls)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from runtime.class_patches import patch_method

# (module, class) of every model whose get_rope_index is transformers' Qwen3-VL one.
QWEN3_VL_MODELS = (
    ("transformers.models.qwen3_vl.modeling_qwen3_vl", "Qwen3VLModel"),
    ("transformers.models.qwen3_vl_moe.modeling_qwen3_vl_moe", "Qwen3VLMoeModel"),
)

_STOCK: dict[type, Callable[..., tuple[torch.Tensor, torch.Tensor]]] = {}


class _Mismatch(Exception):
    """A row whose runs do not line up with the grids: the stock method decides what it means."""


def _grids(grid_thw: torch.Tensor | None, split_frames: bool) -> np.ndarray:
    """(N, 3) int64 grids in consumption order; videos split into one (1, H, W) grid per frame."""
    if grid_thw is None:
        return np.zeros((0, 3), dtype=np.int64)
    grids = grid_thw.detach().cpu().numpy().astype(np.int64).reshape(-1, 3)
    if split_frames:
        grids = np.repeat(grids, grids[:, 0], axis=0)
        grids[:, 0] = 1
    return grids


def _row_positions(
    types: np.ndarray, grids: dict[int, np.ndarray], used: dict[int, int], merge: int
) -> np.ndarray:
    """(3, n) position ids of one row's kept tokens; advances `used` past the grids it took."""
    n = types.shape[0]
    if n == 0:
        raise _Mismatch
    starts = np.flatnonzero(np.concatenate(([True], types[1:] != types[:-1])))
    lengths = np.diff(np.append(starts, n))
    run_types = types[starts]
    runs = starts.shape[0]
    t_len = np.ones(runs, dtype=np.int64)  # merged grid per run (text runs: 1 x 1 x length)
    h_len = np.ones(runs, dtype=np.int64)
    w_len = lengths.astype(np.int64)
    advance = lengths.astype(np.int64)
    for modality in (1, 2):
        at = np.flatnonzero(run_types == modality)
        if at.size == 0:
            continue
        first = used[modality]
        taken = grids[modality][first : first + at.size]
        if taken.shape[0] != at.size:
            raise _Mismatch
        used[modality] = first + at.size
        t_len[at] = taken[:, 0]
        h_len[at] = taken[:, 1] // merge
        w_len[at] = taken[:, 2] // merge
        advance[at] = np.maximum(taken[:, 1], taken[:, 2]) // merge
    if not np.isin(run_types, (0, 1, 2)).all() or np.any(t_len * h_len * w_len != lengths):
        raise _Mismatch
    base = np.concatenate(([0], np.cumsum(advance)[:-1]))
    run_of = np.repeat(np.arange(runs), lengths)
    offset = np.arange(n, dtype=np.int64) - np.repeat(starts, lengths)
    area = (h_len * w_len)[run_of]
    width = w_len[run_of]
    start = base[run_of]
    text = (run_types == 0)[run_of]
    return start + np.stack(
        (
            np.where(text, offset, offset // area),
            np.where(text, offset, (offset % area) // width),
            np.where(text, offset, offset % width),
        )
    )


def qwen3_vl_rope_index(
    self: Any,
    input_ids: torch.LongTensor,
    mm_token_type_ids: torch.IntTensor,
    image_grid_thw: torch.LongTensor | None = None,
    video_grid_thw: torch.LongTensor | None = None,
    attention_mask: torch.Tensor | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Qwen3-VL's `get_rope_index`: (3, batch, length) position ids and (batch, 1) deltas, equal
    to transformers' (padding positions 0), computed per row from its token runs."""
    merge = self.config.vision_config.spatial_merge_size
    types = mm_token_type_ids.detach().cpu().numpy()
    keep = (
        attention_mask.detach().cpu().numpy().astype(bool)
        if attention_mask is not None
        else np.ones(types.shape, dtype=bool)
    )
    grids = {1: _grids(image_grid_thw, False), 2: _grids(video_grid_thw, True)}
    used = {1: 0, 2: 0}
    positions = np.zeros((3, *types.shape), dtype=np.int64)
    deltas = []
    try:
        for row in range(types.shape[0]):
            row_ids = _row_positions(types[row][keep[row]], grids, used, merge)
            positions[:, row, keep[row]] = row_ids
            deltas.append(int(row_ids.max()) + 1 - row_ids.shape[1])
    except _Mismatch:
        return _stock_for(type(self))(
            self,
            input_ids,
            mm_token_type_ids,
            image_grid_thw=image_grid_thw,
            video_grid_thw=video_grid_thw,
            attention_mask=attention_mask,
            **kwargs,
        )
    device = input_ids.device
    return (
        torch.from_numpy(positions).to(device=device, dtype=input_ids.dtype),
        torch.tensor(deltas, device=device).unsqueeze(1),
    )


def _stock_for(cls: type) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """The stock method `cls` inherits (any installed one for a class outside those families:
    they are the same code)."""
    for base in cls.__mro__:
        if base in _STOCK:
            return _STOCK[base]
    return next(iter(_STOCK.values()))


def install() -> list[type]:
    """Put `qwen3_vl_rope_index` on the Qwen3-VL model classes transformers has; return them."""
    return patch_method(QWEN3_VL_MODELS, "get_rope_index", qwen3_vl_rope_index, _STOCK)


def stock_rope_index(cls: type) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """transformers' own `get_rope_index` of an installed class."""
    return _STOCK[cls]
