"""The grouped vision attention computes what transformers' per-frame loop does, in fewer calls."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from vision_clips import clip_of

from runtime import vision_attention
from runtime.hf_compat import load_hf_model
from runtime.hf_scoring import ScoringItem, completion_log_probs
from tvg.vision_inputs import VisionInputs


def _clip(num_frames: int, side: int, seed: int) -> VisionInputs:
    rng = np.random.default_rng(seed)
    return clip_of(rng.integers(0, 255, (num_frames, side, side, 3), np.uint8))


def test_equal_length_runs() -> None:
    assert vision_attention.equal_length_runs([4, 4, 4, 16, 16, 4]) == [(4, 3), (16, 2), (4, 1)]
    assert vision_attention.equal_length_runs([]) == []


@pytest.mark.parametrize("family", ["qwen3_vl", "qwen2_5_vl"])
def test_grouped_attention_equals_the_per_frame_loop(family: str, tiny_models_dir: Path) -> None:
    """Log-probs and gradients of a batch whose videos have frames of two sizes (so runs of
    unequal chunk lengths; Qwen2.5-VL's windows too) equal those of transformers' own forward,
    with far fewer attention-kernel calls."""
    from transformers import AutoProcessor

    model_dir = tiny_models_dir / f"{family}-student"
    model = load_hf_model(model_dir)  # installs the grouped forward
    processor = AutoProcessor.from_pretrained(model_dir)
    attention_cls = next(
        type(m) for m in model.modules() if type(m).__name__.endswith("VisionAttention")
    )
    assert attention_cls.forward is vision_attention.grouped_vision_attention_forward
    stock = vision_attention.stock_forward(attention_cls)
    assert stock is not vision_attention.grouped_vision_attention_forward
    query = "When is the red square visible in the video?"
    items = [
        ScoringItem(query, "timelens", _clip(8, 32, 0), [40, 41, 42]),
        ScoringItem(query, "timelens", _clip(6, 64, 1), [43, 44]),
        ScoringItem(query, "timelens", _clip(4, 32, 2), [45]),
    ]
    calls = {"n": 0}
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def counted(*args, **kwargs):
        calls["n"] += 1
        return sdpa(*args, **kwargs)

    def run() -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
        model.zero_grad()
        calls["n"] = 0
        scores = completion_log_probs(model, processor, items)
        logprobs = torch.cat([s["logprobs"] for s in scores])
        logprobs.sum().backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        return logprobs.detach(), grads, calls["n"]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.nn.functional, "scaled_dot_product_attention", counted)
        grouped = run()
        patch.setattr(attention_cls, "forward", stock)
        reference = run()
    assert attention_cls.forward is vision_attention.grouped_vision_attention_forward
    torch.testing.assert_close(grouped[0], reference[0], rtol=1e-6, atol=1e-6)
    assert grouped[1].keys() == reference[1].keys()
    assert any("visual" in name for name in grouped[1])
    for name, grad in grouped[1].items():
        torch.testing.assert_close(grad, reference[1][name], rtol=1e-5, atol=1e-7, msg=name)
    # 18 frames in temporal patches of 2: 9 chunks per vision layer for the loop, 3 runs of equal
    # chunks (4 x 32 px, 3 x 64 px, 2 x 32 px) for the grouped path; the text layers' calls alike.
    depth = model.config.vision_config.depth
    assert reference[2] - grouped[2] == (9 - 3) * depth
