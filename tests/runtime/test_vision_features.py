"""A frozen model's video features kept per prompt: the forward on precomputed encoder outputs
equals the one that encodes the videos itself, only unseen videos are encoded, and what does not
apply runs unchanged."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from runtime.hf_compat import load_hf_model
from runtime.hf_scoring import ScoringItem, batch_log_probs, build_hf_batch
from runtime.processed_prompts import PromptCache
from runtime.vision_features import FrozenVisionFeatures
from tvg.frame_cache import FrameCache
from tvg.video import VideoSettings, build_vision_inputs

QUERY = "When is the red square visible in the video?"


@pytest.fixture(scope="module")
def visions(tmp_path_factory: pytest.TempPathFactory) -> list:
    """Three real video files of different lengths, through a frame cache."""
    from tvg.synth import write_dataset

    out = tmp_path_factory.mktemp("vision_features")
    write_dataset(out, n_train=3, n_val=0, n_test=0, seed=4, level=1)
    frames = FrameCache()
    settings = VideoSettings(fps=1.0, max_frames=8)
    videos = sorted((out / "videos").glob("*.mp4"))
    return [build_vision_inputs(v, settings, cache=frames) for v in videos]


@pytest.fixture(params=["qwen3_vl", "qwen2_5_vl"])
def teacher(request: pytest.FixtureRequest, tiny_models_dir: Path):
    from transformers import AutoProcessor

    model_dir = tiny_models_dir / f"{request.param}-teacher"
    return load_hf_model(model_dir).eval(), AutoProcessor.from_pretrained(model_dir)


@pytest.fixture
def items(teacher, visions) -> list[ScoringItem]:
    """Three prompts with answers of different lengths (plain text tokens)."""
    tokenizer = teacher[1].tokenizer
    answers = ["1.0 - 4.5 seconds", "2", "The event happens in 10.0 - 12.0 seconds"]
    return [
        ScoringItem(QUERY, "timelens", vision, tokenizer.encode(a, add_special_tokens=False))
        for vision, a in zip(visions, answers, strict=True)
    ]


def _scores(model, processor, batch):
    with torch.no_grad():
        return batch_log_probs(model, processor, batch, top_k=3, return_rows=True)


def test_kept_features_give_the_same_scores_and_encode_each_video_once(
    teacher, items: list[ScoringItem]
) -> None:
    model, processor = teacher
    batch = build_hf_batch(processor, items, PromptCache())
    assert batch.prompt_keys is not None and None not in batch.prompt_keys
    expected = _scores(model, processor, batch)
    features = FrozenVisionFeatures(model)
    encoded: list[int] = []
    original = features.backbone.get_video_features

    def counting(patches, grid, **kwargs):
        encoded.append(len(grid))
        return original(patches, grid, **kwargs)

    features.backbone.get_video_features = counting
    for rows in ([0, 2], [0, 1, 2], [2, 1, 0]):  # a partial first call, then all kept
        part = build_hf_batch(processor, [items[i] for i in rows], PromptCache())
        inputs = features.inputs_for(part.inputs, part.prompt_keys)
        assert "pixel_values_videos" not in inputs and "mm_encoder_outputs" in inputs
        got = _scores(model, processor, dataclasses.replace(part, inputs=inputs))
        for i, score in zip(rows, got, strict=True):
            for key in ("logprobs", "topk_logprobs", "rows"):
                torch.testing.assert_close(score[key], expected[i][key], rtol=1e-5, atol=1e-5)
            assert torch.equal(score["topk_ids"], expected[i]["topk_ids"])
    assert encoded == [2, 1]  # videos 0 and 2, then video 1; never again
    assert (features.hits, features.misses) == (5, 3) and len(features) == 3


def test_batches_it_cannot_serve_run_unchanged(teacher, items: list[ScoringItem]) -> None:
    model, processor = teacher
    features = FrozenVisionFeatures(model)
    uncached = build_hf_batch(processor, items)  # no prompt cache: no keys
    assert uncached.prompt_keys is None
    assert features.inputs_for(uncached.inputs, uncached.prompt_keys) is uncached.inputs
    keyed = build_hf_batch(processor, items, PromptCache())
    some_unknown = [None, *keyed.prompt_keys[1:]]
    assert features.inputs_for(keyed.inputs, some_unknown) is keyed.inputs
    assert features.misses == 0


def test_the_bound_keeps_the_latest_videos(teacher, items: list[ScoringItem]) -> None:
    model, processor = teacher
    batch = build_hf_batch(processor, items, PromptCache())
    probe = FrozenVisionFeatures(model)
    probe.inputs_for(batch.inputs, batch.prompt_keys)
    sizes = [probe.entries.get(k).nbytes for k in batch.prompt_keys]
    bounded = FrozenVisionFeatures(model, max_bytes=sizes[1] + sizes[2])
    bounded.inputs_for(batch.inputs, batch.prompt_keys)
    assert bounded.entries.keys() == batch.prompt_keys[1:]
    with pytest.raises(ValueError, match="max_bytes must be >= 0"):
        FrozenVisionFeatures(model, max_bytes=-1)
    with pytest.raises(TypeError, match="has no get_video_features"):
        FrozenVisionFeatures(torch.nn.Linear(2, 2))
