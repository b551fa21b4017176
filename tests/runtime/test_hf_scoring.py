"""transformers-side completion log-probs agree with vLLM's, batched and padded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from vision_clips import clip_of

from runtime.hf_compat import load_hf_model
from runtime.hf_scoring import ScoringItem, completion_log_probs, masked_log_softmax
from runtime.prompting import prompt_token_ids, vision_placeholder_ids
from tvg.vision_inputs import VisionInputs


def _clip(num_frames: int, red: tuple[int, int]) -> VisionInputs:
    frames = np.full((num_frames, 32, 32, 3), 128, np.uint8)
    frames[red[0] : red[1], 4:16, 4:16] = (220, 30, 30)
    return clip_of(frames)


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


@pytest.mark.parametrize(
    ("family", "vocab_size"), [("qwen3_vl", None), ("qwen2_5_vl", None), ("qwen3_vl", 1000)]
)
def test_completion_only_logits_equal_the_full_path(
    family: str, vocab_size: int | None, tiny_models_dir: Path, tmp_path: Path
) -> None:
    """The LM head, masking and log-softmax run at the completion positions only, and give the
    log-probs, rows, entropy, top-k and gradients of logits over every position: a batch of
    video prompts and completions of unequal lengths (right padding), both families, and a
    padded vocabulary (its unused ids still -inf)."""
    from transformers import AutoProcessor

    from launch.tiny_models.build import ModelSpec, build_tiny_model
    from runtime.hf_scoring import output_head

    if vocab_size is None:
        model_dir = tiny_models_dir / f"{family}-student"
    else:
        spec = ModelSpec(family=family, size="student", seed=0, vocab_size=vocab_size)
        model_dir = build_tiny_model(tmp_path, spec)
    processor = AutoProcessor.from_pretrained(model_dir)
    tokenizer = processor.tokenizer
    model = load_hf_model(model_dir)
    answer = tokenizer("[2.0, 6.0] seconds", add_special_tokens=False)["input_ids"]
    query = "When is the red square visible in the video?"
    items = [
        ScoringItem(query, "timelens", _clip(8, (2, 6)), [*answer, tokenizer.eos_token_id]),
        ScoringItem(
            query + " Answer in seconds, please.", "timelens", _clip(12, (0, 4)), answer[:3]
        ),
        ScoringItem(query, "timelens", _clip(4, (0, 2)), answer[:1]),
    ]
    head = output_head(model)
    head_rows: list[int] = []
    head.register_forward_hook(lambda _m, _a, out: head_rows.append(out.shape[:-1].numel()))
    weights = torch.rand(len(answer) + 1, model.config.get_text_config().vocab_size)
    results = {}
    for only in (True, False):
        model.zero_grad()
        scores = completion_log_probs(
            model, processor, items, top_k=3, return_rows=True, completion_logits_only=only
        )
        loss = sum(
            -s["logprobs"].sum() + (s["rows"].exp() * weights[: len(s["rows"])]).sum()
            for s in scores
        )
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results[only] = (scores, grads)
    assert not head._forward_pre_hooks  # the gather hook is gone after the call

    lengths = [len(item.completion_ids) for item in items]
    assert head_rows[0] == sum(lengths)  # completion-only: one LM-head row per completion token
    assert head_rows[1] > 10 * sum(lengths)  # full path: every position of every row
    (only, only_grads), (full, full_grads) = results[True], results[False]
    for length, a, b in zip(lengths, only, full, strict=True):
        assert a.keys() == b.keys()
        assert a["logprobs"].shape == (length,) and a["rows"].shape[0] == length
        for key in ("logprobs", "rows", "entropy", "topk_logprobs"):
            torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
        assert torch.equal(a["topk_ids"], b["topk_ids"])
        assert a["logprobs"].requires_grad and not a["entropy"].requires_grad
        if vocab_size is not None:
            assert torch.isneginf(a["rows"][:, len(tokenizer) :]).all()
    assert only_grads.keys() == full_grads.keys() and len(only_grads) > 10
    for name, grad in only_grads.items():
        torch.testing.assert_close(grad, full_grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_output_head_unwraps_an_engine(tiny_models_dir: Path) -> None:
    """A DeepSpeed engine keeps the transformers model in `.module`; its LM head is found there."""
    from types import SimpleNamespace

    from runtime.hf_scoring import output_head

    model = load_hf_model(tiny_models_dir / "qwen3_vl-student")
    assert output_head(model) is model.lm_head
    assert output_head(SimpleNamespace(module=model)) is model.lm_head
    with pytest.raises(AttributeError):
        output_head(SimpleNamespace())


@pytest.mark.parametrize("family", ["qwen3_vl", "qwen2_5_vl"])
def test_one_processor_call_per_batch_equals_one_per_item(
    family: str, tiny_models_dir: Path
) -> None:
    """`build_hf_batch` runs the processor once over the batch: the prompt ids, modality types,
    pixel values, grids (and Qwen2.5-VL's seconds per grid) equal those of one call per item,
    for videos of unequal lengths and prompts of unequal text."""
    from transformers import AutoProcessor

    from runtime.hf_scoring import build_hf_batch
    from runtime.prompting import prompt_text

    processor = AutoProcessor.from_pretrained(tiny_models_dir / f"{family}-student")
    query = "When is the red square visible in the video?"
    items = [
        ScoringItem(query, "timelens", _clip(8, (2, 6)), [5, 6, 7]),
        ScoringItem(query + " In seconds.", "timelens", _clip(12, (0, 4)), [8]),
        ScoringItem(query, "timelens", _clip(4, (0, 2)), [9, 10]),
    ]
    batch = build_hf_batch(processor, items)
    singles = [
        processor(
            text=[prompt_text(processor.tokenizer, item.query, item.prompt_style)],
            return_tensors="pt",
            **item.vision.hf_processor_kwargs(),
        )
        for item in items
    ]
    for i, (item, single) in enumerate(zip(items, singles, strict=True)):
        ids = single["input_ids"][0].tolist()
        assert batch.prompt_lengths[i] == len(ids)
        row = batch.inputs["input_ids"][i, : len(ids) + len(item.completion_ids)].tolist()
        assert row == ids + list(item.completion_ids)
        if "mm_token_type_ids" in single:
            assert batch.inputs["mm_token_type_ids"][i, : len(ids)].tolist() == (
                single["mm_token_type_ids"][0].tolist()
            )
    for key in ("pixel_values_videos", "video_grid_thw", "second_per_grid_ts"):
        if key in singles[0]:
            parts = [torch.as_tensor(s[key]).reshape(len(s[key]), -1) for s in singles]
            expected = torch.cat(parts)
            assert torch.equal(batch.inputs[key].reshape(expected.shape), expected), key
    assert batch.prompt_lengths[0] != batch.prompt_lengths[1]


def test_position_ids_computed_once_serve_a_model_with_the_same_rule(
    tiny_models_dir: Path,
) -> None:
    """The student's 3-D position ids, computed once (`with_position_ids`), give the co-located
    teacher exactly the log-probs it computes with its own; the rule tells which models may share
    (the same family and vision settings), and a model without M-RoPE leaves the batch as it is."""
    from types import SimpleNamespace

    from transformers import AutoProcessor

    from runtime.hf_scoring import (
        HFBatch,
        batch_log_probs,
        build_hf_batch,
        position_rule,
        same_position_rule,
        with_position_ids,
    )

    student = load_hf_model(tiny_models_dir / "qwen3_vl-student")
    teacher = load_hf_model(tiny_models_dir / "qwen3_vl-teacher")
    other = load_hf_model(tiny_models_dir / "qwen2_5_vl-student")
    assert position_rule(student) == position_rule(teacher) is not None
    assert position_rule(SimpleNamespace(module=student)) == position_rule(student)  # an engine
    assert position_rule(other) != position_rule(student)
    assert position_rule(torch.nn.Linear(2, 2)) is None
    assert same_position_rule(student, teacher)
    assert not same_position_rule(student, other)
    assert not same_position_rule(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    processor = AutoProcessor.from_pretrained(tiny_models_dir / "qwen3_vl-student")
    query = "When is the red square visible in the video?"
    items = [
        ScoringItem(query, "timelens", _clip(8, (2, 6)), [40, 41, 42]),
        ScoringItem(query + " In seconds.", "timelens", _clip(12, (0, 4)), [43]),
    ]
    batch = build_hf_batch(processor, items)
    shared = with_position_ids(student, batch)
    assert "position_ids" not in batch.inputs  # the given batch is left as it was
    assert shared.inputs["position_ids"].shape == (3, *batch.inputs["input_ids"].shape)
    assert with_position_ids(torch.nn.Linear(2, 2), batch) is batch
    text_only = HFBatch(
        {k: v for k, v in batch.inputs.items() if "video" not in k},
        batch.prompt_lengths,
        batch.completion_lengths,
    )
    assert with_position_ids(student, text_only) is text_only
    for model in (student, teacher):
        computed = []
        rope_index = model.model.get_rope_index
        with (
            torch.no_grad(),
            pytest.MonkeyPatch.context() as patch,
        ):
            patch.setattr(
                model.model,
                "get_rope_index",
                lambda *a, _calls=computed, _rope=rope_index, **k: (
                    _calls.append(1) or _rope(*a, **k)
                ),
            )
            own = batch_log_probs(model, processor, batch)
            given = batch_log_probs(model, processor, shared)
        assert len(computed) == 1  # the shared ids spare the model its own computation
        for a, b in zip(own, given, strict=True):
            assert torch.equal(a["logprobs"], b["logprobs"])
