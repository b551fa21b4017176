"""Processed prompts kept per process: batches assembled from kept entries equal the processor's
own batch calls (right padding with completions, left padding for generate), what is kept and
what is not, and the memory bound."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from vision_clips import clip_of

from runtime.hf_scoring import ScoringItem, build_hf_batch
from runtime.processed_prompts import PromptCache, left_padded, process_prompts, prompt_key
from runtime.prompting import prompt_text
from tvg.frame_cache import FrameCache, cache_key
from tvg.video import VideoSettings, build_vision_inputs

QUERY = "When is the red square visible in the video?"
SETTINGS = VideoSettings(fps=1.0, max_frames=8)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three real video files of different lengths."""
    from tvg.synth import write_dataset

    out = tmp_path_factory.mktemp("processed_prompts")
    write_dataset(out, n_train=3, n_val=0, n_test=0, seed=3, level=1)
    return sorted((out / "videos").glob("*.mp4"))


@pytest.fixture(params=["qwen3_vl", "qwen2_5_vl"])
def processor(request: pytest.FixtureRequest, tiny_models_dir: Path):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_models_dir / f"{request.param}-student")


class CountingProcessor:
    """A processor that counts its calls and the texts it processed."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.tokenizer = inner.tokenizer
        self.texts = 0

    def __call__(self, text, **kwargs):
        self.texts += len(text)
        return self.inner(text=text, **kwargs)


def _items(videos: list[Path], cache: FrameCache) -> list[ScoringItem]:
    visions = [build_vision_inputs(v, SETTINGS, cache=cache) for v in videos]
    queries = [QUERY, QUERY + " In seconds.", QUERY]
    completions = [[5, 6, 7], [8], [9, 10, 11, 12]]
    return [
        ScoringItem(q, "timelens", vision, c)
        for q, vision, c in zip(queries, visions, completions, strict=True)
    ]


def test_kept_prompts_build_the_same_scoring_batch(processor, videos: list[Path]) -> None:
    items = _items(videos, FrameCache())
    uncached = build_hf_batch(processor, items)
    counting = CountingProcessor(processor)
    cache = PromptCache()
    first = build_hf_batch(counting, items, cache)
    again = build_hf_batch(counting, items[::-1], cache)  # all kept: no processor call
    assert counting.texts == 3 and cache.counts.hits == 3 and cache.counts.misses == 3
    assert first.prompt_lengths == uncached.prompt_lengths
    assert first.completion_lengths == uncached.completion_lengths
    assert first.inputs.keys() == uncached.inputs.keys()
    for key, value in uncached.inputs.items():
        assert first.inputs[key].dtype == value.dtype, key
        assert torch.equal(first.inputs[key], value), key
    reversed_uncached = build_hf_batch(processor, items[::-1])
    for key, value in reversed_uncached.inputs.items():
        assert torch.equal(again.inputs[key], value), key


def test_kept_prompts_build_the_same_generation_inputs(processor, videos: list[Path]) -> None:
    items = _items(videos, FrameCache())
    tokenizer = processor.tokenizer
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        texts = [prompt_text(tokenizer, i.query, i.prompt_style) for i in items]
        kwargs = [i.vision.hf_processor_kwargs() for i in items]
        expected = processor(
            text=texts,
            videos=[f for kw in kwargs for f in kw["videos"]],
            video_metadata=[m for kw in kwargs for m in kw["video_metadata"]],
            do_sample_frames=False,
            padding=True,
            return_tensors="pt",
        )
    finally:
        tokenizer.padding_side = side
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    entries = PromptCache().get(processor, texts, [i.vision for i in items])
    built = left_padded(entries, pad_id)
    assert built.keys() == dict(expected).keys()
    for key, value in expected.items():
        value = torch.as_tensor(value)
        assert torch.equal(built[key].reshape(value.shape), value), key
        assert built[key].dtype == value.dtype, key


def test_only_frame_cache_inputs_are_kept_and_edits_are_new_entries(
    processor, videos: list[Path], tmp_path: Path
) -> None:
    text = prompt_text(processor.tokenizer, QUERY, "timelens")
    clip = clip_of(np.zeros((4, 32, 32, 3), np.uint8))  # in-memory frames, no cache key
    assert prompt_key(processor, text, clip) is None
    clip.frames.setflags(write=False)  # read-only is not enough: the frame cache's stamp keys
    assert prompt_key(processor, text, clip) is None
    cache = PromptCache()
    cache.get(processor, [text, text], [clip, clip])
    assert len(cache) == 0 and cache.counts.misses == 2

    video = tmp_path / "edited.mp4"
    video.write_bytes(videos[0].read_bytes())
    frames = FrameCache()
    vision = build_vision_inputs(video, SETTINGS, cache=frames)
    key = prompt_key(processor, text, vision)
    assert key is not None and key[2] == vision.cache_key == cache_key(video, SETTINGS)
    cache.get(processor, [text], [vision])
    assert len(cache) == 1
    video.write_bytes(videos[1].read_bytes())
    os.utime(video, ns=(1, 1))
    edited = build_vision_inputs(video, SETTINGS, cache=frames)
    assert prompt_key(processor, text, edited) != key
    cache.get(processor, [text], [edited])
    assert len(cache) == 2 and cache.counts.hits == 0


def test_the_cache_keeps_at_most_max_bytes(processor, videos: list[Path]) -> None:
    items = _items(videos, FrameCache())
    texts = [prompt_text(processor.tokenizer, i.query, i.prompt_style) for i in items]
    sizes = [e.nbytes for e in process_prompts(processor, texts, [i.vision for i in items])]
    cache = PromptCache(max_bytes=sizes[1] + sizes[2])
    counting = CountingProcessor(processor)
    cache.get(counting, texts, [i.vision for i in items])
    assert len(cache) == 2 and cache.nbytes == sizes[1] + sizes[2]  # the oldest went first
    cache.get(counting, texts[1:], [i.vision for i in items[1:]])
    assert counting.texts == 3  # both still kept
    cache.get(counting, texts[:1], [items[0].vision])
    assert counting.texts == 4
    assert PromptCache(max_bytes=0).get(processor, texts, [i.vision for i in items])
    with pytest.raises(ValueError, match="max_bytes must be >= 0"):
        PromptCache(max_bytes=-1)


def test_unexpected_processor_outputs_are_an_error(processor, videos: list[Path]) -> None:
    class Extra(CountingProcessor):
        def __call__(self, text, **kwargs):
            out = dict(self.inner(text=text, **kwargs))
            out["pixel_values"] = torch.zeros(1)
            return out

    items = _items(videos, FrameCache())[:1]
    with pytest.raises(ValueError, match=r"returned \['pixel_values'\], not kept"):
        build_hf_batch(Extra(processor), items, PromptCache())
