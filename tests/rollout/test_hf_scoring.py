"""transformers-side completion log-probs agree with vLLM's, batched and padded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rollout.hf_compat import load_hf_model
from rollout.hf_scoring import ScoringItem, completion_log_probs, masked_log_softmax
from rollout.prompting import prompt_token_ids, vision_placeholder_ids
from tvg.video import VideoSettings
from tvg.vision_inputs import VisionInputs, make_metadata


def _clip(num_frames: int, red: tuple[int, int]) -> VisionInputs:
    frames = np.full((num_frames, 32, 32, 3), 128, np.uint8)
    frames[red[0] : red[1], 4:16, 4:16] = (220, 30, 30)
    indices = list(range(num_frames))
    metadata = make_metadata(1.0, num_frames, indices, "decord")
    return VisionInputs(
        frames=frames,
        timestamps=np.arange(num_frames, dtype=np.float64),
        metadata=metadata,
        video_path="synthetic",
        settings=VideoSettings(fps=1.0),
    )


def test_masked_log_softmax_bans_tokens_and_renormalises() -> None:
    logits = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    out = masked_log_softmax(logits, [3], temperature=2.0)
    assert out[0, 3] == float("-inf")
    expected = torch.log_softmax(torch.tensor([0.5, 1.0, 1.5]), dim=-1)
    assert torch.allclose(out[0, :3], expected)


def test_masked_log_softmax_masks_a_padded_vocabulary() -> None:
    """Ids from the tokenizer's length on (a padded vocabulary's unused rows) are never sampled."""
    logits = torch.tensor([[1.0, 2.0, 3.0, 4.0, 0.0, 0.0]])
    out = masked_log_softmax(logits, [1], temperature=2.0, num_tokens=4)
    assert torch.isinf(out[0, [1, 4, 5]]).all()
    expected = torch.log_softmax(torch.tensor([0.5, 1.5, 2.0]), dim=-1)
    assert torch.allclose(out[0, [0, 2, 3]], expected)
    unpadded = masked_log_softmax(logits, [1], num_tokens=6)
    assert torch.equal(unpadded, masked_log_softmax(logits, [1]))


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["qwen3_vl-student", "qwen2_5_vl-student"])
def test_batched_hf_log_probs_match_vllm(name: str, tiny_models_dir: Path, vllm_engines) -> None:
    from transformers import AutoProcessor
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    model_dir = tiny_models_dir / name
    processor = AutoProcessor.from_pretrained(model_dir)
    model = load_hf_model(model_dir).eval()
    llm = vllm_engines(name)
    query = "When is the red square visible in the video? Give the start and end time in seconds."
    clips = [_clip(8, (2, 6)), _clip(12, (0, 4))]  # different lengths: exercises padding
    banned = vision_placeholder_ids(processor.tokenizer)
    allowed = [i for i in range(len(processor.tokenizer)) if i not in banned]
    prompts = [
        TokensPrompt(
            prompt_token_ids=prompt_token_ids(processor.tokenizer, query, "timelens"),
            multi_modal_data=clip.vllm_mm_data(),
        )
        for clip in clips
    ]
    sampled = llm.generate(
        prompts,
        SamplingParams(
            max_tokens=10, temperature=1.0, seed=0, logprobs=0, allowed_token_ids=allowed
        ),
        use_tqdm=False,
    )
    items = [
        ScoringItem(query, "timelens", clip, list(out.outputs[0].token_ids))
        for clip, out in zip(clips, sampled, strict=True)
    ]
    with torch.no_grad():
        scores = completion_log_probs(model, processor, items, top_k=3)
    for out, score in zip(sampled, scores, strict=True):
        token_ids = out.outputs[0].token_ids
        vllm_lp = torch.tensor(
            [out.outputs[0].logprobs[j][tok].logprob for j, tok in enumerate(token_ids)]
        )
        assert torch.allclose(score["logprobs"], vllm_lp, atol=1e-3), (score["logprobs"], vllm_lp)
        assert score["topk_ids"].shape == (len(token_ids), 3)
        assert not set(score["topk_ids"].flatten().tolist()) & set(banned)
