"""Teacher backends against an independent transformers log_softmax (real vLLM CPU build)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from teacher_test_helpers import reference_log_probs

from runtime.hf_compat import load_hf_model
from runtime.prompting import vision_placeholder_ids
from teacher_server.config import TeacherConfig
from teacher_server.items import ScoreItem, TeacherInputError, items_from_batch

TOP_K = 4


@pytest.fixture(scope="module")
def vllm_scorer(tiny_models_dir: Path, vllm_scorers):
    """A vLLM teacher scorer at temperature 0.7 with top-4 (qwen3_vl teacher)."""
    config = TeacherConfig(
        backend="vllm",
        model=str(tiny_models_dir / "qwen3_vl-teacher"),
        top_k=TOP_K,
        temperature=0.7,
        max_model_len=1024,
    )
    return vllm_scorers(config)


@pytest.fixture(scope="module")
def hf_teacher(tiny_models_dir: Path):
    """The qwen3_vl teacher under transformers (model, processor)."""
    from transformers import AutoProcessor

    path = tiny_models_dir / "qwen3_vl-teacher"
    return load_hf_model(path).eval(), AutoProcessor.from_pretrained(path)


def _assert_matches_reference(results, reference, banned: list[int]) -> float:
    """Every completion position within 1e-3; top-k ids equal; returns the max raw-vs-masked gap."""
    gap = 0.0
    for got, ref in zip(results, reference, strict=True):
        assert got.logprobs.shape == ref["logprobs"].shape
        np.testing.assert_allclose(got.logprobs, ref["logprobs"], atol=1e-3, rtol=0)
        np.testing.assert_array_equal(got.topk_ids, ref["topk_ids"])
        np.testing.assert_allclose(got.topk_logprobs, ref["topk_logprobs"], atol=1e-3, rtol=0)
        assert not set(got.topk_ids.ravel().tolist()) & set(banned)
        assert np.all(np.diff(got.topk_logprobs, axis=1) <= 0)  # best first
        gap = max(gap, float(np.abs(ref["raw_logprobs"] - ref["logprobs"]).max()))
    return gap


@pytest.mark.e2e
def test_vllm_teacher_matches_transformers_at_temperature(
    vllm_scorer, hf_teacher, student_batch
) -> None:
    batch = student_batch()
    items = items_from_batch(batch)
    results = vllm_scorer.score(items)
    model, processor = hf_teacher
    reference = reference_log_probs(model, processor, items, 0.7, TOP_K)
    gap = _assert_matches_reference(results, reference, vision_placeholder_ids(processor.tokenizer))
    # The mask matters: without it the log-probs would be off by the banned mass.
    print(f"max |raw - masked| log-prob on this batch: {gap:.2e}")
    assert gap > 1e-4
    for item, res in zip(items, results, strict=True):
        assert res.num_prompt_tokens == item.num_prompt_tokens  # same expanded prompt as student


@pytest.mark.e2e
def test_vllm_teacher_at_temperature_one_equals_its_own_student_logprobs(
    tiny_models_dir: Path, student_batch, vllm_scorers
) -> None:
    """Teacher = the student model, T = 1: teacher log-probs equal the sampler's own."""
    scorer = vllm_scorers(
        TeacherConfig(model=str(tiny_models_dir / "qwen3_vl-student"), max_model_len=1024)
    )
    batch = student_batch()
    results = scorer.score(items_from_batch(batch))
    for traj, res in zip(batch.trajectories, results, strict=True):
        np.testing.assert_allclose(res.logprobs, traj.logprobs, atol=1e-3, rtol=0)
        assert res.topk_ids.shape == (traj.num_completion_tokens, 0)


@pytest.mark.e2e
def test_hf_teacher_backend_matches_reference(tiny_models_dir: Path, hf_teacher, student_batch):
    from teacher_server.backend_hf import HFScorer

    scorer = HFScorer(
        TeacherConfig(
            backend="hf",
            model=str(tiny_models_dir / "qwen3_vl-teacher"),
            top_k=TOP_K,
            temperature=0.7,
            batch_size=4,
        )
    )
    items = items_from_batch(student_batch())
    results = scorer.score(items)
    model, processor = hf_teacher
    reference = reference_log_probs(model, processor, items, 0.7, TOP_K)
    _assert_matches_reference(results, reference, vision_placeholder_ids(processor.tokenizer))


@pytest.mark.e2e
def test_teacher_refuses_inputs_it_would_score_wrongly(vllm_scorer, student_batch) -> None:
    item = items_from_batch(student_batch())[0]
    bad_prompt = ScoreItem(item.prompt, item.completion_ids, item.prompt_ids[:-1])
    with pytest.raises(TeacherInputError, match="tokenises the prompt differently"):
        vllm_scorer.score([bad_prompt])
    video_pad = vision_placeholder_ids(vllm_scorer.tokenizer)[-1]
    banned = ScoreItem(item.prompt, [*item.completion_ids.tolist(), video_pad])
    with pytest.raises(TeacherInputError, match="vision placeholder"):
        vllm_scorer.score([banned])
    too_long = ScoreItem(item.prompt, item.completion_ids, num_prompt_tokens=1020)
    with pytest.raises(TeacherInputError, match="exceed the teacher's context length 1024"):
        vllm_scorer.score([too_long])
    outside = ScoreItem(item.prompt, [10_000])
    with pytest.raises(TeacherInputError, match="outside the vocabulary"):
        vllm_scorer.score([outside])
