"""Qwen3-VL position ids from array operations equal transformers' loop, and defer to it when a
row does not line up with its grids."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from vision_clips import clip_of

from runtime import mrope_index
from runtime.hf_compat import apply_hf_patches, load_hf_model
from runtime.hf_scoring import ScoringItem, build_hf_batch
from tvg.vision_inputs import VisionInputs


def _qwen3_class() -> type:
    from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLModel

    apply_hf_patches()
    return Qwen3VLModel


def _model(merge: int = 2) -> SimpleNamespace:
    """Just what get_rope_index reads (the stock method uses get_vision_position_ids too)."""
    cls = _qwen3_class()
    model = SimpleNamespace(
        config=SimpleNamespace(vision_config=SimpleNamespace(spatial_merge_size=merge))
    )
    model.get_vision_position_ids = cls.get_vision_position_ids.__get__(model)
    return model


def _both(model: SimpleNamespace, **inputs: torch.Tensor):
    fast = mrope_index.qwen3_vl_rope_index(model, **inputs)
    stock = mrope_index.stock_rope_index(_qwen3_class())(model, **inputs)
    return fast, stock


def _random_batch(rng: np.random.Generator, rows: int, merge: int) -> dict[str, torch.Tensor]:
    """Rows of text, images and videos (timestamps between frames, as Qwen3-VL's prompts have),
    padded on the left or the right."""
    types, images, videos = [], [], []
    for _ in range(rows):
        row: list[int] = [0] * int(rng.integers(1, 6))
        for _ in range(int(rng.integers(0, 3))):
            if rng.random() < 0.4:
                grid = (1, merge * int(rng.integers(1, 4)), merge * int(rng.integers(1, 4)))
                images.append(grid)
                row += [1] * (grid[1] * grid[2] // merge**2)
            else:
                frames = int(rng.integers(1, 5))
                grid = (frames, merge * int(rng.integers(1, 4)), merge * int(rng.integers(1, 4)))
                videos.append(grid)
                for _ in range(frames):
                    row += [2] * (grid[1] * grid[2] // merge**2)
                    row += [0] * int(rng.integers(1, 4))
            row += [0] * int(rng.integers(1, 4))
        types.append(row)
    length = max(len(r) for r in types) + 3
    type_ids = torch.zeros(rows, length, dtype=torch.int32)
    mask = torch.zeros(rows, length, dtype=torch.long)
    for i, row in enumerate(types):
        first = length - len(row) if i % 2 else 0  # left padding on odd rows
        type_ids[i, first : first + len(row)] = torch.tensor(row)
        mask[i, first : first + len(row)] = 1
    batch = {
        "input_ids": torch.randint(0, 100, (rows, length)),
        "mm_token_type_ids": type_ids,
        "attention_mask": mask,
    }
    if images:
        batch["image_grid_thw"] = torch.tensor(images)
    if videos:
        batch["video_grid_thw"] = torch.tensor(videos)
    return batch


@pytest.mark.parametrize("merge", [1, 2])
def test_random_layouts_equal_transformers(merge: int) -> None:
    rng = np.random.default_rng(merge)
    model = _model(merge)
    for _ in range(40):
        batch = _random_batch(rng, int(rng.integers(1, 5)), merge)
        (fast_ids, fast_deltas), (ids, deltas) = _both(model, **batch)
        assert torch.equal(fast_ids, ids) and fast_ids.dtype == ids.dtype
        assert torch.equal(fast_deltas, deltas) and fast_deltas.shape == deltas.shape
        # no mask: every token counts
        no_mask = {k: v for k, v in batch.items() if k != "attention_mask"}
        (fast_ids, fast_deltas), (ids, deltas) = _both(model, **no_mask)
        assert torch.equal(fast_ids, ids) and torch.equal(fast_deltas, deltas)


def test_a_row_that_does_not_match_its_grids_is_left_to_transformers() -> None:
    """A video run one token short of its grid: the stock method's own error, not a new one."""
    model = _model(2)
    types = torch.tensor([[0, 2, 2, 2, 0]], dtype=torch.int32)  # grid (1, 4, 4) -> 4 tokens
    inputs = {
        "input_ids": torch.zeros(1, 5, dtype=torch.long),
        "mm_token_type_ids": types,
        "video_grid_thw": torch.tensor([[1, 4, 4]]),
    }
    with pytest.raises(RuntimeError) as fast:
        mrope_index.qwen3_vl_rope_index(model, **inputs)
    with pytest.raises(RuntimeError) as stock:
        mrope_index.stock_rope_index(_qwen3_class())(model, **inputs)
    assert str(fast.value) == str(stock.value)
    # A video run with no grid left: transformers' StopIteration either way.
    inputs["video_grid_thw"] = torch.zeros(0, 3, dtype=torch.long)
    with pytest.raises(StopIteration):
        mrope_index.qwen3_vl_rope_index(model, **inputs)


def _clip(num_frames: int, side: int, seed: int) -> VisionInputs:
    rng = np.random.default_rng(seed)
    return clip_of(rng.integers(0, 255, (num_frames, side, side, 3), np.uint8))


def test_the_model_uses_it_on_real_batches(tiny_models_dir: Path) -> None:
    """Loading a Qwen3-VL model installs it; on a processor-built batch of videos of different
    lengths and sizes its ids equal transformers'."""
    from transformers import AutoProcessor

    model_dir = tiny_models_dir / "qwen3_vl-student"
    model = load_hf_model(model_dir)
    processor = AutoProcessor.from_pretrained(model_dir)
    assert type(model.model).get_rope_index is mrope_index.qwen3_vl_rope_index
    query = "When is the red square visible in the video?"
    items = [
        ScoringItem(query, "timelens", _clip(8, 32, 0), [40, 41, 42]),
        ScoringItem(query, "timelens", _clip(6, 64, 1), [43, 44]),
        ScoringItem(query, "timelens", _clip(4, 32, 2), [45]),
    ]
    batch = build_hf_batch(processor, items)
    inputs = {
        k: batch.inputs[k]
        for k in ("input_ids", "mm_token_type_ids", "video_grid_thw", "attention_mask")
    }
    fast = model.model.get_rope_index(**inputs)
    stock = mrope_index.stock_rope_index(type(model.model))(model.model, **inputs)
    assert torch.equal(fast[0], stock[0]) and torch.equal(fast[1], stock[1])
    assert int(batch.inputs["attention_mask"].sum()) < batch.inputs["attention_mask"].numel()
