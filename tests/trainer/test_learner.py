"""DeepSpeed learners as Ray actors: ZeRO-3 over 2 ranks trains and exports exact weights."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from rollout.batch import PromptSpec, Trajectory
from runtime.prompting import prompt_token_ids
from trainer.learner_group import LearnerError, LearnerGroup, affine_shares
from tvg.prompts import get_prompt_style
from tvg.video import VideoSettings


def test_a_learner_group_refuses_to_replace_one_rank() -> None:
    """The actor-group base can restart one actor; a DeepSpeed group cannot take a new rank."""
    group = object.__new__(LearnerGroup)  # no actors needed: the refusal comes first
    with pytest.raises(LearnerError, match="rank 1 cannot be replaced alone"):
        group.restart(1)


def _rows(prompt_indices: list[int]) -> list[Trajectory]:
    return [
        Trajectory(p, 0, np.array([1]), np.array([2]), np.array([-0.5]), "stop")
        for p in prompt_indices
    ]


def test_shares_without_affinity_are_contiguous_and_even() -> None:
    assert affine_shares(_rows(list(range(5))), 2) == [[0, 1, 2], [3, 4]]
    assert affine_shares([], 2) == [[], []]


def test_shares_keep_a_rows_on_the_rank_that_sampled_it_where_sizes_allow() -> None:
    """Rows go to the rank of the worker that sampled their prompt (worker % ranks); a rank
    that sampled more than its even share passes the rest on, in order; sizes stay even."""
    rows = _rows([0, 1, 2, 3, 4, 5])
    by_worker = {0: 1, 1: 0, 2: 1, 3: 1, 4: 0, 5: 1}  # worker 1 sampled 4 of 6 prompts
    assert affine_shares(rows, 2, by_worker) == [[1, 4, 5], [0, 2, 3]]
    # three workers over two ranks: worker 2's rows go to rank 0 (as far as its room allows)
    rows = _rows([0, 0, 1, 1, 2, 2])
    assert affine_shares(rows, 2, {0: 2, 1: 1, 2: 0}) == [[0, 1, 4], [2, 3, 5]]
    every = affine_shares(_rows(list(range(7))), 3, dict.fromkeys(range(7), 2))
    assert sorted(i for share in every for i in share) == list(range(7))
    assert [len(share) for share in every] == [3, 2, 2]


@pytest.fixture(scope="module")
def sft_batch(tmp_path_factory: pytest.TempPathFactory, tiny_models_dir: Path):
    """Four synthetic prompts with their ground-truth answers as trajectories."""
    from transformers import AutoTokenizer

    from tvg.formats import read_samples
    from tvg.synth import write_dataset

    data = tmp_path_factory.mktemp("learner_data")
    write_dataset(data, n_train=4, n_val=0, n_test=0, seed=3)
    samples = read_samples(data / "train.json", video_root=data / "videos")
    tokenizer = AutoTokenizer.from_pretrained(tiny_models_dir / "qwen3_vl-student")
    style = get_prompt_style("timelens")
    settings = VideoSettings(fps=1.0, max_frames=64)
    prompts = [PromptSpec.from_sample(s, "timelens", settings) for s in samples]
    trajectories = []
    for index, (sample, spec) in enumerate(zip(samples, prompts, strict=True)):
        answer = style.target_answer(*sample.spans[0])
        ids = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        trajectories.append(
            Trajectory(
                prompt_index=index,
                sample_index=0,
                prompt_ids=prompt_token_ids(tokenizer, spec.query, "timelens"),
                completion_ids=ids,
                logprobs=np.zeros(len(ids), np.float32),
                finish_reason="stop",
                text=answer,
                is_ground_truth=True,
            )
        )
    return prompts, trajectories


def _layer_calls_and_saved_bytes(model, processor, items) -> tuple[float, int, dict]:
    """One learner-like forward + backward: runs of each checkpointable layer's forward (decoder
    layers, vision blocks), bytes autograd saved for the backward (distinct storages, parameters
    left out) and the gradients."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    from runtime.hf_scoring import completion_log_probs

    calls = [0]
    layers = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
    assert len(layers) >= 3

    def counted(forward):
        def run(*args, **kwargs):
            calls[0] += 1
            return forward(*args, **kwargs)

        return run

    for layer in layers:  # per instance: the recompute calls forward again (hooks do not fire)
        layer.forward = counted(layer.forward)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        if tensor.untyped_storage().data_ptr() not in params:
            saved[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        scores = completion_log_probs(model, processor, items)
        loss = -torch.cat([s["logprobs"] for s in scores]).mean()
    loss.backward()
    for layer in layers:
        del layer.forward
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    return calls[0] / len(layers), sum(saved.values()), grads


@pytest.mark.parametrize("family", ["qwen3_vl", "qwen2_5_vl"])
def test_gradient_checkpointing_switch(family: str, tiny_models_dir: Path, sft_batch) -> None:
    """learner.gradient_checkpointing (prepare_student): every checkpointable layer (decoder
    layers, vision blocks) runs twice (forward, recompute in the backward), autograd keeps less
    for the backward, the gradients are those without it, and the no-grad pass is unchanged."""
    from transformers import AutoProcessor

    from runtime.hf_compat import load_hf_model
    from runtime.hf_scoring import ScoringItem, completion_log_probs
    from trainer.learner import prepare_student
    from tvg.video import build_vision_inputs

    prompts, trajectories = sft_batch
    model_dir = tiny_models_dir / f"{family}-student"
    processor = AutoProcessor.from_pretrained(model_dir)
    items = [
        ScoringItem(
            prompts[t.prompt_index].query,
            "timelens",
            build_vision_inputs(
                prompts[t.prompt_index].video, prompts[t.prompt_index].video_settings
            ),
            t.completion_ids.tolist(),
        )
        for t in trajectories[:2]
    ]
    runs = {}
    for checkpointing in (False, True):
        model = load_hf_model(model_dir)
        prepare_student(model, freeze_vision=False, gradient_checkpointing=checkpointing)
        assert model.is_gradient_checkpointing == checkpointing
        runs[checkpointing] = (model, *_layer_calls_and_saved_bytes(model, processor, items))
    (plain, calls, saved, grads), (ckpt, ckpt_calls, ckpt_saved, ckpt_grads) = (
        runs[False],
        runs[True],
    )
    assert (calls, ckpt_calls) == (1, 2)
    assert ckpt_saved < 0.8 * saved, (ckpt_saved, saved)
    assert grads.keys() == ckpt_grads.keys() and len(grads) > 10
    for name, grad in grads.items():
        torch.testing.assert_close(ckpt_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    with torch.no_grad():
        a = completion_log_probs(plain.eval(), processor, items)
        b = completion_log_probs(ckpt.eval(), processor, items)
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x["logprobs"], y["logprobs"])


def test_driver_passes_gradient_checkpointing_to_the_learners(monkeypatch) -> None:
    """learner.gradient_checkpointing reaches every rank's LearnerSettings (default off)."""
    import trainer.learner_group
    from launch.config import load_config
    from launch.driver import Driver

    started = []
    monkeypatch.setattr(
        trainer.learner_group, "LearnerGroup", lambda settings, **_: started.append(settings)
    )
    for overrides, expected in (([], False), (["learner.gradient_checkpointing=true"], True)):
        driver = Driver.__new__(Driver)  # no actors, no Ray: only the config is read
        driver.config = load_config(None, overrides)
        driver._start_learners()
        assert started[-1].gradient_checkpointing is expected


@pytest.mark.e2e
@pytest.mark.slow
def test_zero3_two_ranks_train_and_export(ray_session, tiny_models_dir: Path, sft_batch) -> None:
    from safetensors.torch import load_file

    from trainer.learner import LearnerSettings
    from trainer.learner_group import LearnerGroup

    prompts, trajectories = sft_batch
    model_dir = tiny_models_dir / "qwen3_vl-student"
    # With activation checkpointing: ZeRO-3 gathers the parameters again for the recompute.
    settings = LearnerSettings(
        model_dir=str(model_dir),
        zero_stage=3,
        lr=2e-3,
        micro_batch_size=2,
        gradient_checkpointing=True,
    )
    group = LearnerGroup(settings, world_size=2)
    try:
        initial = load_file(str(model_dir / "model.safetensors"))
        exported = dict(
            pair for bucket in group.export_weights(bucket_bytes=64 * 1024) for pair in bucket
        )
        assert exported.keys() == initial.keys()
        assert all(torch.equal(exported[k], initial[k]) for k in initial)

        tokens = sum(t.num_completion_tokens for t in trajectories)
        losses = []
        for _ in range(4):
            results = group.train_step(prompts, trajectories, "sft", {})
            assert not any(r.skipped for r in results)
            losses.append(sum(r.loss for r in results))
        assert all(np.isfinite(losses)), losses
        assert losses[-1] < losses[0], losses

        trained = dict(pair for bucket in group.export_weights() for pair in bucket)
        changed = [k for k in initial if not torch.equal(trained[k], initial[k])]
        assert len(changed) == len(initial)  # every parameter trained (nothing frozen)
        rows = group.log_probs(prompts, trajectories)
        mean_nll = -sum(float(r["logprobs"].sum()) for r in rows) / tokens
        assert mean_nll == pytest.approx(losses[-1], rel=0.25)

        # Uneven shares (3 + 2 with micro-batches of 2): ranks stay in step, results in order.
        five = [*trajectories, trajectories[0]]
        rows5 = group.log_probs(prompts, five)
        assert len(rows5) == 5
        assert np.allclose(rows5[4]["logprobs"], rows5[0]["logprobs"], atol=1e-6)
        assert not any(r.skipped for r in group.train_step(prompts, five, "sft", {}))
        after = dict(pair for bucket in group.export_weights() for pair in bucket)

        # A NaN in the teacher's scores: the update is skipped on every rank, weights untouched.
        poisoned = [dataclasses.replace(t) for t in trajectories]
        for traj in poisoned:
            traj.teacher_logprobs = np.full(traj.num_completion_tokens, -1.0, np.float32)
        poisoned[-1].teacher_logprobs[0] = np.nan  # lands on rank 1 only
        results = group.train_step(prompts, poisoned, "opd", {})
        assert all(r.skipped for r in results)
        kept = dict(pair for bucket in group.export_weights() for pair in bucket)
        assert all(torch.equal(kept[k], after[k]) for k in after)
        # The next clean step trains normally (no stale NaN gradients left behind).
        poisoned[-1].teacher_logprobs[0] = -1.0
        results = group.train_step(prompts, poisoned, "opd", {})
        assert not any(r.skipped for r in results)
        final = dict(pair for bucket in group.export_weights() for pair in bucket)
        assert all(torch.isfinite(v).all() for v in final.values())
        assert any(not torch.equal(final[k], kept[k]) for k in kept)
    finally:
        group.shutdown()


@pytest.mark.e2e
def test_zero2_two_ranks_train_and_export(ray_session, tiny_models_dir: Path, sft_batch) -> None:
    import ray
    from safetensors.torch import load_file

    from trainer.learner import LearnerSettings
    from trainer.learner_group import LearnerGroup

    prompts, trajectories = sft_batch
    model_dir = tiny_models_dir / "qwen3_vl-student"
    settings = LearnerSettings(
        model_dir=str(model_dir),
        zero_stage=2,
        lr=2e-3,
        micro_batch_size=2,
        freeze_vision=True,
        schedule="cosine",
        total_steps=1000,
    )
    group = LearnerGroup(settings, world_size=2)
    try:
        initial = load_file(str(model_dir / "model.safetensors"))
        before = group.log_probs(prompts, trajectories)
        # Half the wall-clock budget spent after step 1 of 1000: the cosine is half-way down.
        results = group.train_step(
            prompts, trajectories, "sft", {}, time_progress=0.5, keep_logprobs=True
        )
        assert not any(r.skipped for r in results) and np.isfinite(results[0].grad_norm)
        # The update's own forward gives what a pass of its own before it gives (the mismatch
        # metric reads it instead of running that pass).
        kept = group.rows_in_order(trajectories, results)
        assert [len(r.rows or []) for r in results] == [len(trajectories) // 2] * 2
        for row, reference in zip(kept, before, strict=True):
            for key in ("logprobs", "entropy"):
                np.testing.assert_allclose(row[key], reference[key], rtol=1e-5, atol=1e-6)
        lrs = ray.get([rank.current_lr.remote() for rank in group.ranks])
        assert lrs == pytest.approx([1e-3, 1e-3])
        after = dict(pair for bucket in group.export_weights() for pair in bucket)
        assert after.keys() == initial.keys()
        for name, tensor in initial.items():
            frozen = name.startswith("model.visual.")
            assert torch.equal(after[name], tensor) == frozen, name
    finally:
        group.shutdown()
