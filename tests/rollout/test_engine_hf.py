"""The transformers engine on its own: behaviour log-probs recorded while `generate` samples equal
a second scoring pass, and an engine sharing a learner's module samples with it and takes weight
updates without copying them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rollout.engine_config import EngineConfig, SamplingConfig
from rollout.weight_sync import bucket_state_dict
from runtime.checksums import state_checksum
from runtime.hf_compat import load_hf_model
from runtime.hf_scoring import ScoringItem, completion_log_probs
from runtime.prompting import vision_placeholder_ids

STUDENT = "qwen3_vl-student"


@pytest.fixture(scope="module")
def student_dir(tiny_models_dir: Path) -> Path:
    return tiny_models_dir / STUDENT


def _second_pass(model, processor, specs, batch, temperature: float, top_k: int):
    items = [
        ScoringItem(
            specs[t.prompt_index].query,
            specs[t.prompt_index].prompt_style,
            _vision(specs[t.prompt_index]),
            t.completion_ids.tolist(),
        )
        for t in batch.trajectories
    ]
    with torch.no_grad():
        return completion_log_probs(model, processor, items, temperature, top_k)


def _vision(spec):
    from tvg.video import build_vision_inputs

    return build_vision_inputs(spec.video, spec.video_settings)


@pytest.mark.parametrize(("temperature", "top_k", "n"), [(1.0, 3, 2), (0.7, 0, 1), (0.0, 2, 2)])
def test_recorded_logprobs_equal_a_second_scoring_pass(
    student_dir: Path, synth_specs, temperature: float, top_k: int, n: int
) -> None:
    from rollout.engine_hf import HFEngine

    engine = HFEngine(EngineConfig(model=str(student_dir), engine="hf"))
    specs = synth_specs[:3]
    sampling = SamplingConfig(temperature=temperature, max_tokens=10, logprobs_topk=top_k)
    batch = engine.sample(specs, n=n, sampling=sampling)
    assert not batch.skipped and len(batch.trajectories) == 3 * n
    assert "score_s" not in batch.timings  # no second pass any more
    scores = _second_pass(engine.model, engine.processor, specs, batch, temperature or 1.0, top_k)
    banned = set(vision_placeholder_ids(engine.tokenizer))
    for traj, score in zip(batch.trajectories, scores, strict=True):
        assert traj.num_completion_tokens > 0
        assert traj.logprobs.shape == (traj.num_completion_tokens,)
        np.testing.assert_allclose(traj.logprobs, score["logprobs"].numpy(), atol=1e-4)
        if top_k:
            assert traj.topk_ids.shape == (traj.num_completion_tokens, top_k)
            np.testing.assert_array_equal(traj.topk_ids, score["topk_ids"].numpy())
            np.testing.assert_allclose(
                traj.topk_logprobs, score["topk_logprobs"].numpy(), atol=1e-4
            )
            assert not set(traj.topk_ids.flatten().tolist()) & banned
        else:
            assert traj.topk_ids is None
    if temperature == 0.0:  # greedy: the n copies are one completion, log-probs included
        for a, b in zip(batch.trajectories[::2], batch.trajectories[1::2], strict=True):
            np.testing.assert_array_equal(a.completion_ids, b.completion_ids)
            np.testing.assert_array_equal(a.logprobs, b.logprobs)


def test_behaviour_record_needs_a_positive_temperature() -> None:
    from rollout.hf_behaviour import BehaviourLogProbs

    with pytest.raises(ValueError, match="temperature must be > 0"):
        BehaviourLogProbs(0.0)


def test_a_shared_module_samples_in_eval_mode_and_updates_without_copies(
    student_dir: Path, synth_specs
) -> None:
    from rollout.engine_hf import HFEngine

    module = load_hf_model(student_dir)
    module.train()
    modes: list[bool] = []
    module.register_forward_pre_hook(lambda mod, args: modes.append(mod.training))
    engine = HFEngine(EngineConfig(model=str(student_dir), engine="hf"), model=module)
    assert engine.shares_weights and engine.model is module
    sampling = SamplingConfig(temperature=1.0, max_tokens=6, seed=5)
    first = engine.sample(synth_specs[:2], n=1, sampling=sampling)
    assert modes and not any(modes)  # generate ran the module in eval mode ...
    assert module.training  # ... and handed it back in train mode

    # The learner changes its module in place (an optimizer step), then syncs its own tensors:
    # nothing is copied, the version and digests follow, and sampling sees the new weights.
    with torch.no_grad():
        for param in module.parameters():
            param.mul_(1.5)
    own = {name: p.detach() for name, p in module.named_parameters()}
    before = {name: t.clone() for name, t in own.items()}
    loads: list[int] = []
    original = module.load_state_dict

    def counting_load(state, *args, **kwargs):
        loads.append(len(state))
        return original(state, *args, **kwargs)

    module.load_state_dict = counting_load  # type: ignore[method-assign]
    result = engine.load_state_dict(own, version=1, bucket_bytes=64 * 1024)
    assert loads == []  # every tensor was the module's own
    assert result.version == engine.weights_version == 1
    assert result.checksum == engine.checksum() == state_checksum(before)
    second = engine.sample(synth_specs[:2], n=1, sampling=sampling)
    assert [t.weights_version for t in second.trajectories] == [1, 1]
    assert any(
        not np.array_equal(a.logprobs, b.logprobs)
        for a, b in zip(first.trajectories, second.trajectories, strict=True)
    )

    # Tensors that are not the module's own (another source) are copied in as usual.
    foreign = {name: t / 1.5 for name, t in before.items()}
    for bucket in bucket_state_dict(foreign, 2, 64 * 1024):
        engine.update_weights(bucket)
    assert sum(loads) == len(foreign)
    for name, param in module.named_parameters():
        torch.testing.assert_close(param.detach(), foreign[name])
    assert engine.checksum() == state_checksum(foreign)


def test_unknown_names_are_rejected_by_a_shared_engine(student_dir: Path) -> None:
    from rollout.engine_hf import HFEngine

    module = load_hf_model(student_dir)
    engine = HFEngine(EngineConfig(model=str(student_dir), engine="hf"), model=module)
    with pytest.raises(RuntimeError, match="names parameters the model does not have"):
        engine.load_state_dict({"not.a.parameter": torch.zeros(2)}, version=1)


def test_vllm_engines_refuse_a_shared_module(student_dir: Path) -> None:
    from rollout.worker import build_engine

    with pytest.raises(ValueError, match="holds its own weights"):
        build_engine(EngineConfig(model=str(student_dir)), model=torch.nn.Linear(2, 2))
